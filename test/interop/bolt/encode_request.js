'use strict';
// Bolt content with the npm codec (sofa-bolt-node, hessian2), for tests that bypass the JS client
// (InvokeService -> Bolt upstream) or send raw frames.
//
//   node encode_request.js encode --service S --method M --args JSON [--format hex|base64]
//                                  [--frame] [--id N] [--timeout-ms N]
//     Prints the hessian2 SofaRequest content of S.M(args...) (what InvokeService's data carries)
//     as one line; with --frame, the whole Bolt v1 request frame (request id --id) instead.
//   node encode_request.js decode --content HEX_OR_BASE64 [--format hex|base64] [--status N]
//     Decodes a SofaResponse content (or, status != 0, an RpcServerException content) and prints
//     one JSON line: {"ok":true,"value":...} or {"ok":false,"error":"..."}.
// JSON args are passed as JS values; strings and numbers map to java.lang.String and
// java.lang.Long/Double as the sofa-rpc-node client sends them.

const protocol = require('sofa-bolt-node/lib/protocol');

const kRequestHeader = 22;
const kResponseHeader = 20;

function parseArgs(argv) {
  const out = { command: argv[0], format: 'hex', status: 0, id: 1, timeoutMs: 3000, frame: false };
  for (let i = 1; i < argv.length; i++) {
    const key = argv[i];
    if (key === '--frame') {
      out.frame = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error('missing value for ' + key);
    switch (key) {
      case '--service': out.service = value; break;
      case '--method': out.method = value; break;
      case '--args': out.args = JSON.parse(value); break;
      case '--format': out.format = value; break;
      case '--content': out.content = value; break;
      case '--status': out.status = Number(value); break;
      case '--id': out.id = Number(value); break;
      case '--timeout-ms': out.timeoutMs = Number(value); break;
      default: throw new Error('unknown argument: ' + key);
    }
  }
  if (out.format !== 'hex' && out.format !== 'base64') throw new Error('--format is hex or base64');
  return out;
}

function encode(args) {
  if (!args.service || !args.method || !Array.isArray(args.args)) {
    throw new Error('encode needs --service, --method and --args (a JSON array)');
  }
  const req = {
    serverSignature: args.service,
    methodName: args.method,
    args: args.args,
    timeout: args.timeoutMs,
    requestProps: { service: args.service },
  };
  const frame = Buffer.from(protocol.requestEncode(args.id, req, {
    protocolType: 'bolt', codecType: 'hessian2', boltVersion: 1,
  }));
  if (args.frame) return frame;
  const classLen = frame.readUInt16BE(14);
  const headerLen = frame.readUInt16BE(16);
  const contentLen = frame.readUInt32BE(18);
  const start = kRequestHeader + classLen + headerLen;
  return frame.subarray(start, start + contentLen);
}

function decode(args) {
  if (args.content === undefined) throw new Error('decode needs --content');
  const content = Buffer.from(args.content, args.format);
  if (content.length === 0) {
    return args.status === 0 ? { ok: true, value: null }
      : { ok: false, error: 'empty content, status ' + args.status };
  }
  const className = Buffer.from('com.alipay.sofa.rpc.core.response.SofaResponse');
  // Wrap the content in a response frame so the codec's own decoder reads it.
  const header = Buffer.alloc(kResponseHeader);
  header.writeUInt8(0x01, 0); // bolt v1
  header.writeUInt8(0x00, 1); // response
  header.writeUInt16BE(2, 2); // RPC response
  header.writeUInt8(0x01, 4); // ver2
  header.writeUInt32BE(1, 5); // request id
  header.writeUInt8(1, 9); // hessian2
  header.writeUInt16BE(args.status, 10);
  header.writeUInt16BE(className.length, 12);
  header.writeUInt16BE(0, 14);
  header.writeUInt32BE(content.length, 16);
  const decoded = protocol.decode(Buffer.concat([ header, className, content ]), {});
  const data = decoded.data || {};
  if (data.error) return { ok: false, error: data.error.message };
  if (data.isError) return { ok: false, error: data.errorMsg };
  return { ok: true, value: data.appResponse };
}

try {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'encode') {
    process.stdout.write(encode(args).toString(args.format) + '\n');
  } else if (args.command === 'decode') {
    process.stdout.write(JSON.stringify(decode(args)) + '\n');
  } else {
    throw new Error('usage: encode_request.js encode|decode ...');
  }
} catch (err) {
  process.stderr.write('encode_request.js: ' + err.message + '\n');
  process.exit(2);
}
