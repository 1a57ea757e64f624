import {
  DuplicateQueueKeyError,
  JobCancelledError,
  JobFailedError,
  TimeoutError,
  ValidationError,
  silentLogger,
  statusOf,
  type EnqueueOptions,
  type JobRecord,
  type JobSpec,
  type Logger,
} from '@partita/core';
import { JobStore, type NewJob, type PgOptions } from '@partita/postgres';
import { createBus, subjects, type Bus } from '@partita/nats';

export interface ConnectOptions {
  postgres: string | PgOptions;
  /** Postgres schema holding Partita's tables (default `partita`). */
  schema?: string;
  /** NATS servers; false or absent: no bus (wake-ups, results and cancels go through Postgres only). */
  nats?: string | string[] | false;
  cluster?: string;
  /** Job definitions whose defaults (queue, attempts, queueKey(p), executionKey(p)) apply at enqueue. */
  jobs?: JobSpec<any>[];
  payloadLimitBytes?: number;
  logger?: Logger;
}

export interface EnqueueManyItem extends EnqueueOptions {
  type: string;
  payload?: unknown;
}

export interface EnqueueManyResult {
  /** Ids of the jobs enqueued, in input order (refused jobs are left out). */
  ids: string[];
  /** Jobs not enqueued because their queue key is held by a live job. */
  refused: { index: number; queueKey: string; heldBy: string | undefined }[];
}

/**
 * Hooks a node installs on its own client so that work it enqueues or cancels reaches its own
 * engines at once instead of at their next poll.
 */
export interface ClientHooks {
  enqueued?(partition: string, queues: Set<string>): void;
  cancelRequested?(jobs: { id: string; partition: string; node: string | null }[]): void;
}

const RESULT_POLL_MIN_MS = 5;
const RESULT_POLL_MAX_MS = 250;

export class Client {
  /** The store, for the runtime and tools that need more than the public API. */
  readonly store: JobStore;
  readonly cluster: string;
  private readonly specs = new Map<string, JobSpec<any>>();
  private registered: Awaited<ReturnType<JobStore['jobTypes']>> | undefined;
  private readonly ownsStore: boolean;
  private closed = false;
  private readonly logger: Logger;
  /** The cluster bus; an in-process bus when the client has no NATS. */
  readonly bus: Bus | undefined;
  private readonly ownsBus: boolean;
  hooks: ClientHooks = {};

  constructor(
    store: JobStore,
    options: { cluster?: string; jobs?: JobSpec<any>[]; ownsStore?: boolean; logger?: Logger; bus?: Bus; ownsBus?: boolean } = {},
  ) {
    this.store = store;
    this.cluster = options.cluster ?? 'default';
    this.ownsStore = options.ownsStore ?? false;
    this.bus = options.bus;
    this.ownsBus = options.ownsBus ?? false;
    this.logger = options.logger ?? silentLogger();
    for (const spec of options.jobs ?? []) this.specs.set(spec.type, spec);
  }

  /** Enqueues one job. A held queue key rejects with DuplicateQueueKeyError. */
  async enqueue(partition: string, type: string, payload?: unknown, options: EnqueueOptions = {}): Promise<{ id: string }> {
    this.assertOpen();
    const [job] = await this.resolve(partition, [{ ...options, type, payload }]);
    const [outcome] = await this.store.enqueue([job!]);
    if (outcome!.refused) throw new DuplicateQueueKeyError(outcome!.refused.queueKey, outcome!.refused.heldBy);
    this.wake(partition, new Set([job!.queue!]));
    return { id: outcome!.id };
  }

  /** Enqueues many jobs in as few round trips as possible; reports jobs a held queue key refused. */
  async enqueueMany(partition: string, jobs: EnqueueManyItem[]): Promise<EnqueueManyResult> {
    this.assertOpen();
    if (!Array.isArray(jobs)) throw new ValidationError('must be an array of { type, payload?, ...options }', 'jobs');
    const resolved = await this.resolve(partition, jobs);
    const outcomes = await this.store.enqueue(resolved);
    const ids: string[] = [];
    const refused: EnqueueManyResult['refused'] = [];
    outcomes.forEach((o, index) => {
      if (o.refused) refused.push({ index, queueKey: o.refused.queueKey, heldBy: o.refused.heldBy });
      else ids.push(o.id);
    });
    if (ids.length > 0) this.wake(partition, new Set(resolved.map((j) => j.queue!)));
    return { ids, refused };
  }

  /** Cancels a job: queued, it never runs; running, its node aborts it. False when already finished or unknown. */
  async cancel(jobId: string): Promise<boolean> {
    this.assertOpen();
    const outcomes = await this.store.cancel([jobId]);
    const running = outcomes.filter((o) => o.running);
    if (running.length) this.hooks.cancelRequested?.(running);
    return outcomes.length > 0;
  }

  /** Roger's semaphore: -1 pending, >0 running (attempt), 0 completed, -1e9 cancelled, -1e9-1 failed. */
  async status(jobId: string): Promise<number | undefined> {
    const job = await this.job(jobId);
    return job ? statusOf(job) : undefined;
  }

  async job(jobId: string): Promise<JobRecord | undefined> {
    this.assertOpen();
    return this.store.getJob(jobId);
  }

  async jobsByKey(partition: string, key: string, value: string | number): Promise<JobRecord[]> {
    this.assertOpen();
    return this.store.jobsByKey(partition, key, value);
  }

  /**
   * Waits for a job's result. Rejects JobFailedError, JobCancelledError, or TimeoutError after
   * timeoutMs (default: wait forever). Postgres is the source of truth, so a result is never missed.
   */
  async result(jobId: string, options: { timeoutMs?: number } = {}): Promise<unknown> {
    this.assertOpen();
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let wait = RESULT_POLL_MIN_MS;
    for (;;) {
      const job = await this.store.getJob(jobId);
      if (!job) throw new ValidationError(`no job with id ${jobId}; check the id (finished jobs are kept for the retention period)`, 'jobId');
      switch (job.state) {
        case 'completed':
          return job.result;
        case 'failed':
          throw new JobFailedError(jobId, job.errors, job.errors.at(-1)?.message);
        case 'cancelled':
          throw new JobCancelledError(jobId);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`result of job ${jobId}`, options.timeoutMs!);
      if (this.closed) throw new ValidationError('the client was closed while waiting for a result');
      await new Promise((r) => setTimeout(r, Math.min(wait, left)));
      wait = Math.min(wait * 2, RESULT_POLL_MAX_MS);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsBus) await this.bus?.close();
    if (this.ownsStore) await this.store.close();
  }

  /** One wake-up per partition/queue per enqueue call, so idle engines claim at once instead of at their next poll. */
  private wake(partition: string, queues: Set<string>): void {
    this.hooks.enqueued?.(partition, queues);
    if (!this.bus) return;
    for (const queue of queues) this.bus.publish(subjects.wake(this.cluster, partition, queue), 'wake', null);
  }

  private assertOpen(): void {
    if (this.closed) throw new ValidationError('this client is closed; connect() again');
  }

  /** Fills each job's defaults: explicit option, then the local definition, then what nodes registered. */
  private async resolve(partition: string, jobs: EnqueueManyItem[]): Promise<NewJob[]> {
    const needRegistry = jobs.some((j) => j && typeof j === 'object' && !this.specs.has(j.type) && (j.queue === undefined || j.maxAttempts === undefined));
    if (needRegistry && (!this.registered || jobs.some((j) => !this.registered!.has(j.type)))) {
      this.registered = await this.store.jobTypes();
    }
    return jobs.map((job, i) => {
      if (typeof job !== 'object' || job === null) throw new ValidationError('must be an object { type, payload?, ...options }', `jobs[${i}]`);
      const spec = this.specs.get(job.type);
      const known = this.registered?.get(job.type);
      const out: NewJob = { ...job, partition };
      out.queue = job.queue ?? spec?.queue ?? known?.queue ?? 'default';
      const maxAttempts = job.maxAttempts ?? spec?.maxAttempts ?? known?.maxAttempts;
      if (maxAttempts !== undefined) out.maxAttempts = maxAttempts;
      const timeoutMs = job.timeoutMs ?? spec?.timeoutMs ?? known?.timeoutMs ?? undefined;
      if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
      if (spec) {
        const queueKey = job.queueKey ?? callKey(spec, 'queueKey', job.payload, i);
        if (queueKey !== undefined) out.queueKey = queueKey;
        const executionKey = job.executionKey ?? callKey(spec, 'executionKey', job.payload, i);
        if (executionKey !== undefined) out.executionKey = executionKey;
      }
      return out;
    });
  }
}

function callKey(spec: JobSpec<any>, which: 'queueKey' | 'executionKey', payload: unknown, index: number): string | undefined {
  const fn = spec[which];
  if (!fn) return undefined;
  try {
    return fn(payload) ?? undefined;
  } catch (err) {
    throw new ValidationError(`${which}(payload) of job type "${spec.type}" threw: ${(err as Error).message}`, `jobs[${index}].payload`);
  }
}

/** Connects to a Partita cluster's Postgres (and, later, its bus). Migrates the schema if needed. */
export async function connect(options: ConnectOptions): Promise<Client> {
  if (!options || (typeof options.postgres !== 'string' && typeof options.postgres !== 'object')) {
    throw new ValidationError('connect() needs { postgres: "postgres://…" } (a URL or pg pool options)', 'postgres');
  }
  const logger = options.logger ?? silentLogger();
  const cluster = options.cluster ?? 'default';
  const store = await JobStore.open({
    postgres: options.postgres,
    logger,
    ...(options.schema ? { schema: options.schema } : {}),
    ...(options.payloadLimitBytes ? { payloadLimitBytes: options.payloadLimitBytes } : {}),
  });
  let bus: Bus | undefined;
  if (options.nats) {
    try {
      bus = await createBus(options.nats, { cluster, logger });
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return new Client(store, { cluster, ...(options.jobs ? { jobs: options.jobs } : {}), ownsStore: true, logger, ...(bus ? { bus, ownsBus: true } : {}) });
}
