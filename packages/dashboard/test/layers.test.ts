/**
 * The workflows and schedules tabs in a real headless browser against a node with the workflows and
 * processes plugins (Postgres, NATS): apps and versions, the listing by search field, a workflow's
 * graph with each activity's state, a hook and an interrupt sent from the page; a schedule
 * triggered, paused and resumed; a background process with work items listed, opened, triggered
 * (its last run's result changes) and paused. Every action is also seen as an event on the bus by a subscriber in
 * another client. Screenshots go to test/artifacts/dashboard/.
 */
import test from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connect, type Client } from '@partita/client';
import { clientBus } from '@partita/client/internal';
import { subjects } from '@partita/protocol';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { app, workflowsPlugin, type WorkflowApp } from '@partita/workflows';
import { defineProcess, processes, processesPlugin, schedules, type RunOutcome } from '@partita/processes';
import { ACTION_EVENT_KIND, dashboard, dashboardPlugin, type ActionRecord, type DashboardAction } from '@partita/dashboard';
import { freshSchema, natsUrl, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';
import { listen } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', '..', 'test', 'artifacts', 'dashboard');

const APP = `app:
  id: dashapp
  version: '1'
  graphs:
    - subscribes: order.review
      expire: 3600
      activities:
        t1:
          type: trigger
        score:
          type: worker
          topic: dash.score
          input:
            maps:
              n: '{t1.output.data.n}'
        review:
          type: hook
          job:
            maps:
              approved: '{$self.hook.data.approved}'
        done:
          type: hook
      transitions:
        t1:
          - to: score
        score:
          - to: review
        review:
          - to: done
      hooks:
        dash.reviewed:
          - to: review
            conditions:
              match:
                - expected: '{$job.metadata.jid}'
                  actual: '{$self.hook.data.id}'
`;

interface SeenAction {
  action: { kind: string };
  outcome: string;
  message: string;
}

let db: TestSchema;
let node: PartitaNode;
let watcher: Client;
let browser: Browser;
let ui: string;
let orders: WorkflowApp;
const seen: SeenAction[] = [];
const runEnds: [string, RunOutcome][] = [];

/** Runs only when triggered (the first look and the first slot are an hour away). */
const tidy = defineProcess<{ batch: number }, { size: number; broken?: boolean }>({
  name: 'tidy',
  scheduleMs: 3_600_000,
  minScheduleMs: 1000,
  initialWaitMs: 3_600_000,
  progressMs: 1,
  leaseMs: 3000,
  jitterMs: 0,
  settings: { batch: 50 },
  async processActiveWork(ctx, name, work) {
    if (work.params.broken) throw new Error(`${name} is broken`);
    ctx.addStats(work.params.size, 'rows', name);
  },
  async cleanupWork() {},
});

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await freshSchema('dashl');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats,
    cluster,
    dataDir: tempDataDir('dashl'),
    persister: 'postgres',
    partitions: { default: { queues: { default: { concurrency: 4 } } } },
    engine: { pollMs: 100 },
    jobs: [
      defineJob<{ n: number }, { score: number }>({ type: 'dash.score', perform: (p) => ({ score: p.n * 10 }) }),
      defineJob({ type: 'dash.tick', perform: async () => 'tick' }),
    ],
    http: { port: 0, dashboard: '/ui' },
    plugins: [
      workflowsPlugin(),
      processesPlugin({ processes: [tidy], onProcessRunEnd: (name, outcome) => runEnds.push([name, outcome]) }),
      dashboardPlugin(),
    ],
  });
  ui = `${node.http!.url}/ui`;
  // The audit trail as another process sees it: its own client and bus connection.
  watcher = await connect({ postgres: db.url, schema: db.schema, nats, cluster });
  await clientBus(watcher)!.subscribe(
    subjects.actionPattern(cluster),
    (data: SeenAction) => {
      seen.push(data);
    },
    { kinds: [ACTION_EVENT_KIND] },
  );
  orders = app(node.client, 'dashapp');
  await orders.deploy(APP);
  await orders.activate('1');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

test.after.always(async () => {
  await browser?.close().catch(() => undefined);
  await watcher?.close().catch(() => undefined);
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

async function activityState(page: Page, activity: string): Promise<string | null> {
  return page.locator(`#wf-graph g[data-activity="${activity}"]`).getAttribute('data-state');
}

async function waitingAtReview(id: string): Promise<void> {
  await until(
    `workflow ${id} to wait at review`,
    async () => (await orders.export(id)).activities.some((a) => a.activity === 'review' && a.state === 'waiting'),
    15_000,
  );
}

test.serial('workflows: versions, the listing by field, the graph with states, a hook and an interrupt from the page', async (t) => {
  const first = await orders.pub('order.review', { n: 4 }, { search: { customer: 42 } });
  const second = await orders.pub('order.review', { n: 5 }, { search: { customer: 7 } });
  await waitingAtReview(first);
  await waitingAtReview(second);

  const list = await open(`${ui}/workflows`);
  t.is(
    await list.locator('#versions tr[data-app="dashapp"][data-version="1"] [data-active="yes"]').count(),
    1,
    'version 1 is shown active',
  );
  await list.fill('#wf-search', 'customer:42');
  await list.press('#wf-search', 'Enter');
  await list.waitForURL(/search=customer%3A42/);
  t.deepEqual(await list.locator('#workflows tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id'))), [first]);
  await shot(list, 'workflows');
  await list.click(`#workflows a[href$="/${first}"]`);
  await list.waitForURL(new RegExp(`/ui/workflows/dashapp/${first}$`));
  t.is(await activityState(list, 'score'), 'done', 'the worker step is drawn done');
  t.is(await activityState(list, 'review'), 'waiting', 'the hook step is drawn waiting');
  t.is(await activityState(list, 'done'), 'not-reached');
  await shot(list, 'workflow');

  await list.fill('#hook-form textarea', JSON.stringify({ id: first, approved: true }));
  await list.click('#hook-form button[type="submit"]');
  await list.waitForURL(/msg=/);
  t.regex((await list.locator('.flash').textContent())!, new RegExp(`delivered to workflow ${first}`));
  await until(
    'the hooked workflow to finish',
    async () => {
      await list.reload();
      return (await list.locator('h1 [data-status]').getAttribute('data-status')) === 'done';
    },
    15_000,
  );
  t.is(await activityState(list, 'done'), 'done');
  t.is(await list.locator('form[action$="/actions/interrupt"]').count(), 0, 'a finished workflow offers no interrupt');
  await shot(list, 'workflow-done');
  await list.close();

  const other = await open(`${ui}/workflows/dashapp/${second}`);
  await other.fill('input[name="reason"]', 'not needed');
  await other.click('form[action$="/actions/interrupt"] button');
  await other.waitForURL(/msg=/);
  t.is(await other.locator('h1 [data-status]').getAttribute('data-status'), 'interrupted');
  await other.close();

  const interrupted = await open(`${ui}/workflows?status=interrupted`);
  t.deepEqual(await interrupted.locator('#workflows tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id'))), [second]);
  await interrupted.close();

  for (const [name, url] of [
    ['workflows', `${ui}/workflows`],
    ['workflow', `${ui}/workflows/dashapp/${first}`],
  ] as const) {
    const phone = await open(url, { width: 375, height: 740 });
    const overflow = await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    t.true(overflow <= 1, `${name} fits a phone's width (overflow ${overflow}px)`);
    await shot(phone, `${name}-phone`);
    await phone.close();
  }

  const missing = await browser.newPage();
  t.is((await missing.goto(`${ui}/workflows/dashapp/no-such-id`))!.status(), 404);
  await missing.close();

  await until('the hook and interrupt events on the bus', async () => seen.some((e) => e.action.kind === 'interrupt'), 20_000);
  const hook = seen.find((e) => e.action.kind === 'hook');
  t.is(hook?.outcome, 'done');
  t.regex(hook?.message ?? '', /delivered/);
  t.is(seen.find((e) => e.action.kind === 'interrupt')?.outcome, 'done');
});

test.serial('schedules: next and last fire, trigger, pause and resume from the page; each seen on the bus', async (t) => {
  await schedules(node.client).create({ id: 'nightly', cron: '0 3 * * *', partition: 'default', type: 'dash.tick' });
  const page = await open(`${ui}/schedules`);
  const row = page.locator('#schedules tr[data-schedule="nightly"]');
  t.is(await row.locator('[data-fired]').getAttribute('data-fired'), '0');
  await shot(page, 'schedules');

  await row.locator('button', { hasText: 'Trigger' }).click();
  await page.waitForURL(/msg=/);
  t.regex((await page.locator('.flash').textContent())!, /nightly triggered: job/);
  t.is(await row.locator('[data-fired]').getAttribute('data-fired'), '1');
  const jobId = await row.locator('[data-last-job]').getAttribute('data-last-job');
  t.truthy(jobId);
  t.is(await node.client.result(jobId!, { timeoutMs: 10_000 }), 'tick', 'the triggered job ran');

  await row.locator('button', { hasText: 'Pause' }).click();
  await page.waitForURL(/paused/);
  t.is(await row.locator('[data-badge="paused"]').count(), 1);
  t.true((await schedules(node.client).get('nightly'))!.paused);
  await shot(page, 'schedules-paused');
  await row.locator('button', { hasText: 'Resume' }).click();
  await page.waitForURL(/resumed/);
  t.is(await row.locator('[data-badge="paused"]').count(), 0);
  await page.close();
  const phone = await open(`${ui}/schedules`, { width: 375, height: 740 });
  t.true((await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')) <= 1, 'schedules fit a phone');
  await phone.close();

  await until(
    'the schedule actions on the bus',
    async () => ['schedule-trigger', 'schedule-pause', 'schedule-resume'].every((k) => seen.some((e) => e.action.kind === k)),
    20_000,
  );
  t.pass();
});

test.serial(
  'processes: the list and a process page; trigger changes the last run, pause shows the badge; each seen on the bus',
  async (t) => {
    const api = processes(node.client);
    await api.registerWork('tidy', 'orders', { size: 7 });
    await api.registerWork('tidy', 'invoices', { size: 5 });
    await api.registerWork('tidy', 'legacy', { size: 0, broken: true });

    const page = await open(`${ui}/processes`);
    t.is(await page.locator('header nav a[href$="/processes"]').count(), 1, 'the tab shows when the processes tables exist');
    const row = page.locator('#processes tr[data-process="tidy"]');
    t.is(await row.locator('[data-items]').getAttribute('data-items'), '3');
    t.is(await row.locator('[data-run-no]').getAttribute('data-run-no'), '0', 'never run yet');
    t.is(await row.locator('[data-result]').count(), 0);
    await shot(page, 'processes');

    await row.locator('button', { hasText: 'Trigger' }).click();
    await page.waitForURL(/msg=/);
    t.regex((await page.locator('.flash').textContent())!, /tidy triggered/);
    await until('the triggered run to end', async () => runEnds.some(([n]) => n === 'tidy'), 15_000);
    await page.reload();
    t.is(await row.locator('[data-run-no]').getAttribute('data-run-no'), '1');
    t.is(await row.locator('[data-result]').getAttribute('data-result'), 'incomplete', 'the run result shows on the list: one item failed');
    t.is(await row.locator('[data-errors]').getAttribute('data-errors'), '1');
    t.not(await row.locator('td').nth(1).textContent(), 'none', 'an owner took the run');

    await row.locator('a', { hasText: 'tidy' }).click();
    await page.waitForURL(/\/ui\/processes\/tidy$/);
    const owner = (await api.get('tidy'))!.owner!;
    t.regex((await page.locator('#owner').textContent())!, new RegExp(owner.id));
    t.is(await page.locator('#owner [data-epoch]').getAttribute('data-epoch'), String(owner.epoch));
    t.is(await page.locator('#last-run [data-result]').getAttribute('data-result'), 'incomplete');
    t.is(await page.locator('#work tr[data-item="orders"] [data-item-state]').getAttribute('data-item-state'), 'completed');
    t.regex((await page.locator('#work tr[data-item="orders"]').textContent())!, /rows\s*7/, 'per-item stats');
    t.is(await page.locator('#work tr[data-item="legacy"] [data-item-state]').getAttribute('data-item-state'), 'incomplete');
    t.regex((await page.locator('#work tr[data-item="legacy"]').textContent())!, /legacy is broken/, 'the item keeps its error');
    t.is(await page.locator('[data-error-total]').first().getAttribute('data-error-total'), '1');
    t.regex((await page.locator('#run-stats').textContent())!, /work\.rows\s*12/, "the run adds the items' stats");
    t.regex((await page.locator('#aggregate-stats').textContent())!, /runs\s*1/);
    t.regex((await page.locator('#settings').textContent())!, /"batch": 50/);
    await shot(page, 'process');

    // The broken item is fixed and a second run is triggered elsewhere (another client): the open
    // page shows the run's end by itself, pushed over its event stream, without a reload.
    t.true(await api.registerWork('tidy', 'legacy', { size: 3 }));
    await page.waitForFunction("document.body.dataset.liveState === 'live'", undefined, { timeout: 10_000 });
    await page.evaluate('window.marker = 5');
    await api.trigger('tidy');
    await until('the second run to end', async () => runEnds.filter(([n]) => n === 'tidy').length === 2, 15_000);
    await page.locator('#last-run[data-run-no="2"] [data-result="completed"]').waitFor({ timeout: 10_000 });
    t.is(await page.evaluate<number>('window.marker'), 5, 'the page updated itself (the marker survived a refresh, not a reload)');
    t.is(await page.locator('#last-run').getAttribute('data-run-no'), '2');
    t.is(await page.locator('#last-run [data-result]').getAttribute('data-result'), 'completed');
    t.is(await page.locator('#work tr[data-item="legacy"] [data-item-state]').getAttribute('data-item-state'), 'completed');
    t.regex((await page.locator('#aggregate-stats').textContent())!, /runs\s*2/);
    await shot(page, 'process-completed');

    await page.locator('form[action$="/actions/process-pause"] button').click();
    await page.waitForURL(/paused/);
    t.is(await page.locator('h1 [data-badge="paused"]').count(), 1);
    t.true((await api.get('tidy'))!.paused);
    await shot(page, 'process-paused');
    await page.goto(`${ui}/processes`);
    t.is(await row.locator('[data-badge="paused"]').count(), 1, 'the list shows the badge too');
    await row.locator('button', { hasText: 'Resume' }).click();
    await page.waitForURL(/resumed/);
    t.is(await row.locator('[data-badge="paused"]').count(), 0);
    t.false((await api.get('tidy'))!.paused);
    await page.close();

    for (const [name, url] of [
      ['processes', `${ui}/processes`],
      ['process', `${ui}/processes/tidy`],
    ] as const) {
      const phone = await open(url, { width: 375, height: 740 });
      const overflow = await phone.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      t.true(overflow <= 1, `${name} fits a phone's width (overflow ${overflow}px)`);
      await shot(phone, `${name}-phone`);
      await phone.close();
    }

    const keyboard = await open(`${ui}/processes`);
    await keyboard.locator('#processes a', { hasText: 'tidy' }).focus();
    await keyboard.keyboard.press('Enter');
    await keyboard.waitForURL(/\/processes\/tidy$/);
    await keyboard.close();

    const missing = await browser.newPage();
    t.is((await missing.goto(`${ui}/processes/no-such-process`))!.status(), 404);
    await missing.close();

    await until(
      'the process actions on the bus',
      async () =>
        ['process-trigger', 'process-pause', 'process-resume'].every((k) => seen.some((e) => e.action.kind === k && e.outcome === 'done')),
      20_000,
    );
    t.pass();
  },
);

test.serial('processes: readOnly shows no action and refuses one; authorize sees the process actions', async (t) => {
  const api = processes(node.client);
  const asked: DashboardAction[] = [];
  const refusedEvents: ActionRecord[] = [];
  const readOnly = dashboard({ client: node.client, basePath: '/ro', readOnly: true });
  const guarded = dashboard({
    client: node.client,
    basePath: '/guarded',
    authorize: (_req, action) => {
      asked.push(action);
      return action.kind === 'view';
    },
  });
  guarded.events.on('action', (r: ActionRecord) => refusedEvents.push(r));
  const { origin, close } = await listen(
    (req, res) => {
      const handler = req.url?.startsWith('/ro') ? readOnly : guarded;
      void handler(req, res, () => {
        res.statusCode = 404;
        res.end();
      });
    },
    [readOnly, guarded],
  );
  t.teardown(close);
  const post = (path: string) =>
    fetch(origin + path, {
      method: 'POST',
      body: new URLSearchParams({ id: 'tidy', return: '/' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });
  const before = (await api.get('tidy'))!;

  const list = await fetch(`${origin}/ro/processes`);
  t.is(list.status, 200);
  const body = await list.text();
  t.regex(body, /data-process="tidy"/);
  t.notRegex(body, /actions\/process-/, 'no action forms on a read-only page');
  t.notRegex(await (await fetch(`${origin}/ro/processes/tidy`)).text(), /actions\/process-/);
  t.is((await post('/ro/actions/process-trigger')).status, 403);

  t.is((await fetch(`${origin}/guarded/processes/tidy`)).status, 200);
  t.deepEqual(asked.at(-1), { kind: 'view', page: 'process' });
  t.is((await post('/guarded/actions/process-pause')).status, 403);
  t.deepEqual(asked.at(-1), { kind: 'process-pause', process: 'tidy' });
  t.like(refusedEvents.at(-1), { outcome: 'refused', action: { kind: 'process-pause', process: 'tidy' } });

  const after = (await api.get('tidy'))!;
  t.false(after.paused, 'the refused pause did nothing');
  t.is(after.triggeredAt, before.triggeredAt, 'the refused trigger did nothing');
});
