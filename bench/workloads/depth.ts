import { ratio } from '../lib/stats.js';
import { alternatingDrains, type DrainResult } from './drain.js';
import { emitSystemRatio, versusPlain } from './throughput.js';
import type { Workload } from './types.js';

export const DEPTH_TOLERANCE = 0.1;

function executionMs(plan: string | undefined): number | undefined {
  const m = plan ? /Execution Time: ([\d.]+) ms/.exec(plan) : null;
  return m ? Number(m[1]) : undefined;
}

export const depth: Workload = {
  name: 'depth',
  description: 'the throughput run again with a large backlog already queued in another queue of the partition',
  async run(ctx) {
    const { options } = ctx;
    const results = new Map<string, DrainResult>();
    const baselines = new Map<string, DrainResult>();
    for (const factory of ctx.systems) {
      // The plain baseline runs in its own schema, its drains alternating with the backlog's (plain,
      // depth, then depth, plain, …): run first and apart, as the session's throughput run, the plain
      // drains met a process the JIT had not settled yet and other minutes of the machine, and the
      // ratio swung 0.90-1.74 between sessions with the two runs' statements alike (bench/README.md,
      // eighteenth session, branch wip-depth).
      const out = await ctx.withSystem(factory, 'depth-plain', (plainSystem) =>
        ctx.withSystem(factory, 'depth', async (system) => {
          ctx.log(`depth: ${system.name}, alternating with its plain run…`);
          const shape = { jobs: options.jobs, batch: options.batch, concurrency: options.concurrency };
          const [plain, r] = await alternatingDrains(
            ctx,
            { system: plainSystem, plan: { ...shape, backlog: 0 } },
            { system, plan: { ...shape, backlog: options.backlog, explain: true } },
          );
          return { plain, r, info: system.info() };
        }),
      );
      if (!out) continue;
      const { explain, ...r } = out.r;
      if (explain)
        ctx.log(
          `depth: ${factory.name} claim query, EXPLAIN (ANALYZE, BUFFERS) with the backlog and ${options.jobs} jobs queued:\n${explain}`,
        );
      results.set(factory.name, out.r);
      baselines.set(factory.name, out.plain);
      const base = {
        processPerSec: out.plain.processPerSec,
        enqueuePerSec: out.plain.enqueuePerSec,
        from: 'plain runs alternating with these',
      };
      ctx.emit({
        workload: 'depth',
        system: factory.name,
        ...r,
        ...(explain ? { claimExplainMs: executionMs(explain) } : {}),
        ...versusPlain(r, base),
        // Each depth run over the plain run next to it, run by run.
        pairs: r.runs.map((d, i) => ratio(d.processPerSec, out.plain.runs[i]?.processPerSec ?? 0)),
        plainRuns: out.plain.runs,
        batch: options.batch,
        concurrency: options.concurrency,
        info: out.info,
      });
    }
    emitSystemRatio(ctx, 'depth', results);
    const p = results.get('partita');
    const pb = baselines.get('partita');
    if (p && pb) {
      const vs = ratio(p.processPerSec, pb.processPerSec);
      ctx.target(
        `depth: partita process within ${DEPTH_TOLERANCE * 100} % of the plain run`,
        vs === null || p.timedOut ? false : vs >= 1 - DEPTH_TOLERANCE,
        `${p.processPerSec.toLocaleString()} vs ${pb.processPerSec.toLocaleString()} jobs/s (${vs}×)`,
      );
    }
  },
};
