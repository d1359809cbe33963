// What the interop scripts share: argument parsing and the "PASS <name>" / "FAIL <name>: <why>"
// checks the C++ tests read, with bounded waits.

"use strict";

// "--name value" pairs into {name: value}.
function parseArgs(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) {
    out[argv[i].replace(/^--/, "")] = argv[i + 1];
  }
  return out;
}

const state = { failures: 0 };

function pass(name) {
  console.log(`PASS ${name}`);
}
function fail(name, why) {
  state.failures += 1;
  console.log(`FAIL ${name}: ${why}`);
}
// Runs `fn`; a throw is a FAIL line with the first lines of its stack.
async function check(name, fn) {
  try {
    await fn();
    pass(name);
  } catch (e) {
    fail(name, e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : String(e));
  }
}
function assert(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// Polls `predicate` every 50 ms until it holds; throws after `ms`.
async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) {
      return;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
function failures() {
  return state.failures;
}

module.exports = { parseArgs, pass, fail, check, assert, sleep, waitFor, failures };
