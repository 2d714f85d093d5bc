/** Exponential backoff with full jitter, the way gRPC reconnects: each delay in [0, min(max, initial·2^n)]. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number = 250,
    private readonly maxMs: number = 5000,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(this.initialMs / 2, Math.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}
