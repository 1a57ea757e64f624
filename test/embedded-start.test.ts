/**
 * startEmbeddedPostgres's waits: startTimeoutMs is the wait for the server once launched. Another live
 * process starting the same data dir (holding its lock: an initdb, its own wait) is waited for on top
 * of it; counted against it, a second node started beside a slow first one failed a start that was fine.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '@partita/postgres-embedded';
import pg from 'pg';
import { tempDir } from './fixtures/cli.js';

test('a start waits for a live process holding the data dir lock longer than its startTimeoutMs, then starts the server', async (t) => {
  const tmp = await tempDir('embedded-start-lock');
  t.teardown(() => tmp.cleanup());
  const dataDir = path.join(tmp.dir, 'pg');
  // Held by this (live) process, as by a node busy starting the same data dir.
  const lock = `${dataDir}.lock`;
  await fs.writeFile(lock, JSON.stringify({ pid: process.pid }));
  const HOLD_MS = 10_000;
  const released = new Promise<void>((resolve) =>
    setTimeout(() => {
      void fs.rm(lock, { force: true }).then(resolve);
    }, HOLD_MS),
  );
  const t0 = Date.now();
  const server = await startEmbeddedPostgres({ dataDir, startTimeoutMs: 8000, settings: { fsync: 'off' } });
  t.teardown(() => server.stop());
  await released;
  t.true(Date.now() - t0 >= HOLD_MS, 'it waited for the holder');
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  t.is((await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
  await client.end();
});
