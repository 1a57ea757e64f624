import test from 'ava';
import type pg from 'pg';
import { JobStore } from '@partita/postgres';
import { loadOps } from '../src/sql.js';
import { freshSchema } from '../../../test/helpers/index.js';

// The completion, the failure write, the hand-back, the progress write, the heartbeat's renewal,
// the cancel by id and the key settle reach a batch's rows by primary key whatever the statistics say. Taken while jobs was empty (reltuples 0 with pages left, as after the bench's
// VACUUM ANALYZE between drains, or an autovacuum between bursts), they make jobs count as one row
// however many it holds; a join with the batch then read every row of the node (jobs_running_idx),
// or all of jobs_pkey, on every statement.

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

/** A parameter written out for EXECUTE (which takes no bind parameters). */
function literal(client: pg.PoolClient, value: unknown): string {
  return value === null ? 'NULL' : client.escapeLiteral(String(value));
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

test('complete, fail, release, progress, heartbeat, cancel and settle probe jobs by primary key with statistics of an empty table, in custom and generic plans', async (t) => {
  const db = await freshSchema('plans');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  const client = await db.pool.connect();
  try {
    const s = `"${db.schema}"`;
    // Statistics of an empty table that has pages: insert, delete, ANALYZE (no VACUUM to truncate).
    await client.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type) SELECT gen_random_uuid(), 'p', 'default', 't' FROM generate_series(1, 2000)`,
    );
    await client.query(`DELETE FROM ${s}.jobs`);
    await client.query(`ANALYZE ${s}.jobs`);
    // Then thousands of live jobs, most running under three nodes.
    await client.query(`
      INSERT INTO ${s}.jobs (id, partition, queue, type, state, locked_by, locked_until, attempts)
      SELECT gen_random_uuid(), 'p', 'default', 't', 'running', 'node-' || (g % 3), now() + interval '1 minute', 1
      FROM generate_series(1, 6000) g`);
    await client.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type) SELECT gen_random_uuid(), 'p', 'default', 't' FROM generate_series(1, 4000)`,
    );
    const { rows } = await client.query<{ id: string }>(`SELECT id FROM ${s}.jobs WHERE locked_by = 'node-1' LIMIT 1000`);
    const ids = rows.map((r) => r.id);
    t.is(ids.length, 1000);
    // Keys whose head job finished, each with waiting jobs behind it: what a settle is handed.
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await client.query(
      `INSERT INTO ${s}.jobs (id, partition, queue, type, state, execution_key)
       SELECT gen_random_uuid(), 'p', 'default', 't', 'waiting', 'k' || (g % 200) FROM generate_series(1, 2000) g`,
    );
    await client.query(
      `INSERT INTO ${s}.execution_key_heads (partition, execution_key, head) SELECT 'p', k, gen_random_uuid() FROM unnest($1::text[]) k`,
      [keys],
    );
    const ops = loadOps(db.schema);
    const cases: [string, string, unknown[]][] = [
      [
        'complete_batch',
        ops.complete_batch.text,
        // The ids sorted, as the store sends them, with their attempts in the same order.
        [`{${[...ids].sort().join(',')}}`, `{${ids.map(() => 1).join(',')}}`, '{}', 'node-1', null, null, null, null, null, null],
      ],
      [
        // Taking the keys' next jobs into the completing node's hands.
        'complete_batch',
        ops.complete_batch.text,
        [
          `{${[...ids].sort().join(',')}}`,
          `{${ids.map(() => 1).join(',')}}`,
          '{}',
          'node-1',
          null,
          // The rows' addresses as their claims left them: fetched there, the rest by id.
          `{${ids.map(() => '"(0,1)"').join(',')}}`,
          60_000,
          '{t}',
          null,
          `{${ids.map(() => 't').join(',')}}`,
        ],
      ],
      [
        // Inside a continuation's transaction: the successes its continuation records skip history.
        'complete_batch',
        ops.complete_batch.text,
        [
          `{${[...ids].sort().join(',')}}`,
          `{${ids.map(() => 1).join(',')}}`,
          '{}',
          'node-1',
          '{workflows.transition}',
          null,
          null,
          null,
          null,
          null,
        ],
      ],
      [
        // A batch without keyed jobs: complete_batch's plain twin.
        'complete_plain',
        ops.complete_plain.text,
        [
          `{${[...ids].sort().join(',')}}`,
          `{${ids.map(() => 1).join(',')}}`,
          '{}',
          'node-1',
          null,
          `{${ids.map(() => '"(0,1)"').join(',')}}`,
        ],
      ],
      ['heartbeat', ops.heartbeat.text, ['node-1', 60_000, null, `{${ids.join(',')}}`, null]],
      [
        'fail_batch',
        ops.fail_batch.text,
        [
          `{${ids.join(',')}}`,
          `{${ids.map(() => 1).join(',')}}`,
          `{${ids.map(() => '"{}"').join(',')}}`,
          `{${ids.map((_, i) => (i % 2 ? 'NULL' : '"2030-01-01T00:00:00Z"')).join(',')}}`,
          `{${ids.map(() => 'failed').join(',')}}`,
          'node-1',
        ],
      ],
      [
        'release_jobs',
        ops.release_jobs.text,
        [`{${ids.join(',')}}`, `{${ids.map(() => 1).join(',')}}`, 'node-1', `{${ids.map(() => 'NULL').join(',')}}`],
      ],
      ['update_progress', ops.update_progress.text, [`{${ids.join(',')}}`, `{${ids.map(() => '"{}"').join(',')}}`, 'node-1']],
      ['cancel_jobs', ops.cancel_jobs.text, [`{${ids.join(',')}}`]],
      ['settle_execution_keys', ops.settle_execution_keys.text, [`{${keys.map(() => 'p').join(',')}}`, `{${keys.join(',')}}`]],
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
          const whole = all.filter(
            (n) => n['Relation Name'] === 'jobs' && (n['Node Type'] === 'Seq Scan' || (n['Index Name'] && !n['Index Cond'])),
          );
          t.deepEqual(
            whole.map((n) => `${n['Node Type']} ${n['Index Name'] ?? ''}`),
            [],
            `${name} (${mode}) reads all of jobs or of an index`,
          );
          // The settle reaches each key's head by its id, one probe per key, and the job it promotes by TID.
          const probe = name === 'settle_execution_keys' ? /\bid = h\.head\b/ : /\bid = ANY\b/;
          const byId = all.filter((n) => n['Index Name'] === 'jobs_pkey' && probe.test(n['Index Cond'] ?? ''));
          t.true(
            byId.length > 0,
            `${name} (${mode}) probes jobs_pkey by id: ${JSON.stringify(all.filter((n) => n['Relation Name'] === 'jobs').map((n) => [n['Node Type'], n['Index Name'], n['Index Cond']]))}`,
          );
          if (name === 'complete_batch' || name === 'complete_plain') {
            const indexes = all.map((n) => n['Index Name']).filter((i) => i !== undefined);
            t.false(indexes.includes('jobs_running_idx'), `${name} (${mode}) reads the node's running jobs: ${indexes.join(', ')}`);
          }
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

// The store runs complete_batch with a generic plan. Its ids, attempts and results must be parsed
// once per statement however their parameters are typed: a `$3::jsonb` on a parameter typed text
// is a cast the generic plan evaluates per row (the whole object, on every row: 6 s for 1,300
// rows), so they go through scalar subqueries, evaluated once.
for (const op of ['complete_batch', 'complete_plain'] as const) {
  test(`${op} parses its ids, attempts and results once per statement in a generic plan, even from text parameters`, async (t) => {
    const db = await freshSchema('plans_json');
    const store = await JobStore.open({ postgres: db.url, schema: db.schema });
    const client = await db.pool.connect();
    try {
      const ops = loadOps(db.schema);
      await client.query('BEGIN');
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      const types =
        op === 'complete_batch'
          ? 'text, text, text, text, text[], text, double precision, text[], text[], text'
          : 'text, text, text, text, text[], text';
      await client.query(`PREPARE typed_text(${types}) AS ${ops[op].text}`);
      const explained = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (VERBOSE, COSTS OFF) EXECUTE typed_text('{}', '{}', '{}', 'n', ${op === 'complete_batch' ? 'NULL, NULL, NULL, NULL, NULL, NULL' : 'NULL, NULL'})`,
      );
      const plan = explained.rows.map((r) => r['QUERY PLAN']);
      // The delete's filter and RETURNING read the objects as already-parsed values: a cast to jsonb
      // may appear only in the InitPlans that compute them (Output lines of a Result).
      const casts = /::(jsonb|integer\[\]|uuid\[\])/;
      const inInitPlan = /^\s*Output: \(\$\d+\)::(jsonb|integer\[\]|uuid\[\])$/;
      const perRow = plan.filter((line) => casts.test(line) && !inInitPlan.test(line) && /\$[123]\b/.test(line));
      t.deepEqual(perRow, [], plan.join('\n'));
      for (const type of ['jsonb', 'integer[]', 'uuid[]'])
        t.true(
          plan.some((l) => l.trim() === `Output: ($${type === 'jsonb' ? 3 : type === 'integer[]' ? 2 : 1})::${type}`),
          `${type} is parsed in an InitPlan`,
        );
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      await store.close();
      await db.drop();
    }
  });
}
