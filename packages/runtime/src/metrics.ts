/**
 * A node's Prometheus metrics (prom-client). One registry per node, so two nodes in one process
 * (tests) never share counters. Two kinds of figures:
 *
 *  - pushed by the code that knows them, through the methods below (the engine calls `claimed`
 *    after each claim, `flushed` after each group commit, the leading seat calls `globalCall` per Global request it serves, the lease
 *    keeper calls `leasesHeld`); each is one cheap prom-client call, safe on the hot path;
 *  - pulled at scrape time from the sources given to `createMetrics` (live jobs by state and queue
 *    with one read-only GROUP BY over the hot table, engine figures, bus counters). A failing
 *    source never fails the scrape: its figures keep their last values and
 *    `partita_metrics_source_errors_total{source}` counts the failure.
 *
 * Names follow the Prometheus conventions: `_seconds` for durations, `_total` for counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { COUNT_REUSE_FACTOR, LIVE_JOB_STATES, ReusedRead } from '@partita/core';
import type { BusStats } from '@partita/nats';
import type { ClientStore } from '@partita/postgres';
import type { EngineStats } from './engine/messages.js';

export type { Registry } from 'prom-client';

/** Live jobs of one partition, queue and state (`queued` | `scheduled` | `waiting` | `running`). */
export interface JobCount {
  partition: string;
  queue: string;
  state: string;
  count: number;
}

export interface MetricsSources {
  /** Live jobs by partition, queue and state; see `liveJobCounts` for the usual query. */
  jobCounts?: () => Promise<JobCount[]>;
  /** This node's engines (running and prefetched jobs per queue, processed counts). */
  engines?: () => Promise<EngineStats[]>;
  /** The bus: its counters and whether it is connected. */
  bus?: { readonly connected: boolean; stats(): BusStats };
}

export interface MetricsOptions extends MetricsSources {
  /** Register into this registry instead of a new one. */
  registry?: Registry;
  /** Labels put on every series, e.g. `{ cluster: 'prod' }`. */
  labels?: Record<string, string>;
  /** Also export prom-client's process and Node.js metrics (CPU, memory, event loop lag…). Default true. */
  defaultMetrics?: boolean;
  /** Longest a scrape-time source may take before it counts as failed. Default 2000 ms. */
  sourceTimeoutMs?: number;
  /**
   * Scrapes within this long reuse the last job counts instead of querying again. Default 1000 ms.
   * A count that took longer is reused longer still: COUNT_REUSE_FACTOR (50) times what it took.
   */
  jobCountsCacheMs?: number;
}

export type FinishedState = 'completed' | 'failed' | 'cancelled' | 'retrying' | 'released';

export interface Metrics {
  readonly registry: Registry;
  /** Prometheus text exposition of every metric (runs the scrape-time sources). */
  scrape(): Promise<string>;
  /** The content type of `scrape()`'s text, for the HTTP response. */
  readonly contentType: string;
  /** Adds or replaces scrape-time sources (e.g. once the store and bus exist). */
  attach(sources: MetricsSources): void;

  /** One claim round trip: how long it took and how many jobs it returned. */
  claimed(partition: string, durationMs: number, jobs: number): void;
  claimFailed(partition: string): void;
  /** A job a client enqueued straight into this node's hands: started here (accepted) or handed back. */
  handedOff(partition: string, queue: string, accepted: boolean): void;
  /**
   * A rate-limited queue after a claim: tokens its bucket has left (cluster-wide; null when limited
   * per key), due jobs the limit held back, and keys at their limit.
   */
  rateLimit(partition: string, queue: string, tokensLeft: number | null, held: number, limitedKeys: number): void;
  /** One group commit of outcomes: how long it took and how many outcomes it wrote. */
  flushed(partition: string, durationMs: number, outcomes: number): void;
  flushFailed(partition: string): void;
  /** Final outcomes written in a transaction with their continuations (the rest took the plain write). */
  continued?(partition: string, outcomes: number): void;
  /** Outcomes recorded (after a successful flush), by what happened to the job. */
  finished(partition: string, queue: string, state: FinishedState, count?: number): void;
  /** A call to a partition's Global (cancel, keys, pause, throttle…); `ok` false when it failed or timed out. */
  globalCall(partition: string, op: string, ok: boolean, durationMs?: number): void;
  /** Whether this node holds the partition's Global lease (runs its Global actor). */
  globalLeader(partition: string, leader: boolean): void;
  /** Job leases this node holds after a heartbeat round. */
  leasesHeld(count: number): void;
  /** A heartbeat round that failed (Postgres away). */
  heartbeatFailed(): void;
  /** Jobs requeued (or failed for good) by this node's rescue round. */
  rescued(requeued: number, failed: number): void;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const sources: MetricsSources = {};
  const timeoutMs = options.sourceTimeoutMs ?? 2000;
  const cacheMs = options.jobCountsCacheMs ?? 1000;

  // Registered last (below), so that a scrape reports the failures of its own sources.
  let sourceErrors: Counter<'source'>;
  const inflight = new Set<Promise<unknown>>();

  /** Runs a scrape-time source with a deadline; undefined when it failed (and counts the failure). */
  function pull<T>(source: string, fn: () => Promise<T>): Promise<T | undefined> {
    const p = pullNow(source, fn);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    return p;
  }

  async function pullNow<T>(source: string, fn: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${source} took over ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch {
      sourceErrors.inc({ source });
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * The live job counts: a GROUP BY over every live job, ~0.34 s of Postgres CPU at 1,000,000 queued
   * jobs. Reused for COUNT_REUSE_FACTOR times what the last count took, so counting stays a bounded
   * share of one backend however often Prometheus scrapes and however deep the queues; one count at a
   * time, which a scrape that gave up waiting (sourceTimeoutMs) still lets finish and be reused.
   * Made anew when `attach` gives another source.
   */
  let counts: ReusedRead<JobCount[]> | undefined;
  function jobCounts(source: () => Promise<JobCount[]>): Promise<JobCount[] | undefined> {
    const read = (counts ??= new ReusedRead(source, { minMs: cacheMs, factor: COUNT_REUSE_FACTOR }));
    return pull('job_counts', () => read.get());
  }

  new Gauge({
    name: 'partita_jobs',
    help: 'Live jobs (not finished) by partition, queue and state: queued, scheduled (run_at in the future), waiting (execution key), running',
    labelNames: ['partition', 'queue', 'state'],
    registers: [registry],
    async collect() {
      if (!sources.jobCounts) return;
      const rows = await jobCounts(sources.jobCounts);
      if (!rows) return; // keep the last values
      this.reset();
      // Every state of every queue seen, so a drained queue reads 0 instead of vanishing.
      const queues = new Set(rows.map((r) => `${r.partition}\u0000${r.queue}`));
      for (const key of queues) {
        const [partition, queue] = key.split('\u0000') as [string, string];
        for (const state of LIVE_JOB_STATES) this.set({ partition, queue, state }, 0);
      }
      for (const r of rows) if (r.count > 0) this.inc({ partition: r.partition, queue: r.queue, state: r.state }, r.count);
    },
  });

  // Four gauges read the engines: one call per scrape serves them all.
  let enginesMemo: { at: number; p: Promise<EngineStats[] | undefined> } | undefined;
  const engineStats = (): Promise<EngineStats[] | undefined> => {
    if (!sources.engines) return Promise.resolve(undefined);
    if (!enginesMemo || Date.now() - enginesMemo.at > 250) enginesMemo = { at: Date.now(), p: pull('engines', sources.engines) };
    return enginesMemo.p;
  };

  const engineGauge = (name: string, help: string, pick: (q: { concurrency: number; running: number; prefetched: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['partition', 'queue'],
      registers: [registry],
      async collect() {
        const stats = await engineStats();
        if (!stats) return;
        this.reset();
        for (const s of stats) for (const [queue, q] of Object.entries(s.queues)) this.set({ partition: s.partition, queue }, pick(q));
      },
    });
  engineGauge('partita_node_jobs_running', 'Jobs this node is running now', (q) => q.running);
  engineGauge('partita_node_jobs_prefetched', 'Jobs this node has claimed and not started yet', (q) => q.prefetched);
  engineGauge('partita_node_queue_concurrency', 'Configured concurrency of each queue on this node', (q) => q.concurrency);
  new Gauge({
    name: 'partita_node_throttle_ms',
    help: 'Current throttle of each partition on this node (ms before each claim; -1: claiming stopped)',
    labelNames: ['partition'],
    registers: [registry],
    async collect() {
      const stats = await engineStats();
      if (!stats) return;
      this.reset();
      for (const s of stats) this.set({ partition: s.partition }, s.throttleMs);
    },
  });

  const claimSeconds = new Histogram({
    name: 'partita_claim_duration_seconds',
    help: 'Round trip of one claim statement',
    labelNames: ['partition'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const claimBatch = new Histogram({
    name: 'partita_claim_batch_size',
    help: 'Jobs returned by one claim statement',
    labelNames: ['partition'],
    buckets: [0, ...BATCH_BUCKETS],
    registers: [registry],
  });
  const claimErrors = new Counter({
    name: 'partita_claim_errors_total',
    help: 'Claim statements that failed',
    labelNames: ['partition'],
    registers: [registry],
  });
  const handoffs = new Counter({
    name: 'partita_handoffs_total',
    help: 'Jobs clients enqueued straight into this node (it had advertised itself idle), by outcome: accepted (run here without a claim) or refused (handed back to the queue)',
    labelNames: ['partition', 'queue', 'outcome'],
    registers: [registry],
  });
  const rateTokens = new Gauge({
    name: 'partita_rate_limit_tokens',
    help: "Tokens a rate-limited queue's cluster-wide bucket had left after this node's last claim",
    labelNames: ['partition', 'queue'],
    registers: [registry],
  });
  const rateHeld = new Gauge({
    name: 'partita_rate_limit_held_jobs',
    help: "Due jobs a rate-limited queue left queued at this node's last claim while its limit was reached (up to its free slots)",
    labelNames: ['partition', 'queue'],
    registers: [registry],
  });
  const rateKeys = new Gauge({
    name: 'partita_rate_limit_keys_limited',
    help: "Keys of a rate-limited queue at their limit at this node's last claim (a queue limited as a whole is one key)",
    labelNames: ['partition', 'queue'],
    registers: [registry],
  });
  const flushSeconds = new Histogram({
    name: 'partita_flush_duration_seconds',
    help: 'Round trip of one group commit of job outcomes (completions, failures, releases, progress)',
    labelNames: ['partition'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const flushBatch = new Histogram({
    name: 'partita_flush_batch_size',
    help: 'Outcomes written by one group commit',
    labelNames: ['partition'],
    buckets: BATCH_BUCKETS,
    registers: [registry],
  });
  const flushErrors = new Counter({
    name: 'partita_flush_errors_total',
    help: 'Group commits that failed (the outcomes are kept and retried)',
    labelNames: ['partition'],
    registers: [registry],
  });
  const continuedTotal = new Counter({
    name: 'partita_continued_outcomes_total',
    help: "Final job outcomes written in one transaction with their continuations (their type's, or the one they are marked for)",
    labelNames: ['partition'],
    registers: [registry],
  });
  const finishedTotal = new Counter({
    name: 'partita_jobs_finished_total',
    help: 'Job attempts this node recorded, by what happened: completed, failed, cancelled, retrying (failed, will retry), released (handed back)',
    labelNames: ['partition', 'queue', 'state'],
    registers: [registry],
  });
  const globalCalls = new Counter({
    name: 'partita_global_calls_total',
    help: 'Requests this node served as the leading Global coordinator of a partition, by operation and outcome',
    labelNames: ['partition', 'op', 'outcome'],
    registers: [registry],
  });
  const globalSeconds = new Histogram({
    name: 'partita_global_call_duration_seconds',
    help: 'Latency of requests this node served as the leading Global coordinator of a partition',
    labelNames: ['partition', 'op'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const globalLeader = new Gauge({
    name: 'partita_global_leader',
    help: '1 when this node holds the partition Global lease and runs its Global actor',
    labelNames: ['partition'],
    registers: [registry],
  });
  const leases = new Gauge({
    name: 'partita_leases_held',
    help: 'Job leases this node held after its last heartbeat',
    registers: [registry],
  });
  const heartbeatErrors = new Counter({
    name: 'partita_heartbeat_errors_total',
    help: 'Heartbeat rounds that failed',
    registers: [registry],
  });
  const rescuedTotal = new Counter({
    name: 'partita_jobs_rescued_total',
    help: 'Jobs whose lease expired, rescued by this node: requeued, or failed after too many rescues',
    labelNames: ['outcome'],
    registers: [registry],
  });

  // Bus counters are kept by the bus itself; mirrored at scrape time.
  const busStat = (
    name: string,
    help: string,
    labelNames: string[],
    read: (s: BusStats, set: (labels: Record<string, string>, v: number) => void) => void,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        if (!sources.bus) return;
        let stats: BusStats;
        try {
          stats = sources.bus.stats();
        } catch {
          sourceErrors.inc({ source: 'bus' });
          return;
        }
        this.reset();
        read(stats, (labels, v) => this.inc(labels, Math.max(0, v)));
      },
    });
  busStat(
    'partita_bus_messages_total',
    'Bus messages: published (sent), received, delivered (reached a handler)',
    ['direction'],
    (s, set) => {
      set({ direction: 'published' }, s.published);
      set({ direction: 'received' }, s.received);
      set({ direction: 'delivered' }, s.delivered);
    },
  );
  busStat('partita_bus_dropped_total', 'Bus messages dropped, by reason', ['reason'], (s, set) => {
    for (const [reason, n] of Object.entries(s.dropped)) set({ reason }, n);
  });
  busStat('partita_bus_handler_errors_total', 'Bus handlers that threw', [], (s, set) => set({}, s.handlerErrors));
  busStat('partita_bus_reconnects_total', 'Times the bus connection came back after dropping', [], (s, set) => set({}, s.reconnects));
  new Gauge({
    name: 'partita_bus_connected',
    help: '1 while the bus (NATS or in-process) can carry messages',
    registers: [registry],
    collect() {
      if (sources.bus) this.set(sources.bus.connected ? 1 : 0);
    },
  });

  sourceErrors = new Counter({
    name: 'partita_metrics_source_errors_total',
    help: 'Scrape-time sources that failed or timed out (their figures keep the last values)',
    labelNames: ['source'],
    registers: [registry],
    async collect() {
      // The other collectors started their sources before this runs (registration order).
      await Promise.allSettled([...inflight]);
    },
  });

  const attach = (more: MetricsSources) => {
    if (more.jobCounts) {
      sources.jobCounts = more.jobCounts;
      counts = undefined;
    }
    if (more.engines) {
      sources.engines = more.engines;
      enginesMemo = undefined;
    }
    if (more.bus) sources.bus = more.bus;
  };
  attach(options);

  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    scrape: () => registry.metrics(),
    attach,
    claimed(partition, durationMs, jobs) {
      claimSeconds.observe({ partition }, durationMs / 1000);
      claimBatch.observe({ partition }, jobs);
    },
    claimFailed(partition) {
      claimErrors.inc({ partition });
    },
    handedOff(partition, queue, accepted) {
      handoffs.inc({ partition, queue, outcome: accepted ? 'accepted' : 'refused' });
    },
    rateLimit(partition, queue, tokensLeft, held, limitedKeys) {
      if (tokensLeft !== null) rateTokens.set({ partition, queue }, tokensLeft);
      rateHeld.set({ partition, queue }, held);
      rateKeys.set({ partition, queue }, limitedKeys);
    },
    flushed(partition, durationMs, outcomes) {
      flushSeconds.observe({ partition }, durationMs / 1000);
      flushBatch.observe({ partition }, outcomes);
    },
    flushFailed(partition) {
      flushErrors.inc({ partition });
    },
    continued(partition, outcomes) {
      if (outcomes > 0) continuedTotal.inc({ partition }, outcomes);
    },
    finished(partition, queue, state, count = 1) {
      if (count > 0) finishedTotal.inc({ partition, queue, state }, count);
    },
    globalCall(partition, op, ok, durationMs) {
      globalCalls.inc({ partition, op, outcome: ok ? 'ok' : 'error' });
      if (durationMs !== undefined) globalSeconds.observe({ partition, op }, durationMs / 1000);
    },
    globalLeader(partition, leader) {
      globalLeader.set({ partition }, leader ? 1 : 0);
    },
    leasesHeld(count) {
      leases.set(count);
    },
    heartbeatFailed() {
      heartbeatErrors.inc();
    },
    rescued(requeued, failed) {
      if (requeued > 0) rescuedTotal.inc({ outcome: 'requeued' }, requeued);
      if (failed > 0) rescuedTotal.inc({ outcome: 'failed' }, failed);
    },
  };
}

/** The usual `jobCounts` source: the store's live job counts (see sql/ops/live_job_counts.sql). */
export function liveJobCounts(store: Pick<ClientStore, 'liveJobCounts'>): () => Promise<JobCount[]> {
  return () => store.liveJobCounts();
}
