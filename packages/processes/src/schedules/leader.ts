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
import type { ScheduleStore } from './store.js';

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

export function schedulerBehavior(options: SchedulerOptions): Behavior<Msg> {
  const { store, logger } = options;
  let listener: pg.PoolClient | undefined;
  let cancelTimer: (() => void) | undefined;
  /** Schedules whose firing failed: not tried again before this time (this node's clock). */
  const failing = new Map<string, number>();
  let stopping = false;

  async function listen(wake: () => void): Promise<void> {
    try {
      const client = await store.pool.connect();
      client.on('notification', wake);
      // A broken connection is dropped; the next round listens again, and maxSleepMs bounds the delay meanwhile.
      client.on('error', (err) => {
        logger.warn({ err: describeError(err) }, 'the schedules notification connection failed; listening again');
        if (listener === client) listener = undefined;
        client.release(err);
      });
      await client.query(`LISTEN "${store.channel}"`);
      listener = client;
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'cannot listen for schedule changes; changes are seen within maxSleepMs');
    }
  }

  async function round(): Promise<number> {
    for (;;) {
      const { due, nextAt, dbNow, full } = await store.due(0, DUE_BATCH);
      const localNow = Date.now();
      let fired = 0;
      let again = full;
      // The first query's next time is of the schedules that were not due; those fired now are due again at their plan's next.
      let earliest = nextAt?.getTime();
      for (const id of due) {
        if ((failing.get(id) ?? 0) > localNow || stopping) continue;
        try {
          const result = await store.fire(id, options.graceMs);
          failing.delete(id);
          fired++;
          if (result.enqueued.length) options.counters.fired(id, result.enqueued.length);
          if (result.missed) {
            options.counters.missed(id, result.missed);
            logger.warn({ schedule: id, missed: result.missed }, 'occurrences missed (misfire policy)');
          }
          if (result.more) again = true;
          if (result.next && !result.idle) earliest = Math.min(earliest ?? Infinity, result.next.getTime());
        } catch (err) {
          failing.set(id, Date.now() + options.retryMs);
          logger.error({ schedule: id, err: describeError(err) }, `firing the schedule failed; trying again in ${options.retryMs} ms`);
          await store.recordFailure(id, describeError(err).message).catch(() => undefined);
        }
      }
      if (again && fired > 0 && !stopping) continue;
      let sleep = earliest !== undefined ? earliest - dbNow.getTime() - (Date.now() - localNow) : options.maxSleepMs;
      for (const retryAt of failing.values()) sleep = Math.min(sleep, retryAt - Date.now());
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
        client.release();
      }
    },
  };
}
