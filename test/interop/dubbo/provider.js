// A small Dubbo 2 provider on hessian.js (the serializer dubbo2.js itself uses): listens on
// --port (0: any), prints {"ready":true,"port":N}, and answers each request with the value
// "<name>:<method>:<first argument>"; heartbeats are answered. Frames: 16-byte header (magic
// 0xdabb, flag, status, 64-bit id, 32-bit body length) and a hessian2 body.
'use strict';
const net = require('net');
const hessian = require('hessian.js');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : dflt;
};
const name = opt('name', 'provider');

function frame(flag, status, idBytes, body) {
  const h = Buffer.alloc(16);
  h[0] = 0xda;
  h[1] = 0xbb;
  h[2] = flag;
  h[3] = status;
  idBytes.copy(h, 4);
  h.writeUInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

const server = net.createServer(socket => {
  let buf = Buffer.alloc(0);
  socket.on('data', data => {
    buf = Buffer.concat([buf, data]);
    while (buf.length >= 16) {
      if (buf[0] !== 0xda || buf[1] !== 0xbb) {
        socket.destroy();
        return;
      }
      const len = buf.readUInt32BE(12);
      if (buf.length < 16 + len) {
        return;
      }
      const flag = buf[2];
      const id = buf.slice(4, 12);
      const body = buf.slice(16, 16 + len);
      buf = buf.slice(16 + len);
      if (flag & 0x20) {  // event: heartbeat
        if ((flag & 0x80) && (flag & 0x40)) {
          socket.write(frame(0x22, 20, id, Buffer.from('N')));
        }
        continue;
      }
      const d = new hessian.DecoderV2(body);
      d.read();  // dubbo version
      const path = d.read();
      d.read();  // service version
      const method = d.read();
      const types = d.read();
      const first = types ? d.read() : null;
      if (!(flag & 0x40)) {
        continue;  // one-way
      }
      const e = new hessian.EncoderV2();
      e.write(1);  // RESPONSE_VALUE
      e.write(`${name}:${method}:${first}`);
      socket.write(frame(0x02, 20, id, e.get()));
      void path;
    }
  });
  socket.on('error', () => {});
});
server.listen(Number(opt('port', '0')), '127.0.0.1', () => {
  console.log(JSON.stringify({ready: true, port: server.address().port}));
});
process.on('SIGTERM', () => process.exit(0));
