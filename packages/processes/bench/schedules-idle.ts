/**
 * The figure of issue 15: what 10,000 schedules at a one-minute frequency cost when nothing fires.
 * Starts NODES node processes (schedules-node.ts), inserts SCHEDULES schedules firing at second 0 of
 * every minute (one bulk INSERT, the rows schedules(client).add would write), runs DURATION_S
 * seconds and reports, per node, CPU % of one core and queries per second over the seconds in which
 * no schedule fired anywhere (the quiet part of each minute), and the same over the firing seconds.
 *
 *   npx tsx packages/processes/bench/schedules-idle.ts            (SCHEDULES=10000 NODES=3 DURATION_S=150)
 *
 * Needs Postgres at PG_URL (default postgres://postgres@127.0.0.1:5432/postgres). The machine's load
 * (uptime) is printed with the result: the CPU figures mean little on a loaded machine.
 */
import { spawn } from 'node:child_process';
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCHEDULES = Number(process.env.SCHEDULES ?? 10_000);
const NODES = Number(process.env.NODES ?? 3);
const DURATION_S = Number(process.env.DURATION_S ?? 150);
const schema = `bench_sched_${randomBytes(4).toString('hex')}`;
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Sample {
  node: string;
  t: number;
  /** The sample's interval (a busy event loop stretches it). */
  dtMs: number;
  cpuMs: number;
  sched: number;
  fire: number;
  lease: number;
  other: number;
}

const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
await pool.query(`CREATE SCHEMA "${schema}"`);
const samples: Sample[] = [];
const children = [...Array(NODES).keys()].map((i) => {
  const id = `bench-${i + 1}`;
  const child = spawn(process.execPath, ['--import', tsx, path.join(import.meta.dirname, 'schedules-node.ts')], {
    env: { ...process.env, PG_URL, SCHEMA: schema, NODE_ID: id, PARTITA_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        samples.push({ node: id, ...(JSON.parse(line) as Omit<Sample, 'node'>) });
      } catch {
        // a log line
      }
    }
  });
  const ready = new Promise<void>((resolve) => child.stderr.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()));
  return { id, child, ready };
});
try {
  await Promise.all(children.map((c) => c.ready));
  await pool.query(
    `INSERT INTO "${schema}".schedules (id, cron, partition, queue, type, overlap, source, next_fire_at)
     SELECT 'bench-' || i, '0 * * * * *', 'p', 'sched', 'noop', 'allow', 'api', date_trunc('minute', now()) + interval '1 minute'
     FROM generate_series(1, $1) AS i`,
    [SCHEDULES],
  );
  await pool.query(`NOTIFY "partita_schedules_${schema}"`);
  const started = Date.now();
  process.stderr.write(`${SCHEDULES} schedules, ${NODES} nodes, ${DURATION_S} s (schema ${schema})\n`);
  await new Promise((r) => setTimeout(r, DURATION_S * 1000));
  const leader = (await pool.query(`SELECT holder FROM "${schema}".leases WHERE name = 'schedules'`)).rows[0]?.holder as string;
  const fired = (await pool.query(`SELECT count(*)::int AS n FROM "${schema}".schedule_occurrences`)).rows[0].n as number;
  const window = samples.filter((s) => s.t >= started + 5000);
  const second = (s: Sample) => Math.floor(s.t / 1000);
  const firing = new Set<number>();
  for (const s of window.filter((x) => x.fire > 0))
    for (let at = s.t - s.dtMs; at <= s.t + 1000; at += 500) firing.add(Math.floor(at / 1000));
  const report = (rows: Sample[]) => {
    const sum = (k: keyof Sample) => rows.reduce((n, r) => n + (r[k] as number), 0);
    const secs = sum('dtMs') / 1000 || 1;
    return {
      seconds: +secs.toFixed(1),
      cpuPct: +((sum('cpuMs') / (secs * 1000)) * 100).toFixed(2),
      schedQps: +(sum('sched') / secs).toFixed(3),
      leaseQps: +(sum('lease') / secs).toFixed(3),
      otherQps: +(sum('other') / secs).toFixed(3),
    };
  };
  // How long each minute's 10,000 occurrences took to fire: from the fire time to the last claim.
  const minutes = (
    await pool.query(
      `SELECT fire_at, count(*)::int AS n, extract(epoch FROM max(claimed_at) - fire_at) AS spread_s
       FROM "${schema}".schedule_occurrences GROUP BY fire_at ORDER BY fire_at`,
    )
  ).rows.map((r) => ({ fireAt: r.fire_at.toISOString(), fired: r.n, lastClaimAfterS: +Number(r.spread_s).toFixed(1) }));
  const result = {
    schedules: SCHEDULES,
    nodes: NODES,
    durationS: DURATION_S,
    occurrencesFired: fired,
    firingSeconds: firing.size,
    minutes,
    leader,
    perNode: Object.fromEntries(
      children.map(({ id }) => {
        const mine = window.filter((s) => s.node === id);
        return [
          id + (id === leader ? ' (leader)' : ''),
          { quiet: report(mine.filter((s) => !firing.has(second(s)))), firing: report(mine.filter((s) => firing.has(second(s)))) },
        ];
      }),
    ),
    uptime: execSync('uptime').toString().trim(),
    cores: (await import('node:os')).cpus().length,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} finally {
  for (const c of children) c.child.kill('SIGKILL');
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await pool.end();
}
