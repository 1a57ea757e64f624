/** The plugins.processes section and declared schedules: every mistake named by its path. */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { processesPlugin, resolveSchedule } from '../src/index.js';

const check = (section: unknown) => processesPlugin().configSchema!(section) ?? [];

test('a valid section has no problems; defaults are filled in', (t) => {
  t.deepEqual(check(undefined), []);
  t.deepEqual(check({ leaseMs: 5000, schedules: [{ id: 'a', cron: '@hourly', partition: 'p', type: 't' }] }), []);
  t.deepEqual(resolveSchedule({ id: 'a', cron: '@hourly', partition: 'p', type: 't' }), {
    id: 'a',
    cron: '@hourly',
    timezone: 'UTC',
    partition: 'p',
    type: 't',
    queue: undefined,
    payload: null,
    misfire: 'runOnce',
    backfillMs: 86_400_000,
    overlap: 'skip',
  });
});

test('problems name the schedule and the field', (t) => {
  t.deepEqual(
    check({
      leaseMs: -1,
      every: 3,
      schedules: [
        { id: 'a', cron: '* * *', partition: 'p', type: 't' },
        { id: 'b', cron: '* * * * *', timezone: 'Nowhere/Land', partition: 'p', type: 't' },
        { id: 'c', cron: '* * * * *', partition: 'p', type: 't', misfire: 'always' },
        { id: 'c', cron: '* * * * *', partition: 'p', type: 't' },
        { id: 'd', cron: '* * * * *', partition: 'p', type: 't', overlap: 'maybe', extra: 1 },
      ],
    }).map((p) => p.path),
    ['every', 'leaseMs', 'schedules.0.cron', 'schedules.1.timezone', 'schedules.2.misfire', 'schedules.3.id', 'schedules.4.extra'],
  );
  t.deepEqual(check({ schedules: 'nightly' }), [{ path: 'schedules', message: 'expected a list of schedules' }]);
  t.throws(() => processesPlugin({ schedules: [{ id: 'x', cron: '* * * * *', partition: 'no such', type: 't' }] }), {
    instanceOf: ValidationError,
    message: /^processesPlugin\.schedules\.0\.partition: /,
  });
});
