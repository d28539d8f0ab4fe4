/**
 * A lock for workflow code: one holder at a time (a symbol's candle step or emergency close, each
 * reading the engine state, awaiting orders and writing it back; the portfolio's kill switch
 * trips). Waiters go in arrival order, and the lock passes straight from the one leaving to the
 * next (it is never free in between), so two waiters can never both get in.
 *
 * Written here rather than taken from async-mutex (which this replaces): the Temporal SDK records a
 * source-mapped stack trace for every promise workflow code creates, about 0.1 ms each on this
 * project's machine, and async-mutex's runExclusive creates about ten per call through its
 * compiled __awaiter; this lock creates one when it is free, which is every candle but those an
 * emergency close overlaps (bench: npm run bench -- workflow-replay).
 */
export class WorkflowLock {
  private busy = false;
  private readonly waiters: Array<() => void> = [];

  /** Runs `fn` once every earlier caller's `fn` has settled; settles as `fn` does. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const release = (): void => {
      const next = this.waiters.shift();
      if (next) next();
      else this.busy = false;
    };
    const done = (value: T): T => {
      release();
      return value;
    };
    const failed = (err: unknown): never => {
      release();
      throw err;
    };
    if (!this.busy) {
      this.busy = true;
      let running: Promise<T>;
      try {
        running = fn();
      } catch (err) {
        release();
        throw err;
      }
      return running.then(done, failed);
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve)).then(fn).then(done, failed);
  }

  get locked(): boolean {
    return this.busy;
  }
}
