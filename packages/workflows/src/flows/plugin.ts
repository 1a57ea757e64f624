/**
 * flowsPlugin(): the flows' lookup table on a node, and its sweep. The stages themselves are job
 * definitions (flow.jobs()) run by the workflows plugin's executor, which a flow node needs too
 * (before this plugin: the lookup rows are read through the workflow tables).
 */
import { definePlugin, type NodePlugin } from '@partita/runtime';
import { MIGRATIONS_DIR, flowOps, runOn, type Queryable } from './db.js';

export const FLOWS_PLUGIN = 'flows';

export interface FlowsPluginOptions {
  /** How often this node removes the lookup rows of workflows retention removed (default 5 min). */
  sweepIntervalMs?: number;
}

const SWEEP_INTERVAL_MS = 5 * 60_000;
const SWEEP_BATCH = 5_000;
const SWEEP_MAX_BATCHES = 20;
/** Rows younger than this are never swept: their workflow may be in a transaction not committed yet. */
const SWEEP_MIN_AGE_S = 60;

/** One sweep: removes lookup rows whose workflow is gone, in bounded batches; how many it removed. */
export async function sweepKeys(pool: Queryable, schema: string, minAgeS = SWEEP_MIN_AGE_S): Promise<number> {
  const ops = flowOps(schema);
  let removed = 0;
  for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
    const [row] = await runOn<{ removed: number }>(pool, ops, 'keys_sweep', [SWEEP_BATCH, minAgeS]);
    removed += row?.removed ?? 0;
    if ((row?.removed ?? 0) < SWEEP_BATCH) break;
  }
  return removed;
}

export function flowsPlugin(options: FlowsPluginOptions = {}): NodePlugin {
  return definePlugin({
    name: FLOWS_PLUGIN,
    migrations: MIGRATIONS_DIR,
    start: (ctx) => {
      const timer = setInterval(() => {
        sweepKeys(ctx.pool as unknown as Queryable, ctx.schema).catch((err) =>
          ctx.logger.warn({ err }, 'removing the lookup rows of removed flow jobs failed; retried at the next interval'),
        );
      }, options.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
      timer.unref();
      return () => clearInterval(timer);
    },
  });
}
