/**
 * durableTransitions: which of a step's transitions commit without waiting for their WAL flush. A
 * deferred constraint trigger of the test's own on wf_activities runs at each COMMIT and records the
 * synchronous_commit that commit ran with, beside the activity records the transaction wrote: what
 * Postgres itself was told, not what the executor meant to tell it.
 */
import test, { type ExecutionContext } from 'ava';
import { defineJob } from '@partita/runtime';
import { app, WorkflowFailedError, workflowsPlugin, type DurableTransitions } from '../src/index.js';
import { commitsAsync } from '../src/plugin.js';
import { newEffects, type EmitPayload } from '../src/executor.js';
import { workflowClient, workflowNode } from './helpers.js';

const APP = `
app:
  id: relax
  version: '1'
  graphs:
    - subscribes: relax.start
      publishes: relax.done
      input: { schema: { type: object, properties: { n: { type: number }, fail: { type: boolean } } } }
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: relax.step, input: { maps: { n: '{t1.output.data.n}' } } }
        s2: { type: worker, topic: relax.step, input: { maps: { n: '{s1.output.data.n}', fail: '{t1.output.data.fail}' } } }
        s3: { type: worker, topic: relax.step, input: { maps: { n: '{s2.output.data.n}' } }, job: { maps: { n: '{$self.output.data.n}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
        s2: [{ to: s3 }]
`;

test('the decision: a transition commits asynchronously only with nothing to publish or cancel after it, and never with durableTransitions all', (t) => {
  const quiet = newEffects();
  quiet.wakes.add('p\u0000default');
  t.true(commitsAsync('announced', quiet), 'only next steps (their queues woken): nothing announced');
  t.false(commitsAsync('all', quiet));
  const output: EmitPayload = { app: 'a', topic: 'a.done', id: 'w', kind: 'output', status: 0, data: {} };
  t.false(commitsAsync('announced', { ...newEffects(), events: [output] }), 'a workflow ended: its output is published');
  t.false(commitsAsync('announced', { ...newEffects(), events: [{ ...output, kind: 'emit' }] }), 'emitted data is published');
  t.false(commitsAsync('announced', { ...newEffects(), cancels: ['job'] }), 'steps of an interrupted workflow are cancelled');
  t.throws(() => workflowsPlugin({ durableTransitions: 'some' as DurableTransitions }), { message: /durableTransitions/ });
});

/** Runs 4 workflows that finish and 2 whose s2 fails; what each transaction wrote and the setting it committed with. */
async function commitsOf(t: ExecutionContext, name: string, durableTransitions?: DurableTransitions) {
  const { db } = await workflowNode(t, name, {
    concurrency: 4,
    plugins: [workflowsPlugin(durableTransitions ? { durableTransitions } : {})],
    jobs: [
      defineJob<{ n: number; fail?: boolean }>({
        type: 'relax.step',
        perform: (p) => {
          if (p.fail) throw new Error('s2 fails');
          return { n: p.n + 1 };
        },
      }),
    ],
  });
  const q = `"${db.schema}"`;
  await db.pool.query(`
    CREATE TABLE ${q}.commit_seen (tx bigint NOT NULL, sc text NOT NULL, activity text NOT NULL, state text NOT NULL);
    CREATE FUNCTION ${q}.commit_seen_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${q}.commit_seen VALUES (txid_current(), current_setting('synchronous_commit'), NEW.activity, NEW.state);
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER commit_seen AFTER INSERT OR UPDATE ON ${q}.wf_activities DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${q}.commit_seen_record();
  `);
  const client = await workflowClient(t, db);
  const relax = app(client, 'relax');
  await relax.deploy(APP);
  await relax.activate('1');
  for (let n = 0; n < 4; n++) t.deepEqual(await relax.pubsub('relax.start', { n }, { timeoutMs: 15_000 }), { n: n + 3 });
  for (let n = 0; n < 2; n++)
    await t.throwsAsync(relax.pubsub('relax.start', { n, fail: true }, { timeoutMs: 15_000 }), { instanceOf: WorkflowFailedError });
  // Each transaction: what it did (by the records it wrote) and how it committed (one setting per commit).
  const { rows } = await db.pool.query<{ sc: string; records: string[] }>(
    `SELECT min(sc) AS sc, array_agg(activity || ' ' || state ORDER BY activity) AS records
     FROM ${q}.commit_seen GROUP BY tx`,
  );
  const kinds = new Map<string, Set<string>>();
  for (const r of rows) {
    const kind = r.records.includes('t1 done')
      ? 'pub'
      : r.records.includes('s3 done') || r.records.includes('s2 failed')
        ? 'ends a workflow'
        : 'moves a workflow on';
    kinds.set(kind, (kinds.get(kind) ?? new Set()).add(r.sc));
  }
  return { transactions: rows.length, kinds: Object.fromEntries([...kinds].map(([k, v]) => [k, [...v].sort()])) };
}

test.serial(
  'announced (default): a step that moves a workflow on commits with synchronous_commit off; the pub and the step that ends it (done or failed) commit synchronously',
  async (t) => {
    const { transactions, kinds } = await commitsOf(t, 'wf_relax');
    t.deepEqual(kinds, { pub: ['on'], 'moves a workflow on': ['off'], 'ends a workflow': ['on'] });
    // 6 pubs, 6 ends, and s1→s2 of each plus s2→s3 of the 4 that finish (fewer if steps shared a batch).
    t.true(transactions >= 12 && transactions <= 22, `${transactions} transactions`);
  },
);

test.serial('durableTransitions all: every transition commits synchronously', async (t) => {
  const { kinds } = await commitsOf(t, 'wf_relax_all', 'all');
  t.deepEqual(kinds, { pub: ['on'], 'moves a workflow on': ['on'], 'ends a workflow': ['on'] });
});
