/**
 * The configuration schema: every key, its type, range, default and meaning, in one table.
 * `config/partita.yaml` is the commented example of the same keys.
 */
import { NAME_PATTERN } from '../jobs.js';
import { closest } from './suggest.js';
import type { CustomNode, IntegerNode, ObjectNode, Rule, SchemaNode, Shorthand, StringNode } from './walker.js';

/** setTimeout's ceiling (2^31 - 1 ms, about 24.8 days); every millisecond setting stays under it. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Bounds of the numeric settings. */
export const CONFIG_LIMITS = {
  maxConcurrency: 10_000,
  maxAttempts: 1_000,
  maxPoolSize: 1_000,
  maxPrefetch: 10_000,
  maxFlushBatch: 100_000,
  minLeaseMs: 1_000,
  minHeartbeatMs: 100,
  minPollMs: 10,
  maxTimerMs: MAX_TIMER_MS,
  maxHistoryDays: 3_650,
  minPayloadBytes: 1_024,
  maxPayloadBytes: 64 * 1024 * 1024,
  maxRateLimit: 1_000_000,
  minRatePeriodMs: 10,
  maxRatePeriodMs: 86_400_000,
} as const;

/** Defaults of every optional setting (paths relative to the config file's directory). */
export const CONFIG_DEFAULTS = {
  cluster: 'default',
  /** With a Postgres server configured; with the embedded one (no postgres:), `file`. */
  persister: 'postgres',
  dataDir: './.partita',
  postgres: { host: 'localhost', port: 5432, poolSize: 10, schema: 'partita' },
  nats: { servers: ['nats://127.0.0.1:4222'] },
  tls: { rejectUnauthorized: true },
  http: { port: 9464, host: '127.0.0.1' },
  defaults: { maxAttempts: 1, backoff: { baseMs: 1_000, maxMs: 300_000 }, timeoutMs: 0 },
  engine: {
    leaseMs: 15_000,
    heartbeatMs: 5_000,
    pollMs: 1_000,
    prefetch: 32,
    maxPrefetch: 2_000,
    flushMs: 2,
    flushBatch: 500,
    shutdownGraceMs: 30_000,
  },
  retention: { historyDays: 7 },
  limits: { payloadBytes: 1_048_576 },
  log: { level: 'info' },
} as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const NAME_HINT = 'use 1-64 letters, digits, "_" or "-" (names appear in NATS subjects and SQL)';

// ---- building blocks ---------------------------------------------------------------------------------

const ms = (doc: string, min: number, dflt?: number, max: number = MAX_TIMER_MS): IntegerNode => ({
  type: 'integer',
  unit: 'ms',
  min,
  max,
  doc,
  ...(dflt !== undefined ? { default: dflt } : {}),
});

const str = (doc: string, extra: Partial<StringNode> = {}): StringNode => ({ type: 'string', doc, ...extra });
const file = (doc: string): StringNode => ({ type: 'string', isPath: true, doc });
const secret = (doc: string): StringNode => ({ type: 'string', secret: true, doc });

const offWhenFalse: Shorthand = { when: (v) => v === false, expect: 'false', expand: () => undefined };
const tlsShorthand: Shorthand = {
  when: (v) => typeof v === 'boolean',
  expect: 'true/false',
  expand: (v: boolean) => (v ? {} : undefined),
};

/** At most one of a group of keys may be set; reports the later ones. */
const exclusive = (groups: readonly (readonly string[])[], why: string): Rule => ({
  keys: groups.flat(),
  check(value, report) {
    const present = groups.filter((keys) => keys.some((k) => value[k] !== undefined));
    for (const group of present.slice(1)) {
      const key = group.find((k) => value[k] !== undefined)!;
      report(key, `cannot be combined with ${present[0]!.filter((k) => value[k] !== undefined).join('/')}: ${why}`);
    }
  },
});

/** Keys that only make sense together. */
const together = (a: string, b: string): Rule => ({
  keys: [a, b],
  check(value, report) {
    if (value[a] !== undefined && value[b] === undefined) report(b, `is required when ${a} is set`);
    if (value[b] !== undefined && value[a] === undefined) report(a, `is required when ${b} is set`);
  },
});

const tls = (doc: string): ObjectNode => ({
  type: 'object',
  doc,
  optional: true,
  shorthands: [tlsShorthand],
  fields: {
    rejectUnauthorized: { type: 'boolean', doc: 'verify the server certificate', default: CONFIG_DEFAULTS.tls.rejectUnauthorized },
    caFile: file('PEM file of the CA certificates to trust'),
    certFile: file('PEM client certificate for mutual TLS'),
    keyFile: file('PEM client key for mutual TLS'),
  },
  rules: [together('certFile', 'keyFile')],
});

function checkPostgresUrl(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') return undefined;
  } catch {
    // fall through
  }
  return 'a URL such as postgres://user:password@host:5432/database';
}

function checkNatsServer(value: string): string | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `nats://${value}`;
  try {
    const url = new URL(withScheme);
    if (['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol) && url.hostname && !/\s/.test(value)) return undefined;
  } catch {
    // fall through
  }
  return 'a NATS server URL such as nats://127.0.0.1:4222';
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.href;
}

function buildPostgresUrl(o: Readonly<Record<string, unknown>>): string {
  const enc = encodeURIComponent;
  const host = (o.host as string | undefined) ?? CONFIG_DEFAULTS.postgres.host;
  const port = (o.port as number | undefined) ?? CONFIG_DEFAULTS.postgres.port;
  const user = o.user as string | undefined;
  const password = o.password as string | undefined;
  const database = o.database as string | undefined;
  const auth =
    user !== undefined || password !== undefined ? `${enc(user ?? '')}${password !== undefined ? `:${enc(password)}` : ''}@` : '';
  const socket = host.startsWith('/');
  const hostPart = socket ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `postgres://${auth}${hostPart}:${port}${database !== undefined ? `/${enc(database)}` : ''}${socket ? `?host=${enc(host)}` : ''}`;
}

function looksLikeModulePath(value: string): boolean {
  return /^(\.{1,2}[\\/]|[\\/]|[A-Za-z]:[\\/]|file:\/\/)/.test(value) || /\.(m|c)?[jt]s$/.test(value);
}

/** Marks the persister chosen by default, so a config laid over another can choose again (see below). */
const PERSISTER_DEFAULT = Symbol('persister default');

const persister: CustomNode = {
  type: 'custom',
  doc: "where each partition's Global state is saved",
  expect: '"file", "postgres" or a module path such as ./my-persister.js',
  // postgres when nodes share a Postgres server: every node reads the state of whichever node led
  // before it (file state stays on one node's disk, and a take-over there starts without it). With
  // the embedded PostgreSQL (one node, its data dir) the file persister keeps state next to it.
  defaultFrom: (s) => ({ [PERSISTER_DEFAULT]: (s.postgres as { url?: unknown } | undefined)?.url !== undefined ? 'postgres' : 'file' }),
  check(value, ctx) {
    const byDefault = value !== null && typeof value === 'object' ? (value as Record<symbol, unknown>)[PERSISTER_DEFAULT] : undefined;
    if (byDefault === 'file' || byDefault === 'postgres') return { value: { kind: byDefault, byDefault: true } };
    if (typeof value === 'string') {
      if (value === 'file' || value === 'postgres') return { value: { kind: value } };
      if (looksLikeModulePath(value)) return { value: { kind: 'module', path: ctx.resolvePath(value) } };
      const guess = closest(value, ['file', 'postgres']);
      return guess ? { hint: `did you mean "${guess}"?` } : {};
    }
    if (
      value !== null &&
      typeof value === 'object' &&
      typeof (value as { load?: unknown }).load === 'function' &&
      typeof (value as { save?: unknown }).save === 'function'
    ) {
      return { value: { kind: 'instance', instance: value } };
    }
    return {};
  },
};

/**
 * Each node plugin's own settings, under its name. Their shape is the plugin's business: startNode
 * hands each section to the plugin's configSchema, which reports its problems under plugins.NAME.
 */
const plugins: CustomNode = {
  type: 'custom',
  doc: "node plugins' settings, one mapping per plugin name (checked by the plugin)",
  expect: 'a mapping of plugin name to its settings',
  check(value) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
    const bad = Object.keys(value).find((k) => !NAME_PATTERN.test(k));
    if (bad !== undefined) return { hint: `"${bad}" is not a plugin name; ${NAME_HINT}` };
    return { value };
  },
};

const jobs: CustomNode = {
  type: 'custom',
  doc: 'the module that exports the job definitions',
  expect: 'a module path such as ./jobs.js',
  check(value, ctx) {
    if (typeof value === 'string' && value.trim() !== '') return { value: ctx.resolvePath(value) };
    if (Array.isArray(value) && value.every((d) => d !== null && typeof d === 'object')) return { value: value as unknown[] };
    return {};
  },
};

// ---- the schema ---------------------------------------------------------------------------------------

const postgres: ObjectNode = {
  type: 'object',
  doc: 'the PostgreSQL server; leave out for an embedded one in dataDir',
  shorthands: [{ when: (v) => typeof v === 'string', expect: 'a postgres:// URL', expand: (v: string) => ({ url: v }) }],
  fields: {
    url: str('connection URL', { check: checkPostgresUrl }),
    host: str('server host name, or the directory of its Unix socket'),
    port: { type: 'integer', min: 1, max: 65_535, doc: 'server port' },
    user: str('role to connect as'),
    password: secret('password of the role'),
    database: str('database name'),
    ssl: tls('TLS to the server'),
    poolSize: {
      type: 'integer',
      min: 1,
      max: CONFIG_LIMITS.maxPoolSize,
      default: CONFIG_DEFAULTS.postgres.poolSize,
      doc: 'connections per node',
    },
    schema: str("schema that holds Partita's tables", {
      pattern: /^[a-z_][a-z0-9_]{0,62}$/,
      patternHint: 'lower-case letters, digits and "_", not starting with a digit',
      default: CONFIG_DEFAULTS.postgres.schema,
    }),
  },
  rules: [exclusive([['url'], ['host', 'port', 'user', 'database']], 'give either a url or host/port/user/database')],
  normalize(o) {
    const hasParts = ['host', 'port', 'user', 'database'].some((k) => o[k] !== undefined);
    const url =
      typeof o.url === 'string'
        ? o.password !== undefined
          ? withPassword(o.url, o.password as string)
          : o.url
        : hasParts
          ? buildPostgresUrl(o)
          : undefined;
    return {
      ...(url !== undefined ? { url } : {}),
      ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
      poolSize: o.poolSize,
      schema: o.schema,
    };
  },
};

const splitServers = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const nats: ObjectNode = {
  type: 'object',
  doc: 'the NATS cluster; leave out (or false) for a single node with an in-process bus',
  optional: true,
  shorthands: [
    { when: (v) => typeof v === 'string', expect: 'a nats:// URL (comma-separated for several)', expand: (v: string) => ({ servers: v }) },
    { when: Array.isArray, expect: 'a list of URLs', expand: (v: unknown[]) => ({ servers: v }) },
    offWhenFalse,
  ],
  fields: {
    servers: {
      type: 'list',
      doc: 'NATS server URLs',
      minItems: 1,
      items: str('a NATS server', { check: checkNatsServer }),
      default: CONFIG_DEFAULTS.nats.servers,
      shorthands: [{ when: (v) => typeof v === 'string', expect: 'a comma-separated string', expand: splitServers }],
    },
    user: str('user name'),
    pass: secret('password of user'),
    token: secret('authentication token'),
    nkeySeedFile: file('file with an NKey seed'),
    credsFile: file('JWT credentials file'),
    tls: tls('TLS to the servers'),
  },
  rules: [
    together('user', 'pass'),
    exclusive([['user', 'pass'], ['token'], ['nkeySeedFile'], ['credsFile']], 'use one way to authenticate'),
  ],
};

/** A payload path: dot-separated property names, e.g. `customer` or `customer.id`. */
export const RATE_KEY_PATTERN = /^[A-Za-z_$][\w$-]*(\.[\w$-]+)*$/;

const rateLimit: ObjectNode = {
  type: 'object',
  doc: 'at most `limit` jobs of this queue start per `periodMs`, counted over every node of the cluster',
  optional: true,
  fields: {
    limit: {
      type: 'integer',
      min: 1,
      max: CONFIG_LIMITS.maxRateLimit,
      required: true,
      doc: 'jobs that may start in any window of periodMs',
    },
    periodMs: {
      ...ms('the sliding window the limit counts over', CONFIG_LIMITS.minRatePeriodMs, undefined, CONFIG_LIMITS.maxRatePeriodMs),
      required: true,
    },
    key: str('a payload path (e.g. customer or customer.id): each value gets its own limit', {
      pattern: RATE_KEY_PATTERN,
      patternHint: 'property names joined by dots, such as customer or customer.id',
    }),
  },
};

const queue: ObjectNode = {
  type: 'object',
  doc: 'a queue',
  fields: {
    concurrency: {
      type: 'integer',
      min: 0,
      max: CONFIG_LIMITS.maxConcurrency,
      required: true,
      doc: 'jobs of this queue one node runs at once; 0 declares the queue without running it on this node',
    },
    rateLimit,
  },
};

const partition: ObjectNode = {
  type: 'object',
  doc: 'a partition',
  fields: {
    queues: {
      type: 'map',
      keyWhat: 'queue',
      keyPattern: NAME_PATTERN,
      keyHint: NAME_HINT,
      values: queue,
      minEntries: 1,
      required: true,
      doc: 'the queues of this partition, by name',
      example: 'queues: { default: { concurrency: 10 } }',
      requiredHint: 'e.g. queues: { default: { concurrency: 10 } }',
    },
  },
};

const D = CONFIG_DEFAULTS;
const L = CONFIG_LIMITS;

export const CONFIG_SCHEMA: ObjectNode = {
  type: 'object',
  doc: 'a Partita node configuration',
  fields: {
    cluster: str('cluster name, the prefix of its NATS subjects', {
      pattern: NAME_PATTERN,
      patternHint: '1-64 letters, digits, "_" or "-"',
      default: D.cluster,
    }),
    postgres,
    nats,
    persister,
    dataDir: { ...file('directory for the embedded PostgreSQL and the file persister'), default: D.dataDir },
    jobs,
    http: {
      type: 'object',
      doc: 'the health and metrics HTTP server; leave out (or false) for none',
      optional: true,
      shorthands: [offWhenFalse],
      fields: {
        port: { type: 'integer', min: 0, max: 65_535, default: D.http.port, doc: 'TCP port; 0 picks a free one' },
        host: str('address to listen on', { default: D.http.host }),
        dashboard: str('path the dashboard is served at on this server (with dashboardPlugin from @partita/dashboard), e.g. /ui', {
          optional: true,
          pattern: /^\/[A-Za-z0-9._~\/-]*$/,
          patternHint: 'a path starting with "/", e.g. /ui',
        }),
      },
    },
    defaults: {
      type: 'object',
      doc: 'retry and timeout defaults for jobs whose definition does not set them',
      fields: {
        maxAttempts: {
          type: 'integer',
          min: 1,
          max: L.maxAttempts,
          default: D.defaults.maxAttempts,
          doc: 'attempts before a job fails for good',
        },
        backoff: {
          type: 'object',
          doc: 'exponential backoff between attempts',
          fields: {
            baseMs: ms('delay before the first retry, doubled on each later one', 0, D.defaults.backoff.baseMs),
            maxMs: ms('longest delay between attempts', 0, D.defaults.backoff.maxMs),
          },
          rules: [
            {
              keys: ['baseMs', 'maxMs'],
              check(v, report) {
                if ((v.baseMs as number) > (v.maxMs as number))
                  report('baseMs', `must not exceed maxMs (${v.maxMs as number}), got ${v.baseMs as number}`);
              },
            },
          ],
        },
        timeoutMs: ms('time an attempt may run before it is aborted; 0 for no limit', 0, D.defaults.timeoutMs),
      },
    },
    engine: {
      type: 'object',
      doc: 'how nodes claim and hold jobs',
      fields: {
        leaseMs: ms('lease of a running job; a node silent this long loses its jobs to rescue', L.minLeaseMs, D.engine.leaseMs),
        heartbeatMs: {
          ...ms('how often a node renews its leases; must be under leaseMs', L.minHeartbeatMs),
          defaultFrom: (s) =>
            typeof s.leaseMs === 'number'
              ? Math.max(L.minHeartbeatMs, Math.min(D.engine.heartbeatMs, Math.floor(s.leaseMs / 3)))
              : D.engine.heartbeatMs,
        },
        pollMs: ms('how often an idle engine checks Postgres without a wake-up', L.minPollMs, D.engine.pollMs),
        prefetch: {
          type: 'integer',
          min: 0,
          max: L.maxPrefetch,
          default: D.engine.prefetch,
          doc: 'jobs claimed beyond the free worker slots',
        },
        maxPrefetch: {
          type: 'integer',
          min: 0,
          max: L.maxPrefetch,
          doc: 'ceiling of the prefetch an engine grows to when jobs finish faster than a claim round trip refills them (set it to prefetch to keep the prefetch fixed; prefetch 0 makes it 0 unless given)',
          // prefetch 0 means "claim only what runs now" (fair sharing of long jobs between nodes): keep it.
          defaultFrom: (s) => (s.prefetch === 0 ? 0 : Math.max(D.engine.maxPrefetch, typeof s.prefetch === 'number' ? s.prefetch : 0)),
        },
        flushMs: ms('how long finished jobs are gathered before their completions are written together', 0, D.engine.flushMs),
        flushBatch: {
          type: 'integer',
          min: 1,
          max: L.maxFlushBatch,
          default: D.engine.flushBatch,
          doc: 'most completions written in one batch',
        },
        shutdownGraceMs: ms('on stop, how long running jobs get to finish', 0, D.engine.shutdownGraceMs),
      },
      rules: [
        {
          keys: ['leaseMs', 'heartbeatMs'],
          check(v, report) {
            const lease = v.leaseMs as number;
            const beat = v.heartbeatMs as number;
            if (beat >= lease)
              report(
                'heartbeatMs',
                `must be less than leaseMs (${lease}) so leases are renewed before they run out, got ${beat}; a third of leaseMs is a good value`,
              );
          },
        },
        {
          keys: ['prefetch', 'maxPrefetch'],
          check(v, report) {
            if ((v.maxPrefetch as number) < (v.prefetch as number))
              report('maxPrefetch', `must be at least prefetch (${v.prefetch as number}), got ${v.maxPrefetch as number}`);
          },
        },
      ],
    },
    retention: {
      type: 'object',
      doc: 'how long finished jobs are kept',
      fields: {
        historyDays: {
          type: 'integer',
          unit: 'days',
          min: 1,
          max: L.maxHistoryDays,
          default: D.retention.historyDays,
          doc: 'days finished jobs stay in history',
        },
      },
    },
    limits: {
      type: 'object',
      doc: 'size limits',
      fields: {
        payloadBytes: {
          type: 'integer',
          unit: 'bytes',
          min: L.minPayloadBytes,
          max: L.maxPayloadBytes,
          default: D.limits.payloadBytes,
          doc: 'largest job payload, as JSON',
        },
      },
    },
    log: {
      type: 'object',
      doc: 'logging',
      fields: { level: str('log level', { oneOf: LOG_LEVELS, default: D.log.level }) },
    },
    plugins,
    partitions: {
      type: 'map',
      keyWhat: 'partition',
      keyPattern: NAME_PATTERN,
      keyHint: NAME_HINT,
      values: partition,
      minEntries: 1,
      required: true,
      doc: 'the partitions this node runs, each with its queues',
      example: 'partitions: { billing: { queues: { default: { concurrency: 10 } } } }',
      requiredHint: 'declare at least one, e.g. partitions: { billing: { queues: { default: { concurrency: 10 } } } }',
    },
  } satisfies Record<string, SchemaNode>,
};
