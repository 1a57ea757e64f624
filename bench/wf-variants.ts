/**
 * Variants of a workflow hot path's write (issue 18) against each other, alone: each variant file (a
 * template as in sql/ops: `{{schema}}`, `{{> fragment}}` of its package) is prepared on a connection of
 * its own with a generic plan, and run with N rows of fresh ids in a transaction rolled back; the CPU
 * of its backend per call from /proc/<pid>/schedstat. The variants alternate per round (CALLS calls
 * each), so the machine's load drifts over all alike. On a schema wf-wal.ts kept (WF_WAL_KEEP=1).
 *
 *   npx tsx bench/wf-variants.ts SCHEMA enqueue_leased|enqueue_batch|workflows_insert VARIANT.sql [VARIANT.sql...]
 *     env N (rows per call, 1000), CALLS (20), ROUNDS (8)
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { resolvePostgresUrl } from './lib/postgres.js';

const [schema, kind, ...files] = process.argv.slice(2);
if (!schema || !kind || files.length === 0) throw new Error('usage: wf-variants.ts SCHEMA KIND VARIANT.sql...');
const n = Number(process.env.N ?? 1000);
const calls = Number(process.env.CALLS ?? 20);
const rounds = Number(process.env.ROUNDS ?? 8);
const url = await resolvePostgresUrl((msg) => process.stderr.write(`[wf-variants] ${msg}\n`));
const root = resolve(new URL('..', import.meta.url).pathname);
const { renderOp } = await import(pathToFileURL(join(root, 'packages/postgres/dist/template.js')).href);
const pkg = kind === 'workflows_insert' ? 'workflows' : 'postgres';
const sqlDir = join(root, 'packages', pkg, 'sql') + '/';

const json = (xs: unknown[]) => JSON.stringify(xs);
const params = (): unknown[] => {
  const ids = Array.from({ length: n }, () => randomUUID());
  if (kind === 'enqueue_leased' || kind === 'enqueue_batch') {
    // As a continuation enqueues a workflow's next step: a typed job with a payload, lookup and mark.
    return [
      `{${ids.join(',')}}`,
      `{${ids.map(() => 'default').join(',')}}`,
      `{${ids.map(() => 'wal.step').join(',')}}`,
      json(ids.map(() => 'wal.step')),
      json(ids.map((_, i) => ({ data: { seq: i } }))),
      `{${ids.map(() => 0).join(',')}}`,
      null,
      `{${ids.map(() => 3).join(',')}}`,
      `{${ids.map(() => 30000).join(',')}}`,
      null,
      null,
      json(ids.map((id) => ({ workflow: id }))),
      null,
      json(ids.map(() => 'workflows')),
      'variants-node',
      30000,
    ].slice(0, kind === 'enqueue_batch' ? 14 : 16);
  }
  if (kind === 'workflows_insert') {
    const text = (v: string) => `{${ids.map(() => v).join(',')}}`;
    return [
      `{${ids.join(',')}}`,
      text('wal'),
      text('1'),
      text('wal.run'),
      text('default'),
      `{${ids.map(() => 1).join(',')}}`,
      json(ids.map((_, i) => ({ t1: { seq: i } }))),
      json(ids.map(() => ({}))),
      null,
      null,
      null,
      null,
      `{${ids.map(() => 86400).join(',')}}`,
    ];
  }
  throw new Error(`unknown kind ${kind}`);
};

const runNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
const sides = await Promise.all(
  files.map(async (file) => {
    const text = renderOp(readFileSync(file, 'utf8'), basename(file), schema, sqlDir) as string;
    const client = new pg.Client({ connectionString: url, options: '-c plan_cache_mode=force_generic_plan -c jit=off' });
    await client.connect();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    return { file, text, client, pid, samples: [] as number[] };
  }),
);
const name = `v_${process.pid}`;
for (let round = 0; round < rounds; round++)
  for (const side of sides) {
    let ns = 0;
    for (let i = 0; i < calls; i++) {
      const values = params();
      await side.client.query('BEGIN');
      const t0 = runNs(side.pid);
      await side.client.query({ name, text: side.text, values });
      ns += runNs(side.pid) - t0;
      await side.client.query('ROLLBACK');
    }
    // The first round makes the plans and warms the caches: left out.
    if (round > 0) side.samples.push(ns / calls / 1e6);
  }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const s of sides) {
  process.stdout.write(
    `${basename(s.file)}: ms a call (${n} rows) median ${median(s.samples).toFixed(3)}, rounds ${s.samples.map((x) => x.toFixed(2)).join(' / ')}\n`,
  );
  await s.client.end();
}
