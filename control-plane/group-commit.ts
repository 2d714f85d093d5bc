import { DeviceMeshError } from '../src/errors';

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<J, R> {
  job: J;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: jobs run in batches, one at a time. Jobs submitted while a batch is being
 * committed wait and form the next batch, so a burst of changes costs a handful of durable
 * writes instead of one each, and an isolated change is not delayed by more than a turn of the
 * event loop. `commitBatch` answers each job of its batch; if it throws, every job of the batch
 * fails with that error.
 */
export class GroupCommit<J, R> {
  private waiting: Waiting<J, R>[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly commitBatch: (jobs: readonly J[]) => Promise<Outcome<R>[]>) {}

  /** Resolves or rejects once the batch holding this job is committed. */
  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Resolves once every job submitted so far has been answered. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Jobs submitted in the same turn of the event loop share the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      let outcomes: Outcome<R>[];
      try {
        outcomes = await this.commitBatch(batch.map((w) => w.job));
      } catch (error) {
        outcomes = batch.map(() => ({ ok: false, error }));
      }
      batch.forEach((w, i) => {
        const outcome = outcomes[i] ?? { ok: false, error: new DeviceMeshError('INTERNAL', 'group commit: a job of the batch got no outcome') };
        if (outcome.ok) w.resolve(outcome.value);
        else w.reject(outcome.error);
      });
    }
    this.running = undefined;
  }
}
