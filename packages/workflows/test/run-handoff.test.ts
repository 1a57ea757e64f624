/**
 * A pub's first step (and the step a hook resumes) goes straight into the hands of an idle node that
 * advertised a free slot: stored as its running attempt in the pub's transaction, handed over after
 * the commit, started with no wake-up and no claim. It keeps its continuation mark, so its outcome
 * still goes through the workflow's transition: every workflow finishes, each step once.
 */
import test from 'ava';
import { connect } from '@partita/client';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, until } from '../../../test/helpers/index.js';
import { app, workflowsPlugin } from '../src/index.js';

const APP = `
app:
  id: handed
  version: '1'
  graphs:
    - subscribes: handed.start
      input: { schema: { type: object, properties: { n: { type: number } } } }
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: handed.step, input: { maps: { n: '{t1.output.data.n}' } } }
        s2: { type: worker, topic: handed.step, input: { maps: { n: '{t1.output.data.n}' } }, job: { maps: { n: '{t1.output.data.n}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
`;

async function handoffs(node: PartitaNode, outcome: 'accepted' | 'refused'): Promise<number> {
  const text = await node.metrics.scrape();
  const line = text.split('\n').find((l) => l.startsWith('partita_handoffs_total{') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test.serial('a pub handed to an idle node runs its first step there, and its transition still runs: each step once', async (t) => {
  const db = await freshSchema('wf_handed');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  const performed = new Map<number, number>();
  const node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats,
    cluster,
    dataDir: tempDataDir('wf-handed'),
    partitions: { default: { queues: { default: { concurrency: 4 } } } },
    engine: { pollMs: 100 },
    jobs: [
      defineJob<{ n: number }>({
        type: 'handed.step',
        perform: (p) => {
          performed.set(p.n, (performed.get(p.n) ?? 0) + 1);
          return null;
        },
      }),
    ],
    plugins: [workflowsPlugin()],
  });
  // A separate client over NATS: its pubs hear the node's adverts and hand off over the bus.
  const client = await connect({ postgres: { connectionString: db.url, max: 2 }, schema: db.schema, nats, cluster });
  t.teardown(async () => {
    await client.close();
    await node.stop();
    await db.drop();
  });
  const handed = app(client, 'handed');
  await handed.deploy(APP);
  await handed.activate('1');

  // The first pub only starts listening for adverts: run until some were handed off.
  let n = 0;
  const runs: number[] = [];
  await until(
    'pubs handed off',
    async () => {
      const before = await handoffs(node, 'accepted');
      n += 1;
      runs.push(n);
      t.deepEqual(await handed.pubsub('handed.start', { n }, { timeoutMs: 15_000 }), { n });
      return (await handoffs(node, 'accepted')) > before && n >= 5;
    },
    30_000,
    30,
  );
  t.true((await handoffs(node, 'accepted')) > 0, 'some first steps were handed off');
  t.is(await handoffs(node, 'refused'), 0);
  // Every workflow finished, each of its two steps performed once.
  for (const i of runs) t.is(performed.get(i), 2, `workflow ${i}: each step once`);
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM "${db.schema}".wf_workflows WHERE app_id = 'handed' AND status <> 0`,
  );
  t.is(rows[0].n, 0);
});
