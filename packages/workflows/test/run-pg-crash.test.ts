/**
 * Postgres killed (SIGKILL of the postmaster) while 3-step workflows run with durableTransitions
 * 'announced', the default: the transitions that only move a workflow on commit without waiting for
 * their WAL flush, so the crash may undo the last of them (wal_writer_delay is 10 s here, so WAL
 * buffered since the last synchronous commit stays unwritten, as much as such a crash can lose).
 * After the restart every workflow whose pub returned completes, each of its activities entered and
 * finished once (a step whose completion was undone runs again, its transition happens once), and
 * every output that was published belongs to a workflow Postgres shows done: a commit announced
 * outside (the pub, the end of a workflow) was flushed before it was announced.
 */
import test from 'ava';
import pg from 'pg';
import { connect } from '@partita/client';
import { defineJob, startNode } from '@partita/runtime';
import { natsUrl, sleep, startPostgres, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';
import { app, workflowsPlugin } from '../src/index.js';
import { assertEachTransitionOnce, counterChain, recordTransitions } from './helpers.js';

const CHAIN = counterChain({
  id: 'crash',
  subscribes: 'crash.start',
  publishes: 'crash.done',
  step: 'crash.step',
  input: "{ w: '{$job.metadata.jid}' }",
});

test.serial(
  'Postgres killed while workflows run: every pub that returned completes once, every published output is of a workflow Postgres shows done',
  async (t) => {
    const server = await startPostgres({ settings: { wal_writer_delay: 10_000 } });
    const schema = 'wfcrash';
    const pool = new pg.Pool({ connectionString: server.url, max: 3 }).on('error', () => undefined);
    const s: TestSchema = { url: server.url, schema, pool, drop: async () => undefined };
    await pool.query(`CREATE SCHEMA ${schema}`);
    const nats = await natsUrl();
    const cluster = `wfcrash-${process.pid}`;
    const performs = new Map<string, number>();
    /** Set once enough workflows ran: the next step to start kills Postgres (see below). */
    let armed = false;
    let killed: Promise<void> | undefined;
    const node = await startNode({
      postgres: server.url,
      schema,
      nats,
      cluster,
      dataDir: tempDataDir('wfcrash'),
      persister: 'postgres',
      partitions: { default: { queues: { default: { concurrency: 8 } } } },
      // Short leases: a step whose completion the crash undid is this node's running job in Postgres
      // only, and is rescued once its lease runs out.
      engine: { pollMs: 100, leaseMs: 3000, heartbeatMs: 500 },
      plugins: [workflowsPlugin()],
      jobs: [
        defineJob<{ w: string }>({
          type: 'crash.step',
          maxAttempts: 5,
          perform: async (p) => {
            performs.set(p.w, (performs.get(p.w) ?? 0) + 1);
            await sleep(2);
            return {};
          },
        }),
      ],
    });
    const client = await connect({ postgres: { connectionString: server.url, max: 4 }, schema, nats, cluster });
    t.teardown(async () => {
      await client.close().catch(() => undefined);
      await node.stop({ graceMs: 1000 }).catch(() => undefined);
      await pool.end().catch(() => undefined);
      await server.destroy();
    });
    const crash = app(client, 'crash');
    await crash.deploy(CHAIN);
    await crash.activate('1');
    await recordTransitions(s);
    const published = new Map<string, number>();
    const unsub = await crash.psub('crash.done', (_d, e) => {
      if (e.kind !== 'output') return;
      published.set(e.id, (published.get(e.id) ?? 0) + 1);
      // Postgres dies the moment an output is heard: the commit that ended its workflow has to have
      // been flushed already, while the transitions that moved others on since are likely unwritten.
      if (armed) {
        armed = false;
        killed = server.kill({ everything: true });
      }
    });
    t.teardown(unsub);

    const returned: string[] = [];
    let pubsFailed = 0;
    let stop = false;
    const loops = Array.from({ length: 6 }, async () => {
      while (!stop) {
        try {
          returned.push(await crash.pub('crash.start', {}));
        } catch {
          pubsFailed += 1;
          await sleep(100);
        }
      }
    });
    const q = async (sql: string) => Number((await pool.query(sql)).rows[0].n);
    await until(
      '200 workflows done',
      async () => (await q(`SELECT count(*) AS n FROM ${schema}.wf_workflows WHERE status = 0`)) >= 200,
      60_000,
    );
    armed = true;
    await until('Postgres killed', () => killed !== undefined, 30_000, 5);
    await killed;
    const returnedAtKill = returned.length;
    await sleep(1000);
    await server.start();
    await until('Postgres back', async () => (await q(`SELECT 1 AS n`).catch(() => 0)) === 1, 30_000);
    await sleep(2000);
    stop = true;
    await Promise.all(loops);
    t.log(`${returnedAtKill} pubs returned before the kill, ${returned.length} in all (${pubsFailed} failed while Postgres was down)`);

    await until(
      'every workflow done',
      async () => (await q(`SELECT count(*) AS n FROM ${schema}.wf_workflows WHERE status <> 0`).catch(() => 1)) === 0,
      120_000,
      200,
    );
    const rows = (await pool.query<{ id: string; data: { n?: number } }>(`SELECT id, data FROM ${schema}.wf_workflows`)).rows;
    const done = new Map(rows.map((r) => [r.id, r.data.n]));
    t.deepEqual(
      returned.filter((id) => done.get(id) !== 3),
      [],
      'every workflow whose pub returned finished, each step counted once',
    );
    t.true(
      rows.every((r) => r.data.n === 3),
      'the others (a pub whose answer the crash cut off) too',
    );
    await assertEachTransitionOnce(t, s, rows.length * 4, 'each activity of each workflow entered once and finished once');
    t.deepEqual(
      [...published.keys()].filter((id) => done.get(id) !== 3),
      [],
      'every output published belongs to a workflow Postgres shows done',
    );
    t.true(
      [...published.values()].every((n) => n === 1),
      'no output published twice',
    );
    const reruns = [...performs.values()].reduce((a, n) => a + n - 3, 0);
    // Usually a few: the steps whose completions the crash undid (with the transitions they caused).
    t.log(`${rows.length} workflows, ${published.size} outputs heard, ${reruns} steps run again after the crash`);
  },
);
