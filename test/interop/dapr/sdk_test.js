// An application written with the official Dapr JavaScript SDK (@dapr/dapr, pinned by
// package-lock.json), run against a real Ottava sidecar by test/e2e/dapr_sdk_interop_test.cc.
// A DaprServer is the app (pub/sub handlers, an invocation method); a DaprClient exercises the
// sidecar's API. Every check prints one line "PASS <name>" or "FAIL <name>: <why>"; the exit code
// is the number of failures (the C++ test also checks the PASS lines it expects).
//
//   node sdk_test.js --protocol grpc|http --dapr-port P --http-port H --app-port A --app-id ID
//                    [--token T] [--config-store NAME]
//
// --dapr-port is the port the SDK talks to (the gRPC port with grpc, the Dapr HTTP port with
// http); --http-port is always the Dapr HTTP port (used to watch /v1.0/metadata for the
// subscriptions the sidecar has made).

"use strict";

const http = require("http");
const {
  DaprClient,
  DaprServer,
  CommunicationProtocolEnum,
  HttpMethod,
  DaprPubSubStatusEnum,
} = require("@dapr/dapr");
// The SDK's LockStatus enum (not exported from the package root).
const { LockStatus } = require("@dapr/dapr/types/lock/UnlockResponse");

const { parseArgs, pass, check, assert, sleep, waitFor, failures } = require("./checks");

const args = parseArgs(process.argv);
const protocol =
  args.protocol === "http" ? CommunicationProtocolEnum.HTTP : CommunicationProtocolEnum.GRPC;
const isGrpc = protocol === CommunicationProtocolEnum.GRPC;
const token = args.token || undefined;
const appId = args["app-id"];
const httpPort = Number(args["http-port"]);
const STORE = "state";
const PUBSUB = "pubsub";
const LOCK = "lock";

// A plain HTTP request to the sidecar's Dapr HTTP port (for what the SDK does not show).
function rawHttp(method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: httpPort, method, path, headers },
      (res) => {
        let data = "";
        res.on("data", (chunk) => (data += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on("error", reject);
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    if (body !== undefined) {
      req.write(body);
    }
    req.end();
  });
}

// ------------------------------------------------------------------------------- the app side
const received = { orders: [], retry: [], drop: [], dlq: [], routed: [] };
let retryCalls = 0;

const server = new DaprServer({
  serverHost: "127.0.0.1",
  serverPort: args["app-port"],
  communicationProtocol: protocol,
  clientOptions: {
    daprHost: "127.0.0.1",
    daprPort: args["dapr-port"],
    communicationProtocol: protocol,
    daprApiToken: token,
  },
});

async function registerApp() {
  await server.pubsub.subscribe(PUBSUB, "orders", async (data) => {
    received.orders.push(data);
    return DaprPubSubStatusEnum.SUCCESS;
  });
  await server.pubsub.subscribe(PUBSUB, "retry", async (data) => {
    retryCalls += 1;
    received.retry.push(data);
    return retryCalls === 1 ? DaprPubSubStatusEnum.RETRY : DaprPubSubStatusEnum.SUCCESS;
  });
  await server.pubsub.subscribeWithOptions(PUBSUB, "drop", {
    deadLetterTopic: "drop-dlq",
    callback: async (data) => {
      received.drop.push(data);
      return DaprPubSubStatusEnum.DROP;
    },
  });
  await server.pubsub.subscribe(PUBSUB, "drop-dlq", async (data) => {
    received.dlq.push(data);
    return DaprPubSubStatusEnum.SUCCESS;
  });
  await server.invoker.listen(
    "echo",
    async (data) => {
      const body = typeof data.body === "string" ? JSON.parse(data.body) : data.body;
      return { echoed: body, from: "sdk-app" };
    },
    { method: HttpMethod.POST },
  );
}

// ---------------------------------------------------------------------------- the client side
async function runClient(client) {
  await check("health", async () => {
    assert((await client.health.isHealthy()) === true, "isHealthy() is not true");
  });

  await check("metadata", async () => {
    const metadata = await client.metadata.get();
    assert(metadata.id === appId, `id ${metadata.id} != ${appId}`);
    const components = metadata.components || [];
    const state = components.find((c) => c.name === STORE);
    assert(state, `no component named ${STORE} in ${JSON.stringify(components)}`);
    assert(/^state\./.test(state.type), `state type ${state.type}`);
  });

  await check("state save/get/delete", async () => {
    const saved = await client.state.save(STORE, [
      { key: "k1", value: { name: "ada", n: 1 } },
      { key: "k2", value: "plain text" },
    ]);
    assert(!saved || !saved.error, `save: ${JSON.stringify(saved)}`);
    const k1 = await client.state.get(STORE, "k1");
    assert(k1 && k1.name === "ada" && k1.n === 1, `k1 = ${JSON.stringify(k1)}`);
    const k2 = await client.state.get(STORE, "k2");
    assert(k2 === "plain text", `k2 = ${JSON.stringify(k2)}`);
    await client.state.delete(STORE, "k2");
    const gone = await client.state.get(STORE, "k2");
    assert(gone === "" || gone === undefined || gone === null, `deleted k2 = ${JSON.stringify(gone)}`);
  });

  await check("state etags", async () => {
    await client.state.save(STORE, [{ key: "e1", value: { v: 1 } }]);
    const bulk = await client.state.getBulk(STORE, ["e1"]);
    const etag = bulk[0].etag;
    assert(etag, `no etag in ${JSON.stringify(bulk)}`);
    const ok = await client.state.save(STORE, [{ key: "e1", value: { v: 2 }, etag }]);
    assert(!ok || !ok.error, `save with the right etag failed: ${JSON.stringify(ok)}`);
    let refused = false;
    try {
      const stale = await client.state.save(STORE, [{ key: "e1", value: { v: 3 }, etag }]);
      refused = Boolean(stale && stale.error); // HTTP: the SDK returns {error}
    } catch (e) {
      refused = isGrpc ? e.code === 10 /* ABORTED */ : true;
      assert(refused, `stale etag: ${e}`);
    }
    assert(refused, "a save with a stale etag was accepted");
    const now = await client.state.get(STORE, "e1");
    assert(now.v === 2, `after the refused save e1 = ${JSON.stringify(now)}`);
  });

  await check("state transaction", async () => {
    await client.state.save(STORE, [{ key: "t1", value: "one" }, { key: "t2", value: "two" }]);
    await client.state.transaction(STORE, [
      { operation: "upsert", request: { key: "t1", value: "uno" } },
      { operation: "delete", request: { key: "t2" } },
      { operation: "upsert", request: { key: "t3", value: "tres" } },
    ]);
    assert((await client.state.get(STORE, "t1")) === "uno", "t1 not updated");
    const t2 = await client.state.get(STORE, "t2");
    assert(t2 === "" || t2 === undefined || t2 === null, `t2 = ${JSON.stringify(t2)}`);
    assert((await client.state.get(STORE, "t3")) === "tres", "t3 not written");
    // All or nothing: a stale etag in the second operation applies nothing.
    let failed = false;
    try {
      await client.state.transaction(STORE, [
        { operation: "upsert", request: { key: "t1", value: "changed" } },
        { operation: "upsert", request: { key: "t3", value: "changed", etag: { value: "999999" } } },
      ]);
    } catch (e) {
      failed = true;
    }
    assert(failed, "a transaction with a stale etag succeeded");
    assert((await client.state.get(STORE, "t1")) === "uno", "a failed transaction wrote t1");
  });

  await check("invoke own app", async () => {
    const answer = await client.invoker.invoke(appId, "echo", HttpMethod.POST, { hello: "world" });
    assert(answer && answer.from === "sdk-app", `answer ${JSON.stringify(answer)}`);
    assert(answer.echoed && answer.echoed.hello === "world", `echoed ${JSON.stringify(answer)}`);
  });

  await check("lock and unlock", async () => {
    const first = await client.lock.lock(LOCK, "res-1", "owner-a", 30);
    assert(first.success === true, `first lock ${JSON.stringify(first)}`);
    const second = await client.lock.lock(LOCK, "res-1", "owner-b", 30);
    assert(second.success === false, `second lock ${JSON.stringify(second)}`);
    const other = await client.lock.unlock(LOCK, "res-1", "owner-b");
    assert(other.status === LockStatus.LockBelongsToOthers, `unlock by b ${JSON.stringify(other)}`);
    const mine = await client.lock.unlock(LOCK, "res-1", "owner-a");
    assert(mine.status === LockStatus.Success, `unlock by a ${JSON.stringify(mine)}`);
    const again = await client.lock.unlock(LOCK, "res-1", "owner-a");
    assert(again.status === LockStatus.LockDoesNotExist, `unlock again ${JSON.stringify(again)}`);
  });

  if (isGrpc && args["config-store"]) {
    const store = args["config-store"];
    await check("configuration get", async () => {
      const got = await client.configuration.get(store, ["color"]);
      assert(got.items.color && got.items.color.value === "red", `got ${JSON.stringify(got)}`);
    });
    await check("configuration subscribe", async () => {
      // The C++ test keeps writing "size" while this runs.
      let seen = null;
      const stream = await client.configuration.subscribeWithKeys(store, ["size"], (update) => {
        if (update.items && update.items.size) {
          seen = update.items.size.value;
        }
      });
      await waitFor(async () => seen !== null, 10000, "an update of 'size'");
      stream.stop();
      assert(/^big-/.test(seen), `size = ${seen}`);
    });
  }

  // Pub/sub: wait until the sidecar has asked the app and subscribed (the in-memory broker drops
  // what is published to a topic nobody subscribes to yet).
  await check("subscriptions discovered", async () => {
    const headers = token ? { "dapr-api-token": token } : {};
    await waitFor(
      async () => {
        const res = await rawHttp("GET", "/v1.0/metadata", headers);
        if (res.status !== 200) {
          return false;
        }
        const topics = (JSON.parse(res.body).subscriptions || []).map((s) => s.topic);
        return ["orders", "retry", "drop", "drop-dlq"].every((t) => topics.includes(t));
      },
      20000,
      "the app's four subscriptions in /v1.0/metadata",
    );
  });

  await check("publish SUCCESS", async () => {
    await client.pubsub.publish(PUBSUB, "orders", { order: 7, item: "tea" });
    await waitFor(async () => received.orders.length >= 1, 10000, "the order");
    const got = received.orders[0];
    assert(got.order === 7 && got.item === "tea", `delivered ${JSON.stringify(got)}`);
  });

  await check("publish RETRY", async () => {
    await client.pubsub.publish(PUBSUB, "retry", { attempt: "x" });
    await waitFor(async () => received.retry.length >= 2, 10000, "a redelivery after RETRY");
    assert(received.retry[1].attempt === "x", `redelivered ${JSON.stringify(received.retry[1])}`);
    await sleep(500);
    assert(received.retry.length === 2, `delivered ${received.retry.length} times after SUCCESS`);
  });

  await check("publish DROP to dead letter", async () => {
    await client.pubsub.publish(PUBSUB, "drop", { poison: true });
    await waitFor(async () => received.dlq.length >= 1, 10000, "the dead-lettered event");
    assert(received.drop.length === 1, `drop handler ran ${received.drop.length} times`);
    assert(received.dlq[0].poison === true, `dead letter ${JSON.stringify(received.dlq[0])}`);
  });

  await check("publish to an unknown pubsub fails", async () => {
    let failed = false;
    try {
      const result = await client.pubsub.publish("no-such-pubsub", "orders", { x: 1 });
      failed = Boolean(result && result.error);
    } catch (e) {
      failed = true;
    }
    assert(failed, "publishing to an unknown pubsub succeeded");
  });
}

// The token: refused without it, refused with a wrong one (raw calls, since an SDK client without
// the token would keep probing for 30 s before giving up).
async function checkTokenRefusal() {
  await check("token refused over HTTP", async () => {
    const none = await rawHttp("GET", "/v1.0/state/state/k1");
    assert(none.status === 401, `no token: HTTP ${none.status} ${none.body}`);
    const wrong = await rawHttp("GET", "/v1.0/state/state/k1", { "dapr-api-token": "wrong" });
    assert(wrong.status === 401, `wrong token: HTTP ${wrong.status} ${wrong.body}`);
    const right = await rawHttp("GET", "/v1.0/metadata", { "dapr-api-token": token });
    assert(right.status === 200, `right token: HTTP ${right.status}`);
    const health = await rawHttp("GET", "/v1.0/healthz");
    assert(health.status === 204, `healthz without a token: HTTP ${health.status}`);
  });
  if (isGrpc) {
    await check("token refused over gRPC", async () => {
      const grpc = require("@grpc/grpc-js");
      const identity = (b) => b;
      const call = (metadata) =>
        new Promise((resolve) => {
          const client = new grpc.Client(
            `127.0.0.1:${args["dapr-port"]}`,
            grpc.credentials.createInsecure(),
          );
          client.makeUnaryRequest(
            "/dapr.proto.runtime.v1.Dapr/GetMetadata",
            identity,
            identity,
            Buffer.alloc(0),
            metadata,
            (error) => {
              client.close();
              resolve(error ? error.code : 0);
            },
          );
        });
      const none = await call(new grpc.Metadata());
      assert(none === grpc.status.UNAUTHENTICATED, `no token: code ${none}`);
      const wrongMetadata = new grpc.Metadata();
      wrongMetadata.set("dapr-api-token", "wrong");
      const wrong = await call(wrongMetadata);
      assert(wrong === grpc.status.UNAUTHENTICATED, `wrong token: code ${wrong}`);
      const layotto = await new Promise((resolve) => {
        const client = new grpc.Client(
          `127.0.0.1:${args["dapr-port"]}`,
          grpc.credentials.createInsecure(),
        );
        client.makeUnaryRequest(
          "/spec.proto.runtime.v1.Runtime/SayHello",
          identity,
          identity,
          Buffer.alloc(0),
          new grpc.Metadata(),
          (error) => {
            client.close();
            resolve(error ? error.code : 0);
          },
        );
      });
      assert(layotto === grpc.status.UNAUTHENTICATED, `Layotto without a token: code ${layotto}`);
    });
  }
}

async function main() {
  const timer = setTimeout(() => {
    console.log("FAIL overall: the script did not finish in 90 s");
    process.exit(100);
  }, 90000);
  await registerApp();
  await server.start();
  pass("app started");
  const client = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: args["dapr-port"],
    communicationProtocol: protocol,
    daprApiToken: token,
  });
  await runClient(client);
  if (token) {
    await checkTokenRefusal();
  }
  clearTimeout(timer);
  console.log(`DONE ${failures()} failure(s)`);
  // DaprServer.stop() waits for the sidecar to close its connection to the app; the test stops
  // the sidecar after this process, so exit here.
  process.exit(failures());
}

main().catch((e) => {
  console.log(`FAIL overall: ${e && e.stack ? e.stack : e}`);
  process.exit(101);
});
