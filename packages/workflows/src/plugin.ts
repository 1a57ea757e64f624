/**
 * workflowsPlugin(): the executor joins a node. Its migrations create the workflow tables, its jobs
 * are the sleeps and the bus publications, and its continuation turns every finished step job
 * (a worker's job of any type, a sleep) into the workflow's transition, in the transaction that
 * records the job's outcome. Each node also runs one activation member (src/activation): the active
 * versions its client's app handles start workflows on follow every activation.
 */
import type { Logger } from '@partita/core';
import type { Client } from '@partita/client';
import { defineJob, definePlugin, type NodePlugin, type PluginContext } from '@partita/runtime';
import { activeVersionsOf } from './active.js';
import { startActivationMember } from './activation/index.js';
import { MIGRATIONS_DIR, runOn, txDb, wfOps, type WfOps } from './db.js';
import { clientWake } from '@partita/client/internal';
import {
  EMIT_TYPE,
  SLEEP_TYPE,
  STEP_CONTINUATION,
  STOP_CHILDREN_BATCH,
  STOP_CHILDREN_TYPE,
  Versions,
  finishStepJobsOrFail,
  newEffects,
  stopFanOutChildren,
  takeStepsAhead,
  type StepsTaken,
  type EmitJobPayload,
  type Effects,
  type StopChildrenPayload,
} from './executor.js';
import { dropExpiredPartitions, ensurePartitions, removeExpired } from './expiry.js';
import { deliverLocally } from './outputs.js';
import { eventSubject, EVENT_KIND } from './subjects.js';

/** How often open workflows past their expire (pending ones, mostly) and early signals are removed. */
const EXPIRY_INTERVAL_MS = 60_000;
/** How often the daily partitions are made ahead and the days past are dropped (as job history's). */
const PARTITION_INTERVAL_MS = 3_600_000;

export interface WorkflowsPluginOptions {
  /** How often this node's row sweep removes expired open workflows and signals (default 60 s). */
  expiryIntervalMs?: number;
  /** How often this node makes partitions ahead and drops the expired days (default 1 h; also at start). */
  partitionIntervalMs?: number;
  /**
   * Which of a step's transitions wait for their WAL flush at COMMIT. 'announced' (default): those
   * someone outside the engine hears of (a workflow that finishes, fails or is interrupted, `emit`
   * data, steps cancelled); a transition that only hands a still-open workflow on to its next steps
   * commits without it (synchronous_commit off in that transaction). A Postgres crash can then undo
   * the last few such transitions (about 3 × wal_writer_delay); their steps' completions go with them
   * and those steps run again, as after a node crash mid-step. 'all': every transition waits for it.
   * Pubs, hooks and interrupts from a client always do.
   */
  durableTransitions?: DurableTransitions;
}

/** See WorkflowsPluginOptions.durableTransitions. */
export type DurableTransitions = 'announced' | 'all';

/**
 * Whether a step's transaction may commit without waiting for its WAL flush: only when nothing of it
 * is announced after the commit. Its events are outputs and emitted data published right after it
 * (every workflow that ends has one), its cancels the steps of a workflow it interrupted; with
 * neither, it only moved open workflows on, which no one outside the engine is told of.
 */
export function commitsAsync(mode: DurableTransitions, effects: Effects): boolean {
  return mode === 'announced' && effects.events.length === 0 && effects.cancels.length === 0;
}

interface Bound {
  ctx: PluginContext;
  ops: WfOps;
  versions: Versions;
  logger: Logger;
}

export function workflowsPlugin(options: WorkflowsPluginOptions = {}): NodePlugin {
  const durable = options.durableTransitions ?? 'announced';
  if (durable !== 'announced' && durable !== 'all')
    throw new TypeError(`workflowsPlugin: durableTransitions must be 'announced' or 'all', not ${JSON.stringify(durable)}`);
  let bound: Bound | undefined;
  const bind = (ctx: PluginContext): Bound => {
    if (!bound) {
      const ops = wfOps(ctx.schema);
      bound = {
        ctx,
        ops,
        logger: ctx.logger,
        versions: new Versions(async (appId, version) => (await runOn(ctx.pool, ops, 'version_get', [appId, version]))[0]?.definition),
      };
    }
    return bound;
  };

  const sleep = defineJob<{ workflow: string; activity: string }>({
    type: SLEEP_TYPE,
    maxAttempts: 10,
    // The wake-up is the job's completion: its continuation finishes the hook activity.
    perform: () => ({}),
  });

  const emit = defineJob<EmitJobPayload>({
    type: EMIT_TYPE,
    maxAttempts: 3,
    perform: (p) => {
      if (!bound) throw new Error('the workflows plugin has not started on this node yet; retried');
      // A transaction's events in one job; a single event: a job enqueued before they were batched.
      for (const e of 'events' in p ? p.events : [p]) bound.ctx.bus.publish(eventSubject(bound.ctx.cluster, e.app, e.topic), EVENT_KIND, e);
    },
  });

  const stopChildren = defineJob<StopChildrenPayload>({
    type: STOP_CHILDREN_TYPE,
    maxAttempts: 10,
    // Batches of its own transactions: a retry after a crash goes on with the children still running.
    perform: async (p) => {
      if (!bound) throw new Error('the workflows plugin has not started on this node yet; retried');
      const b = bound;
      for (;;) {
        const effects = newEffects();
        const n = await b.ctx.store.withTransaction(
          (tx) => stopFanOutChildren({ db: txDb(tx, b.ops), versions: b.versions, logger: b.logger, effects }, p),
          { genericPlans: true },
        );
        await afterTransaction(b.ctx.client, b.logger, effects);
        if (n < STOP_CHILDREN_BATCH) return { stopped: true };
      }
    },
  });

  return definePlugin({
    name: 'workflows',
    migrations: MIGRATIONS_DIR,
    jobs: [sleep, emit, stopChildren],
    continuations: () => [
      {
        // No types: the executor marks each step's job with this name when it enqueues it (a worker's
        // job is of any type its graph names), so only those come here; every other job the node runs
        // keeps the plain write.
        name: STEP_CONTINUATION,
        // Its statements marked `-- plan: generic` (steps_lock, steps_take, transition_write, the
        // outcomes', the leased follow-ups') plan once per connection: planning them at each execution
        // cost more than running them (test/plans.test.ts holds each to reaching its rows by key). The
        // others as always.
        genericPlans: true,
        // A step's activity record (input, output, attempts, errors, timings, job id), written in this
        // transaction, is its history: a completed step's job leaves no jobs_history row, a row and
        // its index entries fewer per step. Failed and cancelled steps keep theirs.
        recordsSuccess: true,
        // The steps' lock and take go out behind the outcomes' statements, in their round trip.
        prepare: (tx, jobs) => (bound ? takeStepsAhead(txDb(tx, bound.ops), jobs) : undefined),
        run: async (tx, jobs, ahead) => {
          if (!bound) throw new Error('the workflows plugin has not started on this node yet; the transition is retried');
          const b = bound;
          const db = txDb(tx, b.ops);
          const effects = newEffects();
          await finishStepJobsOrFail(
            { db, versions: b.versions, logger: b.logger, effects, publishAfterCommit: true },
            tx,
            // The engine's jobs as they are: a copy of each was an object per step.
            jobs,
            ahead as StepsTaken | undefined,
          );
          // The steps of workflows it interrupted are cancelled once it committed: before, a cancel
          // could reach a step the transaction then rolled back the interrupt of (it is retried).
          if (effects.cancels.length > 0 || effects.events.length > 0) tx.afterCommit(() => afterCommit(b, effects));
          // A step that only leads to the next steps of open workflows: its commit is announced to no
          // one, and the next synchronous commit (a pub, a workflow's end) makes it durable with it.
          // The WAL flush it skips took 1.8 ms of a ~3 ms transition on one machine, 0.45 on another.
          if (commitsAsync(durable, effects)) tx.commitAsync();
        },
      },
    ],
    nodeChildren: (ctx) => {
      // Bound here (the tree is built before any engine claims) so a continuation never finds the plugin unbound.
      bind(ctx);
      return [];
    },
    start: async (ctx) => {
      const b = bind(ctx);
      const timer = setInterval(() => {
        removeExpired(ctx.pool, b.ops).catch((err) =>
          b.logger.warn({ err }, 'removing expired workflows failed; retried at the next interval'),
        );
      }, options.expiryIntervalMs ?? EXPIRY_INTERVAL_MS);
      timer.unref();
      const partitions = async () => {
        await ensurePartitions(ctx.pool, b.ops);
        const days = await dropExpiredPartitions(ctx.pool, b.ops);
        if (days.length > 0) b.logger.info({ days }, 'dropped the partitions of expired workflows');
      };
      const partitionsFailed = (err: unknown) =>
        b.logger.warn({ err }, 'making or dropping workflow partitions failed; retried at the next interval');
      // Awaited at start: a workflow started before its day's partition existed would fail its insert.
      await partitions().catch(partitionsFailed);
      const partitionTimer = setInterval(
        () => void partitions().catch(partitionsFailed),
        options.partitionIntervalMs ?? PARTITION_INTERVAL_MS,
      );
      partitionTimer.unref();
      // One member per node (the activation's quorum counts nodes). It drives the cache every
      // app(node.client, id) handle reads the active version from; at its start and after each
      // reconnect it enters nocache for activations under way, then makes the cache read Postgres again.
      const actives = activeVersionsOf(
        ctx.client,
        async (appId) => (await runOn<{ active_version: string }>(ctx.pool, b.ops, 'active_get', [appId]))[0]?.active_version,
      );
      let member: Awaited<ReturnType<typeof startActivationMember>>;
      try {
        member = await startActivationMember({
          bus: ctx.bus,
          cluster: ctx.cluster,
          nodeId: ctx.nodeId,
          logger: b.logger,
          onNocache: (appId, untilVersion) => actives.enterNocache(appId, untilVersion),
          onActivated: (appId) => actives.forget(appId),
          onAbandon: (appId) => actives.forget(appId),
          onReconnect: () => actives.forgetAll(),
        });
      } catch (err) {
        clearInterval(timer);
        clearInterval(partitionTimer);
        throw err;
      }
      return async () => {
        clearInterval(timer);
        clearInterval(partitionTimer);
        await member.stop();
      };
    },
  });
}

/** Cancels the step jobs of workflows a transaction interrupted (after it committed); a failure is logged. */
export function cancelSteps(client: { cancel(id: string): Promise<boolean> }, logger: Logger, ids: readonly string[]): void {
  for (const id of ids)
    client.cancel(id).catch((err) => logger.warn({ err, job: id }, 'cancelling a step of an interrupted workflow failed'));
}

/**
 * After the transition's transaction committed (tx.afterCommit): publish its outputs and emitted
 * data, then cancel the jobs of workflows it interrupted. (The engine wakes the queues a continuation enqueued into once its transaction committed.)
 */
export function afterCommit(b: Bound, effects: Effects): void {
  const { bus, cluster, schema } = b.ctx;
  for (const e of effects.events) {
    const subject = eventSubject(cluster, e.app, e.topic);
    bus.publish(subject, EVENT_KIND, e);
    deliverLocally(schema, subject, e);
  }
  if (effects.cancels.length === 0) return;
  cancelSteps(b.ctx.client, b.logger, effects.cancels);
}

/**
 * After a transaction of the executor's own (an app call's, a stop-children job's; a continuation's
 * queues are woken by the engine): wake the queues it enqueued into, as the client's enqueue does,
 * and cancel the steps of workflows it interrupted.
 */
export async function afterTransaction(client: Client, logger: Logger, effects: Effects): Promise<void> {
  const queuesOf = new Map<string, Set<string>>();
  for (const pq of effects.wakes) {
    const [partition, queue] = pq.split('\u0000') as [string, string];
    const queues = queuesOf.get(partition);
    if (queues) queues.add(queue);
    else queuesOf.set(partition, new Set([queue]));
  }
  await Promise.all([...queuesOf].map(([partition, queues]) => clientWake(client, partition, queues)));
  cancelSteps(client, logger, effects.cancels);
}
