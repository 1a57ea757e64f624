/**
 * Idle adverts and hand-offs. An engine whose queue has free slots and found nothing to claim
 * advertises the free slots; a client may then enqueue straight into its hands (a hand-off).
 * An advert goes out again when a hand-off used it, the free slots changed, or it is getting old,
 * and is taken back (free 0) when the queue can no longer take hand-offs. Pure bookkeeping, fed the time.
 */
import { IDLE_ADVERT_TTL_MS } from '@partita/protocol';

/** An idle queue's advert is repeated this often (clients trust one for IDLE_ADVERT_TTL_MS). */
export const ADVERT_REFRESH_MS = 1000;
/** Hand-off ids remembered against repeated messages. */
export const RECENT_HANDOFFS = 10_000;

/** The last advert of a queue: its free slots (0: none out, or retracted), when it went out, hand-offs received since. */
interface Advert {
  free: number;
  at: number;
  handedOff: number;
}

export interface AdvertChange {
  queue: string;
  free: number;
}

export class Adverts {
  private readonly byQueue = new Map<string, Advert>();
  /** Ids of the latest hand-offs, oldest first (a Set keeps insertion order). */
  private readonly recent = new Set<string>();

  constructor(queues: Iterable<string>) {
    for (const queue of queues) this.byQueue.set(queue, { free: 0, at: 0, handedOff: 0 });
  }

  /**
   * A hand-off of this job arrived: false when one already did (a repeated message must not run
   * the job again after it finished here, or after it went back and another node claimed it).
   */
  firstHandoff(id: string, queue: string): boolean {
    if (this.recent.has(id)) return false;
    this.recent.add(id);
    if (this.recent.size > RECENT_HANDOFFS) this.recent.delete(this.recent.values().next().value!);
    const advert = this.byQueue.get(queue);
    if (advert) advert.handedOff++;
    return true;
  }

  /** A claim found the queue empty with `free` slots: true when an advert of them should go out now. */
  offer(queue: string, free: number, now: number): boolean {
    const a = this.byQueue.get(queue);
    if (!a || free <= 0 || (a.handedOff === 0 && a.free === free && now - a.at < ADVERT_REFRESH_MS)) return false;
    a.free = free;
    a.at = now;
    a.handedOff = 0;
    return true;
  }

  /**
   * Adverts still out for queues that can no longer take a hand-off (`takes` says which can), each
   * now marked taken back. An advert whose slots hand-offs used up, or that clients no longer
   * trust, needs no retraction.
   */
  retract(now: number, takes: (queue: string, now: number) => boolean): AdvertChange[] | undefined {
    let retracted: AdvertChange[] | undefined;
    for (const [queue, a] of this.byQueue) {
      if (a.free <= a.handedOff || now - a.at > IDLE_ADVERT_TTL_MS || takes(queue, now)) continue;
      a.free = 0;
      (retracted ??= []).push({ queue, free: 0 });
    }
    return retracted;
  }
}
