/**
 * The schedules leader: the child of the 'schedules' LeaderSeat, on one node at a time. It fires what
 * is due, then sleeps until the earliest next fire time (woken early by a Postgres notification when
 * a schedule is created, changed, paused, resumed or removed), so 10,000 idle schedules cost one
 * query per wake-up, not a poll per second. It is a convenience, not the guarantee: each occurrence
 * is claimed by its key in the transaction that enqueues its job (store.ts), so a deposed leader
 * that fires late, or two leaders at once, cannot fire an occurrence twice.
 */
import type { Behavior } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import type pg from 'pg';
import type { FiringResult, ScheduleStore } from './store.js';

export interface ScheduleCounters {
  fired(schedule: string, count: number): void;
  missed(schedule: string, count: number): void;
}

export interface SchedulerOptions {
  store: ScheduleStore;
  logger: Logger;
  counters: ScheduleCounters;
  /** An occurrence at most this late is on time (fires under every misfire policy). */
  graceMs: number;
  /** Longest sleep, even with nothing due: a missed notification costs at most this. */
  maxSleepMs: number;
  /** A schedule whose firing failed is tried again after this. */
  retryMs: number;
  /** Occurrence rows older than this are pruned (hourly). */
  keepOccurrencesMs: number;
}

type Msg = { t: 'wake' } | { t: 'prune' };

/** Schedules read per query of due ones; a fuller batch is followed by another at once. */
const DUE_BATCH = 1000;
const PRUNE_EVERY_MS = 3_600_000;
/** Schedules fired per transaction: a few round trips per batch instead of per schedule. */
const FIRE_BATCH = 200;

export function schedulerBehavior(options: SchedulerOptions): Behavior<Msg> {
  const { store, logger } = options;
  let listener: pg.PoolClient | undefined;
  let cancelTimer: (() => void) | undefined;
  /** Schedules whose firing failed: not tried again before this time (performance.now()). */
  const failing = new Map<string, number>();
  let stopping = false;
  /**
   * Connections already given back: pg may emit 'error' more than once (or after terminate released
   * it), and a second release throws out of the event handler and takes the node down.
   */
  const released = new WeakSet<pg.PoolClient>();
  const release = (client: pg.PoolClient, err?: Error) => {
    if (released.has(client)) return;
    released.add(client);
    client.release(err);
  };

  async function listen(wake: () => void): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await store.pool.connect();
      const connected = client;
      client.on('notification', wake);
      // A broken connection is dropped; the next round listens again, and maxSleepMs bounds the delay meanwhile.
      client.on('error', (err) => {
        logger.warn({ err: describeError(err) }, 'the schedules notification connection failed; listening again');
        if (listener === connected) listener = undefined;
        release(connected, err);
      });
      await client.query(`LISTEN "${store.channel}"`);
      listener = client;
    } catch (err) {
      if (client) release(client, err as Error);
      logger.warn({ err: describeError(err) }, 'cannot listen for schedule changes; changes are seen within maxSleepMs');
    }
  }

  async function round(): Promise<number> {
    for (;;) {
      const { due, nextAt, dbNow, full } = await store.due(0, DUE_BATCH);
      // Fire times are the database's; this node's clock only measures how long the round took, on the
      // monotonic clock: a wall clock stepped back mid-round would otherwise stretch the sleep to
      // maxSleepMs (seconds missed until then), one stepped forward would shrink it to nothing.
      const localNow = performance.now();
      let fired = 0;
      let again = full;
      // The first query's next time is of the schedules that were not due; those fired now are due again at their plan's next.
      let earliest = nextAt?.getTime();
      const ready = due.filter((id) => (failing.get(id) ?? 0) <= localNow);
      for (let i = 0; i < ready.length && !stopping; i += FIRE_BATCH) {
        const batch = ready.slice(i, i + FIRE_BATCH);
        let results: Map<string, FiringResult>;
        try {
          results = await store.fireMany(batch, options.graceMs);
        } catch (err) {
          // One schedule that cannot fire must not hold the batch back: one by one, to find it.
          logger.warn({ err: describeError(err).message, batch: batch.length }, 'a batched firing failed; firing its schedules one by one');
          results = new Map();
          for (const id of batch) {
            if (stopping) break;
            try {
              results.set(id, await store.fire(id, options.graceMs));
            } catch (e) {
              failing.set(id, performance.now() + options.retryMs);
              logger.error({ schedule: id, err: describeError(e) }, `firing the schedule failed; trying again in ${options.retryMs} ms`);
              await store.recordFailure(id, describeError(e).message).catch(() => undefined);
            }
          }
        }
        for (const [id, result] of results) {
          failing.delete(id);
          fired++;
          if (result.enqueued.length) options.counters.fired(id, result.enqueued.length);
          if (result.missed) {
            options.counters.missed(id, result.missed);
            logger.warn({ schedule: id, missed: result.missed }, 'occurrences missed (misfire policy)');
          }
          if (result.more) again = true;
          if (result.next && !result.idle) earliest = Math.min(earliest ?? Infinity, result.next.getTime());
        }
      }
      if (again && fired > 0 && !stopping) continue;
      let sleep = earliest !== undefined ? earliest - dbNow.getTime() - (performance.now() - localNow) : options.maxSleepMs;
      for (const retryAt of failing.values()) sleep = Math.min(sleep, retryAt - performance.now());
      return Math.max(1, Math.min(options.maxSleepMs, sleep));
    }
  }

  return {
    async init(ctx) {
      await listen(() => ctx.self.cast({ t: 'wake' }));
      ctx.sendEvery(PRUNE_EVERY_MS, { t: 'prune' });
      ctx.self.cast({ t: 'wake' });
      logger.info('leading the schedules');
    },
    async handle(msg, ctx) {
      if (msg.t === 'prune') {
        const pruned = await store.prune(options.keepOccurrencesMs).catch((err) => {
          logger.warn({ err: describeError(err) }, 'pruning old schedule occurrences failed');
          return 0;
        });
        if (pruned) logger.debug({ pruned }, 'pruned old schedule occurrences');
        return;
      }
      cancelTimer?.();
      if (!listener) await listen(() => ctx.self.cast({ t: 'wake' }));
      let sleep: number;
      try {
        sleep = await round();
      } catch (err) {
        logger.warn({ err: describeError(err) }, `reading due schedules failed; trying again in ${options.retryMs} ms`);
        sleep = options.retryMs;
      }
      cancelTimer = ctx.sendAfter(sleep, { t: 'wake' });
    },
    async terminate() {
      stopping = true;
      const client = listener;
      listener = undefined;
      if (client) {
        await client.query(`UNLISTEN "${store.channel}"`).catch(() => undefined);
        release(client);
      }
    },
  };
}
