import test from 'ava';
import { fileURLToPath } from 'node:url';
import { connect, globalApi, requestGlobal, type GlobalRequest } from '@partita/client';
import { freshSchema, natsUrl, spawnNode, tempDataDir } from '../../../test/helpers/index.js';
import { until } from './helpers.js';
import { clientBus } from '@partita/client/internal';

const fixture = fileURLToPath(new URL('./fixtures/global-node.ts', import.meta.url));

test('kill -9 of the Global leader: a new leader serves within 5 s with every cancel, key and pause, and no execution key ever ran two jobs at once', async (t) => {
  const db = await freshSchema('failover');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  const dataDir = tempDataDir('failover');
  const env = (id: string) => ({
    PG_URL: db.url,
    SCHEMA: db.schema,
    NATS_URL: nats,
    CLUSTER: cluster,
    NODE_ID: id,
    DATA_DIR: dataDir,
    PARTITA_LOG_LEVEL: 'warn',
  });
  const a = spawnNode(fixture, { env: env('a') });
  const client = await connect({ postgres: db.url, schema: db.schema, nats, cluster });
  try {
    await a.waitForOutput(/ready/, { timeoutMs: 60_000 });
    await db.pool.query(
      `CREATE TABLE "${db.schema}".runs (job_id uuid, key text, node text, started_at timestamptz, ended_at timestamptz)`,
    );
    await until(
      'a leads partition p',
      async () => (await db.pool.query(`SELECT holder FROM "${db.schema}".leases WHERE name = 'global:p'`)).rows[0]?.holder === 'a',
    );
    const send = <T>(request: GlobalRequest) => requestGlobal<T>(clientBus(client), cluster, 'p', request);
    const api = globalApi(send);
    // Paused before b starts: the leader's engine has the pause when the call returns, and b reads it
    // when it joins (a node that is already running hears of it over the bus a moment later).
    await send({ op: 'pause', queue: 'held' });
    const b = spawnNode(fixture, { env: env('b') });
    await b.waitForOutput(/ready/, { timeoutMs: 60_000 });

    const held = await client.enqueueMany('p', [
      { type: 'plain', queue: 'held' },
      { type: 'plain', queue: 'held' },
    ]);
    t.true(await api.cancelJob(held.ids[0]!));

    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    // 100 jobs of 40 ms per key: keys are still held when the new leader answers (with 30 per key, a
    // fast survivor could have run every key dry by then, leaving the snapshot nothing to show).
    const jobs = Array.from({ length: 2000 }, (_, i) => ({ type: 'keyed', payload: { key: keys[i % keys.length]! } }));
    await client.enqueueMany('p', jobs);
    await until('runs under way', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".runs`)).rows[0].n >= 60);

    a.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    const paused = await until(
      'a new leader answers',
      async () => {
        try {
          return await requestGlobal<string[]>(clientBus(client), cluster, 'p', { op: 'pausedQueues' }, 500);
        } catch {
          return undefined;
        }
      },
      15_000,
      50,
    );
    const takeoverMs = Date.now() - killedAt;
    t.log(`new leader served ${takeoverMs} ms after kill -9`);
    t.true(takeoverMs <= 5000, `took ${takeoverMs} ms`);
    t.deepEqual(paused, ['held'], 'the pause survived the failover');
    t.true(await api.isCancelled(held.ids[0]!), 'the cancel survived the failover');
    // Execution keys live in Postgres: the new leader shows the ones the dead node's runs still hold.
    const snap = await send<{ executionKeys: Record<string, { holder: string; waiters: string[] }> }>({ op: 'snapshot' });
    t.true(Object.keys(snap.executionKeys).length > 0, 'the new leader sees keys held by running jobs');
    for (const [key, { holder }] of Object.entries(snap.executionKeys)) {
      const { rows } = await db.pool.query(
        `SELECT execution_key FROM "${db.schema}".jobs WHERE id = $1 UNION ALL SELECT execution_key FROM "${db.schema}".jobs_history WHERE id = $1`,
        [holder],
      );
      t.is(rows[0]?.execution_key, key, `${key} is held by a job of that key`);
    }
    const leader = (await db.pool.query(`SELECT holder, epoch FROM "${db.schema}".leases WHERE name = 'global:p'`)).rows[0];
    t.is(leader.holder, 'b');
    t.true(Number(leader.epoch) >= 2);

    await until(
      'every keyed job finished',
      async () => (await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs WHERE type = 'keyed'`)).rows[0].n === 0,
      90_000,
      200,
    );
    const done = await db.pool.query(
      `SELECT state, count(*)::int AS n FROM "${db.schema}".jobs_history WHERE type = 'keyed' GROUP BY state`,
    );
    t.deepEqual(done.rows, [{ state: 'completed', n: jobs.length }]);

    // Runs cut short by the kill never recorded an end: they count as running until the kill.
    const { rows: overlaps } = await db.pool.query(
      `WITH r AS (SELECT key, job_id, node, started_at, coalesce(ended_at, to_timestamp($1::double precision / 1000)) AS ended_at FROM "${db.schema}".runs)
       SELECT x.key, x.job_id AS a, y.job_id AS b FROM r x JOIN r y ON x.key = y.key AND x.job_id <> y.job_id
       WHERE x.started_at < y.started_at AND y.started_at < x.ended_at`,
      [killedAt],
    );
    if (overlaps.length) {
      const { rows } = await db.pool.query(
        `SELECT r.key, r.job_id, r.node, extract(epoch from r.started_at) * 1000 - $2 AS s, extract(epoch from r.ended_at) * 1000 - $2 AS e, h.errors::text
         FROM "${db.schema}".runs r LEFT JOIN "${db.schema}".jobs_history h ON h.id = r.job_id WHERE r.key = $1 ORDER BY r.started_at`,
        [overlaps[0].key, killedAt],
      );
      (await import('node:fs')).writeFileSync(
        '/tmp/lead-failover.txt',
        rows.map((r) => `${r.job_id} ${r.node} ${Math.round(r.s)}..${r.e === null ? 'null' : Math.round(r.e)}`).join('\n') +
          '\n---A\n' +
          a.output() +
          '\n---B\n' +
          b.output(),
      );
      t.log(
        'a:',
        a
          .output()
          .split('\n')
          .filter((l) => /"level":(50|60)|two running|reconciled/.test(l))
          .slice(0, 10)
          .join('\n'),
      );
      t.log(
        'b:',
        b
          .output()
          .split('\n')
          .filter((l) => /"level":(50|60)|two running|reconciled/.test(l))
          .slice(0, 10)
          .join('\n'),
      );
      t.log(
        rows
          .map((r) => `${r.job_id} ${r.node} ${Math.round(r.s)}..${r.e === null ? 'null' : Math.round(r.e)} ${r.errors?.slice(0, 120)}`)
          .join('\n'),
      );
    }
    t.deepEqual(overlaps, [], 'no execution key admitted two jobs at once');
    for (const key of keys) t.false(await api.executionKeyHeld(key), `${key} is free at the end`);
    t.is((await client.job(held.ids[1]!))?.state, 'queued', 'the paused queue still did not run');
    b.kill('SIGTERM');
    await b.exited;
  } finally {
    a.kill('SIGKILL');
    await client.close();
    await db.drop();
  }
});
