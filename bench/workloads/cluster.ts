import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClusterNodeMessage, ClusterNodeStats } from '../lib/cluster-node.js';
import { ratio, round } from '../lib/stats.js';
import type { BenchJob, BenchSystem } from '../systems/types.js';
import { waitFinished, warmUp } from './drain.js';
import type { Workload, WorkloadContext } from './types.js';

/** The cluster run drains this many times --jobs (100,000 at the default 20,000). */
export const CLUSTER_JOBS_FACTOR = 5;
export const CLUSTER_NODES = 3;
/** Three nodes must drain at least this fraction of one node's rate. */
export const CLUSTER_TARGET_RATIO = 1;

/**
 * A diagnostic, off by default: PARTITA_BENCH_CLUSTER_SPLIT=1 gives each of the several nodes a
 * queue of its own (a third of the jobs, moved there after the enqueue), so the nodes share the
 * database, the machine and the partition but no queue rows, index pages or heap pages. The
 * difference between that and the shared queue is what the claimers' sharing costs.
 */
const CLUSTER_SPLIT = Boolean(process.env.PARTITA_BENCH_CLUSTER_SPLIT);

const NODE_SCRIPT = fileURLToPath(new URL('../lib/cluster-node.ts', import.meta.url));

interface ClusterRun {
  nodes: number;
  jobs: number;
  enqueueMs: number;
  /** First handler start on any node → the database shows every job finished. */
  processMs: number;
  processPerSec: number;
  /** Handler starts per node. */
  perNode: number[];
  /**
   * Per node, ms from the first handler start on any node to its own first (null: it ran none). Cold
   * node processes start on a busy machine at different times; a node that joins late runs fewer jobs.
   */
  firstStartMs: (number | null)[];
  duplicates: number;
  missing: number;
  timedOut: boolean;
  /** The node processes' own CPU from `go` to `stop`, summed, per 1,000 jobs. */
  nodeCpuMsPerThousandJobs: number;
  /** Their own Postgres backends' CPU over the same span, summed, per 1,000 jobs (0 without /proc). */
  postgresCpuMsPerThousandJobs: number;
  /** Per node: CPU and its claim and flush statements over the run. */
  nodeStats: ClusterNodeStats[];
  /**
   * jobs_claim_idx over the drain (pg_stat_user_indexes): its scans, index entries read per job
   * (dead ones not yet marked so, and rows other claims hold locked, are read as well), rows fetched
   * per job, and its blocks per job.
   */
  claimIndex: { scans: number; readPerJob: number; fetchPerJob: number; blocksPerJob: number };
  /** Blocks of the jobs heap per job (hit or read; every statement's, not only the claim's). */
  heapBlocksPerJob: number;
}

interface Spawned {
  child: ChildProcess;
  ready: Promise<void>;
  first: Promise<number>;
  done: Promise<{ starts: number; seen: number[]; stats: ClusterNodeStats }>;
}

function spawnClusterNode(args: Record<string, unknown>): Spawned {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = fork(NODE_SCRIPT, [JSON.stringify(args)], { execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const failed = new Promise<never>((_, reject) => {
    child.on('message', (m: ClusterNodeMessage) => m.kind === 'error' && reject(new Error(`cluster node: ${m.message}`)));
    child.on('exit', (code) => reject(new Error(`cluster node exited (${code})`)));
  });
  failed.catch(() => undefined);
  const on = <K extends ClusterNodeMessage['kind']>(kind: K) =>
    Promise.race([
      new Promise<Extract<ClusterNodeMessage, { kind: K }>>((resolve) => {
        const l = (m: ClusterNodeMessage) => {
          if (m.kind === kind) {
            child.off('message', l);
            resolve(m as Extract<ClusterNodeMessage, { kind: K }>);
          }
        };
        child.on('message', l);
      }),
      failed,
    ]);
  const ready = on('ready').then(() => undefined);
  const first = on('first').then((m) => m.at);
  const done = on('done').then((m) => ({ starts: m.starts, seen: m.seen, stats: m.stats }));
  for (const p of [ready, first, done]) p.catch(() => undefined);
  return { child, ready, first, done };
}

/**
 * Starts `nodes` node processes with the measured queue stopped and lets each warm up, then
 * enqueues `jobs` numbered jobs, settles the database and starts every node's queue together.
 */
async function drainWith(ctx: WorkloadContext, system: BenchSystem, nodes: number, jobs: number): Promise<ClusterRun> {
  const { options } = ctx;
  const args = {
    url: ctx.url,
    schema: system.schema,
    nats: ctx.nats,
    concurrency: options.concurrency,
    pool: options.pool,
    pollMs: options.pollMs,
    jobs,
  };
  // Each process warms up through a queue of its own before it says it is ready, on as many jobs as
  // its share of the drain (at least --warmup): a process is in steady state when measured, as a
  // long-running node is. With --warmup alone (2,000), each of three processes still paid its JIT
  // warm-up inside a drain a third as long as one process's: at 20,000 jobs their CPU summed to
  // 27 ms per 1,000 jobs against one process's 14; warmed on their share, 17 against 10.
  const warmup = Math.max(options.warmup, Math.ceil(jobs / nodes));
  const split = CLUSTER_SPLIT && nodes > 1;
  const spawned = Array.from({ length: nodes }, (_, index) => spawnClusterNode({ ...args, warmup, index, split }));
  let enqueueMs = 0;
  const refs: string[] = [];
  let timedOut = false;
  let processMs = 0;
  let statsAtGo: IndexStats | undefined;
  try {
    // Every node starts with its queue stopped and starts it only once all are up: cold processes
    // on a busy machine come up seconds apart, and one that joined late would find the drain half done.
    await Promise.all(spawned.map((s) => s.ready));
    // Enqueued once the warm-ups are over, and the database settled after both: the VACUUM and the
    // CHECKPOINT then come after the warm-up's rows and WAL, which are not left to the drain.
    const t0 = performance.now();
    for (let i = 0; i < jobs; i += options.batch) {
      const batch: BenchJob[] = Array.from({ length: Math.min(options.batch, jobs - i) }, (_, k) => ({ payload: { n: i + k } }));
      refs.push(...(await system.enqueueMany(batch)));
    }
    enqueueMs = performance.now() - t0;
    if (split)
      // Node i's share is the i-th run of consecutive jobs, so the shares sit on pages of their own.
      await ctx.admin.query(
        `UPDATE ${system.schema}.jobs SET queue = 'warm' || floor((payload->>'n')::int * ${nodes} / ${jobs})::int WHERE queue = 'default' AND partition = 'bench'`,
      );
    await system.vacuum();
    await ctx.admin.query('CHECKPOINT').catch(() => undefined);
    statsAtGo = await indexStats(ctx, system.schema);
    for (const s of spawned) s.child.send({ kind: 'go' });
    const deadline = performance.now() + options.drainTimeoutS * 1000;
    // The first start on any node.
    const first = await Promise.race(spawned.map((s) => s.first));
    const firstPerf = performance.now() - (Date.now() - first);
    const end = await waitFinished(system, refs, deadline);
    timedOut = end === undefined;
    processMs = (end ?? performance.now()) - firstPerf;
  } finally {
    for (const s of spawned) s.child.send({ kind: 'stop' });
  }
  const outs = await Promise.all(spawned.map((s) => s.done));
  // A backend flushes its statistics as it exits; the nodes have closed their pools by now, and
  // their backends' exits follow within moments.
  await new Promise((r) => setTimeout(r, 300));
  const statsAtEnd = await indexStats(ctx, system.schema);
  const perJob = (k: keyof IndexStats) => (statsAtGo ? round((statsAtEnd[k] - statsAtGo[k]) / jobs) : 0);
  // Every node's first start, known by now (a node that ran nothing never sends one).
  const firsts = await Promise.all(spawned.map((s, i) => (outs[i]!.starts > 0 ? s.first : Promise.resolve(null)).catch(() => null)));
  const earliest = Math.min(...firsts.filter((f): f is number => f !== null));
  const firstStartMs = firsts.map((f) => (f === null ? null : f - earliest));
  const counts = new Uint32Array(jobs);
  for (const o of outs) for (const n of o.seen) counts[n]!++;
  let duplicates = 0;
  let missing = 0;
  for (const c of counts) {
    if (c === 0) missing++;
    else duplicates += c - 1;
  }
  return {
    nodes,
    jobs,
    enqueueMs: round(enqueueMs),
    processMs: round(processMs),
    processPerSec: round((jobs - (timedOut ? missing : 0)) / (processMs / 1000)),
    perNode: outs.map((o) => o.starts),
    firstStartMs,
    duplicates,
    missing,
    timedOut,
    nodeCpuMsPerThousandJobs: round(outs.reduce((n, o) => n + o.stats.cpuMs, 0) / (jobs / 1000)),
    postgresCpuMsPerThousandJobs: round(outs.reduce((n, o) => n + o.stats.pgCpuMs, 0) / (jobs / 1000)),
    nodeStats: outs.map((o) => o.stats),
    claimIndex: { scans: perJob('scans'), readPerJob: perJob('read'), fetchPerJob: perJob('fetch'), blocksPerJob: perJob('idxBlocks') },
    heapBlocksPerJob: perJob('heapBlocks'),
  };
}

interface IndexStats {
  scans: number;
  read: number;
  fetch: number;
  idxBlocks: number;
  heapBlocks: number;
}

/** The claim index's and the jobs heap's counters (pg_stat_user_indexes, pg_statio_user_tables) for the schema. */
async function indexStats(ctx: WorkloadContext, schema: string): Promise<IndexStats> {
  const { rows } = await ctx.admin.query<{ scans: string; read: string; fetch: string; idx_blocks: string; heap_blocks: string }>(
    `SELECT i.idx_scan AS scans, i.idx_tup_read AS read, i.idx_tup_fetch AS fetch,
            io.idx_blks_hit + io.idx_blks_read AS idx_blocks, t.heap_blks_hit + t.heap_blks_read AS heap_blocks
     FROM pg_stat_user_indexes i
     JOIN pg_statio_user_indexes io USING (indexrelid)
     JOIN pg_statio_user_tables t ON t.relid = i.relid
     WHERE i.schemaname = $1 AND i.indexrelname = 'jobs_claim_idx'`,
    [schema],
  );
  const r = rows[0];
  return {
    scans: Number(r?.scans ?? 0),
    read: Number(r?.read ?? 0),
    fetch: Number(r?.fetch ?? 0),
    idxBlocks: Number(r?.idx_blocks ?? 0),
    heapBlocks: Number(r?.heap_blocks ?? 0),
  };
}

/**
 * Partita only: N node processes (real processes, each its own pools and, with NATS, its own
 * connection) on one partition drain the same queue, against one node process draining it alone.
 * graphile-worker is left out: its runners in separate processes are the same experiment, but its
 * bench system runs in this process (see the README).
 */
export const cluster: Workload = {
  name: 'cluster',
  description: `${CLUSTER_NODES} node processes on one partition drain ${CLUSTER_JOBS_FACTOR}× --jobs jobs, against one node process alone (Partita only)`,
  async run(ctx) {
    const factory = ctx.systems.find((s) => s.name === 'partita');
    if (!factory) {
      ctx.log('cluster: Partita not selected; skipped');
      return;
    }
    const jobs = ctx.options.jobs * CLUSTER_JOBS_FACTOR;
    const out = await ctx.withSystem(factory, 'cluster', async (system) => {
      // The bench's own node, once: it declares the partition and queues (an enqueue to an
      // undeclared one is refused) and warms up the database side.
      await warmUp(ctx, system, ctx.options.warmup, ctx.options.batch, ctx.options.concurrency);
      const single: ClusterRun[] = [];
      const many: ClusterRun[] = [];
      for (let r = 0; r < ctx.options.repeat; r++) {
        for (const [n, into] of [
          [1, single],
          [CLUSTER_NODES, many],
        ] as const) {
          ctx.log(
            `cluster: ${n} node process${n > 1 ? 'es' : ''}, ${jobs.toLocaleString()} jobs${CLUSTER_SPLIT && n > 1 ? ', a queue each (PARTITA_BENCH_CLUSTER_SPLIT)' : ''} (run ${r + 1}/${ctx.options.repeat})…`,
          );
          const run = await drainWith(ctx, system, n, jobs);
          ctx.log(
            `cluster: ${n} node(s): ${run.processPerSec.toLocaleString()} jobs/s, per node ${run.perNode.join('/')} (first starts +${run.firstStartMs.map((f) => f ?? '–').join('/+')} ms); node CPU ${run.nodeCpuMsPerThousandJobs} ms per 1k jobs (${run.nodeStats.map((s) => s.cpuMs).join('/')} ms; GC ${run.nodeStats.map((s) => s.gcMs).join('/')} ms; event loop busy ${run.nodeStats.map((s) => `${Math.round(s.elu * 100)}%`).join('/')}); their Postgres backends' CPU ${run.postgresCpuMsPerThousandJobs} ms per 1k jobs (${run.nodeStats.map((s) => s.pgCpuMs).join('/')} ms); claim index ${run.claimIndex.readPerJob} entries / ${run.claimIndex.blocksPerJob} blocks per job, heap ${run.heapBlocksPerJob} blocks per job; claims ${run.nodeStats.map((s) => `${s.claims} (${s.emptyClaims} empty, ${s.claims ? round(s.claimMs / s.claims) : 0} ms avg)`).join('/')}; flushes ${run.nodeStats.map((s) => `${s.flushes} (${s.flushes ? round(s.flushMs / s.flushes) : 0} ms avg)`).join('/')}${run.duplicates ? `, ${run.duplicates} duplicates` : ''}${run.timedOut ? ' (TIMED OUT)' : ''}`,
          );
          into.push(run);
          if (run.timedOut) break;
        }
      }
      return { single, many, info: system.info() };
    });
    if (!out) return;
    const median = (runs: ClusterRun[]) => [...runs].sort((a, b) => a.processPerSec - b.processPerSec)[Math.floor((runs.length - 1) / 2)];
    const one = median(out.single);
    const three = median(out.many);
    const vs = ratio(three?.processPerSec, one?.processPerSec);
    ctx.emit({
      workload: 'cluster',
      system: 'partita',
      jobs,
      nodes: CLUSTER_NODES,
      ...(CLUSTER_SPLIT ? { split: true } : {}),
      single: one,
      cluster: three,
      vsSingle: vs,
      runs: { single: out.single, cluster: out.many },
      concurrency: ctx.options.concurrency,
      info: out.info,
    });
    const bad = [...out.single, ...out.many].some((r) => r.duplicates > 0 || r.missing > 0 || r.timedOut);
    if (CLUSTER_SPLIT) {
      // Queues of their own are not the target's shared queue: reported, not judged.
      ctx.log(
        `cluster (split): ${three?.processPerSec.toLocaleString()} vs ${one?.processPerSec.toLocaleString()} jobs/s (${vs}×)${bad ? '; duplicates, missing jobs or a timeout' : ''}`,
      );
      return;
    }
    ctx.target(
      `cluster: ${CLUSTER_NODES} node processes ≥ ${CLUSTER_TARGET_RATIO}× one`,
      vs === null || bad ? false : vs >= CLUSTER_TARGET_RATIO,
      `${three?.processPerSec.toLocaleString()} vs ${one?.processPerSec.toLocaleString()} jobs/s (${vs}×)${bad ? '; duplicates, missing jobs or a timeout' : ''}`,
    );
  },
};
