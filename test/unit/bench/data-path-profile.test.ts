import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { WINDOW_CLOSE, WINDOW_OPEN } from '../../../bench/data-path/loop-probe';
import { areaOf, cpuInWindows, traceGcInWindows } from '../../../bench/data-path/profile';

const SCAVENGE = '[4242:0x5d1c]    10512 ms: Scavenge 12.4 (15.1) -> 4.3 (15.6) MB, 10.42 / 0.00 ms  (average mu = 0.998, current mu = 0.997) allocation failure;';
const MARK = '[4242:0x5d1c]    20512 ms: Mark-Compact 20.0 (24.0) -> 15.5 (25.0) MB, 8.50 / 0.02 ms  (+ 1.2 ms in 3 steps since start of marking) finalize incremental marking;';

describe('bench/data-path profile: reading back --trace-gc and --cpu-prof', () => {
  it('counts the collections logged inside windows only, with their pauses and the MB they freed', () => {
    const log = [SCAVENGE, WINDOW_OPEN, SCAVENGE, 'some log line', MARK, WINDOW_CLOSE, SCAVENGE, WINDOW_OPEN, SCAVENGE, WINDOW_CLOSE].join('\n');
    const gc = traceGcInWindows(log);
    assert.deepEqual(gc.kinds, { Scavenge: { count: 2, ms: 20.84 }, 'Mark-Compact': { count: 1, ms: 8.5 } });
    assert.ok(Math.abs(gc.freedMB - (8.1 * 2 + 4.5)) < 1e-9);
  });

  it('ignores malformed and truncated lines, and any text at all, without throwing', () => {
    const broken = [WINDOW_OPEN, 'Scavenge', '[1:0x1] 5 ms: Scavenge x (y) -> z (w) MB,', SCAVENGE.slice(0, 60), WINDOW_CLOSE].join('\n');
    assert.deepEqual(traceGcInWindows(broken), { kinds: {}, freedMB: 0 });
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constant(WINDOW_OPEN), fc.constant(WINDOW_CLOSE), fc.constant(SCAVENGE))), (lines) => {
        const gc = traceGcInWindows(lines.join('\n'));
        assert.ok(Number.isFinite(gc.freedMB));
        for (const k of Object.values(gc.kinds)) assert.ok(k.count > 0 && Number.isFinite(k.ms));
      }),
    );
  });

  it('attributes each sample\'s time to its function and area, inside the windows, idle apart', () => {
    const frame = (id: number, functionName: string, url: string): { id: number; callFrame: { functionName: string; url: string; lineNumber: number } } => ({
      id,
      callFrame: { functionName, url, lineNumber: 9 },
    });
    const profile = {
      nodes: [frame(1, '(idle)', ''), frame(2, 'push', 'file:///r/dist/src/socket-plane/frame-decoder.js'), frame(3, 'writev', '')],
      startTime: 1000,
      // Samples at 1100, 1200, 1300, 1400, 1500 (µs); the window is [1150, 1450).
      samples: [2, 2, 3, 1, 2],
      timeDeltas: [100, 100, 100, 100, 100],
    };
    const cpu = cpuInWindows(profile, [{ startUs: 1150, endUs: 1450 }]);
    assert.equal(cpu.sampledMs, 0.3);
    assert.equal(cpu.idleMs, 0.1);
    assert.deepEqual(cpu.topAreas.map((a) => [a.name, a.ms, a.percent]), [['src/socket-plane/frame-decoder', 0.1, 50], ['(native)', 0.1, 50]]);
    assert.deepEqual(cpu.topFunctions.map((f) => f.name).sort(), ['push src/socket-plane/frame-decoder:10', 'writev']);
  });

  it('names areas: repo files, packages, parts of Node, V8\'s buckets', () => {
    assert.equal(areaOf('file:///w/dist/agent/drivers/event-loop-serial-stream.js', 'arm'), 'agent/drivers/event-loop-serial-stream');
    assert.equal(areaOf('file:///w/node_modules/@grpc/grpc-js/build/src/call.js', 'x'), 'package @grpc/grpc-js');
    assert.equal(areaOf('file:///w/node_modules/pino/lib/tools.js', 'x'), 'package pino');
    assert.equal(areaOf('node:internal/streams/writable', 'x'), 'node streams/writable');
    assert.equal(areaOf('node:net', 'x'), 'node net');
    assert.equal(areaOf('', '(garbage collector)'), '(garbage collector)');
    assert.equal(areaOf('', 'writev'), '(native)');
  });
});
