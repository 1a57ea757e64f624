/**
 * getJobsByKey with 100,000 flow jobs in the tables (inserted with SQL: workflows, their activity
 * records and lookup rows, as the flow writes them): a key with 10 jobs is found by an index range
 * scan whatever the table size, with and without resolveChildren. The finished jobs sit in their
 * expiry days' partitions, as the executor leaves them. Its latency (≤ 5 ms p99) is a benchmark
 * figure, measured by bench/flow-lookup.ts against the base revision; here it is only logged.
 */
import test from 'ava';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connect } from '@partita/client';
import { defineFlow } from '../src/index.js';
import { flowOps } from '../src/flows/db.js';
import { flowEnv, startFlow } from './flows-helpers.js';

const N = 100_000;
const PER_KEY = 10;

/** getJobsByKey's statement with its parameters written in, for EXPLAIN. */
function explained(schema: string, value: string, resolveChildren: boolean): string {
  return flowOps(schema)
    .jobs_by_key.text.replaceAll('$4::boolean', String(resolveChildren))
    .replaceAll('$1', "'scale'")
    .replaceAll('$2', "'customer'")
    .replaceAll('$3', `'${value}'`)
    .replaceAll('$5', '1000');
}

function p99(ms: number[]): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

test.serial('getJobsByKey: a key with 10 jobs among 100,000 is an index range scan (a few hundred pages a call at most)', async (t) => {
  const { db, nodeOptions } = await flowEnv(t, 'flow_lookup_scale');
  const definition = {
    name: 'scale',
    queues: [
      { name: 's1', nextQueue: 's2', lookupAttributes: ['customer' as const, 'region' as const] },
      { name: 's2', nextQueue: 's3' },
      { name: 's3' },
    ],
  };
  const flow = defineFlow<{ n?: number }, { customer: string; region: string }, 'customer' | 'region'>(definition);
  flow.createWorkers('s1', () => ({ n: 1 }));
  flow.createWorkers('s2', () => ({ n: 2 }));
  flow.createWorkers('s3', () => ({ n: 3 }));
  await startFlow(t, flow, nodeOptions);
  // A real job first: the app is deployed, and the rows below copy what the flow wrote for it.
  const real = await flow.createJob({ customer: 'real', region: 'eu' });
  const s = `"${db.schema}"`;
  const { rows: apps } = await db.pool.query(`SELECT app_id, version, topic FROM ${s}.wf_workflows WHERE id = $1`, [real]);
  const { app_id, version, topic } = apps[0];
  const t0 = performance.now();
  // Finished jobs started over the last 7 days, each in its start day's partition as the executor
  // leaves it: a lookup by id probes every partition, which is what makes this layout the costly one.
  await db.pool.query(`SELECT ${s}.make_wf_day((now() AT TIME ZONE 'UTC')::date - d) FROM generate_series(0, 6) d`);
  await db.pool.query(
    `INSERT INTO ${s}.wf_workflows (id, app_id, version, topic, partition, status, data, created_at, finished_at, expire_at, start_day)
     SELECT 'job-' || g, $1, $2, $3, 'default', 0,
       jsonb_build_object('params', jsonb_build_object('customer', 'c-' || (g % ${N / PER_KEY}), 'region', 'r-' || (g % 7)),
                          'state', jsonb_build_object('customer', 'c-' || (g % ${N / PER_KEY}), 'n', 3), 'stage', 's3'),
       now() - make_interval(secs => ${N} - g), now(), now() + interval '1 hour', (now() AT TIME ZONE 'UTC')::date - (g % 7)
     FROM generate_series(1, ${N}) g`,
    [app_id, version, topic],
  );
  await db.pool.query(
    `INSERT INTO ${s}.wf_activities (workflow_id, activity, dimension, type, state, start_day)
     SELECT w.id, a.activity, '', a.type, 'done', w.start_day
     FROM ${s}.wf_workflows w, (VALUES ('t', 'trigger'), ('q_s1', 'worker'), ('q_s2', 'worker'), ('q_s3', 'worker')) AS a (activity, type)
     WHERE w.id LIKE 'job-%'`,
  );
  await db.pool.query(
    `INSERT INTO ${s}.flow_keys (flow, key, value, job_id, created_at)
     SELECT 'scale', 'customer', 'c-' || (g % ${N / PER_KEY}), 'job-' || g, now() - make_interval(secs => ${N} - g) FROM generate_series(1, ${N}) g
     UNION ALL
     SELECT 'scale', 'region', 'r-' || (g % 7), 'job-' || g, now() - make_interval(secs => ${N} - g) FROM generate_series(1, ${N}) g`,
  );
  await db.pool.query(`ANALYZE ${s}.wf_workflows; ANALYZE ${s}.wf_activities; ANALYZE ${s}.flow_keys`);
  t.log(`inserted ${N} flow jobs (${N * 4} activity records, ${N * 2} lookup rows) in ${Math.round(performance.now() - t0)} ms`);

  // Read as a program that only reads jobs does: its own client, no node's engines in the process.
  await flow.stopAll({ graceMs: 100 });
  const client = await connect({ postgres: db.url, schema: db.schema, nats: false });
  t.teardown(() => client.close());
  const reader = defineFlow<{ n?: number }, { customer: string; region: string }, 'customer' | 'region'>(definition).useClient(client);
  const jobs = await reader.getJobsByKey('customer', 'c-42');
  t.is(jobs.length, PER_KEY);
  t.deepEqual(
    jobs.map((j) => j.id),
    Array.from({ length: PER_KEY }, (_, i) => `job-${42 + (PER_KEY - 1 - i) * (N / PER_KEY)}`),
    'newest first',
  );
  t.like(jobs[0], { stage: 's3', status: 'completed', params: { customer: 'c-42' } });

  const plan = await db.pool.query(`EXPLAIN (ANALYZE) ${explained(db.schema, 'c-42', true)}`);
  const planText = plan.rows.map((r) => String(r['QUERY PLAN'])).join('\n');
  t.regex(planText, /Index Only Scan using flow_keys_lookup/, 'the lookup is an index range scan, whatever the table size');
  t.log(
    planText
      .split('\n')
      .find((l) => l.includes('Execution Time'))!
      .trim(),
  );

  // What holds the bound on every machine is the pages (buffers) one call's statement touches: for
  // an index range scan of 10 jobs a few dozen to a few hundred, for a plan that scans the 100,000
  // jobs thousands. The calls' latency is logged, not asserted: p99 ≤ 5 ms held on an idle fast
  // machine, and came out 5.0-9.1 ms on a slower one at load 2.5-3 (2 cores), main's code and this
  // alike: a scheduler's tail, not the query's (bench/flow-lookup.ts measures it).
  for (const resolveChildren of [false, true]) {
    for (let i = 0; i < 50; i++) await reader.getJobsByKey('customer', `c-${i}`, resolveChildren);
    const times: number[] = [];
    for (let i = 0; i < 500; i++) {
      const key = `c-${(i * 97) % (N / PER_KEY)}`;
      const started = performance.now();
      const found = await reader.getJobsByKey('customer', key, resolveChildren);
      times.push(performance.now() - started);
      if (found.length !== PER_KEY) t.fail(`${key}: ${found.length} jobs`);
    }
    const p50 = [...times].sort((a, b) => a - b)[250]!;
    t.log(
      `resolveChildren=${resolveChildren}: p50 ${p50.toFixed(2)} ms, p99 ${p99(times).toFixed(2)} ms (500 calls, load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
    );
    const executions: number[] = [];
    const pages: number[] = [];
    for (let i = 0; i < 200; i++) {
      const { rows } = await db.pool.query(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${explained(db.schema, `c-${(i * 31) % (N / PER_KEY)}`, resolveChildren)}`,
      );
      const out = rows[0]['QUERY PLAN'][0];
      executions.push(Number(out['Execution Time']));
      pages.push(Number(out.Plan['Shared Hit Blocks'] ?? 0) + Number(out.Plan['Shared Read Blocks'] ?? 0));
    }
    const pe = p99(executions);
    const most = Math.max(...pages);
    t.log(`resolveChildren=${resolveChildren}: in Postgres: execution p99 ${pe.toFixed(2)} ms, at most ${most} pages a call (200 runs)`);
    t.true(most <= 400, `at most ${most} pages a call ≤ 400 (an index range scan, not a scan of the table)`);
  }
});
