'use strict';
// A sofa-rpc-node Bolt client for Ottava's interop tests (direct mode, no registry).
//
//   node client.js --target HOST:PORT[,HOST:PORT...] --scenario NAME [options]
//
// Scenarios (all call com.example.Echo:1.0 unless --service says otherwise):
//   echo        --count N calls of echo(s), one after the other; each answer must be "...echo:s"
//   concurrent  --count N (default 2000) calls of echo in flight at once, each with its own
//               argument; every answer must match its own argument
//   big         big(s) with a --size byte (default 1 MiB) argument; the answer must be s
//   fail        fail(msg) must arrive as an error; its message is printed
//   timeout     slow(--delay-ms, s) with --timeout-ms shorter than the delay must fail; then one
//               echo must succeed on the same client (a timed-out call leaves no damage)
//   noroute     echo on --service (default com.example.Nope:1.0) must fail, and not by the
//               client's own timer (the proxy must answer, not stay silent)
//   steady      --clients K RpcClients (one connection each), each with --concurrency C calls of
//               echo always in flight, for --duration-ms D. Counts every socket the clients
//               open ("connects") and see close ("closes"): on long-lived connections through an
//               upgrade both must stay at K and 0. Writes {"progress":ok} to stderr every second.
//   many        --count N calls of echo one after the other (--interval-ms apart), counting
//               which server answered (server.js --name). With --kill-pid P --kill-port Q
//               --kill-after K the client sends SIGTERM to P after K calls, waits until port Q
//               refuses connections, and goes on; answers after that are counted apart.
// Prints one JSON line: {scenario, pass, ok, errors, error_count, by_server, elapsed_ms, ...} and
// exits 0 when the scenario passed, 1 otherwise.

const net = require('net');

// Every connection sofa-rpc-node opens goes through net.connect (lib/client/connection/rpc.js);
// counted here, before the library is loaded, for the steady scenario's "no reconnect" check.
const socketCounts = { connects: 0, closes: 0 };
const realConnect = net.connect;
net.connect = function countingConnect(...args) {
  const socket = realConnect.apply(this, args);
  socketCounts.connects++;
  socket.once('close', () => { socketCounts.closes++; });
  return socket;
};

const { RpcClient } = require('sofa-rpc-node').client;
const dynamicConfig = require('sofa-rpc-node/lib/client/dynamic_config');

// The client's circuit breaker would refuse calls after a burst of expected errors (the fail and
// noroute scenarios, a killed server); the tests want every call on the wire.
dynamicConfig.instance.circuitBreaker.forceClosed = true;

function parseArgs(argv) {
  const out = {
    target: '', scenario: '', service: '', count: 0, size: 1024 * 1024, delayMs: 1000,
    timeoutMs: 3000, intervalMs: 0, killPid: 0, killPort: 0, killAfter: 0,
    clients: 1, concurrency: 1, durationMs: 1000,
  };
  const names = {
    '--target': [ 'target', String ], '--scenario': [ 'scenario', String ],
    '--service': [ 'service', String ], '--count': [ 'count', Number ], '--size': [ 'size', Number ],
    '--delay-ms': [ 'delayMs', Number ], '--timeout-ms': [ 'timeoutMs', Number ],
    '--interval-ms': [ 'intervalMs', Number ], '--kill-pid': [ 'killPid', Number ],
    '--kill-port': [ 'killPort', Number ], '--kill-after': [ 'killAfter', Number ],
    '--clients': [ 'clients', Number ], '--concurrency': [ 'concurrency', Number ],
    '--duration-ms': [ 'durationMs', Number ],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const spec = names[argv[i]];
    if (!spec || i + 1 >= argv.length) {
      throw new Error('bad argument: ' + argv[i]);
    }
    out[spec[0]] = spec[1](argv[i + 1]);
  }
  if (!out.target || !out.scenario) {
    throw new Error('--target and --scenario are required');
  }
  return out;
}

const quietLogger = {
  debug() {},
  info() {},
  warn(...args) { if (process.env.BOLT_PEER_VERBOSE) console.error(...args); },
  error(...args) { if (process.env.BOLT_PEER_VERBOSE) console.error(...args); },
};

function describeError(err) {
  return { name: err.name, message: err.message, resultCode: err.resultCode };
}

// "b:echo:x" -> "b"; "echo:x" -> "" (a server started without --name).
function serverOf(answer) {
  const at = typeof answer === 'string' ? answer.indexOf('echo:') : -1;
  return at > 0 ? answer.slice(0, at - 1) : '';
}

function portRefuses(port) {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
}

async function waitPortClosed(port, limitMs) {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (await portRefuses(port)) return true;
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  return false;
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function run(args, consumer, result) {
  const call = (method, callArgs, timeoutMs) =>
    consumer.invoke(method, callArgs, { responseTimeout: timeoutMs || args.timeoutMs });
  const fail = (err, list) => {
    result.error_count++;
    if (list.length < 20) list.push(describeError(err));
  };

  switch (args.scenario) {
    case 'echo':
    case 'many': {
      const count = args.count || (args.scenario === 'echo' ? 1 : 100);
      let killed = false;
      result.by_server = {};
      result.by_server_after_kill = {};
      result.errors_after_kill = 0;
      result.calls_after_kill = 0;
      for (let i = 0; i < count; i++) {
        if (args.killPid && !killed && i === args.killAfter) {
          process.kill(args.killPid, 'SIGTERM');
          result.killed_port_closed = args.killPort ? await waitPortClosed(args.killPort, 10000)
            : true;
          killed = true;
        }
        const arg = 'm' + i;
        try {
          const answer = await call('echo', [ arg ]);
          if (typeof answer !== 'string' || !answer.endsWith('echo:' + arg)) {
            throw Object.assign(new Error('wrong answer ' + JSON.stringify(answer) + ' to ' + arg),
              { name: 'WrongAnswer' });
          }
          result.ok++;
          const server = serverOf(answer);
          result.by_server[server] = (result.by_server[server] || 0) + 1;
          if (killed) {
            result.by_server_after_kill[server] = (result.by_server_after_kill[server] || 0) + 1;
          }
          if (i === 0) result.first_answer = answer;
        } catch (err) {
          fail(err, result.errors);
          if (killed) result.errors_after_kill++;
        }
        if (killed) result.calls_after_kill++;
        if (args.intervalMs) await sleep(args.intervalMs);
      }
      return result.error_count === 0 && result.ok === count;
    }
    case 'concurrent': {
      const count = args.count || 2000;
      result.by_server = {};
      const calls = [];
      for (let i = 0; i < count; i++) {
        const arg = 'c' + i + '-' + Math.random().toString(36).slice(2);
        calls.push(call('echo', [ arg ]).then(answer => {
          if (typeof answer !== 'string' || !answer.endsWith('echo:' + arg)) {
            throw Object.assign(new Error('wrong answer ' + JSON.stringify(answer) + ' to ' + arg),
              { name: 'WrongAnswer' });
          }
          result.ok++;
          const server = serverOf(answer);
          result.by_server[server] = (result.by_server[server] || 0) + 1;
        }, err => { throw err; }).catch(err => fail(err, result.errors)));
      }
      await Promise.all(calls);
      return result.ok === count;
    }
    case 'big': {
      // Printable ASCII, so the Hessian string length equals the byte length.
      let s = '';
      const chunk = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(32);
      while (s.length < args.size) s += chunk;
      s = s.slice(0, args.size);
      try {
        const answer = await call('big', [ s ]);
        result.answer_length = typeof answer === 'string' ? answer.length : -1;
        if (answer !== s) {
          throw Object.assign(new Error('answer differs from argument'), { name: 'WrongAnswer' });
        }
        result.ok++;
      } catch (err) {
        fail(err, result.errors);
      }
      return result.ok === 1;
    }
    case 'fail': {
      try {
        const answer = await call('fail', [ 'boom from the server' ]);
        result.unexpected_answer = answer;
        return false;
      } catch (err) {
        fail(err, result.errors);
        result.message = err.message;
        return err.message.includes('boom from the server');
      }
    }
    case 'timeout': {
      const start = Date.now();
      try {
        result.unexpected_answer = await call('slow', [ args.delayMs, 'late' ]);
      } catch (err) {
        fail(err, result.errors);
        result.message = err.message;
        result.timed_out = true;
      }
      result.timeout_elapsed_ms = Date.now() - start;
      try {
        const answer = await call('echo', [ 'after' ], 3000);
        result.after_answer = answer;
        result.after_ok = typeof answer === 'string' && answer.endsWith('echo:after');
      } catch (err) {
        result.after_ok = false;
        result.after_error = describeError(err);
      }
      return result.timed_out === true && result.after_ok;
    }
    case 'noroute': {
      const start = Date.now();
      try {
        result.unexpected_answer = await call('echo', [ 'x' ]);
        return false;
      } catch (err) {
        fail(err, result.errors);
        result.message = err.message;
        result.error_elapsed_ms = Date.now() - start;
        return err.name !== 'RpcResponseTimeoutError';
      }
    }
    default:
      throw new Error('unknown scenario: ' + args.scenario);
  }
}

// Long-lived connections under steady load: K clients x C callers until the time is up.
async function steady(args, interfaceName, version, result) {
  const consumers = [];
  for (let i = 0; i < args.clients; i++) {
    const client = new RpcClient({ logger: quietLogger });
    const consumer = client.createConsumer({
      interfaceName, version: version || '1.0', serverHost: args.target,
      responseTimeout: args.timeoutMs,
    });
    await consumer.ready();
    consumers.push(consumer);
  }
  result.latency_ms = { max: 0, over_100: 0 };
  const until = Date.now() + args.durationMs;
  const progress = setInterval(() => {
    process.stderr.write(JSON.stringify({ progress: result.ok, errors: result.error_count }) + '\n');
  }, 1000);
  const caller = async (consumer, id) => {
    for (let n = 0; Date.now() < until; n++) {
      const arg = 's' + id + '-' + n;
      const start = Date.now();
      try {
        const answer = await consumer.invoke('echo', [ arg ], { responseTimeout: args.timeoutMs });
        if (typeof answer !== 'string' || !answer.endsWith('echo:' + arg)) {
          throw Object.assign(new Error('wrong answer ' + JSON.stringify(answer) + ' to ' + arg),
            { name: 'WrongAnswer' });
        }
        result.ok++;
        const ms = Date.now() - start;
        result.latency_ms.max = Math.max(result.latency_ms.max, ms);
        if (ms > 100) result.latency_ms.over_100++;
      } catch (err) {
        result.error_count++;
        if (result.errors.length < 20) result.errors.push(describeError(err));
      }
    }
  };
  const callers = [];
  consumers.forEach((consumer, i) => {
    for (let j = 0; j < args.concurrency; j++) callers.push(caller(consumer, i * 1000 + j));
  });
  await Promise.all(callers);
  clearInterval(progress);
  result.connects = socketCounts.connects;
  result.closes = socketCounts.closes;
  return result.error_count === 0 && result.ok > 0 && result.connects === args.clients &&
    result.closes === 0;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const service = args.service ||
    (args.scenario === 'noroute' ? 'com.example.Nope:1.0' : 'com.example.Echo:1.0');
  const [ interfaceName, version ] = service.split(':');
  const result = { scenario: args.scenario, target: args.target, service, pass: false, ok: 0,
    error_count: 0, errors: [] };
  const start = Date.now();
  try {
    if (args.scenario === 'steady') {
      result.pass = await steady(args, interfaceName, version, result);
    } else {
      const client = new RpcClient({ logger: quietLogger });
      const consumer = client.createConsumer({
        interfaceName,
        version: version || '1.0',
        serverHost: args.target,
        responseTimeout: args.timeoutMs,
      });
      await consumer.ready();
      result.pass = await run(args, consumer, result);
    }
  } catch (err) {
    result.pass = false;
    result.errors.push(describeError(err));
    result.error_count++;
  }
  result.elapsed_ms = Date.now() - start;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.pass ? 0 : 1);
}

main().catch(err => {
  process.stdout.write(JSON.stringify({ pass: false, fatal: err.message }) + '\n');
  process.exit(1);
});
