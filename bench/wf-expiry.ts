/**
 * Retention of finished workflows, before and after migration 0003, side by side in one run:
 * N finished workflows (4 activity records each) past their expiry, removed by the row sweep as it
 * was before (cascading DELETEs of 5,000 workflows a statement) and by the partition drop (one
 * DROP of their day). Then the cost of a transition: the statements a step's transition runs
 * (every other one finishes its workflow) on both layouts, the ops of the base revision (git,
 * default main) on the old layout against this tree's on the partitioned one.
 * Each in a fresh schema, dropped at the end.
 *
 *   npx tsx bench/wf-expiry.ts [N] [BASE]      # default 10,000 and main
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { transitionWriteParams } from '../packages/workflows/dist/executor.js';
import { adminPool, dropSchema, freshSchemaName, resolvePostgresUrl } from './lib/postgres.js';

const MIGRATIONS = fileURLToPath(new URL('../packages/workflows/sql/migrations/', import.meta.url));
const OPS = fileURLToPath(new URL('../packages/workflows/sql/ops/', import.meta.url));
// A step's transition: at the base revision (before the one-statement write) lock, record upsert and
// update; in this tree lock and transition_write (records and workflow row in one statement; a
// workflow it finishes takes its records to its expiry day's partition in that same statement).
const BASE_OPS = ['workflows_lock', 'activities_upsert', 'workflows_update'] as const;
const TREE_OPS = ['workflows_lock', 'transition_write'] as const;
const TRANSITIONS = 2_000;

/** An op's text in this tree, or at `base` (git). */
function opText(op: string, base: string | undefined): string {
  if (!base) return readFileSync(`${OPS}${op}.sql`, 'utf8');
  return execFileSync('git', ['show', `${base}:packages/workflows/sql/ops/${op}.sql`], { cwd: OPS, encoding: 'utf8' });
}
const log = (msg: string) => process.stderr.write(`[wf-expiry] ${msg}\n`);

// The sweep as it was before migration 0003 (sql/ops/expired_remove.sql then): the baseline.
const OLD_SWEEP = `
WITH w AS (
  DELETE FROM {{schema}}.wf_workflows WHERE id IN (
    SELECT id FROM {{schema}}.wf_workflows WHERE expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING 1
), s AS (
  DELETE FROM {{schema}}.wf_signals WHERE id IN (
    SELECT id FROM {{schema}}.wf_signals WHERE expire_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED
  ) RETURNING 1
)
SELECT (SELECT count(*) FROM w)::int AS workflows, (SELECT count(*) FROM s)::int AS signals`;

const render = (sql: string, schema: string) => sql.replaceAll('{{schema_raw}}', schema).replaceAll('{{schema}}', `"${schema}"`);

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10_000);
  const base = process.argv[3] ?? 'main';
  const pool = adminPool(await resolvePostgresUrl(log));
  const results: Record<string, unknown>[] = [];
  try {
    for (const variant of ['sweep', 'drop'] as const) {
      const schema = freshSchemaName('partita', `wfexpiry${variant}`);
      const files = [
        '0001_app_versions.sql',
        '0002_workflows.sql',
        ...(variant === 'drop' ? ['0003_workflow_retention.sql', '0004_fanout.sql'] : []),
      ];
      await pool.query(`CREATE SCHEMA "${schema}"`);
      try {
        for (const f of files) await pool.query(render(readFileSync(MIGRATIONS + f, 'utf8'), schema));
        const q = (sql: string, params: unknown[] = []) => pool.query(render(sql, schema), params);
        await q(`INSERT INTO {{schema}}.wf_versions (app_id, version, hash, definition) VALUES ('a', '1', 'h', '{}')`);
        // Finished workflows past their expiry: for the drop, in today's partition (expire_at now).
        await q(
          `INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, output, finished_at, expire_at)
           SELECT 'w' || i, 'a', '1', 't', 'default', 0, d, d, now(), now() - interval '1 second'
           FROM generate_series(1, $1) i, LATERAL (SELECT jsonb_build_object('n', i, 'email', 'user' || i || '@example.com', 'plan', 'free', 'risk', i % 100) AS d) x`,
          [n],
        );
        if (variant === 'drop') await q(`UPDATE {{schema}}.wf_workflows SET expire_day = (now() AT TIME ZONE 'UTC')::date`);
        await q(
          `INSERT INTO {{schema}}.wf_activities (workflow_id, activity, type, state, input, output, finished_at${variant === 'drop' ? ', expire_day' : ''})
           SELECT w.id, a, 'worker', 'done', jsonb_build_object('data', w.data), jsonb_build_object('data', jsonb_build_object('ok', true, 'step', a)), now()
                  ${variant === 'drop' ? ', w.expire_day' : ''}
           FROM {{schema}}.wf_workflows w, unnest(ARRAY['t1', 'score', 'notify', 'done']) a`,
        );
        await q(`VACUUM ANALYZE {{schema}}.wf_workflows`);
        await q(`VACUUM ANALYZE {{schema}}.wf_activities`);
        const began = performance.now();
        let statements = 0;
        if (variant === 'sweep') {
          const sweep = render(OLD_SWEEP, schema);
          for (;;) {
            statements++;
            const { rows } = await pool.query(sweep, [5_000]);
            if (rows[0].workflows < 5_000) break;
          }
        } else {
          statements = (await q(`SELECT * FROM {{schema}}.prune_wf_partitions(now() + interval '1 day')`)).rowCount ?? 0;
        }
        const ms = performance.now() - began;
        const left = Number(
          (await q(`SELECT (SELECT count(*) FROM {{schema}}.wf_workflows) + (SELECT count(*) FROM {{schema}}.wf_activities) AS n`)).rows[0]
            .n,
        );
        results.push({
          variant,
          workflows: n,
          records: 4 * n,
          statements,
          ms: Math.round(ms * 10) / 10,
          left,
          load1: loadavg()[0]!.toFixed(2),
        });
        log(
          `${variant}: ${n} workflows (${4 * n} records) removed in ${ms.toFixed(1)} ms by ${statements} statement(s); ${left} rows left`,
        );
        results.push(await transitions(pool, schema, variant, variant === 'sweep' ? base : undefined));
      } finally {
        await dropSchema(pool, schema);
      }
    }
    for (const r of results) process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    await pool.end();
  }
}

/**
 * TRANSITIONS transactions of a step's transition on open workflows (3 records each) beside as
 * many finished ones, every other one finishing its workflow; µs per transaction.
 */
async function transitions(pool: pg.Pool, schema: string, variant: string, base: string | undefined): Promise<Record<string, unknown>> {
  const q = (sql: string, params: unknown[] = []) => pool.query(render(sql, schema), params);
  const open = 2 * TRANSITIONS;
  // The drop above took today's partition too (its cutoff was a day ahead): made again, as a node's round does.
  if (variant === 'drop') await q(`SELECT {{schema}}.ensure_wf_partitions(8)`);
  await q(
    `INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data)
     SELECT 'o' || i, 'a', '1', 't', 'default', 2, jsonb_build_object('n', i) FROM generate_series(1, $1) i`,
    [open],
  );
  await q(
    `INSERT INTO {{schema}}.wf_workflows (id, app_id, version, topic, partition, status, data, output, finished_at, expire_at)
     SELECT 'f' || i, 'a', '1', 't', 'default', 0, '{}', '{}', now(), now() + interval '1 hour' FROM generate_series(1, $1) i`,
    [open],
  );
  if (variant === 'drop')
    await q(`UPDATE {{schema}}.wf_workflows SET expire_day = {{schema}}.wf_expire_day(expire_at) WHERE expire_at IS NOT NULL`);
  await q(
    `INSERT INTO {{schema}}.wf_activities (workflow_id, activity, type, state${variant === 'drop' ? ', expire_day' : ''})
     SELECT w.id, a, 'worker', 'running'${variant === 'drop' ? ', w.expire_day' : ''}
     FROM {{schema}}.wf_workflows w, unnest(ARRAY['t1', 's1', 's2']) a`,
  );
  await q(`ANALYZE {{schema}}.wf_workflows`);
  await q(`ANALYZE {{schema}}.wf_activities`);
  const names = base ? BASE_OPS : TREE_OPS;
  const ops = Object.fromEntries(names.map((op) => [op, { name: `${variant}_${op}`, text: render(opText(op, base), schema) }]));
  const client = await pool.connect();
  try {
    const split = { lock: 0, upsert: 0, update: 0, commit: 0 };
    const began = performance.now();
    for (let i = 1; i <= TRANSITIONS; i++) {
      const id = `o${i}`;
      const record = {
        workflow_id: id,
        activity: 's1',
        dimension: '',
        type: 'worker',
        state: 'done',
        output: { ok: true },
        attempts: 1,
        entered: 0,
      };
      await client.query('BEGIN');
      let t0 = performance.now();
      await client.query({ ...ops['workflows_lock']!, values: [[id]] });
      split.lock += performance.now() - t0;
      t0 = performance.now();
      const workflow = { id, status: i % 2 ? 0 : 1, data: { n: i }, expire: 3600 };
      if (base) {
        await client.query({ ...ops['activities_upsert']!, values: [JSON.stringify([record])] });
        split.upsert += performance.now() - t0;
        t0 = performance.now();
        await client.query({ ...ops['workflows_update']!, values: [JSON.stringify([workflow])] });
      } else {
        // The record and the workflow row in one statement (`upsert` stays 0), its parameters as the executor makes them.
        const { entered, ...fields } = record;
        const staged = { workflowId: id, record: { job_id: null, input: null, hook: null, errors: [], ...fields }, entered: entered > 0 };
        const write = transitionWriteParams([staged as Parameters<typeof transitionWriteParams>[0][number]], [workflow], null);
        await client.query({ ...ops['transition_write']!, values: write });
      }
      split.update += performance.now() - t0;
      t0 = performance.now();
      await client.query('COMMIT');
      split.commit += performance.now() - t0;
    }
    const us = ((performance.now() - began) * 1000) / TRANSITIONS;
    log(`${variant}: ${TRANSITIONS} transitions (half finishing) in ${Math.round(us)} µs each`);
    return {
      variant,
      transitions: TRANSITIONS,
      usPerTransition: Math.round(us),
      // Per statement (the lock, the record upsert, the update that finishes every other one; in this
      // tree `update` is the one write, a finishing one's move included) and the commit.
      usEach: Object.fromEntries(Object.entries(split).map(([k, v]) => [k, Math.round((v * 1000) / TRANSITIONS)])),
      ops: base ?? 'this tree',
      load1: loadavg()[0]!.toFixed(2),
    };
  } finally {
    client.release();
  }
}

await main();
