/**
 * One node of the cluster workload, as its own process: `node --import tsx cluster-node.ts <json>`
 * with { url, schema, nats, concurrency, pool, pollMs, jobs, warmup, index }. It starts a Partita node
 * on partition `bench` (queue `default`, job `noop`, as the bench's Partita system) with that queue
 * stopped, then warms up untimed, as every other workload does before it measures: it enqueues
 * `warmup` no-op jobs into a queue of its own (`warm<index>`, so each process runs its own and pays
 * its own JIT warm-up there) and drains them through the same claim, worker and completion paths,
 * then stops that queue. Only then does it tell its parent over IPC that it is ready; it starts
 * `default` on `go` (the parent sends it to every node once all are ready, so a node that took
 * longer to start does not join a drain half done), tells when its first measured handler started
 * (epoch ms: the parent compares processes), and on `stop` stops the node and sends every `{ n }`
 * its handler saw, with its CPU and statement counts from `go` on (the warm-up's left out).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { createLogger, silentLogger } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { cpuSample, type CpuSample } from './cpu.js';

interface Args {
  url: string;
  schema: string;
  nats: string | undefined;
  concurrency: number;
  pool: number;
  pollMs: number;
  jobs: number;
  /** Untimed warm-up jobs this process runs before it says it is ready (0: none). */
  warmup: number;
  /** This process's number among the run's nodes: names its warm-up queue. */
  index: number;
  /**
   * The diagnostic split (PARTITA_BENCH_CLUSTER_SPLIT): the parent moved this node's share of the
   * drain into its warm-up queue, and `go` starts that queue instead of `default`.
   */
  split?: boolean;
}

export type ClusterNodeMessage =
  | { kind: 'ready' }
  | { kind: 'first'; at: number }
  | { kind: 'done'; starts: number; seen: number[]; stats: ClusterNodeStats }
  | { kind: 'error'; message: string };

/** What a node did between `go` and `stop`: its own CPU and its claim and flush statements. */
export interface ClusterNodeStats {
  cpuMs: number;
  /** CPU of this node's own Postgres backends (its pools' connections, matched through /proc; 0 without /proc). */
  pgCpuMs: number;
  /** V8 garbage collection pauses, summed (wall time: a process waiting for a core is counted). */
  gcMs: number;
  /** Event loop utilization, 0–1: near 1 with low CPU is a process that waits for a core, not for Postgres. */
  elu: number;
  claims: number;
  /** Claims that came back with no job (another node took them first, or the queue was empty). */
  emptyClaims: number;
  claimMs: number;
  flushes: number;
  flushMs: number;
}

const send = (m: ClusterNodeMessage) => process.send!(m);

/** The value of the first series of a Prometheus text scrape whose line matches (0 when none does). */
function series(text: string, line: RegExp): number {
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.slice(found.lastIndexOf(' ') + 1)) : 0;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as Args;
  const level = process.env.PARTITA_LOG_LEVEL ?? 'warn';
  const logger =
    level === 'silent'
      ? silentLogger()
      : createLogger({ name: 'partita-bench-cluster', level, transport: { target: 'pino/file', options: { destination: 2 } } });
  const seen = new Uint8Array(args.jobs);
  let starts = 0;
  let warmStarts = 0;
  let warmed: (() => void) | undefined;
  const noop = defineJob<{ n?: number }, undefined>({
    type: 'noop',
    queue: 'default',
    perform: async (payload) => {
      const n = payload?.n;
      // Warm-up jobs carry no n: they count toward the warm-up only.
      if (typeof n !== 'number') {
        if (++warmStarts === args.warmup) warmed?.();
        return undefined;
      }
      if (starts++ === 0) send({ kind: 'first', at: Date.now() });
      if (n >= 0 && n < seen.length) seen[n] = (seen[n] ?? 0) + 1;
      return undefined;
    },
  });
  const warmQueue = `warm${args.index}`;
  const dataDir = mkdtempSync(join(tmpdir(), `partita-${args.schema}-node-`));
  const node = await startNode({
    dataDir,
    postgres: { connectionString: args.url, max: args.pool },
    schema: args.schema,
    nats: args.nats ? { servers: args.nats } : false,
    cluster: 'bench',
    logger,
    partitions: {
      bench: {
        queues: { default: { concurrency: args.concurrency }, backlog: { concurrency: 0 }, [warmQueue]: { concurrency: args.concurrency } },
      },
    },
    jobs: [noop],
    // Every node's Global state in the schema, so a node that takes the partition over finds it.
    persister: 'postgres',
    engine: { pollMs: args.pollMs },
    stoppedQueues: { bench: ['default'] },
  });
  if (args.warmup > 0) {
    const done = new Promise<void>((resolve) => (warmed = resolve));
    for (let i = 0; i < args.warmup; i += 1000) {
      await node.client.enqueueMany(
        'bench',
        Array.from({ length: Math.min(1000, args.warmup - i) }, () => ({ type: 'noop', queue: warmQueue, payload: {} })),
      );
    }
    await done;
    // Returns once the warm-up's outcomes are recorded: nothing of it is left to write after `go`.
    await node.stopQueues('bench', [warmQueue]);
  }
  // The statement counts are the process's since start: the warm-up's are taken off at `go`.
  const scrapeStats = async (): Promise<Omit<ClusterNodeStats, 'cpuMs' | 'pgCpuMs' | 'gcMs' | 'elu'>> => {
    const text = await node.metrics.scrape();
    return {
      claims: series(text, /^partita_claim_duration_seconds_count\b/),
      emptyClaims: series(text, /^partita_claim_batch_size_bucket\{.*\ble="0"/),
      claimMs: series(text, /^partita_claim_duration_seconds_sum\b/) * 1000,
      flushes: series(text, /^partita_flush_duration_seconds_count\b/),
      flushMs: series(text, /^partita_flush_duration_seconds_sum\b/) * 1000,
    };
  };
  const atReady = await scrapeStats();
  send({ kind: 'ready' });
  let cpuAtGo = process.cpuUsage();
  let procAtGo: CpuSample | undefined;
  let eluAtGo = performance.eventLoopUtilization();
  let gcMs = 0;
  let measuring = false;
  const gc = new PerformanceObserver((list) => {
    if (measuring) for (const e of list.getEntries()) gcMs += e.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  process.on('message', (m: { kind?: string }) => {
    if (m.kind === 'go') {
      procAtGo = cpuSample('before');
      cpuAtGo = process.cpuUsage();
      eluAtGo = performance.eventLoopUtilization();
      measuring = true;
      void node.startQueues('bench', [args.split ? warmQueue : 'default']);
      return;
    }
    if (m.kind !== 'stop') return;
    const cpu = process.cpuUsage(cpuAtGo);
    const elu = performance.eventLoopUtilization(eluAtGo).utilization;
    measuring = false;
    gc.disconnect();
    const procAtStop = cpuSample('after');
    let pgCpuMs = 0;
    for (const [pid, ms] of procAtStop.ownBackends) pgCpuMs += ms - (procAtGo?.ownBackends.get(pid) ?? 0);
    void scrapeStats()
      .then(
        (now): ClusterNodeStats => ({
          cpuMs: Math.round((cpu.user + cpu.system) / 1000),
          pgCpuMs: Math.round(pgCpuMs),
          gcMs: Math.round(gcMs),
          elu: Math.round(elu * 1000) / 1000,
          claims: now.claims - atReady.claims,
          emptyClaims: now.emptyClaims - atReady.emptyClaims,
          claimMs: Math.round(now.claimMs - atReady.claimMs),
          flushes: now.flushes - atReady.flushes,
          flushMs: Math.round(now.flushMs - atReady.flushMs),
        }),
      )
      .then(async (stats) => {
        await node.stop({ graceMs: 10_000 });
        return stats;
      })
      .then((stats) => {
        // Each n as often as it ran: the parent sums over the nodes to find jobs run twice.
        const out: number[] = [];
        seen.forEach((c, n) => {
          for (let i = 0; i < c; i++) out.push(n);
        });
        rmSync(dataDir, { recursive: true, force: true });
        // Disconnected only once the message is written: a 100,000-job `seen` disconnected at once
        // never reached the parent, which saw the process exit (0) and failed the run.
        process.send!({ kind: 'done', starts, seen: out, stats } satisfies ClusterNodeMessage, () => process.disconnect());
      })
      .catch((err: Error) => {
        send({ kind: 'error', message: err.message });
        process.exit(1);
      });
  });
}

main().catch((err: Error) => {
  send({ kind: 'error', message: err.stack ?? err.message });
  process.exit(1);
});
