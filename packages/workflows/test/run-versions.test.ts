/**
 * Versions are pinned: a workflow finishes on the version it started on after another is activated,
 * and an app handle elsewhere (another client) that cached the old active version starts new
 * workflows on the new one once the `nocache` broadcast reached it.
 */
import test from 'ava';
import { connect } from '@partita/client';
import { defineJob, startNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, until } from '../../../test/helpers/index.js';
import { app, workflowsPlugin } from '../src/index.js';

const version = (v: string) => `
app:
  id: pin
  version: '${v}'
  graphs:
    - subscribes: pin.start
      activities:
        t1: { type: trigger }
        wait: { type: hook }
        done: { type: hook, job: { maps: { v: ${v} } } }
      transitions:
        t1: [{ to: wait }]
        wait: [{ to: done }]
      hooks:
        pin.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
`;

test.serial('a workflow finishes on its version; activate reaches another client’s cache through nocache', async (t) => {
  const db = await freshSchema('wf_pin');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  const node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats,
    cluster,
    dataDir: tempDataDir('wf-pin'),
    persister: 'postgres',
    partitions: { default: { queues: { default: { concurrency: 4 } } } },
    engine: { pollMs: 100 },
    jobs: [defineJob({ type: 'noop', perform: () => null })],
    plugins: [workflowsPlugin()],
  });
  const other = await connect({ postgres: db.url, schema: db.schema, nats, cluster });
  t.teardown(async () => {
    await other.close();
    await node.stop();
    await db.drop();
  });
  const pin = app(node.client, 'pin');
  const elsewhere = app(other, 'pin');
  await pin.deploy(version('1'));
  await pin.activate('1');
  const old = await elsewhere.pub('pin.start', {});
  t.is((await elsewhere.getState('pin.start', old)).metadata.vrs, '1');

  await pin.deploy(version('2'));
  await pin.activate('2');
  await until(
    'the other handle starts on version 2',
    async () => {
      const id = await elsewhere.pub('pin.start', {});
      return (await elsewhere.getState('pin.start', id)).metadata.vrs === '2';
    },
    20_000,
  );
  const fresh = await pin.pub('pin.start', {});
  t.is(await pin.hook('pin.go', { id: old }), old);
  t.is(await pin.hook('pin.go', { id: fresh }), fresh);
  t.is((await pin.getState('pin.start', old)).data['v'], 1, 'the old workflow ran its version-1 graph to the end');
  t.is((await pin.getState('pin.start', fresh)).data['v'], 2);
});
