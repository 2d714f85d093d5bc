'use strict';
/**
 * What the fake libgpiod v2 tools share beyond the chip state of ../fake-gpiod: v2's common
 * options (-c/--chip, -C/--consumer, -l/--active-low, -b/--bias with 'disabled'), its version
 * banner and its line lookup (an offset or a line name on the chip given with -c).
 */
const s = require('../fake-gpiod/fake-gpiochip-state.js');

const VERSION = '2.1.3';

const COMMON = {
  h: { long: 'help' },
  v: { long: 'version' },
  c: { long: 'chip', arg: true },
  C: { long: 'consumer', arg: true },
  l: { long: 'active-low' },
  b: { long: 'bias', arg: true },
};

/** parse_bias() of v2's tools-common.c: 'disabled', not v1.6's 'disable'. */
function parseBias(option) {
  const map = { 'as-is': 'as-is', disabled: 'disable', 'pull-down': 'pull-down', 'pull-up': 'pull-up' };
  if (option in map) return map[option];
  return s.die(`invalid bias: ${option}`);
}

/** The common options of `opts`; the rest is left to the tool. */
function commonOptions(opts, usage) {
  const c = { chip: null, consumer: s.progname(), activeLow: false, bias: 'as-is' };
  for (const [o, v] of opts) {
    if (o === 'h') {
      process.stdout.write(usage);
      process.exit(0);
    }
    if (o === 'v') {
      s.printVersion(VERSION);
      process.exit(0);
    }
    if (o === 'c') c.chip = v;
    if (o === 'C') c.consumer = v;
    if (o === 'l') c.activeLow = true;
    if (o === 'b') c.bias = parseBias(v);
  }
  return c;
}

/** resolve_lines(): each id an offset or a name on the chip; "cannot find line" otherwise. */
function resolveOffsets(chip, ids) {
  return ids.map((id) => {
    const n = s.parseOffset(id);
    if (Number.isInteger(n) && n < chip.lines.length) return n;
    const byName = chip.lines.findIndex((l) => l.name === id);
    if (byName < 0) s.die(`cannot find line '${id}'`);
    return byName;
  });
}

/** The chip -c names; v2 resolves lines across all chips without it, which the driver never asks for. */
function chipOf(state, chipArg) {
  if (chipArg === null) s.die('fake libgpiod v2: lines without --chip are not simulated');
  const chip = s.lookupChip(state, chipArg);
  if (!chip) s.diePerror(`cannot find GPIO chip character device '${chipArg}'`, new s.ToolError('ENOENT'));
  return chip;
}

module.exports = { ...s, VERSION, COMMON, commonOptions, resolveOffsets, chipOf, parseBias };
