/**
 * transition_write taken apart, on a schema wf-wal.ts kept (WF_WAL_KEEP=1): variants of one tree's statement
 * text, alternating, each call in a transaction rolled back and planned generically as a step's transaction
 * plans it; the backend's time on CPU (/proc/<pid>/schedstat) per call, median over the rounds. Records as
 * wf-tw.ts sends them (per workflow a finished record 'u' and a new one 'i'; MODE=u or MODE=i for one kind
 * only), each call on rows of its own.
 *
 *   npx tsx bench/wf-tw-parts.ts SCHEMA [TREE]   # env N (workflows per call, 300), CALLS (20), ROUNDS (5), ONLY=a,b
 *
 * Variants: full (the statement), staged (its parameters received and `staged` built, nothing written),
 * bind (the parameters received alone, with the transaction's BEGIN, SETs and ROLLBACK), typeofNull (the
 * statement with jsonb_typeof instead of nullif for JSON nulls), notMaterialized (`staged` computed again by
 * each part that reads it instead of kept in a tuplestore), updateU ('u' records by a plain UPDATE joined
 * to staged, the upsert only for those it did not find).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { resolvePostgresUrl } from './lib/postgres.js';

const [schema, treeArg] = process.argv.slice(2);
if (!schema) throw new Error('usage: wf-tw-parts.ts SCHEMA [TREE]');
const tree = resolve(treeArg ?? new URL('..', import.meta.url).pathname);
const n = Number(process.env.N ?? 300);
const calls = Number(process.env.CALLS ?? 20);
const rounds = Number(process.env.ROUNDS ?? 5);
const only = process.env.ONLY?.split(',');
const executor = await import(pathToFileURL(join(tree, 'packages/workflows/dist/executor.js')).href);
const db = await import(pathToFileURL(join(tree, 'packages/workflows/dist/db.js')).href);
const text = (db.wfOps(schema).transition_write as { text: string }).text;

const client = new pg.Client({ connectionString: await resolvePostgresUrl((msg) => process.stderr.write(`[wf-tw-parts] ${msg}\n`)) });
await client.connect();
const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
const cpuMs = () => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
const { rows } = await client.query(
  `SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, start_day::text AS start_day
   FROM "${schema}".wf_activities WHERE activity IN ('s1', 's2', 's3') ORDER BY seq LIMIT $1`,
  [n * calls],
);
const paramsOf = (call: number): unknown[] => {
  const records: unknown[] = [];
  const from = (call * n) % Math.max(1, rows.length - n + 1);
  for (const r of rows.slice(from, from + n)) {
    const day = r.start_day;
    if (process.env.MODE !== 'i')
      records.push({ workflowId: r.workflow_id, record: { ...r, state: 'done', output: { data: {} } }, entered: false, mode: 'u', day });
    if (process.env.MODE !== 'u') {
      const record = {
        activity: `${r.activity}.${call}`,
        dimension: '',
        type: 'worker',
        state: 'running',
        job_id: randomUUID(),
        input: r.input,
      };
      records.push({ workflowId: r.workflow_id, record, entered: true, mode: 'i', day });
    }
  }
  return executor.transitionWriteParams(records, [], null);
};

const stagedEnd = text.indexOf('), inserted AS (');
const upsertFrom = `  FROM staged r\n  WHERE r.mode IS NULL OR r.mode = 'u'\n`;
const variants: Record<string, string> = {
  full: text,
  staged: `${text.slice(0, stagedEnd + 1)} SELECT count(input) + count(output) FROM staged WHERE $17::jsonb IS NULL`,
  bind: `SELECT 1 WHERE ${Array.from({ length: 17 }, (_, i) => `$${i + 1}::${[6, 7, 8, 10, 15, 16].includes(i) ? 'jsonb' : [9, 11, 12].includes(i) ? 'int[]' : i === 14 ? 'date[]' : 'text[]'} IS NULL`).join(' OR ')}`,
  notMaterialized: text.replace('), staged AS (', '), staged AS NOT MATERIALIZED ('),
  typeofNull: text.replace(/nullif\(r\.(\w+), 'null'\)/g, "CASE WHEN jsonb_typeof(r.$1) <> 'null' THEN r.$1 END"),
  updateU: text.includes(upsertFrom)
    ? text
        .replace(upsertFrom, `  FROM staged r\n  WHERE r.mode IS NULL OR (r.mode = 'u' AND r.ord NOT IN (SELECT ord FROM updated))\n`)
        .replace(
          '), activities AS (',
          `), updated AS (
  UPDATE "${schema}".wf_activities AS a
  SET state = r.state, job_id = r.job_id, input = r.input, output = r.output, hook = r.hook, attempts = coalesce(r.attempts, 0),
      errors = coalesce(r.errors, '[]'), children_open = r.children_open, finished_at = CASE WHEN r.state = 'done' THEN now() END,
      entered = a.entered + coalesce(r.entered, 0)
  FROM staged r
  WHERE r.mode = 'u' AND a.workflow_id = r.workflow_id AND a.activity = r.activity AND a.dimension = r.dimension AND a.start_day = r.start_day
  RETURNING r.ord
), activities AS (`,
        )
    : '',
};

const samples: Record<string, number[]> = {};
for (let round = 0; round < rounds; round++)
  for (const [name, sql] of Object.entries(variants)) {
    if ((only && !only.includes(name)) || !sql) continue;
    const params = Array.from({ length: calls }, (_, call) => paramsOf(call));
    // The round's rolled-back versions vacuumed away first, as wf-tw does.
    await client.query(`VACUUM "${schema}".wf_activities`);
    const before = cpuMs();
    for (let i = 0; i < calls; i++) {
      await client.query('BEGIN');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
      await client.query({ name: `wf_tw_parts_${name}`, text: sql, values: params[i] });
      await client.query('ROLLBACK');
    }
    (samples[name] ??= []).push((cpuMs() - before) / calls);
  }
for (const [name, values] of Object.entries(samples)) {
  const sorted = [...values].sort((a, b) => a - b);
  process.stdout.write(
    `${name.padEnd(11)} ${n} workflows a call, backend CPU ms per call: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)} (${values.map((x) => x.toFixed(2)).join(' ')})\n`,
  );
}
await client.end();
