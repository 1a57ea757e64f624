/**
 * A flow's workers inside a node's jobs module: the node loads the module by path (its `jobs`
 * export is flow.jobs()), and a program joins that node with startAll({ node }) to create and read
 * jobs — a flow object of its own with the same definition (the module's copy is the node's).
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { until } from '../../../test/helpers/index.js';
import { defineFlow } from '../src/index.js';
import { flowEnv, flowNode } from './flows-helpers.js';

const MODULE = fileURLToPath(new URL('./fixtures/flows/jobs-module.ts', import.meta.url));

test.serial('a jobs module exports flow.jobs(); startAll({ node }) joins the node that loaded it', async (t) => {
  const { nodeOptions } = await flowEnv(t, 'flow_module');
  const flow = defineFlow<{ upper?: string; length?: number }, { word: string }, 'word'>({
    name: 'modflow',
    queues: [{ name: 'upper', nextQueue: 'measure', lookupAttributes: ['word'] }, { name: 'measure' }],
  });
  const node = await flowNode(t, flow, nodeOptions, {
    jobs: MODULE,
    partitions: {
      default: {
        queues: { default: { concurrency: 2 }, 'flow-modflow--upper': { concurrency: 2 }, 'flow-modflow--measure': { concurrency: 2 } },
      },
    },
  });
  await flow.startAll({ node });
  const id = await flow.createJob({ word: 'partita' });
  await until('completed', async () => (await flow.getJobsByKey('word', 'partita'))[0]?.status === 'completed', 20_000, 50);
  t.like((await flow.getJobsByKey('word', 'partita'))[0], {
    id,
    stage: 'measure',
    state: { word: 'partita', upper: 'PARTITA', length: 7 },
  });
  await flow.stopAll();
  t.is((await node.stats()).length > 0, true, 'stopAll of a joined flow leaves the node running');
});
