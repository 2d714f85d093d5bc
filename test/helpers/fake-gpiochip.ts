import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
/** The fake libgpiod 1.6 tools (gpiodetect, gpioinfo, gpioget, gpioset, gpiomon). */
export const FAKE_GPIOD_DIR = path.join(REPO_ROOT, 'test', 'tools', 'fake-gpiod');
/** The fake libgpiod v2 tools, their v2 flags and output, on the same fake chips. */
export const FAKE_GPIOD_V2_DIR = path.join(REPO_ROOT, 'test', 'tools', 'fake-gpiod-v2');

export interface FakeChipSpec {
  name: string;
  label: string;
  lines: number;
  /** Line names by offset. */
  named?: Record<number, string>;
  /** Lines someone else holds for good, by offset: 'kernel' or a consumer label. */
  usedBy?: Record<number, string>;
}

export interface FakeLineHolder {
  pid: number | null;
  consumer: string | null;
  activeLow: boolean;
  bias: string;
  drive: string;
}

export interface FakeLine {
  name: string | null;
  external: 0 | 1 | null;
  direction: 'input' | 'output';
  driven: 0 | 1 | null;
  holder: FakeLineHolder | null;
}

interface FakeState {
  chips: Array<{ name: string; label: string; lines: FakeLine[] }>;
}

/** The state module the fake tools share (plain JavaScript: the tools run without compilation). */
interface FakeStateModule {
  ENV: string;
  createState(file: string, chips: FakeChipSpec[]): void;
  transact<T>(file: string, fn: (state: FakeState) => T): T;
  setExternal(file: string, chip: string, offset: number, external: 0 | 1 | null): void;
  removeChip(file: string, name: string): void;
  lineLevel(line: FakeLine): 0 | 1;
}

const state = require(path.join(FAKE_GPIOD_DIR, 'fake-gpiochip-state.js')) as FakeStateModule;

/**
 * Fake gpiochips for the fake libgpiod tools (both generations): a state file in a temp dir, named to the tools by
 * FAKE_GPIOD_STATE in this process's environment (the driver's children inherit it).
 */
export class FakeGpioChips {
  private constructor(
    private readonly dir: string,
    readonly stateFile: string,
  ) {}

  static create(chips: FakeChipSpec[]): FakeGpioChips {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-gpiochip-'));
    const file = path.join(dir, 'state.json');
    state.createState(file, chips);
    process.env[state.ENV] = file;
    return new FakeGpioChips(dir, file);
  }

  /** What the outside world puts on a pin (null: floating); an input sees an edge if its level changes. */
  drive(chip: string, offset: number, level: 0 | 1 | null): void {
    state.setExternal(this.stateFile, chip, offset, level);
  }

  line(chip: string, offset: number): FakeLine {
    return state.transact(this.stateFile, (s) => {
      const c = s.chips.find((x) => x.name === chip);
      if (!c || !c.lines[offset]) throw new Error(`no line ${offset} on ${chip}`);
      return c.lines[offset];
    });
  }

  /** The physical level of a line now (driven value of a held output, else the outside level). */
  level(chip: string, offset: number): 0 | 1 {
    return state.lineLevel(this.line(chip, offset));
  }

  /** Unplugs a chip: its gpiomon ends with ENODEV, tools no longer find it. */
  remove(chip: string): void {
    state.removeChip(this.stateFile, chip);
  }

  cleanup(): void {
    if (process.env[state.ENV] === this.stateFile) delete process.env[state.ENV];
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
