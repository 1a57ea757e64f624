/**
 * The dashboard in a real headless browser (Debian's chromium driven by playwright-core) against a
 * node with real jobs on Postgres and NATS, mounted by dashboardPlugin at the node's `http.dashboard`:
 * every page, the filter, a job's detail, a retry seen through to completion, a pause and its
 * badge, a bulk cancel by filter with its preview, and a live update arriving without a reload.
 * Screenshots of each page go to test/artifacts/dashboard/ (git-ignored).
 */
import test from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connect } from '@partita/client';
import { JobFailedError } from '@partita/core';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { dashboard, dashboardPlugin } from '@partita/dashboard';
import { freshSchema, natsUrl, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';
import { listen } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', '..', 'test', 'artifacts', 'dashboard');

let healed = false;
const jobs = [
  defineJob<{ n: number; user?: { id: number } }, { doubled: number }>({ type: 'dash.ok', perform: async (p) => ({ doubled: p.n * 2 }) }),
  defineJob<{ n: number }, string>({
    type: 'dash.flaky',
    maxAttempts: 1,
    perform: async () => {
      if (!healed) throw new Error('the flaky job fails until healed');
      return 'healed';
    },
  }),
];

let db: TestSchema;
let node: PartitaNode;
let browser: Browser;
let ui: string;

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await freshSchema('dash');
  node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: await natsUrl(),
    cluster: db.schema.replaceAll('_', '-'),
    dataDir: tempDataDir('dash'),
    persister: 'postgres',
    // `held` runs nowhere (concurrency 0): its jobs stay queued for the bulk cancel.
    partitions: { main: { queues: { default: { concurrency: 2 }, held: { concurrency: 0 } } } },
    jobs,
    http: { port: 0, dashboard: '/ui' },
    plugins: [dashboardPlugin()],
  });
  ui = `${node.http!.url}/ui`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

test.after.always(async () => {
  await browser?.close().catch(() => undefined);
  await node?.stop({ graceMs: 200 }).catch(() => undefined);
  await db?.drop();
});

async function open(url: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.on('dialog', (d) => void d.accept());
  const res = await page.goto(url);
  if (!res || res.status() !== 200) throw new Error(`${url} answered ${res?.status()}`);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

test.serial('every page serves directly at its own URL (no 404 on reload), on a phone-sized screen too', async (t) => {
  const { id } = await node.client.enqueue('main', 'dash.ok', { n: 1 });
  await node.client.result(id, { timeoutMs: 30_000 });
  for (const [name, url] of [
    ['overview', `${ui}/`],
    ['queues', `${ui}/queues`],
    ['jobs', `${ui}/jobs?q=type:dash.ok`],
    ['job', `${ui}/jobs/${id}`],
  ] as const) {
    const page = await open(url);
    t.truthy(await page.locator('main h1').textContent(), `${name} has a heading`);
    await page.reload();
    t.is(await page.locator('main h1').count(), 1, `${name} serves again on reload`);
    await shot(page, name);
    await page.close();
    const phone = await open(url, { width: 375, height: 740 });
    const overflow = await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    t.true(overflow <= 1, `${name} fits a phone's width (overflow ${overflow}px)`);
    await shot(phone, `${name}-phone`);
    await phone.close();
  }
  const overview = await open(`${ui}/`);
  // The roll call gathers answers for a short window and its result is shared for a few seconds:
  // under a loaded machine one round can close before the node answers, so reload until it lists it.
  await until(
    'the overview to list the node from roll call',
    async () => ((await overview.locator('main').textContent())!.includes(node.id) ? true : void (await overview.reload())),
    30_000,
    250,
  );
  t.regex((await overview.locator('main').textContent())!, /held/, 'the depth table lists every declared queue');
  await overview.close();
  const missing = await browser.newPage();
  t.is((await missing.goto(`${ui}/jobs/0193a2f1-0000-7000-8000-000000000000`))!.status(), 404);
  await missing.close();
});

test.serial('the filter bar: qualifiers in the URL, payload paths, state tabs, keyset pages; open a job', async (t) => {
  await node.client.enqueueMany(
    'main',
    Array.from({ length: 60 }, (_, i) => ({ type: 'dash.ok', payload: { n: i, user: { id: i } } })),
  );
  await until(
    'the 60 jobs to complete',
    async () => (await node.client.listJobs({ type: 'dash.ok', states: ['completed'], limit: 100 })).length >= 61,
    20_000,
  );
  const page = await open(`${ui}/jobs`);
  await page.fill('#q', 'type:dash.ok payload.user.id:7');
  await page.press('#q', 'Enter');
  await page.waitForURL(/q=type%3Adash\.ok\+payload\.user\.id%3A7/);
  const rows = page.locator('#jobs tbody tr');
  t.is(await rows.count(), 1, 'one job has user.id 7');
  await shot(page, 'jobs-filtered');

  // A shared URL is the same view.
  const shared = await open(page.url());
  t.is(await shared.locator('#jobs tbody tr').count(), 1);
  await shared.close();

  await page.goto(`${ui}/jobs?q=${encodeURIComponent('type:dash.ok state:completed')}`);
  t.is(await page.locator('#jobs tbody tr').count(), 50, 'a page holds 50 jobs');
  t.is(await page.locator('.tabs a[aria-current=page]').textContent(), 'completed', 'the state tab shows the filter');
  const firstPage = await page.locator('#jobs tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')!));
  t.deepEqual([...firstPage].sort().reverse(), firstPage, 'newest first');
  await page.click('a[rel=next]');
  const secondPage = await page.locator('#jobs tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')!));
  t.is(secondPage.length, 11, 'the next page holds the rest');
  t.true(
    secondPage.every((id) => id < firstPage.at(-1)!),
    'keyset: the next page starts below the last id',
  );

  const target = secondPage[0]!;
  // Jobs enqueued together share their first 12 digits (the millisecond): a longer prefix picks one.
  const prefix = target.slice(0, 28);
  await page.fill('#q', prefix);
  await page.press('#q', 'Enter');
  await page.waitForURL((url) => url.searchParams.get('q') === prefix);
  t.is(await page.locator('#jobs tbody tr').count(), 1, 'an id prefix finds the job');
  await page.click(`#jobs a[href$="${target}"]`);
  await page.waitForURL(new RegExp(`/ui/jobs/${target}$`));
  const payload = JSON.parse((await page.locator('#payload').textContent())!);
  t.is(typeof payload.n, 'number');
  t.regex((await page.locator('#result').textContent())!, /doubled/);
  await shot(page, 'job-detail');

  await page.goto(`${ui}/jobs?q=${encodeURIComponent('color:red')}`);
  t.regex((await page.locator('.flash.error').textContent())!, /unknown qualifier "color:"/, 'a bad qualifier is explained, not a crash');
  await page.close();
});

test.serial('retry a failed job from its page and see it complete, live (no reload)', async (t) => {
  const { id } = await node.client.enqueue('main', 'dash.flaky', { n: 1 });
  // Failed, not a wait that ran out on a loaded machine (the page below would show it still running).
  await t.throwsAsync(node.client.result(id, { timeoutMs: 30_000 }), { instanceOf: JobFailedError });
  const page = await open(`${ui}/jobs/${id}`);
  t.is(await page.locator('h1 [data-state]').getAttribute('data-state'), 'failed');
  t.regex((await page.locator('ol.errors').textContent())!, /fails until healed/, 'the attempt and its error are shown');
  await shot(page, 'job-failed');
  healed = true;
  await page.click('button:has-text("Retry")');
  await page.waitForURL(/msg=/);
  await page.evaluate('window.marker = 42');
  await page.locator('h1 [data-state=completed]').waitFor({ timeout: 30_000 });
  t.is(await page.evaluate<number>('window.marker'), 42, 'the page updated itself (the marker survived)');
  t.regex((await page.locator('#result').textContent())!, /healed/);
  await shot(page, 'job-retried');
  await page.close();
});

test.serial('pause a queue and see the badge; resume lifts it', async (t) => {
  const page = await open(`${ui}/queues`);
  const row = page.locator('tr[data-queue="main/default"]');
  t.is(await row.locator('[data-badge=paused]').count(), 0);
  await row.locator('button:has-text("Pause")').click();
  await page.waitForURL(/msg=/);
  await row.locator('[data-badge=paused]').waitFor();
  t.deepEqual(await node.client.paused('main'), ['default']);
  await shot(page, 'queues-paused');
  await row.locator('button:has-text("Resume")').click();
  await page.waitForURL(/resumed/);
  await until('the badge to go', async () => (await row.locator('[data-badge=paused]').count()) === 0, 30_000);
  t.deepEqual(await node.client.paused('main'), []);
  await page.close();
});

test.serial('keyboard only: the skip link comes first, and an action is reached with Tab and taken with Enter', async (t) => {
  const page = await open(`${ui}/queues`);
  await page.keyboard.press('Tab');
  t.is(await page.evaluate<string>('document.activeElement.className'), 'skip', 'the first Tab stop skips to the content');
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = (await page.evaluate<string | null>("document.activeElement.getAttribute('aria-label')")) === 'Pause main/default';
  }
  t.true(reached, "the queue's Pause button is a Tab stop");
  await page.keyboard.press('Enter');
  await page.waitForURL(/msg=/);
  await page.locator('tr[data-queue="main/default"] [data-badge=paused]').waitFor();
  t.deepEqual(await node.client.paused('main'), ['default']);
  await node.client.resume('main', 'default');
  await page.close();
});

test.serial('a live refresh keeps the keyboard focus: the link reached before it still takes Enter', async (t) => {
  const page = await open(`${ui}/queues`);
  await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 30_000 });
  const link = page.locator('#main a[href]').first();
  const href = await link.getAttribute('href');
  await link.focus();
  const before = await page.evaluate<string>("document.body.dataset.updated || ''");
  const { id } = await node.client.enqueue('main', 'dash.ok', { n: 98 });
  await node.client.result(id, { timeoutMs: 30_000 });
  await page.waitForFunction(`(document.body.dataset.updated || '') !== ${JSON.stringify(before)}`, undefined, { timeout: 30_000 });
  t.is(await page.evaluate<string | null>("document.activeElement.getAttribute('href')"), href, 'the same link has the focus');
  await page.keyboard.press('Enter');
  await page.waitForURL((url) => url.href.endsWith(href!));
  await page.close();
});

test.serial('bulk cancel by filter: a preview count, a cap, then the jobs are cancelled', async (t) => {
  const { ids } = await node.client.enqueueMany(
    'main',
    Array.from({ length: 5 }, (_, i) => ({ type: 'dash.ok', payload: { n: i }, queue: 'held' })),
  );
  const queues = await open(`${ui}/queues`);
  // The queues page reuses its reads for a second (shared by every viewer): look until it has read again.
  await until(
    'the queue head to show',
    async () => (await queues.reload(), (await queues.locator('tr[data-queue="main/held"] [data-head]').count()) > 0),
    30_000,
    300,
  );
  t.is(
    await queues.locator('tr[data-queue="main/held"] [data-head]').getAttribute('data-head'),
    ids[0],
    'the queue head is the first job in',
  );
  await queues.close();
  const page = await open(`${ui}/jobs?q=${encodeURIComponent('queue:held state:queued')}`);
  t.is(await page.locator('#jobs tbody tr').count(), 5);
  await page.click('a:has-text("cancel all…")');
  await page.waitForURL(/\/ui\/bulk\?op=cancel/);
  t.is(await page.locator('#preview [data-count]').getAttribute('data-count'), '5', 'the preview counts the matching jobs');
  await shot(page, 'bulk-preview');
  await page.fill('input[name=limit]', '3');
  await page.click('#confirm-bulk');
  await page.waitForURL(/msg=/);
  t.regex((await page.locator('.flash.ok').textContent())!, /3 jobs cancelled; more match/, 'the cap holds');
  const states = await Promise.all(ids.map(async (id) => (await node.client.job(id))!.state));
  t.is(states.filter((s) => s === 'cancelled').length, 3);
  t.is(states.filter((s) => s === 'queued').length, 2);
  await shot(page, 'bulk-done');

  // The rest by selection.
  await page.goto(`${ui}/jobs?q=${encodeURIComponent('queue:held state:queued')}`);
  await page.check('#select-all');
  await page.click('button[name=op][value=cancel]');
  await page.waitForURL(/msg=/);
  t.regex((await page.locator('.flash.ok').textContent())!, /2 jobs cancelled/);
  await page.close();
});

test.serial(
  'a change between a page being rendered and its event stream opening still shows: the page catches up when the stream opens',
  async (t) => {
    const {
      ids: [id],
    } = await node.client.enqueueMany('main', [{ type: 'dash.ok', payload: { n: 7 }, queue: 'held' }]);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Hold the page's event stream until the job has changed: its change event goes to no stream.
    let letStreamOpen!: () => void;
    const streamMayOpen = new Promise<void>((r) => (letStreamOpen = r));
    await page.route('**/events', async (route) => {
      await streamMayOpen;
      await route.continue();
    });
    await page.goto(`${ui}/jobs/${id}`);
    t.is(await page.locator('h1 [data-state]').getAttribute('data-state'), 'queued');
    await page.evaluate('window.marker = 3');
    t.true(await node.client.cancel(id!));
    await new Promise((r) => setTimeout(r, 1500)); // past the dashboard's push of that change (at most 1 s)
    letStreamOpen();
    await page.locator('h1 [data-state=cancelled]').waitFor({ timeout: 30_000 });
    await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 30_000 });
    t.is(await page.evaluate<number>('window.marker'), 3, 'caught up by a refresh, not a reload');
    await page.close();
  },
);

test.serial('a live update arrives on the overview without a reload', async (t) => {
  const page = await open(`${ui}/`);
  await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 30_000 });
  await page.evaluate('window.marker = 7');
  const before = await page.evaluate<string>("document.body.dataset.updated || ''");
  const { id } = await node.client.enqueue('main', 'dash.ok', { n: 99 });
  await node.client.result(id, { timeoutMs: 30_000 });
  await page.waitForFunction(`(document.body.dataset.updated || '') !== ${JSON.stringify(before)}`, undefined, { timeout: 30_000 });
  t.is(await page.evaluate<number>('window.marker'), 7, 'no reload');
  const completed = await page.locator('figure.chart').first().locator('b').textContent();
  t.true(Number(completed) >= 1, 'the throughput chart counts the completion');
  await shot(page, 'overview-live');
  await page.close();
});

test.serial('a dashboard started afresh (a node restart) rebuilds the last hour of its charts from history', async (t) => {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${db.schema}.jobs_history WHERE state = 'completed' AND finished_at > now() - interval '50 minutes'`,
  );
  const finished = rows[0]!.n;
  t.true(finished > 60, `jobs completed earlier in this file (${finished})`);
  const fresh = dashboard({ client: node.client, basePath: '/fresh' });
  const s = await listen((req, res) => fresh(req, res), [fresh]);
  t.teardown(s.close);
  const text = await (await fetch(`${s.origin}/fresh/`)).text();
  const completed = /Completed \/ min[\s\S]*?hour: (\d+)/.exec(text);
  t.is(Number(completed?.[1]), finished, 'the throughput chart holds every completion of the hour, none counted twice');
  const wait = /Wait \(enqueue → start\), avg[\s\S]*?<svg[\s\S]*?<\/svg>/.exec(text)?.[0] ?? '';
  t.regex(wait, /<rect [^>]*height="[1-9]/, 'the wait chart has bars from history');
  t.notRegex(text, /id="history-problem"/);
});

test.serial('without a bus the page polls; a hidden tab neither listens nor refreshes, and catches up when shown', async (t) => {
  const busless = await connect({ postgres: db.url, schema: db.schema });
  const handler = dashboard({ client: busless, basePath: '/nobus' });
  const s = await listen((req, res) => handler(req, res), [handler]);
  t.teardown(async () => {
    await s.close();
    await busless.close();
  });
  const updated = (p: Page) => p.evaluate<string>("document.body.dataset.updated || ''");
  const polling = await open(`${s.origin}/nobus/`);
  await polling.waitForFunction("document.body.dataset.liveState === 'polling'", undefined, { timeout: 30_000 });
  t.regex((await polling.locator('main').textContent())!, /No job events reach this dashboard/);
  const before = await updated(polling);
  await polling.waitForFunction(`(document.body.dataset.updated || '') !== ${JSON.stringify(before)}`, undefined, { timeout: 30_000 });
  t.pass('the page refreshed itself by polling');
  await polling.close();

  const page = await open(`${ui}/`);
  await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 30_000 });
  const setHidden = (hidden: boolean) =>
    page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} });
      document.dispatchEvent(new Event('visibilitychange'))`);
  await setHidden(true);
  t.is(await page.evaluate<string>('document.body.dataset.liveState'), 'paused');
  const hiddenAt = await updated(page);
  const { id } = await node.client.enqueue('main', 'dash.ok', { n: 5 });
  await node.client.result(id, { timeoutMs: 30_000 });
  // Pushes come at most once a second: a hidden tab that still listened would have refreshed by now.
  await new Promise((r) => setTimeout(r, 2500));
  t.is(await updated(page), hiddenAt, 'no refresh while hidden');
  await setHidden(false);
  await page.waitForFunction(`(document.body.dataset.updated || '') !== ${JSON.stringify(hiddenAt)}`, undefined, { timeout: 30_000 });
  await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 30_000 });
  t.pass('shown again, the page refreshed at once and listens again');
  await page.close();
});
