/**
 * One node of the cluster workload, as its own process: `node --import tsx cluster-node.ts <json>`
 * with { url, schema, nats, concurrency, pool, pollMs, jobs }. It starts a Partita node on partition
 * `bench` (queue `default`, job `noop`, as the bench's Partita system) with that queue stopped, tells
 * its parent over IPC when it is ready, starts the queue on `go` (the parent sends it to every node
 * once all are ready, so a node that took longer to start does not join a drain half done), tells
 * when its first handler started (epoch ms: the parent compares processes), and on `stop` stops the
 * node and sends every `{ n }` its handler saw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';

interface Args {
  url: string;
  schema: string;
  nats: string | undefined;
  concurrency: number;
  pool: number;
  pollMs: number;
  jobs: number;
}

export type ClusterNodeMessage =
  | { kind: 'ready' }
  | { kind: 'first'; at: number }
  | { kind: 'done'; starts: number; seen: number[]; stats: ClusterNodeStats }
  | { kind: 'error'; message: string };

/** What a node did between `go` and `stop`: its own CPU and its claim and flush statements. */
export interface ClusterNodeStats {
  cpuMs: number;
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
  const noop = defineJob<{ n?: number }, undefined>({
    type: 'noop',
    queue: 'default',
    perform: async (payload) => {
      if (starts++ === 0) send({ kind: 'first', at: Date.now() });
      const n = payload?.n;
      if (typeof n === 'number' && n >= 0 && n < seen.length) seen[n] = (seen[n] ?? 0) + 1;
      return undefined;
    },
  });
  const dataDir = mkdtempSync(join(tmpdir(), `partita-${args.schema}-node-`));
  const node = await startNode({
    dataDir,
    postgres: { connectionString: args.url, max: args.pool },
    schema: args.schema,
    nats: args.nats ? { servers: args.nats } : false,
    cluster: 'bench',
    logger,
    partitions: { bench: { queues: { default: { concurrency: args.concurrency }, backlog: { concurrency: 0 } } } },
    jobs: [noop],
    // Every node's Global state in the schema, so a node that takes the partition over finds it.
    persister: 'postgres',
    engine: { pollMs: args.pollMs },
    stoppedQueues: { bench: ['default'] },
  });
  send({ kind: 'ready' });
  let cpuAtGo = process.cpuUsage();
  process.on('message', (m: { kind?: string }) => {
    if (m.kind === 'go') {
      cpuAtGo = process.cpuUsage();
      void node.startQueues('bench', ['default']);
      return;
    }
    if (m.kind !== 'stop') return;
    const cpu = process.cpuUsage(cpuAtGo);
    void node.metrics
      .scrape()
      .then((text) => ({
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
        claims: series(text, /^partita_claim_duration_seconds_count\b/),
        emptyClaims: series(text, /^partita_claim_batch_size_bucket\{.*\ble="0"/),
        claimMs: Math.round(series(text, /^partita_claim_duration_seconds_sum\b/) * 1000),
        flushes: series(text, /^partita_flush_duration_seconds_count\b/),
        flushMs: Math.round(series(text, /^partita_flush_duration_seconds_sum\b/) * 1000),
      }))
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
        send({ kind: 'done', starts, seen: out, stats });
        process.disconnect();
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
