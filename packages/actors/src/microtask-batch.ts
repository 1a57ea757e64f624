import { microtask } from './internals.js';
import { TurnBuffer } from './turn-buffer.js';

/**
 * Items run together on one microtask: the first `add` of a turn queues the task, later ones join
 * it. For per-item work that many items need at once (a stop per actor, a perform per job started
 * in a burst): one promise job for the burst instead of one each. Items run in the order added;
 * one added while the batch runs waits for the next microtask, as it would on its own. A throw
 * from `run` goes to `failed` for that item only: the others still run.
 */
export class MicrotaskBatch<T> {
  private readonly turns = new TurnBuffer<T>(KEPT);

  constructor(
    private readonly run: (item: T) => void,
    private readonly failed: (item: T, err: unknown) => void,
  ) {}

  add(item: T): void {
    if (this.turns.add(item)) microtask(this.runAll);
  }

  private readonly runEach = (items: readonly (T | undefined)[], n: number): void => {
    for (let i = 0; i < n; i++) {
      const item = items[i]!;
      try {
        this.run(item);
      } catch (err) {
        this.failed(item, err);
      }
    }
  };

  private readonly runAll = (): void => this.turns.take(this.runEach);
}

/** Slots a run list keeps for the next burst; beyond this it lets them go. */
const KEPT = 4096;
