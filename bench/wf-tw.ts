/**
 * transition_write alone, as a chain's step batch sends it, for one or more built trees in turn: per
 * workflow of the batch, the finished step's record ('u': done, with its output) and the next step's
 * new record ('i': running, with a fresh job id), or with FINAL=1 the finished step's record and the
 * workflow's row finished (status 0). In a transaction rolled back each time, planned generically
 * (as a step's transaction plans it), on a schema wf-wal.ts kept (WF_WAL_KEEP=1). Reports the backend's
 * own CPU per call (time on CPU from /proc/<pid>/schedstat, BEGIN, SETs, statement and ROLLBACK); the rounds
 * alternate the trees, so the machine's load drifts over both alike.
 *
 *   npx tsx bench/wf-tw.ts SCHEMA TREE [TREE...]   # env N (workflows per call, 300), CALLS (30), ROUNDS (6), FINAL
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { resolvePostgresUrl } from './lib/postgres.js';

const [schema, ...trees] = process.argv.slice(2);
if (!schema || trees.length === 0) throw new Error('usage: wf-tw.ts SCHEMA TREE [TREE...]');
const n = Number(process.env.N ?? 300);
const calls = Number(process.env.CALLS ?? 30);
const rounds = Number(process.env.ROUNDS ?? 6);
const final = !!process.env.FINAL;
const url = await resolvePostgresUrl((msg) => process.stderr.write(`[wf-tw] ${msg}\n`));

// Time on CPU from schedstat (ns): /proc/<pid>/stat counts in 10 ms ticks, a third of a ms per call here.
const cpuMs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
const sides = await Promise.all(
  trees.map(async (dir) => {
    const tree = resolve(dir);
    const db = await import(pathToFileURL(join(tree, 'packages/workflows/dist/db.js')).href);
    const executor = await import(pathToFileURL(join(tree, 'packages/workflows/dist/executor.js')).href);
    const op = db.wfOps(schema).transition_write as { name: string; text: string };
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    // Its backend's pid, for a profiler (perf record -p) attached while the rounds run.
    process.stderr.write(`[wf-tw] ${tree}: backend pid ${pid}\n`);
    return { tree, op, executor, client, pid, samples: [] as number[] };
  }),
);
const { rows } = await sides[0]!.client.query(
  `SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, start_day::text AS start_day
   FROM "${schema}".wf_activities WHERE activity IN ('s1', 's2', 's3') ORDER BY seq LIMIT $1`,
  [n * calls],
);
await sides[0]!.client.query(`VACUUM "${schema}".wf_activities, "${schema}".wf_workflows`);
// Each call of a round writes rows of its own: other records to finish, and a new activity name. Calls
// on the same keys (rolled back, not vacuumed until the round's end) made every insert's uniqueness
// check and every conflict probe step over the earlier calls' dead versions (perf: _bt_doinsert 20 %
// of the backend here, against 12 % in the bench's own run).
const paramsOf = (executor: any, call: number) => {
  const records: unknown[] = [];
  const from = (call * n) % Math.max(1, rows.length - n + 1);
  const slice = rows.slice(from, from + n);
  for (const r of slice) {
    records.push({
      workflowId: r.workflow_id,
      record: { ...r, state: 'done', output: { data: {} } },
      entered: false,
      mode: 'u',
      day: r.start_day,
    });
    if (!final)
      records.push({
        workflowId: r.workflow_id,
        record: {
          activity: `${r.activity}.${call}`,
          dimension: '',
          type: 'worker',
          state: 'running',
          job_id: randomUUID(),
          input: r.input,
        },
        entered: true,
        mode: 'i',
        day: r.start_day,
      });
  }
  const workflows = final ? slice.map((r) => ({ id: r.workflow_id, status: 0, data: {}, expire: 3600, start_day: r.start_day })) : [];
  return executor.transitionWriteParams(records, workflows, null);
};
for (let round = 0; round < rounds; round++)
  for (const side of sides) {
    const params = Array.from({ length: calls }, (_, call) => paramsOf(side.executor, call));
    // Each round's rolled-back versions vacuumed away first: the next round's updates find the room the run's did.
    await side.client.query(`VACUUM "${schema}".wf_activities, "${schema}".wf_workflows`);
    const c0 = cpuMs(side.pid);
    for (let i = 0; i < calls; i++) {
      await side.client.query('BEGIN');
      await side.client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
      await side.client.query({ name: side.op.name, text: side.op.text, values: params[i] });
      await side.client.query('ROLLBACK');
    }
    side.samples.push((cpuMs(side.pid) - c0) / calls);
  }
if (process.env.EXPLAIN)
  // The generic plan of each tree's statement, run once more with auto_explain (into the server's log).
  for (const side of sides) {
    await side.client.query('BEGIN');
    await side.client.query(
      "LOAD 'auto_explain'; SET LOCAL auto_explain.log_min_duration = 0; SET LOCAL auto_explain.log_analyze = on; SET LOCAL auto_explain.log_buffers = on",
    );
    await side.client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
    await side.client.query({ name: side.op.name, text: side.op.text, values: paramsOf(side.executor, 0) });
    await side.client.query('ROLLBACK');
  }
for (const side of sides) {
  const sorted = [...side.samples].sort((a, b) => a - b);
  process.stdout.write(
    `${side.tree}: ${n} workflows per call${final ? ' (final)' : ''}, backend CPU ms per call: ${side.samples.map((x) => x.toFixed(2)).join(' ')} ` +
      `(min ${sorted[0]!.toFixed(2)}, median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)})\n`,
  );
  await side.client.end();
}
