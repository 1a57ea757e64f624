import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { cliCluster, type CliCluster } from '../../../test/fixtures/cli.js';

const JOBS_MODULE = path.join(import.meta.dirname, 'fixtures', 'schedule-jobs.mjs');

export interface ScheduleCluster extends CliCluster {
  /** The node that holds the `schedules` lease now, if any. */
  schedulesLeader(): Promise<string | undefined>;
  /** How many occurrences have been claimed, all schedules together. */
  occurrences(): Promise<number>;
}

/**
 * The set-up the schedules cluster tests share: `partita start` nodes (test/fixtures/cli.ts'
 * cliCluster) of partition `p` running fixtures/schedule-jobs.mjs with the processes plugin as given,
 * short leases so a killed leader is replaced within seconds.
 */
export async function scheduleCluster(
  t: ExecutionContext,
  name: string,
  opts: { pollMs: number; concurrency: number; processes: Record<string, unknown> },
): Promise<ScheduleCluster> {
  const c = await cliCluster(t, name, {
    jobs: JOBS_MODULE,
    engine: { leaseMs: 2000, heartbeatMs: 500, pollMs: opts.pollMs },
    partitions: { p: { queues: { default: { concurrency: opts.concurrency } } } },
    plugins: { processes: opts.processes },
  });
  const one = async <R>(sql: string) => (await c.s.pool.query(sql)).rows[0] as R | undefined;
  return {
    ...c,
    schedulesLeader: async () =>
      (await one<{ holder: string }>(`SELECT holder FROM "${c.s.schema}".leases WHERE name = 'schedules' AND expires_at > now()`))?.holder,
    occurrences: async () => (await one<{ n: number }>(`SELECT count(*)::int AS n FROM "${c.s.schema}".schedule_occurrences`))!.n,
  };
}

/** `count` schedules `<prefix>0…` of job type `tick` in partition `p`, each firing every second (backfilled, overlapping). */
export function everySecond(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${i}`,
    cron: '* * * * * *',
    partition: 'p',
    type: 'tick',
    misfire: 'backfill',
    overlap: 'allow',
  }));
}
