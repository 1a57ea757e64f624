/**
 * `partita dashboard` as a real process (packages/cli/dist/bin.js; needs the build) serving the
 * dashboard alone against a cluster whose node runs in this test; and `partita start` with the
 * quick start's `http.dashboard` serving it on the node's own port.
 */
import test, { type ExecutionContext } from 'ava';
import { silentLogger } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { freshSchema, holdTableLock, spawnNode, tempDataDir } from './helpers/index.js';
import { CLI, startCliNode, tempDir, writeConfig } from './fixtures/cli.js';

/**
 * A node in this process (no NATS, queue billing/invoices that runs nothing, so its job stays queued)
 * with one invoice.send job, and `partita dashboard` as a real process against it; its URL once it listens.
 */
async function standaloneDashboard(t: ExecutionContext, prefix: string, flags: string[] = []) {
  const db = await freshSchema(prefix);
  const node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: false,
    dataDir: tempDataDir(prefix),
    persister: 'postgres',
    logger: silentLogger(),
    partitions: { billing: { queues: { invoices: { concurrency: 0 } } } },
    jobs: [defineJob({ type: 'invoice.send', perform: async () => 'sent' })],
  });
  t.teardown(async () => {
    await node.stop({ graceMs: 100 });
    await db.drop();
  });
  const { id } = await node.client.enqueue('billing', 'invoice.send', { customer: 42 }, { queue: 'invoices' });
  const cli = spawnNode(CLI, {
    args: ['dashboard', '--postgres', db.url, '--schema', db.schema, '--nats', 'false', '--port', '0', ...flags],
  });
  t.teardown(() => void cli.kill('SIGKILL'));
  const match = (await cli.waitForOutput(/dashboard listening on (http:\/\/\S+)/, { timeoutMs: 30_000 })) as RegExpMatchArray;
  return { db, node, id, cli, url: match[1]!.replace(/\/$/, '') };
}

test('partita dashboard serves every page against the cluster, and stops on SIGTERM', async (t) => {
  const { id, cli, url } = await standaloneDashboard(t, 'clidash');
  const overview = await (await fetch(`${url}/`)).text();
  t.regex(overview, /<h1>Overview<\/h1>/);
  t.regex(overview, /invoices/, 'the declared queue is listed');
  const jobs = await fetch(`${url}/jobs?q=${encodeURIComponent('queue:invoices type:invoice.send')}`);
  t.is(jobs.status, 200);
  t.regex(await jobs.text(), new RegExp(id));
  const job = await (await fetch(`${url}/jobs/${id}`)).text();
  t.regex(job, /customer/);
  cli.kill('SIGTERM');
  t.like(await cli.exited, { code: 0 });
});

test('partita start with http.dashboard serves the dashboard on the node (dashboardPlugin)', async (t) => {
  const db = await freshSchema('clidashn');
  const dir = await tempDir('clidashn');
  t.teardown(async () => {
    await db.drop();
    await dir.cleanup();
  });
  const config = await writeConfig(dir.dir, {
    postgres: { url: db.url, schema: db.schema },
    nats: false,
    persister: 'postgres',
    dataDir: dir.dir,
    http: { port: 0, dashboard: '/ui' },
    partitions: { p: { queues: { default: { concurrency: 1 } } } },
  });
  const node = await startCliNode(config);
  t.teardown(() => void node.kill('SIGKILL'));
  const url = /"url":"(http:\/\/[^"]+)","msg":"health and metrics listening"/.exec(node.output())?.[1];
  t.truthy(url, 'the node logs its HTTP address');
  const page = await fetch(`${url}/ui/queues`);
  t.is(page.status, 200);
  t.regex(await page.text(), /<h1>Queues<\/h1>/);
  node.kill('SIGTERM');
  await node.exited;
});

test('partita dashboard: --statement-timeout cuts its pages, not its actions (the client pool has none)', async (t) => {
  const { db, node, id, cli, url } = await standaloneDashboard(t, 'clidasht', ['--statement-timeout', '300ms']);
  t.is((await fetch(`${url}/jobs/${id}`)).status, 200, 'the job page serves while nothing blocks it');

  // A lock every statement on the hot table waits for, held by the test for HOLD_MS.
  const HOLD_MS = 1500;
  const release = await holdTableLock(db.pool, `${db.schema}.jobs`);
  t.teardown(release);

  // The lock is held until after the page answers: a 503 naming the timeout is a read cut while it
  // was held (no bound on the page's time, which a loaded machine stretched past HOLD_MS).
  const page = await fetch(`${url}/jobs/${id}`);
  t.is(page.status, 503, 'a page read blocked by the lock is cut');
  t.regex(await page.text(), /statement timeout \(300 ms\)/);

  // The cancel waits for the lock past the pages' timeout, and is done once the lock goes.
  const locked = Date.now();
  const releasing = new Promise((resolve) => setTimeout(resolve, HOLD_MS)).then(release);
  const action = await fetch(`${url}/actions/cancel`, {
    method: 'POST',
    body: new URLSearchParams({ id, return: `/jobs/${id}` }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  const took = Date.now() - locked;
  await releasing;
  t.is(action.status, 303, await action.clone().text());
  t.regex(new URL(action.headers.get('location')!, url).searchParams.get('msg') ?? '', /cancelled/);
  t.true(took >= HOLD_MS - 50, `the action waited for the lock (${took} ms) rather than being cut at 300 ms`);
  t.is((await node.client.job(id))!.state, 'cancelled');
  cli.kill('SIGTERM');
  t.like(await cli.exited, { code: 0 });
});
