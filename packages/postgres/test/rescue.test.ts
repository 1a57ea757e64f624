import test from 'ava';
import { JobStore } from '@partita/postgres';
import { loadOps } from '../src/sql.js';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

// Rescue without an index over running jobs (migration 0014): every node's round reads the nodes
// table and reads jobs only for nodes that stopped heartbeating; the sweep (rescueExpired) reads
// all of jobs for every expired lease.

interface Ctx {
  db: TestSchema;
  store: JobStore;
  s: string;
}

function withStore(title: string, fn: (t: import('ava').ExecutionContext, c: Ctx) => Promise<void>) {
  test(title, async (t) => {
    const db = await freshSchema('rescue');
    const store = await JobStore.open({ postgres: db.url, schema: db.schema });
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
    try {
      await fn(t, { db, store, s: `"${db.schema}"` });
    } finally {
      await store.close();
      await db.drop();
    }
  });
}

async function claimOne(store: JobStore, nodeId: string, leaseMs: number): Promise<string> {
  const id = await store.enqueueOne({ partition: 'p', type: 'x' });
  const [job] = await store.claim({ nodeId, partition: 'p', leaseMs, queues: [{ queue: 'default', limit: 1 }] });
  if (job?.id !== id) throw new Error(`claimed ${job?.id}, not ${id}`);
  return id;
}

async function nodeRow(c: Ctx, id: string): Promise<{ heartbeat_at: Date } | undefined> {
  return (await c.db.pool.query(`SELECT heartbeat_at FROM ${c.s}.nodes WHERE id = $1`, [id])).rows[0];
}

async function state(c: Ctx, id: string): Promise<string | undefined> {
  return (await c.store.getJob(id))?.state;
}

withStore('a claimed plain job has an entry in no index of jobs but the primary key', async (t, c) => {
  const id = await claimOne(c.store, 'node-a', 60_000);
  // Every index of jobs whose predicate (if any) the running row meets: each costs an entry per claim.
  const { rows: indexes } = await c.db.pool.query<{ name: string; pred: string | null }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_expr(i.indpred, i.indrelid) AS pred
     FROM pg_index i WHERE i.indrelid = '${c.s}.jobs'::regclass ORDER BY 1`,
  );
  const entered: string[] = [];
  for (const index of indexes) {
    const { rows } = await c.db.pool.query(`SELECT 1 FROM ${c.s}.jobs WHERE id = $1 AND (${index.pred ?? 'true'})`, [id]);
    if (rows.length > 0) entered.push(index.name.replace(/^.*\./, ''));
  }
  t.deepEqual(entered, ['jobs_pkey']);
});

withStore(
  'the rescue round takes the expired jobs of a node that stopped heartbeating, only once their leases ran out, then drops its row',
  async (t, c) => {
    const { store, db, s } = c;
    // Node a's profile: lease 60 s, heartbeat 20 s, so it counts as stopped 40 s after its last beat.
    await store.heartbeat('a', 60_000, [], { leaseMs: 60_000, heartbeatMs: 20_000 });
    const expired = await claimOne(store, 'a', 1);
    const fresh = await claimOne(store, 'a', 60_000);
    await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(await store.rescueDeadNodes(60_000), [], 'a heartbeats: its expired lease is not this round’s (the sweep’s)');
    t.is(await state(c, expired), 'running');

    await db.pool.query(`UPDATE ${s}.nodes SET heartbeat_at = now() - interval '41 seconds' WHERE id = 'a'`);
    t.deepEqual(
      (await store.rescueDeadNodes(60_000)).map((r) => [r.id, r.failed]),
      [[expired, false]],
      'by its own profile a stopped: the expired job is rescued, the fresh lease is not',
    );
    t.is(await state(c, expired), 'queued');
    t.is(await state(c, fresh), 'running');
    t.truthy(await nodeRow(c, 'a'), 'a still holds a running job: it stays a suspect');

    await db.pool.query(`UPDATE ${s}.jobs SET locked_until = now() - interval '1 millisecond' WHERE id = $1`, [fresh]);
    t.deepEqual(
      (await store.rescueDeadNodes(60_000)).map((r) => r.id),
      [fresh],
    );
    t.truthy(await nodeRow(c, 'a'), 'this round still saw the job running');
    t.deepEqual(await store.rescueDeadNodes(60_000), []);
    t.is(await nodeRow(c, 'a'), undefined, 'nothing of a is left to rescue: its row is gone');

    await store.heartbeat('a', 60_000, [], { leaseMs: 60_000, heartbeatMs: 20_000 });
    t.truthy(await nodeRow(c, 'a'), 'a node that was only slow is back with its next heartbeat');
  },
);

withStore('without a profile the caller’s staleMs says when a node stopped; the sweep takes every expired lease', async (t, c) => {
  const { store, db, s } = c;
  await store.heartbeat('b', 60_000, []);
  const job = await claimOne(store, 'b', 1);
  await db.pool.query(`UPDATE ${s}.nodes SET heartbeat_at = now() - interval '2 seconds' WHERE id = 'b'`);
  t.deepEqual(await store.rescueDeadNodes(5_000), [], 'heard from 2 s ago: not stopped by a 5 s measure');
  t.is(await state(c, job), 'running');
  t.deepEqual(
    (await store.rescueDeadNodes(1_000)).map((r) => r.id),
    [job],
  );
  await db.pool.query(`DELETE FROM ${s}.jobs WHERE id = $1`, [job]);

  // A live node's lease that ran out (the node let go of its job): only the sweep finds it, and a
  // job whose node never had a row at all.
  await store.heartbeat('c', 60_000, []);
  const letGo = await claimOne(store, 'c', 1);
  const orphan = await claimOne(store, 'never-seen', 1);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(await store.rescueDeadNodes(30_000), []);
  t.deepEqual((await store.rescueExpired()).map((r) => r.id).sort(), [letGo, orphan].sort());
  t.is(await state(c, letGo), 'queued');
  t.truthy(await nodeRow(c, 'c'), 'the sweep leaves live nodes be');
});

withStore(
  'a node that leaves with jobs in hand stays out of the roll call until its jobs are rescued; one that leaves with none is gone at once',
  async (t, c) => {
    const { store } = c;
    const profile = { cluster: 'k', leaseMs: 60_000, heartbeatMs: 20_000 };
    await store.heartbeat('a', 60_000, [], profile);
    await store.heartbeat('b', 60_000, [], profile);
    t.deepEqual(
      (await store.nodesSeen('k')).map((n) => n.id),
      ['a', 'b'],
    );
    const job = await claimOne(store, 'a', 1);
    await store.leaveNodes('a');
    await store.leaveNodes('b');
    t.deepEqual(await store.nodesSeen('k'), [], 'both left the roll call');
    t.is(await nodeRow(c, 'b'), undefined);
    t.truthy(await nodeRow(c, 'a'), 'a left a running job behind: its row stays for the rescue rounds');
    t.deepEqual(
      (await store.rescueDeadNodes(60_000)).map((r) => r.id),
      [job],
      'rescued once its lease ran out, though the profile’s lease is a minute',
    );
    t.deepEqual(await store.rescueDeadNodes(60_000), []);
    t.is(await nodeRow(c, 'a'), undefined);
  },
);

withStore('a claim of keyed jobs never reads all of jobs to learn which keys are running', async (t, c) => {
  const { store, db, s } = c;
  // Without an index over every running job, the claim's check for a running job of a candidate's
  // key, in its hashed form, reads the running keyed jobs from jobs_running_key_idx, or else all of jobs.
  for (let i = 0; i < 10; i++) {
    await store.enqueue(Array.from({ length: 1000 }, (_, k) => ({ partition: 'p', type: 'x', executionKey: `k${(i * 1000 + k) % 1000}` })));
  }
  await store.claim({ nodeId: 'a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 500 }] });
  await db.pool.query(`VACUUM ANALYZE ${s}.jobs`);
  const text = loadOps(db.schema).claim_batch.text;
  const client = await db.pool.connect();
  try {
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await client.query(`SET plan_cache_mode = ${mode}`);
      await client.query(`PREPARE claim AS ${text}`);
      const { rows } = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE claim('p', '{default}', '{32}', 'a', 60000, NULL, NULL)`);
      await client.query('DEALLOCATE claim');
      type Node = { 'Node Type': string; 'Relation Name'?: string; Plans?: Node[] };
      const all = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(all)];
      const scans = all(rows[0]['QUERY PLAN'][0].Plan as Node).filter(
        (n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'jobs',
      );
      t.is(scans.length, 0, `${mode}: a sequential scan of jobs`);
    }
  } finally {
    await client.query('RESET plan_cache_mode');
    client.release();
  }
});

test('both rescue paths requeue an expired job with its lost attempt recorded, and fail one rescued maxRescues times into history', async (t) => {
  const db = await freshSchema('rescue');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema, maxRescues: 2 });
  const s = `"${db.schema}"`;
  try {
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
    const expire = (id: string) => db.pool.query(`UPDATE ${s}.jobs SET locked_until = now() - interval '1 s' WHERE id = $1`, [id]);
    const errors = async (id: string) => ((await store.getJob(id))?.errors ?? []).map((e) => `${e.name}: ${e.message}`);
    for (const path of ['sweep', 'dead node'] as const) {
      const rescue = () => (path === 'sweep' ? store.rescueExpired() : store.rescueDeadNodes(1000));
      const id = await claimOne(store, 'node-a', 60_000);
      if (path === 'dead node')
        await db.pool.query(`INSERT INTO ${s}.nodes (id, heartbeat_at) VALUES ('node-a', now() - interval '1 hour')`);
      await expire(id);
      t.deepEqual(await rescue(), [{ id, partition: 'p', queue: 'default', executionKey: null, failed: false }], `${path}: requeued`);
      t.is((await store.getJob(id))?.state, 'queued');
      t.deepEqual(await errors(id), ['LeaseExpired: node node-a stopped renewing the lease; the job was rescued']);
      // Claimed and lost again: the second rescue is the last (maxRescues 2).
      const [again] = await store.claim({ nodeId: 'node-a', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 1 }] });
      t.is(again?.id, id);
      await expire(id);
      t.deepEqual(await rescue(), [{ id, partition: 'p', queue: 'default', executionKey: null, failed: true }], `${path}: failed`);
      const finished = await store.getJob(id);
      t.is(finished?.state, 'failed');
      t.deepEqual((await errors(id)).slice(1), ['LeaseExpired: node node-a stopped renewing the lease 2 times; the job was failed']);
      t.is((await db.pool.query(`SELECT 1 FROM ${s}.jobs WHERE id = $1`, [id])).rowCount, 0, `${path}: gone from the live table`);
      await db.pool.query(`DELETE FROM ${s}.nodes`);
    }
  } finally {
    await store.close();
    await db.drop();
  }
});
