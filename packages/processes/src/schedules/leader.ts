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
import { ChannelListener } from '@partita/postgres';
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
  let listener: ChannelListener | undefined;
  let cancelTimer: (() => void) | undefined;
  /** Schedules whose firing failed: not tried again before this time (performance.now()). */
  const failing = new Map<string, number>();
  let stopping = false;

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
      // Woken by every change of a schedule; after a lost connection too, for the changes it missed.
      // Without it, changes are seen within maxSleepMs.
      const wake = () => ctx.self.cast({ t: 'wake' });
      listener = await ChannelListener.start({
        connection: store.pool.options,
        channel: store.channel,
        logger,
        onPayload: wake,
        onReconnected: wake,
        fallback: 'schedule changes are seen within maxSleepMs',
      });
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
      await listener?.close();
      listener = undefined;
    },
  };
}
