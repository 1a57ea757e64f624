import {
  ConfigError,
  type RateLimitConfig,
  ValidationError,
  loadConfig,
  validateConfig,
  type Logger,
  type PartitaConfig,
  type PartitaConfigInput,
} from '@partita/core';
import type { PgOptions } from '@partita/postgres';
import type { JobDefinition, OutcomeContinuation } from './define.js';
import { describeImportError, importUserModule } from './modules.js';
import type { SignalHandling } from './signals.js';
import type { NodePlugin } from './plugin.js';

export interface PartitionOptions {
  queues: Record<string, { concurrency: number; rateLimit?: RateLimitConfig }>;
}

/**
 * startNode's options: everything the YAML config holds (DESIGN.md names), given directly or read
 * from `config`; what is given directly wins over the file.
 */
export interface NodeOptions extends Omit<PartitaConfigInput, 'postgres' | 'jobs' | 'partitions' | 'plugins'> {
  /** Path of a YAML config file (see config/partita.yaml). */
  config?: string;
  /** A URL, pg pool options, or the config's `postgres:` mapping. Absent: embedded PostgreSQL in dataDir. */
  postgres?: string | PgOptions | PartitaConfigInput['postgres'];
  /** Postgres schema for Partita's tables (default `partita`); same as postgres.schema. */
  schema?: string;
  partitions?: Record<string, PartitionOptions>;
  /** Job definitions, or the path of a module exporting them (default export or `jobs`). */
  jobs?: JobDefinition[] | string;
  logger?: Logger;
  /** Defaults to host:pid:random. */
  nodeId?: string;
  /**
   * Stop the node on SIGTERM/SIGINT: the first signal a graceful node.stop(), then the process exits
   * (code 0); a second signal exits at once (130/143). Default false: a library leaves the process's
   * signals to the program (call node.stop() yourself); the CLI's start and demo turn it on.
   */
  handleSignals?: boolean | SignalHandling;
  /** Continuations attached to job types from outside their definitions (plugins): see OutcomeContinuation. */
  continuations?: readonly OutcomeContinuation[];
  /**
   * Node plugins (workflowsPlugin(), processesPlugin(), your own definePlugin(...)), assembled in
   * this order after the built-in parts (lease keeper, Global, the job engine) and before HTTP.
   */
  plugins?: readonly NodePlugin[];
  /**
   * Plugins' settings by plugin name, laid over the config file's `plugins:` sections (a section
   * given here replaces the file's whole section). Each plugin's configSchema checks its own.
   */
  pluginConfig?: Record<string, unknown>;
  /**
   * Partition → queues this node serves (their partitions config) but starts stopped: it runs them
   * once node.startQueues is called, e.g. to start a pipeline's queues in order.
   */
  stoppedQueues?: Record<string, readonly string[]>;
}

export interface ResolvedOptions {
  config: PartitaConfig;
  /** What the store connects with; undefined: start the embedded PostgreSQL. */
  postgres: string | PgOptions | undefined;
  jobs: JobDefinition[];
}

const PG_CONFIG_KEYS = new Set(['url', 'host', 'port', 'user', 'password', 'database', 'ssl', 'poolSize', 'schema']);

export async function resolveOptions(options: NodeOptions): Promise<ResolvedOptions> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('startNode needs an options object');
  const {
    config: file,
    postgres,
    schema,
    jobs,
    pluginConfig,
    logger: _logger,
    nodeId: _nodeId,
    handleSignals: _handleSignals,
    continuations: _continuations,
    plugins: _plugins,
    stoppedQueues: _stoppedQueues,
    ...direct
  } = options;
  const fromFile = file ? await loadConfig(file) : undefined;

  // pg pool options (connectionString, max, …) are not config keys: they bypass the config check.
  const pgIsPoolOptions = typeof postgres === 'object' && postgres !== null && Object.keys(postgres).some((k) => !PG_CONFIG_KEYS.has(k));
  const input: Record<string, unknown> = { ...(fromFile ? asInput(fromFile) : {}) };
  for (const [key, value] of Object.entries(direct)) if (value !== undefined) input[key] = value;
  if (typeof postgres === 'string') input.postgres = { ...(input.postgres as object), url: postgres };
  else if (postgres && !pgIsPoolOptions) input.postgres = { ...(input.postgres as object), ...postgres };
  if (schema !== undefined) input.postgres = { ...(input.postgres as object), schema };
  if (typeof jobs === 'string') input.jobs = jobs;
  if (pluginConfig !== undefined) input.plugins = { ...(input.plugins as object), ...pluginConfig };
  const config = validateConfig(input, file);

  let definitions: JobDefinition[];
  if (Array.isArray(jobs)) definitions = jobs;
  else if (typeof config.jobs === 'string') definitions = await importJobs(config.jobs, file);
  else if (Array.isArray(config.jobs)) definitions = config.jobs as JobDefinition[];
  else definitions = [];

  let pg: string | PgOptions | undefined = config.postgres.url;
  if (pgIsPoolOptions) pg = { ...(postgres as PgOptions) };
  if (typeof pg === 'string')
    pg = {
      connectionString: pg,
      max: config.postgres.poolSize,
      ...(config.postgres.ssl ? { ssl: await sslOptions(config.postgres.ssl) } : {}),
    };
  return { config, postgres: pg, jobs: definitions };
}

/** Turns a loaded config back into input form, so direct options can be laid over it and checked once. */
function asInput(c: PartitaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    cluster: c.cluster,
    dataDir: c.dataDir,
    partitions: c.partitions,
    defaults: c.defaults,
    engine: c.engine,
    retention: c.retention,
    limits: c.limits,
    log: c.log,
    postgres: {
      poolSize: c.postgres.poolSize,
      schema: c.postgres.schema,
      ...(c.postgres.url ? { url: c.postgres.url } : {}),
      ...(c.postgres.ssl ? { ssl: c.postgres.ssl } : {}),
    },
  };
  // A default persister is chosen again below, against the Postgres given directly (if any).
  if (!('byDefault' in c.persister && c.persister.byDefault)) {
    out.persister =
      c.persister.kind === 'module' ? c.persister.path : c.persister.kind === 'instance' ? c.persister.instance : c.persister.kind;
  }
  if (c.nats) out.nats = c.nats;
  if (c.http) out.http = c.http;
  if (c.jobs !== undefined) out.jobs = c.jobs;
  if (c.plugins !== undefined) out.plugins = c.plugins;
  return out;
}

/** The job definitions a jobs module exports (as `jobs` or its default export); a ConfigError names the file otherwise. */
export async function importJobs(path: string, configFile: string | undefined): Promise<JobDefinition[]> {
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(path);
  } catch (err) {
    throw new ConfigError([
      {
        ...(configFile ? { file: configFile } : {}),
        path: 'jobs',
        message: `cannot load the jobs module ${path}: ${describeImportError(err, path)}`,
      },
    ]);
  }
  const exported = mod.jobs ?? mod.default;
  const list = Array.isArray(exported) ? exported : exported && typeof exported === 'object' ? Object.values(exported) : undefined;
  if (!list || list.some((d) => typeof (d as JobDefinition)?.perform !== 'function')) {
    throw new ConfigError([
      {
        ...(configFile ? { file: configFile } : {}),
        path: 'jobs',
        message: `${path} must export its job definitions as \`export const jobs = [defineJob(...), ...]\` or a default export of that array`,
      },
    ]);
  }
  return list as JobDefinition[];
}

async function sslOptions(tls: NonNullable<PartitaConfig['postgres']['ssl']>): Promise<NonNullable<PgOptions['ssl']>> {
  const { readFile } = await import('node:fs/promises');
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.caFile ? { ca: await readFile(tls.caFile, 'utf8') } : {}),
    ...(tls.certFile ? { cert: await readFile(tls.certFile, 'utf8') } : {}),
    ...(tls.keyFile ? { key: await readFile(tls.keyFile, 'utf8') } : {}),
  };
}
