/**
 * What the CLI reads through a client's public methods (never its store): the job listing, the
 * declared queues and the schema's migrations.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { connect } from '@partita/client';
import { freshSchema } from './helpers/index.js';

const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../packages/postgres/sql/migrations');

test('client.admin lists the applied migrations, listJobs finds enqueued jobs, knownQueues shows the queues nodes declared', async (t) => {
  const db = await freshSchema('clientadmin');
  t.teardown(() => db.drop());
  const client = await connect({ postgres: db.url, schema: db.schema, nats: false });
  t.teardown(() => client.close());

  const files = (await fs.readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const applied = await client.admin.migrations();
  t.deepEqual(
    applied.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}.sql`),
    files,
    'every migration file, oldest first',
  );
  t.true(applied.every((m) => m.appliedAt instanceof Date));
  t.deepEqual(await client.admin.migrate(), [], 'connect() already migrated the schema');

  t.is((await client.knownQueues()).size, 0, 'no node declared a queue yet');
  // What a starting node writes (JobStore.registerQueues): the test plays a node that has gone.
  await db.pool.query(
    `INSERT INTO "${db.schema}".queues (partition, queue, concurrency, node_id, seen_at) VALUES ('p1', 'q1', 1, 'gone', now()), ('p2', 'q2', 1, 'gone', now())`,
  );
  t.deepEqual([...(await client.knownQueues())].map(([p, qs]) => [p, [...qs]]).sort(), [
    ['p1', ['q1']],
    ['p2', ['q2']],
  ]);

  const { id: first } = await client.enqueue('p1', 'report', { n: 1 }, { queue: 'q1', allowUnknownType: true });
  const { id: second } = await client.enqueue('p2', 'report', { n: 2 }, { queue: 'q2', allowUnknownType: true });
  t.deepEqual((await client.listJobs({ limit: 10 })).map((j) => j.id).sort(), [first, second].sort());
  t.deepEqual(
    (await client.listJobs({ partition: 'p2', limit: 10 })).map((j) => j.id),
    [second],
  );
  t.deepEqual(
    (await client.listJobs({ ids: [first], limit: 1 })).map((j) => [j.id, j.state]),
    [[first, 'queued']],
  );
});
