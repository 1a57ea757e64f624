/**
 * The dashboard handler mounted on a plain node:http server (as any Node server would mount it),
 * over a real node's client: readOnly, authorize for every page and action, the action events, the
 * cross-site refusal, Express-style fall-through, the event stream; and the filter's id arithmetic.
 */
import test from 'ava';
import { isUuid } from '@partita/core';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { clientBus } from '@partita/client/internal';
import { subjects } from '@partita/protocol';
import {
  ACTION_EVENT_KIND,
  dashboard,
  parseFilter,
  type ActionRecord,
  type DashboardAction,
  type DashboardOptions,
} from '@partita/dashboard';
import { idRange } from '../src/filter.js';
import { freshSchema, holdTableLock, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';
import { listen } from './helpers.js';

let db: TestSchema;
let node: PartitaNode;

test.before(async () => {
  db = await freshSchema('dashh');
  node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: false,
    dataDir: tempDataDir('dashh'),
    persister: 'postgres',
    // Nothing runs `idle` here: its jobs stay queued for the actions to act on.
    partitions: { p: { queues: { idle: { concurrency: 0 } } } },
    jobs: [defineJob({ type: 'h.noop', perform: async () => 'ok' })],
  });
});

test.after.always(async () => {
  await node?.stop({ graceMs: 100 }).catch(() => undefined);
  await db?.drop();
});

/** The handler on its own server under `/admin/dash`; anything else answers 418 (the host app's own route). */
async function serve(options: Omit<DashboardOptions, 'client' | 'basePath'>) {
  const handler = dashboard({ client: node.client, basePath: '/admin/dash', ...options });
  const { origin, close } = await listen(
    (req, res) =>
      handler(req, res, () => {
        res.statusCode = 418;
        res.end('host app');
      }),
    [handler],
  );
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(origin + path, {
      method: 'POST',
      body: new URLSearchParams(form),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      redirect: 'manual',
    });
  return {
    origin,
    handler,
    post,
    close,
  };
}

test.serial('readOnly: pages serve without action buttons; every action is refused with 403', async (t) => {
  const { id } = await node.client.enqueue('p', 'h.noop', {}, { queue: 'idle' });
  const s = await serve({ readOnly: true });
  t.teardown(s.close);
  const page = await fetch(`${s.origin}/admin/dash/jobs/${id}`);
  t.is(page.status, 200);
  const body = await page.text();
  t.regex(body, new RegExp(id));
  t.notRegex(body, /actions\/cancel/, 'no cancel form on a read-only page');
  const refused = await s.post('/admin/dash/actions/cancel', { id, return: '/admin/dash/' });
  t.is(refused.status, 403);
  t.is((await node.client.job(id))!.state, 'queued', 'the job was not touched');
  const queues = await fetch(`${s.origin}/admin/dash/queues`);
  t.notRegex(await queues.text(), /actions\/pause/);
});

test.serial('authorize sees every page read and action; refusals and actions are emitted as events', async (t) => {
  const { id } = await node.client.enqueue('p', 'h.noop', {}, { queue: 'idle' });
  const seen: DashboardAction[] = [];
  const s = await serve({
    authorize: (req, action) => {
      seen.push(action);
      return action.kind === 'view' || req.headers['x-role'] === 'admin';
    },
  });
  t.teardown(s.close);
  const emitted: ActionRecord[] = [];
  s.handler.events.on('action', (r: ActionRecord) => emitted.push(r));

  t.is((await fetch(`${s.origin}/admin/dash/jobs`)).status, 200);
  t.deepEqual(seen.at(-1), { kind: 'view', page: 'jobs' });

  const refused = await s.post('/admin/dash/actions/cancel', { id, return: '/admin/dash/jobs' });
  t.is(refused.status, 403);
  t.is((await node.client.job(id))!.state, 'queued');
  t.like(emitted.at(-1), { outcome: 'refused', action: { kind: 'cancel', jobId: id } });

  const done = await s.post('/admin/dash/actions/cancel', { id, return: `/admin/dash/jobs/${id}` }, { 'x-role': 'admin' });
  t.is(done.status, 303);
  const location = new URL(done.headers.get('location')!, s.origin);
  t.is(location.pathname, `/admin/dash/jobs/${id}`, 'back to the page the action came from');
  t.regex(location.searchParams.get('msg')!, /cancelled/);
  t.is((await node.client.job(id))!.state, 'cancelled');
  t.like(emitted.at(-1), { outcome: 'done', action: { kind: 'cancel', jobId: id } });
  t.deepEqual(seen.at(-1), { kind: 'cancel', jobId: id });

  // A return address outside the dashboard is not followed.
  const { id: other } = await node.client.enqueue('p', 'h.noop', {}, { queue: 'idle' });
  const away = await s.post('/admin/dash/actions/cancel', { id: other, return: 'https://elsewhere.example/' }, { 'x-role': 'admin' });
  t.is(new URL(away.headers.get('location')!, s.origin).pathname, '/admin/dash/');

  // Pause through the form; authorize is told the partition and queue.
  const paused = await s.post(
    '/admin/dash/actions/pause',
    { partition: 'p', queue: 'idle', return: '/admin/dash/queues' },
    { 'x-role': 'admin' },
  );
  t.is(paused.status, 303);
  t.deepEqual(seen.at(-1), { kind: 'pause', partition: 'p', queue: 'idle' });
  t.deepEqual(await node.client.paused('p'), ['idle']);
  await node.client.resume('p', 'idle');
});

test.serial('a form posted from another site is refused; unknown paths fall through to the host app', async (t) => {
  const { id } = await node.client.enqueue('p', 'h.noop', {}, { queue: 'idle' });
  const s = await serve({});
  t.teardown(s.close);
  const cross = await s.post('/admin/dash/actions/cancel', { id }, { origin: 'http://evil.example' });
  t.is(cross.status, 403);
  t.is((await node.client.job(id))!.state, 'queued');
  t.is((await fetch(`${s.origin}/elsewhere`)).status, 418, 'next() for what is not the dashboard');
  t.is((await fetch(`${s.origin}/admin/dash/no-such-page`)).status, 418);
  const asset = await fetch(`${s.origin}/admin/dash/assets/app.js`);
  t.is(asset.status, 200);
  t.regex(asset.headers.get('content-type')!, /javascript/);
  t.regex(await asset.text(), /EventSource/);
});

test.serial('the event stream says hello and whether events flow', async (t) => {
  const s = await serve({});
  t.teardown(s.close);
  const controller = new AbortController();
  const res = await fetch(`${s.origin}/admin/dash/events`, { signal: controller.signal });
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type')!, /text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  t.regex(text, /event: hello/);
  // The node has no NATS: its in-process bus still carries the node's own job events.
  t.regex(text, /"live":true/);
});

test('the filter: qualifiers, and time and id prefixes as id bounds', (t) => {
  const f = parseFilter(
    'queue:q type:t state:failed,cancelled node:n1 lookup.customer:42 payload.user.id:7 since:2026-12-06T01:00:00Z 01a3',
  );
  t.like(f, { queue: 'q', type: 't', states: ['failed', 'cancelled'], node: 'n1', lookup: { customer: '42' }, idPrefix: '01a3' });
  t.deepEqual(f.payload, [[['user', 'id'], '7']]);
  const since = Date.parse('2026-12-06T01:00:00Z');
  const { low, high } = idRange(f);
  // The later of the two lower bounds wins: ids starting 01a3 were made after 2026-12-06 (01a2494b…).
  t.is(low, '01a30000-0000-0000-0000-000000000000');
  t.is(high, '01a40000-0000-0000-0000-000000000000');
  const at = idRange(parseFilter('since:2026-12-06T01:00:00Z until:2026-12-06T02:00:00Z'));
  // A UUIDv7 made at `ms` (uuidv7() itself never goes back in time, so it cannot make these).
  const madeAt = (ms: number) => {
    const hex = ms.toString(16).padStart(12, '0') + '7abc8def0123456789ab';
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  t.true(madeAt(since + 1000) >= at.low! && madeAt(since + 1000) < at.high!, 'an id made in the range is inside the bounds');
  t.false(madeAt(since - 1) >= at.low!, 'an id made before since is below the bounds');
  t.false(madeAt(since + 3_600_000) < at.high!, 'an id made at until is past the bounds');
  t.true(isUuid(madeAt(since)));
  t.throws(() => parseFilter('colour:red'), { message: /unknown qualifier "colour:"/ });
  t.throws(() => parseFilter('state:done'), { message: /state must be one of/ });
  t.throws(() => parseFilter('zz-not-hex'), { message: /neither a qualifier/ });
});

test.serial('every job and queue action is published on the bus as partita.<cluster>.action.<kind>', async (t) => {
  const bus = clientBus(node.client)!;
  const heard: { action: DashboardAction; outcome: string }[] = [];
  const stop = await bus.subscribe(
    subjects.actionPattern(bus.cluster),
    (data: { action: DashboardAction; outcome: string }) => void heard.push(data),
    {
      kinds: [ACTION_EVENT_KIND],
    },
  );
  t.teardown(stop);
  const s = await serve({});
  t.teardown(s.close);
  const { ids } = await node.client.enqueueMany('p', [
    { type: 'h.noop', queue: 'idle' },
    { type: 'h.noop', queue: 'idle' },
    { type: 'h.noop', queue: 'idle' },
  ]);
  const back = { return: '/admin/dash/queues' };
  const posts: [string, Record<string, string>][] = [
    ['pause', { partition: 'p', queue: 'idle' }],
    ['resume', { partition: 'p', queue: 'idle' }],
    ['throttle', { partition: 'p', queue: 'idle', ms: '0' }],
    ['cancel', { id: ids[0]! }],
    ['retry', { id: ids[0]! }],
    ['delete', { id: ids[1]! }],
    ['bulk', { op: 'cancel', ids: ids[2]! }],
  ];
  for (const [action, form] of posts) t.is((await s.post(`/admin/dash/actions/${action}`, { ...form, ...back })).status, 303, action);
  await until('every action on the bus', async () => heard.length >= posts.length, 20_000);
  t.deepEqual(
    heard.map((h) => h.action.kind),
    posts.map(([a]) => a),
  );
  t.true(heard.every((h) => h.outcome === 'done'));
  t.like(
    heard.find((h) => h.action.kind === 'retry'),
    { action: { kind: 'retry', jobId: ids[0] } },
  );
});

test.serial('past estimateDepthAbove live jobs the depth is a sampled estimate, marked as such, near the real count', async (t) => {
  await node.client.enqueueMany(
    'p',
    Array.from({ length: 3000 }, () => ({ type: 'h.noop', queue: 'idle' })),
  );
  const exact = (await node.client.queueCounts()).filter((c) => c.partition === 'p' && c.queue === 'idle' && c.state === 'queued')[0]!
    .count;
  // The estimate scales its sample to Postgres's live-tuple statistic, which trails an insert by up
  // to its backend's flush interval (10 s when idle). Waited for, not forced by ANALYZE: an ANALYZE
  // that ran before the inserting backend flushed sets the count, and the flush then adds the same
  // inserts again (CI read an estimate of 6,005 for 3,003 jobs).
  const liveStatistic = async () => {
    const { rows } = await db.pool.query(
      `SELECT coalesce(s.n_live_tup, 0)::float8 AS n, (SELECT count(*) FROM ${db.schema}.jobs)::float8 AS real
       FROM pg_stat_all_tables s WHERE s.relid = '${db.schema}.jobs'::regclass`,
    );
    return { n: Number(rows[0].n), real: Number(rows[0].real) };
  };
  await until(
    'the live-tuple statistic to count the inserts',
    async () => {
      const { n, real } = await liveStatistic();
      return Math.abs(n - real) <= real * 0.1;
    },
    30_000,
    200,
  );
  const s = await serve({ estimateDepthAbove: 1000 });
  t.teardown(s.close);
  let shown = 0;
  await until(
    'the estimate to reach the real depth',
    async () => {
      const page = await (await fetch(`${s.origin}/admin/dash/queues`)).text();
      if (!page.includes('id="estimated"')) return false;
      const row = /<tr data-queue="p\/idle">[\s\S]*?<td class="num">(\d+)<\/td>/.exec(page);
      shown = Number(row?.[1] ?? 0);
      return Math.abs(shown - exact) <= exact * 0.2;
    },
    15_000,
  ).catch(() => undefined);
  t.true(Math.abs(shown - exact) <= exact * 0.2, `estimate ${shown} vs ${exact} queued`);
  const small = await serve({});
  t.teardown(small.close);
  t.notRegex(await (await fetch(`${small.origin}/admin/dash/queues`)).text(), /id="estimated"/, 'below the threshold the count is exact');
});

test.serial(
  'every page query has a statement timeout: a read blocked by a lock is cancelled in Postgres and the page says so',
  async (t) => {
    const { id } = await node.client.enqueue('p', 'h.noop', {}, { queue: 'idle' });
    const s = await serve({ statementTimeoutMs: 300 });
    t.teardown(s.close);
    t.is((await fetch(`${s.origin}/admin/dash/jobs/${id}`)).status, 200, 'the page serves while nothing blocks it');
    // A lock that every read of the hot table waits for, held by the test until it lets go.
    const release = await holdTableLock(db.pool, `${db.schema}.jobs`);
    t.teardown(release);
    for (const path of [`/jobs/${id}`, `/jobs?q=${encodeURIComponent('queue:idle')}`, '/queues']) {
      const started = Date.now();
      const res = await fetch(`${s.origin}/admin/dash${path}`);
      const took = Date.now() - started;
      const text = await res.text();
      t.is(res.status, 503, `${path} answers 503`);
      t.regex(text, /id="timed-out"[\s\S]*statement timeout \(300 ms\)/, `${path} says a query was cut at the timeout`);
      t.true(took < 4500, `${path} was cut near the timeout (${took} ms), not left waiting for the lock`);
    }
    // Postgres cancels them: a read still in flight when its page answered (a page answers at its first
    // failed read) is cut within the timeout too; none waits for the lock for as long as it is held.
    const waiting = async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE NOT l.granted AND l.relation = '${db.schema}.jobs'::regclass AND a.application_name = 'partita-dashboard'`,
        )
      ).rows[0]!.n;
    await until('no dashboard read to wait for the lock', async () => (await waiting()) === 0, 20_000, 50).catch(() => undefined);
    t.is(await waiting(), 0, 'no dashboard query is left waiting in Postgres');
    await release();
    t.is((await fetch(`${s.origin}/admin/dash/jobs/${id}`)).status, 200, 'the page serves again once the lock is gone');
  },
);

test.serial('the hour read from history at start is cut at the statement timeout too; the overview serves and says so', async (t) => {
  t.teardown(await holdTableLock(db.pool, `${db.schema}.jobs_history`));
  const s = await serve({ statementTimeoutMs: 300 });
  t.teardown(s.close);
  const started = Date.now();
  const res = await fetch(`${s.origin}/admin/dash/`);
  const text = await res.text();
  t.is(res.status, 200, 'the overview serves without the hour before');
  t.regex(text, /id="history-problem"[\s\S]*statement timeout/, 'and says why its charts start now');
  t.true(Date.now() - started < 4500, 'cut near the timeout, not left waiting for the lock');
});
