/**
 * Cron expressions in a time zone, over croner (no dependencies, no install scripts, engines
 * node >= 18; it takes 5 fields, 6 with seconds first, `@hourly`-style names and IANA zones).
 *
 * The daylight-saving rule, the same for every schedule:
 *  - a local time that does not exist (spring forward, e.g. 02:30 on the night 02:00 becomes 03:00)
 *    runs once, at the first valid instant after the gap (03:00 local); the occurrences of the gap
 *    and the one at that instant are a single run;
 *  - a local time that happens twice (fall back, e.g. 01:30 on the night 02:00 becomes 01:00) runs
 *    once, at its first instance. This holds for wildcard hours too: `0 * * * *` runs 24 times that
 *    day, not 25, since 01:00 local is one local time.
 * croner already does the first; for the second it runs wildcard-hour patterns on elapsed time
 * (both 01:00s), so `nextAfter` drops an instant whose local time already happened just before.
 */
import { Cron } from 'croner';
import { ValidationError } from '@partita/core';

export interface CronSchedule {
  /** The next fire time strictly after `after`, or undefined when the pattern never fires again. */
  nextAfter(after: Date): Date | undefined;
}

const HOUR = 3_600_000;
/** Clocks go back by at most this much in any zone (Lord Howe's 30 min, the usual hour, 2 h at most). */
const LONGEST_SHIFT = 3 * HOUR;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** The wall-clock time of `ms` in `timezone`, read as if it were UTC (so differences are offsets). */
export function wallClockMs(ms: number, timezone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timezone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!) + (ms % 1000);
}

/** Checks an IANA time zone name (Intl knows the host's tz database). */
export function assertTimezone(timezone: string, path = 'timezone'): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ValidationError(`"${timezone}" is not an IANA time zone; use a name such as "UTC" or "Europe/Berlin"`, path);
  }
}

/**
 * True when the local time of `ms` already happened earlier the same night (the second pass of a
 * fall-back): the offset a few hours before was larger, and going back by the difference lands on
 * the same wall-clock time.
 */
export function isRepeatedLocalTime(ms: number, timezone: string): boolean {
  if (timezone === 'UTC' || timezone === 'Etc/UTC') return false;
  const wall = wallClockMs(ms, timezone);
  const offset = wall - ms;
  const before = ms - LONGEST_SHIFT;
  const shift = wallClockMs(before, timezone) - before - offset;
  return shift > 0 && wallClockMs(ms - shift, timezone) === wall;
}

/** Parses `pattern` for `timezone`; a ValidationError at `path` says what is wrong. */
export function parseCron(pattern: string, timezone = 'UTC', path = 'cron'): CronSchedule {
  if (typeof pattern !== 'string' || pattern.trim().length === 0) {
    throw new ValidationError('must be a cron expression such as "*/5 * * * *", "0 30 9 * * 1-5" (seconds first) or "@hourly"', path);
  }
  assertTimezone(timezone, path.replace(/cron$/, 'timezone'));
  let cron: Cron;
  try {
    cron = new Cron(pattern, { timezone, paused: true, mode: '5-or-6-parts' });
  } catch (err) {
    throw new ValidationError(
      `"${pattern}" is not a cron expression (${(err as Error).message}); use 5 fields (minute hour day month weekday), 6 with seconds first, or @yearly/@monthly/@weekly/@daily/@hourly`,
      path,
    );
  }
  if (cron.nextRun(new Date()) === null) throw new ValidationError(`"${pattern}" never fires again`, path);
  return {
    nextAfter(after: Date): Date | undefined {
      let from = after;
      // A bounded walk: only a repeated local time is skipped, and a night has few of them.
      for (let i = 0; i < 100_000; i++) {
        const next = cron.nextRun(from);
        if (!next) return undefined;
        if (!isRepeatedLocalTime(next.getTime(), timezone)) return next;
        from = next;
      }
      return undefined;
    },
  };
}

/** Fire times in (after, until], at most `limit` of them, oldest first. */
export function occurrencesBetween(cron: CronSchedule, after: Date, until: Date, limit: number): Date[] {
  const out: Date[] = [];
  let t = cron.nextAfter(after);
  while (t && t.getTime() <= until.getTime() && out.length < limit) {
    out.push(t);
    t = cron.nextAfter(t);
  }
  return out;
}
