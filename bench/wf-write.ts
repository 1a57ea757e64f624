/**
 * transition_write alone, as a step batch sends it: R 'u' records (a finished step each: state done,
 * its input, output {}, 1 attempt) and their W workflows, in a transaction rolled back each time,
 * planned generically (as a step's transaction plans it), on a schema wf-wal.ts kept (WF_WAL_KEEP=1).
 * With log_min_duration_statement on the database, its log splits each call into bind and execute.
 *
 *   npx tsx bench/wf-write.ts SCHEMA [--tree DIR] [--calls 20] [--records 1000]
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { resolvePostgresUrl } from './lib/postgres.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : def);
const schema = args[0]!;
const tree = resolve(opt('--tree', new URL('..', import.meta.url).pathname));
const calls = Number(opt('--calls', '20'));
const count = Number(opt('--records', '1000'));
const log = (msg: string) => process.stderr.write(`[wf-write] ${msg}\n`);

const db = await import(pathToFileURL(join(tree, 'packages/workflows/dist/db.js')).href);
const executor = await import(pathToFileURL(join(tree, 'packages/workflows/dist/executor.js')).href);
const op = db.wfOps(schema).transition_write as { name: string; text: string };
const url = await resolvePostgresUrl(log);
const client = new pg.Client({ connectionString: url });
await client.connect();
const { rows } = await client.query(
  `SELECT workflow_id, activity, dimension, type, state, job_id, input, output, hook, attempts, errors, children_open, start_day::text AS start_day
   FROM "${schema}".wf_activities WHERE activity <> 't1' ORDER BY seq LIMIT $1`,
  [count],
);
const days = new Map(rows.map((r) => [r.workflow_id, r.start_day]));
const workflows = [...days.keys()].map((id) => ({ id, status: 1, data: {}, expire: 3600 }));
let params: unknown[];
if (typeof executor.transitionWriteParams === 'function') {
  const records = rows.map((r) => ({ workflowId: r.workflow_id, record: r, entered: false, mode: 'u', day: r.start_day }));
  params = executor.transitionWriteParams(
    records,
    workflows.map((w) => ({ ...w, start_day: days.get(w.id) })),
    null,
  );
} else {
  const records = rows.map((r) => ({
    ...r,
    errors: undefined,
    hook: r.hook ?? undefined,
    children_open: r.children_open ?? undefined,
    mode: 'u',
  }));
  params = [JSON.stringify(records), JSON.stringify(workflows.map((w) => ({ ...w, start_day: days.get(w.id) }))), null, null];
}
// Each call is rolled back: its dead row versions are vacuumed away before a run, so that runs compare.
await client.query(`VACUUM "${schema}".wf_activities, "${schema}".wf_workflows`);
// WF_WRITE_ONLY=records|workflows: the other kind's parameters NULL (which part costs what).
const only = process.env.WF_WRITE_ONLY;
if (only) {
  const tree = typeof executor.transitionWriteParams === 'function';
  params = params.map((v, i) => {
    const isWorkflows = tree ? i === 15 : i === 1;
    const isRecords = tree ? i < 15 : i === 0;
    return (only === 'records' && isWorkflows) || (only === 'workflows' && isRecords) ? null : v;
  });
}
log(`${rows.length} records, ${workflows.length} workflows, ${calls} calls of ${op.name}`);
// The backend's own CPU time (utime + stime of its process, this machine's Postgres): unlike the log's
// durations (wall time), it does not grow with the machine's load.
const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
const cpuMs = () => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const cpu0 = cpuMs();
const began = performance.now();
for (let i = 0; i < calls; i++) {
  await client.query('BEGIN');
  await client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
  await client.query({ name: op.name, text: op.text, values: params });
  await client.query('ROLLBACK');
}
log(
  `${Math.round(((performance.now() - began) / calls) * 100) / 100} ms per call (client side), backend CPU ${Math.round(((cpuMs() - cpu0) / calls) * 100) / 100} ms per call (BEGIN, SETs, statement, ROLLBACK)`,
);
if (process.env.WF_WRITE_EXPLAIN) {
  // The generic plan of the named statement, run once more with auto_explain (into the server's log).
  await client.query('BEGIN');
  await client.query(
    "LOAD 'auto_explain'; SET LOCAL auto_explain.log_min_duration = 0; SET LOCAL auto_explain.log_analyze = on; SET LOCAL auto_explain.log_nested_statements = on",
  );
  await client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
  await client.query({ name: op.name, text: op.text, values: params });
  await client.query('ROLLBACK');
}
await client.end();
