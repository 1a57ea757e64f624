import { microtask } from './internals.js';

/**
 * Items run together on one microtask: the first `add` of a turn queues the task, later ones join
 * it. For per-item work that many items need at once (a stop per actor, a perform per job started
 * in a burst): one promise job for the burst instead of one each. Items run in the order added;
 * one added while the batch runs waits for the next microtask, as it would on its own. A throw
 * from `run` goes to `failed` for that item only: the others still run.
 */
export class MicrotaskBatch<T> {
  // Two arrays taken in turn: the one being run is not the one being added to. Each keeps its slots
  // (up to KEPT) once run, with `count` as its length: reset to no length, it grew a new backing
  // store for every burst (a worker started per job, a stop per job).
  private items: (T | undefined)[] = [];
  private count = 0;
  private spare: (T | undefined)[] = [];

  constructor(
    private readonly run: (item: T) => void,
    private readonly failed: (item: T, err: unknown) => void,
  ) {}

  add(item: T): void {
    const at = this.count++;
    const items = this.items;
    if (at < items.length) items[at] = item;
    else items.push(item);
    if (at === 0) microtask(this.runAll);
  }

  private readonly runAll = (): void => {
    const list = this.items;
    const n = this.count;
    this.items = this.spare;
    this.count = 0;
    this.spare = list;
    for (let i = 0; i < n; i++) {
      const item = list[i]!;
      list[i] = undefined;
      try {
        this.run(item);
      } catch (err) {
        this.failed(item, err);
      }
    }
    if (list.length > KEPT) list.length = 0;
  };
}

/** Slots a run list keeps for the next burst; beyond this it lets them go. */
const KEPT = 4096;
