/**
 * The dashboard as one Node HTTP handler: `(req, res, next?)`, so node:http, Express, Koa (through
 * its `req`/`res`) and a node's own HTTP server mount it alike.
 *
 * Pages are rendered on the server (each a URL that serves directly, the filter in the query);
 * actions are plain form POSTs answered with a redirect back, each checked against `readOnly` and
 * `authorize`, logged and emitted. What a page reads is what the client offers: the live-table
 * counts (never a count over history), keyset pages of the listing, roll call; reads shared by
 * every viewer are cached for a moment, and each has a deadline.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BulkResult, Client, JobMatch, MemberProfile, QueueCount } from '@partita/client';
import { clientBus, clientStore } from '@partita/client/internal';
import { subjects } from '@partita/protocol';
import { processes as processesOf, schedules as schedulesOf, type Processes, type Schedules } from '@partita/processes';
import { app as workflowApp, graphOf, Versions, WorkflowNotFoundError } from '@partita/workflows';
import {
  describeError,
  isUuid,
  JOB_STATES,
  silentLogger,
  TimeoutError,
  ValidationError,
  type JobRecord,
  type JobState,
  type Logger,
} from '@partita/core';
import { bulkMatch, formatFilter, idRange, listFilter, listingOnly, matchesRow, parseFilter, type JobFilter } from './filter.js';
import { actionForm, bars, html, Html, json, page, time, type Layout } from './html.js';
import { Live } from './live.js';
import { DashboardDb } from './db.js';
import { isStatementTimeout, openReads } from './reads.js';
import { schedulesBody } from './schedules.js';
import { processBody, processesBody } from './processes.js';
import {
  cursorOf,
  WORKFLOW_STATUSES,
  workflowBody,
  workflowsBody,
  workflowUrl,
  type AppVersionRow,
  type WorkflowListFilter,
  type WorkflowRow,
  type WorkflowStatus,
} from './workflows.js';

/** What a person asks the dashboard to do; `authorize` sees every one, `view` for each page read. */
export type DashboardAction =
  | {
      kind: 'view';
      page: 'overview' | 'queues' | 'jobs' | 'job' | 'bulk' | 'events' | 'workflows' | 'workflow' | 'schedules' | 'processes' | 'process';
    }
  | { kind: 'retry' | 'cancel' | 'delete'; jobId: string }
  | { kind: 'pause' | 'resume'; partition: string; queue: string }
  | { kind: 'throttle'; partition: string; queue: string; ms: number }
  | { kind: 'bulk'; op: BulkOp; ids?: string[]; filter?: JobMatch; limit: number }
  | { kind: 'interrupt'; app: string; workflowId: string; reason?: string }
  | { kind: 'hook'; app: string; topic: string; workflowId: string; data: unknown }
  | { kind: 'schedule-pause' | 'schedule-resume' | 'schedule-trigger'; schedule: string }
  | { kind: 'process-pause' | 'process-resume' | 'process-trigger'; process: string };

/** The bus message kind of an action event (on `partita.<cluster>.action.<action kind>`); its data is an ActionRecord. */
export const ACTION_EVENT_KIND = 'dashboard.action';

export type BulkOp = 'retry' | 'cancel' | 'delete';

/** An action done (or refused), as logged and emitted on `handler.events` ('action'). */
export interface ActionRecord {
  action: DashboardAction;
  outcome: 'done' | 'refused' | 'failed';
  /** What happened, as shown to the person. */
  message: string;
  at: Date;
  /** The client's address, for the audit trail. */
  remote: string | undefined;
}

export interface DashboardOptions {
  client: Client;
  /** Where the handler is mounted (`/ui`); links are made under it. Default: Express's `req.baseUrl`, else ''. */
  basePath?: string;
  /** Pages only: every action is refused (403). */
  readOnly?: boolean;
  /** Called for every page read and every action; false (or a rejection) refuses it with 403. */
  authorize?: (req: IncomingMessage, action: DashboardAction) => boolean | Promise<boolean>;
  logger?: Logger;
  /** Deadline of each read and action the dashboard makes (default 5000 ms); past it the page says so (503). */
  queryTimeoutMs?: number;
  /**
   * Postgres's statement_timeout on every query a page makes (default: queryTimeoutMs): the reads run
   * over the dashboard's own small pool whose connections carry it, so a slow count or a listing
   * blocked by a lock is cancelled in Postgres, and the page says so (503).
   */
  statementTimeoutMs?: number;
  /** The largest bulk action on a whole filter (default 10,000). */
  maxBulk?: number;
  /**
   * Above this many live jobs (Postgres's maintained estimate) queue depths are estimated from a
   * block sample of the hot table instead of counted (default 100,000).
   */
  estimateDepthAbove?: number;
}

export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** 'action' (ActionRecord) for each action done or refused. */
  readonly events: EventEmitter;
  /** Ends the live streams and the event subscription (not the client). */
  close(): Promise<void>;
}

const PAGE_SIZE = 50;
/** A filter the listing cannot apply (node:, payload.…:) reads at most this many jobs per page. */
const SCAN_LIMIT = 2000;
const SCAN_BATCH = 200;
/** Reads every viewer shares are reused for this long. */
const COUNTS_TTL_MS = 1000;
const ROLL_CALL_TTL_MS = 5000;
const DB_SHARE_INVERSE = 50;
/**
 * Above this many live jobs (Postgres's own maintained estimate) depth is estimated from a block
 * sample of about SAMPLE_ROWS rows instead of counted: the exact GROUP BY reads every live row
 * (and computes each one's shown state) on every refresh.
 */
const ESTIMATE_DEPTH_ABOVE = 100_000;
const SAMPLE_ROWS = 20_000;
const LAYERS_TTL_MS = 30_000;
const FAILED_READ_KEPT_MS = 30_000;
const WORKFLOW_PAGE_SIZE = 50;
const ROLL_CALL_WINDOW_MS = 300;
const MAX_BODY = 1 << 20;
const ASSETS = new URL('../assets/', import.meta.url);
const ASSET_TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

class Forbidden extends Error {}

/** `dashboard({ client, readOnly?, authorize? })`: the handler (DESIGN.md's name; `createDashboard` is the same). */
export function dashboard(options: DashboardOptions): DashboardHandler {
  const { client } = options;
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.queryTimeoutMs ?? 5000;
  const maxBulk = options.maxBulk ?? 10_000;
  const events = new EventEmitter();
  // The charts' hour before this dashboard started, from history (db is made below; this runs later).
  const live = new Live(client, logger, async (from, to) =>
    (
      await db.run<{ at: number; completed: number; failed: number; wait_ms: number; waits: number; run_ms: number; runs: number }>(
        'chart_history',
        [from, to],
      )
    ).map((r) => ({
      at: r.at,
      completed: r.completed,
      failed: r.failed,
      waitMs: r.wait_ms,
      waits: r.waits,
      runMs: r.run_ms,
      runs: r.runs,
    })),
  );
  const assets = new Map<string, Buffer>();

  const within = <T>(what: string, work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`dashboard: ${what}`, timeoutMs)), timeoutMs);
    });
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  };
  // A read every viewer shares is reused for `ttl`, or for DB_SHARE_INVERSE times as long as it took
  // when that is longer: a count over a deep live table (a million queued jobs) is then read seldom
  // enough that an open dashboard keeps Postgres busy about 1/DB_SHARE_INVERSE of the time at most.
  const resets: (() => void)[] = [];
  const cached = <T>(ttl: number, load: () => Promise<T>, keepFailures = true) => {
    let value: { at: number; ttl: number; p: Promise<T> } | undefined;
    resets.push(() => (value = undefined));
    return (): Promise<T> => {
      if (!value || Date.now() - value.at > value.ttl) {
        const started = Date.now();
        const entry = { at: started, ttl, p: load() };
        value = entry;
        // A failed read (past the page's deadline, say) is kept for a while too: its query may still
        // be running in Postgres, and each viewer's refresh starting another made a count storm.
        const spent = () => (Date.now() - started) * DB_SHARE_INVERSE;
        entry.p.then(
          () => (entry.ttl = Math.max(ttl, spent())),
          () => {
            if (keepFailures) entry.ttl = Math.min(FAILED_READ_KEPT_MS, Math.max(ttl, spent()));
            else if (value === entry) value = undefined;
          },
        );
      }
      return value.p;
    };
  };
  // Reads go over the dashboard's own pool, under its statement_timeout (reads.ts); actions and the
  // bus (roll call, events) go through the client given.
  const statementTimeoutMs = options.statementTimeoutMs ?? timeoutMs;
  const opened = openReads(client, statementTimeoutMs, logger);
  opened.catch((err: unknown) => logger.error({ err: describeError(err).message }, 'dashboard: its reads pool could not be made'));
  const reader = async () => (await opened).client;
  const db = new DashboardDb({ query: async (q) => (await opened).pool.query(q) }, clientStore(client).schema);
  // One refresh per dashboard process, whatever the number of viewers (they share `cached`); past
  // estimateDepthAbove the figures are a scaled block sample and the pages mark them ≈.
  let estimatedDepth = false;
  const counts = cached(COUNTS_TTL_MS, async (): Promise<QueueCount[]> => {
    const [row] = await db.run<{ live: number }>('live_jobs_estimate');
    const live = Number(row?.live ?? 0);
    if (live <= (options.estimateDepthAbove ?? ESTIMATE_DEPTH_ABOVE)) {
      estimatedDepth = false;
      return within('counting live jobs', (await reader()).queueCounts());
    }
    const percent = Math.min(100, (SAMPLE_ROWS / live) * 100);
    const rows = await db.run<QueueCount>('live_counts_sampled', [percent, live]);
    estimatedDepth = true;
    return rows.map((r) => ({ ...r, count: Number(r.count) }));
  });
  let tabs = { workflows: false, schedules: false, processes: false };
  const layers = cached(LAYERS_TTL_MS, async () => {
    const [row] = await db.run<{ workflows: boolean; schedules: boolean; processes: boolean }>('layers_installed');
    tabs = { workflows: row?.workflows === true, schedules: row?.schedules === true, processes: row?.processes === true };
    return tabs;
  });
  // Their actions go through the client (announced on its bus), their pages' reads over the reads pool.
  let scheduleApi: Schedules | undefined;
  const scheduleList = () => (scheduleApi ??= schedulesOf(client));
  let processApi: Processes | undefined;
  const processList = () => (processApi ??= processesOf(client));
  const scheduleReads = opened.then((r) => schedulesOf(r.client));
  const processReads = opened.then((r) => processesOf(r.client));
  scheduleReads.catch(() => undefined);
  processReads.catch(() => undefined);
  // Deployed versions never change: compiled once per process, by the workflows package's own cache.
  const compiled = new Versions(
    async (appId, version) => (await db.run<{ definition: unknown }>('wf_definition', [appId, version]))[0]?.definition,
  );
  // Versions change only on a deploy: every viewer shares one read for a few seconds (an action resets it).
  const appVersions = cached(ROLL_CALL_TTL_MS, () => db.run<AppVersionRow>('wf_app_versions'));
  const queueHeads = cached(COUNTS_TTL_MS, async () => within('reading the queue heads', (await reader()).queueHeads()));
  // A roll call is a gather on the bus, not a query: one that failed is simply asked again.
  // Without a bus the roll call is a read of Postgres: then it goes over the reads pool too.
  const members = cached(
    ROLL_CALL_TTL_MS,
    async () => within('roll call', (clientBus(client) ? client : await reader()).rollCall({ delayMs: ROLL_CALL_WINDOW_MS })),
    false,
  );
  const controls = cached(COUNTS_TTL_MS, async () => {
    const partitions = [...new Set((await counts()).map((c) => c.partition))].sort();
    const out = new Map<string, Awaited<ReturnType<Client['control']>>>();
    const reads = await reader();
    await Promise.all(partitions.map(async (p) => out.set(p, await within(`reading ${p}'s pauses`, reads.control(p)))));
    return out;
  });

  async function allow(req: IncomingMessage, action: DashboardAction): Promise<void> {
    if (action.kind !== 'view' && options.readOnly) throw new Forbidden('this dashboard is read-only');
    if (!options.authorize) return;
    let ok = false;
    try {
      ok = (await options.authorize(req, action)) === true;
    } catch (err) {
      logger.warn({ err: describeError(err).message, action }, 'dashboard: authorize threw; refused');
    }
    if (!ok) throw new Forbidden(action.kind === 'view' ? 'not allowed to view this page' : `not allowed to ${action.kind}`);
  }

  function record(req: IncomingMessage, action: DashboardAction, outcome: ActionRecord['outcome'], message: string): void {
    const entry: ActionRecord = { action, outcome, message, at: new Date(), remote: req.socket.remoteAddress };
    const log = { action, outcome, remote: entry.remote };
    if (outcome === 'done') logger.info(log, `dashboard: ${message}`);
    else logger.warn(log, `dashboard: ${message}`);
    // The page the action redirects to shows its effect, not a cached read from before it.
    if (outcome === 'done') for (const reset of resets) reset();
    events.emit('action', entry);
    publishAction(entry);
    live.changed('action');
  }

  /** Every action, done or refused, also goes on the bus: an audit trail for any subscriber in the cluster. */
  function publishAction(entry: ActionRecord): void {
    const bus = clientBus(client);
    if (!bus) return;
    try {
      const { data: _data, ...action } = entry.action as DashboardAction & { data?: unknown };
      bus.publish(subjects.action(bus.cluster, entry.action.kind), ACTION_EVENT_KIND, {
        v: 1,
        action,
        outcome: entry.outcome,
        message: entry.message,
        at: entry.at.toISOString(),
        remote: entry.remote,
      });
    } catch (err) {
      logger.warn({ err: describeError(err).message }, 'dashboard: the action event was not published');
    }
  }

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => {
    const base = (options.basePath ?? (req as { baseUrl?: string }).baseUrl ?? '').replace(/\/+$/, '');
    const url = new URL(req.url ?? '/', 'http://x');
    let path = url.pathname;
    if (base && (path === base || path.startsWith(base + '/'))) path = path.slice(base.length);
    path = path.replace(/\/+$/, '') || '/';
    const ctx: Ctx = { req, res, base, path, query: url.searchParams, status: 200 };
    route(ctx).then(
      (handled) => {
        if (handled) return;
        if (next) next();
        else send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      },
      (err: unknown) => {
        if (res.headersSent) return void res.destroy();
        const cut = isStatementTimeout(err);
        const status =
          err instanceof Forbidden ? 403 : err instanceof ValidationError ? 400 : err instanceof TimeoutError || cut ? 503 : 500;
        if (status === 500) logger.error({ err: describeError(err), url: req.url }, 'dashboard: request failed');
        else if (cut) logger.warn({ url: req.url, statementTimeoutMs }, 'dashboard: a query ran past the statement timeout');
        const body = cut
          ? html`<h1>Timed out</h1>
              <p id="timed-out">
                A query of this page ran past the dashboard's statement timeout (${statementTimeoutMs} ms) and Postgres cancelled it: the
                database is busy, or a lock held elsewhere blocks the read. Nothing was changed.
                <a href="${req.url ?? ctx.base + '/'}">Try again</a> in a moment; if this page is often this slow, raise
                <code>statementTimeoutMs</code>.
              </p>`
          : html`<h1>${statusText(status)}</h1>
              <p>${err instanceof Error ? err.message : String(err)}</p>`;
        send(res, status, 'text/html; charset=utf-8', layout(ctx, cut ? 'Timed out' : 'Error', '', body, false));
      },
    );
  }) as DashboardHandler;

  interface Ctx {
    req: IncomingMessage;
    res: ServerResponse;
    base: string;
    path: string;
    query: URLSearchParams;
    /** The page's HTTP status (200 unless the page says otherwise). */
    status: number;
  }

  function layout(ctx: Ctx, title: string, nav: Layout['nav'], body: Html, isLive: boolean): string {
    const msg = ctx.query.get('msg');
    const err = ctx.query.get('err');
    return page({
      base: ctx.base,
      title,
      nav,
      body,
      live: isLive,
      tabs,
      readOnly: options.readOnly === true,
      flash: err ? { kind: 'error', text: err } : msg ? { kind: 'ok', text: msg } : undefined,
    });
  }

  async function route(ctx: Ctx): Promise<boolean> {
    const { req, path } = ctx;
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      if (path.startsWith('/assets/')) return serveAsset(ctx, path.slice(8));
      if (path === '/events') {
        await allow(req, { kind: 'view', page: 'events' });
        await live.listen();
        live.stream(ctx.res);
        return true;
      }
      void live.start();
      await layers().catch((err: unknown) =>
        logger.warn({ err: describeError(err).message }, 'dashboard: which layers are installed is unknown'),
      );
      if (path === '/') return html200(ctx, await overview(ctx));
      if (path === '/workflows' && tabs.workflows) return html200(ctx, await workflowsPage(ctx));
      if (path === '/schedules' && tabs.schedules) return html200(ctx, await schedulesPage(ctx));
      if (path === '/processes' && tabs.processes) return html200(ctx, await processesPage(ctx));
      const pr = /^\/processes\/([^/]+)$/.exec(path);
      if (pr && tabs.processes) return html200(ctx, await processPage(ctx, decodeURIComponent(pr[1]!)));
      const w = /^\/workflows\/([^/]+)\/([^/]+)$/.exec(path);
      if (w && tabs.workflows) return html200(ctx, await workflowPage(ctx, decodeURIComponent(w[1]!), decodeURIComponent(w[2]!)));
      if (path === '/queues') return html200(ctx, await queues(ctx));
      if (path === '/jobs') return html200(ctx, await jobs(ctx));
      if (path === '/bulk') return html200(ctx, await bulkPreview(ctx));
      const m = /^\/jobs\/([^/]+)$/.exec(path);
      if (m) return html200(ctx, await jobPage(ctx, decodeURIComponent(m[1]!)));
      return false;
    }
    if (method === 'POST' && path.startsWith('/actions/')) {
      await act(ctx, path.slice(9));
      return true;
    }
    return false;
  }

  function html200(ctx: Ctx, body: string): true {
    // A page may have set its status (404 for an unknown job) and still be a page. Not the response's
    // own statusCode: a host framework may have set that before handing the request over (Koa: 404).
    send(ctx.res, ctx.status, 'text/html; charset=utf-8', body);
    return true;
  }

  async function serveAsset(ctx: Ctx, name: string): Promise<boolean> {
    const type = ASSET_TYPES[name];
    if (!type) return false;
    let data = assets.get(name);
    if (!data) {
      data = await readFile(new URL(name, ASSETS));
      assets.set(name, data);
    }
    ctx.res.writeHead(200, { 'content-type': type, 'content-length': data.length, 'cache-control': 'no-cache' });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : data);
    return true;
  }

  // ── Pages ────────────────────────────────────────────────────────────────────────────────────

  async function overview(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'overview' });
    // The first view waits for the hour read from history (once per process, under the timeout).
    const [rows, nodes] = await Promise.all([counts(), members().catch((err: unknown) => describeError(err).message), live.start()]);
    const minutes = live.window();
    const avg = (sum: number, n: number) => (n ? sum / n : 0);
    const charts = html`<div class="grid">
      ${bars(
        'Completed / min',
        minutes.map((m) => m.completed),
      )}
      ${bars(
        'Failed / min',
        minutes.map((m) => m.failed),
      )}
      ${bars(
        'Wait (enqueue → start), avg',
        minutes.map((m) => avg(m.waitMs, m.waits)),
        ' ms',
      )}
      ${bars(
        'Run time, avg',
        minutes.map((m) => avg(m.runMs, m.runs)),
        ' ms',
      )}
    </div>`;
    const byQueue = depthRows(rows);
    const partitions = new Map<string, Record<string, number>>();
    for (const q of byQueue) {
      const p = partitions.get(q.partition) ?? {};
      for (const s of DEPTH_STATES) p[s] = (p[s] ?? 0) + (q.states[s] ?? 0);
      partitions.set(q.partition, p);
    }
    const body = html`<h1>Overview</h1>
      ${live.subscribed
        ? ''
        : html`<p class="muted">
            No job events reach this dashboard (no bus): the charts hold the hour before it started, read from history; pages poll.
          </p>`}
      ${live.historyProblem
        ? html`<p class="muted" id="history-problem">
            The hour before this dashboard started could not be read from history (${live.historyProblem}): the charts count from its start.
          </p>`
        : ''}
      ${charts}
      <h2>Depth by partition</h2>
      ${estimatedDepth
        ? html`<p class="muted" id="estimated">≈ Estimated from a sample of the live jobs (too many to count on each refresh).</p>`
        : ''}
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th>Partition</th>
              ${DEPTH_STATES.map((s) => html`<th class="num">${s}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${[...partitions].map(
              ([p, s]) =>
                html`<tr>
                  <td>${p}</td>
                  ${DEPTH_STATES.map((k) => html`<td class="num">${s[k] ?? 0}</td>`)}
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <h2>Depth by queue</h2>
      ${depthTable(ctx, byQueue)}
      <h2>Nodes</h2>
      ${typeof nodes === 'string' ? html`<p class="muted">Roll call failed: ${nodes}</p>` : nodeTable(nodes)}`;
    return layout(ctx, 'Overview', 'overview', body, true);
  }

  function nodeTable(nodes: MemberProfile[]): Html {
    if (!nodes.length) return html`<p class="muted">No node answered the roll call.</p>`;
    return html`<div class="scroll">
      <table>
        <thead>
          <tr>
            <th>Node</th>
            <th>Partitions</th>
            <th class="num">Running</th>
            <th class="num">CPU</th>
            <th class="num">Memory</th>
            <th>Throttle</th>
            <th class="hide-narrow">Up</th>
          </tr>
        </thead>
        <tbody>
          ${nodes.map(
            (n) =>
              html`<tr>
                <td><code>${n.id}</code></td>
                <td>${n.partitions.join(', ')}</td>
                <td class="num">${n.running}</td>
                <td class="num">${Math.round(n.cpuPercent)}%</td>
                <td class="num">${Math.round(n.memory.rss / 1048576)} MiB</td>
                <td>
                  ${n.throttleMs === -1
                    ? html`<span class="badge throttled">stopped</span>`
                    : n.throttleMs > 0
                      ? html`<span class="badge throttled">${n.throttleMs} ms</span>`
                      : '—'}
                </td>
                <td class="hide-narrow">${duration(n.uptimeMs)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  }

  function depthTable(ctx: Ctx, rows: DepthRow[]): Html {
    return html`<div class="scroll">
      <table>
        <thead>
          <tr>
            <th>Partition</th>
            <th>Queue</th>
            ${DEPTH_STATES.map((s) => html`<th class="num">${s}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (q) =>
              html`<tr>
                <td>${q.partition}</td>
                <td><a href="${jobsUrl(ctx, `partition:${q.partition} queue:${q.queue}`)}">${q.queue}</a></td>
                ${DEPTH_STATES.map((s) => html`<td class="num">${q.states[s] ?? 0}</td>`)}
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  }

  async function queues(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'queues' });
    const [rows, control, heads] = await Promise.all([counts(), controls(), queueHeads()]);
    const headOf = new Map(heads.map((h) => [`${h.partition}\u0000${h.queue}`, h]));
    const now = Date.now();
    const here = `${ctx.base}/queues`;
    const body = html`<h1>Queues</h1>
      ${estimatedDepth
        ? html`<p class="muted" id="estimated">≈ Depths estimated from a sample of the live jobs (too many to count on each refresh).</p>`
        : ''}
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th>Partition</th>
              <th>Queue</th>
              ${DEPTH_STATES.map((s) => html`<th class="num">${s}</th>`)}
              <th>Next up, due for</th>
              <th>Status</th>
              ${options.readOnly ? '' : html`<th>Actions</th>`}
            </tr>
          </thead>
          <tbody>
            ${depthRows(rows).map((q) => {
              const c = control.get(q.partition);
              const head = headOf.get(`${q.partition}\u0000${q.queue}`);
              const paused = c?.paused.includes(q.queue) ?? false;
              const throttles = (c?.throttles ?? []).filter((t) => (t.queue === undefined || t.queue === q.queue) && t.ms !== 0);
              const status = [
                paused ? html`<span class="badge paused" data-badge="paused">paused</span> ` : '',
                throttles.map(
                  (t) =>
                    html`<span class="badge throttled" data-badge="throttled"
                      >${t.ms === -1 ? 'stopped' : `throttled ${t.ms} ms`}${t.node ? ` on ${t.node}` : ''}</span
                    > `,
                ),
              ];
              const actions = options.readOnly
                ? ''
                : html`<td>
                    ${actionForm({
                      base: ctx.base,
                      action: paused ? 'resume' : 'pause',
                      fields: { partition: q.partition, queue: q.queue },
                      back: here,
                      label: paused ? 'Resume' : 'Pause',
                      ariaLabel: `${paused ? 'Resume' : 'Pause'} ${q.partition}/${q.queue}`,
                    })}
                    ${actionForm({
                      base: ctx.base,
                      action: 'throttle',
                      fields: { partition: q.partition, queue: q.queue },
                      back: here,
                      label: 'Throttle',
                      inputs: html`<input
                        type="number"
                        name="ms"
                        min="-1"
                        step="1"
                        value="0"
                        aria-label="Throttle of ${q.partition}/${q.queue} in ms (0 lifts, -1 stops)"
                        style="width:6em"
                      />`,
                    })}
                  </td>`;
              return html`<tr data-queue="${q.partition}/${q.queue}">
                <td>${q.partition}</td>
                <td><a href="${jobsUrl(ctx, `partition:${q.partition} queue:${q.queue}`)}">${q.queue}</a></td>
                ${DEPTH_STATES.map((s) => html`<td class="num">${q.states[s] ?? 0}</td>`)}
                <td>
                  ${head
                    ? html`<a href="${ctx.base}/jobs/${head.id}" data-head="${head.id}"
                        >${duration(Math.max(0, now - head.dueAt.getTime()))}</a
                      >`
                    : '—'}
                </td>
                <td>${status}</td>
                ${actions}
              </tr>`;
            })}
          </tbody>
        </table>
      </div>
      <p class="muted">Throttle: a pause of that many ms before each claim; 0 lifts it, -1 stops the queue until lifted.</p>`;
    return layout(ctx, 'Queues', 'queues', body, true);
  }

  async function jobs(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'jobs' });
    const q = ctx.query.get('q') ?? '';
    let filter: JobFilter;
    let problem: string | undefined;
    try {
      filter = parseFilter(q);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      filter = parseFilter('');
      problem = err.message;
    }
    const before = ctx.query.get('before') ?? undefined;
    if (before !== undefined && !isUuid(before))
      throw new ValidationError('before must be a job id (the last of the previous page)', 'before');
    const found = problem ? { jobs: [], next: undefined, scanned: 0 } : await findJobs(filter, before);
    const tabs = ['all', ...JOB_STATES].map((s) => {
      const f = { ...filter, states: s === 'all' ? [] : [s as JobState] };
      const current = s === 'all' ? filter.states.length === 0 : filter.states.length === 1 && filter.states[0] === s;
      return html`<a href="${jobsUrl(ctx, formatFilter(f))}" ${current ? new Html(' aria-current="page"') : ''}>${s}</a>`;
    });
    const here = ctx.base + '/jobs' + (ctx.query.toString() ? `?${ctx.query.toString()}` : '');
    const bulk = bulkMatch(filter);
    const body = html`<h1>Jobs</h1>
      <form class="filter" method="get" action="${ctx.base}/jobs" role="search">
        <label for="q" class="muted">Filter</label>
        <input
          type="search"
          id="q"
          name="q"
          value="${q}"
          placeholder="queue:emails state:failed lookup.customer:42 payload.user.id:7 since:2026-12-06T01:00 0193…"
          autocomplete="off"
        />
        <button type="submit" class="primary">Apply</button>
      </form>
      ${problem ? html`<p class="flash error" role="alert">${problem}</p>` : ''}
      <nav class="tabs" aria-label="States">${tabs}</nav>
      <form method="post" action="${ctx.base}/actions/bulk" id="selection">
        <input type="hidden" name="return" value="${here}" />
        ${options.readOnly
          ? ''
          : html`<div class="actions">
              <span class="muted">Selected:</span> <button type="submit" name="op" value="retry">Retry</button
              ><button type="submit" name="op" value="cancel">Cancel</button>
              <button type="submit" name="op" value="delete" class="danger" data-confirm="Delete the selected jobs?">Delete</button>
              <span class="muted">Whole filter:</span>
              ${typeof bulk === 'string'
                ? html`<span class="muted">${bulk}</span>`
                : (['retry', 'cancel', 'delete'] as const).map(
                    (op) => html`<a href="${ctx.base}/bulk?op=${op}&amp;q=${encodeURIComponent(q)}">${op} all…</a> `,
                  )}
            </div>`}
        <div class="scroll">
          <table id="jobs">
            <thead>
              <tr>
                ${options.readOnly ? '' : html`<th><input type="checkbox" id="select-all" aria-label="Select all on this page" /></th>`}
                <th>Id</th>
                <th>Type</th>
                <th>Queue</th>
                <th>State</th>
                <th class="num">Attempts</th>
                <th class="hide-narrow">Node</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              ${found.jobs.map(
                (j) =>
                  html`<tr data-id="${j.id}">
                    ${options.readOnly
                      ? ''
                      : html`<td><input type="checkbox" name="ids" value="${j.id}" aria-label="Select ${j.id}" /></td>`}
                    <td>
                      <a href="${ctx.base}/jobs/${j.id}"><code>${j.id.slice(0, 13)}…</code></a>
                    </td>
                    <td>${j.type}</td>
                    <td>${j.partition}/${j.queue}</td>
                    <td>${badge(j.state)}</td>
                    <td class="num">${j.attempts}/${j.maxAttempts}</td>
                    <td class="hide-narrow">${j.node ?? '—'}</td>
                    <td>${time(j.createdAt)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </form>
      ${found.jobs.length === 0 ? html`<p class="muted">No job matches${found.scanned ? ` (${found.scanned} read)` : ''}.</p>` : ''}
      <nav class="actions" aria-label="Pages">
        ${before ? html`<a href="${jobsUrl(ctx, q)}">← Newest</a>` : ''}
        ${found.next ? html`<a href="${jobsUrl(ctx, q, found.next)}" rel="next">Older →</a>` : ''}
        ${found.scanned >= SCAN_LIMIT
          ? html`<span class="muted">read ${found.scanned} jobs for node:/payload: without filling the page; Older → reads on</span>`
          : ''}
      </nav>`;
    return layout(ctx, 'Jobs', 'jobs', body, true);
  }

  /** One page of jobs, newest first, walking ids downwards from `before`. */
  async function findJobs(
    filter: JobFilter,
    before: string | undefined,
  ): Promise<{ jobs: JobRecord[]; next: string | undefined; scanned: number }> {
    const { low } = idRange(filter);
    const inRange = (j: JobRecord) => low === undefined || j.id >= low;
    if (listingOnly(filter)) {
      const rows = await within('listing jobs', (await reader()).listJobs(listFilter(filter, before, PAGE_SIZE + 1)));
      const shown = rows.filter(inRange);
      return { jobs: shown.slice(0, PAGE_SIZE), next: shown.length > PAGE_SIZE ? shown[PAGE_SIZE - 1]!.id : undefined, scanned: 0 };
    }
    const out: JobRecord[] = [];
    let cursor = before;
    let scanned = 0;
    while (scanned < SCAN_LIMIT) {
      const rows = await within('listing jobs', (await reader()).listJobs(listFilter(filter, cursor, SCAN_BATCH)));
      for (const j of rows) {
        if (!inRange(j)) return { jobs: out, next: undefined, scanned };
        scanned++;
        cursor = j.id;
        if (!matchesRow(filter, j)) continue;
        if (out.length === PAGE_SIZE) return { jobs: out, next: out.at(-1)!.id, scanned };
        out.push(j);
      }
      if (rows.length < SCAN_BATCH) return { jobs: out, next: undefined, scanned };
    }
    return { jobs: out, next: cursor, scanned };
  }

  async function jobPage(ctx: Ctx, id: string): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'job' });
    const job = isUuid(id) ? await within('reading the job', (await reader()).job(id)) : undefined;
    if (!job) {
      ctx.status = 404;
      return layout(
        ctx,
        'No such job',
        'jobs',
        html`<h1>No such job</h1>
          <p>
            No job has the id <code>${id}</code> (it may have been deleted or pruned; a workflow step that completed is kept in its
            workflow's timeline only).
          </p>`,
        false,
      );
    }
    const here = `${ctx.base}/jobs/${job.id}`;
    const live = !['completed', 'failed', 'cancelled'].includes(job.state);
    const button = (action: string, label: string, cls = '', confirm = '') =>
      actionForm({ base: ctx.base, action, fields: { id: job.id }, back: here, label, cls, confirm });
    const actions = options.readOnly
      ? ''
      : html`<div class="actions">
          ${job.state === 'failed' || job.state === 'cancelled' ? button('retry', 'Retry', 'primary') : ''}
          ${live ? button('cancel', 'Cancel') : ''}${job.state !== 'running'
            ? button('delete', 'Delete', 'danger', 'Delete this job?')
            : ''}
        </div>`;
    const body = html`<h1>Job <code>${job.id}</code> ${badge(job.state)}</h1>
      ${actions}
      <dl class="fields">
        <dt>Type</dt>
        <dd>${job.type}</dd>
        <dt>Partition / queue</dt>
        <dd><a href="${jobsUrl(ctx, `partition:${job.partition} queue:${job.queue}`)}">${job.partition}/${job.queue}</a></dd>
        <dt>Attempts</dt>
        <dd>${job.attempts} of ${job.maxAttempts}</dd>
        <dt>Priority</dt>
        <dd>${job.priority}</dd>
        <dt>Node</dt>
        <dd>${job.node ?? '—'}</dd>
        <dt>Queue key</dt>
        <dd>${job.queueKey ?? '—'}</dd>
        <dt>Execution key</dt>
        <dd>${job.executionKey ?? '—'}</dd>
        <dt>Created</dt>
        <dd>${time(job.createdAt)}</dd>
        <dt>Runs at</dt>
        <dd>${time(job.runAt)}</dd>
        <dt>Started</dt>
        <dd>${job.startedAt ? time(job.startedAt) : '—'}</dd>
        <dt>Finished</dt>
        <dd>${job.finishedAt ? time(job.finishedAt) : '—'}</dd>
      </dl>
      <h2>Payload</h2>
      <pre id="payload">${json(job.payload)}</pre>
      ${job.progress !== null && job.progress !== undefined
        ? html`<h2>Progress</h2>
            <pre id="progress">${json(job.progress)}</pre>`
        : ''}
      ${job.state === 'completed'
        ? html`<h2>Result</h2>
            <pre id="result">${json(job.result)}</pre>`
        : ''}
      <h2>Lookup</h2>
      <pre>${json(job.lookup ?? {})}</pre>
      <h2>Attempts with errors (${job.errors.length})</h2>
      ${job.errors.length
        ? html`<ol class="errors">
            ${job.errors.map(
              (e) =>
                html`<li>
                  <b>attempt ${e.attempt}</b> · ${e.at} · <code>${e.name}</code>${e.code ? html` (${e.code})` : ''}${e.rescued
                    ? ' · rescued (its node stopped)'
                    : ''}:
                  ${e.message}
                  ${e.stack
                    ? html`<details>
                        <summary>stack</summary>
                        <pre>${e.stack}</pre>
                      </details>`
                    : ''}
                </li>`,
            )}
          </ol>`
        : html`<p class="muted">None.</p>`}`;
    return layout(ctx, `Job ${job.id.slice(0, 13)}`, 'jobs', body, true);
  }

  async function bulkPreview(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'bulk' });
    const op = bulkOp(ctx.query.get('op'));
    const q = ctx.query.get('q') ?? '';
    const match = bulkMatch(parseFilter(q));
    if (typeof match === 'string') throw new ValidationError(`${match}; select the jobs on the jobs page instead`, 'q');
    const limit = Math.min(maxBulk, intParam(ctx.query.get('limit'), 1000, 'limit'));
    const preview = await within('counting the matching jobs', dry(op, match, limit));
    const body = html`<h1>${op} every job matching</h1>
      <p><code>${q || '(no filter: every job)'}</code></p>
      <p id="preview">
        <b data-count="${preview.matching}">${preview.matching}</b> jobs
        match${Object.keys(preview.byState).length
          ? html` (${Object.entries(preview.byState)
              .map(([s, n]) => `${s}: ${n}`)
              .join(', ')})`
          : ''};
        this acts on at most <b>${preview.count}</b>${preview.more ? ' (the cap): run it again for the rest' : ''}.
      </p>
      ${options.readOnly
        ? ''
        : html`<form method="post" action="${ctx.base}/actions/bulk">
            <input type="hidden" name="op" value="${op}" /><input type="hidden" name="q" value="${q}" /><input
              type="hidden"
              name="scope"
              value="filter"
            />
            <input type="hidden" name="return" value="${jobsUrl(ctx, q)}" />
            <label>Cap <input type="number" name="limit" min="1" max="${maxBulk}" value="${limit}" /></label>
            <button type="submit" class="${op === 'delete' ? 'danger' : 'primary'}" id="confirm-bulk">${op} ${preview.count} jobs</button>
            <a href="${jobsUrl(ctx, q)}">Back</a>
          </form>`}`;
    return layout(ctx, `Bulk ${op}`, 'jobs', body, false);
  }

  async function dry(op: BulkOp, match: JobMatch, limit: number): Promise<BulkResult> {
    const o = { limit, dryRun: true };
    const reads = await reader();
    return op === 'retry' ? reads.retryMany(match, o) : op === 'cancel' ? reads.cancelMany(match, o) : reads.deleteMany(match, o);
  }

  // ── Workflows and schedules ──────────────────────────────────────────────────────────────────

  async function workflowsPage(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'workflows' });
    const status = ctx.query.get('status') || undefined;
    if (status !== undefined && !(WORKFLOW_STATUSES as readonly string[]).includes(status))
      throw new ValidationError(`must be one of ${WORKFLOW_STATUSES.join(', ')}`, 'status');
    const search = ctx.query.get('search')?.trim() || undefined;
    const filter: WorkflowListFilter = { app: ctx.query.get('app') || undefined, status: status as WorkflowStatus | undefined, search };
    let field: [string, unknown, unknown] | undefined;
    if (search) {
      const colon = search.indexOf(':');
      if (colon <= 0) throw new ValidationError('write a searchable field as key:value (e.g. customer:42)', 'search');
      const key = search.slice(0, colon);
      const text = search.slice(colon + 1);
      const typed = text === 'true' ? true : text === 'false' ? false : text !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
      field = [key, text, typed];
    }
    const before = ctx.query.get('before') || undefined;
    let cursor: [string, string] | [null, null] = [null, null];
    if (before) {
      const bar = before.indexOf('|');
      const at = new Date(before.slice(0, bar));
      if (bar <= 0 || Number.isNaN(at.getTime())) throw new ValidationError('before must be the cursor of the previous page', 'before');
      cursor = [at.toISOString(), before.slice(bar + 1)];
    }
    const [versions, rows] = await Promise.all([
      appVersions(),
      db.run<WorkflowRow>('wf_page', [
        filter.app ?? null,
        filter.status ?? null,
        field ? JSON.stringify({ [field[0]]: field[1] }) : null,
        field ? JSON.stringify({ [field[0]]: field[2] }) : null,
        cursor[0],
        cursor[1],
        WORKFLOW_PAGE_SIZE + 1,
      ]),
    ]);
    const page = rows.slice(0, WORKFLOW_PAGE_SIZE);
    const next = rows.length > WORKFLOW_PAGE_SIZE ? cursorOf(page.at(-1)!) : undefined;
    return layout(ctx, 'Workflows', 'workflows', workflowsBody(ctx.base, versions, filter, page, next, before !== undefined), true);
  }

  async function workflowPage(ctx: Ctx, appId: string, id: string): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'workflow' });
    const handle = workflowApp(await reader(), appId);
    let state, timeline;
    try {
      [state, timeline] = await within('reading the workflow', Promise.all([handle.getState('', id), handle.export(id)]));
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      const [other] = await db.run<{ app_id: string }>('wf_app_of', [id]);
      ctx.status = 404;
      return layout(
        ctx,
        'No such workflow',
        'workflows',
        html`<h1>No such workflow</h1>
          <p>
            App <code>${appId}</code> has no workflow <code>${id}</code>${other
              ? html`; it belongs to app <a href="${workflowUrl(ctx.base, other.app_id, id)}">${other.app_id}</a>`
              : ' (it may have expired or been scrubbed)'}.
          </p>`,
        false,
      );
    }
    const compiledVersion = await compiled.get(appId, timeline.version).catch((err: unknown) => {
      logger.warn({ err: describeError(err).message, app: appId, version: timeline.version }, 'dashboard: the graph could not be read');
      return undefined;
    });
    const graph = compiledVersion ? graphOf(compiledVersion, timeline.topic) : undefined;
    const hookTopics = [...new Set(graph?.hooks.map((h) => h.topic) ?? [])];
    const here = workflowUrl(ctx.base, appId, id);
    const body = workflowBody(ctx.base, options.readOnly === true, { app: appId, state, timeline, graph, hookTopics }, here);
    return layout(ctx, `Workflow ${id.slice(0, 24)}`, 'workflows', body, true);
  }

  async function schedulesPage(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'schedules' });
    const list = await within('reading the schedules', (await scheduleReads).list());
    return layout(ctx, 'Schedules', 'schedules', schedulesBody(ctx.base, options.readOnly === true, list), true);
  }

  async function processesPage(ctx: Ctx): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'processes' });
    const list = await within('reading the processes', (await processReads).list());
    return layout(ctx, 'Processes', 'processes', processesBody(ctx.base, options.readOnly === true, list, Date.now()), true);
  }

  async function processPage(ctx: Ctx, name: string): Promise<string> {
    await allow(ctx.req, { kind: 'view', page: 'process' });
    const record = await within('reading the process', (await processReads).get(name));
    if (!record) {
      ctx.status = 404;
      return layout(
        ctx,
        'No such process',
        'processes',
        html`<h1>No such process</h1>
          <p>No background process is named <code>${name}</code>; <a href="${ctx.base}/processes">every process</a> is listed.</p>`,
        false,
      );
    }
    return layout(ctx, record.name, 'processes', processBody(ctx.base, options.readOnly === true, record, Date.now()), true);
  }

  // ── Actions ──────────────────────────────────────────────────────────────────────────────────

  async function act(ctx: Ctx, name: string): Promise<void> {
    const { req, res } = ctx;
    sameOrigin(req);
    const form = await readForm(req);
    const back = safeReturn(ctx, form.get('return'));
    let action: DashboardAction;
    switch (name) {
      case 'retry':
      case 'cancel':
      case 'delete': {
        const jobId = form.get('id') ?? '';
        if (!isUuid(jobId)) throw new ValidationError('id must be a job id', 'id');
        action = { kind: name, jobId };
        break;
      }
      case 'pause':
      case 'resume':
        action = { kind: name, partition: required(form, 'partition'), queue: required(form, 'queue') };
        break;
      case 'throttle':
        action = {
          kind: 'throttle',
          partition: required(form, 'partition'),
          queue: required(form, 'queue'),
          ms: intParam(form.get('ms'), 0, 'ms'),
        };
        break;
      case 'bulk': {
        const op = bulkOp(form.get('op'));
        if (form.get('scope') === 'filter') {
          const match = bulkMatch(parseFilter(form.get('q') ?? ''));
          if (typeof match === 'string') throw new ValidationError(match, 'q');
          action = { kind: 'bulk', op, filter: match, limit: Math.min(maxBulk, intParam(form.get('limit'), 1000, 'limit')) };
        } else {
          const ids = form.getAll('ids');
          if (!ids.length) return redirect(res, back, 'err', 'Select some jobs first');
          if (!ids.every(isUuid)) throw new ValidationError('ids must be job ids', 'ids');
          action = { kind: 'bulk', op, ids, limit: ids.length };
        }
        break;
      }
      case 'interrupt': {
        const reason = form.get('reason')?.trim();
        action = { kind: 'interrupt', app: required(form, 'app'), workflowId: required(form, 'id'), ...(reason ? { reason } : {}) };
        break;
      }
      case 'hook': {
        const text = form.get('data')?.trim() || '{}';
        let data: unknown;
        try {
          data = JSON.parse(text);
        } catch {
          return redirect(res, back, 'err', 'The hook data must be JSON, e.g. {"approved": true}');
        }
        action = { kind: 'hook', app: required(form, 'app'), topic: required(form, 'topic'), workflowId: required(form, 'id'), data };
        break;
      }
      case 'schedule-pause':
      case 'schedule-resume':
      case 'schedule-trigger':
        action = { kind: name, schedule: required(form, 'id') };
        break;
      case 'process-pause':
      case 'process-resume':
      case 'process-trigger':
        action = { kind: name, process: required(form, 'id') };
        break;
      default:
        return void send(res, 404, 'text/plain; charset=utf-8', 'no such action\n');
    }
    try {
      await allow(req, action);
    } catch (err) {
      if (!(err instanceof Forbidden)) throw err;
      record(req, action, 'refused', err.message);
      return void send(
        res,
        403,
        'text/html; charset=utf-8',
        layout(
          ctx,
          'Forbidden',
          '',
          html`<h1>Forbidden</h1>
            <p>${err.message}</p>`,
          false,
        ),
      );
    }
    let message: string;
    try {
      message = await within(`the ${action.kind}`, perform(action));
    } catch (err) {
      const text = describeError(err).message;
      record(req, action, 'failed', text);
      return redirect(res, back, 'err', text);
    }
    record(req, action, 'done', message);
    redirect(res, back, 'msg', message);
  }

  async function perform(a: DashboardAction): Promise<string> {
    switch (a.kind) {
      case 'retry':
        return (await client.retry(a.jobId))
          ? `job ${a.jobId} retried`
          : `job ${a.jobId} was not retried (only failed or cancelled jobs are)`;
      case 'cancel':
        return (await client.cancel(a.jobId)) ? `job ${a.jobId} cancelled` : `job ${a.jobId} was not cancelled (it had finished)`;
      case 'delete': {
        const r = await client.deleteMany({ ids: [a.jobId] }, { limit: 1 });
        return r.count
          ? `job ${a.jobId} deleted`
          : `job ${a.jobId} was not deleted${r.runningSkipped ? ' (it is running: cancel it first)' : ''}`;
      }
      case 'pause':
        await client.pause(a.partition, a.queue);
        return `${a.partition}/${a.queue} paused`;
      case 'resume':
        await client.resume(a.partition, a.queue);
        return `${a.partition}/${a.queue} resumed`;
      case 'throttle':
        await client.throttle({ ms: a.ms, partition: a.partition, queue: a.queue });
        return a.ms === 0 ? `${a.partition}/${a.queue}: throttle lifted` : `${a.partition}/${a.queue} throttled to ${a.ms} ms`;
      case 'bulk': {
        const match: JobMatch = a.ids ? { ids: a.ids } : a.filter!;
        const o = { limit: a.limit };
        if (a.op === 'retry') {
          const r = await client.retryMany(match, o);
          return `${r.count} jobs retried${r.refused.length ? `, ${r.refused.length} refused (queue key held)` : ''}${r.more ? '; more match' : ''}`;
        }
        if (a.op === 'cancel') {
          const r = await client.cancelMany(match, o);
          return `${r.count} jobs cancelled${r.running ? ` (${r.running} running, asked to stop)` : ''}${r.more ? '; more match' : ''}`;
        }
        const r = await client.deleteMany(match, o);
        return `${r.count} jobs deleted${r.runningSkipped ? `, ${r.runningSkipped} running left alone` : ''}${r.more ? '; more match' : ''}`;
      }
      case 'interrupt':
        return (await workflowApp(client, a.app).interrupt(undefined, a.workflowId, a.reason ? { reason: a.reason } : {}))
          ? `workflow ${a.workflowId} interrupted`
          : `workflow ${a.workflowId} was not interrupted (it had finished)`;
      case 'hook': {
        const to = await workflowApp(client, a.app).hook(a.topic, a.data);
        return to ? `hook ${a.topic} delivered to workflow ${to}` : `hook ${a.topic} kept: no workflow waits for it yet`;
      }
      case 'schedule-pause':
        await scheduleList().pause(a.schedule);
        return `schedule ${a.schedule} paused`;
      case 'schedule-resume':
        await scheduleList().resume(a.schedule);
        return `schedule ${a.schedule} resumed`;
      case 'schedule-trigger': {
        const r = await scheduleList().trigger(a.schedule);
        return r.jobId
          ? `schedule ${a.schedule} triggered: job ${r.jobId}`
          : `schedule ${a.schedule} triggered, no job enqueued (${r.skipped === 'overlap' ? 'its last job is still live' : 'a queue key refused it'})`;
      }
      case 'process-pause':
        await processList().pause(a.process);
        return `process ${a.process} paused`;
      case 'process-resume':
        await processList().resume(a.process);
        return `process ${a.process} resumed`;
      case 'process-trigger':
        await processList().trigger(a.process);
        return `process ${a.process} triggered: a run starts now (after the one under way, if any)`;
      case 'view':
        return 'viewed';
    }
  }

  function safeReturn(ctx: Ctx, value: string | null): string {
    // Only back into the dashboard: a form cannot send the browser elsewhere.
    if (value && value.startsWith(ctx.base + '/') && !value.startsWith('//')) return value;
    return ctx.base + '/';
  }

  Object.defineProperty(handler, 'events', { value: events });
  handler.close = async () => {
    await live.close();
    await (await opened.catch(() => undefined))?.close();
  };
  return handler;
}

/** The same handler under the name the issue uses. */
export const createDashboard = dashboard;

// ── Helpers ────────────────────────────────────────────────────────────────────────────────────

const DEPTH_STATES = ['queued', 'scheduled', 'waiting', 'running'] as const;

interface DepthRow {
  partition: string;
  queue: string;
  states: Partial<Record<JobState, number>>;
}

function depthRows(rows: QueueCount[]): DepthRow[] {
  const map = new Map<string, DepthRow>();
  for (const r of rows) {
    const key = `${r.partition}\u0000${r.queue}`;
    const row = map.get(key) ?? { partition: r.partition, queue: r.queue, states: {} };
    row.states[r.state] = (row.states[r.state] ?? 0) + r.count;
    map.set(key, row);
  }
  return [...map.values()].sort((a, b) => a.partition.localeCompare(b.partition) || a.queue.localeCompare(b.queue));
}

function jobsUrl(ctx: { base: string }, q: string, before?: string): string {
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (before) params.set('before', before);
  const s = params.toString();
  return `${ctx.base}/jobs${s ? `?${s}` : ''}`;
}

function badge(state: string): Html {
  return html`<span class="badge ${state}" data-state="${state}">${state}</span>`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

function statusText(status: number): string {
  return status === 403 ? 'Forbidden' : status === 400 ? 'Bad request' : status === 503 ? 'Unavailable' : 'Error';
}

function bulkOp(value: string | null): BulkOp {
  if (value === 'retry' || value === 'cancel' || value === 'delete') return value;
  throw new ValidationError('op must be retry, cancel or delete', 'op');
}

function intParam(value: string | null, fallback: number, name: string): number {
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ValidationError('must be a whole number', name);
  return n;
}

function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (!v) throw new ValidationError('is required', name);
  return v;
}

/** Actions come from the dashboard's own pages: a cross-site form post is refused. */
function sameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin ?? req.headers.referer;
  if (!origin) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new Forbidden('the request came from an unreadable origin');
  }
  if (host !== req.headers.host) throw new Forbidden(`actions are taken from the dashboard's own pages, not from ${host}`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ValidationError('the form is too large', 'body');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

function redirect(res: ServerResponse, to: string, key: 'msg' | 'err', text: string): void {
  const url = new URL(to, 'http://x');
  url.searchParams.delete('msg');
  url.searchParams.delete('err');
  url.searchParams.set(key, text);
  res.writeHead(303, { location: url.pathname + url.search, 'cache-control': 'no-store' });
  res.end();
}
