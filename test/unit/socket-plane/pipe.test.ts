import { strict as assert } from 'node:assert';
import { Duplex } from 'node:stream';
import type { ErrorPayload } from '../../../src/socket-plane/control-messages';
import type { CommandRequest, CommandResult } from '../../../src/socket-plane/device-command';
import type { DeviceEvent } from '../../../src/socket-plane/device-event';
import { INITIAL_WINDOW } from '../../../src/socket-plane/frame';
import { pipeSession } from '../../../src/socket-plane/pipe';
import { Session, type SessionTransport } from '../../../src/socket-plane/session';

/** A transport that only records the credit the session grants back. */
class CreditRecorder implements SessionTransport {
  granted = 0;
  sendData(): void {}
  sendWindow(_session: number, increment: number): void {
    this.granted += increment;
  }
  sendClose(): void {}
  sendReset(_session: number, _err: ErrorPayload): void {}
  sendEvent(_session: number, _event: DeviceEvent): boolean {
    return true;
  }
  sendCommand(_session: number, _command: CommandRequest): void {}
  sendCommandResult(_session: number, _result: CommandResult): void {}
  released(): void {}
}

/** A sink that records each _write and _writev; `hold` keeps every write's callback until release(). */
class RecordingSink extends Duplex {
  readonly calls: string[][] = [];
  private held: Array<() => void> = [];

  constructor(private readonly hold = false) {
    super({ writableHighWaterMark: 16 });
  }

  release(): void {
    for (const cb of this.held.splice(0)) cb();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.calls.push([chunk.toString()]);
    if (this.hold) this.held.push(() => callback());
    else callback();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.calls.push(chunks.map((c) => c.chunk.toString()));
    if (this.hold) this.held.push(() => callback());
    else callback();
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('socket-plane/pipe: session data into a stream', () => {
  it('writes a lone chunk at once, and the rest of the same tick in one writev after it', async () => {
    const session = new Session(1, new CreditRecorder());
    const sink = new RecordingSink();
    pipeSession(session, sink);
    session.receiveData(Buffer.from('a'));
    assert.deepEqual(sink.calls, [['a']], 'the first chunk is not held back');
    session.receiveData(Buffer.from('b'));
    session.receiveData(Buffer.from('c'));
    assert.deepEqual(sink.calls, [['a']]);
    await tick();
    assert.deepEqual(sink.calls, [['a'], ['b', 'c']]);
    session.receiveData(Buffer.from('d'));
    assert.deepEqual(sink.calls, [['a'], ['b', 'c'], ['d']], 'a new tick starts a new batch');
  });

  it('grants credit only for bytes the stream took, corked or not', async () => {
    const transport = new CreditRecorder();
    const session = new Session(1, transport);
    const sink = new RecordingSink(true);
    pipeSession(session, sink);
    const chunk = Buffer.alloc(INITIAL_WINDOW / 8, 0x61);
    for (let i = 0; i < 8; i++) session.receiveData(chunk);
    await tick();
    assert.equal(transport.granted, 0, 'the sink has not taken any of it');
    sink.release();
    await tick();
    sink.release();
    await tick();
    assert.equal(transport.granted, INITIAL_WINDOW, 'all of it once the sink drained');
  });
});
