/**
 * A step's transition runs with generic plans (its continuation asks for them: planning each
 * statement cost more than running it). A generic plan is made once per connection from the
 * statistics of that moment and kept: one made while a table looked empty must still reach rows by
 * key once it holds millions. Every statement a transition can run is explained here as a generic
 * plan under the statistics that tempt the planner most (a table analyzed empty, its file truncated
 * by VACUUM or still holding pages; a table never analyzed), with partition pruning off so that
 * every partition's scan shows: none may read a whole table or a whole index of the tables that grow.
 */
import test from 'ava';
import { silentLogger } from '@partita/core';
import type pg from 'pg';
import { GENERIC_PLAN_SETTINGS, loadOps } from '@partita/postgres';
import { wfOps } from '../src/db.js';
import { workflowNode } from './helpers.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'TID Cond'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** Tables that grow with the work (their partitions too): jobs, their history, workflows and their rows. */
const GROWS = /^(jobs|jobs_history.*|execution_key_heads|wf_workflows.*|wf_activities.*|wf_hooks|wf_signals|wf_fanin)$/;

/** Explains `text` as a generic plan (parameters all NULL: a generic plan does not depend on them). */
async function genericPlan(client: pg.PoolClient, text: string): Promise<PlanNode[]> {
  await client.query('BEGIN');
  try {
    await client.query(GENERIC_PLAN_SETTINGS);
    await client.query('SET LOCAL enable_partition_pruning = off');
    await client.query(`PREPARE explained AS ${text}`);
    const { rows } = await client.query<{ n: number }>(
      `SELECT cardinality(parameter_types) AS n FROM pg_prepared_statements WHERE name = 'explained'`,
    );
    const args = Array.from({ length: rows[0]!.n }, () => 'NULL').join(', ');
    const explained = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON) EXECUTE explained${args ? `(${args})` : ''}`,
    );
    return nodes(explained.rows[0]!['QUERY PLAN'][0].Plan);
  } finally {
    await client.query('ROLLBACK');
    await client.query('DEALLOCATE ALL');
  }
}

test('every statement of a transition reaches the growing tables by key in a generic plan made under any statistics', async (t) => {
  // The node creates the schema (jobs, workflows) and the day partitions; idle, it adds no rows to explain against.
  const { db } = await workflowNode(t, 'wf_plans', { concurrency: 1, logger: silentLogger() });
  // The statements marked `-- plan: generic`, the job store's and the workflows': those a transition plans generically.
  const ops = Object.fromEntries(Object.entries({ ...loadOps(db.schema), ...wfOps(db.schema) }).filter(([, s]) => s.generic));
  t.deepEqual(
    ['complete_batch', 'fail_batch', 'enqueue_leased', 'steps_lock', 'steps_take', 'transition_write', 'workflows_insert'].filter(
      (op) => !(op in ops),
    ),
    [],
    'the statements of every step transition and pub are marked',
  );
  const client = await db.pool.connect();
  t.teardown(() => client.release());
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind = 'r'`,
    [db.schema],
  );
  const growing = tables.map((r) => r.name).filter((name) => GROWS.test(name));
  t.true(growing.includes('jobs') && growing.some((name) => name.startsWith('wf_activities_')), growing.join(', '));

  // An index condition that leaves out an index's first column still reads the whole index.
  const { rows: indexes } = await client.query<{ name: string; first: string }>(
    `SELECT c.relname AS name, a.attname AS first
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE n.nspname = $1`,
    [db.schema],
  );
  const firstColumn = new Map(indexes.map((i) => [i.name, i.first]));
  const states: [string, () => Promise<void>][] = [
    ['never analyzed', async () => undefined],
    [
      'analyzed empty, truncated by VACUUM',
      async () => void (await client.query(`VACUUM ANALYZE ${growing.map((n) => `"${db.schema}"."${n}"`).join(', ')}`)),
    ],
  ];
  const found: string[] = [];
  for (const [state, apply] of states) {
    await apply();
    for (const [op, statement] of Object.entries(ops)) {
      const plan = await genericPlan(client, statement.text);
      for (const n of plan) {
        const relation = n['Relation Name'];
        if (!relation || !GROWS.test(relation)) continue;
        const first = n['Index Name'] === undefined ? undefined : firstColumn.get(n['Index Name']);
        const whole =
          n['Node Type'] === 'Seq Scan' ||
          (n['Index Name'] !== undefined && !new RegExp(`\\(${first ?? '.'} = `).test(n['Index Cond'] ?? ''));
        if (whole) found.push(`${op} (${state}): ${n['Node Type']} on ${relation}${n['Index Name'] ? ` (${n['Index Name']})` : ''}`);
      }
    }
  }
  t.deepEqual(found, []);
});
