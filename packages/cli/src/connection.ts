/**
 * Which cluster a command talks to: flags, then the config file (`-c`, `$PARTITA_CONFIG`,
 * ./partita.yaml, ./config/partita.yaml), then `$PARTITA_POSTGRES_URL`. A config without
 * `postgres:` means the node runs an embedded PostgreSQL in `<dataDir>/pg`; the CLI finds that
 * server through its postmaster.pid (port on line 4) while the node runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, redactUrlPassword, silentLogger, type JobSpec, type Logger, type PartitaConfig } from '@partita/core';
import type { Client } from '@partita/client';
import { str, type Parsed } from './args.js';
import { ExitError, EXIT, UsageError } from './errors.js';
import type { Io } from './io.js';

/** The config file to use: the flag, $PARTITA_CONFIG, or the first default that exists; undefined when none. */
export function configPath(values: Parsed['values'], io: Io, opts: { required?: boolean; command?: string } = {}): string | undefined {
  const given = str(values, 'config') ?? (io.env.PARTITA_CONFIG || undefined);
  if (given) return path.resolve(io.cwd, given);
  for (const candidate of ['partita.yaml', 'partita.yml', path.join('config', 'partita.yaml')]) {
    const p = path.resolve(io.cwd, candidate);
    if (existsSync(p)) return p;
  }
  if (opts.required) {
    throw new UsageError('no config file: pass -c FILE or set PARTITA_CONFIG (see config/partita.yaml for an example)', opts.command);
  }
  return undefined;
}

export interface Connection {
  postgres: string;
  /** Where the URL came from, for messages. */
  source: 'flag' | 'env' | 'config' | 'embedded';
  schema: string;
  nats: string[] | false;
  cluster: string;
  config: PartitaConfig | undefined;
  configFile: string | undefined;
}

export async function resolveConnection(values: Parsed['values'], io: Io, command: string): Promise<Connection> {
  const file = configPath(values, io);
  const config = file ? await loadConfig(file, { env: io.env }) : undefined;

  let postgres: string | undefined;
  let source: Connection['source'] = 'flag';
  const flagUrl = str(values, 'postgres');
  if (flagUrl) postgres = flagUrl;
  else if (config?.postgres.url) {
    postgres = config.postgres.url; // PARTITA_POSTGRES_URL already applied by loadConfig
    source = 'config';
  } else if (!config && io.env.PARTITA_POSTGRES_URL) {
    postgres = io.env.PARTITA_POSTGRES_URL;
    source = 'env';
  } else if (config) {
    const embedded = embeddedUrl(config.dataDir);
    if (embedded) {
      postgres = embedded;
      source = 'embedded';
    } else {
      throw new ExitError(
        `${file} configures no Postgres, so the node runs an embedded PostgreSQL in ${path.join(config.dataDir, 'pg')} — ` +
          'and none is running there now. Start the node first (partita start -c ' +
          `${path.relative(io.cwd, file!) || file}), or give a server with --postgres URL or PARTITA_POSTGRES_URL.`,
        EXIT.ERROR,
        'NO_POSTGRES',
      );
    }
  }
  if (!postgres) {
    throw new UsageError(
      'no Postgres to connect to: pass --postgres URL, set PARTITA_POSTGRES_URL, or point -c/PARTITA_CONFIG at the node config file',
      command,
    );
  }

  const natsFlag = str(values, 'nats');
  let nats: string[] | false = false;
  if (natsFlag !== undefined)
    nats =
      natsFlag === 'false' || natsFlag === ''
        ? false
        : natsFlag
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
  else if (config?.nats) nats = config.nats.servers;
  else if (!config && io.env.PARTITA_NATS_URL)
    nats = io.env.PARTITA_NATS_URL.split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  return {
    postgres,
    source,
    schema: str(values, 'schema') ?? config?.postgres.schema ?? 'partita',
    nats,
    cluster: str(values, 'cluster') ?? config?.cluster ?? io.env.PARTITA_CLUSTER ?? 'default',
    config,
    configFile: file,
  };
}

/**
 * The URL of the embedded PostgreSQL a running node started for `dataDir`, read from its
 * postmaster.pid (pid on line 1, port on line 4); undefined when no live server is there.
 */
export function embeddedUrl(dataDir: string): string | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // The node starts it with superuser `postgres` and trust auth on 127.0.0.1 (see @partita/postgres-embedded).
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

export async function openClient(conn: Connection, logger?: Logger): Promise<Client> {
  const ssl = conn.config?.postgres.ssl && conn.source === 'config' ? await sslOptions(conn.config.postgres.ssl) : undefined;
  // Loaded on use: `--help` and usage errors need neither pg nor NATS.
  const { connect } = await import('@partita/client');
  const jobs = await configJobs(conn);
  try {
    return await connect({
      postgres: {
        connectionString: conn.postgres,
        max: 4,
        connectionTimeoutMillis: 10_000,
        application_name: 'partita-cli',
        ...(ssl ? { ssl } : {}),
      },
      schema: conn.schema,
      nats: conn.nats,
      cluster: conn.cluster,
      logger: logger ?? silentLogger(),
      ...(jobs ? { jobs } : {}),
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code && /^(CONFIG|VALIDATION)$/.test(e.code)) throw err;
    const wrapped = new ExitError(
      `cannot connect to ${redactUrlPassword(conn.postgres)}: ${describeConnectError(e)}`,
      EXIT.ERROR,
      e.code ?? 'CONNECT',
    );
    throw wrapped;
  }
}

/**
 * The definitions of the config's jobs module, when it names one: keys a job type declares as a
 * function then apply to what the CLI enqueues too (keys declared as templates need no module:
 * nodes register them). A module that fails to load is an error, as it is for the node.
 */
async function configJobs(conn: Connection): Promise<JobSpec[] | undefined> {
  const jobs = conn.config?.jobs;
  if (typeof jobs !== 'string') return undefined;
  const { loadJobsModule } = await import('@partita/runtime');
  return loadJobsModule(jobs, conn.configFile);
}

function describeConnectError(e: Error & { code?: string }): string {
  const msg = e.message || (e instanceof AggregateError && e.errors[0] instanceof Error ? e.errors[0].message : String(e));
  if (e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(msg)) return `${msg || 'connection refused'} — is PostgreSQL running there?`;
  if (e.code === '3D000') return `${msg}; create the database or fix the URL`;
  if (e.code === '28P01' || e.code === '28000') return `${msg}; check the user and password`;
  return msg;
}

async function sslOptions(tls: NonNullable<PartitaConfig['postgres']['ssl']>) {
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.caFile ? { ca: await readFile(tls.caFile, 'utf8') } : {}),
    ...(tls.certFile ? { cert: await readFile(tls.certFile, 'utf8') } : {}),
    ...(tls.keyFile ? { key: await readFile(tls.keyFile, 'utf8') } : {}),
  };
}
