/** The misfire policies as a pure function: what one firing fires, counts missed and leaves for later. */
import test from 'ava';
import { FIRE_LIMIT, parseCron, planFiring, WALK_LIMIT, type PlanInput } from '../src/index.js';

const everyMinute = parseCron('* * * * *');
const at = (s: string) => new Date(`2026-06-01T${s}Z`);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString().slice(11, 19));

function plan(over: Partial<PlanInput>) {
  return planFiring({
    cron: everyMinute,
    misfire: 'runOnce',
    backfillMs: 3_600_000,
    graceMs: 5_000,
    accountedUntil: at('10:00:00'),
    now: at('10:00:30'),
    ...over,
  });
}

test('nothing due: nothing fired, the next occurrence is the wake-up', (t) => {
  const p = plan({});
  t.deepEqual(p.fire, []);
  t.is(p.missed, 0);
  t.deepEqual(p.next, at('10:01:00'));
  t.deepEqual(p.accountedUntil, at('10:00:00'));
});

test('on time: every policy fires the one due occurrence', (t) => {
  for (const misfire of ['skip', 'runOnce', 'backfill'] as const) {
    const p = plan({ misfire, now: at('10:01:00.200') });
    t.deepEqual(iso(p.fire), ['10:01:00'], misfire);
    t.is(p.missed, 0, misfire);
    t.deepEqual(p.accountedUntil, at('10:01:00'));
    t.deepEqual(p.next, at('10:02:00'));
  }
});

test('after an outage of 10 minutes: skip, runOnce and backfill', (t) => {
  const now = at('10:10:30');
  const skip = plan({ misfire: 'skip', now });
  t.deepEqual(skip.fire, [], 'the latest (10:10) is 30 s late, past the grace');
  t.is(skip.missed, 10);
  const skipOnTime = plan({ misfire: 'skip', now: at('10:10:02') });
  t.deepEqual(iso(skipOnTime.fire), ['10:10:00'], 'within the grace the latest is on time');
  t.is(skipOnTime.missed, 9);
  const once = plan({ misfire: 'runOnce', now });
  t.deepEqual(iso(once.fire), ['10:10:00']);
  t.is(once.missed, 9);
  const all = plan({ misfire: 'backfill', now });
  t.is(all.fire.length, 10);
  t.is(all.missed, 0);
  const window = plan({ misfire: 'backfill', backfillMs: 4 * 60_000, now });
  t.deepEqual(iso(window.fire), ['10:07:00', '10:08:00', '10:09:00', '10:10:00'], 'only those within backfillMs');
  t.is(window.missed, 6);
  for (const p of [skip, once, all, window]) {
    t.deepEqual(p.accountedUntil, at('10:10:00'));
    t.deepEqual(p.next, at('10:11:00'));
  }
});

test('every occurrence within the grace fires under every policy; past it the policy decides', (t) => {
  const everySecond = parseCron('* * * * * *');
  const now = at('10:00:03.400');
  for (const misfire of ['skip', 'runOnce', 'backfill'] as const) {
    const p = plan({ cron: everySecond, misfire, graceMs: 2_000, backfillMs: 0, accountedUntil: at('10:00:00'), now });
    // 10:00:01 is 2.4 s late (past the grace); 10:00:02 and 10:00:03 are on time.
    t.deepEqual(iso(p.fire), ['10:00:02', '10:00:03'], misfire);
    t.is(p.missed, 1, misfire);
    t.deepEqual(p.accountedUntil, at('10:00:03'), misfire);
  }
  const none = plan({ cron: everySecond, misfire: 'skip', graceMs: 200, backfillMs: 0, accountedUntil: at('10:00:00'), now });
  t.deepEqual(none.fire, [], 'skip: none on time, none run');
  t.is(none.missed, 3);
  const once = plan({ cron: everySecond, misfire: 'runOnce', graceMs: 200, backfillMs: 0, accountedUntil: at('10:00:00'), now });
  t.deepEqual(iso(once.fire), ['10:00:03'], 'runOnce: none on time, the latest runs');
  t.is(once.missed, 2);
});

test('a long backlog is walked in bounded steps, and backfill enqueues at most FIRE_LIMIT per firing', (t) => {
  const everySecond = parseCron('* * * * * *');
  const start = at('00:00:00');
  const now = new Date(start.getTime() + (WALK_LIMIT + 500) * 1000);
  const once = planFiring({ cron: everySecond, misfire: 'runOnce', backfillMs: 0, graceMs: 500, accountedUntil: start, now });
  t.deepEqual(once.fire, [], 'the latest is not in the first step');
  t.is(once.missed, WALK_LIMIT);
  t.true(once.next!.getTime() <= now.getTime(), 'more to walk');
  const rest = planFiring({
    cron: everySecond,
    misfire: 'runOnce',
    backfillMs: 0,
    graceMs: 500,
    accountedUntil: once.accountedUntil,
    now,
  });
  t.deepEqual(rest.fire, [now]);
  t.is(once.missed + rest.missed + rest.fire.length, WALK_LIMIT + 500, 'every occurrence fired or missed, once');

  const back = planFiring({ cron: everySecond, misfire: 'backfill', backfillMs: 86_400_000, graceMs: 1000, accountedUntil: start, now });
  t.is(back.fire.length, FIRE_LIMIT);
  t.is(back.missed, 0);
  t.deepEqual(back.accountedUntil, back.fire[FIRE_LIMIT - 1]);
  t.deepEqual(back.next, new Date(back.accountedUntil.getTime() + 1000));
});
