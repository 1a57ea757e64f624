/**
 * A node whose local time zone is far from UTC: node-postgres reads a bare `date` column as local
 * midnight, which sent on as JSON names the day before in any zone east of UTC. A workflow's
 * start_day reaches the node inside JSON (to_jsonb) or as text, so its transitions find its rows in
 * the partition of the day it started; this guards that.
 */
import test from 'ava';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { workflowNode } from './helpers.js';

// UTC+14: local midnight is always the previous UTC day. Set before any date is parsed in this process.
process.env.TZ = 'Pacific/Kiritimati';

const APP = `
app:
  id: tz
  version: '1'
  graphs:
    - subscribes: tz.start
      expire: 3600
      activities:
        t1: { type: trigger }
        w1: { type: worker, topic: tz.step }
        w2: { type: worker, topic: tz.step }
        w3: { type: worker, topic: tz.step }
      transitions:
        t1: [{ to: w1 }]
        w1: [{ to: w2 }]
        w2: [{ to: w3 }]
`;

test('a node 14 hours ahead of UTC runs 3-step workflows to the end, each row in its one start-day partition', async (t) => {
  t.is(new Date(2026, 0, 1).getTimezoneOffset(), -14 * 60, 'the process runs in UTC+14');
  const { db, node } = await workflowNode(t, 'wf_tz', {
    concurrency: 4,
    pollMs: 50,
    jobs: [defineJob({ type: 'tz.step', perform: () => ({ ok: true }) })],
  });
  const tz = app(node.client, 'tz');
  await tz.deploy(APP);
  await tz.activate('1');
  const ids = await Promise.all(Array.from({ length: 5 }, () => tz.pub('tz.start', {})));
  await until('the workflows finish', async () => (await Promise.all(ids.map((id) => tz.getStatus(id)))).every((s) => s === 0), 30_000, 50);
  const { rows } = await db.pool.query<{ part: string; workflows: number; records: number }>(
    `SELECT w.tableoid::regclass::text AS part, count(DISTINCT w.id)::int AS workflows,
            (SELECT count(*)::int FROM "${db.schema}".wf_activities a WHERE a.workflow_id = ANY(array_agg(w.id))) AS records
     FROM "${db.schema}".wf_workflows w GROUP BY 1`,
  );
  t.is(rows.length, 1, `every workflow in one partition: ${JSON.stringify(rows)}`);
  t.is(rows[0]!.workflows, 5);
  t.is(rows[0]!.records, 5 * 4, 'one record per activity, none written twice into another day');
  const { rows: statuses } = await db.pool.query<{ status: string }>(`SELECT DISTINCT status::text FROM "${db.schema}".wf_workflows`);
  t.deepEqual(
    statuses.map((r) => r.status),
    ['0'],
  );
});
