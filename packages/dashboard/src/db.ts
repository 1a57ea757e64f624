/**
 * The dashboard's own reads (one file each in sql/ops): what the client API does not offer — the
 * workflow listings over the workflows plugin's tables, and the live-job estimate that keeps a deep
 * queue's depth cheap to show, and the charts' hour rebuilt from history. Every one runs on the reads
 * pool (reads.ts), under its statement timeout.
 */
import { fileURLToPath } from 'node:url';
import { loadOpsFrom, type Statement } from '@partita/postgres';

const OPS_DIR = fileURLToPath(new URL('../sql/ops/', import.meta.url));

export type DashboardOp =
  | 'chart_history'
  | 'layers_installed'
  | 'live_counts_sampled'
  | 'live_jobs_estimate'
  | 'wf_app_of'
  | 'wf_app_versions'
  | 'wf_definition'
  | 'wf_page';

const opsBySchema = new Map<string, Record<DashboardOp, Statement>>();

interface Pool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}

export class DashboardDb {
  private readonly ops: Record<DashboardOp, Statement>;

  /** `pool` is the dashboard's reads pool, whose connections carry its statement_timeout. */
  constructor(
    private readonly pool: Pool,
    schema: string,
  ) {
    let ops = opsBySchema.get(schema);
    if (!ops) {
      ops = loadOpsFrom<DashboardOp>(OPS_DIR, schema, 'dash');
      opsBySchema.set(schema, ops);
    }
    this.ops = ops;
  }

  async run<R = any>(op: DashboardOp, params: unknown[] = []): Promise<R[]> {
    const { rows } = await this.pool.query({ name: this.ops[op].name, text: this.ops[op].text, values: params });
    return rows as R[];
  }
}
