import { freshSchema, natsUrl, tempDataDir, type TestSchema } from '../../../test/helpers/index.js';
import type { StartAllOptions } from '../src/index.js';

/** A fresh schema and the node options of a flow node on it (real Postgres and NATS). */
export async function flowEnv(name: string): Promise<{ db: TestSchema; nodeOptions: Exclude<StartAllOptions, { node: unknown }> }> {
  const db = await freshSchema(name);
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
