import type pg from 'pg';
import type { Probe } from '../lib/probe.js';
import type { BenchOptions } from '../lib/options.js';

/** One job as a workload describes it; each system maps it onto its own enqueue call. */
export interface BenchJob {
  payload: Record<string, unknown>;
  /**
   * Jobs of one group run one at a time, in order (Partita: execution key; graphile-worker: named
   * queue). For workloads that need it; the spec's workloads leave it unset.
   */
  group?: string;
}

/** A system's id for a job it enqueued (uuid, bigint as string…), used to see when it is finished. */
export type JobRef = string;

/** How an enqueue reaches the worker in a latency sample: pushed (NOTIFY, local wake) or found by polling. */
export interface LatencyChannel {
  name: string;
  wake: 'push' | 'poll';
  note: string;
  enqueue(job: BenchJob): Promise<void>;
}

export interface BacklogStats {
  insertMs: number;
  vacuumAnalyzeMs: number;
  how: string;
}

/**
 * One job system under test, in one fresh schema. Lifecycle: setup → (startWorkers … stopWorkers)* →
 * teardown; the harness never runs two systems at once.
 */
export interface BenchSystem {
  readonly name: string;
  readonly schema: string;
  /** Versions and settings, printed with every result line. */
  info(): Record<string, unknown>;
  /** Creates the schema (migrations) and opens the enqueue client. Untimed. */
  setup(): Promise<void>;
  /** Enqueues through the system's client API (graphile: WorkerUtils; Partita: connect()). */
  enqueueMany(jobs: BenchJob[]): Promise<JobRef[]>;
  /** Starts a worker pool / node running the probe's no-op handler at this concurrency. */
  startWorkers(options: { concurrency: number }): Promise<void>;
  /** Stops the workers gracefully (completions flushed). */
  stopWorkers(): Promise<void>;
  /** Which of these jobs are not finished yet, as the database sees them. */
  unfinished(refs: JobRef[]): Promise<JobRef[]>;
  /** Ways a single enqueue can reach a running worker; valid while workers run. */
  latencyChannels(): LatencyChannel[];
  /** Inserts `count` queued jobs the draining workers will not run, straight in SQL. Untimed by the workload. */
  insertBacklog(count: number): Promise<BacklogStats>;
  /**
   * Inserts `count` jobs into the drained queue, all of one execution key (graphile-worker: named
   * queue) whose holder is running and never finishes, straight in SQL; then VACUUM (ANALYZE).
   * None of them may run while the holder runs. Untimed by the workload.
   */
  insertHotKey?(count: number): Promise<BacklogStats>;
  /** How many of the hot-key jobs are still queued (all of them, unless one ran). */
  hotKeyQueued?(): Promise<number>;
  /** VACUUM (ANALYZE) of the system's job table(s); untimed housekeeping between runs. */
  vacuum(): Promise<void>;
  /** EXPLAIN (ANALYZE, BUFFERS) of the system's claim query as run by its workers now. */
  explainClaim?(): Promise<string>;
  /** Stops anything still running and closes pools; the harness drops the schema. */
  teardown(): Promise<void>;
}

export interface SystemContext {
  url: string;
  /** NATS server for systems that use one (Partita); undefined: none. */
  nats: string | undefined;
  schema: string;
  options: BenchOptions;
  probe: Probe;
  admin: pg.Pool;
  log: (msg: string) => void;
}

export interface SystemFactory {
  readonly name: string;
  create(ctx: SystemContext): Promise<BenchSystem>;
}
