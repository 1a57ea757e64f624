/**
 * Cron parsing and the daylight-saving rule, on fixed dates in two zones with opposite seasons'
 * dates (Europe/Berlin and America/New_York, 2026): a skipped local time runs once at the first
 * valid instant, a repeated local time runs once (its first instance).
 */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { isRepeatedLocalTime, occurrencesBetween, parseCron } from '../src/index.js';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());
const between = (cron: string, tz: string, from: string, to: string) =>
  iso(occurrencesBetween(parseCron(cron, tz), new Date(from), new Date(to), 1000));

test('Berlin spring forward (2026-03-29 02:00 → 03:00): 02:30 runs once, at 03:00 CEST', (t) => {
  t.deepEqual(between('30 2 * * *', 'Europe/Berlin', '2026-03-27T12:00:00Z', '2026-03-30T12:00:00Z'), [
    '2026-03-28T01:30:00.000Z', // 02:30 CET
    '2026-03-29T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST, the first valid instant
    '2026-03-30T00:30:00.000Z', // 02:30 CEST
  ]);
  // Every 30 minutes: 02:00 and 02:30 do not exist, and with 03:00 itself they are one run.
  t.deepEqual(between('*/30 * * * *', 'Europe/Berlin', '2026-03-29T00:00:00Z', '2026-03-29T02:00:00Z'), [
    '2026-03-29T00:30:00.000Z', // 01:30 CET
    '2026-03-29T01:00:00.000Z', // 03:00 CEST
    '2026-03-29T01:30:00.000Z', // 03:30 CEST
    '2026-03-29T02:00:00.000Z', // 04:00 CEST
  ]);
});

test('Berlin fall back (2026-10-25 03:00 → 02:00): 02:30 runs once, at its first instance', (t) => {
  t.deepEqual(between('30 2 * * *', 'Europe/Berlin', '2026-10-23T12:00:00Z', '2026-10-26T12:00:00Z'), [
    '2026-10-24T00:30:00.000Z',
    '2026-10-25T00:30:00.000Z', // 02:30 CEST; 02:30 CET (01:30Z) does not run again
    '2026-10-26T01:30:00.000Z',
  ]);
  // Wildcard hours too: the repeated 02:00 and 02:30 are skipped the second time round.
  t.deepEqual(between('*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:45:00Z', '2026-10-25T02:15:00Z'), [
    '2026-10-25T00:00:00.000Z', // 02:00 CEST
    '2026-10-25T00:30:00.000Z', // 02:30 CEST
    '2026-10-25T02:00:00.000Z', // 03:00 CET (02:00 and 02:30 CET were 01:00Z and 01:30Z)
  ]);
});

test('New York spring forward (2026-03-08 02:00 → 03:00) and fall back (2026-11-01 02:00 → 01:00)', (t) => {
  t.deepEqual(between('30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', '2026-03-09T12:00:00Z'), [
    '2026-03-08T07:00:00.000Z', // 03:00 EDT
    '2026-03-09T06:30:00.000Z', // 02:30 EDT
  ]);
  t.deepEqual(between('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', '2026-11-02T12:00:00Z'), [
    '2026-11-01T05:30:00.000Z', // 01:30 EDT; 01:30 EST (06:30Z) does not run
    '2026-11-02T06:30:00.000Z',
  ]);
  const hourly = between('0 * * * *', 'America/New_York', '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z');
  t.is(hourly.length, 23, '24 hourly instants in the window, less 01:00 EST (a repeat of 01:00 EDT)');
  t.true(hourly.includes('2026-11-01T05:00:00.000Z'), '01:00 EDT runs');
  t.false(hourly.includes('2026-11-01T06:00:00.000Z'), '01:00 EST is the same local time: it does not');
  t.true(isRepeatedLocalTime(Date.parse('2026-11-01T06:00:00Z'), 'America/New_York'));
  t.false(isRepeatedLocalTime(Date.parse('2026-11-01T05:00:00Z'), 'America/New_York'));
  t.false(isRepeatedLocalTime(Date.parse('2026-11-01T06:00:00Z'), 'UTC'));
});

test('seconds, names and zones', (t) => {
  t.deepEqual(between('*/20 * * * * *', 'UTC', '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z'), [
    '2026-01-01T00:00:20.000Z',
    '2026-01-01T00:00:40.000Z',
    '2026-01-01T00:01:00.000Z',
  ]);
  t.deepEqual(between('@hourly', 'UTC', '2026-01-01T00:00:00Z', '2026-01-01T02:00:00Z'), [
    '2026-01-01T01:00:00.000Z',
    '2026-01-01T02:00:00.000Z',
  ]);
  t.deepEqual(between('@daily', 'Asia/Kolkata', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'), ['2026-01-01T18:30:00.000Z']);
  t.deepEqual(between('0 9 * * 1-5', 'UTC', '2026-01-02T00:00:00Z', '2026-01-06T00:00:00Z'), [
    '2026-01-02T09:00:00.000Z', // Friday
    '2026-01-05T09:00:00.000Z', // Monday
  ]);
});

test('mistakes are ValidationErrors that name the field', (t) => {
  t.throws(() => parseCron('61 * * * *'), { instanceOf: ValidationError, message: /^cron: "61 \* \* \* \*" is not a cron expression/ });
  t.throws(() => parseCron('* * *'), { instanceOf: ValidationError });
  t.throws(() => parseCron('* * * * * * *'), { instanceOf: ValidationError }, 'no year field');
  t.throws(() => parseCron('* * * * *', 'Mars/Olympus'), {
    instanceOf: ValidationError,
    message: /^timezone: "Mars\/Olympus" is not an IANA time zone/,
  });
  t.throws(() => parseCron(''), { instanceOf: ValidationError, message: /^cron: must be a cron expression/ });
});
