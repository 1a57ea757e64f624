/**
 * The dashboard's reads go over their own small pool whose connections carry a statement_timeout:
 * a page can then never leave a query running in Postgres after it gave up (a count over a deep
 * queue, a listing blocked behind a lock), whichever layer issues it (the client's listing and
 * counts, the processes' and workflows' reads, the dashboard's own SQL). The node's pool is left
 * as it is: its claims and completions must not be cut at a page's deadline.
 */
import { Client, clientStore } from '@partita/client/internal';
import { JobStore, type PgOptions } from '@partita/postgres';
import type { Logger } from '@partita/core';

/** Postgres's SQLSTATE for a statement cancelled by statement_timeout (query_canceled). */
export const QUERY_CANCELED = '57014';

/** Connections of the reads pool: a page reads a few things at once; more would only queue in Postgres. */
const READ_CONNECTIONS = 3;
/** What the job store sets when it makes its own pool; kept so the reads plan as the node's do. */
const STORE_PG_OPTIONS = '-c plan_cache_mode=force_custom_plan -c jit=off';

export interface Reads {
  /** A client over the reads pool: no bus, so it only reads (actions go through the caller's client). */
  client: Client;
  /** The reads pool (the dashboard's own SQL runs on it too). */
  pool: JobStore['pool'];
  close(): Promise<void>;
}

/** Opens the reads pool with the connection settings of `client`'s own pool. */
export async function openReads(client: Client, statementTimeoutMs: number, logger: Logger): Promise<Reads> {
  const store = clientStore(client) as unknown as { pool: { options?: PgOptions }; schema: string };
  const base: PgOptions = { ...(store.pool.options ?? {}) };
  // A timeout the client's pool set for itself (the CLI's) would race ours as a second startup setting.
  delete base.statement_timeout;
  const timeout = Math.max(1, Math.floor(statementTimeoutMs));
  const own = await JobStore.open({
    postgres: {
      ...base,
      max: READ_CONNECTIONS,
      // The client's own name marked, so its reads can be told apart in pg_stat_activity.
      application_name: `${base.application_name ?? 'partita'}-dashboard`.slice(0, 63),
      options: `${base.options ?? STORE_PG_OPTIONS} -c statement_timeout=${timeout}`,
    },
    schema: store.schema,
    logger,
    // The cluster's nodes migrate; a dashboard only reads what is there.
    migrate: false,
  });
  const reads = new Client(own, { cluster: client.cluster, logger, ownsStore: true, enqueueEvents: false });
  return { client: reads, pool: own.pool, close: () => reads.close() };
}

/** Whether `err` is Postgres cancelling a statement at the dashboard's statement_timeout. */
export function isStatementTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === QUERY_CANCELED;
}
