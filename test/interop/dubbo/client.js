// dubbo2.js as a Dubbo 2 client in direct mode (DirectlyDubbo: no zookeeper), pointed at
// --address (Ottava's dubbo listener). Runs the scenarios and prints one JSON object:
// {"echo": value, "concurrent": {"ok": n, "wrong": n, "errors": [...]}, "group": value,
//  "missing": error message}.
'use strict';
const java = require('js-to-java');
const DirectlyDubbo = require('dubbo2.js/es7/directly-dubbo').default;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : dflt;
};

async function main() {
  const dubbo = DirectlyDubbo.from({
    dubboAddress: opt('address'),
    dubboVersion: '2.0.2',
    dubboInvokeTimeout: 10,
  });
  const service = (iface, group) => dubbo.proxyService({
    dubboInterface: iface,
    version: '1.0.0',
    group,
    timeout: 5000,
    methods: {echo: text => [java.String(text)]},
  });
  const echo = service('com.example.Echo');
  const blue = service('com.example.Echo', 'blue');
  const missing = service('com.example.Nowhere');
  const out = {};
  const first = await echo.echo('hi');
  out.echo = first.err ? 'ERROR ' + first.err.message : first.res;
  const n = Number(opt('concurrent', '200'));
  const calls = [];
  for (let i = 0; i < n; i++) {
    calls.push(echo.echo('call-' + i).then(r => ({i, r})));
  }
  const results = await Promise.all(calls);
  out.concurrent = {ok: 0, wrong: 0, errors: []};
  for (const {i, r} of results) {
    if (r.err) {
      out.concurrent.errors.push(r.err.message);
    } else if (typeof r.res === 'string' && r.res.endsWith(':echo:call-' + i)) {
      out.concurrent.ok++;
    } else {
      out.concurrent.wrong++;
    }
  }
  const g = await blue.echo('g');
  out.group = g.err ? 'ERROR ' + g.err.message : g.res;
  const m = await missing.echo('x');
  out.missing = m.err ? m.err.message : 'NO ERROR: ' + m.res;
  console.log(JSON.stringify(out));
  process.exit(0);
}
main().catch(e => {
  console.log(JSON.stringify({fatal: String(e && e.stack || e)}));
  process.exit(1);
});
