/**
 * workflowsPlugin(): the executor joins a node. Its migrations create the workflow tables, its jobs
 * are the sleeps and the bus publications, and its continuation turns every finished step job
 * (a worker's job of any type, a sleep) into the workflow's transition, in the transaction that
 * records the job's outcome. Each node also runs one activation member (src/activation): the active
 * versions its client's app handles start workflows on follow every activation.
 */
import type { Logger } from '@partita/core';
import { defineJob, definePlugin, type FinishedJob, type NodePlugin, type PluginContext } from '@partita/runtime';
import { activeVersionsOf } from './active.js';
import { startActivationMember } from './activation/index.js';
import { MIGRATIONS_DIR, runOn, txDb, wfOps, type WfOps } from './db.js';
import { EMIT_TYPE, SLEEP_TYPE, STEP_CONTINUATION, Versions, finishSteps, newEffects, type EmitPayload, type Effects } from './executor.js';
import { dropExpiredPartitions, ensurePartitions, removeExpired } from './expiry.js';
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
}

interface Bound {
  ctx: PluginContext;
  ops: WfOps;
  versions: Versions;
  logger: Logger;
}

export function workflowsPlugin(options: WorkflowsPluginOptions = {}): NodePlugin {
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

  const emit = defineJob<EmitPayload>({
    type: EMIT_TYPE,
    maxAttempts: 3,
    perform: (p) => {
      if (!bound) throw new Error('the workflows plugin has not started on this node yet; retried');
      bound.ctx.bus.publish(eventSubject(bound.ctx.cluster, p.app, p.topic), EVENT_KIND, p);
    },
  });

  return definePlugin({
    name: 'workflows',
    migrations: MIGRATIONS_DIR,
    jobs: [sleep, emit],
    continuations: () => [
      {
        // No types: the executor marks each step's job with this name when it enqueues it (a worker's
        // job is of any type its graph names), so only those come here; every other job the node runs
        // keeps the plain write.
        name: STEP_CONTINUATION,
        run: async (tx, jobs) => {
          if (!bound) throw new Error('the workflows plugin has not started on this node yet; the transition is retried');
          const b = bound;
          const db = txDb(tx, b.ops);
          const steps = await db.run<{ job_id: string; workflow_id: string; activity: string; dimension: string }>('steps_take', [
            jobs.map((j) => j.id),
          ]);
          if (steps.length === 0) return;
          const byId = new Map<string, FinishedJob>(jobs.map((j) => [j.id, j]));
          const effects = newEffects();
          await finishSteps(
            { db, versions: b.versions, logger: b.logger, effects },
            steps.map((st) => {
              const job = byId.get(st.job_id)!;
              return {
                jobId: job.id,
                workflow: st.workflow_id,
                activity: st.activity,
                dimension: st.dimension,
                state: job.state,
                result: job.result,
                error: job.error ?? undefined,
                attempt: job.attempt,
              };
            }),
          );
          afterCommit(b, effects);
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
      // Awaited at start: a node that finished a workflow before its day's partition existed would fail the write.
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
 * After the transition's transaction: cancel the jobs of workflows it interrupted. (The engine wakes
 * the queues a continuation enqueued into once its transaction committed.)
 */
export function afterCommit(b: { ctx: { client: { cancel(id: string): Promise<boolean> } }; logger: Logger }, effects: Effects): void {
  if (effects.cancels.length === 0) return;
  setTimeout(() => cancelSteps(b.ctx.client, b.logger, effects.cancels), 0).unref();
}
