'use strict';
// A sofa-rpc-node Bolt server for Ottava's interop tests (direct mode, no registry).
//
//   node server.js --port P [--name N]
//
// Serves com.example.Echo:1.0:
//   echo(s)     -> "echo:" + s, or N + ":echo:" + s with --name (tells two servers apart)
//   fail(msg)   -> throws Error(msg): the client gets a server exception
//   slow(ms, s) -> the same answer as echo(s), after ms milliseconds
//   big(s)      -> s unchanged (1 MB arguments)
// Prints one JSON line {"ready":true,"port":N,"name":...,"pid":...} once listening; exits on
// SIGTERM or SIGINT.

const { RpcServer } = require('sofa-rpc-node').server;

function parseArgs(argv) {
  const out = { port: 0, name: '' };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === '--port') {
      out.port = Number(value);
      i++;
    } else if (key === '--name') {
      out.name = value;
      i++;
    } else {
      throw new Error('unknown argument: ' + key);
    }
  }
  return out;
}

// Keeps sofa-rpc-node's info logging off stdout, which carries only the ready line.
const quietLogger = {
  debug() {},
  info() {},
  warn(...args) { if (process.env.BOLT_PEER_VERBOSE) console.error(...args); },
  error(...args) { if (process.env.BOLT_PEER_VERBOSE) console.error(...args); },
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const prefix = args.name ? args.name + ':' : '';
  const server = new RpcServer({ logger: quietLogger, port: args.port });
  server.addService({ interfaceName: 'com.example.Echo', version: '1.0' }, {
    async echo(s) {
      return prefix + 'echo:' + s;
    },
    async fail(msg) {
      throw new Error(msg);
    },
    async slow(ms, s) {
      await new Promise(resolve => setTimeout(resolve, ms));
      return prefix + 'echo:' + s;
    },
    async big(s) {
      return s;
    },
  });
  // An unknown service or a thrown method is reported to the client; it must not stop the server.
  server.on('error', () => {});
  await server.start();
  const port = server._servers[0].address().port;
  process.stdout.write(JSON.stringify({ ready: true, port, name: args.name, pid: process.pid }) +
                       '\n');
  const stop = () => {
    // close() waits for connections; a test that sends SIGTERM wants the process gone now.
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(err => {
  console.error(err && err.stack || err);
  process.exit(1);
});
