import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DeviceConfig, DeviceHandle } from '../../../../agent/drivers/device-driver';
import { GpioDriver } from '../../../../agent/drivers/gpio-driver';
import { GpiodTools } from '../../../../agent/drivers/gpiod-tools';
import { DeviceError, UnavailableError, UnsupportedError, ValidationError } from '../../../../src/errors';
import { CommandOp } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { FAKE_GPIOD_DIR, FAKE_GPIOD_V2_DIR, FakeGpioChips } from '../../../helpers/fake-gpiochip';
import { waitFor } from '../helpers';

const CHIP = '/dev/gpiochip0';

function config(settings: Record<string, string>): DeviceConfig {
  return { serial: null, settings };
}

function command(op: CommandOp, target: string, value = 0): { op: CommandOp; target: string; value: number; data: Buffer } {
  return { op, target, value, data: Buffer.alloc(0) };
}

function isValidation(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ValidationError && pattern.test(err.message);
}

/** v1.6 is named to the driver by toolDir, v2 is put first on PATH: both ways the driver finds its tools. */
const GENERATIONS = [
  { name: '1.6', dir: FAKE_GPIOD_DIR, onPath: false, major: 1 },
  { name: 'v2', dir: FAKE_GPIOD_V2_DIR, onPath: true, major: 2 },
];

for (const generation of GENERATIONS) describe(`agent/drivers/gpio-driver (fake libgpiod ${generation.name} tools)`, () => {
  let chips: FakeGpioChips;
  const savedPath = process.env.PATH;
  let driver: GpioDriver;
  let handles: DeviceHandle[];

  async function open(settings: Record<string, string>, chip = CHIP): Promise<{ handle: DeviceHandle; events: DeviceEvent[] }> {
    const handle = await driver.open(chip, config(settings));
    handles.push(handle);
    handle.stream.on('error', () => undefined);
    const events: DeviceEvent[] = [];
    handle.onEvent((e) => events.push(e));
    return { handle, events };
  }

  beforeEach(() => {
    chips = FakeGpioChips.create([
      { name: 'gpiochip0', label: 'fake-A', lines: 8, named: { 0: 'LED', 1: 'RELAY', 3: 'BUTTON', 4: 'DOOR' }, usedBy: { 7: 'kernel' } },
      { name: 'gpiochip1', label: 'fake-B', lines: 4 },
    ]);
    if (generation.onPath) process.env.PATH = `${generation.dir}${path.delimiter}${savedPath ?? ''}`;
    driver = new GpioDriver(generation.onPath ? {} : { toolDir: generation.dir });
    handles = [];
  });

  afterEach(async () => {
    for (const h of handles) await h.close();
    chips.cleanup();
    process.env.PATH = savedPath;
  });

  it('lists each chip with its label, line count and named lines', async () => {
    const devices = await driver.list();
    assert.deepEqual(
      devices.map((d) => [d.path, d.kind, d.labels.label, d.labels.lines]),
      [
        ['/dev/gpiochip0', 'DEVICE_KIND_GPIO', 'fake-A', '8'],
        ['/dev/gpiochip1', 'DEVICE_KIND_GPIO', 'fake-B', '4'],
      ],
    );
    assert.deepEqual(devices[0].capabilities, ['gpio', 'lines=8', 'line=0:LED', 'line=1:RELAY', 'line=3:BUTTON', 'line=4:DOOR']);
    assert.deepEqual(devices[1].capabilities, ['gpio', 'lines=4']);
  });

  it('refuses unknown settings and bad values before touching the chip', () => {
    const refuses = (settings: Record<string, string>, pattern: RegExp): void => assert.throws(() => driver.validate(config(settings)), isValidation(pattern));
    refuses({ speed: '9600' }, /settings\.speed: is not a setting of the gpio driver/);
    refuses({ 'direction.LED': 'sideways' }, /settings\.direction\.LED: "sideways" is not one of input, output/);
    refuses({ 'edge.3': 'up' }, /settings\.edge\.3/);
    refuses({ 'bias.3': 'pull-sideways' }, /settings\.bias\.3/);
    refuses({ 'direction.1': 'output', 'initial.1': '2' }, /settings\.initial\.1/);
    refuses({ 'activeLow.1': 'yes' }, /settings\.activeLow\.1/);
    refuses({ 'initial.1': '1' }, /settings\.initial\.1: an initial value needs an output line/);
    refuses({ 'direction.1': 'output', 'edge.1': 'both' }, /settings\.edge\.1: edge detection needs an input line/);
    refuses({ 'edge.1': 'both', 'edge.2': 'both', 'bias.2': 'pull-up' }, /one bias for all/);
    refuses({ lines: 'LED,LED' }, /names a line twice/);
    refuses({ lines: 'LED', 'direction.RELAY': 'output' }, /line "RELAY" is not in settings\.lines/);
    refuses({ 'direction.a.b': 'output' }, /is not a setting/);
    driver.validate(config({ lines: 'LED,3', 'direction.LED': 'output', 'initial.LED': '1', 'edge.3': 'falling', 'bias.3': 'pull-up' }));
  });

  it('drives an output with a gpioset that keeps running, so the value stays', async () => {
    const { handle } = await open({ lines: 'LED', 'direction.LED': 'output', 'initial.LED': '1' });
    const line = chips.line('gpiochip0', 0);
    assert.equal(line.holder?.consumer, 'gpioset');
    assert.equal(line.direction, 'output');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(chips.level('gpiochip0', 0), 1);
    assert.deepEqual(await handle.execute(command(CommandOp.GpioSet, 'LED', 0)), { value: 0, data: Buffer.alloc(0) });
    assert.equal(chips.level('gpiochip0', 0), 0);
    assert.equal((await handle.execute(command(CommandOp.GpioGet, 'LED'))).value, 0);
    await handle.execute(command(CommandOp.GpioSet, '0', 1));
    assert.equal(chips.level('gpiochip0', 0), 1);
  });

  it('reads inputs with gpioget and refuses to set them', async () => {
    const { handle } = await open({ lines: 'RELAY,2' });
    chips.drive('gpiochip0', 2, 1);
    assert.equal((await handle.execute(command(CommandOp.GpioGet, '2'))).value, 1);
    chips.drive('gpiochip0', 2, 0);
    assert.equal((await handle.execute(command(CommandOp.GpioGet, '2'))).value, 0);
    await assert.rejects(handle.execute(command(CommandOp.GpioSet, 'RELAY', 1)), isValidation(/line RELAY is an input: only an output can be set/));
    await assert.rejects(handle.execute(command(CommandOp.GpioGet, 'LED')), isValidation(/target: no line "LED" in this mapping \(lines: RELAY, 2\)/));
    assert.equal(chips.line('gpiochip0', 1).holder, null);
  });

  it('reports edges of every watched line from one gpiomon, filtered by each line\'s edge setting', async () => {
    const { handle, events } = await open({ lines: 'BUTTON,DOOR', 'edge.BUTTON': 'both', 'edge.DOOR': 'rising' });
    const button = chips.line('gpiochip0', 3).holder;
    const door = chips.line('gpiochip0', 4).holder;
    assert.equal(button?.consumer, 'gpiomon');
    assert.equal(door?.pid, button?.pid);
    chips.drive('gpiochip0', 3, 1);
    chips.drive('gpiochip0', 4, 1);
    chips.drive('gpiochip0', 4, 0);
    chips.drive('gpiochip0', 3, 0);
    await waitFor(() => events.length >= 3, 'three edges');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      events.map((e) => [e.type, e.source, e.value]),
      [
        [DeviceEventType.GpioEdge, 'BUTTON', 1],
        [DeviceEventType.GpioEdge, 'DOOR', 1],
        [DeviceEventType.GpioEdge, 'BUTTON', 0],
      ],
    );
    for (const e of events) {
      assert.match(e.data.toString(), /^\d+\.\d{9}$/);
      assert.ok(Math.abs(e.timestampMs - Date.now()) < 60_000);
    }
    assert.equal((await handle.execute(command(CommandOp.GpioGet, 'DOOR'))).value, 0);
    assert.equal((await handle.execute(command(CommandOp.GpioGet, 'BUTTON'))).value, 0);
  });

  it('applies active-low to edges, reads and outputs', async () => {
    const { handle, events } = await open({ lines: 'BUTTON,LED', 'edge.BUTTON': 'both', 'activeLow.BUTTON': 'true', 'activeLow.LED': 'true', 'direction.LED': 'output' });
    assert.equal(chips.level('gpiochip0', 0), 1, 'active-low output at 0 is high');
    assert.equal(chips.line('gpiochip0', 0).holder?.activeLow, true);
    chips.drive('gpiochip0', 3, 1);
    await waitFor(() => events.length === 1, 'an edge');
    assert.equal(events[0].value, 0);
    await handle.execute(command(CommandOp.GpioSet, 'LED', 1));
    assert.equal(chips.level('gpiochip0', 0), 0);
  });

  it('changes direction on command', async () => {
    const { handle } = await open({ lines: 'RELAY,BUTTON', 'edge.BUTTON': 'both' });
    assert.equal((await handle.execute(command(CommandOp.GpioSetDirection, 'RELAY', 1))).value, 1);
    assert.equal(chips.line('gpiochip0', 1).direction, 'output');
    await handle.execute(command(CommandOp.GpioSet, 'RELAY', 1));
    assert.equal(chips.level('gpiochip0', 1), 1);
    await handle.execute(command(CommandOp.GpioSetDirection, 'RELAY', 0));
    assert.equal(chips.line('gpiochip0', 1).holder, null);
    assert.equal(chips.line('gpiochip0', 1).direction, 'input');
    await assert.rejects(handle.execute(command(CommandOp.GpioSetDirection, 'BUTTON', 1)), isValidation(/stays an input/));
    await assert.rejects(handle.execute(command(CommandOp.GpioSetDirection, 'RELAY', 3)), isValidation(/value: 3 is not 0 or 1/));
  });

  it('refuses the commands of other device kinds', async () => {
    const { handle } = await open({ lines: 'LED' });
    await assert.rejects(handle.execute(command(CommandOp.SerialBreak, '')), (err: unknown) => err instanceof UnsupportedError && /no SerialBreak/.test(err.message));
    await assert.rejects(handle.execute(command(CommandOp.SensorRead, 'LED')), UnsupportedError);
  });

  it('reads its configuration back', async () => {
    const { handle } = await open({ lines: 'LED,BUTTON,2', 'direction.LED': 'output', 'initial.LED': '1', 'edge.BUTTON': 'falling' });
    chips.drive('gpiochip0', 2, 1);
    assert.deepEqual(await handle.configuration(), {
      lines: 'LED,BUTTON,2',
      'direction.LED': 'output',
      'value.LED': '1',
      'edge.LED': 'none',
      'direction.BUTTON': 'input',
      'value.BUTTON': '0',
      'edge.BUTTON': 'falling',
      'direction.2': 'input',
      'value.2': '1',
      'edge.2': 'none',
    });
  });

  it('uses every line nobody else holds when no lines are given', async () => {
    const { handle } = await open({});
    assert.equal((await handle.configuration()).lines, 'LED,RELAY,2,BUTTON,DOOR,5,6');
  });

  it('update restarts gpiomon only when its lines change, and re-applies directions', async () => {
    const { handle, events } = await open({ lines: 'LED,BUTTON,DOOR', 'direction.LED': 'output', 'edge.BUTTON': 'both' });
    const monitor = chips.line('gpiochip0', 3).holder?.pid;
    const gpioset = chips.line('gpiochip0', 0).holder?.pid;
    await handle.update(config({ lines: 'LED,BUTTON,DOOR', 'direction.LED': 'output', 'edge.BUTTON': 'rising' }));
    assert.equal(chips.line('gpiochip0', 3).holder?.pid, monitor);
    assert.equal(chips.line('gpiochip0', 0).holder?.pid, gpioset, 'an unchanged output keeps its gpioset');
    chips.drive('gpiochip0', 3, 1);
    chips.drive('gpiochip0', 3, 0);
    await waitFor(() => events.length === 1, 'the rising edge');
    await handle.update(config({ lines: 'LED,BUTTON,DOOR', 'edge.BUTTON': 'rising', 'edge.DOOR': 'falling' }));
    const restarted = chips.line('gpiochip0', 3).holder?.pid;
    assert.notEqual(restarted, monitor);
    assert.equal(chips.line('gpiochip0', 4).holder?.pid, restarted);
    assert.equal(chips.line('gpiochip0', 0).holder, null, 'LED went back to input');
    await assert.rejects(handle.update(config({ lines: 'LED', colour: 'red' })), isValidation(/settings\.colour/));
    assert.equal(chips.line('gpiochip0', 4).holder?.pid, restarted, 'a refused update changes nothing');
  });

  it('refuses lines that do not exist or that someone else holds', async () => {
    await assert.rejects(driver.open(CHIP, config({ lines: 'NOPE' })), isValidation(/settings\.lines: the chip has no line named "NOPE"/));
    await assert.rejects(driver.open(CHIP, config({ lines: '12' })), isValidation(/no line 12 \(it has 8\)/));
    await assert.rejects(driver.open(CHIP, config({ lines: '7' })), isValidation(/line 7 is used by the kernel/));
    await assert.rejects(driver.open(CHIP, config({ lines: 'LED,0' })), isValidation(/"0" and "LED" are the same line/));
    await assert.rejects(driver.open('/dev/gpiochip9', config({})), (err: unknown) => err instanceof DeviceError && /No such file or directory/.test(err.message));
  });

  it('speaks the generation the installed tools report', async () => {
    assert.equal(await new GpiodTools(generation.dir).generation(), generation.major);
    const { handle } = await open({ lines: 'LED,BUTTON', 'direction.LED': 'output', 'initial.LED': '1', 'edge.BUTTON': 'both', 'bias.BUTTON': 'disable' });
    assert.equal(chips.line('gpiochip0', 3).holder?.bias, 'disable', 'bias disable reaches the line in either spelling');
    assert.equal((await handle.execute(command(CommandOp.GpioGet, 'LED'))).value, 1);
  });

  it('opens a chip once at a time, and close releases every line', async () => {
    const { handle } = await open({ lines: 'LED,BUTTON', 'direction.LED': 'output', 'edge.BUTTON': 'both' });
    await assert.rejects(driver.open(CHIP, config({})), (err: unknown) => err instanceof DeviceError && /already open/.test(err.message));
    const closed = new Promise((resolve) => handle.stream.once('close', resolve));
    await handle.close();
    await handle.close();
    await closed;
    assert.equal(chips.line('gpiochip0', 0).holder, null);
    assert.equal(chips.line('gpiochip0', 3).holder, null);
    await assert.rejects(handle.execute(command(CommandOp.GpioGet, 'LED')), /is closed/);
    await open({ lines: 'LED' });
  });

  it('reports a chip that goes away: DeviceError event, then the stream fails', async () => {
    const { handle, events } = await open({ lines: 'BUTTON,LED', 'edge.BUTTON': 'both', 'direction.LED': 'output' });
    const failed = new Promise<Error>((resolve) => handle.stream.once('error', resolve));
    chips.remove('gpiochip0');
    const err = await failed;
    assert.ok(err instanceof DeviceError);
    assert.match(err.message, /exited/);
    const reported = events.find((e) => e.type === DeviceEventType.DeviceError);
    assert.ok(reported);
    assert.match(reported.data.toString(), /No such device/);
  });

  it('says which tool is missing', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'no-gpiod-'));
    try {
      await assert.rejects(new GpioDriver({ toolDir: empty }).list(), (err: unknown) => err instanceof UnavailableError && /gpiodetect not found in .*apt install gpiod/.test(err.message));
    } finally {
      fs.rmSync(empty, { recursive: true });
    }
  });
});

describe('agent/drivers/gpio-driver (the real libgpiod tools on PATH)', () => {
  before(function () {
    try {
      execFileSync('gpiodetect', ['--version'], { stdio: 'ignore' });
    } catch {
      console.log('skipped: gpiodetect (libgpiod tools, Debian package gpiod) is not installed');
      this.skip();
    }
  });

  it('detects the generation real gpiodetect --version reports, and lists exactly the chips it prints', async () => {
    const major = /\(libgpiod\) v(\d+)\./.exec(execFileSync('gpiodetect', ['--version'], { encoding: 'utf8' }));
    assert.ok(major, 'gpiodetect --version names a libgpiod version');
    assert.equal(await new GpiodTools().generation(), Number(major[1]));
    const printed = execFileSync('gpiodetect', { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    const listed = await new GpioDriver().list();
    assert.deepEqual(
      listed.map((d) => d.path),
      printed.map((l) => `/dev/${l.split(' ')[0]}`),
    );
  });

  it('reports what real gpioinfo says about a chip that is not there', async () => {
    await assert.rejects(new GpioDriver().open('/dev/gpiochip-none', config({})), (err: unknown) => err instanceof DeviceError && /gpioinfo .*gpiochip-none/.test(err.message));
  });
});
