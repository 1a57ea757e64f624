/**
 * The pure rules of background processes: definitions and their defaults, slot alignment, the
 * error record (first and latest kept, totals counted), and merging admin changes into a run.
 */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { defineProcess, KEPT_ERRORS, mergeWork, msToNextSlot, recordError, type ProcessState } from '@partita/processes';

const noop = async () => undefined;

test('defineProcess fills the Go defaults and clamps the schedule to minScheduleMs', (t) => {
  const p = defineProcess({ name: 'gc', scheduleMs: 60_000, settings: {}, processActiveWork: noop, cleanupWork: noop });
  t.is(p.minScheduleMs, 15 * 60_000);
  t.is(p.scheduleMs, 15 * 60_000, 'clamped up to the 15-minute minimum');
  t.is(p.progressMs, Math.min(p.scheduleMs / 10, p.minScheduleMs / 3));
  t.is(p.initialWaitMs, 60_000);
  t.is(p.maxErrorsPerItem, 10);
  t.is(p.maxErrorsPerRun, 25);
  const fast = defineProcess({
    name: 'f',
    scheduleMs: 2000,
    minScheduleMs: 1000,
    settings: {},
    processActiveWork: noop,
    cleanupWork: noop,
  });
  t.is(fast.scheduleMs, 2000);
  t.is(fast.progressMs, 200);
});

test('defineProcess names the bad field', (t) => {
  const err = t.throws(() => defineProcess({ name: 'x', scheduleMs: -1, settings: {}, processActiveWork: noop, cleanupWork: noop }), {
    instanceOf: ValidationError,
  });
  t.regex(err!.message, /scheduleMs/);
  t.throws(() => defineProcess({ name: '', scheduleMs: 1000, settings: {}, processActiveWork: noop, cleanupWork: noop }), {
    instanceOf: ValidationError,
  });
  t.throws(() => defineProcess({ name: 'x', scheduleMs: 1000, settings: {}, processActiveWork: noop } as never), {
    message: /cleanupWork/,
  });
});

test('slots are multiples of the schedule since the epoch', (t) => {
  t.is(msToNextSlot(10_000, 3000), 2000);
  t.is(msToNextSlot(12_000, 3000), 3000, 'on a boundary: the next one');
  t.is(msToNextSlot(Date.UTC(2026, 0, 1, 10, 59, 30), 3_600_000), 30_000);
});

test('an error record keeps the first and the latest errors with their times and counts them all', (t) => {
  const record = { total: 0, inRun: 0, first: [], last: [] };
  for (let i = 1; i <= 30; i++) recordError(record, new Error(`e${i}`), new Date(Date.UTC(2026, 0, 1, 0, 0, i)));
  t.is(record.total, 30);
  t.is(record.inRun, 30);
  t.deepEqual(
    record.first.map((e: { message: string }) => e.message),
    Array.from({ length: KEPT_ERRORS }, (_, i) => `e${i + 1}`),
  );
  t.deepEqual(
    record.last.map((e: { message: string }) => e.message),
    Array.from({ length: KEPT_ERRORS }, (_, i) => `e${30 - KEPT_ERRORS + i + 1}`),
  );
  t.is((record as { lastAt?: string }).lastAt, new Date(Date.UTC(2026, 0, 1, 0, 0, 30)).toISOString());
});

test('merge: status kept with new params, unregistered to cleanup, new ones added, re-registered leave cleanup', (t) => {
  const status = { state: 'completed' as const, runNo: 1, errors: { total: 0, inRun: 0, first: [], last: [] }, stats: { n: 2 } };
  const state: ProcessState<unknown, unknown> = {
    name: 'p',
    owner: 'n',
    epoch: 1,
    settings: {},
    settingsVersion: 1,
    scheduleMs: 1000,
    run: { runNo: 1, startedAt: '', state: 'active', errors: { total: 0, inRun: 0, first: [], last: [] }, stats: {}, resumes: 0 },
    active: new Map([
      ['a', { name: 'a', params: 1, modifiedAt: '', status }],
      ['b', { name: 'b', params: 1, modifiedAt: '', status: undefined }],
    ]),
    cleanup: new Map([['c', { since: '', status: undefined }]]),
  };
  const at = new Date(0);
  mergeWork(state, [
    { name: 'a', list: 'active', params: 2, modifiedAt: at, listedAt: at, status: null },
    { name: 'b', list: 'cleanup', params: 1, modifiedAt: at, listedAt: at, status: null },
    { name: 'c', list: 'active', params: 3, modifiedAt: at, listedAt: at, status: null },
    { name: 'd', list: 'active', params: 4, modifiedAt: at, listedAt: at, status: null },
  ]);
  t.deepEqual([...state.active.keys()].sort(), ['a', 'c', 'd']);
  t.is(state.active.get('a')!.params, 2, 'new params');
  t.is(state.active.get('a')!.status, status, 'in-progress status kept');
  t.deepEqual([...state.cleanup.keys()], ['b']);
});
