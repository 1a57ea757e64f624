/**
 * The dashboard's own reads (one file each in sql/ops): what the client API does not offer — the
 * workflow listings over the workflows plugin's tables, and the live-job estimate that keeps a deep
 * queue's depth cheap to show. Every one runs under a statement timeout, so a slow plan is cut
 * short in Postgres, not only abandoned by the page.
 */
import { fileURLToPath } from 'node:url';
import type { Client } from '@partita/client';
import { clientStore } from '@partita/client/internal';
import { loadOpsFrom, type Statement } from '@partita/postgres';

const OPS_DIR = fileURLToPath(new URL('../sql/ops/', import.meta.url));

export type DashboardOp =
  | 'layers_installed'
  | 'live_counts_sampled'
  | 'live_jobs_estimate'
  | 'wf_app_of'
  | 'wf_app_versions'
  | 'wf_definition'
  | 'wf_page';

const opsBySchema = new Map<string, Record<DashboardOp, Statement>>();

interface Pool {
  connect(): Promise<{
    query(config: string | { name?: string; text: string; values?: unknown[] }): Promise<{ rows: any[] }>;
    release(err?: Error | boolean): void;
  }>;
}

export class DashboardDb {
  private readonly pool: Pool;
  private readonly ops: Record<DashboardOp, Statement>;

  constructor(
    client: Client,
    private readonly timeoutMs: number,
  ) {
    const store = clientStore(client) as unknown as { pool: Pool; schema: string };
    this.pool = store.pool;
    let ops = opsBySchema.get(store.schema);
    if (!ops) {
      ops = loadOpsFrom<DashboardOp>(OPS_DIR, store.schema, 'dash');
      opsBySchema.set(store.schema, ops);
    }
    this.ops = ops;
  }

  /** Runs one op in a read-only transaction whose statement_timeout is the dashboard's deadline. */
  async run<R = any>(op: DashboardOp, params: unknown[] = []): Promise<R[]> {
    const conn = await this.pool.connect();
    let broken: Error | undefined;
    try {
      // The timeout is an integer we made, so it is written into the statement, not bound.
      await conn.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.floor(this.timeoutMs))}`);
      const { rows } = await conn.query({ name: this.ops[op].name, text: this.ops[op].text, values: params });
      await conn.query('COMMIT');
      return rows as R[];
    } catch (err) {
      await conn.query('ROLLBACK').catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
      throw err;
    } finally {
      conn.release(broken ?? false);
    }
  }
}
