/**
 * What one firing of a schedule does, as a pure function of the schedule, the walk's cursor and
 * the database's clock: which occurrences to fire, how many count as missed, where the cursor goes
 * and when the schedule is next due. The store runs it under the schedule's row lock.
 */
import { occurrencesBetween, type CronSchedule } from './cron.js';

export type MisfirePolicy = 'skip' | 'runOnce' | 'backfill';
export type OverlapPolicy = 'skip' | 'allow';

/** At most this many occurrences are looked at per firing; a longer backlog is walked over several. */
export const WALK_LIMIT = 10_000;
/** At most this many jobs are enqueued per firing (one transaction); backfill continues in the next. */
export const FIRE_LIMIT = 500;

export interface PlanInput {
  cron: CronSchedule;
  misfire: MisfirePolicy;
  /** backfill: missed occurrences older than this (before now) are not run. */
  backfillMs: number;
  /** An occurrence at most this late is on time: it fires under every policy. */
  graceMs: number;
  /** Every occurrence at or before this was fired or counted missed. */
  accountedUntil: Date;
  now: Date;
}

export interface Plan {
  /** Occurrences to fire, oldest first. */
  fire: Date[];
  /** Occurrences passed over for good (the metric and missed_count). */
  missed: number;
  /** The new cursor. */
  accountedUntil: Date;
  /** When the schedule is due next: the first occurrence after the cursor (may be ≤ now: more to walk). */
  next: Date | undefined;
}

export function planFiring(input: PlanInput): Plan {
  const { cron, misfire, now } = input;
  const due = occurrencesBetween(cron, input.accountedUntil, now, WALK_LIMIT + 1);
  const truncated = due.length > WALK_LIMIT;
  const seen = truncated ? due.slice(0, WALK_LIMIT) : due;
  if (seen.length === 0) return { fire: [], missed: 0, accountedUntil: input.accountedUntil, next: cron.nextAfter(input.accountedUntil) };
  const nowMs = now.getTime();
  let fire: Date[];
  if (misfire === 'backfill') {
    const from = nowMs - input.backfillMs;
    fire = seen.filter((t) => t.getTime() >= from || nowMs - t.getTime() <= input.graceMs);
  } else {
    // Every occurrence within the grace is on time, not a misfire: a firing the leader ran a little
    // late (a busy node, a take-over) that finds two occurrences of a per-second schedule fires both.
    // Only when none is on time does the policy decide: runOnce runs the latest, skip none. The latest
    // occurrence is only in `seen` when the walk was not cut short (and then none is on time: a walk
    // of WALK_LIMIT occurrences spans far more than any grace).
    fire = seen.filter((t) => nowMs - t.getTime() <= input.graceMs);
    if (fire.length === 0 && misfire === 'runOnce' && !truncated) fire = [seen[seen.length - 1]!];
  }
  let last = seen[seen.length - 1]!;
  if (fire.length > FIRE_LIMIT) {
    fire = fire.slice(0, FIRE_LIMIT);
    last = fire[fire.length - 1]!;
  }
  const lastMs = last.getTime();
  const passed = seen.filter((t) => t.getTime() <= lastMs).length;
  return { fire, missed: passed - fire.length, accountedUntil: last, next: cron.nextAfter(last) };
}
