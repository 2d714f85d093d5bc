import { benchArgs, integerFlag as integer } from '../common/bench-options';

export interface MediaOptions {
  /** Seconds of frames measured, after the warm-up. */
  seconds: number;
  /** Seconds of frames not measured once the consumer has its first one. */
  warmUpSeconds: number;
  width: number;
  height: number;
  fps: number;
  quick: boolean;
  out: string;
}

export const USAGE = [
  'usage: npm run bench:media -- [flags]   (or node dist/bench/media/main.js [flags])',
  '',
  '  --seconds N   seconds of frames measured after a 2 s warm-up (default 20)',
  '  --width N     camera width (default 640)',
  '  --height N    camera height (default 480)',
  '  --fps N       camera frame rate (default 30)',
  '  --quick       smoke run: 3 s measured after a 1 s warm-up',
  '  --out FILE    JSON results (default bench/results/media-<timestamp>.json)',
].join('\n');

/** Undefined means --help. */
export function parseOptions(argv: string[], now = new Date()): MediaOptions | undefined {
  const args = benchArgs('media', argv, ['seconds', 'width', 'height', 'fps'], now);
  if (!args) return undefined;
  const { values, quick, out } = args;
  return {
    seconds: integer('seconds', values.seconds ?? (quick ? '3' : '20'), 1, 3600),
    warmUpSeconds: quick ? 1 : 2,
    width: integer('width', values.width ?? '640', 16, 7680),
    height: integer('height', values.height ?? '480', 16, 4320),
    fps: integer('fps', values.fps ?? '30', 1, 240),
    quick,
    out,
  };
}
