/**
 * Where the milliseconds of one `pubsub` go (issue 18's latency): a node with the workflows plugin
 * and a separate client in this process, N sequential pubsubs of the bench's 3-step workflow, and a
 * timestamp for every hop: each Postgres statement (start and end, by prepared-statement name or first
 * words), each NATS message on the cluster's subjects (wake-ups, hand-offs, job events, the output),
 * each step's perform. Prints the median offset from the pubsub call of every hop (hops named by
 * their order of occurrence in a run) and the median end to end.
 *
 *   npx tsx bench/wf-hops.ts [N=100] [--flush-ms 2]
 *
 * Environment, for a closer look:
 * - WF_HOPS_TURNS=1: also marks where the event loop's turn that sent each statement ended (a
 *   setImmediate behind it): how long the node's own JS kept the answers waiting after the send.
 * - WF_HOPS_DUMP=FILE: writes every run's hops with its start on the monotonic clock in µs, the clock
 *   of a .cpuprofile, so `python3 bench/tools/hops-overlay.py PROFILE FILE [RUN]` can lay them over a
 *   profile of this process (`node --import tsx --cpu-prof --cpu-prof-dir D wf-hops.ts`).
 * - WF_HOPS_KEEP=1: keeps the schema with its workflows and records (named on stderr) for timing
 *   statements on it (pgbench -M prepared); drop it afterwards.
 * - `globalThis.__wfmark(name)` is this script's mark: a line added by hand to a package's dist
 *   (`globalThis.__wfmark?.('engine onDone')`) shows up among the hops; rebuild to remove it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { connect } from '@partita/client';
import { clientBus } from '@partita/client/internal';
import { silentLogger } from '@partita/core';
import { BusBase } from '@partita/nats';
import { defineJob, startNode } from '@partita/runtime';
import { app, workflowsPlugin } from '@partita/workflows';
import { resolveNatsUrl } from './lib/nats.js';
import { adminPool, dropSchema, freshSchemaName, resolvePostgresUrl } from './lib/postgres.js';

const log = (msg: string) => process.stderr.write(`[wf-hops] ${msg}\n`);

const YAML = `
app:
  id: hops
  version: '1'
  graphs:
    - subscribes: hops.run
      publishes: hops.done
      input: { schema: { type: object, properties: { seq: { type: number } } } }
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: hops.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s2: { type: worker, topic: hops.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s3: { type: worker, topic: hops.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
        s2: [{ to: s3 }]
`;

interface Hop {
  at: number;
  name: string;
}
let hops: Hop[] | undefined;
const mark = (name: string) => hops?.push({ at: performance.now(), name });
(globalThis as { __wfmark?: unknown }).__wfmark = mark;
const turnMarks = Boolean(process.env.WF_HOPS_TURNS);
const dumpFile = process.env.WF_HOPS_DUMP;
/** performance.now() (ms) → the monotonic clock V8's profiler stamps its samples with (µs). */
const clockOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;

function keyOf(config: unknown): string {
  if (typeof config === 'string') return config.replace(/\s+/g, ' ').trim().slice(0, 30);
  const c = config as { name?: string; text?: string } | undefined;
  if (c?.name) return c.name.replace(/^partita_/, '');
  return (c?.text ?? '?')
    .replace(/--[^\n]*\n/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 30);
}

function instrumentPg(): void {
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    if (!hops) return original.apply(this, args);
    const key = keyOf(args[0]);
    mark(`sql ${key} >`);
    if (turnMarks) setImmediate(() => mark(`turn end after ${key}`));
    const last = args.length - 1;
    const cb = typeof args[last] === 'function' ? (args[last] as (err: unknown, r?: unknown) => void) : undefined;
    if (cb) {
      args[last] = (err: unknown, r?: unknown) => {
        mark(`sql ${key} <`);
        cb(err, r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args) as Promise<unknown>;
    result?.then?.(
      () => mark(`sql ${key} <`),
      () => mark(`sql ${key} < failed`),
    );
    return result;
  };
}

/** The node's publications (after a commit: the output) and every message the buses of this process decode. */
function instrumentBus(): void {
  const proto = BusBase.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const publish = proto.publish!;
  proto.publish = function (this: unknown, ...args: unknown[]) {
    if (hops) mark(`bus publish ${String(args[1])}`);
    return publish.apply(this, args);
  };
  const onMessage = proto.onMessage!;
  proto.onMessage = function (this: unknown, ...args: unknown[]) {
    if (hops) mark(`bus deliver ${(args[0] as { pattern: string }).pattern.split('.').slice(2, 4).join('.')}`);
    return onMessage.apply(this, args);
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100);
  const flushArg = process.argv.indexOf('--flush-ms');
  const flushMs = flushArg > 0 ? Number(process.argv[flushArg + 1]) : undefined;
  const url = await resolvePostgresUrl(log);
  const nats = await resolveNatsUrl('auto', log);
  if (!nats) throw new Error('wf-hops needs NATS');
  instrumentPg();
  instrumentBus();
  const admin = adminPool(url);
  const schema = freshSchemaName('partita', 'wfhops');
  // A cluster of its own: NATS is shared, and another process's node advertising under the same name would be handed these jobs.
  const cluster = `hops-${schema.replaceAll('_', '-')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'partita-wf-hops-'));
  const step = defineJob<{ seq: number }, null>({
    type: 'hops.step',
    perform() {
      mark('perform');
      return null;
    },
  });
  const pgOpts = { connectionString: url, max: 10 };
  const node = await startNode({
    postgres: pgOpts,
    schema,
    nats: { servers: nats },
    dataDir,
    cluster,
    logger: silentLogger(),
    partitions: { hops: { queues: { default: { concurrency: 32 } } } },
    jobs: [step],
    plugins: [workflowsPlugin()],
    ...(flushMs !== undefined ? { engine: { flushMs } } : {}),
  });
  const client = await connect({ postgres: pgOpts, schema, nats, cluster, logger: silentLogger() });
  try {
    const bus = clientBus(client)!;
    await bus.subscribe(`partita.${cluster}.>`, (data: { kind?: string; type?: string }, msg) => {
      const parts = msg.subject.split('.').slice(2);
      const what = data && typeof data === 'object' && 'kind' in data ? ` ${String(data.kind)}${data.type ? ':' + data.type : ''}` : '';
      mark(`nats ${parts.slice(0, 2).join('.')}${what}`);
    });
    const a = app(client, 'hops', { partition: 'hops' });
    const { version } = await a.deploy(YAML);
    await a.activate(version);
    const runs: Hop[][] = [];
    const e2e: number[] = [];
    const t0s: number[] = [];
    for (let i = 0; i < n + 10; i++) {
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
      hops = [];
      const t0 = performance.now();
      mark('pubsub');
      await a.pubsub('hops.run', { seq: i }, { timeoutMs: 10_000 });
      mark('resolved');
      const run = hops;
      hops = undefined;
      if (i < 10) continue;
      e2e.push(performance.now() - t0);
      t0s.push(t0);
      runs.push(run.map((h) => ({ at: h.at - t0, name: h.name })));
    }
    // Hops named by order of occurrence: the k-th occurrence of a name in a run.
    const byName = new Map<string, { at: number[]; order: number[] }>();
    for (const run of runs) {
      const seen = new Map<string, number>();
      run.forEach((h, idx) => {
        const k = (seen.get(h.name) ?? 0) + 1;
        seen.set(h.name, k);
        const name = `${h.name} #${k}`;
        const e = byName.get(name) ?? { at: [], order: [] };
        e.at.push(h.at);
        e.order.push(idx);
        byName.set(name, e);
      });
    }
    if (dumpFile) writeFileSync(dumpFile, JSON.stringify(runs.map((run, i) => ({ t0: t0s[i]! * 1000 + clockOffsetUs, hops: run }))));
    const rows = [...byName].map(([name, e]) => ({ name, at: median(e.at), seen: e.at.length })).sort((x, y) => x.at - y.at);
    let prev = 0;
    for (const r of rows) {
      if (r.seen < runs.length / 2) continue;
      process.stdout.write(
        `${r.at.toFixed(2).padStart(8)} ms  +${(r.at - prev).toFixed(2).padStart(6)}  ${r.name}  (${r.seen}/${runs.length})\n`,
      );
      prev = r.at;
    }
    const s = [...e2e].sort((x, y) => x - y);
    process.stdout.write(
      `end to end: p50 ${median(e2e).toFixed(2)} ms, p99 ${s[Math.floor(s.length * 0.99)]!.toFixed(2)} ms over ${e2e.length}; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}\n`,
    );
  } finally {
    await client.close();
    await node.stop();
    if (process.env.WF_HOPS_KEEP) log(`kept schema ${schema}`);
    else await dropSchema(admin, schema);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
