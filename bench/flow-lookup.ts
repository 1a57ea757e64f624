/**
 * flow.getJobsByKey with N flow jobs in the tables, a key with 10 jobs: this tree's statement next
 * to the base revision's (git, default main), alternating in rounds in one run, each timed as a
 * round trip from this process (the statement and the rows' decode); then this tree's whole call
 * (getJobsByKey with its decode into FlowJobs). The jobs are laid out as finished flow jobs are:
 * spread over the expiry-day partitions of wf_workflows and wf_activities (a lookup probes each),
 * with their activity records and lookup rows. A fresh schema, dropped at the end.
 *
 *   npx tsx bench/flow-lookup.ts [N] [BASE] [ROUNDS]     # default 100,000, main, 3
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect } from '@partita/client';
import { silentLogger } from '@partita/core';
import { defineFlow } from '@partita/workflows';
import { adminPool, dropSchema, freshSchemaName, resolvePostgresUrl } from './lib/postgres.js';

const N = Number(process.argv[2] ?? 100_000);
const BASE = process.argv[3] ?? 'main';
const ROUNDS = Number(process.argv[4] ?? 3);
const PER_KEY = 10;
const CALLS = 500;
const OPS = fileURLToPath(new URL('../packages/workflows/sql/flows/ops/', import.meta.url));
const log = (msg: string) => process.stderr.write(`[flow-lookup] ${msg}\n`);

const definition = {
  name: 'scale',
  queues: [{ name: 's1', nextQueue: 's2', lookupAttributes: ['customer' as const] }, { name: 's2', nextQueue: 's3' }, { name: 's3' }],
};

function pct(ms: number[], p: number): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!;
}

const url = await resolvePostgresUrl(log);
const admin = adminPool(url);
const schema = freshSchemaName('partita', 'flowlookup');
const flow = defineFlow<{ n?: number }, { customer: string }, 'customer'>(definition);
flow.createWorkers('s1', () => ({ n: 1 }));
flow.createWorkers('s2', () => ({ n: 2 }));
flow.createWorkers('s3', () => ({ n: 3 }));
try {
  await flow.startAll({
    postgres: url,
    schema,
    nats: false,
    dataDir: `/tmp/partita-bench-${schema}`,
    persister: 'postgres',
    logger: silentLogger(),
  });
  const real = await flow.createJob({ customer: 'real' });
  const s = `"${schema}"`;
  const { rows } = await admin.query(`SELECT app_id, version, topic FROM ${s}.wf_workflows WHERE id = $1`, [real]);
  const { app_id, version, topic } = rows[0];
  await flow.stopAll({ graceMs: 100 });
  const t0 = performance.now();
  // Finished jobs started over the last 7 days: each sits in its start day's partition, as the executor leaves it.
  await admin.query(`SELECT ${s}.make_wf_day((now() AT TIME ZONE 'UTC')::date - d) FROM generate_series(0, 6) d`);
  await admin.query(
    `INSERT INTO ${s}.wf_workflows (id, app_id, version, topic, partition, status, data, created_at, finished_at, expire_at, start_day)
     SELECT 'job-' || g, $1, $2, $3, 'default', 0,
       jsonb_build_object('params', jsonb_build_object('customer', 'c-' || (g % ${N / PER_KEY})),
                          'state', jsonb_build_object('customer', 'c-' || (g % ${N / PER_KEY}), 'n', 3), 'stage', 's3'),
       now() - make_interval(secs => ${N} - g), now(), now() + interval '1 hour', (now() AT TIME ZONE 'UTC')::date - (g % 7)
     FROM generate_series(1, ${N}) g`,
    [app_id, version, topic],
  );
  await admin.query(
    `INSERT INTO ${s}.wf_activities (workflow_id, activity, dimension, type, state, start_day)
     SELECT w.id, a.activity, '', a.type, 'done', w.start_day
     FROM ${s}.wf_workflows w, (VALUES ('t', 'trigger'), ('q_s1', 'worker'), ('q_s2', 'worker'), ('q_s3', 'worker')) AS a (activity, type)
     WHERE w.id LIKE 'job-%'`,
  );
  await admin.query(
    `INSERT INTO ${s}.flow_keys (flow, key, value, job_id, created_at)
     SELECT 'scale', 'customer', 'c-' || (g % ${N / PER_KEY}), 'job-' || g, now() - make_interval(secs => ${N} - g) FROM generate_series(1, ${N}) g`,
  );
  await admin.query(`ANALYZE ${s}.wf_workflows; ANALYZE ${s}.wf_activities; ANALYZE ${s}.flow_keys`);
  const { rows: parts } = await admin.query(
    `SELECT count(*)::int AS n FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent WHERE c.relname = 'wf_workflows' AND c.relnamespace = $1::regnamespace`,
    [schema],
  );
  log(`${N} finished flow jobs in ${parts[0].n} partitions (+ activity records, lookup rows) in ${Math.round(performance.now() - t0)} ms`);

  const client = await connect({ postgres: url, schema, nats: false });
  const reader = defineFlow<{ n?: number }, { customer: string }, 'customer'>(definition).useClient(client);
  const pool = (client as unknown as { store: { pool: import('pg').Pool } }).store?.pool ?? admin;
  const render = (sql: string) => sql.replaceAll('{{schema}}', s);
  const statements = {
    base: render(execFileSync('git', ['show', `${BASE}:packages/workflows/sql/flows/ops/jobs_by_key.sql`], { cwd: OPS, encoding: 'utf8' })),
    tree: render(execFileSync('cat', [`${OPS}jobs_by_key.sql`], { encoding: 'utf8' })),
  };
  const times: Record<'base' | 'tree' | 'call', { false: number[]; true: number[] }> = {
    base: { false: [], true: [] },
    tree: { false: [], true: [] },
    call: { false: [], true: [] },
  };
  const key = (i: number) => `c-${(i * 97) % (N / PER_KEY)}`;
  for (let round = 0; round < ROUNDS; round++) {
    for (const resolve of [false, true] as const) {
      for (const which of ['base', 'tree', 'call'] as const) {
        const run = async (i: number) => {
          const started = performance.now();
          const got =
            which === 'call'
              ? await reader.getJobsByKey('customer', key(i), resolve)
              : (
                  await pool.query({
                    name: `flow_lookup_${which}`,
                    text: statements[which],
                    values: ['scale', 'customer', key(i), resolve, 1000],
                  })
                ).rows;
          const ms = performance.now() - started;
          if (got.length !== PER_KEY) throw new Error(`${which} ${key(i)}: ${got.length} jobs`);
          return ms;
        };
        for (let i = 0; i < 50; i++) await run(i);
        const ms: number[] = [];
        for (let i = 0; i < CALLS; i++) ms.push(await run(i));
        times[which][`${resolve}`].push(...ms);
        log(
          `round ${round + 1} ${which} resolveChildren=${resolve}: p50 ${pct(ms, 0.5).toFixed(2)} ms, p99 ${pct(ms, 0.99).toFixed(2)} ms (load ${loadavg()[0]!.toFixed(1)})`,
        );
      }
    }
  }
  const plan = async (which: 'base' | 'tree', resolve: boolean) => {
    const text = statements[which]
      .replaceAll('$4::boolean', String(resolve))
      .replaceAll('$1', "'scale'")
      .replaceAll('$2', "'customer'")
      .replaceAll('$3', "'c-42'")
      .replaceAll('$5', '1000');
    const out = (await admin.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`)).rows[0]['QUERY PLAN'][0];
    return `${out['Execution Time'].toFixed(2)} ms, ${Number(out.Plan['Shared Hit Blocks'] ?? 0) + Number(out.Plan['Shared Read Blocks'] ?? 0)} pages`;
  };
  const result = {
    n: N,
    perKey: PER_KEY,
    base: BASE,
    rounds: ROUNDS,
    callsPerRound: CALLS,
    load: loadavg()[0]!.toFixed(1),
    cores: cpus().length,
    p50p99Ms: Object.fromEntries(
      Object.entries(times).flatMap(([which, byResolve]) =>
        Object.entries(byResolve).map(([resolve, ms]) => [
          `${which} resolveChildren=${resolve}`,
          `${pct(ms, 0.5).toFixed(2)} / ${pct(ms, 0.99).toFixed(2)}`,
        ]),
      ),
    ),
    explain: {
      'base resolveChildren=false': await plan('base', false),
      'tree resolveChildren=false': await plan('tree', false),
      'base resolveChildren=true': await plan('base', true),
      'tree resolveChildren=true': await plan('tree', true),
    },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  await client.close();
} finally {
  await flow.stopAll({ graceMs: 100 }).catch(() => undefined);
  await dropSchema(admin, schema);
  await admin.end();
}
