import {
  DuplicateQueueKeyError,
  JobCancelledError,
  JobFailedError,
  NAME_PATTERN,
  TimeoutError,
  UnknownJobTypeError,
  ValidationError,
  keyFromRule,
  loadTracing,
  silentLogger,
  statusOf,
  type EnqueueOptions,
  type JobId,
  type JobRecord,
  type JobSpec,
  type JobState,
  type Logger,
  type TypedJobSpec,
  isFinishedJobState,
  isJobState,
  isUuid,
  JOB_STATES,
  ReusedRead,
  COUNT_REUSE_FACTOR,
} from '@partita/core';
import {
  JobStore,
  type AdminStore,
  type AppliedMigration,
  type ClientStore,
  type ClaimedJob,
  type ControlChange,
  type ControlRow,
  type JobListFilter,
  type JobMatch,
  type NewJob,
  type PgOptions,
  type RetryOutcome,
} from '@partita/postgres';
import { InProcessBus, createBus, type Bus, type NatsBusOptions } from '@partita/nats';
import { subjects } from '@partita/protocol';
import {
  eventMessageKinds,
  eventSubscriptionPattern,
  jobEventsOf,
  publishJobEvent,
  publishJobEvents,
  type EventFilter,
  type EventPublishProblem,
  type JobEvent,
} from '@partita/protocol';
import {
  CANCEL_KIND,
  HANDOFF_KIND,
  IDLE_ADVERT_TTL_MS,
  IDLE_KIND,
  QUORUM_KIND,
  ROLL_CALL_KIND,
  WAKE_KIND,
  idleAdvertProblem,
  isMemberProfile,
  type CancelBroadcast,
  type Handoff,
  type IdleAdvert,
  type MemberProfile,
  type ThrottleRule,
} from '@partita/protocol';
import { ResultWatch } from './results.js';
import type { GlobalRequest } from '@partita/protocol';
import { globalApi, requestGlobal, type GlobalApi } from './global-api.js';
import { MAX_THROTTLE_MS } from '@partita/protocol';

export interface ConnectOptions {
  postgres: string | PgOptions;
  /** Postgres schema holding Partita's tables (default `partita`). */
  schema?: string;
  /**
   * NATS: a URL, a list of URLs, or bus options (servers, user/pass, token, nkey, creds, tls, ...).
   * false or absent: no bus — results, cancels, pause/resume/throttle, roll calls (from the nodes
   * table) and enqueue wake-ups (Postgres notifications) go through Postgres; subscribe and the
   * quorum messages are unavailable.
   */
  nats?: string | string[] | NatsBusOptions | false;
  cluster?: string;
  /**
   * Job definitions whose defaults (queue, attempts) and keys apply at enqueue. Keys declared as
   * templates need none of this (nodes register them); keys declared as functions hold only for
   * clients given the definitions.
   */
  jobs?: JobSpec<any>[];
  payloadLimitBytes?: number;
  logger?: Logger;
  /** Publish an `enqueued` job event per enqueued job (default true). */
  enqueueEvents?: boolean;
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
 * For the node only; import it from `@partita/client/internal`.
 */
export interface ClientHooks {
  /** A hand-off to `node`: true when the hook delivered it (the node's own client, to its own engine). */
  handOff?(node: string, job: ClaimedJob): boolean;
  enqueued?(partition: string, queues: Set<string>): void;
  cancelRequested?(jobs: { id: string; partition: string; node: string | null }[]): void;
  /**
   * A pause or throttle this client wrote to Postgres: the node applies it to its own engine before
   * the call returns, so a job this client enqueues next cannot be claimed ahead of it (the other
   * nodes hear of it through the notification).
   */
  controlChanged?(partition: string, row: ControlRow): Promise<void> | void;
}

/** Schema administration through a client (`client.admin`). */
export interface ClientAdmin {
  /** Applies the migrations this schema has not seen yet (under the advisory lock nodes use); their versions. */
  migrate(): Promise<number[]>;
  /** The migrations applied to the schema, oldest first. */
  migrations(): Promise<AppliedMigration[]>;
}

/** result() without a live bus: Postgres polls from 5 ms, doubling up to 250 ms. */
const RESULT_POLL_MIN_MS = 5;
const RESULT_POLL_MAX_MS = 250;
/** result() with a live bus: the event resolves it; Postgres is read as a safety net from 1 s, up to every 5 s. */
const RESULT_SAFETY_MIN_MS = 1000;
const RESULT_SAFETY_MAX_MS = 5000;
const DEFAULT_ROLL_CALL_MS = 1000;
/** The job-type registry is read again after this long, so key templates a deploy changed reach long-lived clients. */
const REGISTRY_MAX_AGE_MS = 30_000;
/** How often an enqueue with allowUnknownType of a type still unregistered reads the registry again. */
const UNKNOWN_TYPE_REREAD_MS = 1000;

/**
 * The store a client is built over: what the client calls (ClientStore), plus what a node's
 * internals read from its own client's store through `clientStore` (its pool, for health checks
 * and test schemas).
 */
export type NodeClientStore = ClientStore & AdminStore;

export class Client {
  /** @internal The store; the node reads it through `clientStore` of `@partita/client/internal`. */
  readonly store: NodeClientStore;
  readonly cluster: string;
  private readonly specs = new Map<string, JobSpec<any>>();
  /** The job types nodes registered (defaults, key templates), read at the first enqueue and again when one is missing. */
  private registered: Awaited<ReturnType<ClientStore['jobTypes']>> | undefined;
  private registeredAt = 0;
  private registryRead: Promise<void> | undefined;
  private registryReads = 0;
  private registrySeq = 0;
  private readonly ownsStore: boolean;
  private closed = false;
  private readonly logger: Logger;
  /** @internal The cluster bus (an in-process one without NATS); the node reads it through `clientBus` of `@partita/client/internal`. */
  readonly bus: Bus | undefined;
  private readonly ownsBus: boolean;
  private readonly enqueueEvents: boolean;
  private watch: ResultWatch | undefined;
  /** Subscriptions made through this client, removed on close() (the bus may outlive the client). */
  private readonly subscriptions = new Set<() => Promise<void>>();
  /** Wakes result() waiters early (close, bus back). */
  private readonly wakers = new Set<() => void>();
  private lastEventProblemAt = 0;
  /** Idle engines' adverts by partition and queue: where a single enqueue may be handed straight. */
  private readonly idle = new Map<string, IdleAdvert & { at: number }>();
  /** Partitions whose idle adverts this client listens to (from its first enqueue to each). */
  private readonly idleWatched = new Set<string>();
  /**
   * The live counts a roll call without a bus shows: a count over every live job (~0.34 s of
   * Postgres at a million), reused as metrics reuse theirs, so a dashboard asking every few seconds
   * does not keep a backend counting.
   */
  private readonly rollCallCounts = new ReusedRead(() => this.store.liveJobCounts(), { minMs: 1000, factor: COUNT_REUSE_FACTOR });
  /** @internal The node's hooks; installed through `installClientHooks` of `@partita/client/internal`. */
  hooks: ClientHooks = {};

  constructor(
    store: NodeClientStore,
    options: {
      cluster?: string;
      jobs?: JobSpec<any>[];
      ownsStore?: boolean;
      logger?: Logger;
      bus?: Bus;
      ownsBus?: boolean;
      enqueueEvents?: boolean;
    } = {},
  ) {
    this.store = store;
    this.cluster = options.cluster ?? 'default';
    this.ownsStore = options.ownsStore ?? false;
    this.bus = options.bus;
    this.ownsBus = options.ownsBus ?? false;
    this.enqueueEvents = options.enqueueEvents ?? true;
    this.logger = options.logger ?? silentLogger();
    for (const spec of options.jobs ?? []) this.specs.set(spec.type, spec);
  }

  /**
   * Enqueues one job. A held queue key rejects with DuplicateQueueKeyError. Given a job definition
   * (what defineJob returns) instead of a type name, the payload must be of the definition's type,
   * the id returned makes `result(id)` resolve to what its perform returns, and the definition's
   * queue, maxAttempts, timeoutMs, queueKey and executionKey apply (options still win).
   */
  enqueue<P, R>(
    partition: string,
    definition: TypedJobSpec<P, R>,
    payload: NoInfer<P>,
    options?: EnqueueOptions,
  ): Promise<{ id: JobId<R> }>;
  enqueue(partition: string, type: string, payload?: unknown, options?: EnqueueOptions): Promise<{ id: string }>;
  async enqueue(partition: string, type: string | TypedJobSpec, payload?: unknown, options: EnqueueOptions = {}): Promise<{ id: string }> {
    if (typeof type !== 'string') return this.enqueueDefined(partition, type, payload, options);
    this.assertOpen();
    const [job] = await this.resolve(partition, [{ ...options, type, payload }], true);
    const target = this.handoffTarget(partition, job!);
    if (target) return this.handOff(job!, target);
    const [outcome] = await this.store.enqueue([job!]);
    if (outcome!.refused) throw new DuplicateQueueKeyError(outcome!.refused.queueKey, outcome!.refused.heldBy);
    await this.wake(partition, new Set([job!.queue!]));
    this.publishEnqueued([job!], [outcome!.id]);
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
    const accepted: NewJob[] = [];
    outcomes.forEach((o, index) => {
      if (o.refused) refused.push({ index, queueKey: o.refused.queueKey, heldBy: o.refused.heldBy });
      else {
        ids.push(o.id);
        accepted.push(resolved[index]!);
      }
    });
    if (ids.length > 0) {
      await this.wake(partition, new Set(accepted.map((j) => j.queue!)));
      this.publishEnqueued(accepted, ids);
    }
    return { ids, refused };
  }

  /**
   * Cancels a job: queued, it never runs; running, its node aborts it. False when already finished
   * or unknown. A running job is flagged in Postgres (its node's heartbeat sees the flag: the
   * durable path) and, with a bus, a cancel broadcast makes the node running it abort at once.
   */
  async cancel(jobId: string): Promise<boolean> {
    this.assertOpen();
    const outcomes = await this.store.cancel([jobId]);
    const running = outcomes.filter((o) => o.running);
    if (running.length) {
      this.hooks.cancelRequested?.(running);
      this.broadcastCancel(running);
    }
    const removed = outcomes.filter((o) => !o.running);
    if (removed.length && this.bus?.connected) {
      // A queued job leaves without any node touching it: announce it here, for result() and subscribers.
      const at = new Date();
      const jobs = await Promise.all(removed.map((o) => this.store.getJob(o.id).catch(() => undefined)));
      for (const job of jobs) {
        if (job?.state !== 'cancelled') continue;
        this.emitEvent({
          id: job.id,
          partition: job.partition,
          queue: job.queue,
          type: job.type,
          kind: 'cancelled',
          attempt: job.attempts,
          at,
        });
      }
    }
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

  /** Jobs matching the filter, live and finished (history), newest first, at most `filter.limit`. */
  async listJobs(filter: JobListFilter): Promise<JobRecord[]> {
    this.assertOpen();
    return this.store.listJobs(filter);
  }

  /** The queues nodes declared, by partition (a queue stays known after its nodes stop). */
  async knownQueues(): Promise<Map<string, Set<string>>> {
    this.assertOpen();
    return this.store.knownQueues();
  }

  /**
   * Live jobs by partition, queue and the state users see (queued, scheduled, waiting, running), with
   * a zero `queued` row for every declared queue: one GROUP BY over the hot table, whose cost does not
   * grow with history (what dashboards and metrics read instead of counting history).
   */
  async queueCounts(): Promise<QueueCount[]> {
    this.assertOpen();
    return (await this.store.liveJobCounts()).map((r) => ({
      partition: r.partition,
      queue: r.queue,
      state: r.state as JobState,
      count: r.count,
    }));
  }

  /**
   * For each declared queue with a job due, the job its next claim takes and when that job became
   * due (`dueAt`): how long the queue's head has waited. One index probe per queue.
   */
  async queueHeads(): Promise<{ partition: string; queue: string; id: string; dueAt: Date }[]> {
    this.assertOpen();
    return this.store.queueHeads();
  }

  /** Administration of the cluster's schema: what `partita migrate` does. */
  readonly admin: ClientAdmin = {
    migrate: () => (this.assertOpen(), this.store.migrate()),
    migrations: () => (this.assertOpen(), this.store.appliedMigrations()),
  };

  async jobsByKey(partition: string, key: string, value: string | number): Promise<JobRecord[]> {
    this.assertOpen();
    return this.store.jobsByKey(partition, key, value);
  }

  /**
   * Waits for a job's result. Rejects JobFailedError, JobCancelledError, or TimeoutError after
   * timeoutMs (default: wait forever); ValidationError for an unknown id.
   *
   * With a bus, the job's terminal event resolves it (within a millisecond or two of the outcome
   * being recorded). The order makes sure nothing is missed: read the job, subscribe to its
   * events, read it again (it may have finished in between), then wait for the event — reading
   * Postgres every few seconds as a safety net, and at once when the bus comes back from an outage.
   * Without a bus it polls Postgres (5 ms doubling to 250 ms). Postgres is the source of truth.
   */
  result<R>(jobId: JobId<R>, options?: { timeoutMs?: number }): Promise<R>;
  result(jobId: string, options?: { timeoutMs?: number }): Promise<unknown>;
  async result(jobId: string, options: { timeoutMs?: number } = {}): Promise<unknown> {
    this.assertOpen();
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0)) {
      throw new ValidationError(`must be a number of milliseconds ≥ 0, got ${String(timeoutMs)}`, 'timeoutMs');
    }
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const first = await this.readResult(jobId);
    if (first.done) return first.value();

    let event: JobEvent | undefined;
    let wake: (() => void) | undefined;
    let release: (() => void) | undefined;
    let check = false;
    const bus = this.bus;
    if (bus?.connected) {
      try {
        release = await this.resultWatch(bus).watch(first.job, (e) => {
          event = e;
          wake?.();
        });
        check = true; // it may have finished before the subscription was live
      } catch (err) {
        this.logger.debug({ err: (err as Error).message, jobId }, 'result: cannot subscribe to job events; polling Postgres');
      }
    }
    const offStatus = bus?.onStatus((status) => {
      if (status === 'reconnected' || status === 'connected') {
        check = true; // events published while the bus was away are gone: look in Postgres
        wake?.();
      }
    });
    const waker = () => wake?.();
    this.wakers.add(waker);
    try {
      let waitMs = 0;
      for (;;) {
        if (event) {
          const e: JobEvent = event;
          event = undefined;
          if (e.kind === 'completed' && !e.truncated) return e.result;
          check = true; // failed/cancelled (or a truncated result): Postgres has the whole story
        }
        if (check) {
          check = false;
          const now = await this.readResult(jobId);
          if (now.done) return now.value();
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new TimeoutError(`result of job ${jobId}`, timeoutMs!);
        if (this.closed) throw new ValidationError('the client was closed while waiting for a result');
        if (event) continue;
        const live = release !== undefined && bus!.connected;
        const [min, max] = live ? [RESULT_SAFETY_MIN_MS, RESULT_SAFETY_MAX_MS] : [RESULT_POLL_MIN_MS, RESULT_POLL_MAX_MS];
        waitMs = Math.min(max, Math.max(min, waitMs * 2));
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), Math.min(waitMs, left));
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wake = undefined;
        if (timedOut) check = true;
      }
    } finally {
      this.wakers.delete(waker);
      offStatus?.();
      release?.();
    }
  }

  /**
   * Subscribes to job events. `pattern` is one of:
   *  - a filter object: `{ partition?, queue?, type?, kind? }` — omitted parts match anything;
   *    `type` is the job type as defined (dots and all);
   *  - a NATS pattern over `<partition>.<queue>.<type>.<kind>`, relative to the cluster:
   *    `billing.*.invoice.completed`, `billing.>`, `*.*.*.failed`, `>`. Job types containing
   *    `.`, `*`, `>`, `%` or whitespace are percent-encoded in subjects (`eventTypeToken()`);
   *  - a full subject pattern `partita.<cluster>.event.…`.
   * Kinds: enqueued, started, progress, completed, failed, retrying, cancelled. Delivery is
   * at-most-once (events are lost while the bus is away; Postgres keeps the truth). Resolves once
   * the subscription is live; the returned function unsubscribes.
   */
  async subscribe(pattern: string | EventFilter, callback: (event: JobEvent) => unknown): Promise<() => Promise<void>> {
    this.assertOpen();
    const bus = this.requireBus('subscribe()');
    if (typeof callback !== 'function') throw new ValidationError('must be a function (event) => void', 'callback');
    const subject = eventSubscriptionPattern(this.cluster, pattern);
    const off = await bus.subscribe(
      subject,
      (data, msg) => {
        const events = jobEventsOf(data, msg.kind);
        if (events.length === 1) return callback(events[0]!);
        // One callback's failure must not cost the others their events; the bus reports the first.
        return Promise.allSettled(events.map(async (event) => callback(event))).then((settled) => {
          const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) throw failed.reason;
        });
      },
      { kinds: eventMessageKinds() },
    );
    return this.track(off);
  }

  /**
   * Asks every node of the cluster for its profile (id, partitions, queues with concurrency,
   * running and queued counts, throttle, memory, CPU, uptime, version) and collects the answers
   * for `delayMs` (default 1000), or until `max` answered. Sorted by node id.
   */
  async rollCall(options: { delayMs?: number; max?: number } = {}): Promise<MemberProfile[]> {
    this.assertOpen();
    if (!this.bus) return this.rollCallFromPostgres(options.delayMs ?? DEFAULT_ROLL_CALL_MS, options.max);
    const bus = this.bus;
    const delayMs = options.delayMs ?? DEFAULT_ROLL_CALL_MS;
    const replies = await bus.gather<unknown>(
      subjects.rollCall(this.cluster),
      ROLL_CALL_KIND,
      {},
      {
        delayMs,
        ...(options.max !== undefined ? { max: options.max } : {}),
      },
    );
    return replies.filter(isMemberProfile).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Roll call without a bus: the profiles nodes store in the nodes table with every heartbeat, of
   * the nodes seen within their last three heartbeats. A Postgres notification asks every node to
   * store a fresh one; this waits for them for up to `delayMs` (or until `max` are fresh). A node
   * that does not answer in time is shown as of its last heartbeat (`at`).
   */
  private async rollCallFromPostgres(delayMs: number, max: number | undefined): Promise<MemberProfile[]> {
    const asked = await this.store.requestRollCall();
    const deadline = Date.now() + delayMs;
    let rows = await this.store.nodesSeen(this.cluster);
    for (;;) {
      const fresh = rows.filter((r) => r.heartbeatAt >= asked).length;
      if (fresh === rows.length || (max !== undefined && fresh >= max) || Date.now() >= deadline || this.closed) break;
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(0, deadline - Date.now()))));
      rows = await this.store.nodesSeen(this.cluster);
    }
    // Nodes store their profiles without the cluster-wide queued counts: one count serves them all.
    const counts = new Map<string, { queued: number; scheduled: number }>();
    for (const c of rows.length ? await this.rollCallCounts.get() : []) {
      const key = `${c.partition}\u0000${c.queue}`;
      const entry = counts.get(key) ?? { queued: 0, scheduled: 0 };
      if (c.state === 'queued' || c.state === 'waiting') entry.queued += c.count;
      else if (c.state === 'scheduled') entry.scheduled += c.count;
      counts.set(key, entry);
    }
    const profiles: MemberProfile[] = [];
    for (const { info, heartbeatAt, ageMs } of rows) {
      if (!isMemberProfile(info)) continue; // a node that has not stored its full profile yet
      const { heartbeatMs: _heartbeatMs, ...stored } = info as MemberProfile & { heartbeatMs?: number };
      const queues = stored.queues.map((q) => {
        const count = counts.get(`${q.partition}\u0000${q.queue}`);
        return { ...q, queued: count?.queued ?? 0, scheduled: count?.scheduled ?? 0 };
      });
      profiles.push({
        ...stored,
        queues,
        queued: queues.reduce((sum, q) => sum + (q.queued ?? 0), 0),
        uptimeMs: stored.uptimeMs + Math.max(0, Math.round(ageMs)),
        startedAt: new Date(stored.startedAt),
        at: heartbeatAt,
      });
    }
    return max !== undefined ? profiles.slice(0, max) : profiles;
  }

  /**
   * Publishes a message of your own to the quorum (HotMesh pubQuorum): every subscriber of a
   * matching topic pattern in the cluster receives `data` (anything msgpack can carry). The topic
   * is one or more dot-separated tokens (`deploy.started`). Fire and forget: while the bus is
   * away the message is dropped.
   */
  publishQuorum(topic: string, data?: unknown): void {
    this.assertOpen();
    this.requireBus('publishQuorum()').publish(subjects.quorum(this.cluster, topic), QUORUM_KIND, data ?? null);
  }

  /**
   * Receives quorum messages (HotMesh subQuorum) whose topic matches `topicPattern` (NATS
   * wildcards: `deploy.*`, `>` for all). The callback gets the data and the concrete topic.
   */
  async subscribeQuorum(topicPattern: string, callback: (data: unknown, topic: string) => unknown): Promise<() => Promise<void>> {
    this.assertOpen();
    const bus = this.requireBus('subscribeQuorum()');
    if (typeof callback !== 'function') throw new ValidationError('must be a function (data, topic) => void', 'callback');
    const prefixLength = subjects.quorumPattern(this.cluster, '>').length - 1;
    const off = await bus.subscribe(
      subjects.quorumPattern(this.cluster, topicPattern),
      (data, msg) => callback(data, msg.subject.slice(prefixLength)),
      {
        kinds: [QUORUM_KIND],
      },
    );
    return this.track(off);
  }

  // ── Global: pause, throttle, Roger's Global operations ───────────────────────────────────

  /** Roger.Partition.Global parity: cancel, queue keys, execution keys, paused queues of one partition. */
  global(partition: string): GlobalApi {
    return globalApi(<T>(request: GlobalRequest) => this.requestGlobal<T>(partition, request));
  }

  /**
   * Stops claims of a queue on every node (running jobs finish); survives restarts of every node.
   * With a bus it goes through the partition's Global; without one it is made in Postgres
   * (partition_control, the row Global adopts) and the nodes hear of it by a Postgres notification.
   */
  async pause(partition: string, queue: string): Promise<void> {
    const request = { op: 'pause', queue: checkName(queue, 'queue') } as const;
    if (this.controlViaGlobal) await this.requestGlobal(partition, request);
    else await this.changeControl(partition, request);
  }

  /** Lifts a pause. A queue stopped by `throttle({ ms: -1 })` stays stopped until that throttle is lifted. */
  async resume(partition: string, queue: string): Promise<void> {
    const request = { op: 'resume', queue: checkName(queue, 'queue') } as const;
    if (this.controlViaGlobal) await this.requestGlobal(partition, request);
    else await this.changeControl(partition, request);
  }

  /** The paused queues of a partition (queues stopped by a throttle of -1 are in `control()`'s throttles). */
  async paused(partition: string): Promise<string[]> {
    if (this.controlViaGlobal) return this.requestGlobal<string[]>(partition, { op: 'pausedQueues' });
    return (await this.control(partition)).paused;
  }

  /** A partition's pause and throttle state as every node obeys it (read from Postgres, where changes are made). */
  async control(partition: string): Promise<{ paused: string[]; throttles: ThrottleRule[] }> {
    this.assertOpen();
    await this.store.assertKnownPartition(partition);
    const { paused, throttles } = await this.store.loadControl(partition);
    return { paused: [...paused].sort(), throttles };
  }

  /**
   * Pause and throttle go through Global over NATS. An in-process bus (a node without NATS) reaches
   * only its own process, whose node may not lead the partition: those, and clients without a
   * bus, make the change in Postgres, which every node hears of.
   */
  private get controlViaGlobal(): boolean {
    return this.bus !== undefined && !(this.bus instanceof InProcessBus);
  }

  private async changeControl(partition: string, change: ControlChange): Promise<void> {
    this.assertOpen();
    await this.store.assertKnownPartition(partition);
    const row = await this.store.changeControl(partition, change);
    await this.hooks.controlChanged?.(partition, row);
  }

  /**
   * A pause of `ms` before each claim, for one partition (or every known one), optionally one queue
   * and/or one node. -1 stops processing until lifted; 0 lifts it. Persisted through Global, so
   * nodes that start later obey it.
   */
  async throttle(options: { ms: number; partition?: string; queue?: string; node?: string }): Promise<void> {
    const { ms, partition, queue, node } = options ?? ({} as never);
    if (!Number.isInteger(ms) || ms < -1 || ms > MAX_THROTTLE_MS) {
      throw new ValidationError(
        `must be a whole number of ms from -1 (stop until lifted) to ${MAX_THROTTLE_MS}; 0 lifts the throttle`,
        'throttle.ms',
      );
    }
    const rule = { ms, ...(queue !== undefined ? { queue: checkName(queue, 'queue') } : {}), ...(node !== undefined ? { node } : {}) };
    const partitions = partition !== undefined ? [partition] : [...(await this.store.knownQueues()).keys()];
    if (this.controlViaGlobal) await Promise.all(partitions.map((p) => this.requestGlobal(p, { op: 'throttle', rule })));
    else await Promise.all(partitions.map((p) => this.changeControl(p, { op: 'throttle', ...rule })));
  }

  private async requestGlobal<T>(partition: string, request: GlobalRequest): Promise<T> {
    this.assertOpen();
    await this.store.assertKnownPartition(partition);
    return requestGlobal<T>(this.bus, this.cluster, partition, request);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of [...this.wakers]) wake();
    await this.watch?.close();
    await Promise.all([...this.subscriptions].map((off) => off().catch(() => undefined)));
    if (this.ownsBus) await this.bus?.close();
    if (this.ownsStore) await this.store.close();
  }

  /**
   * An idle engine to hand this job to, if one advertised itself lately (one free slot is used
   * up). Not for jobs with an execution key (their turn is the claim's to decide) or a later start.
   * The first enqueue to a partition starts listening to its adverts.
   */
  private handoffTarget(partition: string, job: NewJob): IdleAdvert | undefined {
    if (!this.bus?.connected) return undefined;
    if (!this.idleWatched.has(partition)) this.watchIdle(partition);
    if (job.executionKey != null || job.runAt !== undefined || job.delayMs !== undefined) return undefined;
    const slot = idleSlot(partition, job.queue!);
    const advert = this.idle.get(slot);
    if (!advert || Date.now() - advert.at > IDLE_ADVERT_TTL_MS) {
      this.idle.delete(slot);
      return undefined;
    }
    if (--advert.free <= 0) this.idle.delete(slot);
    return advert;
  }

  private watchIdle(partition: string): void {
    this.idleWatched.add(partition);
    const bus = this.bus!;
    bus
      .subscribe(
        subjects.idlePattern(this.cluster, partition),
        (data: IdleAdvert, msg) => {
          const queue = subjects.parseIdle(msg.subject)?.queue;
          if (!queue || idleAdvertProblem(data)) return; // not ours to judge further: no hand-off
          const slot = idleSlot(partition, queue);
          if (data.free > 0) this.idle.set(slot, { node: data.node, leaseMs: data.leaseMs, free: data.free, at: Date.now() });
          else if (this.idle.get(slot)?.node === data.node) this.idle.delete(slot);
        },
        { kinds: [IDLE_KIND] },
      )
      .then(
        (off) => {
          if (this.closed) void off().catch(() => undefined);
          else this.subscriptions.add(off);
        },
        (err) => {
          this.idleWatched.delete(partition);
          this.logger.debug({ partition, err: (err as Error)?.message }, 'listening for idle engines failed; enqueues go the claim way');
        },
      );
  }

  /**
   * Enqueues the job as the idle node's running attempt and hands it over: the node starts it
   * without a claim round trip. Should the message be lost or the node be gone, the job's lease
   * runs out and it is rescued like any other.
   */
  private async handOff(job: NewJob, target: IdleAdvert): Promise<{ id: string }> {
    const { id, claimed } = await this.store.enqueueHandedOff(job, target.node, target.leaseMs);
    // Not handed: its queue is paused in Postgres (news the node may not have had yet), so it waits queued.
    if (claimed) await this.sendHandoff(target, claimed);
    this.publishEnqueued([job], [id]);
    return { id };
  }

  /**
   * @internal An idle engine to hand a job enqueued in a transaction of a layer above jobs to (a
   * workflow's first step, say); through `clientHandoffTarget` of `@partita/client/internal`.
   */
  handoffTargetFor(partition: string, job: NewJob): IdleAdvert | undefined {
    if (this.closed || job.queueKey != null) return undefined;
    return this.handoffTarget(partition, job);
  }

  /**
   * Hands a job stored as `target`'s running attempt to it (its own engine directly, another node's
   * over the bus). Should the message be lost or the node be gone, the job's lease runs out and it
   * is rescued like any other; a message that could not be sent at all goes back to the queue.
   * @internal Layers reach it through `clientHandOff` of `@partita/client/internal`.
   */
  async sendHandoff(target: IdleAdvert, claimed: ClaimedJob): Promise<void> {
    const { id, partition, queue, type, payload, priority, attempt, maxAttempts, timeoutMs, queueKey, traceparent, continuation } = claimed;
    const message: Handoff = {
      job: {
        id,
        partition,
        queue,
        type,
        payload,
        priority,
        attempt,
        maxAttempts,
        timeoutMs,
        queueKey,
        ...(traceparent ? { traceparent } : {}),
        // Its outcome must go through this continuation: a node that does not run it hands it back.
        ...(continuation ? { continuation } : {}),
      },
    };
    let sent = this.hooks.handOff?.(target.node, claimed) ?? false;
    try {
      sent ||= this.bus!.publish(subjects.node(this.cluster, target.node), HANDOFF_KIND, message);
    } catch (err) {
      this.logger.debug({ jobId: id, err: (err as Error)?.message }, 'the hand-off message could not be sent; the job goes to the queue');
    }
    if (!sent) {
      // Not on its way (bus away, payload too big for it): back to the queue, for a claim to take.
      // The job is stored either way: should this fail too, its lease runs out and it is rescued.
      await this.store.release(target.node, [{ id, attempt }]).then(
        ({ released }) => released.size > 0 && this.wake(partition, new Set([queue])),
        (err) =>
          this.logger.warn(
            { jobId: id, err: (err as Error)?.message },
            'handing back an undelivered hand-off failed; the job runs once its lease expires',
          ),
      );
    }
  }

  /**
   * One wake-up per partition/queue per enqueue call, so idle engines claim at once instead of at
   * their next poll. Without a bus, one Postgres notification per call names the queues (nodes
   * LISTEN for it); it is awaited so that a process exiting right after its enqueue still sends it.
   * @internal Layers that enqueue in their own transactions call it through `clientWake` of `@partita/client/internal`.
   */
  wake(partition: string, queues: Set<string>): void | Promise<void> {
    this.hooks.enqueued?.(partition, queues);
    if (!this.bus) {
      return this.store.notifyEnqueued(partition, queues).catch((err) => {
        this.logger.debug(
          { partition, err: (err as Error)?.message },
          'notifying nodes of an enqueue failed; they claim it at their next poll',
        );
      });
    }
    for (const queue of queues) this.bus.publish(subjects.wake(this.cluster, partition, queue), WAKE_KIND, null);
  }

  /**
   * An `enqueued` event per job, after the wake-ups (which are what latency depends on). About
   * 10 µs a job; big batches go out in chunks between event-loop turns so they never block it long.
   */
  private publishEnqueued(jobs: NewJob[], ids: string[]): void {
    if (!this.enqueueEvents || !this.bus?.connected) return;
    const at = new Date();
    const events: JobEvent[] = jobs.map((job, i) => ({
      id: ids[i]!,
      partition: job.partition,
      queue: job.queue!,
      type: job.type,
      kind: 'enqueued',
      attempt: 0,
      at,
    }));
    publishJobEvents(this.bus, events, (p) => this.eventProblem(p));
  }

  private emitEvent(event: JobEvent): void {
    if (!this.bus) return;
    publishJobEvent(this.bus, event, (p) => this.eventProblem(p));
  }

  private eventProblem({ event, error }: EventPublishProblem): void {
    const now = Date.now();
    if (now - this.lastEventProblemAt < 60_000) return;
    this.lastEventProblemAt = now;
    this.logger.warn(
      { jobId: event.id, kind: event.kind, err: (error as Error)?.message },
      'a job event could not be published (logged once a minute)',
    );
  }

  private broadcastCancel(jobs: { id: string; partition: string }[]): void {
    if (!this.bus) return;
    const byPartition = new Map<string, string[]>();
    for (const j of jobs) byPartition.set(j.partition, [...(byPartition.get(j.partition) ?? []), j.id]);
    for (const [partition, ids] of byPartition) {
      this.bus.publish(subjects.cancel(this.cluster, partition), CANCEL_KIND, { ids } satisfies CancelBroadcast);
    }
  }

  /** Reads a job for result(): `done` with a settle function once it finished. */
  private async readResult(jobId: string): Promise<{ done: false; job: JobRecord } | { done: true; value: () => unknown }> {
    const job = await this.store.getJob(jobId);
    if (!job)
      throw new ValidationError(
        `no job with id ${jobId}; check the id (finished jobs are kept for the retention period; a workflow step's success is kept in its workflow's timeline only)`,
        'jobId',
      );
    if (!isFinishedJobState(job.state)) return { done: false, job };
    return {
      done: true,
      value: () => {
        if (job.state === 'completed') return job.result;
        if (job.state === 'failed') throw new JobFailedError(jobId, job.errors, job.errors.at(-1)?.message);
        throw new JobCancelledError(jobId);
      },
    };
  }

  private resultWatch(bus: Bus): ResultWatch {
    this.watch ??= new ResultWatch(bus, this.logger);
    return this.watch;
  }

  private requireBus(what: string): Bus {
    if (!this.bus) {
      throw new ValidationError(
        `${what} needs the cluster bus: connect({ postgres, nats: 'nats://host:4222' }), or use node.client of a node (its in-process bus when it runs without NATS)`,
        'nats',
      );
    }
    return this.bus;
  }

  private track(off: () => Promise<void>): () => Promise<void> {
    const unsubscribe = async () => {
      this.subscriptions.delete(unsubscribe);
      await off();
    };
    this.subscriptions.add(unsubscribe);
    return unsubscribe;
  }

  private assertOpen(): void {
    if (this.closed) throw new ValidationError('this client is closed; connect() again');
  }

  /**
   * Fills each job's defaults: explicit option, then the local definition, then what nodes
   * registered. A type no node registered is an UnknownJobTypeError unless the job allows it.
   */
  private async resolve(partition: string, jobs: EnqueueManyItem[], single = false): Promise<NewJob[]> {
    jobs.forEach((job, i) => {
      if (typeof job !== 'object' || job === null)
        throw new ValidationError('must be an object { type, payload?, ...options }', `jobs[${i}]`);
    });
    await this.readRegistryFor(jobs);
    const registered = this.registered!;
    return jobs.map((job, i) => {
      const spec = this.specs.get(job.type);
      const known = registered.get(job.type);
      if (!known && job.allowUnknownType !== true) throw new UnknownJobTypeError(job.type, [...registered.keys()].sort());
      const { allowUnknownType: _allow, ...options } = job;
      const out: NewJob = { ...options, partition };
      out.queue = job.queue ?? spec?.queue ?? known?.queue ?? 'default';
      const maxAttempts = job.maxAttempts ?? spec?.maxAttempts ?? known?.maxAttempts;
      if (maxAttempts !== undefined) out.maxAttempts = maxAttempts;
      const timeoutMs = job.timeoutMs ?? spec?.timeoutMs ?? known?.timeoutMs ?? undefined;
      if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
      const at = single ? 'payload' : `jobs[${i}].payload`;
      // A key given at enqueue wins; then the local definition's (template or function), then the
      // template nodes registered, which is how a key holds for clients without the definitions.
      if (job.queueKey === undefined) {
        const queueKey = keyFromRule(spec?.queueKey ?? known?.queueKey ?? undefined, job.payload, {
          type: job.type,
          which: 'queueKey',
          at,
        });
        if (queueKey !== undefined) out.queueKey = queueKey;
      }
      if (job.executionKey === undefined) {
        const executionKey = keyFromRule(spec?.executionKey ?? known?.executionKey ?? undefined, job.payload, {
          type: job.type,
          which: 'executionKey',
          at,
        });
        if (executionKey !== undefined) out.executionKey = executionKey;
      }
      return out;
    });
  }

  /**
   * Reads the job-type registry when this client has none yet, or when a job's type is missing
   * from it: before refusing a type, always (a node may have registered it a moment ago); for jobs
   * that allow unknown types, at most once a second. A copy older than REGISTRY_MAX_AGE_MS is
   * refreshed in the background. Concurrent enqueues share one read.
   */
  private async readRegistryFor(jobs: EnqueueManyItem[]): Promise<void> {
    if (this.registered === undefined) await this.readRegistry(false);
    else if (Date.now() - this.registeredAt > REGISTRY_MAX_AGE_MS && !this.registryRead) {
      // Refreshed beside this enqueue, not before it: the enqueue path keeps its one round trip.
      this.readRegistry(false).catch((err: unknown) =>
        this.logger.debug({ err: (err as Error)?.message }, 'reading the job-type registry failed; using the copy read before'),
      );
    }
    const age = Date.now() - this.registeredAt;
    const missing = jobs.filter((j) => !this.registered!.has(j.type));
    // About to refuse: a read begun now, so one shared with an earlier enqueue (begun before a
    // node registered the type) cannot be the reason.
    if (missing.some((j) => j.allowUnknownType !== true)) await this.readRegistry(true);
    else if (missing.length > 0 && age > UNKNOWN_TYPE_REREAD_MS) await this.readRegistry(false);
  }

  /** One read of the registry; `fresh`: one that begins now rather than one already under way. */
  private async readRegistry(fresh: boolean): Promise<void> {
    if (fresh || !this.registryRead) {
      const seq = ++this.registryReads;
      const read = this.store.jobTypes().then((types) => {
        // An older read finishing late must not replace a newer answer.
        if (seq > this.registrySeq) {
          this.registrySeq = seq;
          this.registered = types;
          this.registeredAt = Date.now();
        }
      });
      this.registryRead = read;
      void read
        .finally(() => {
          if (this.registryRead === read) this.registryRead = undefined;
        })
        .catch(() => undefined);
    }
    await this.registryRead;
  }

  /** enqueue() with a definition: its defaults become explicit options, so they hold whatever this client was connected with. */
  private enqueueDefined(partition: string, definition: TypedJobSpec, payload: unknown, options: EnqueueOptions): Promise<{ id: string }> {
    if (typeof definition !== 'object' || definition === null || typeof definition.type !== 'string') {
      throw new ValidationError('must be a job type name or a job definition (what defineJob returns)', 'type');
    }
    const filled: EnqueueOptions = { ...options };
    if (filled.queue === undefined && definition.queue !== undefined) filled.queue = definition.queue;
    if (filled.maxAttempts === undefined && definition.maxAttempts !== undefined) filled.maxAttempts = definition.maxAttempts;
    if (filled.timeoutMs === undefined && definition.timeoutMs !== undefined) filled.timeoutMs = definition.timeoutMs;
    if (filled.queueKey === undefined) {
      const queueKey = keyFromRule(definition.queueKey, payload, { type: definition.type, which: 'queueKey', at: 'payload' });
      if (queueKey !== undefined) filled.queueKey = queueKey;
    }
    if (filled.executionKey === undefined) {
      const executionKey = keyFromRule(definition.executionKey, payload, { type: definition.type, which: 'executionKey', at: 'payload' });
      if (executionKey !== undefined) filled.executionKey = executionKey;
    }
    return this.enqueue(partition, definition.type, payload, filled);
  }

  // ── Retry and bulk operations ───────────────────────────────────────────────────────────────

  /**
   * Runs a failed or cancelled job again: it leaves history and is queued to run now, with its id,
   * payload, keys and error history. It gets a fresh attempt budget: the attempt count goes on (so
   * errors stay numbered in order and a late completion from an old attempt is still refused) and
   * its maxAttempts is raised by `options.maxAttempts`, default the job type's maxAttempts as the
   * nodes define it now. False when there is nothing to retry: the job is live (queued or
   * running), completed, or unknown. A queue key held by another live job refuses the retry with
   * DuplicateQueueKeyError naming the holder. Two retries of one job at once: exactly one wins.
   */
  async retry(jobId: string, options: { maxAttempts?: number } = {}): Promise<boolean> {
    this.assertOpen();
    if (typeof jobId !== 'string' || !isUuid(jobId)) return false;
    const [row] = await this.store.retryJobs({ ids: [jobId] }, 1, options.maxAttempts);
    if (!row) return false;
    if (!row.retried) {
      if (row.queueKey === null) return false; // the row went live under us: another retry won
      throw new DuplicateQueueKeyError(row.queueKey, await this.store.queueKeyHolder(row.partition, row.queueKey), `retrying job ${jobId}`);
    }
    this.retried([row]);
    return true;
  }

  /**
   * Retries failed and cancelled jobs matching `filter` (as `partita jobs` filters: partition, queue,
   * type, states, lookup, before, ids), newest first, at most `limit` (default 1000), as retry()
   * does one. Jobs whose queue key is held stay finished and are listed in `refused`.
   * `dryRun`: only count them.
   */
  async retryMany(filter: JobMatch = {}, options: BulkOptions & { maxAttempts?: number } = {}): Promise<RetryManyResult> {
    const { limit, dryRun } = this.bulkStart(filter, options);
    const byState = await this.store.countMatching(filter, 'retry');
    const matching = sumCounts(byState);
    if (dryRun) return { ...bulkPreview(byState, matching, limit), refused: [] };
    const done: RetryOutcome[] = [];
    let before = filter.before;
    while (done.length < limit) {
      const size = Math.min(BULK_BATCH, limit - done.length);
      const rows = await this.store.retryJobs({ ...filter, ...(before ? { before } : {}) }, size, options.maxAttempts);
      done.push(...rows);
      // Newest first: the next batch starts below this one, so a job refused (or retried and
      // failed again meanwhile) is not taken twice.
      if (rows.length < size) break;
      before = rows.at(-1)!.id;
    }
    const retried = done.filter((r) => r.retried);
    this.retried(retried);
    const refusedRows = done.filter((r): r is RetryOutcome & { queueKey: string } => !r.retried && r.queueKey !== null);
    const holders = new Map<string, Map<string, string>>();
    for (const partition of new Set(refusedRows.map((r) => r.partition))) {
      holders.set(
        partition,
        await this.store.queueKeyHolders(
          partition,
          refusedRows.filter((r) => r.partition === partition).map((r) => r.queueKey),
        ),
      );
    }
    const refused = refusedRows.map((r) => ({ id: r.id, queueKey: r.queueKey, heldBy: holders.get(r.partition)!.get(r.queueKey) }));
    return {
      ...bulkDone(
        byState,
        matching,
        limit,
        retried.map((r) => r.id),
        done.length,
      ),
      refused,
    };
  }

  /**
   * Cancels live jobs matching `filter`, newest first, at most `limit` (default 1000), as cancel()
   * does one: queued ones never run, running ones are aborted by their node (`running` counts
   * those). `dryRun`: only count them.
   */
  async cancelMany(filter: JobMatch = {}, options: BulkOptions = {}): Promise<CancelManyResult> {
    const { limit, dryRun } = this.bulkStart(filter, options);
    const byState = await this.store.countMatching(filter, 'cancel');
    const matching = sumCounts(byState);
    if (dryRun) return { ...bulkPreview(byState, matching, limit), running: 0 };
    const ids: string[] = [];
    let running = 0;
    let lockedRounds = 0;
    while (ids.length < limit) {
      const size = Math.min(BULK_BATCH, limit - ids.length);
      // Each batch's jobs leave the match (cancelled, or flagged and then skipped): no cursor needed.
      const rows = await this.store.cancelMatching(filter, size);
      const flagged = rows.filter((r) => r.running);
      if (flagged.length) {
        this.hooks.cancelRequested?.(flagged);
        this.broadcastCancel(flagged);
      }
      running += flagged.length;
      for (const r of rows) ids.push(r.id);
      // Jobs that never started leave without any node touching them: announced here, as cancel() does.
      if (this.bus?.connected) {
        const at = new Date();
        const events: JobEvent[] = rows
          .filter((r) => !r.running)
          .map((r) => ({ id: r.id, partition: r.partition, queue: r.queue, type: r.type, kind: 'cancelled', attempt: r.attempts, at }));
        publishJobEvents(this.bus, events, (p) => this.eventProblem(p));
      }
      if (rows.length < size) {
        // A short batch with jobs counted but not taken: their rows were locked for a moment (a
        // lease renewal, a claim, a completion), and SKIP LOCKED passed them over. Look again a few
        // times before giving up; jobs that finished meanwhile no longer match and end the loop.
        if (ids.length >= Math.min(matching, limit) || ++lockedRounds > LOCKED_ROUNDS) break;
        await new Promise((resolve) => setTimeout(resolve, 20 * lockedRounds));
      }
    }
    return { ...bulkDone(byState, matching, limit, ids, ids.length), running };
  }

  /**
   * Deletes jobs matching `filter`, newest first, at most `limit` (default 1000): finished jobs,
   * and live jobs that are not running (they never run and leave no history). Running jobs are
   * never deleted (their node holds them): cancelMany them first; `runningSkipped` counts those
   * the filter matched. `dryRun`: only count them.
   */
  async deleteMany(filter: JobMatch = {}, options: BulkOptions = {}): Promise<DeleteManyResult> {
    const { limit, dryRun } = this.bulkStart(filter, options);
    const byState = await this.store.countMatching(filter, 'delete');
    const runningSkipped = byState.running ?? 0;
    const matching = sumCounts(byState) - runningSkipped;
    if (dryRun) return { ...bulkPreview(byState, matching, limit), runningSkipped };
    const ids: string[] = [];
    while (ids.length < limit) {
      const size = Math.min(BULK_BATCH, limit - ids.length);
      const rows = await this.store.deleteMatching(filter, size);
      for (const r of rows) ids.push(r.id);
      if (rows.length < size) break;
    }
    return { ...bulkDone(byState, matching, limit, ids, ids.length), runningSkipped };
  }

  /** Checks a bulk call's filter and options; the limit defaults to DEFAULT_BULK_LIMIT. */
  private bulkStart(filter: JobMatch, options: BulkOptions): { limit: number; dryRun: boolean } {
    this.assertOpen();
    if (typeof filter !== 'object' || filter === null)
      throw new ValidationError('must be an object { partition?, queue?, type?, states?, lookup?, before?, ids? }', 'filter');
    const limit = options.limit ?? DEFAULT_BULK_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BULK_LIMIT)
      throw new ValidationError(`must be a whole number from 1 to ${MAX_BULK_LIMIT}`, 'limit');
    if (filter.before !== undefined && !isUuid(filter.before)) throw new ValidationError('must be a job id', 'filter.before');
    filter.states?.forEach((state, i) => {
      if (!isJobState(state)) throw new ValidationError(`must be one of ${JOB_STATES.join(', ')}`, `filter.states[${i}]`);
    });
    filter.ids?.forEach((id, i) => {
      if (!isUuid(id)) throw new ValidationError('must be a job id', `filter.ids[${i}]`);
    });
    return { limit, dryRun: options.dryRun === true };
  }

  /** Jobs a retry put back in the live table: engines are woken and an `enqueued` event goes out, as for an enqueue. */
  private retried(rows: RetryOutcome[]): void {
    if (rows.length === 0) return;
    const queues = new Map<string, Set<string>>();
    for (const r of rows) queues.set(r.partition, (queues.get(r.partition) ?? new Set()).add(r.queue));
    for (const [partition, set] of queues) this.wake(partition, set);
    if (!this.enqueueEvents || !this.bus?.connected) return;
    const at = new Date();
    const events: JobEvent[] = rows.map((r) => ({
      id: r.id,
      partition: r.partition,
      queue: r.queue,
      type: r.type,
      kind: 'enqueued',
      attempt: r.attempts,
      at,
    }));
    publishJobEvents(this.bus, events, (p) => this.eventProblem(p));
  }
}

/** One row of `client.queueCounts()`. */
export interface QueueCount {
  partition: string;
  queue: string;
  state: JobState;
  count: number;
}

export interface BulkOptions {
  /** At most this many jobs (default 1000, up to 1,000,000); `more` says when more matched. */
  limit?: number;
  /** Only count the jobs the operation would act on. */
  dryRun?: boolean;
}

export interface BulkResult {
  dryRun: boolean;
  /** Jobs that matched the filter when the call began, among those the operation applies to. */
  matching: number;
  /** `matching` by state (for deleteMany, running jobs too, which it leaves alone). */
  byState: Partial<Record<JobState, number>>;
  /** Jobs acted on; in a dry run, how many would be (matching, capped at the limit). */
  count: number;
  /** Ids of the jobs acted on (none in a dry run). */
  ids: string[];
  limit: number;
  /** More jobs matched than the limit let this call take: call again, or raise the limit. */
  more: boolean;
}

export interface RetryManyResult extends BulkResult {
  /** Jobs left finished because another live job holds their queue key. */
  refused: { id: string; queueKey: string; heldBy: string | undefined }[];
}

export interface CancelManyResult extends BulkResult {
  /** Of `count`, the running jobs asked to stop: cancelled once their node aborts them. */
  running: number;
}

export interface DeleteManyResult extends BulkResult {
  /** Running jobs the filter matched: never deleted (their node holds them); cancel them first. */
  runningSkipped: number;
}

/** Extra looks a bulk cancel takes at jobs it counted but whose rows were locked (20, 40, … ms apart). */
const LOCKED_ROUNDS = 5;

/** Jobs per statement of a bulk operation. */
const BULK_BATCH = 1000;
const DEFAULT_BULK_LIMIT = 1000;
const MAX_BULK_LIMIT = 1_000_000;

function sumCounts(byState: Partial<Record<JobState, number>>): number {
  return Object.values(byState).reduce((a, b) => a + (b ?? 0), 0);
}

function bulkPreview(byState: Partial<Record<JobState, number>>, matching: number, limit: number): BulkResult {
  return { dryRun: true, matching, byState, count: Math.min(matching, limit), ids: [], limit, more: matching > limit };
}

function bulkDone(byState: Partial<Record<JobState, number>>, matching: number, limit: number, ids: string[], taken: number): BulkResult {
  return { dryRun: false, matching, byState, count: ids.length, ids, limit, more: taken >= limit && matching > taken };
}

/** Connects to a Partita cluster's Postgres and, when `nats` is given, its bus. Migrates the schema if needed. */
export async function connect(options: ConnectOptions): Promise<Client> {
  if (!options || (typeof options.postgres !== 'string' && typeof options.postgres !== 'object')) {
    throw new ValidationError('connect() needs { postgres: "postgres://…" } (a URL or pg pool options)', 'postgres');
  }
  const logger = options.logger ?? silentLogger();
  const cluster = options.cluster ?? 'default';
  await loadTracing(); // so that this client's first enqueue is traced when OpenTelemetry is set up
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
  return new Client(store, {
    cluster,
    ...(options.jobs ? { jobs: options.jobs } : {}),
    ownsStore: true,
    logger,
    ...(bus ? { bus, ownsBus: true } : {}),
    ...(options.enqueueEvents !== undefined ? { enqueueEvents: options.enqueueEvents } : {}),
  });
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) throw new ValidationError('must be 1-64 letters, digits, _ or -', what);
  return value;
}

/** The key of a partition's queue in the client's table of idle adverts. */
const idleSlot = (partition: string, queue: string) => `${partition}\u0000${queue}`;
