/**
 * One node of the schedules bench (schedules-idle.ts): a node with the processes plugin whose
 * queries are counted by kind. Every second it prints a JSON line with the CPU time it used and the
 * queries it made in that second: schedules' own (the plugin's schedule and occurrence statements,
 * LISTEN), leases, and the rest.
 * Env: PG_URL, SCHEMA, NODE_ID.
 */
import pg from 'pg';
import { defineJob, startNode } from '@partita/runtime';
import { processesPlugin } from '@partita/processes';

const counts = { sched: 0, fire: 0, lease: 0, other: 0 };
// The plugin names its statements proc_<op>_<digest>; these ops are the schedules' (sql/ops).
const SCHEDULE_STATEMENT = /^proc_(schedules?|occurrences?|db_now|jobs_queues)_/;
const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const config = args[0] as string | { name?: string; text?: string };
  const key = typeof config === 'string' ? config : (config?.name ?? config?.text ?? '');
  if (/^proc_schedules?_lock/.test(key)) counts.fire++;
  if (SCHEDULE_STATEMENT.test(key) || /^(UN)?LISTEN/.test(key)) counts.sched++;
  else if (/lease/.test(key)) counts.lease++;
  else counts.other++;
  return original.apply(this, args);
};

const env = (name: string) =>
  process.env[name] ??
  (() => {
    throw new Error(`schedules-node needs ${name}`);
  })();
const schema = env('SCHEMA');
const node = await startNode({
  nodeId: env('NODE_ID'),
  cluster: schema,
  postgres: { connectionString: env('PG_URL'), max: 6 },
  schema,
  nats: false,
  persister: 'postgres',
  // The scheduled jobs land on a queue no node runs: the bench measures the scheduler, not the jobs.
  partitions: { p: { queues: { default: { concurrency: 1 }, sched: { concurrency: 0 } } } },
  jobs: [defineJob({ type: 'noop', queue: 'sched', perform: () => null })],
  plugins: [processesPlugin()],
});
let last = { ...counts };
let lastCpu = process.cpuUsage();
let lastAt = Date.now();
setInterval(() => {
  const now = Date.now();
  const dtMs = now - lastAt;
  lastAt = now;
  const cpu = process.cpuUsage(lastCpu);
  lastCpu = process.cpuUsage();
  const delta = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v - last[k as keyof typeof counts]]));
  last = { ...counts };
  process.stdout.write(JSON.stringify({ t: now, dtMs, cpuMs: (cpu.user + cpu.system) / 1000, ...delta }) + '\n');
}, 1000).unref();
process.on('SIGTERM', () => void node.stop({ graceMs: 500 }).then(() => process.exit(0)));
process.stderr.write(`ready ${env('NODE_ID')}\n`);
