import type { ExecutionContext } from 'ava';
import { silentLogger } from '@partita/core';
import { startNode, type NodeOptions, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, type TestSchema } from '../../../test/helpers/index.js';
import { flowsPlugin, workflowsPlugin, type Flow, type StartAllOptions } from '../src/index.js';

type NodeStartOptions = Exclude<StartAllOptions, { node: unknown }>;
type AnyFlow = Flow<any, any, any>;

/**
 * A fresh schema (dropped when the test ends) and the node options of a flow node on it (real
 * Postgres and NATS). Teardowns run last-registered first, so what startFlow/flowNode register
 * later stops before the schema goes.
 */
export async function flowEnv(t: ExecutionContext, name: string): Promise<{ db: TestSchema; nodeOptions: NodeStartOptions }> {
  const db = await freshSchema(name);
  t.teardown(() => db.drop());
  return {
    db,
    nodeOptions: {
      postgres: db.url,
      schema: db.schema,
      nats: await natsUrl(),
      cluster: db.schema.replaceAll('_', '-'),
      dataDir: tempDataDir(name),
      persister: 'postgres',
      engine: { pollMs: 50 },
    },
  };
}

/**
 * Starts the flow on a node of its own and waits for its event subscription, so that no event of
 * a job the test creates next is missed; the flow stops when the test ends.
 */
export async function startFlow(t: ExecutionContext, flow: AnyFlow, nodeOptions: NodeStartOptions): Promise<PartitaNode> {
  t.teardown(() => flow.stopAll({ graceMs: 100 }));
  const node = await flow.startAll(nodeOptions);
  await flow.listening();
  return node;
}

/**
 * A node the flow then joins with startAll({ node }) — as a node that loaded flow.jobs() from its
 * jobs module would be: the workflows and flows plugins, the test's jobs and partitions. When the
 * test ends the flow stops first (a joined flow leaves the node running), then the node.
 */
export async function flowNode(
  t: ExecutionContext,
  flow: AnyFlow,
  nodeOptions: NodeStartOptions,
  options: Pick<NodeOptions, 'jobs' | 'partitions'> & Partial<NodeOptions>,
): Promise<PartitaNode> {
  const { jobs: _jobs, ...rest } = nodeOptions;
  const node = await startNode({ ...rest, plugins: [workflowsPlugin(), flowsPlugin()], logger: silentLogger(), ...options });
  t.teardown(async () => {
    await flow.stopAll();
    await node.stop({ graceMs: 100 });
  });
  return node;
}
