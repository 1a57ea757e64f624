/**
 * The output of a workflow that a step's transition finishes is published by the node that ran the
 * step once that transaction committed (tx.afterCommit), with no emit job in between: each output
 * reaches its pubsub caller and every subscriber once, and no emit job is ever stored for it.
 */
import test, { type ExecutionContext } from 'ava';
import { clientBus, clientStore } from '@partita/client/internal';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app, type WorkflowEvent } from '../src/index.js';
import { EMIT_TYPE } from '../src/executor.js';
import { workflowClient, workflowNode } from './helpers.js';

const APP = `
app:
  id: outs
  version: '1'
  graphs:
    - subscribes: outs.start
      publishes: outs.done
      input: { schema: { type: object, properties: { n: { type: number } } } }
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: outs.step, input: { maps: { n: '{t1.output.data.n}' } } }
        s2: { type: worker, topic: outs.step, input: { maps: { n: '{s1.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
`;

/** A node running APP's steps, and the app through a client of its cluster, version 1 active. */
async function outsApp(t: ExecutionContext, schema: string) {
  const { db } = await workflowNode(t, schema, {
    concurrency: 4,
    jobs: [defineJob<{ n: number }>({ type: 'outs.step', perform: (p) => ({ n: p.n + 1 }) })],
  });
  const client = await workflowClient(t, db);
  const outs = app(client, 'outs');
  await outs.deploy(APP);
  await outs.activate('1');
  return { db, client, outs };
}

test.serial("a step transition's output is published after its commit without an emit job: once to pubsub and to psub", async (t) => {
  const { db, outs } = await outsApp(t, 'wf_outs');
  const heard: WorkflowEvent[] = [];
  const unsub = await outs.psub('outs.done', (_d, e) => void heard.push(e));
  t.teardown(unsub);

  const ids: string[] = [];
  for (let n = 0; n < 5; n++) {
    const id = `w${n}`;
    ids.push(id);
    t.deepEqual(await outs.pubsub('outs.start', { n }, { id, timeoutMs: 15_000 }), { n: n + 2 });
  }
  await until('every output heard by psub', () => ids.every((id) => heard.some((e) => e.id === id && e.kind === 'output')), 10_000);
  // Late duplicates would arrive by now.
  await new Promise((r) => setTimeout(r, 300));
  for (const id of ids) t.is(heard.filter((e) => e.id === id && e.kind === 'output').length, 1, `${id}: one output`);
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*) FROM "${db.schema}".jobs WHERE type = $1) + (SELECT count(*) FROM "${db.schema}".jobs_history WHERE type = $1) AS n`,
    [EMIT_TYPE],
  );
  t.is(Number(rows[0].n), 0, 'no emit job was stored');
});

test.serial(
  'a pubsub caller in the process of the node that publishes the output gets it from that node, not from the bus or Postgres',
  async (t) => {
    const { client, outs } = await outsApp(t, 'wf_outs_here');
    // The client's bus subscribes to nothing (the output never comes that way), and its read of the
    // workflow's outcome finds it still running: only the node's hand in this process can answer.
    const bus = clientBus(client)!;
    bus.subscribe = async () => async () => undefined;
    const pool = (clientStore(client) as unknown as { pool: { query: (...args: unknown[]) => Promise<unknown> } }).pool;
    const query = pool.query.bind(pool);
    let polls = 0;
    pool.query = async (...args: unknown[]) => {
      const name = (args[0] as { name?: string } | undefined)?.name ?? '';
      if (!name.includes('workflow_outcome')) return query(...args);
      polls += 1;
      return { rows: [] };
    };
    t.deepEqual(await outs.pubsub('outs.start', { n: 1 }, { id: 'here', timeoutMs: 8_000 }), { n: 3 });
    t.log(`${polls} reads of the outcome meanwhile`);
  },
);
