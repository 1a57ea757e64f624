import { ratio } from '../lib/stats.js';
import type { BenchJob } from '../systems/types.js';
import type { DrainResult } from './drain.js';
import { alongsidePlain, emitSystemRatio, versusPlain } from './throughput.js';
import type { Workload } from './types.js';

/** Distinct execution keys the jobs are spread over (round robin: job i has key i mod KEYS). */
export const KEYS = 1_000;
export const KEYS_TARGET_RATIO = 0.7;

/** Job i of the keyed run: numbered (duplicates show), key `k<i mod KEYS>` (Partita: executionKey; graphile-worker: queueName). */
const keyedJob = (i: number): BenchJob => ({ payload: { n: i }, group: 'k' + (i % KEYS) });

export const keys: Workload = {
  name: 'keys',
  description: `the throughput run with every job under one of ${KEYS.toLocaleString()} execution keys (at most one running job per key), compared with the plain run`,
  async run(ctx) {
    const { options } = ctx;
    const results = new Map<string, DrainResult>();
    const baselines = new Map<string, DrainResult>();
    for (const factory of ctx.systems) {
      const out = await alongsidePlain(ctx, factory, 'keys', {
        jobs: options.jobs,
        batch: options.batch,
        concurrency: options.concurrency,
        backlog: 0,
        job: keyedJob,
      });
      if (!out) continue;
      results.set(factory.name, out.r);
      baselines.set(factory.name, out.plain);
      ctx.emit({
        workload: 'keys',
        system: factory.name,
        ...out.r,
        keys: KEYS,
        ...versusPlain(out.r, out.plain),
        batch: options.batch,
        concurrency: options.concurrency,
        info: out.info,
      });
    }
    emitSystemRatio(ctx, 'keys', results);
    const p = results.get('partita');
    const pb = baselines.get('partita');
    if (p && pb) {
      const vs = ratio(p.processPerSec, pb.processPerSec);
      ctx.target(
        `keys: partita ≥ ${KEYS_TARGET_RATIO}× its plain run`,
        vs === null || p.timedOut ? false : vs >= KEYS_TARGET_RATIO,
        `${p.processPerSec.toLocaleString()} vs ${pb.processPerSec.toLocaleString()} jobs/s (${vs}×)${p.duplicates ? `; ${p.duplicates} duplicates` : ''}`,
      );
    }
  },
};
