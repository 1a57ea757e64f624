/**
 * The cron soak of issue 15, gated (it takes about SOAK_S + 30 seconds): PARTITA_SOAK=1 npx ava
 * packages/processes/test/cron-soak.test.ts (SOAK_S, default 60; SOAK_SCHEDULES, default 100).
 * Three `partita start` processes fire SOAK_SCHEDULES schedules every second (misfire: backfill)
 * while, every few seconds, one node is killed with SIGKILL and started again (the leader more
 * often than not). Afterwards every schedule has every second from its first occurrence to its last
 * exactly once, each with its own job. Without PARTITA_SOAK the test is skipped.
 */
import test from 'ava';
import { until } from '../../../test/fixtures/cli.js';
import { everySecond, scheduleCluster } from './helpers.js';

const SOAK_S = Number(process.env.SOAK_S ?? 60);
const SCHEDULES = Number(process.env.SOAK_SCHEDULES ?? 100);
const soak = process.env.PARTITA_SOAK ? test.serial : test.skip;

soak(
  `cron soak: ${SCHEDULES} schedules every second, 3 nodes killed and restarted for ${SOAK_S} s: every occurrence exactly once`,
  async (t) => {
    t.timeout((SOAK_S + 120) * 1000);
    const {
      s,
      nodes,
      start,
      schedulesLeader: leader,
      occurrences,
    } = await scheduleCluster(t, 'cron-soak', {
      pollMs: 500,
      concurrency: 16,
      processes: { leaseMs: 2000, schedules: everySecond('s', SCHEDULES) },
    });
    const ids = ['node-a', 'node-b', 'node-c'];
    for (const id of ids) await start(id);
    const q = async <R>(sql: string) => (await s.pool.query(sql)).rows as R[];
    await until('occurrences', async () => (await occurrences()) > 0, 60_000);
    const began = Date.now();
    let kills = 0;
    while (Date.now() - began < SOAK_S * 1000) {
      await new Promise((r) => setTimeout(r, 4000 + Math.random() * 4000));
      const current = await leader();
      const victim = current && Math.random() < 0.7 && nodes.has(current) ? current : ids[Math.floor(Math.random() * ids.length)]!;
      nodes.get(victim)?.kill('SIGKILL');
      await nodes.get(victim)?.exited;
      kills++;
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
      await start(victim);
    }
    t.log(`${kills} kills in ${SOAK_S} s`);
    await new Promise((r) => setTimeout(r, 5000)); // the last leader catches up
    for (const n of nodes.values()) n.kill('SIGTERM');
    await Promise.all([...nodes.values()].map((n) => n.exited));
    nodes.clear();

    const per = await q<{ schedule_id: string; n: number; first: Date; last: Date; distinct_jobs: number; bad: number }>(
      `SELECT schedule_id, count(*)::int AS n, min(fire_at) AS first, max(fire_at) AS last,
            count(DISTINCT job_id)::int AS distinct_jobs, count(*) FILTER (WHERE outcome <> 'enqueued')::int AS bad
     FROM "${s.schema}".schedule_occurrences WHERE NOT manual GROUP BY schedule_id`,
    );
    t.is(per.length, SCHEDULES);
    let total = 0;
    for (const r of per) {
      const span = (r.last.getTime() - r.first.getTime()) / 1000 + 1;
      total += r.n;
      if (r.n !== span || r.distinct_jobs !== r.n || r.bad)
        t.fail(`${r.schedule_id}: ${r.n} occurrences over ${span} s, ${r.distinct_jobs} jobs, ${r.bad} not enqueued`);
    }
    t.true(Math.min(...per.map((r) => (r.last.getTime() - r.first.getTime()) / 1000)) >= SOAK_S - 5, 'every schedule ran through the soak');
    const jobs = await q<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT id FROM "${s.schema}".jobs WHERE type = 'tick' UNION ALL SELECT id FROM "${s.schema}".jobs_history WHERE type = 'tick') j`,
    );
    t.is(jobs[0]!.n, total, 'one job per occurrence, no other');
    const missed = await q<{ n: string }>(`SELECT sum(missed_count) AS n FROM "${s.schema}".schedules`);
    t.is(Number(missed[0]!.n), 0, 'none missed (backfill)');
    t.log(`${total} occurrences, each once`);
  },
);
