import { microtask } from './internals.js';

/**
 * Items run together on one microtask: the first `add` of a turn queues the task, later ones join
 * it. For per-item work that many items need at once (a stop per actor, a perform per job started
 * in a burst): one promise job for the burst instead of one each. Items run in the order added;
 * one added while the batch runs waits for the next microtask, as it would on its own. A throw
 * from `run` goes to `failed` for that item only: the others still run.
 */
export class MicrotaskBatch<T> {
  // Two arrays taken in turn: the one being run is not the one being added to.
  private items: T[] = [];
  private spare: T[] = [];

  constructor(
    private readonly run: (item: T) => void,
    private readonly failed: (item: T, err: unknown) => void,
  ) {}

  add(item: T): void {
    if (this.items.push(item) === 1) microtask(this.runAll);
  }

  private readonly runAll = (): void => {
    const list = this.items;
    this.items = this.spare;
    this.spare = list;
    for (let i = 0; i < list.length; i++) {
      const item = list[i]!;
      try {
        this.run(item);
      } catch (err) {
        this.failed(item, err);
      }
    }
    list.length = 0;
  };
}
