import { performance } from 'node:perf_hooks';

/**
 * How long a count over the live jobs (metrics, roll calls) is reused: fifty times what it took, so
 * counting stays at most ~2 % of one backend's time however often it is asked and however deep the
 * queues (a count over a million live jobs takes ~0.3 s: reused ~15 s).
 */
export const COUNT_REUSE_FACTOR = 50;

export interface ReusedReadOptions {
  /** A value is reused for at least this long. */
  minMs: number;
  /**
   * And for this many times what reading it took: a read that cost 0.3 s is reused for
   * `0.3 × factor` s, so reading stays at most 1/factor of one reader's time however often callers
   * ask and however much the read has to cover (a count over a million rows).
   */
  factor: number;
}

/**
 * A read whose cost grows with the data (a count over every live job) shared by every caller that
 * asks while it is fresh or in flight: one read at a time, and a read a caller stopped waiting for
 * still finishes and serves the next callers. A failed read is not kept: the next call reads again.
 */
export class ReusedRead<T> {
  #value: { at: number; value: T; reuseMs: number } | undefined;
  #reading: Promise<T> | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly options: ReusedReadOptions,
  ) {}

  /** The fresh value, else the read in flight, else a new read. */
  get(): Promise<T> {
    const kept = this.#value;
    if (kept && Date.now() - kept.at < kept.reuseMs) return Promise.resolve(kept.value);
    return (this.#reading ??= this.#readNow());
  }

  /** The last value read, however old (undefined before the first read ends). */
  get last(): T | undefined {
    return this.#value?.value;
  }

  async #readNow(): Promise<T> {
    const began = performance.now();
    try {
      const value = await this.read();
      const tookMs = performance.now() - began;
      this.#value = { at: Date.now(), value, reuseMs: Math.max(this.options.minMs, tookMs * this.options.factor) };
      return value;
    } finally {
      this.#reading = undefined;
    }
  }
}
