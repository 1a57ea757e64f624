/**
 * Background processes across real node processes (fixtures/process-node.ts): the owner of a run
 * paused with SIGSTOP past its lease while another node takes the run over, then resumed with
 * SIGCONT: its progress() gets `conflict` and it writes nothing more; and an owner killed with
 * SIGKILL mid-run: another node resumes the run from its saved progress (done items not redone).
 */
import test from 'ava';
import path from 'node:path';
import { connect } from '@partita/client';
import { processes } from '@partita/processes';
import { freshSchema, natsUrl, spawnNode, until, type SpawnedNode } from '../../../test/helpers/index.js';

const NODE = path.join(import.meta.dirname, 'fixtures', 'process-node.ts');

interface LogRow {
  node: string;
  item: string;
  epoch: number;
  phase: string;
  result: string | null;
}

async function setup(t: import('ava').ExecutionContext, prefix: string, env: Record<string, string>) {
  const db = await freshSchema(prefix);
  await db.pool.query(
    `CREATE TABLE "${db.schema}".proc_log (node text, item text, epoch int, phase text, result text, at timestamptz DEFAULT clock_timestamp())`,
  );
  const nats = await natsUrl();
  const nodes = new Map<string, SpawnedNode>();
  const spawn = async (id: string) => {
    const n = spawnNode(NODE, { env: { PG_URL: db.url, SCHEMA: db.schema, NATS_URL: nats, NODE_ID: id, ...env } });
    nodes.set(id, n);
    await n.waitForOutput(`ready ${id}`, { timeoutMs: 30_000 });
    return n;
  };
  const client = await connect({ postgres: db.url, nats: { servers: [nats] }, cluster: db.schema, schema: db.schema });
  t.teardown(async () => {
    for (const n of nodes.values()) {
      n.kill('SIGCONT');
      n.kill('SIGKILL');
    }
    await client.close().catch(() => undefined);
    await db.drop();
  });
  const log = async () =>
    (await db.pool.query<LogRow>(`SELECT node, item, epoch, phase, result FROM "${db.schema}".proc_log ORDER BY at`)).rows;
  const row = async () =>
    (
      await db.pool.query(
        `SELECT owner, owner_epoch, run_no, run_finished_at, run_state, run, progress_at, updated_at FROM "${db.schema}".processes`,
      )
    ).rows[0];
  const work = async () =>
    (await db.pool.query(`SELECT name, list, status FROM "${db.schema}".process_work ORDER BY name`)).rows as {
      name: string;
      status: unknown;
    }[];
  return { db, nodes, spawn, client, api: processes(client), log, row, work };
}

test.serial('an owner stopped past its lease gets conflict after SIGCONT and writes nothing more', async (t) => {
  const { spawn, api, log, row, work } = await setup(t, 'proc_race', { ITEM_MS: '2500', LEASE_MS: '1200' });
  const a = await spawn('node-a');
  for (const item of ['w1', 'w2', 'w3']) await api.registerWork('walk', item);
  await api.trigger('walk');
  await until('node-a starts w1', async () => (await log()).some((r) => r.node === 'node-a' && r.phase === 'start'), 15_000);
  t.true(a.kill('SIGSTOP'));
  const b = await spawn('node-b');
  t.truthy(b);
  // node-b sees the unfinished run at its start and claims it once a's lease has run out
  const finished = await until('node-b finishes the run', async () => ((await row())?.run_finished_at ? await row() : undefined), 30_000);
  t.is(finished.owner.split('/')[0], 'node-b');
  t.is(finished.run_state, 'completed');
  t.is(finished.run.resumes, 1, 'the same run, taken over');
  const stateBefore = JSON.stringify([await row(), await work()]);

  t.true(a.kill('SIGCONT'));
  const conflict = await until(
    'node-a sees the conflict',
    async () => (await log()).find((r) => r.node === 'node-a' && r.phase === 'progress'),
    15_000,
  );
  t.is(conflict.result, 'conflict');
  await new Promise((r) => setTimeout(r, 1500)); // a's timers and loop would write by now if they could
  t.is(JSON.stringify([await row(), await work()]), stateBefore, 'no write from node-a after it lost the run');
  const entries = await log();
  t.false(
    entries.some((r) => r.node === 'node-a' && r.item !== 'w1'),
    'node-a started nothing after w1',
  );
  t.deepEqual(
    entries.filter((r) => r.node === 'node-b' && r.phase === 'start').map((r) => r.item),
    ['w1', 'w2', 'w3'],
    'node-b redid w1 (a never finished it) and the rest',
  );
  t.true(entries.filter((r) => r.node === 'node-b').every((r) => r.epoch === conflict.epoch + 1));
});

test.serial('an owner killed mid-run: another node resumes the run from its saved progress', async (t) => {
  const { spawn, api, log, row, nodes } = await setup(t, 'proc_resume', { ITEM_MS: '400', LEASE_MS: '1500' });
  await spawn('node-a');
  await spawn('node-b');
  const items = ['i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7', 'i8'];
  for (const item of items) await api.registerWork('walk', item);
  await api.trigger('walk');
  const owner = await until(
    'the owner has done three items',
    async () => {
      const done = (await log()).filter((r) => r.phase === 'progress');
      return done.length >= 3 ? done[0]!.node : undefined;
    },
    20_000,
  );
  t.true(nodes.get(owner)!.kill('SIGKILL'));
  const killedAt = Date.now();
  const done = await until('the run finishes elsewhere', async () => ((await row())?.run_finished_at ? await row() : undefined), 30_000);
  const other = owner === 'node-a' ? 'node-b' : 'node-a';
  t.log(`killed ${owner}; ${other} finished the run ${Date.now() - killedAt} ms later`);
  t.is(done.owner.split('/')[0], other);
  t.is(Number(done.run_no), 1, 'the same run');
  t.is(done.run.resumes, 1);
  t.is(done.run_state, 'completed');
  const entries = await log();
  const completedByOwner = entries.filter((r) => r.node === owner && r.phase === 'progress').map((r) => r.item);
  const startedByOther = entries.filter((r) => r.node === other && r.phase === 'start').map((r) => r.item);
  t.true(completedByOwner.length >= 3);
  // An item's completion is saved by the next save (at most every progressMs), during the next item:
  // so the items done before the kill are skipped, but for the last one or two.
  const skipped = items.length - startedByOther.length;
  t.deepEqual(startedByOther, items.slice(skipped), 'the resumed run goes on in order');
  t.true(
    skipped >= completedByOwner.length - 1 && skipped <= completedByOwner.length,
    `skipped ${skipped} of ${completedByOwner.length} done`,
  );
  const record = (await api.get('walk'))!;
  t.true(record.work!.every((w) => w.status?.state === 'completed'));
  t.is(record.aggregate.runs, 1);
});
