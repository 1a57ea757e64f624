import { performance } from 'node:perf_hooks';

/**
 * What the no-op handler of every system calls, and the only thing it does: it counts handler
 * starts, remembers when the first one happened, and wakes a latency sample waiting on its `seq`.
 * Both systems run exactly this function, so the handler cost is identical.
 */
export class Probe {
  started = 0;
  firstStartAt: number | undefined;
  lastStartAt: number | undefined;
  private target = Infinity;
  private onTarget: (() => void) | undefined;
  private readonly waiters = new Map<number, (at: number) => void>();
  /** Handler calls whose payload `{ n }` was seen before: a job run twice. */
  duplicates = 0;
  private seen: Uint8Array | undefined;

  hit(payload: unknown): void {
    const now = performance.now();
    this.started++;
    this.firstStartAt ??= now;
    this.lastStartAt = now;
    const seq = typeof payload === 'object' && payload !== null ? (payload as { seq?: unknown }).seq : undefined;
    const n = typeof payload === 'object' && payload !== null ? (payload as { n?: unknown }).n : undefined;
    if (typeof n === 'number' && this.seen && n >= 0 && n < this.seen.length) {
      if (this.seen[n]) this.duplicates++;
      else this.seen[n] = 1;
    }
    if (typeof seq === 'number') {
      const waiter = this.waiters.get(seq);
      if (waiter) {
        this.waiters.delete(seq);
        waiter(now);
      }
    }
    if (this.started >= this.target && this.onTarget) {
      const fire = this.onTarget;
      this.onTarget = undefined;
      fire();
    }
  }

  /** Tracks payloads `{ n }` for n < count, to count jobs run more than once. */
  track(count: number): void {
    this.seen = new Uint8Array(count);
    this.duplicates = 0;
  }

  /** Jobs `{ n }` (n < tracked count) whose handler started at least once. */
  distinct(): number {
    let d = 0;
    for (const v of this.seen ?? []) d += v;
    return d;
  }

  reset(): void {
    this.started = 0;
    this.duplicates = 0;
    this.seen = undefined;
    this.firstStartAt = undefined;
    this.lastStartAt = undefined;
    this.target = Infinity;
    this.onTarget = undefined;
    this.waiters.clear();
  }

  /** Resolves true once `count` handlers have started, false after timeoutMs. */
  waitForStarts(count: number, timeoutMs: number): Promise<boolean> {
    if (this.started >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onTarget = undefined;
        this.target = Infinity;
        resolve(false);
      }, timeoutMs);
      this.target = count;
      this.onTarget = () => {
        clearTimeout(timer);
        this.target = Infinity;
        resolve(true);
      };
    });
  }

  /** Registers interest in the job carrying `{ seq }`; resolves with its handler start time (performance.now()), or undefined on timeout. */
  expect(seq: number, timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(seq);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(seq, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/** The one no-op handler every system runs. */
export function noopHandler(probe: Probe): (payload: unknown) => Promise<undefined> {
  return async (payload: unknown) => {
    probe.hit(payload);
    return undefined;
  };
}
