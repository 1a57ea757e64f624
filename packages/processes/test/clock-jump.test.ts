/**
 * A clock jump under the schedules leader (issue 15): three `partita start` processes, each started with
 * a preload (fixtures/clock-shift.mjs) that shifts its wall clock by an offset the test changes at run
 * time. While one node holds the 'schedules' seat, its clock jumps an hour forward, then an hour back
 * (behind the real time), then returns. Occurrences are planned and claimed by the database's clock, so
 * every second of every schedule fires exactly once, none missed, and the jumped leader keeps firing at
 * the schedules' pace: it neither fires twice nor sleeps through seconds (its sleeps are bounded by
 * maxSleepMs, and measured on the monotonic clock).
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { until } from '../../../test/fixtures/cli.js';
import { everySecond, scheduleCluster } from './helpers.js';

const CLOCK_SHIFT = pathToFileURL(path.join(import.meta.dirname, 'fixtures', 'clock-shift.mjs')).href;
const SCHEDULES = 5;
const MAX_SLEEP_MS = 8000;
const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('the schedules leader’s clock jumps an hour forward and back: every second fires exactly once, none missed', async (t) => {
  // Three `partita start` processes take over a minute to be ready on a loaded 2-core machine (the
  // full suite): their start-up gets its own budget, and the test proper 90 s from then.
  t.timeout(240_000, 'starting three nodes');
  const {
    s,
    dir,
    nodes,
    start: startPartita,
    schedulesLeader: holder,
    occurrences: count,
  } = await scheduleCluster(t, 'sched-clockjump', {
    pollMs: 200,
    concurrency: 8,
    processes: { leaseMs: 2000, maxSleepMs: MAX_SLEEP_MS, schedules: everySecond('jump', SCHEDULES) },
  });
  const clockFile = (id: string) => path.join(dir, `${id}.clock`);
  const acks = new Map<string, number>();
  for (const id of ['node-a', 'node-b', 'node-c']) {
    await fs.writeFile(clockFile(id), '0');
    acks.set(id, 1); // the preload's read at start
    await startPartita(id, {
      env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_SHIFT}`.trim(), PARTITA_TEST_CLOCK_FILE: clockFile(id) },
    });
  }
  t.timeout(90_000);
  const q = async <R>(sql: string) => (await s.pool.query(sql)).rows as R[];

  await until('occurrences of every schedule', async () => (await count()) >= SCHEDULES * 3, 30_000);
  const leader = (await holder())!;
  t.true(nodes.has(leader), `the leader (${leader}) is one of the three`);
  const shift = async (offsetMs: number) => {
    await fs.writeFile(clockFile(leader), String(offsetMs));
    const seq = acks.get(leader)!;
    acks.set(leader, seq + 1);
    t.true(nodes.get(leader)!.kill('SIGUSR2'));
    const realBefore = Date.now();
    const ack = (await nodes.get(leader)!.waitForOutput(new RegExp(`clock-shift offset=${offsetMs} seq=${seq} now=(\\d+) date=(\\d+)`), {
      timeoutMs: 5000,
    })) as RegExpMatchArray;
    for (const seen of [Number(ack[1]), Number(ack[2])])
      t.true(
        Math.abs(seen - offsetMs - realBefore) < 5000,
        `the leader's Date.now() and new Date() read the real time ${offsetMs >= 0 ? '+' : ''}${offsetMs} ms`,
      );
  };

  // Who holds the seat, sampled through the jumps: the jumped node must keep it (the lease is the database's).
  const holders = new Set<string | undefined>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      holders.add(await holder());
      await sleep(200);
    }
  })();
  const [{ start }] = await q<{ start: Date }>(`SELECT clock_timestamp() AS start`);
  await shift(HOUR);
  await sleep(4000);
  await shift(-HOUR);
  await sleep(4000);
  await shift(0);
  await sleep(3000);
  const [{ end }] = await q<{ end: Date }>(`SELECT clock_timestamp() AS end`);
  sampling = false;
  await sampler;
  t.deepEqual([...holders], [leader], 'the jumped node held the schedules seat throughout');

  for (const n of nodes.values()) n.kill('SIGTERM');
  await Promise.all([...nodes.values()].map((n) => n.exited));
  nodes.clear();

  const per = await q<{ schedule_id: string; n: number; first: Date; last: Date; distinct_jobs: number; bad: number }>(
    `SELECT schedule_id, count(*)::int AS n, min(fire_at) AS first, max(fire_at) AS last,
            count(DISTINCT job_id)::int AS distinct_jobs, count(*) FILTER (WHERE outcome <> 'enqueued')::int AS bad
     FROM "${s.schema}".schedule_occurrences WHERE NOT manual GROUP BY schedule_id ORDER BY schedule_id`,
  );
  t.is(per.length, SCHEDULES);
  let total = 0;
  for (const r of per) {
    const span = (r.last.getTime() - r.first.getTime()) / 1000 + 1;
    total += r.n;
    t.is(r.n, span, `${r.schedule_id}: every second from its first occurrence to its last, once`);
    t.is(r.distinct_jobs, r.n, `${r.schedule_id}: one job per occurrence`);
    t.is(r.bad, 0);
    t.true(r.first.getTime() < start.getTime() && r.last.getTime() >= end.getTime() - 2000, `${r.schedule_id} fired through the jumps`);
  }
  const jobs = await q<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT id FROM "${s.schema}".jobs WHERE type = 'tick' UNION ALL SELECT id FROM "${s.schema}".jobs_history WHERE type = 'tick') j`,
  );
  t.is(jobs[0]!.n, total, 'no tick job but those of the occurrences');
  const missed = await q<{ n: string }>(`SELECT sum(missed_count) AS n FROM "${s.schema}".schedules`);
  t.is(Number(missed[0]!.n), 0, 'none missed');
  // The leader kept the schedules' pace through the jumps: each occurrence in the window was claimed
  // soon after its time (by the database's clock), not after a sleep of maxSleepMs or an hour.
  const [lag] = (
    await s.pool.query<{ max_ms: number; n: number }>(
      `SELECT max(extract(epoch FROM claimed_at - fire_at) * 1000)::int AS max_ms, count(*)::int AS n
       FROM "${s.schema}".schedule_occurrences WHERE NOT manual AND fire_at BETWEEN $1 AND $2`,
      [start, end],
    )
  ).rows;
  t.log(
    `${total} occurrences, each once; ${lag!.n} in the ${Math.round((end.getTime() - start.getTime()) / 1000)} s of jumps, claimed at most ${lag!.max_ms} ms after their time`,
  );
  t.true(lag!.n >= SCHEDULES * 10);
  t.true(lag!.max_ms < MAX_SLEEP_MS / 2, `claimed within ${MAX_SLEEP_MS / 2} ms of their time (at most ${lag!.max_ms} ms)`);
});
