import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { freshSchema, natsUrl, type SpawnedNode, type TestSchema } from '../../../test/helpers/index.js';
import { tempDir, writeConfig } from '../../../test/fixtures/cli.js';

const JOBS_MODULE = path.join(import.meta.dirname, 'fixtures', 'schedule-jobs.mjs');

export interface ScheduleCluster {
  s: TestSchema;
  /** The test's temporary directory (the config and the nodes' data are in it). */
  dir: string;
  /** The written config file, for `startCliNode` and `partita -c`. */
  config: string;
  /** The `partita start` processes the test started, by node id: SIGKILLed at teardown. */
  nodes: Map<string, SpawnedNode>;
}

/**
 * The set-up the schedules cluster tests share: a fresh schema, a config for `partita start` nodes of
 * partition `p` running fixtures/schedule-jobs.mjs with the processes plugin as given, and a teardown
 * that kills every node, drops the schema and removes the directory.
 */
export async function scheduleCluster(
  t: ExecutionContext,
  name: string,
  opts: { pollMs: number; concurrency: number; processes: Record<string, unknown> },
): Promise<ScheduleCluster> {
  const s = await freshSchema(name.replaceAll('-', '_'));
  const tmp = await tempDir(name);
  const nats = await natsUrl();
  const nodes = new Map<string, SpawnedNode>();
  t.teardown(async () => {
    for (const n of nodes.values()) n.kill('SIGKILL');
    await s.drop();
    await tmp.cleanup();
  });
  const config = await writeConfig(tmp.dir, {
    cluster: s.schema,
    postgres: { url: s.url, schema: s.schema, poolSize: 6 },
    nats: { servers: [nats] },
    persister: 'postgres',
    dataDir: path.join(tmp.dir, 'data'),
    jobs: JOBS_MODULE,
    engine: { leaseMs: 2000, heartbeatMs: 500, pollMs: opts.pollMs },
    partitions: { p: { queues: { default: { concurrency: opts.concurrency } } } },
    plugins: { processes: opts.processes },
  });
  return { s, dir: tmp.dir, config, nodes };
}
