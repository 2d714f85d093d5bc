import type { AppClient } from './app-client';

/** A binding policy (the part inside `policy: { }`) that shares an AT device: one command per \r, answered up to OK. */
export const AT_POLICY = `sharing: shared, requestTerminator: "\\r", response: { terminator: "OK\\r\\n" }, queueDepth: 64, perConsumerQueue: 4`;

/** An app that sends AT commands, keeping `window` of them outstanding, and checks every answer byte for byte. */
export class AtApp {
  sent = 0;
  answered = 0;
  private expected: string[] = [];
  private buffer = '';
  mismatch: string | undefined;
  private stopped = false;

  constructor(
    private readonly app: AppClient,
    private readonly id: string,
    window: number,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {
    app.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    for (let i = 0; i < window; i++) this.next();
  }

  private next(): void {
    if (this.stopped || this.sent >= this.limit) return;
    const text = `${this.id}-${this.sent++}`;
    this.expected.push(`\r\n+ECHO: ${text}\r\nOK\r\n`);
    this.app.socket.write(`AT+ECHO=${text}\r`);
  }

  private onData(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    for (;;) {
      const want = this.expected[0];
      if (want === undefined || this.buffer.length < want.length) {
        if (want === undefined && this.buffer.length > 0) this.mismatch ??= `unexpected ${JSON.stringify(this.buffer)}`;
        return;
      }
      const got = this.buffer.slice(0, want.length);
      if (got !== want) this.mismatch ??= `expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
      this.buffer = this.buffer.slice(want.length);
      this.expected.shift();
      this.answered++;
      this.next();
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
