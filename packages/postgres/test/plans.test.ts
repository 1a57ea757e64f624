import test from 'ava';
import type pg from 'pg';
import { JobStore } from '@partita/postgres';
import { loadOps } from '../src/sql.js';
import { freshSchema } from '../../../test/helpers/index.js';

// The by-id statements of running jobs find them by primary key, whatever the batch size and plan
// mode (migration 0014): a custom plan, as in a continuation's transaction, that saw the batch
// chose a sequential scan of jobs once no index led with locked_by; one that had such an index
// read every entry the node's jobs had left in it since the last vacuum.

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** A parameter written out for EXECUTE (which takes no bind parameters); arrays as array literals. */
function literal(client: pg.PoolClient, value: unknown): string {
  if (value === null) return 'NULL';
  if (Array.isArray(value))
    return client.escapeLiteral(`{${value.map((e) => (e === null ? 'NULL' : `"${String(e).replace(/["\\]/g, '\\$&')}"`)).join(',')}}`);
  return client.escapeLiteral(String(value));
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

test('complete, fail, release, progress and heartbeat probe jobs by primary key in custom and generic plans alike', async (t) => {
  const db = await freshSchema('plans');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  const client = await db.pool.connect();
  try {
    const s = `"${db.schema}"`;
    // A few thousand live jobs, most of them running under three nodes, with statistics taken:
    // enough that a hash join over a sequential scan is the cheaper plan for a batch of 500 ids.
    await client.query(`
      INSERT INTO ${s}.jobs (id, partition, queue, type, state, locked_by, locked_until, attempts)
      SELECT gen_random_uuid(), 'p', 'default', 't', 'running', 'node-' || (g % 3), now() + interval '1 minute', 1
      FROM generate_series(1, 3000) g`);
    await client.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type) SELECT gen_random_uuid(), 'p', 'default', 't' FROM generate_series(1, 2000)`,
    );
    await client.query(`ANALYZE ${s}.jobs`);
    const { rows } = await client.query<{ id: string }>(`SELECT id FROM ${s}.jobs WHERE locked_by = 'node-1' LIMIT 500`);
    const ids = rows.map((r) => r.id);
    t.is(ids.length, 500);
    const ones = ids.map(() => 1);
    const nulls = ids.map(() => null);
    const ops = loadOps(db.schema);
    const cases: [string, string, unknown[]][] = [
      ['complete_batch', ops.complete_batch.text, [ids, ones, ids.map(() => 'null'), 'node-1', true]],
      ['fail_batch', ops.fail_batch.text, [ids, ones, nulls, nulls, ids.map(() => 'failed'), 'node-1']],
      ['release_jobs', ops.release_jobs.text, [ids, ones, 'node-1', nulls]],
      ['update_progress', ops.update_progress.text, [ids, ids.map(() => '{"done": 1}'), 'node-1']],
      ['heartbeat', ops.heartbeat.text, ['node-1', 60_000, null, ids]],
    ];
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      for (const [name, text, params] of cases) {
        await client.query('BEGIN');
        try {
          // A prepared statement, as the store runs them: EXPLAIN EXECUTE shows the plan the mode picks.
          await client.query(`SET LOCAL plan_cache_mode = ${mode}`);
          await client.query(`PREPARE explained AS ${text}`);
          const args = params.map((p) => literal(client, p)).join(', ');
          const explained = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) EXECUTE explained(${args})`);
          const all = nodes(explained.rows[0]!['QUERY PLAN'][0].Plan);
          const scanned = all.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'jobs');
          t.is(scanned.length, 0, `${name} (${mode}) scans jobs`);
          const indexes = all.map((n) => n['Index Name']).filter((i) => i !== undefined);
          t.true(indexes.includes('jobs_pkey'), `${name} (${mode}) probes jobs_pkey: ${indexes.join(', ')}`);
          t.false(
            indexes.some((i) => i === 'jobs_running_idx' || i === 'jobs_lease_expiry_idx'),
            `${name} (${mode}) reads an index of running jobs: ${indexes.join(', ')}`,
          );
        } finally {
          await client.query('ROLLBACK');
          await client.query('DEALLOCATE ALL');
        }
      }
    }
  } finally {
    client.release();
    await store.close();
    await db.drop();
  }
});
