// Bulk subscribe with the official Dapr JavaScript SDK (@dapr/dapr, pinned by package-lock.json),
// run against a real Ottava sidecar by test/e2e/dapr_bulk_e2e_test.cc. A DaprServer subscribes to
// topic "bulk" with `server.pubsub.subscribeBulk` (over gRPC the SDK serves only
// AppCallbackAlpha/OnBulkTopicEventAlpha1; over HTTP it reads the bulk envelope POSTed to the
// route); a DaprClient publishes 50 events, 30 one by one and 20 through publishBulk. Event 7
// answers RETRY the first time, event 13 answers DROP. Every check prints "PASS <name>" or
// "FAIL <name>: <why>"; the exit code is the number of failures.
//
//   node bulk_test.js --protocol grpc|http --dapr-port P --http-port H --app-port A [--token T]

"use strict";

const http = require("http");
const {
  DaprClient,
  DaprServer,
  CommunicationProtocolEnum,
  DaprPubSubStatusEnum,
} = require("@dapr/dapr");

const { parseArgs, check, assert, sleep, waitFor, failures } = require("./checks");

const args = parseArgs(process.argv);
const protocol =
  args.protocol === "http" ? CommunicationProtocolEnum.HTTP : CommunicationProtocolEnum.GRPC;
const token = args.token || undefined;
const httpPort = Number(args["http-port"]);
const PUBSUB = "pubsub";
const TOPIC = "bulk";
const TOTAL = 50;
const RETRY_N = 7;
const DROP_N = 13;

function getMetadata() {
  return new Promise((resolve, reject) => {
    const headers = token ? { "dapr-api-token": token } : {};
    const req = http.request(
      { host: "127.0.0.1", port: httpPort, method: "GET", path: "/v1.0/metadata", headers },
      (res) => {
        let data = "";
        res.on("data", (chunk) => (data += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

// n -> how many times the handler saw event n.
const deliveries = new Map();

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

async function main() {
  const timer = setTimeout(() => {
    console.log("FAIL overall: the script did not finish in 90 s");
    process.exit(100);
  }, 90000);

  await server.pubsub.subscribeBulk(
    PUBSUB,
    TOPIC,
    async (data) => {
      const n = data && typeof data.n === "number" ? data.n : -1;
      const seen = (deliveries.get(n) || 0) + 1;
      deliveries.set(n, seen);
      if (n === RETRY_N && seen === 1) {
        return DaprPubSubStatusEnum.RETRY;
      }
      if (n === DROP_N) {
        return DaprPubSubStatusEnum.DROP;
      }
      return DaprPubSubStatusEnum.SUCCESS;
    },
    { maxMessagesCount: 10, maxAwaitDurationMs: 300 },
  );
  await server.start();
  console.log("PASS app started");
  const client = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: args["dapr-port"],
    communicationProtocol: protocol,
    daprApiToken: token,
  });

  await check("bulk subscription discovered", async () => {
    await waitFor(
      async () => {
        const res = await getMetadata();
        if (res.status !== 200) {
          return false;
        }
        return (JSON.parse(res.body).subscriptions || []).some((s) => s.topic === TOPIC);
      },
      20000,
      "the bulk subscription in /v1.0/metadata",
    );
  });

  await check("publish 50 events", async () => {
    for (let n = 0; n < 30; n += 1) {
      await client.pubsub.publish(PUBSUB, TOPIC, { n });
    }
    const messages = [];
    for (let n = 30; n < TOTAL; n += 1) {
      messages.push({ n });
    }
    const result = await client.pubsub.publishBulk(PUBSUB, TOPIC, messages);
    const failed = (result && result.failedMessages) || [];
    assert(failed.length === 0, `bulk publish failed for ${JSON.stringify(failed)}`);
  });

  await check("every event delivered", async () => {
    await waitFor(
      async () => {
        for (let n = 0; n < TOTAL; n += 1) {
          if (!deliveries.has(n)) {
            return false;
          }
        }
        return deliveries.get(RETRY_N) >= 2;
      },
      20000,
      "all 50 events and the redelivery of the RETRY one",
    );
  });

  await check("RETRY redelivered, DROP and SUCCESS not", async () => {
    await sleep(1500); // longer than a batch's wait and the retry backoff
    assert(deliveries.get(RETRY_N) === 2, `event ${RETRY_N} seen ${deliveries.get(RETRY_N)} times`);
    assert(deliveries.get(DROP_N) === 1, `event ${DROP_N} seen ${deliveries.get(DROP_N)} times`);
    const again = [];
    for (const [n, times] of deliveries) {
      if (n !== RETRY_N && times !== 1) {
        again.push(`${n}x${times}`);
      }
    }
    assert(again.length === 0, `delivered more than once: ${again.join(", ")}`);
  });

  clearTimeout(timer);
  console.log(`DONE ${failures()} failure(s)`);
  process.exit(failures());
}

main().catch((e) => {
  console.log(`FAIL overall: ${e && e.stack ? e.stack : e}`);
  process.exit(101);
});
