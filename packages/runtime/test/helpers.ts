import { startNode, type NodeOptions, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir, type TestSchema } from '../../../test/helpers/index.js';

export interface Cluster {
  db: TestSchema;
  nodes: PartitaNode[];
  start(options: Omit<NodeOptions, 'postgres' | 'schema'>): Promise<PartitaNode>;
  close(): Promise<void>;
}

/** Nodes sharing one fresh schema; close() stops them all and drops the schema. */
export async function cluster(prefix: string): Promise<Cluster> {
  const db = await freshSchema(prefix);
  const nats = await natsUrl();
  // Nodes of one test share a real NATS under a cluster name of their own, so tests never hear each other.
  const clusterName = db.schema.replaceAll('_', '-');
  // Global snapshots (file persister) live in the data dir: one per test, never shared between tests.
  const dataDir = tempDataDir(prefix);
  const nodes: PartitaNode[] = [];
  return {
    db,
    nodes,
    async start(options) {
      const node = await startNode({ postgres: db.url, schema: db.schema, nats, cluster: clusterName, dataDir, ...options });
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop({ graceMs: 200 }).catch(() => undefined)));
      await db.drop();
    },
  };
}

export { sleep, until } from '../../../test/helpers/index.js';
