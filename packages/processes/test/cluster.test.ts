/**
 * Exactly once across a cluster: three `partita start` processes with a schedule declared in the
 * YAML (every second, misfire backfill), the schedules leader killed with SIGKILL mid-way. Every
 * second from the first occurrence to the last fires exactly once (one occurrence, one job), the
 * seconds of the take-over included; then the CLI reads and changes the schedule.
 */
import test from 'ava';
import { cliJson, runCli, until } from '../../../test/fixtures/cli.js';
import { scheduleCluster } from './helpers.js';

test.serial('3 nodes, the schedules leader killed: every second fires exactly once, none missed', async (t) => {
  const {
    s,
    config,
    nodes,
    start,
    schedulesLeader: holder,
    occurrences: count,
  } = await scheduleCluster(t, 'sched-cluster', {
    pollMs: 200,
    concurrency: 8,
    processes: {
      leaseMs: 2000,
      schedules: [
        { id: 'tick', cron: '* * * * * *', partition: 'p', type: 'tick', misfire: 'backfill', overlap: 'allow', payload: { n: 1 } },
      ],
    },
  });
  for (const id of ['node-a', 'node-b', 'node-c']) await start(id);
  const q = async <R>(sql: string) => (await s.pool.query(sql)).rows as R[];

  await until('three occurrences', async () => (await count()) >= 3, 30_000);
  const leader = (await holder())!;
  t.true(nodes.has(leader), `the leader (${leader}) is one of the three`);
  t.true(nodes.get(leader)!.kill('SIGKILL'));
  const killedAt = Date.now();
  nodes.delete(leader);
  const next = await until(
    'another node leads',
    async () => {
      const h = await holder();
      return h && h !== leader ? h : undefined;
    },
    20_000,
  );
  t.log(`killed ${leader}; ${next} leads after ${Date.now() - killedAt} ms`);
  await until('ten seconds after the kill', async () => Date.now() - killedAt > 10_000 && (await count()) > 0, 20_000);

  // The CLI: read, pause (nothing fires), resume.
  const conn = ['-c', config];
  const shown = cliJson(await runCli(['schedule', 'tick', ...conn, '--json']));
  t.is(shown.id, 'tick');
  t.is(shown.source, 'declared');
  t.is(shown.missedCount, 0);
  t.true(shown.occurrences.length > 0);
  const listed = await runCli(['schedules', ...conn]);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /^tick\s+\* \* \* \* \* \*\s+UTC\s+p\/tick\s+active/m);
  t.is((await runCli(['schedule', 'pause', 'tick', ...conn])).code, 0);
  const afterPause = await count();
  await new Promise((r) => setTimeout(r, 2500));
  t.true((await count()) <= afterPause + 1, 'paused: at most the firing already under way');
  const missing = await runCli(['schedule', 'nope', ...conn]);
  t.is(missing.code, 3, missing.stderr);
  const triggered = cliJson(await runCli(['schedule', 'trigger', 'tick', ...conn, '--json']));
  t.truthy(triggered.jobId);

  for (const n of nodes.values()) n.kill('SIGTERM');
  await Promise.all([...nodes.values()].map((n) => n.exited));
  nodes.clear();

  const rows = await q<{ fire_at: Date; job_id: string; outcome: string }>(
    `SELECT fire_at, job_id, outcome FROM "${s.schema}".schedule_occurrences WHERE NOT manual ORDER BY fire_at`,
  );
  const span = (rows[rows.length - 1]!.fire_at.getTime() - rows[0]!.fire_at.getTime()) / 1000;
  t.log(`${rows.length} occurrences over ${span} s`);
  t.true(span >= 12, 'the schedule ran across the take-over');
  t.is(rows.length, span + 1, 'every second from the first to the last, none missed');
  for (let i = 1; i < rows.length; i++) t.is(rows[i]!.fire_at.getTime() - rows[i - 1]!.fire_at.getTime(), 1000);
  t.true(rows.every((r) => r.outcome === 'enqueued'));
  t.is(new Set(rows.map((r) => r.job_id)).size, rows.length, 'one job per occurrence');
  const jobs = await q<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT id FROM "${s.schema}".jobs WHERE type = 'tick' UNION ALL SELECT id FROM "${s.schema}".jobs_history WHERE type = 'tick') j`,
  );
  t.is(jobs[0]!.n, rows.length + 1, 'and no other tick job but the triggered one');
  const record = (await q<{ missed_count: string }>(`SELECT missed_count FROM "${s.schema}".schedules WHERE id = 'tick'`))[0]!;
  t.is(Number(record.missed_count), 0);
});
