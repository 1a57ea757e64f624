import { describeError, type Logger } from '@partita/core';
import type { Bus, MessageInfo, Unsubscribe } from '@partita/nats';
import { TERMINAL_EVENT_KINDS, eventMessageKinds, jobEventSubject, jobEventsOf, type JobEvent } from '@partita/protocol';

/** How long an idle shared subscription stays, so back-to-back result() calls do not resubscribe. */
const LINGER_MS = 5000;

interface Entry {
  ready: Promise<void>;
  offs: Unsubscribe[];
  waiters: Map<string, Set<(event: JobEvent) => void>>;
  refs: number;
  linger: NodeJS.Timeout | undefined;
  closed: boolean;
}

/**
 * Terminal events (completed, failed, cancelled) for client.result(): one shared set of
 * subscriptions per partition/queue/type however many results are awaited, dispatched by job id.
 */
export class ResultWatch {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  /**
   * Calls `onEvent` with the terminal events of the job; resolves once the subscriptions are live
   * (so nothing published after that is missed). The returned function stops watching.
   */
  async watch(
    job: { id: string; partition: string; queue: string; type: string },
    onEvent: (event: JobEvent) => void,
  ): Promise<() => void> {
    const key = `${job.partition}\u0000${job.queue}\u0000${job.type}`;
    let entry = this.entries.get(key);
    if (!entry || entry.closed) {
      entry = this.open(key, job);
      this.entries.set(key, entry);
    }
    const e = entry;
    e.refs++;
    if (e.linger) {
      clearTimeout(e.linger);
      e.linger = undefined;
    }
    let set = e.waiters.get(job.id);
    if (!set) e.waiters.set(job.id, (set = new Set()));
    set.add(onEvent);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const s = e.waiters.get(job.id);
      s?.delete(onEvent);
      if (s && s.size === 0) e.waiters.delete(job.id);
      if (--e.refs === 0 && !e.closed) {
        e.linger = setTimeout(() => this.drop(key, e), LINGER_MS);
        e.linger.unref();
      }
    };
    try {
      await e.ready;
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.entries()];
    this.entries.clear();
    await Promise.all(all.map(([key, e]) => this.drop(key, e)));
  }

  private open(key: string, job: { partition: string; queue: string; type: string }): Entry {
    const entry: Entry = { ready: Promise.resolve(), offs: [], waiters: new Map(), refs: 0, linger: undefined, closed: false };
    const handler = (data: unknown, msg: MessageInfo) => {
      for (const event of jobEventsOf(data, msg.kind)) {
        const set = entry.waiters.get(event.id);
        if (set) for (const fn of [...set]) fn(event);
      }
    };
    entry.ready = (async () => {
      try {
        for (const kind of TERMINAL_EVENT_KINDS) {
          const subject = jobEventSubject(this.bus.cluster, job.partition, job.queue, job.type, kind);
          entry.offs.push(await this.bus.subscribe(subject, handler, { kinds: eventMessageKinds([kind]) }));
        }
      } catch (err) {
        entry.closed = true;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        await Promise.all(entry.offs.map((off) => off().catch(() => undefined)));
        throw err;
      }
      if (this.closed) {
        // close() ran while subscribing: it skipped these, so undo them here.
        entry.closed = true;
        await Promise.all(entry.offs.splice(0).map((off) => off().catch(() => undefined)));
      }
    })();
    entry.ready.catch(() => undefined);
    return entry;
  }

  private async drop(key: string, entry: Entry): Promise<void> {
    if (entry.linger) clearTimeout(entry.linger);
    entry.linger = undefined;
    if (entry.refs > 0 && !this.closed) return;
    entry.closed = true;
    if (this.entries.get(key) === entry) this.entries.delete(key);
    await entry.ready.catch(() => undefined);
    const offs = entry.offs.splice(0);
    await Promise.all(
      offs.map((off) => off().catch((err) => this.logger.debug({ err: describeError(err).message }, 'unsubscribe failed'))),
    );
  }
}
