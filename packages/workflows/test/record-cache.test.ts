/**
 * A node keeps the records of the workflows its transitions moved (RecordCache): their next
 * transition on that node reads its copy instead of Postgres's records, as long as the workflow's
 * row has not moved since (every writer of records rewrites the row, so its xmin is the version).
 * Shown from outside: a record changed behind the row's back is not seen (the copy was read); the
 * same change with the row rewritten is (the copy no longer matches, the records are read).
 */
import test, { type ExecutionContext } from 'ava';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { RecordCache } from '../src/executor.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: held
  version: '1'
  graphs:
    - subscribes: h.start
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: h.first }
        s2: { type: worker, topic: h.hold }
        s3: { type: worker, topic: h.last, input: { maps: { v: '{s1.output.data.v}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
        s2: [{ to: s3 }]
`;

/**
 * Runs one workflow to s2, changes s1's stored output to 2 there (and rewrites the workflow's row
 * when `moveRow`), lets s2 finish, and returns the `v` s3 was started with (mapped from s1's output).
 */
async function lastInputAfterChange(t: ExecutionContext, name: string, moveRow: boolean): Promise<unknown> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  let holding = false;
  const seen: unknown[] = [];
  const { db, node } = await workflowNode(t, name, {
    concurrency: 4,
    pollMs: 50,
    jobs: [
      defineJob({ type: 'h.first', perform: () => ({ v: 1 }) }),
      defineJob({
        type: 'h.hold',
        perform: async () => {
          holding = true;
          await released;
          return {};
        },
      }),
      defineJob<{ v: unknown }>({ type: 'h.last', perform: (p) => void seen.push(p.v) }),
    ],
  });
  const held = app(node.client, 'held');
  await held.deploy(APP);
  await held.activate('1');
  const wf = await held.pub('h.start', {});
  await until('s2 runs', async () => holding, 30_000, 20);
  const q = (sql: string) => db.pool.query(sql.replaceAll('S.', `"${db.schema}".`), [wf]);
  const changed = await q(`UPDATE S.wf_activities SET output = '{"data": {"v": 2}}' WHERE workflow_id = $1 AND activity = 's1'`);
  t.is(changed.rowCount, 1);
  if (moveRow) t.is((await q(`UPDATE S.wf_workflows SET data = data WHERE id = $1`)).rowCount, 1);
  release();
  await until('s3 ran', async () => seen.length > 0, 30_000, 20);
  await until('the workflow is done', async () => (await held.getStatus(wf)) === 0, 30_000, 20);
  t.is(seen.length, 1);
  return seen[0];
}

test('the next transition on the node reads its copy of the records while the row has not moved', async (t) => {
  t.is(await lastInputAfterChange(t, 'wf_held_copy', false), 1);
});

test('a row rewritten since (another writer) makes the node read the records again', async (t) => {
  t.is(await lastInputAfterChange(t, 'wf_held_moved', true), 2);
});

test('the copies are bounded by jobs and by characters, the oldest going first', (t) => {
  const held = (workflowId: string, chars: number) => ({ workflowId, version: '7', json: 'x'.repeat(chars), dimensions: [''] });
  const byCount = new RecordCache(3, 1000);
  for (const id of ['a', 'b', 'c', 'd']) byCount.hold([id], held(id, 10));
  t.deepEqual(
    ['a', 'b', 'c', 'd'].map((id) => byCount.versionOf(id)),
    [null, '7', '7', '7'],
  );
  const byChars = new RecordCache(100, 1600);
  byChars.hold(['a', 'b'], held('w1', 60));
  byChars.hold(['c'], held('w2', 90));
  // 210 of 1,600 characters: all kept. A copy over 1/16 of the budget is not kept at all.
  t.is(byChars.size, 3);
  byChars.hold(['e'], held('w3', 101));
  t.is(byChars.versionOf('e'), null);
  const tight = new RecordCache(100, 1600);
  for (let i = 0; i < 20; i++) tight.hold([`j${i}`], held(`w${i}`, 100));
  t.is(tight.size, 16);
  t.is(tight.versionOf('j3'), null);
  t.is(tight.versionOf('j4'), '7');
  tight.forget(['j4']);
  t.is(tight.size, 15);
});
