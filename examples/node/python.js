'use strict';
// The JavaScript side of the addon (addon.c): start an asyncio program in
// the Node.js process, on Node's own event loop, and talk to it.
//
//   const python = require('./python');
//   const py = python.start({module: 'app', main: 'main', args: [...]});
//   py.finished             // Promise of main's result (JSON-able value)
//   await py.call('fn', 1, 2)  // app.fn(1, 2) in the loop; a coroutine's
//                              // result, or its exception as an Error
//   py.shutdown()           // end it as asyncio.run ends (main cancelled)
//
// The build (build.sh) writes config.json next to the addon: which Python
// to embed, and uvffi's directory (a UVFFI_LIBUV=HOST build).  It is looked
// for in $UVFFI_NODE_BUILD, else in the last build.sh made by default
// (build/node-host/last names it).
const fs = require('fs');
const path = require('path');

function findBuild() {
  if (process.env.UVFFI_NODE_BUILD) return path.resolve(process.env.UVFFI_NODE_BUILD);
  const last = path.resolve(__dirname, '..', '..', 'build', 'node-host', 'last');
  if (!fs.existsSync(last)) {
    throw new Error('no build of examples/node: run examples/node/build.sh first '
                    + '(or set UVFFI_NODE_BUILD to a build directory)');
  }
  return fs.readFileSync(last, 'utf8').trim();
}

class PythonError extends Error {
  constructor(info) {
    super(`${info.type}: ${info.message}`);
    this.name = 'PythonError';
    this.pythonType = info.type;
    this.pythonTraceback = info.traceback;
    if ('code' in info) this.code = info.code;
  }
}

function decodeResult(json) {
  return JSON.parse(json);
}

function decodeError(json) {
  if (typeof json !== 'string') throw json;  // not from Python
  const info = JSON.parse(json);
  throw new PythonError(info);
}

let started = null;

function start({module, main = 'main', args = [], paths = [], build} = {}) {
  if (started) throw new Error('one Python program per process');
  const dir = build ? path.resolve(build) : findBuild();
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const addon = require(path.join(dir, 'uvffi_node.node'));
  addon.init({
    python: config.python,
    // uvffi (HOST build), then this directory (nodebridge.py), then the app's
    paths: [config.site, __dirname, ...paths.map((p) => path.resolve(p))],
  });
  // Node's loop is empty: finish and finalize Python (may take a few more
  // iterations for the close callbacks; what is pending keeps Node alive).
  process.on('beforeExit', () => addon.finalize(false));
  // process.exit() or the end: no more iterations; end Python without polling.
  process.on('exit', () => addon.finalize(true));

  const finished = addon.start(module, main, JSON.stringify(args))
    .then(decodeResult, decodeError);
  started = {
    implementation: config.implementation,
    finished,
    call(name, ...callArgs) {
      return addon.call(name, JSON.stringify(callArgs)).then(decodeResult, decodeError);
    },
    shutdown() { addon.shutdown(); },
    get state() { return addon.state(); },
  };
  return started;
}

module.exports = {start, PythonError};
