/**
 * The node's HTTP endpoint for operators: health for load balancers and orchestrators, metrics for
 * Prometheus. Plain node:http, no framework; read-only; no request body is ever read.
 *
 *   GET /health   (also /healthz, /ready, /readyz)  200 when ready, 503 otherwise; JSON body
 *                 { status: 'ok' | 'unavailable', checks: { postgres: true | 'why', bus: …, 'partition:billing': … } }
 *   GET /livez    (also /health/live)  200 while the process serves requests (liveness, no checks)
 *   GET /metrics  Prometheus text exposition (prom-client)
 *
 * Node plugins mount routes of their own next to these (a small router: exact paths, or a prefix
 * written `/path/*`); a method and path claimed twice is a RouteConflictError at start-up.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { RouteConflictError } from '@partita/core';
import { describeError, type Logger } from '@partita/core';

export interface HealthReport {
  ready: boolean;
  /** One entry per dependency: true when fine, otherwise a short reason (or false). */
  checks: Record<string, boolean | string>;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export interface RouteRequest {
  /** The request path without its query and trailing slashes (`/` for the root). */
  path: string;
  query: URLSearchParams;
  /** For a prefix route (`/dashboard/*`): the part after the prefix, '' for the prefix itself. */
  rest: string;
}

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, request: RouteRequest) => void | Promise<void>;

export interface Route {
  /** A GET route answers HEAD too (node:http leaves the body out). */
  method: HttpMethod | readonly HttpMethod[];
  /** An exact path such as `/processes`, or a prefix such as `/dashboard/*`. */
  path: string;
  handler: RouteHandler;
  /** Who mounted it, for conflict messages (startNode sets `plugin "name"`). */
  owner?: string;
}

export interface HttpServerOptions {
  /** 0 picks a free port (read it from the result). */
  port: number;
  /** Default 127.0.0.1: metrics and health are for operators, so exposing them is a choice (0.0.0.0). */
  host?: string;
  health: () => Promise<HealthReport>;
  /** The registry `/metrics` exposes; without one, `/metrics` is 404. */
  metrics?: Pick<Registry, 'metrics' | 'contentType'>;
  logger?: Logger;
  /** A health check that takes longer than this answers 503 (default 3000 ms). */
  healthTimeoutMs?: number;
  /** Routes mounted next to health and metrics. */
  routes?: readonly Route[];
}

export interface HttpServer {
  port: number;
  host: string;
  /** e.g. http://127.0.0.1:9464 (0.0.0.0 shown as 127.0.0.1) */
  url: string;
  close(): Promise<void>;
}

const HEALTH_PATHS = new Set(['/health', '/healthz', '/ready', '/readyz']);
const LIVE_PATHS = new Set(['/livez', '/health/live']);

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? '127.0.0.1';
  const healthTimeoutMs = options.healthTimeoutMs ?? 3000;
  const log = options.logger;

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      log?.warn({ err: describeError(err).message, url: req.url }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  const builtIn: Route[] = [
    {
      method: 'GET',
      path: '/',
      handler: (_req, res) => send(res, 200, 'text/plain; charset=utf-8', `partita node\n${links().join('\n')}\n`),
    },
    ...[...HEALTH_PATHS].map(
      (path): Route => ({
        method: 'GET',
        path,
        handler: async (_req, res) => {
          const report = await healthWithin(options.health, healthTimeoutMs);
          const body = JSON.stringify({ status: report.ready ? 'ok' : 'unavailable', checks: report.checks }) + '\n';
          send(res, report.ready ? 200 : 503, 'application/json; charset=utf-8', body);
        },
      }),
    ),
    ...[...LIVE_PATHS].map(
      (path): Route => ({
        method: 'GET',
        path,
        handler: (_req, res) => send(res, 200, 'application/json; charset=utf-8', '{"status":"ok"}\n'),
      }),
    ),
    ...(options.metrics
      ? [
          {
            method: 'GET',
            path: '/metrics',
            handler: async (_req, res) => send(res, 200, options.metrics!.contentType, await options.metrics!.metrics()),
          } satisfies Route,
        ]
      : []),
  ];
  const router = new Router();
  for (const route of builtIn) router.add({ ...route, owner: 'the node' });
  for (const route of options.routes ?? []) router.add(route);
  const links = () => ['/health', '/livez', ...(options.metrics ? ['/metrics'] : []), ...router.mountedGetPaths()];

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = (q < 0 ? url : url.slice(0, q)).replace(/\/+$/, '') || '/';
    const method = (req.method ?? 'GET').toUpperCase();
    const found = router.find(path, method);
    if (found.route)
      return found.route.handler(req, res, { path, query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), rest: found.rest });
    if (found.allowed.length) {
      res.setHeader('allow', found.allowed.join(', '));
      return send(res, 405, 'text/plain; charset=utf-8', `method not allowed; use ${found.allowed.join(' or ')}\n`);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed; use GET\n');
    }
    return send(res, 404, 'text/plain; charset=utf-8', `not found; try /health${options.metrics ? ' or /metrics' : ''}\n`);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.removeListener('listening', onListening);
      const why =
        err.code === 'EADDRINUSE'
          ? `port ${options.port} on ${host} is already in use; set http.port to a free port (0 picks one) or leave http out`
          : err.code === 'EACCES'
            ? `no permission to listen on port ${options.port}; use a port above 1023`
            : err.message;
      reject(Object.assign(new Error(`cannot start the health/metrics server: ${why}`, { cause: err }), { code: err.code }));
    };
    const onListening = () => {
      server.removeListener('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, host);
  });
  server.on('error', (err) => log?.warn({ err: err.message }, 'http server error'));

  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    url: `http://${shownHost}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function healthWithin(health: () => Promise<HealthReport>, timeoutMs: number): Promise<HealthReport> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      health(),
      new Promise<HealthReport>((resolve) => {
        timer = setTimeout(() => resolve({ ready: false, checks: { health: `checks did not answer within ${timeoutMs} ms` } }), timeoutMs);
      }),
    ]);
  } catch (err) {
    return { ready: false, checks: { health: `check failed: ${describeError(err).message}` } };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(body));
  // node:http writes no body for a HEAD request, and keeps the headers.
  res.end(body);
}

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Exact paths first, then the longest matching prefix; a GET route also answers HEAD. */
class Router {
  private readonly exact = new Map<string, Map<string, Route>>();
  private readonly prefixes = new Map<string, Map<string, Route>>();

  add(route: Route): void {
    const owner = route.owner ?? 'a route';
    if (typeof route.handler !== 'function') throw new TypeError(`${owner}: the route ${String(route.path)} needs a handler function`);
    if (typeof route.path !== 'string' || !route.path.startsWith('/'))
      throw new TypeError(`${owner}: a route path must start with "/", got ${JSON.stringify(route.path)}`);
    const isPrefix = route.path.endsWith('/*');
    const path = (isPrefix ? route.path.slice(0, -2) : route.path).replace(/\/+$/, '') || '/';
    const table = isPrefix ? this.prefixes : this.exact;
    const byMethod = table.get(path) ?? new Map<string, Route>();
    const methods = typeof route.method === 'string' ? [route.method] : route.method;
    if (!Array.isArray(methods) || methods.length === 0)
      throw new TypeError(`${owner}: the route ${route.path} needs a method (GET, POST, …)`);
    for (const raw of methods) {
      const method = String(raw).toUpperCase();
      if (!METHODS.has(method))
        throw new TypeError(`${owner}: ${String(raw)} is not an HTTP method a route can take (${[...METHODS].join(', ')})`);
      const taken = byMethod.get(method);
      if (taken) throw new RouteConflictError(method, route.path, [taken.owner ?? 'a route', owner]);
      byMethod.set(method, { ...route, owner });
    }
    table.set(path, byMethod);
  }

  find(path: string, method: string): { route?: Route; rest: string; allowed: string[] } {
    const pick = (byMethod: Map<string, Route>, rest: string) => {
      const route = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
      const allowed = [...byMethod.keys()];
      if (byMethod.has('GET') && !byMethod.has('HEAD')) allowed.push('HEAD');
      return route ? { route, rest, allowed } : { rest, allowed };
    };
    const exact = this.exact.get(path);
    if (exact) return pick(exact, '');
    let best: string | undefined;
    for (const prefix of this.prefixes.keys()) {
      const matches = prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
      if (matches && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    if (best === undefined) return { rest: '', allowed: [] };
    return pick(this.prefixes.get(best)!, best === '/' ? path.slice(1) : path.slice(best.length + 1));
  }

  /** The GET paths mounted by others than the node, for the root page's list. */
  mountedGetPaths(): string[] {
    const out: string[] = [];
    for (const [table, suffix] of [
      [this.exact, ''],
      [this.prefixes, '/'],
    ] as const) {
      for (const [path, byMethod] of table) {
        const route = byMethod.get('GET');
        if (route && route.owner !== 'the node') out.push(path + suffix);
      }
    }
    return out;
  }
}

export interface NodeHealthSources {
  /** Something to run `SELECT 1` on (the store's pool). */
  db: { query(text: string): Promise<unknown> };
  /** The node's bus; `connected` false makes the node unready. */
  bus?: { readonly connected: boolean };
  /** Partition name → whether its supervision tree (engine and workers) is up. */
  partitions: () => Record<string, boolean | string> | Promise<Record<string, boolean | string>>;
  /** Longest the Postgres probe may take (default 2000 ms). */
  dbTimeoutMs?: number;
  /** True once the node is stopping: reported unready so load balancers stop sending work. */
  stopping?: () => boolean;
}

/**
 * The usual health function for a node: ready only when Postgres answers `SELECT 1`, the bus is
 * connected, and every partition's tree is up (and the node is not stopping).
 */
export function nodeHealth(sources: NodeHealthSources): () => Promise<HealthReport> {
  const dbTimeoutMs = sources.dbTimeoutMs ?? 2000;
  return async () => {
    const checks: Record<string, boolean | string> = {};
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        sources.db.query('SELECT 1'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${dbTimeoutMs} ms`)), dbTimeoutMs))),
      ]);
      checks.postgres = true;
    } catch (err) {
      checks.postgres = `unreachable: ${describeError(err).message}`;
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (sources.bus) checks.bus = sources.bus.connected ? true : 'disconnected';
    try {
      for (const [name, ok] of Object.entries(await sources.partitions())) checks[`partition:${name}`] = ok;
    } catch (err) {
      checks.partitions = `check failed: ${describeError(err).message}`;
    }
    if (sources.stopping?.()) checks.node = 'stopping';
    return { ready: Object.values(checks).every((v) => v === true), checks };
  };
}
