'use strict';
// Python's asyncio and Node's JavaScript on one event loop, in one thread.
//
//   node examples/node/demo.js [--rounds N] [--interval SECONDS] [--exit-after TICKS]
//
// A JavaScript setInterval ticks while app.py's asyncio TCP echo server and
// client (on 127.0.0.1) do N round trips; JavaScript calls two Python
// coroutines and awaits their results as Promises.  When Python's main
// returns, the timer stops and Node exits (status 0).
// Ctrl-C (SIGINT): JavaScript asks Python to shut down; main is cancelled,
// the leftovers too, Python's loop closes, Node exits with status 130 (a
// second Ctrl-C: process.exit(130) at once).
// --exit-after TICKS: process.exit() at that tick, in the middle of it all;
// Python's program is ended without polling and Python is finalized.
const python = require('./python');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : fallback;
}
const rounds = option('rounds', 10);
const interval = option('interval', 0.05);
const exitAfter = option('exit-after', 0);

const py = python.start({module: 'app', main: 'main', args: [rounds, interval]});
console.log(`js: started Python (${py.implementation}) on Node's event loop`);

let ticks = 0;
const timer = setInterval(() => {
  ticks += 1;
  console.log(`js: tick ${ticks}`);
  if (ticks === exitAfter) {
    console.log('js: process.exit() now');
    process.exit();
  }
}, 40);

let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  if (interrupts > 1) {  // a second Ctrl-C does not wait for Python
    console.log('js: SIGINT again: process.exit(130)');
    process.exit(130);
  }
  console.log('js: SIGINT: asking Python to shut down');
  process.exitCode = 130;
  py.shutdown();
});

(async () => {
  try {
    const sum = await py.call('add_slowly', 2, 3);
    console.log(`js: add_slowly(2, 3) resolved to ${sum}`);
    const echoed = await py.call('echo', 'hello from JavaScript');
    console.log(`js: echo() resolved to ${JSON.stringify(echoed)}`);
  } catch (err) {
    console.log(`js: a call to Python failed: ${err.message}`);
  }
})();

py.finished.then(
  (result) => console.log(`js: Python's main returned ${JSON.stringify(result)}`),
  (err) => console.log(`js: Python's main ended with ${err.message}`),
).finally(() => clearInterval(timer));

process.on('exit', (code) => {
  console.log(`js: exit with status ${code} (Python ${py.state})`);
});
