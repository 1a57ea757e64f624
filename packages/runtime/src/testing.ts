/**
 * `@partita/runtime/testing`: helpers for testing your own jobs.
 *
 * - `runJob(definition, payload)` runs one attempt of a job in this process through the worker a
 *   node uses (same JobContext, timeout, abort and result checks), without Postgres.
 * - `drain(node | client)` waits until every job queued (and due) in a scope has finished and
 *   returns their outcomes.
 * - `testNode({ jobs })` starts a node on a fresh schema with fast settings, for a test.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSystem, type Behavior } from '@partita/actors';
import {
  CONFIG_DEFAULTS,
  TimeoutError,
  ValidationError,
  createLogger,
  isFinishedJobState,
  toJsonStrict,
  uuidv7,
  type JobError,
  type JobRecord,
  type JobState,
  type Logger,
} from '@partita/core';
import { Client, clientStore } from '@partita/client/internal';
import { JobStore, type ClaimedJob, type ClientStore, type PgOptions } from '@partita/postgres';
import type { JobDefinition, ResolvedJobDefinition } from './define.js';
import type { EngineMsg } from './engine/messages.js';
import { startNode, type NodeOptions, type PartitaNode } from './node.js';
import { workerBehavior, type WorkerMsg, type WorkerOutcome } from './worker.js';

// ── runJob ─────────────────────────────────────────────────────────────────────────────────

export interface RunJobOptions {
  /** ctx.attempt (default 1): test what a retry does differently. */
  attempt?: number;
  /** Aborting it aborts the run as a cancel would: ctx.signal fires with its reason, and the attempt fails. */
  signal?: AbortSignal;
  /** Overrides the definition's timeoutMs (0: none). */
  timeoutMs?: number;
  /** ctx.partition (default `default`). */
  partition?: string;
  /** ctx.id (default a new job id). */
  id?: string;
  /** Lowest level kept in `logs` (default `trace`: everything). */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
}

/** A line perform (or the worker) logged through ctx.logger. */
export interface LogEntry {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface RunJobOutcome<R = unknown> {
  ok: boolean;
  /** On success: the result in the form it is stored and returned by `client.result()` (JSON). */
  result?: R;
  /** On failure: what perform threw or rejected with, the TimeoutError, or the abort reason. */
  error?: unknown;
  /** Every value perform reported with ctx.progress, in order, in stored (JSON) form. */
  progress: unknown[];
  logs: LogEntry[];
}

/**
 * Runs one attempt of `definition` with `payload`, in this process, through the same worker a node
 * runs jobs with: a real JobContext (id, partition, queue, attempt, signal, logger, progress),
 * the definition's timeout, abort through `signal`, and the same checks of the result. The
 * payload goes through JSON first, as it does through Postgres, so perform sees what it would
 * see in production (a Date arrives as a string; a NaN is refused as at enqueue).
 * onSuccess/onError/onFailed/onCancel are not called: they follow the outcome being recorded.
 */
export async function runJob<P, R>(definition: JobDefinition<P, R>, payload: P, options: RunJobOptions = {}): Promise<RunJobOutcome<R>> {
  if (typeof definition?.perform !== 'function' || typeof definition.type !== 'string') {
    throw new ValidationError('is not a job definition; create it with defineJob({ type, perform })', 'definition');
  }
  const attempt = options.attempt ?? 1;
  if (!Number.isInteger(attempt) || attempt < 1) throw new ValidationError('must be a whole number ≥ 1', 'attempt');
  const timeoutMs = options.timeoutMs ?? definition.timeoutMs ?? 0;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0)
    throw new ValidationError('must be a whole number of milliseconds ≥ 0 (0: none)', 'timeoutMs');
  const resolved: ResolvedJobDefinition<P, R> = {
    ...definition,
    maxAttempts: definition.maxAttempts ?? Math.max(1, attempt),
    backoff: definition.backoff ?? CONFIG_DEFAULTS.defaults.backoff,
  };
  const stored = JSON.parse(toJsonStrict(payload, 'payload').json) as unknown;
  const job: ClaimedJob = {
    id: options.id ?? uuidv7(),
    partition: options.partition ?? 'default',
    queue: definition.queue ?? 'default',
    type: definition.type,
    payload: stored,
    priority: 0,
    attempt,
    maxAttempts: resolved.maxAttempts,
    timeoutMs: timeoutMs > 0 ? timeoutMs : null,
    queueKey: null,
    executionKey: null,
    cancelRequested: false,
  };

  const logs: LogEntry[] = [];
  const logger = createLogger({ level: options.logLevel ?? 'trace' }, { write: (line: string) => void logs.push(logEntry(line)) });
  const progress: unknown[] = [];
  let finish!: (outcome: WorkerOutcome) => void;
  const finished = new Promise<WorkerOutcome>((resolve) => (finish = resolve));
  // The worker reports to its engine: here, an actor that keeps what a node's engine would record.
  const engineStandIn: Behavior<EngineMsg, unknown> = {
    handle(msg) {
      if (msg.t === 'done') finish(msg);
      else if (msg.t === 'progress') progress.push(storedForm(msg.value));
    },
  };
  const system = createSystem({ name: `runJob:${definition.type}`, logger });
  const signal = options.signal;
  let onAbort: (() => void) | undefined;
  try {
    const engine = system.spawn(engineStandIn);
    const worker = system.spawn<WorkerMsg, void>(
      workerBehavior({ job, definition: resolved, engine, logger: logger.child({ partition: job.partition }), timeoutMs }),
    );
    if (signal) {
      onAbort = () => worker.cast({ t: 'abort', reason: signal.reason });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    const outcome = await finished;
    if (!outcome.ok) return { ok: false, error: outcome.error, progress, logs };
    // The stored form, what client.result() would return: the worker has checked the result and
    // serialised it (a result JSON cannot hold already failed the attempt, as on a node).
    const result = (outcome.json === undefined ? (outcome.result ?? null) : JSON.parse(outcome.json)) as R;
    return { ok: true, result, progress, logs };
  } finally {
    if (onAbort) signal!.removeEventListener('abort', onAbort);
    await system.shutdown();
  }
}

function storedForm(value: unknown): unknown {
  try {
    return JSON.parse(toJsonStrict(value, 'progress').json);
  } catch {
    return value;
  }
}

const PINO_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name']);
const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

function logEntry(line: string): LogEntry {
  const raw = JSON.parse(line) as Record<string, unknown>;
  const entry: LogEntry = { level: LEVELS[raw.level as number] ?? String(raw.level), msg: typeof raw.msg === 'string' ? raw.msg : '' };
  for (const [key, value] of Object.entries(raw)) if (!PINO_FIELDS.has(key) && key !== 'msg') entry[key] = value;
  return entry;
}

// ── drain ──────────────────────────────────────────────────────────────────────────────────

export interface DrainOptions {
  /** Only this partition (default: all). */
  partition?: string;
  /** Only this queue (default: all). */
  queue?: string;
  /** Rejects with TimeoutError when jobs are still pending after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Report jobs enqueued from this moment on. Default: since the previous drain of the same
   * node or client returned; on the first drain, every job of the scope (a fresh schema, as
   * testNode makes, holds only the test's).
   */
  since?: Date;
  /** Most outcomes returned (default 10,000; the newest are kept). */
  limit?: number;
}

export interface JobOutcome {
  id: string;
  type: string;
  partition: string;
  queue: string;
  /** completed, failed or cancelled; `scheduled` for a job enqueued to run later that has not run yet. */
  state: JobState;
  attempts: number;
  /** The stored result of a completed job. */
  result?: unknown;
  /** The last attempt's error, for a failed job (and a job waiting to retry). */
  error?: JobError;
  errors: JobError[];
}

const DRAIN_POLL_MIN_MS = 5;
const DRAIN_POLL_MAX_MS = 50;
/** Two empty looks this far apart: a follow-up enqueued by an onSuccess hook lands in between. */
const DRAIN_SETTLE_MS = 25;
const PENDING: JobState[] = ['queued', 'waiting', 'running'];

/** Where the previous drain of a store left off: what the next one reports from. */
interface DrainMark {
  sinceMs: number;
  /** Finished jobs it reported that were enqueued in or after sinceMs's millisecond. */
  reported: Set<string>;
  /** Jobs it reported not yet finished (due later): the next drain reports them again. */
  unfinished: string[];
}
const marks = new WeakMap<ClientStore, DrainMark>();

/**
 * Waits until every job of the scope that is queued and due, waiting for its execution key, or
 * running has finished — including jobs those jobs enqueue — and returns the outcomes of the
 * jobs enqueued since the previous drain (see `since`), oldest first. A retry waiting out its
 * backoff is waited for (testNode makes backoffs short); a job enqueued to run later (runAt,
 * delayMs) that has not run yet is not, and comes back with state `scheduled`.
 * The jobs are run by whatever nodes serve the scope: pass the node under test, or a client of a
 * cluster whose nodes run elsewhere.
 */
export async function drain(target: PartitaNode | Client, options: DrainOptions = {}): Promise<JobOutcome[]> {
  const node = target instanceof Client ? undefined : target;
  const client = node ? node.client : (target as Client);
  if (!(client instanceof Client)) throw new ValidationError('drain() takes a node (startNode/testNode) or a client (connect)', 'target');
  const store = clientStore(client);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const limit = options.limit ?? 10_000;
  const scope = {
    ...(options.partition !== undefined ? { partition: options.partition } : {}),
    ...(options.queue !== undefined ? { queue: options.queue } : {}),
  };
  const deadline = Date.now() + timeoutMs;
  const mark = marks.get(store);

  let waitMs = 0;
  let emptySince: number | undefined;
  for (;;) {
    const pending = await store.listJobs({ ...scope, states: PENDING, limit: 5 });
    // A job waiting out a retry's backoff has started its life: it is waited for. One enqueued
    // to run later that has never run is not.
    if (pending.length === 0)
      pending.push(...(await store.listJobs({ ...scope, states: ['scheduled'], limit: 1000 })).filter((j) => j.attempts > 0).slice(0, 5));
    const busy = pending.length > 0 || (node !== undefined && (await node.stats()).some((s) => s.running + s.prefetched > 0));
    const now = Date.now();
    if (busy) emptySince = undefined;
    else if (emptySince === undefined) emptySince = now;
    else if (now - emptySince >= DRAIN_SETTLE_MS) break;
    if (now >= deadline) {
      const what = pending.map((j) => `${j.id} (${j.type}, ${j.state})`).join(', ');
      throw new TimeoutError(
        `drain: jobs still pending${what ? `, e.g. ${what}` : ''}; is a node serving ${describeScope(options)}?`,
        timeoutMs,
      );
    }
    waitMs = busy ? Math.min(DRAIN_POLL_MAX_MS, Math.max(DRAIN_POLL_MIN_MS, waitMs * 2)) : DRAIN_SETTLE_MS;
    await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, Math.max(1, deadline - now))));
  }

  const collectedAt = Date.now();
  const sinceMs = options.since ? options.since.getTime() : mark?.sinceMs;
  const floor = sinceMs === undefined ? undefined : uuidFloor(sinceMs);
  const found = new Map<string, JobRecord>();
  let before: string | undefined;
  while (found.size < limit) {
    const page = await store.listJobs({ ...scope, limit: Math.min(500, limit - found.size), ...(before ? { before } : {}) });
    for (const job of page) {
      if (floor !== undefined && job.id < floor) break;
      found.set(job.id, job);
    }
    const last = page.at(-1);
    if (page.length === 0 || (floor !== undefined && last!.id < floor)) break;
    before = last!.id;
  }
  if (!options.since && mark?.unfinished.length) {
    for (const job of await store.listJobs({ ...scope, ids: mark.unfinished, limit: mark.unfinished.length })) found.set(job.id, job);
  }
  const outcomes = [...found.values()]
    .filter((j) => options.since !== undefined || !mark?.reported.has(j.id))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(outcomeOf);
  const collectedFloor = uuidFloor(collectedAt);
  marks.set(store, {
    sinceMs: collectedAt,
    reported: new Set(outcomes.filter((o) => isFinishedJobState(o.state) && o.id >= collectedFloor).map((o) => o.id)),
    unfinished: outcomes.filter((o) => !isFinishedJobState(o.state)).map((o) => o.id),
  });
  return outcomes;
}

function outcomeOf(job: JobRecord): JobOutcome {
  const error = job.errors.at(-1);
  return {
    id: job.id,
    type: job.type,
    partition: job.partition,
    queue: job.queue,
    state: job.state,
    attempts: job.attempts,
    ...(job.state === 'completed' ? { result: job.result } : {}),
    ...(error && job.state !== 'completed' ? { error } : {}),
    errors: job.errors,
  };
}

/** The smallest UUIDv7 of a millisecond: ids compare as their creation times. */
function uuidFloor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

function describeScope(options: DrainOptions): string {
  if (options.partition && options.queue) return `partition ${options.partition}, queue ${options.queue}`;
  if (options.partition) return `partition ${options.partition}`;
  if (options.queue) return `queue ${options.queue}`;
  return 'these jobs';
}

// ── testNode ───────────────────────────────────────────────────────────────────────────────

export interface TestNodeOptions extends Omit<NodeOptions, 'jobs' | 'schema' | 'config'> {
  jobs: JobDefinition[];
  /**
   * Postgres for the test (a URL or pool options). Default: PARTITA_TEST_POSTGRES_URL, then
   * DATABASE_URL, else the embedded PostgreSQL in a temporary data dir (slower to start).
   */
  postgres?: string | PgOptions;
  /** Concurrency of each queue of the default partition (default 8). */
  concurrency?: number;
  /** Keep the schema (and data dir) after stop(), to look at it (default false). */
  keep?: boolean;
}

export interface TestNode {
  node: PartitaNode;
  client: Client;
  /** The first partition of `partitions`, or `default`, the one testNode makes when none are given. */
  partition: string;
  /** The fresh schema the node runs on. */
  schema: string;
  /** drain() of this node. */
  drain(options?: DrainOptions): Promise<JobOutcome[]>;
  /** Stops the node and drops its schema and data dir (unless `keep`). */
  stop(): Promise<void>;
}

/**
 * Starts a node for a test: a fresh schema of its own (so tests never see each other's jobs),
 * one partition `default` with a queue per queue the jobs use (unless `partitions` is given),
 * claims every 10 ms and immediate flushes, retries after 10-100 ms, logs at warn. Everything
 * else is a real node: Postgres, leases, the bus (in process unless `nats` is given).
 */
export async function testNode(options: TestNodeOptions): Promise<TestNode> {
  if (!options || !Array.isArray(options.jobs)) throw new ValidationError('testNode needs { jobs: [defineJob(...), ...] }', 'jobs');
  const { jobs, postgres: given, concurrency = 8, keep = false, ...rest } = options;
  const postgres = given ?? (process.env.PARTITA_TEST_POSTGRES_URL?.trim() || process.env.DATABASE_URL?.trim() || undefined);
  const schema = `partita_test_${randomBytes(6).toString('hex')}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'partita-test-'));
  // The embedded PostgreSQL runs as another OS user when the test runs as root: it must reach its data dir.
  if (postgres === undefined) await chmod(dataDir, 0o755);
  const queues = [...new Set(jobs.map((j) => j.queue ?? 'default'))];
  const logger: Logger = rest.logger ?? createLogger({ level: process.env.PARTITA_LOG_LEVEL ?? 'warn' });
  let node: PartitaNode;
  try {
    node = await startNode({
      cluster: schema.replaceAll('_', '-'),
      partitions: { default: { queues: Object.fromEntries(queues.map((q) => [q, { concurrency }])) } },
      ...rest,
      engine: { pollMs: 10, flushMs: 0, ...rest.engine },
      defaults: { backoff: { baseMs: 10, maxMs: 100 }, ...rest.defaults },
      dataDir,
      logger,
      jobs,
      schema,
      ...(postgres !== undefined ? { postgres } : {}),
    });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    node,
    client: node.client,
    partition: rest.partitions ? Object.keys(rest.partitions)[0]! : 'default',
    schema,
    drain: (drainOptions) => drain(node, drainOptions),
    stop() {
      stopped ??= (async () => {
        await node.stop({ graceMs: 1000 });
        if (keep) return;
        if (postgres !== undefined) {
          const store = await JobStore.open({ postgres, schema, migrate: false });
          try {
            await store.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          } finally {
            await store.close();
          }
        }
        await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
