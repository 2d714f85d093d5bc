'use strict';
/**
 * The shared state of the fake gpiochips behind the fake libgpiod 1.6 tools in this directory
 * (and the fake v2 tools in ../fake-gpiod-v2):
 * one JSON file (its path in FAKE_GPIOD_STATE) that every tool process and the test read and
 * change under a lock file, written by rename so a reader never sees half a file.
 *
 * A line is held the way the kernel holds a requested line: by a process. A holder whose process
 * is gone is released at the next look (the kernel releases a line when its fd closes), and a
 * released line loses its request flags (active-low, bias) and, if it was an output, the value it
 * was driven to: it goes back to what the outside world puts on the pin (`external`, or 0 when
 * floating), which is what makes `gpioset --mode=exit` useless for keeping a value.
 */
const fs = require('node:fs');
const path = require('node:path');

const ENV = 'FAKE_GPIOD_STATE';
const LOCK_TIMEOUT_MS = 5000;
const MAX_EVENTS = 256;
const VERSION = '1.6.3';
const STRERROR = {
  ENOENT: 'No such file or directory',
  EBUSY: 'Device or resource busy',
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
};

class ToolError extends Error {
  constructor(errno) {
    super(STRERROR[errno]);
    this.errno = errno;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms) {
  Atomics.wait(sleeper, 0, 0, ms);
}

function stateFile() {
  const file = process.env[ENV];
  if (!file) {
    process.stderr.write(`${progname()}: fake libgpiod: ${ENV} is not set\n`);
    process.exit(1);
  }
  return file;
}

function readState(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeState(file, state) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, file);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Physical level of a line: what it is driven to while an output is held, else what is outside. */
function lineLevel(line) {
  if (line.holder && line.direction === 'output') return line.driven;
  if (line.external !== null) return line.external;
  return line.holder && line.holder.bias === 'pull-up' ? 1 : 0;
}

function release(line) {
  line.holder = null;
  line.driven = null;
}

/** Releases the lines of processes that are gone, as the kernel does when their fd closes. */
function reap(state) {
  for (const chip of state.chips) {
    for (const line of chip.lines) {
      if (line.holder && line.holder.pid !== null && !alive(line.holder.pid)) release(line);
    }
  }
}

/** Runs `fn(state)` under the lock and writes the state back; returns what `fn` returned. */
function transact(file, fn) {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx'));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (Date.now() > deadline) {
        // A holder killed inside its transaction leaves the lock behind.
        fs.rmSync(lock, { force: true });
        continue;
      }
      sleepSync(2);
    }
  }
  try {
    const state = readState(file);
    reap(state);
    const result = fn(state);
    writeState(file, state);
    return result;
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** The chip a tool argument names, as gpiod_chip_open_lookup() finds it: number, label, path or name. */
function lookupChip(state, descr) {
  const byName = (name) => state.chips.find((c) => c.name === name);
  if (/^\d+$/.test(descr)) return byName(`gpiochip${Number(descr)}`);
  const byLabel = state.chips.find((c) => c.label === descr);
  if (byLabel) return byLabel;
  if (descr.startsWith('/dev/')) return byName(descr.slice(5));
  return byName(descr);
}

/** Chips in the order scandir(alphasort) lists /dev. */
function sortedChips(state) {
  return [...state.chips].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Requests `offsets` of `chip` for this process, or throws the errno the kernel would give. */
function request(chip, offsets, holder, direction) {
  for (const offset of offsets) {
    if (offset >= chip.lines.length) throw new ToolError('EINVAL');
  }
  if (new Set(offsets).size !== offsets.length) throw new ToolError('EBUSY');
  for (const offset of offsets) {
    if (chip.lines[offset].holder) throw new ToolError('EBUSY');
  }
  for (const offset of offsets) {
    const line = chip.lines[offset];
    line.holder = { ...holder };
    line.direction = direction;
  }
}

/** Changes what the outside world puts on an input pin, recording an edge as the kernel would. */
function setExternal(file, chipName, offset, external) {
  transact(file, (state) => {
    const chip = state.chips.find((c) => c.name === chipName);
    if (!chip || offset >= chip.lines.length) throw new Error(`no line ${offset} on ${chipName}`);
    const line = chip.lines[offset];
    const before = lineLevel(line);
    line.external = external;
    const after = lineLevel(line);
    if (before === after || line.direction !== 'input') return;
    state.eventSeq += 1;
    state.events.push({ seq: state.eventSeq, chip: chipName, offset, rising: after === 1, tsNs: process.hrtime.bigint().toString() });
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  });
}

function createState(file, chips) {
  const state = {
    eventSeq: 0,
    events: [],
    chips: chips.map((c) => ({
      name: c.name,
      label: c.label,
      lines: Array.from({ length: c.lines }, (_, i) => {
        const spec = (c.named && c.named[i]) || null;
        const usedBy = (c.usedBy && c.usedBy[i]) || null;
        return {
          name: spec,
          external: null,
          direction: 'input',
          driven: null,
          holder: usedBy ? { pid: null, consumer: usedBy === 'kernel' ? null : usedBy, activeLow: false, bias: 'as-is', drive: 'push-pull' } : null,
        };
      }),
    })),
  };
  writeState(file, state);
}

/** Releases the lines of `chipName` this process holds, as the kernel does when it exits. */
function releaseOwn(file, chipName, offsets) {
  transact(file, (state) => {
    const chip = state.chips.find((c) => c.name === chipName);
    if (!chip) return;
    for (const o of offsets) if (chip.lines[o].holder && chip.lines[o].holder.pid === process.pid) release(chip.lines[o]);
  });
}

function removeChip(file, name) {
  transact(file, (state) => {
    state.chips = state.chips.filter((c) => c.name !== name);
  });
}

function progname() {
  return path.basename(process.argv[1] || 'gpio');
}

/** die() of libgpiod's tools-common.c. */
function die(message) {
  process.stderr.write(`${progname()}: ${message}\n`);
  process.exit(1);
}

/** die_perror(): the message, then strerror(errno). */
function diePerror(message, err) {
  if (!(err instanceof ToolError)) throw err;
  die(`${message}: ${err.message}`);
}

function printVersion(version = VERSION) {
  process.stdout.write(
    `${progname()} (libgpiod) v${version}\nCopyright (C) 2017-2018 Bartosz Golaszewski\nLicense: LGPLv2.1\n` +
      'This is free software: you are free to change and redistribute it.\nThere is NO WARRANTY, to the extent permitted by law.\n',
  );
}

/**
 * getopt_long() with a leading '+' (stop at the first non-option). `spec` maps a short option to
 * { long, arg }. Returns { opts: [[short, value]], rest }.
 */
function getopt(argv, spec) {
  const opts = [];
  let i = 0;
  const fail = (text) => {
    process.stderr.write(`${progname()}: ${text}\n`);
    die(`try ${progname()} --help`);
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const short = Object.keys(spec).find((k) => spec[k].long === name);
      if (!short) fail(`unrecognized option '${a.slice(0, eq < 0 ? undefined : eq)}'`);
      if (spec[short].arg) {
        if (eq >= 0) opts.push([short, a.slice(eq + 1)]);
        else if (i + 1 < argv.length) opts.push([short, argv[++i]]);
        else fail(`option '--${name}' requires an argument`);
      } else {
        if (eq >= 0) fail(`option '--${name}' doesn't allow an argument`);
        opts.push([short, null]);
      }
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (!spec[c]) fail(`invalid option -- '${c}'`);
      if (!spec[c].arg) {
        opts.push([c, null]);
        continue;
      }
      if (j + 1 < a.length) opts.push([c, a.slice(j + 1)]);
      else if (i + 1 < argv.length) opts.push([c, argv[++i]]);
      else fail(`option requires an argument -- '${c}'`);
      break;
    }
  }
  return { opts, rest: argv.slice(i) };
}

/** bias_flags() of tools-common.c. */
function parseBias(option) {
  if (['as-is', 'disable', 'pull-down', 'pull-up'].includes(option)) return option;
  return die(`invalid bias: ${option}`);
}

/** strtoul(…, 10) with the tools' check that nothing follows the number. */
function parseOffset(text) {
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

const BIAS_HELP =
  'Biases:\n  as-is:\tleave bias unchanged\n  disable:\tdisable bias\n  pull-up:\tenable pull-up\n  pull-down:\tenable pull-down\n';

module.exports = {
  ENV,
  BIAS_HELP,
  ToolError,
  createState,
  readState,
  transact,
  setExternal,
  removeChip,
  lineLevel,
  release,
  releaseOwn,
  lookupChip,
  sortedChips,
  request,
  stateFile,
  progname,
  die,
  diePerror,
  printVersion,
  getopt,
  parseBias,
  parseOffset,
};
