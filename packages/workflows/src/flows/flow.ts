/**
 * defineFlow: guild-queues' Flow on Partita. A flow is one workflow app (compile.ts); a flow job is a
 * workflow of its main graph, whose data is the job's one state record ({ params, state, stage, and
 * the children's records after a fan-in }). createJob publishes it with its lookup rows in the same
 * transaction; stage workers are job definitions (jobs()) that a node runs; events come from the
 * workflow events on the bus.
 */
import { randomUUID } from 'node:crypto';
import { ValidationError, childLogger, silentLogger, type Logger } from '@partita/core';
import type { Client } from '@partita/client';
import { clientStore } from '@partita/client/internal';
import {
  defineJob,
  startNode,
  type Continuation,
  type JobContext,
  type JobDefinition,
  type NodeOptions,
  type PartitaNode,
} from '@partita/runtime';
import { ActivationInProgressError } from '../activation/index.js';
import { app, type WorkflowApp, type WorkflowEvent } from '../app.js';
import { FAILED, INTERRUPTED } from '../errors.js';
import { pubWith } from '../internal.js';
import { workflowsPlugin } from '../plugin.js';
import {
  childIdOf,
  compileFlow,
  currentStage,
  jobQueueOf,
  jobTypeOf,
  childIdsKey,
  childItemsKey,
  type CompiledFlow,
  type FlowQueueOptions,
} from './compile.js';
import { flowOps, rawOp, runOn, type Queryable } from './db.js';
import { FlowDefinitionError, FlowNotStartedError } from './errors.js';
import { lookupRows, lookupValue, type KeyRow } from './lookup.js';
import { FLOWS_PLUGIN, flowsPlugin } from './plugin.js';

export interface FlowOptions<LookupKey extends string = string> {
  name: string;
  /** Partition the flow's jobs run in (default `default`). */
  partition?: string;
  logger?: Logger;
  queues: FlowQueueOptions<LookupKey>[];
  /** Seconds a finished flow job (and its lookup rows) is kept (the graphs' `expire`; default 3600, -1 forever). */
  expire?: number;
}

export type FlowJobStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A flow job as getJobsByKey returns it. */
export interface FlowJob<Job = Record<string, unknown>, Params = Record<string, unknown>> {
  id: string;
  /** The stage (queue) it is in, or was in when it ended; undefined before its first stage. */
  stage: string | undefined;
  status: FlowJobStatus;
  params: Params;
  /** The job's state record: its params merged with every stage's return value so far. */
  state: Job;
  /** The final state when completed. */
  result: Job | undefined;
  /** When failed or cancelled: the stage and the error. */
  error?: { stage: string | undefined; error: unknown };
  /** Child queue → the children's ids (element order), or the child jobs themselves with resolveChildren. */
  children: Record<string, string[]> | Record<string, FlowJob<Record<string, unknown>, unknown>[]>;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What a stage worker gets. */
export interface FlowWorkerJob<Job = Record<string, unknown>, Params = Record<string, unknown>> {
  id: string;
  queue: string;
  params: Params;
  state: Job;
  /** After a parent stage: each child queue's children (id, params, final state), in the order returned. */
  children: Record<string, { id: string; params: unknown; state: unknown }[]>;
  attempt: number;
  signal: AbortSignal;
  logger: Logger;
}

/** What a child worker gets: its own params and its slice of the state (merged with its returns). */
export interface FlowChildJob<ChildState = Record<string, unknown>, ChildParams = unknown> {
  id: string;
  parentId: string;
  /** Position among its siblings of the same child queue. */
  index: number;
  queue: string;
  params: ChildParams;
  state: ChildState;
  /** In a child chain, after a stage of it with children of its own: those children (as FlowWorkerJob's). */
  children: Record<string, { id: string; params: unknown; state: unknown }[]>;
  attempt: number;
  signal: AbortSignal;
  logger: Logger;
}

export type FlowEvent =
  | { type: 'stage'; id: string; stage: string; state: unknown; parentId?: string }
  | { type: 'completed'; id: string; result: unknown }
  | { type: 'failed'; id: string; stage: string | undefined; error: unknown; cancelled: boolean };
type EventName = FlowEvent['type'];
type EventOf<E extends EventName> = Extract<FlowEvent, { type: E }>;

export type StartAllOptions = (Omit<NodeOptions, 'jobs'> & { jobs?: JobDefinition[] }) | { node: PartitaNode };

interface WorkerSpec {
  queue: string;
  concurrency: number;
  definition: JobDefinition;
}

const STATUS_PENDING = -1;

/** Reads a flow's state record (workflow data). */
interface FlowData {
  params?: unknown;
  state?: Record<string, unknown>;
  stage?: string;
  parent?: string;
  index?: number;
  [key: string]: unknown;
}

export class Flow<
  Job extends object = Record<string, unknown>,
  Params extends object = Record<string, unknown>,
  LookupKey extends string = string,
> {
  readonly name: string;
  readonly partition: string;
  private readonly compiled: CompiledFlow;
  /** Indexed at createJob: the main chain's queues' attributes. */
  private readonly lookupAttributes: string[];
  /** Child queue → the attributes of its chain's queues, indexed when a parent stage creates its children. */
  private readonly childAttributes = new Map<string, string[]>();
  /** Every attribute getJobsByKey may be asked for. */
  private readonly allAttributes: string[];
  private readonly logger: Logger;
  private readonly workers = new Map<string, WorkerSpec>();
  private client: Client | undefined;
  private ownNode: PartitaNode | undefined;
  /** The node startAll started or joined, and the job queues it started there, in flow order. */
  private node: PartitaNode | undefined;
  private started: string[] = [];
  /** The queues in the order the definition lists them: startAll starts them in it, stopAll stops in reverse. */
  private readonly order: string[];
  private wf: WorkflowApp | undefined;
  private deployed: Promise<void> | undefined;
  private readonly listeners: { [E in EventName]: ((e: EventOf<E>) => void)[] } = { stage: [], completed: [], failed: [] };
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribing: Promise<void> | undefined;

  constructor(options: FlowOptions<LookupKey>) {
    if (typeof options !== 'object' || options === null) throw new ValidationError('defineFlow needs { name, queues }');
    const expire = options.expire ?? 3600;
    if (!Number.isInteger(expire) || (expire < 0 && expire !== -1))
      throw new FlowDefinitionError(String(options.name), 'expire must be whole seconds ≥ 0, or -1 to keep finished jobs', 'expire');
    this.compiled = compileFlow(options.name, options.queues, expire);
    this.name = options.name;
    this.partition = options.partition ?? 'default';
    this.logger = childLogger(options.logger ?? silentLogger(), { flow: this.name });
    // guild-queues indexes each queue's lookup attributes; a job is created in the first queue with all
    // its params, so the union of a chain's attributes is indexed when its job is created: the main
    // chain's at createJob, a child chain's when its parent stage's outcome creates the children.
    const byName = new Map(options.queues.map((q) => [q.name, q]));
    const chainAttributes = (root: string): string[] => {
      const attrs = new Set<string>();
      for (let q = byName.get(root); q; q = q.nextQueue === undefined ? undefined : byName.get(q.nextQueue))
        for (const a of q.lookupAttributes ?? []) attrs.add(a);
      return [...attrs];
    };
    this.lookupAttributes = chainAttributes(options.queues[0]!.name);
    for (const [topic, root] of this.compiled.rootOf)
      if (topic !== this.compiled.mainTopic) this.childAttributes.set(root, chainAttributes(root));
    this.allAttributes = [...new Set([...this.lookupAttributes, ...[...this.childAttributes.values()].flat()])];
    this.order = options.queues.map((q) => q.name);
  }

  /** The workflow app id the flow compiles to (status, export and the dashboard show it). */
  get appId(): string {
    return this.compiled.appId;
  }

  /** The job type of a stage (its job queue has the same name). */
  jobType(queue: string): string {
    this.queue(queue);
    return jobTypeOf(this.name, queue);
  }

  private queue(queue: string) {
    const q = this.compiled.queues.get(queue);
    if (!q)
      throw new FlowDefinitionError(
        this.name,
        `${queue} is not one of its queues (${[...this.compiled.queues.keys()].join(', ')})`,
        'queue',
      );
    return q;
  }

  private register(
    queue: string,
    concurrency: number | undefined,
    perform: (payload: { id: string; data: FlowData }, ctx: JobContext) => Promise<unknown>,
    continuation?: Continuation<{ id: string; data: FlowData }>,
  ) {
    const q = this.queue(queue);
    if (this.workers.has(queue)) throw new FlowDefinitionError(this.name, `queue ${queue} already has workers`, 'queue');
    const c = concurrency ?? 1;
    if (!Number.isInteger(c) || c < 1)
      throw new ValidationError(`concurrency must be an integer ≥ 1, not ${JSON.stringify(concurrency)}`, 'concurrency');
    const definition = defineJob<{ id: string; data: FlowData }>({
      type: jobTypeOf(this.name, queue),
      queue: jobQueueOf(this.name, queue),
      maxAttempts: q.options.maxAttempts ?? 1,
      ...(q.options.backoff ? { backoff: q.options.backoff } : {}),
      ...(q.options.timeoutMs ? { timeoutMs: q.options.timeoutMs } : {}),
      ...(continuation ? { continuation } : {}),
      perform,
    });
    this.workers.set(queue, { queue, concurrency: c, definition });
  }

  /** Workers of a plain stage: the return value (an object, or nothing) is merged into the job's state. */
  createWorkers(
    queue: string,
    fn: (job: FlowWorkerJob<Job, Params>) => Partial<Job> | void | Promise<Partial<Job> | void>,
    opts: { concurrency?: number } = {},
  ): this {
    if (this.queue(queue).role !== 'plain')
      throw new FlowDefinitionError(
        this.name,
        `queue ${queue} is a ${this.queue(queue).role} queue; use create${this.queue(queue).role === 'parent' ? 'Parent' : 'Child'}Workers`,
        'queue',
      );
    this.register(queue, opts.concurrency, async (p, ctx) => ({ patch: patchOf(queue, await fn(this.workerJob(queue, p, ctx))) }));
    return this;
  }

  /**
   * Workers of a parent stage: return the children's params, an array (one child queue) or
   * `{ [childQueue]: params[] }`. The flow goes on when the last child has finished.
   */
  createParentWorkers<ChildParams = unknown>(
    queue: string,
    fn: (
      job: FlowWorkerJob<Job, Params>,
    ) => ChildParams[] | Record<string, ChildParams[]> | Promise<ChildParams[] | Record<string, ChildParams[]>>,
    opts: { concurrency?: number } = {},
  ): this {
    const q = this.queue(queue);
    if (q.role !== 'parent')
      throw new FlowDefinitionError(this.name, `queue ${queue} has no children; use createWorkers or createChildWorkers`, 'queue');
    const childQueues = (q.options.children ?? []).map((c) => c.queue);
    this.register(
      queue,
      opts.concurrency,
      async (p, ctx) => {
        const out = await fn(this.workerJob(queue, p, ctx));
        const children: Record<string, unknown[]> = Object.fromEntries(childQueues.map((c) => [c, []]));
        if (Array.isArray(out)) {
          if (childQueues.length !== 1)
            throw new ValidationError(
              `parent stage ${queue} has ${childQueues.length} child queues; return { ${childQueues.join(': [...], ')}: [...] }`,
              queue,
            );
          children[childQueues[0]!] = out;
        } else if (out && typeof out === 'object') {
          for (const [k, v] of Object.entries(out)) {
            if (!childQueues.includes(k))
              throw new ValidationError(
                `parent stage ${queue} returned children for ${k}, which is not one of its child queues (${childQueues.join(', ')})`,
                queue,
              );
            if (!Array.isArray(v))
              throw new ValidationError(`parent stage ${queue}: the children of ${k} must be an array of params`, queue);
            children[k] = v;
          }
        } else
          throw new ValidationError(`parent stage ${queue} must return its children's params (an array, or { childQueue: [...] })`, queue);
        return { patch: {}, children };
      },
      this.childKeysContinuation(queue, childQueues),
    );
    return this;
  }

  /**
   * A parent stage's job definition continuation: in the transaction that records the stage's outcome
   * (the one whose transition creates the children), the children's lookup rows, under the ids the
   * executor gives them. Rolled back with the transition; rows of children not created (the parent
   * was interrupted meanwhile) find nothing and the sweep removes them.
   */
  private childKeysContinuation(queue: string, childQueues: string[]): Continuation<{ id: string; data: FlowData }> | undefined {
    if (!childQueues.some((c) => (this.childAttributes.get(c) ?? []).length > 0)) return undefined;
    return async (tx, jobs) => {
      const rows: KeyRow[] = [];
      for (const job of jobs) {
        if (job.state !== 'completed') continue;
        const children = (job.result as { children?: Record<string, unknown[]> } | undefined)?.children ?? {};
        childQueues.forEach((c, fan) => {
          const attrs = this.childAttributes.get(c) ?? [];
          if (attrs.length === 0) return;
          (children[c] ?? []).forEach((params, i) => {
            if (isRecord(params)) rows.push(...lookupRows(this.name, childIdOf(job.payload.id, queue, fan, i), params, attrs));
          });
        });
      }
      if (rows.length > 0) await tx.query(rawOp('keys_insert'), [JSON.stringify(rows)]);
    };
  }

  /** Workers of a child queue: each child reads and writes its own slice of state (its params, merged with its returns). */
  createChildWorkers<ChildState extends object = Record<string, unknown>, ChildParams = unknown>(
    queue: string,
    fn: (job: FlowChildJob<ChildState, ChildParams>) => Partial<ChildState> | void | Promise<Partial<ChildState> | void>,
    opts: { concurrency?: number } = {},
  ): this {
    if (this.queue(queue).role !== 'child')
      throw new FlowDefinitionError(this.name, `queue ${queue} is no child queue; use createWorkers or createParentWorkers`, 'queue');
    this.register(queue, opts.concurrency, async (p, ctx) => {
      const data = p.data ?? {};
      const out = await fn({
        id: p.id,
        parentId: String(data.parent ?? ''),
        index: Number(data.index ?? 0),
        queue,
        params: data.params as ChildParams,
        state: (isRecord(data.state) ? data.state : {}) as ChildState,
        children: this.childrenOf(data),
        attempt: ctx.attempt,
        signal: ctx.signal,
        logger: ctx.logger,
      });
      return { patch: patchOf(queue, out) };
    });
    return this;
  }

  private workerJob(queue: string, p: { id: string; data: FlowData }, ctx: JobContext): FlowWorkerJob<Job, Params> {
    const data = p.data ?? {};
    return {
      id: p.id,
      queue,
      params: data.params as Params,
      state: (isRecord(data.state) ? data.state : {}) as Job,
      children: this.childrenOf(data),
      attempt: ctx.attempt,
      signal: ctx.signal,
      logger: ctx.logger,
    };
  }

  /** The children's records a fan-in wrote into the data, by child queue. */
  private childrenOf(data: FlowData): Record<string, { id: string; params: unknown; state: unknown }[]> {
    const out: Record<string, { id: string; params: unknown; state: unknown }[]> = {};
    for (const [queue] of this.compiled.childKeys) {
      const items = data[childItemsKey(queue)];
      const ids = data[childIdsKey(queue)];
      if (!Array.isArray(items)) continue;
      out[queue] = items.map((it, i) => ({
        id: Array.isArray(ids) ? String(ids[i]) : '',
        params: (it as FlowData)?.params,
        state: (it as FlowData)?.state,
      }));
    }
    return out;
  }

  /** The job definitions of the workers created so far: export them from a node's jobs module. */
  jobs(): JobDefinition[] {
    return [...this.workers.values()].map((w) => w.definition);
  }

  /** The queues (with the workers' concurrency) a node running this flow's workers needs, for its partitions config. */
  queueConfig(): Record<string, { concurrency: number }> {
    return Object.fromEntries([...this.workers.values()].map((w) => [jobQueueOf(this.name, w.queue), { concurrency: w.concurrency }]));
  }

  /**
   * The job queues of the stages with workers here, in flow order. A node that loads flow.jobs() from
   * its jobs module can list them in its `stoppedQueues` option, so that startAll({ node }) starts them in order.
   */
  jobQueues(): string[] {
    return this.order.filter((q) => this.workers.has(q)).map((q) => jobQueueOf(this.name, q));
  }

  /** Creates and reads jobs through this client (a program that runs no workers). */
  useClient(client: Client): this {
    this.client = client;
    this.wf = app(client, this.compiled.appId, { partition: this.partition, logger: this.logger });
    this.deployed = undefined;
    if (this.hasListeners()) void this.subscribe();
    return this;
  }

  /**
   * Starts the flow: with node options, a node (workflows and flows plugins, the flow's workers and
   * their queues added to `partitions[partition]`); with `{ node }`, on a running node whose jobs
   * include flow.jobs(). Then deploys the flow's app and makes its version active (skipped when it is).
   */
  async startAll(options: StartAllOptions = {}): Promise<PartitaNode> {
    if (this.client) throw new ValidationError(`flow ${this.name} is already started; stopAll() first`, 'startAll');
    let node: PartitaNode;
    if ('node' in options) node = options.node;
    else {
      const missing = [...this.compiled.queues.keys()].filter((q) => !this.workers.has(q));
      if (missing.length > 0)
        this.logger.warn({ missing }, 'stages without workers on this node: their jobs wait for a node that runs them');
      const partitions = { ...(options.partitions ?? {}) };
      const own = partitions[this.partition];
      // The executor's own jobs (event publications, sleeps) run in the partition's `default` queue.
      partitions[this.partition] = {
        ...(own ?? {}),
        queues: { default: { concurrency: 4 }, ...(own?.queues ?? {}), ...this.queueConfig() },
      };
      const plugins = [...(options.plugins ?? [])];
      if (!plugins.some((p) => p.name === 'workflows')) plugins.push(workflowsPlugin());
      if (!plugins.some((p) => p.name === FLOWS_PLUGIN)) plugins.push(flowsPlugin());
      const { jobs = [], stoppedQueues = {}, ...rest } = options;
      node = await startNode({
        ...rest,
        partitions,
        // Started stopped, then one by one in flow order below, once the app is deployed.
        stoppedQueues: { ...stoppedQueues, [this.partition]: [...(stoppedQueues[this.partition] ?? []), ...this.jobQueues()] },
        plugins,
        jobs: [...jobs, ...this.jobs()],
        ...(rest.logger ? {} : { logger: this.logger }),
      });
      this.ownNode = node;
    }
    this.node = node;
    try {
      this.useClient(node.client);
      await this.ensureDeployed();
      if (this.hasListeners()) await this.subscribe();
      // The node's queues of this flow's partition: a joined node may run only some stages, or none.
      const served = new Set(Object.keys((await node.stats()).find((e) => e.partition === this.partition)?.queues ?? {}));
      for (const queue of this.order) {
        const jobQueue = jobQueueOf(this.name, queue);
        if (!served.has(jobQueue)) continue;
        await node.startQueues(this.partition, [jobQueue]);
        this.started.push(jobQueue);
      }
    } catch (err) {
      await this.stopAll();
      throw err;
    }
    this.logger.info({ app: this.compiled.appId, version: this.compiled.version, workers: [...this.workers.keys()] }, 'flow started');
    return node;
  }

  /**
   * Stops in reverse: the event subscription, then each stage's queue on the node, the last first
   * (its running jobs finish within graceMs and are recorded before the stage before it stops, so
   * what they hand on stays queued in the stopped stage after them), then the node startAll started.
   * A joined node keeps running (its other work goes on); startAll({ node }) resumes the stages.
   */
  async stopAll(opts: { graceMs?: number } = {}): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    this.subscribing = undefined;
    await unsubscribe?.();
    const stopping = this.node;
    const started = this.started;
    this.node = undefined;
    this.started = [];
    for (const jobQueue of [...started].reverse()) await stopping?.stopQueues(this.partition, [jobQueue], opts);
    const node = this.ownNode;
    this.ownNode = undefined;
    this.client = undefined;
    this.wf = undefined;
    this.deployed = undefined;
    await node?.stop(opts);
  }

  private handle(call: string): { client: Client; wf: WorkflowApp } {
    if (!this.client || !this.wf) throw new FlowNotStartedError(this.name, call);
    return { client: this.client, wf: this.wf };
  }

  private pool(client: Client): Queryable & { schema?: string } {
    return (clientStore(client) as unknown as { pool: Queryable }).pool;
  }

  private schema(client: Client): string {
    return (clientStore(client) as unknown as { schema: string }).schema;
  }

  /** Deploys the flow's app (idempotent: its version is its content's hash) and activates it unless active. */
  private ensureDeployed(): Promise<void> {
    if (!this.deployed) {
      const { client, wf } = this.handle('createJob');
      this.deployed = (async () => {
        await wf.deploy(this.compiled.yaml);
        const ops = flowOps(this.schema(client));
        for (let attempt = 0; ; attempt++) {
          const [row] = await runOn<{ active_version: string }>(this.pool(client), ops, 'app_active', [this.compiled.appId]);
          if (row?.active_version === this.compiled.version) return;
          try {
            await wf.activate(this.compiled.version);
            return;
          } catch (err) {
            // Another node of the same flow is activating it (they start together): wait for it, read again.
            if (!(err instanceof ActivationInProgressError) || attempt >= 20) throw err;
            await new Promise((r) => setTimeout(r, 250 + Math.random() * 250));
          }
        }
      })();
      this.deployed.catch(() => (this.deployed = undefined));
    }
    return this.deployed;
  }

  /** Creates a job in the flow's first queue; resolves with its id once it is stored with its lookup keys. */
  async createJob(params: Params): Promise<string> {
    if (!isRecord(params))
      throw new ValidationError(`createJob needs the job's params as an object, not ${JSON.stringify(params)}`, 'params');
    const { client, wf } = this.handle('createJob');
    await this.ensureDeployed();
    const id = randomUUID();
    const rows = lookupRows(this.name, id, params as Record<string, unknown>, this.lookupAttributes);
    const ops = flowOps(this.schema(client));
    await pubWith(
      wf,
      this.compiled.mainTopic,
      { params },
      { id, partition: this.partition },
      {
        key: `flow_keys:${ops.keys_insert.name}`,
        rows,
        write: async (q, all) => {
          await runOn(q, ops, 'keys_insert', [JSON.stringify(all as KeyRow[])]);
        },
      },
    );
    return id;
  }

  /**
   * The flow's jobs whose lookup attribute `keyName` has `value`, newest first, in one query; with
   * `resolveChildren` each job's children are the child jobs themselves, not only their ids.
   */
  async getJobsByKey(
    keyName: LookupKey,
    value: string | number,
    resolveChildren = false,
    opts: { limit?: number } = {},
  ): Promise<FlowJob<Job, Params>[]> {
    const { client } = this.handle('getJobsByKey');
    if (!this.allAttributes.includes(keyName))
      throw new ValidationError(
        `${keyName} is not a lookup attribute of flow ${this.name} (${this.allAttributes.join(', ') || 'none'}); add it to a queue's lookupAttributes`,
        'keyName',
      );
    const v = lookupValue(value);
    if (v === undefined) throw new ValidationError(`a lookup value is a string or a number, not ${JSON.stringify(value)}`, 'value');
    const rows = await runOn(this.pool(client), flowOps(this.schema(client)), 'jobs_by_key', [
      this.name,
      keyName,
      v,
      resolveChildren,
      opts.limit ?? 1000,
    ]);
    return rows.map((r) => this.toJob(r, resolveChildren));
  }

  private toJob(r: any, resolveChildren: boolean): FlowJob<Job, Params> {
    const data: FlowData = r.data ?? {};
    const status = Number(r.status);
    const stage = status === STATUS_PENDING ? undefined : currentStage(this.compiled, String(r.topic), data, status === 0);
    const failed = status === FAILED || status === INTERRUPTED;
    const failedAt =
      failed && isRecord(r.output) && typeof r.output.activity === 'string' ? this.compiled.stageOf.get(r.output.activity) : stage;
    let children: FlowJob<Job, Params>['children'];
    if (resolveChildren) {
      const byQueue: Record<string, FlowJob<Record<string, unknown>, unknown>[]> = {};
      const list = (Array.isArray(r.children) ? r.children : []) as any[];
      list.sort((a, b) => Number(a.data?.index ?? 0) - Number(b.data?.index ?? 0));
      for (const c of list) {
        const queue = String(c.topic).slice(this.name.length + 1);
        (byQueue[queue] ??= []).push(
          this.toJob(
            { ...c, created_at: new Date(c.created_at), finished_at: c.finished_at ? new Date(c.finished_at) : null },
            false,
          ) as FlowJob<Record<string, unknown>, unknown>,
        );
      }
      children = byQueue;
    } else {
      const ids: Record<string, string[]> = {};
      for (const [queue] of this.compiled.childKeys) {
        const got = data[childIdsKey(queue)];
        if (Array.isArray(got)) ids[queue] = got.map(String);
      }
      children = ids;
    }
    return {
      id: r.id,
      stage: failed ? failedAt : stage,
      status: statusName(status),
      params: data.params as Params,
      state: (isRecord(data.state) ? data.state : {}) as Job,
      result: status === 0 ? ((isRecord(data.state) ? data.state : {}) as Job) : undefined,
      ...(failed ? { error: { stage: failedAt, error: isRecord(r.output) && 'error' in r.output ? r.output.error : r.output } } : {}),
      children,
      createdAt: r.created_at,
      finishedAt: r.finished_at ?? null,
    };
  }

  /** Cancels a flow job: its running stage is cancelled and its children are interrupted too. False when it had finished. */
  async cancel(id: string, opts: { reason?: string } = {}): Promise<boolean> {
    const { wf } = this.handle('cancel');
    return (await wf.interrupt(this.compiled.mainTopic, id, { descend: true, reason: opts.reason ?? 'cancelled' })) as unknown as boolean;
  }

  /**
   * Events from the bus: 'stage' when a job (or a child) finished a stage, 'completed' and 'failed'
   * (a stage out of attempts, or cancelled) when a flow job ended.
   */
  on<E extends EventName>(event: E, cb: (e: EventOf<E>) => void): this {
    if (!(event in this.listeners))
      throw new ValidationError(`unknown flow event ${String(event)}; use 'completed', 'failed' or 'stage'`, 'event');
    (this.listeners[event] as ((e: EventOf<E>) => void)[]).push(cb);
    if (this.wf) void this.subscribe();
    return this;
  }

  /** Resolves once the flow's event subscription is in place (after startAll/useClient with listeners). */
  async listening(): Promise<void> {
    await this.subscribe();
  }

  private hasListeners(): boolean {
    return Object.values(this.listeners).some((l) => l.length > 0);
  }

  private subscribe(): Promise<void> {
    if (!this.subscribing) {
      const { wf } = this.handle('on');
      this.subscribing = wf
        .psub('>', (_data, e) => this.dispatch(e))
        .then((unsub) => {
          this.unsubscribe = unsub;
        });
      this.subscribing.catch((err) => {
        this.subscribing = undefined;
        this.logger.warn({ err }, 'subscribing to the flow events failed');
      });
    }
    return this.subscribing;
  }

  private dispatch(e: WorkflowEvent): void {
    const data = (e.data ?? {}) as FlowData;
    const main = e.topic === this.compiled.mainTopic;
    let event: FlowEvent | undefined;
    if (e.kind === 'emit' && typeof data.stage === 'string')
      event = { type: 'stage', id: e.id, stage: data.stage, state: data.state, ...(main ? {} : { parentId: String(data.parent) }) };
    else if (e.kind === 'output' && main && e.status === 0) event = { type: 'completed', id: e.id, result: data.state };
    else if (e.kind === 'output' && main && (e.status === FAILED || e.status === INTERRUPTED)) {
      const out = e.data as { activity?: string; error?: unknown; interrupted?: boolean } | undefined;
      event = {
        type: 'failed',
        id: e.id,
        stage: out?.activity ? this.compiled.stageOf.get(out.activity) : undefined,
        error: out?.error ?? out,
        cancelled: e.status === INTERRUPTED,
      };
    }
    if (!event) return;
    for (const cb of this.listeners[event.type] as ((x: FlowEvent) => void)[]) {
      try {
        cb(event);
      } catch (err) {
        this.logger.warn({ err, event: event.type }, 'a flow event listener threw');
      }
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function patchOf(queue: string, out: unknown): Record<string, unknown> {
  if (out === undefined || out === null) return {};
  if (!isRecord(out))
    throw new ValidationError(
      `the worker of stage ${queue} must return an object to merge into the job's state (or nothing), not ${JSON.stringify(out)}`,
      queue,
    );
  return out;
}

function statusName(status: number): FlowJobStatus {
  if (status === STATUS_PENDING) return 'pending';
  if (status > 0) return 'running';
  if (status === 0) return 'completed';
  if (status === INTERRUPTED) return 'cancelled';
  return 'failed';
}

export function defineFlow<
  Job extends object = Record<string, unknown>,
  Params extends object = Record<string, unknown>,
  LookupKey extends string = string,
>(options: FlowOptions<LookupKey>): Flow<Job, Params, LookupKey> {
  return new Flow<Job, Params, LookupKey>(options);
}
