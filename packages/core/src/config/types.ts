/**
 * The node configuration, as written (`PartitaConfigInput`, the YAML file or `startNode({...})`)
 * and as normalised (`PartitaConfig`: every default filled in, every path absolute, every
 * alternative spelling reduced to one shape).
 */

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** TLS for Postgres (`postgres.ssl`) and NATS (`nats.tls`). File paths are absolute once loaded. */
export interface TlsConfig {
  /** Verify the server certificate (default true). */
  rejectUnauthorized: boolean;
  /** PEM file with the CA certificate(s) to trust. */
  caFile?: string;
  /** PEM client certificate, for mutual TLS (needs keyFile). */
  certFile?: string;
  /** PEM client key, for mutual TLS (needs certFile). */
  keyFile?: string;
}

export interface PostgresConfig {
  /**
   * Connection URL (`postgres://user:password@host:5432/database`), built from host/port/user/
   * password/database when those were given instead. `undefined`: no server was configured, the
   * node starts an embedded PostgreSQL in `dataDir`.
   */
  url?: string;
  ssl?: TlsConfig;
  /** Connections per node. */
  poolSize: number;
  /** Schema that holds Partita's tables. */
  schema: string;
}

export interface NatsConfig {
  /** At least one server URL (`nats://host:4222`). */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** File with an NKey seed (absolute). */
  nkeySeedFile?: string;
  /** JWT credentials file (absolute). */
  credsFile?: string;
  tls?: TlsConfig;
}

/** Structural stand-in for the runtime's `Persister`, so core need not depend on the runtime. */
export interface PersisterLike {
  load(partition: string): Promise<unknown>;
  save(partition: string, snapshot: unknown, epoch: number): Promise<void>;
}

export type PersisterConfig =
  /** `byDefault`: not configured; chosen because Postgres is (postgres) or is embedded (file). */
  | { kind: 'file'; byDefault?: true }
  | { kind: 'postgres'; byDefault?: true }
  /** Absolute path of a module whose default export (or `persister` export) is a Persister or a factory. */
  | { kind: 'module'; path: string }
  /** Given programmatically. */
  | { kind: 'instance'; instance: PersisterLike };

export interface QueueConfig {
  /** Jobs of this queue one node runs at once; 0 declares the queue without running it on this node. */
  concurrency: number;
  /** At most `limit` jobs of the queue start in any `periodMs`, over the whole cluster. */
  rateLimit?: RateLimitConfig;
}

export interface RateLimitConfig {
  limit: number;
  periodMs: number;
  /**
   * A payload path (`customer`, `customer.id`): each distinct value has its own limit. Jobs whose
   * payload has no value there share one bucket.
   */
  key?: string;
}

export interface PartitionConfig {
  queues: Record<string, QueueConfig>;
}

export interface RetryDefaults {
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
  /** 0: no timeout. */
  timeoutMs: number;
}

export interface EngineConfig {
  /** A running job's lease; a node that stops heartbeating loses its jobs after this long. */
  leaseMs: number;
  heartbeatMs: number;
  /** How often an idle engine looks at Postgres when no wake-up arrives over NATS. */
  pollMs: number;
  /** Jobs claimed beyond the free worker slots, to hide claim latency. */
  prefetch: number;
  /** The most an engine's prefetch grows to while jobs finish faster than claims refill them. */
  maxPrefetch: number;
  /** How long completions are gathered before they are written in one statement. */
  flushMs: number;
  /** Most completions written in one statement. */
  flushBatch: number;
  /** On stop, how long running jobs get to finish. */
  shutdownGraceMs: number;
}

export interface PartitaConfig {
  /** Absolute path of the file this was loaded from; undefined for programmatic configs. */
  configFile?: string;
  cluster: string;
  postgres: PostgresConfig;
  /** undefined: no NATS, a single node with the in-process bus. */
  nats?: NatsConfig;
  persister: PersisterConfig;
  /** Absolute. */
  dataDir: string;
  /** Absolute path of the module exporting the job definitions, or the definitions themselves. */
  jobs?: string | readonly unknown[];
  /** undefined: no health/metrics server. Port 0 picks a free port. `dashboard`: where dashboardPlugin mounts the dashboard. */
  http?: { port: number; host: string; dashboard?: string };
  defaults: RetryDefaults;
  engine: EngineConfig;
  retention: { historyDays: number };
  limits: { payloadBytes: number };
  log: { level: LogLevel };
  /** Node plugins' own settings, by plugin name; each plugin checks its section. */
  plugins?: Record<string, unknown>;
  partitions: Record<string, PartitionConfig>;
}

// ---- Input shapes (what users write) -------------------------------------------------------------

export interface TlsConfigInput {
  rejectUnauthorized?: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** The `postgres:` section as written (not `pg.PoolConfig`, which @partita/postgres calls PgOptions). */
export interface PostgresConfigInput {
  /** Either a URL … */
  url?: string;
  /** … or its parts (host defaults to localhost, port to 5432). */
  host?: string;
  port?: number;
  user?: string;
  /** Also allowed with `url`: replaces the URL's password. */
  password?: string;
  database?: string;
  ssl?: boolean | TlsConfigInput;
  poolSize?: number;
  schema?: string;
}

/** The `nats:` section as written. */
export interface NatsConfigInput {
  /** A list, or one string of comma-separated URLs. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  nkeySeedFile?: string;
  credsFile?: string;
  tls?: boolean | TlsConfigInput;
}

type Partial2<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

export interface PartitaConfigInput {
  cluster?: string;
  /** A URL, or options; absent → embedded PostgreSQL. */
  postgres?: string | PostgresConfigInput;
  /** A URL (comma-separated for several), a list of URLs, options, or false/absent → in-process bus. */
  nats?: string | string[] | NatsConfigInput | false;
  /** `file`, `postgres`, a module path, or (programmatically) a Persister. Default: postgres when a Postgres server is configured, file with the embedded one. */
  persister?: 'file' | 'postgres' | (string & {}) | PersisterLike;
  dataDir?: string;
  jobs?: string | readonly unknown[];
  http?: { port?: number; host?: string; dashboard?: string } | false;
  defaults?: Partial2<RetryDefaults>;
  engine?: Partial<EngineConfig>;
  retention?: { historyDays?: number };
  limits?: { payloadBytes?: number };
  log?: { level?: LogLevel };
  plugins?: Record<string, unknown>;
  partitions: Record<string, PartitionConfig>;
}
