/**
 * `app(client, id)`: the workflow API for programs, the CLI and nodes alike (DESIGN.md's names).
 * Every write (pub, hook, interrupt) is a transaction through the executor, over the client's
 * store, so what it starts or finishes commits with the jobs it enqueues; concurrent pubs share one.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { TimeoutError, ValidationError, childLogger, silentLogger, uuidv4, type Logger } from '@partita/core';
import type { Client } from '@partita/client';
import { clientBus, clientHandOff, clientHandoffTarget, clientStore } from '@partita/client/internal';
import type { Bus } from '@partita/nats';
import type { ClaimedJob, EnqueueOutcome, JobStore, LeasedSent, NewJob, Tx } from '@partita/postgres';
import type { IdleAdvert } from '@partita/protocol';
import { subjects, WF_ROLL_CALL_KIND, type ActivationRollCall } from '@partita/protocol';
import { activeVersionsOf, type ActiveVersions } from './active.js';
import { DEFAULT_ACTIVATION_DELAY_MS, runActivation } from './activation/index.js';
import { compileApp, writeCompiled } from './compile.js';
import { runOn, txDb, wfOps, type Db, type Queryable, type WfOps } from './db.js';
import { UnknownTopicError, VersionConflictError, WorkflowFailedError, WorkflowNotFoundError } from './errors.js';
import {
  Versions,
  deliverHook,
  deliverHookAll,
  graphOf,
  holdWorkflow,
  hookAnswer,
  REENTER_CODE,
  interruptWorkflow,
  resumeWorkflow,
  newEffects,
  rememberCompiled,
  startWorkflows,
  type ActivityRecord,
  type EmitPayload,
  type Effects,
  type InterruptOptions,
  type Scope,
} from './executor.js';
import type { CompiledApp, CompiledGraph } from './model.js';
import type { StartOptions } from './executor.js';
import { afterTransaction } from './plugin.js';
import { outputsOf, waitLocally, type Outcome } from './outputs.js';
import { EVENT_KIND, NOCACHE_KIND, controlSubject, eventSubject, type NocacheMessage } from './subjects.js';

const SERIALIZATION_FAILURE = '40001';

export interface AppOptions {
  /** The partition new workflows run in (pub's `partition` overrides it). Default `default`. */
  partition?: string;
  logger?: Logger;
}

export interface PubOptions {
  id?: string;
  /** Searchable fields (hookAll finds waiting workflows by them through a GIN index; listings filter by them). */
  search?: Record<string, string | number | boolean>;
  partition?: string;
  /**
   * Seconds to hold the workflow before it starts: it is stored with status -1 (pending) and runs
   * nothing until `resume(id)`; not resumed in time, it is removed.
   */
  pending?: number;
}

/** What sub/psub listeners get beside the data: the event as the executor published it. */
export type WorkflowEvent = EmitPayload;

export interface WorkflowState {
  data: Record<string, unknown>;
  metadata: { jid: string; app: string; vrs: string; tpc: string; js: number; jc: Date; ju: Date | null; pj: string | null };
}

export interface ActivityTimeline {
  id: string;
  app: string;
  version: string;
  topic: string;
  status: number;
  activities: {
    activity: string;
    dimension: string;
    type: string;
    state: string;
    jobId: string | null;
    input: unknown;
    output: unknown;
    hook: unknown;
    attempts: number;
    errors: unknown[];
    entered: number;
    startedAt: Date;
    finishedAt: Date | null;
  }[];
}

/** A workflow's status by name: -1 pending, > 0 running, 0 done, −1,000,000,000 interrupted, −1,000,000,001 failed. */
export type WorkflowStatusName = 'pending' | 'running' | 'done' | 'interrupted' | 'failed';
export const WORKFLOW_STATUS_NAMES: readonly WorkflowStatusName[] = ['pending', 'running', 'done', 'interrupted', 'failed'];

export interface ListWorkflowsOptions {
  status?: readonly WorkflowStatusName[];
  /** Searchable fields (pub's `search`) that must all match; values compare as text. */
  search?: Record<string, string | number | boolean>;
  topic?: string;
  /** Default 100. */
  limit?: number;
}

export interface WorkflowSummary {
  id: string;
  app: string;
  version: string;
  topic: string;
  partition: string;
  status: number;
  search: Record<string, unknown>;
  parentId: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

type TxStore = Pick<JobStore, 'withTransaction' | 'pool' | 'schema'>;

/**
 * How long the first roll call of an activation waits for any workflow node before it takes none to
 * run and flips directly, whatever the activation's delayMs: it ends at the first answer, so only an
 * activation with no node waits it out. Bounded by delayMs (250 ms by default, 20 ms in tests), a
 * busy node's late answer was taken for no node, and the flip went past a node that caches the
 * active version (and past one that could not switch).
 */
const NO_NODE_PROBE_MS = 2000;
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 1000;
/** Most pubs written in one transaction, and most such transactions at once per handle. */
const PUB_GROUP_MAX = 500;
const PUB_GROUPS_IN_FLIGHT = 2;

interface QueuedPub {
  start: StartOptions;
  resolve: () => void;
  reject: (err: unknown) => void;
  extra?: PubExtra;
}

/**
 * Rows a layer above workflows writes with a pub, in the pub's transaction after the workflow rows
 * (so they may reference them). The rows of every pub of a group that share a `key` go to one
 * `write` call: one statement per group, not one per pub. Reached through src/internal.ts (the flows).
 */
export interface PubExtra {
  key: string;
  rows: unknown[];
  write(q: Queryable, rows: unknown[]): Promise<void>;
}

export class WorkflowApp {
  private readonly store: TxStore;
  private readonly bus: Bus | undefined;
  private readonly ops: WfOps;
  private readonly versions: Versions;
  private readonly logger: Logger;
  private readonly partition: string;
  /** The active versions as this client sees them (shared by its handles; a node's activation member drives it). */
  private readonly actives: ActiveVersions;
  private watching: Promise<void> | undefined;
  /** The `nocache` subscription is live (watch()): a pub need not wait for it. */
  private watched = false;
  /** pub() calls waiting for a transaction: concurrent pubs are written together (group commit). */
  private readonly pubQueue: QueuedPub[] = [];
  private pubGroups = 0;

  constructor(
    private readonly client: Client,
    readonly id: string,
    options: AppOptions = {},
  ) {
    const store = clientStore(client) as unknown as Partial<TxStore>;
    if (typeof store.withTransaction !== 'function' || !store.pool || !store.schema)
      throw new ValidationError('app(client, id) needs a client made by connect() or a node (node.client)', 'client');
    this.store = store as TxStore;
    this.bus = clientBus(client);
    this.ops = wfOps(this.store.schema);
    this.logger = childLogger(options.logger ?? silentLogger(), { app: id });
    this.partition = options.partition ?? 'default';
    const { pool } = this.store;
    const ops = this.ops;
    this.versions = versionsOf(
      this.store,
      async (appId, version) => (await runOn(pool, ops, 'version_get', [appId, version]))[0]?.definition,
    );
    this.actives = activeVersionsOf(
      client,
      async (appId) => (await runOn<{ active_version: string }>(pool, ops, 'active_get', [appId]))[0]?.active_version,
    );
  }

  private run<R = any>(op: Parameters<typeof runOn>[2], params: unknown[]): Promise<R[]> {
    return runOn<R>(this.store.pool, this.ops, op, params);
  }

  /** Compiles the app, writes the merged JSON beside its source and stores the version (not active until activate). */
  async deploy(pathOrYaml: string): Promise<{ id: string; version: string }> {
    const compiled = await compileApp(pathOrYaml, { logger: this.logger });
    if (compiled.id !== this.id)
      throw new ValidationError(`the file deploys app ${compiled.id}; deploy it with app(client, '${compiled.id}')`, 'app.id');
    if (compiled.source) await writeCompiled(compiled);
    const [row] = await this.run<{ hash: string; inserted: boolean }>('version_insert', [
      compiled.id,
      compiled.version,
      compiled.hash,
      JSON.stringify(compiled.merged),
      compiled.source ?? null,
    ]);
    if (row && !row.inserted && row.hash !== compiled.hash) throw new VersionConflictError(compiled.id, compiled.version);
    rememberCompiled(compiled);
    this.logger.info({ version: compiled.version, hash: compiled.hash, inserted: row?.inserted ?? false }, 'deployed workflow app version');
    return { id: compiled.id, version: compiled.version };
  }

  /**
   * Makes `version` the one new workflows start on, at one moment on every workflow node: the
   * activation protocol (src/activation) over the client's bus — roll call until three equal non-empty
   * answers, `nocache` acknowledged by every node, the flip in Postgres, `activated`. Rejects with
   * QuorumNotReachedError when the nodes did not agree after the retries (nothing flipped), and with
   * ActivationInProgressError while another activation of the app runs.
   *
   * When no workflow node answers a first roll call (none runs, or the client has no bus), nobody
   * caches the active version: it is flipped directly, and the log says so. Clients that are no node
   * (connect()) are not members: they hear a `nocache` broadcast after the flip and read the active
   * version again.
   */
  async activate(version: string, opts: { delayMs?: number } = {}): Promise<void> {
    if ((await this.run('version_get', [this.id, version])).length === 0)
      throw new WorkflowNotFoundError(`app ${this.id} version ${version} (deploy it first)`);
    const flip = async () => {
      await this.run('active_set', [this.id, version]);
    };
    const delayMs = opts.delayMs ?? DEFAULT_ACTIVATION_DELAY_MS;
    if (!Number.isFinite(delayMs) || delayMs < 1) throw new ValidationError('must be a positive number of ms', 'delayMs');
    const bus = this.bus;
    if (!bus || (await this.nobodyAnswers(bus, version, Math.max(delayMs, NO_NODE_PROBE_MS)))) {
      await flip();
      this.logger.info(
        { version },
        'activated workflow app version directly: no workflow node answered the roll call, so none caches the active version (nodes that start later read it from Postgres)',
      );
    } else {
      const result = await runActivation({
        bus,
        cluster: this.client.cluster,
        logger: this.logger,
        appId: this.id,
        version,
        flip,
        delayMs,
      });
      this.logger.info({ version, members: result.members, rounds: result.rounds, ms: result.ms }, 'activated workflow app version');
    }
    this.actives.activated(this.id, version);
    const message: NocacheMessage = { app: this.id, untilVersion: version };
    bus?.publish(controlSubject(this.client.cluster, this.id), NOCACHE_KIND, message);
  }

  /** One roll call: does any workflow node answer? (Unknown, when the bus fails: the protocol decides.) */
  private async nobodyAnswers(bus: Bus, version: string, delayMs: number): Promise<boolean> {
    const call: ActivationRollCall = { activation: uuidv4(), app: this.id, version };
    try {
      const replies = await bus.gather<unknown>(subjects.wfRollCall(this.client.cluster), WF_ROLL_CALL_KIND, call, { delayMs, max: 1 });
      return replies.length === 0;
    } catch {
      return false;
    }
  }

  /** Subscribes to `nocache` once, so an activation elsewhere reaches this handle's cache. */
  private watch(): Promise<void> {
    if (!this.watching) {
      this.watching = this.bus
        ? this.bus
            .subscribe<NocacheMessage>(controlSubject(this.client.cluster, this.id), () => {
              this.actives.forget(this.id);
            })
            .then(() => {
              this.watched = true;
            })
        : Promise.resolve().then(() => {
            this.watched = true;
          });
      this.bus?.onStatus((status) => {
        // Messages may have been missed while away: read the active version again.
        if (status === 'reconnected') this.actives.forget(this.id);
      });
    }
    return this.watching;
  }

  private async activeApp(): Promise<CompiledApp | undefined> {
    await this.watch();
    const version = await this.actives.get(this.id);
    return version === undefined ? undefined : this.versions.get(this.id, version);
  }

  /**
   * The active app and its graph of `topic` when they are at hand (watched, version cached, app
   * compiled), else undefined (graphFor reads or waits): every pub but the first few takes them so,
   * without graphFor's three async calls (a promise and a frame each).
   */
  private readyGraph(topic: string): { app: CompiledApp; graph: CompiledGraph } | undefined {
    if (!this.watched) return undefined;
    const version = this.actives.peek(this.id);
    const app = version === undefined ? undefined : this.versions.ready(this.id, version);
    const graph = app ? graphOf(app, topic) : undefined;
    return app && graph ? { app, graph } : undefined;
  }

  private async graphFor(topic: string): Promise<{ app: CompiledApp; graph: CompiledGraph }> {
    const active = await this.activeApp();
    const graph = active ? graphOf(active, topic) : undefined;
    if (!active || !graph)
      throw new UnknownTopicError(this.id, topic, active ? active.graphs.map((g) => g.subscribes) : [], active?.version);
    return { app: active, graph };
  }

  private validate(graph: CompiledGraph, data: unknown): void {
    if (graph.input?.schema !== undefined) this.check(graph.input.schema, data, `the input of ${graph.subscribes}`, graph.subscribes);
  }

  /** Throws a ValidationError naming the JSON path of the first problem (a missing property names that property). */
  private check(schema: unknown, data: unknown, what: string, fallbackPath: string): void {
    if (typeof schema !== 'object' || schema === null) {
      if (schema === false) throw new ValidationError(`${what} is refused by its schema (false)`, fallbackPath);
      return;
    }
    let check = validators.get(schema as object);
    if (!check) {
      check = new Ajv({ strict: false, allErrors: false, validateFormats: false }).compile(schema as object);
      validators.set(schema as object, check);
    }
    if (check(data)) return;
    const e = check.errors?.[0];
    const segments = (e?.instancePath ?? '')
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e?.keyword === 'required') segments.push(String((e.params as { missingProperty: string }).missingProperty));
    const path = segments.join('.');
    throw new ValidationError(`${what} ${e?.message ?? 'does not match its schema'}; send data matching the schema`, path || fallbackPath);
  }

  private async transaction<T>(fn: (s: Scope, q: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const effects = newEffects();
      const handing: HandingOff = { leased: [], queued: new Set() };
      try {
        // Its statements marked generic (a pub's hand-offs) plan once per connection; the rest as always.
        const result = await this.store.withTransaction(
          (tx) =>
            fn(
              { db: txDb(this.handingOff(tx, handing), this.ops) as Db, versions: this.versions, logger: this.logger, effects },
              tx.client,
            ),
          { genericPlans: true },
        );
        await this.handOver(handing, effects);
        await this.after(effects);
        return result;
      } catch (err) {
        // A workflow this transaction waited for was finished meanwhile, and so moved to its expiry
        // day's partition (40001 rather than the moved row): run again, it then reads the row there.
        if ((err as { code?: string }).code !== SERIALIZATION_FAILURE || attempt >= 3) throw err;
      }
    }
  }

  /**
   * The transaction's enqueue, handing what it can to idle engines: a job (a workflow's first step,
   * the step a hook resumes) for whose queue an engine advertised a free slot lately is stored as that
   * node's running attempt, and handed to it once the transaction committed, so it starts with no
   * wake-up and no claim round trip (as the client's own enqueue does). Its continuation mark goes with
   * it: a node that does not run the workflows' continuation hands it back to the queue.
   */
  private handingOff(tx: Tx, handing: HandingOff): Tx & { enqueueHere: Tx['enqueue'] } {
    return {
      ...tx,
      enqueueHere: async (jobs: NewJob[]): Promise<EnqueueOutcome[]> => {
        const targets = jobs.map((j) => (j.runAt === undefined ? clientHandoffTarget(this.client, j.partition, j) : undefined));
        const queued = jobs.filter((_, i) => !targets[i]);
        for (const j of queued) handing.queued.add(wakeKey(j));
        const outcomes = queued.length > 0 ? await tx.enqueue(queued) : [];
        // One statement per target node (there is usually one).
        const byNode = new Map<string, { target: IdleAdvert; at: number[] }>();
        targets.forEach((target, i) => {
          if (!target) return;
          const group = byNode.get(target.node);
          if (group) group.at.push(i);
          else byNode.set(target.node, { target, at: [i] });
        });
        const leased = new Map<number, string>();
        for (const { target, at } of byNode.values()) {
          // Sent last: the COMMIT follows without waiting for its answer, which is read once committed.
          const sent = await tx.sendLeased(
            at.map((i) => jobs[i]!),
            target.node,
            target.leaseMs,
          );
          sent.ids.forEach((id, k) => leased.set(at[k]!, id));
          handing.leased.push({ target, jobs: at.map((i) => jobs[i]!), sent });
        }
        let q = 0;
        return jobs.map((_, i): EnqueueOutcome => {
          const id = leased.get(i);
          return id !== undefined ? { id } : outcomes[q++]!;
        });
      },
    };
  }

  /** After the commit: hands the jobs stored as idle nodes' to them; their queues need no wake-up for them. */
  private async handOver(handing: HandingOff, effects: Effects): Promise<void> {
    const handed: { target: IdleAdvert; job: ClaimedJob }[] = [];
    // Their statements were answered before the COMMIT (a failure among them failed it).
    for (const { target, jobs, sent } of handing.leased)
      (await sent.stored).forEach(({ claimed }, k) => {
        if (claimed) handed.push({ target, job: claimed });
        // Stored queued (its queue is paused in Postgres): a claim takes it once the queue runs.
        else handing.queued.add(wakeKey(jobs[k]!));
      });
    if (handed.length === 0) return;
    for (const { job } of handed) {
      const key = wakeKey(job);
      if (!handing.queued.has(key)) effects.wakes.delete(key);
    }
    await Promise.all(handed.map(({ target, job }) => clientHandOff(this.client, target, job)));
  }

  /** After the commit: wake the queues the transaction enqueued into (as the client's enqueue does), cancel interrupted steps. */
  private after(effects: Effects): Promise<void> {
    return afterTransaction(this.client, this.logger, effects);
  }

  /** Starts a workflow on the active version; resolves with its id once it is stored. */
  pub(topic: string, data: unknown = {}, opts: PubOptions = {}): Promise<string> {
    return this.pubWith(topic, data, opts);
  }

  /** pub, with rows of a layer above written in its transaction (src/internal.ts). */
  async pubWith(topic: string, data: unknown, opts: PubOptions, extra?: PubExtra): Promise<string> {
    const { app, graph } = this.readyGraph(topic) ?? (await this.graphFor(topic));
    this.validate(graph, data);
    if (opts.pending !== undefined && !(typeof opts.pending === 'number' && opts.pending > 0 && Number.isFinite(opts.pending)))
      throw new ValidationError(`pending must be a number of seconds > 0, not ${JSON.stringify(opts.pending)}`, 'pending');
    const id = opts.id ?? uuidv4();
    const start: StartOptions = { app, graph, id, data, search: opts.search ?? {}, partition: opts.partition ?? this.partition };
    // A pending pub writes no step and runs nothing: it takes its own transaction rather than a group.
    if (opts.pending !== undefined) {
      const pendingS = opts.pending;
      await this.transaction(async (s, q) => {
        await holdWorkflow(s, { ...start, pendingS });
        if (extra) await extra.write(q, extra.rows);
      });
      return id;
    }
    await new Promise<void>((resolve, reject) => {
      this.pubQueue.push({ start, resolve, reject, ...(extra ? { extra } : {}) });
      this.writePubs();
    });
    return id;
  }

  /**
   * Starts a workflow published with `pending`, on the version it was published on, with the data it
   * was published with. False when it is not pending: already resumed, ended, expired or unknown.
   */
  async resume(id: string): Promise<boolean> {
    return this.transaction((s) => resumeWorkflow(s, this.id, id));
  }

  /**
   * Writes queued pubs, up to PUB_GROUP_MAX per transaction: one pub alone goes at once, pubs that
   * arrive while a group commits go in the next. A group that fails is written again one pub per
   * transaction, so one bad pub (a taken id) fails alone.
   */
  private writePubs(): void {
    while (this.pubGroups < PUB_GROUPS_IN_FLIGHT && this.pubQueue.length > 0) {
      const group = this.pubQueue.splice(0, PUB_GROUP_MAX);
      this.pubGroups += 1;
      void this.writePubGroup(group).finally(() => {
        this.pubGroups -= 1;
        this.writePubs();
      });
    }
  }

  private async writePubGroup(group: QueuedPub[]): Promise<void> {
    try {
      await this.transaction((s, q) => startGroup(s, q, group));
      for (const p of group) p.resolve();
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err);
      await Promise.all(
        group.map((p) =>
          this.transaction((s, q) => startGroup(s, q, [p])).then(
            () => p.resolve(),
            (e: unknown) => p.reject(e),
          ),
        ),
      );
    }
  }

  /**
   * Starts a workflow and resolves with its output (its data when it finished); rejects WorkflowFailedError or TimeoutError.
   * The output comes over the bus (one subscription per output subject, shared by every pubsub on the
   * client); Postgres is read as the safety net for a missed message, and is the only source without a
   * bus. That read sees the workflow's outcome whatever its graph's `expire`: with `expire: 0` a finished
   * workflow is gone to every other reader at once, but not to the caller waiting on it.
   */
  async pubsub(topic: string, data: unknown = {}, opts: PubOptions & { timeoutMs?: number } = {}): Promise<unknown> {
    const { graph } = await this.graphFor(topic);
    const id = opts.id ?? uuidv4();
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let settle!: (o: Outcome) => void;
    const arrived = new Promise<Outcome>((resolve) => (settle = resolve));
    const subject = eventSubject(this.client.cluster, this.id, graph.publishes ?? graph.subscribes);
    const waiting = this.bus ? outputsOf(this.bus).wait(subject, id, settle, this.logger) : undefined;
    const waitingHere = waitLocally(this.store.schema, subject, id, settle);
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    try {
      // Not one after the other: a new subscription's SUB is on the wire before the pub's first
      // statement, and the output is published only after the pub committed and the workflow ran, so
      // the server's acknowledgement need not come before the pub starts (it cost a NATS round trip).
      await Promise.all([this.pub(topic, data, { ...opts, id }), waiting?.live]);
      const poll = (async () => {
        let wait = this.bus ? POLL_MAX_MS : POLL_MIN_MS;
        while (!stopped) {
          await new Promise((r) => setTimeout(r, wait));
          if (stopped) return;
          const [row] = await this.run<{ status: string; output: unknown }>('workflow_outcome', [id, this.id]);
          const status = row ? Number(row.status) : undefined;
          if (status !== undefined && status <= 0 && status !== -1) {
            settle({ status, data: row!.output });
            return;
          }
          wait = Math.min(POLL_MAX_MS, wait * 2);
        }
      })();
      poll.catch((err) => this.logger.warn({ err, id }, 'reading a workflow for pubsub failed'));
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`pubsub(${topic}) of workflow ${id}`, timeoutMs)), timeoutMs);
      });
      const out = await Promise.race([arrived, timeout]);
      if (out.status !== 0) throw new WorkflowFailedError(id, out.status, out.data);
      return out.data;
    } finally {
      stopped = true;
      if (timer) clearTimeout(timer);
      waiting?.stop();
      waitingHere();
    }
  }

  /** Outputs and emitted data published under `topic` (a graph's `publishes`, or its `subscribes` when it has none). */
  sub(topic: string, cb: (data: unknown, event: WorkflowEvent) => void): Promise<() => Promise<void>> {
    return this.psub(topic, cb);
  }

  /** As sub, with NATS wildcards over the topic's tokens (`user.*`, `user.>`). */
  async psub(pattern: string, cb: (data: unknown, event: WorkflowEvent) => void): Promise<() => Promise<void>> {
    if (!this.bus) throw new ValidationError('sub/psub need a bus: connect the client with nats', 'nats');
    return this.bus.subscribe<EmitPayload>(
      eventSubject(this.client.cluster, this.id, pattern),
      (p) => {
        if (!p || typeof p.id !== 'string') {
          this.logger.warn({ pattern }, 'a malformed workflow event was dropped');
          return;
        }
        cb(p.data, { ...p });
      },
      { kinds: [EVENT_KIND] },
    );
  }

  /**
   * Re-enters the waiting hook activity that the app's `hooks:` rules for `topic` select, with `data`.
   * None waiting yet: the signal is kept (the graph's expire) and delivered when one starts waiting;
   * resolves with the workflow's id, or undefined when the signal was kept. `status` and `code` (see
   * HookOptions) say how it answers: closes the activity, keeps it waiting, or fails it.
   */
  async hook(topic: string, data: unknown, opts: HookOptions = {}): Promise<string | undefined> {
    const answer = hookAnswer(checkHookStatus(opts), opts.code);
    const active = await this.hookApp(topic, data);
    return this.transaction((s) => deliverHook(s, active, topic, data, { keep: true, answer }));
  }

  /** Re-enters every workflow waiting on `topic` whose searchable field `key` (pub's `search`) is `value`; their ids. */
  async hookAll(topic: string, data: unknown, opts: { key: string; value: string | number | boolean }): Promise<string[]> {
    if (typeof opts?.key !== 'string' || opts.key === '' || !['string', 'number', 'boolean'].includes(typeof opts.value))
      throw new ValidationError('hookAll needs { key, value }: a searchable field given to pub (search) and its value', 'key');
    await this.hookApp(topic, data);
    return this.transaction((s) => deliverHookAll(s, this.id, topic, data, { [opts.key]: opts.value }));
  }

  /** The active app, if one of its graphs has hook rules for `topic` (else UnknownTopicError) and `data` fits their schemas. */
  private async hookApp(topic: string, data: unknown): Promise<CompiledApp> {
    const active = await this.activeApp();
    if (!active || !active.graphs.some((g) => g.hooks.some((h) => h.topic === topic)))
      throw new UnknownTopicError(this.id, topic, active ? active.graphs.flatMap((g) => g.hooks.map((h) => h.topic)) : [], active?.version);
    this.validateHook(active, topic, data);
    return active;
  }

  /** Data for a hook topic must match the `hook.schema` of the activities its rules re-enter. */
  private validateHook(active: CompiledApp, topic: string, data: unknown): void {
    for (const g of active.graphs)
      for (const rule of g.hooks.filter((h) => h.topic === topic)) {
        const schema = g.activities[rule.to]?.hook?.schema;
        if (schema !== undefined) this.check(schema, data, `the data of hook ${topic}`, topic);
      }
  }

  /**
   * Interrupts a running or pending workflow (status −1,000,000,000); `descend`: its children too.
   * `throw` (default true): a parent awaiting it fails with `{ code, message: reason }` (code default
   * 410); `throw: false`: the parent's await completes with `{ interrupted, reason, code }`.
   * False when the workflow had already finished (or is unknown).
   */
  async interrupt(_topic: string | undefined, id: string, opts: InterruptOptions = {}): Promise<boolean> {
    if (opts.code !== undefined && !Number.isInteger(opts.code))
      throw new ValidationError(`interrupt code must be an integer such as 410, not ${JSON.stringify(opts.code)}`, 'code');
    return this.transaction((s) => interruptWorkflow(s, id, opts));
  }

  private async row(id: string) {
    const [row] = await this.run('workflow_get', [id, this.id]);
    if (!row) throw new WorkflowNotFoundError(`workflow ${id} of app ${this.id}`);
    return row;
  }

  /** -1 pending · > 0 open activities · 0 done · −1,000,000,000 interrupted · −1,000,000,001 failed. */
  async getStatus(id: string): Promise<number> {
    return Number((await this.row(id)).status);
  }

  async getState(_topic: string, id: string): Promise<WorkflowState> {
    const row = await this.row(id);
    return {
      data: row.data,
      metadata: {
        jid: row.id,
        app: row.app_id,
        vrs: row.version,
        tpc: row.topic,
        js: Number(row.status),
        jc: row.created_at,
        ju: row.finished_at,
        pj: row.parent_id,
      },
    };
  }

  async getQueryState(id: string, fields: readonly string[]): Promise<Record<string, unknown>> {
    const data = (await this.row(id)).data as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      let cur: unknown = data;
      for (const seg of f.split('.')) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
      out[f] = cur;
    }
    return out;
  }

  /** The activity timeline: every activity record (one per cycle pass) in the order they started. */
  async export(id: string): Promise<ActivityTimeline> {
    const row = await this.row(id);
    const records = await this.run<ActivityRecord & { entered: number; started_at: Date; finished_at: Date | null }>('activities_of', [id]);
    return {
      id,
      app: row.app_id,
      version: row.version,
      topic: row.topic,
      status: Number(row.status),
      activities: records.map((r) => ({
        activity: r.activity,
        dimension: r.dimension,
        type: r.type,
        state: r.state,
        jobId: r.job_id,
        input: (r.input as { data?: unknown } | null)?.data,
        output: (r.output as { data?: unknown } | null)?.data,
        hook: (r.hook as { data?: unknown } | null)?.data,
        attempts: r.attempts,
        errors: r.errors,
        entered: r.entered,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
      })),
    };
  }

  /** The app's workflows, newest first, filtered by status names, searchable fields and topic. */
  async list(opts: ListWorkflowsOptions = {}): Promise<WorkflowSummary[]> {
    const unknown = (opts.status ?? []).filter((st) => !WORKFLOW_STATUS_NAMES.includes(st));
    if (unknown.length)
      throw new ValidationError(`unknown status ${unknown.join(', ')}; use ${WORKFLOW_STATUS_NAMES.join(', ')}`, 'status');
    const rows = await this.run('workflows_list', [
      this.id,
      opts.status?.length ? opts.status : null,
      JSON.stringify(Object.fromEntries(Object.entries(opts.search ?? {}).map(([k, v]) => [k, String(v)]))),
      opts.topic ?? null,
      opts.limit ?? 100,
    ]);
    return rows.map((r) => ({
      id: r.id,
      app: r.app_id,
      version: r.version,
      topic: r.topic,
      partition: r.partition,
      status: Number(r.status),
      search: r.search,
      parentId: r.parent_id,
      createdAt: r.created_at,
      finishedAt: r.finished_at,
    }));
  }

  /**
   * Removes a finished (or pending) workflow and its records now; finished ones also go by themselves
   * after their graph's expire. A running workflow is refused: interrupt it first. Unknown: nothing to do.
   */
  async scrub(id: string): Promise<void> {
    if ((await this.run('workflow_scrub', [id, this.id])).length > 0) return;
    const [row] = await this.run('workflow_get', [id, this.id]);
    if (row && Number(row.status) > 0)
      throw new ValidationError(`workflow ${id} is running; interrupt(topic, '${id}') it first, then scrub it`, 'id');
  }
}

/**
 * Compiled versions, shared by every handle over one store (one database schema): a version is
 * immutable once deployed, so a handle made per request compiles nothing again.
 */
const versionsByStore = new WeakMap<object, Versions>();
function versionsOf(store: object, load: ConstructorParameters<typeof Versions>[0]): Versions {
  let versions = versionsByStore.get(store);
  if (!versions) versionsByStore.set(store, (versions = new Versions(load)));
  return versions;
}

/** How a hook() answers the activity it re-enters (HotMesh's stream status and response code). */
export interface HookOptions {
  /**
   * 'success' (the default): the activity completes and its transitions for `code` run. 'pending':
   * it answers and keeps waiting for another hook (code 202): the transitions that name code 202 run,
   * each answer in a pass of its own. 'error': the activity fails with `{ code, data }`, and so its
   * workflow, unless one of its transitions names that code (default 500), which then routes it.
   */
  status?: HookStatus;
  /** The response code transitions and hook rules match (100–599): 200 by default; 202 keeps the hook waiting. */
  code?: number;
}

export type HookStatus = 'success' | 'pending' | 'error';

const HOOK_STATUSES: readonly string[] = ['success', 'pending', 'error'] satisfies HookStatus[];

/** hook()'s status and code, checked together: the status it names (or undefined). */
function checkHookStatus(opts: HookOptions): HookStatus | undefined {
  const { status, code } = opts;
  if (status !== undefined && !HOOK_STATUSES.includes(status))
    throw new ValidationError(`hook status must be 'success', 'pending' or 'error', not ${JSON.stringify(status)}`, 'status');
  if (code !== undefined && (!Number.isInteger(code) || code < 100 || code > 599))
    throw new ValidationError(`hook code must be a status code such as 200 or 202 (100–599), not ${JSON.stringify(code)}`, 'code');
  if (status === 'pending' && code !== undefined && code !== REENTER_CODE)
    throw new ValidationError(`a pending hook answers with code 202 (it keeps the activity waiting), not ${code}`, 'code');
  if (code === REENTER_CODE && status !== undefined && status !== 'pending')
    throw new ValidationError(`code 202 keeps the activity waiting: its status is 'pending', not '${status}'`, 'status');
  if (status === 'error' && code !== undefined && code < 400)
    throw new ValidationError(`an error answers with a code from 400 to 599, not ${code}`, 'code');
  return status;
}

/** Input and hook validators by JSON Schema object: the schemas of a compiled version, shared as the versions are. */
const validators = new WeakMap<object, ValidateFunction>();

/** Starts a group of pubs in one transaction, then writes their extra rows, one write per key. */
async function startGroup(s: Scope, q: Queryable, group: QueuedPub[]): Promise<void> {
  await startWorkflows(
    s,
    group.map((p) => p.start),
  );
  const extras = new Map<string, { write: PubExtra['write']; rows: unknown[] }>();
  for (const p of group) {
    if (!p.extra) continue;
    const e = extras.get(p.extra.key);
    if (e) e.rows.push(...p.extra.rows);
    else extras.set(p.extra.key, { write: p.extra.write, rows: [...p.extra.rows] });
  }
  for (const e of extras.values()) if (e.rows.length > 0) await e.write(q, e.rows);
}

/** What a transaction handed to idle nodes (sent after its commit), and the queues it enqueued into the usual way. */
interface HandingOff {
  /** The jobs sent as idle nodes' running attempts (sendLeased, sent last): which were leased is read once committed. */
  leased: { target: IdleAdvert; jobs: NewJob[]; sent: LeasedSent }[];
  queued: Set<string>;
}

/** A queue as Effects.wakes names it. */
const wakeKey = (job: { partition: string; queue?: string }) => `${job.partition}\u0000${job.queue ?? 'default'}`;

/** A handle on workflow app `id` over a client (or node.client). */
export function app(client: Client, id: string, options: AppOptions = {}): WorkflowApp {
  return new WorkflowApp(client, id, options);
}
