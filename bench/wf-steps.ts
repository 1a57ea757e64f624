/**
 * steps_lock + steps_take alone, as a step batch sends them (pipelined, generic plans, in a transaction
 * rolled back each time), for one or more built trees in turn: the CPU of each tree's own backend per
 * call (utime + stime from /proc: unlike durations, it does not grow with waiting for a core). Runs
 * on a schema wf-wal.ts kept (WF_WAL_KEEP=1), with the job ids of its `s2` records; the rounds alternate
 * the trees, so the machine's load drifts over both alike.
 *
 *   npx tsx bench/wf-steps.ts SCHEMA TREE [TREE...]   # env N (steps per call, 600), CALLS (30), ROUNDS (6)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { resolvePostgresUrl } from './lib/postgres.js';

const [schema, ...trees] = process.argv.slice(2);
if (!schema || trees.length === 0) throw new Error('usage: wf-steps.ts SCHEMA TREE [TREE...]');
const n = Number(process.env.N ?? 600);
const calls = Number(process.env.CALLS ?? 30);
const rounds = Number(process.env.ROUNDS ?? 6);
const url = await resolvePostgresUrl((msg) => process.stderr.write(`[wf-steps] ${msg}\n`));

interface Op {
  name: string;
  text: string;
}
const sides = await Promise.all(
  trees.map(async (dir) => {
    const tree = resolve(dir);
    const db = await import(pathToFileURL(join(tree, 'packages/workflows/dist/db.js')).href);
    const ops = db.wfOps(schema) as { steps_lock: Op; steps_take: Op };
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    return { tree, ops, client, pid, samples: [] as number[] };
  }),
);
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const { rows } = await sides[0]!.client.query(`SELECT job_id FROM "${schema}".wf_activities WHERE activity = 's2' ORDER BY seq LIMIT $1`, [
  n,
]);
const ids = rows.map((r) => r.job_id as string);
for (let round = 0; round < rounds; round++)
  for (const side of sides) {
    const c0 = cpuMs(side.pid);
    for (let i = 0; i < calls; i++) {
      await side.client.query('BEGIN');
      await side.client.query('SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off');
      const lock = side.client.query({ name: side.ops.steps_lock.name, text: side.ops.steps_lock.text, values: [ids] });
      const take = side.client.query({ name: side.ops.steps_take.name, text: side.ops.steps_take.text, values: [ids] });
      await lock;
      await take;
      await side.client.query('ROLLBACK');
    }
    side.samples.push((cpuMs(side.pid) - c0) / calls);
  }
for (const side of sides) {
  const sorted = [...side.samples].sort((a, b) => a - b);
  process.stdout.write(
    `${side.tree}: ${ids.length} steps per call, backend CPU ms per lock + take: ${side.samples.map((x) => x.toFixed(2)).join(' ')} ` +
      `(min ${sorted[0]!.toFixed(2)}, median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)})\n`,
  );
  await side.client.end();
}
