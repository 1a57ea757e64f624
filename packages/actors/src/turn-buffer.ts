/**
 * Items gathered into one array while the other is consumed, the two taken in turn: an item added
 * while a turn is consumed waits for the next one. Each array keeps its slots from turn to turn (up to
 * `kept`), with a count as its length: an array reset to no length, or a new one per turn, grew a new
 * backing store for every burst (a worker started per job, two job events per job).
 */
export class TurnBuffer<T> {
  private items: (T | undefined)[] = [];
  private count = 0;
  private spare: (T | undefined)[] = [];

  constructor(private readonly kept: number) {}

  /** Adds an item; true when it is the first of a turn (the caller schedules the turn's consumer). */
  add(item: T): boolean {
    const at = this.count++;
    const items = this.items;
    if (at < items.length) items[at] = item;
    else items.push(item);
    return at === 0;
  }

  /** Hands the turn's `n` items (`items[0, n)`) to `consume`; their slots are cleared afterwards, whatever it throws. */
  take(consume: (items: readonly (T | undefined)[], n: number) => void): void {
    const list = this.items;
    const n = this.count;
    this.items = this.spare;
    this.count = 0;
    this.spare = list;
    try {
      consume(list, n);
    } finally {
      list.fill(undefined, 0, n);
      if (list.length > this.kept) list.length = 0;
    }
  }
}
