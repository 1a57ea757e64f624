import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createSystem, type ActorRef, type ActorSystem, type SupervisorSpec } from '@partita/actors';
import { NAME_PATTERN, ValidationError, childLogger, createLogger, describeError, type Logger } from '@partita/core';
import { JobStore, type PgOptions } from '@partita/postgres';
import { Client } from '@partita/client';
import type { JobDefinition } from './define.js';
import { engineBehavior, type EngineMsg, type EngineSettings, type EngineStats } from './engine.js';
import { leaseKeeperBehavior } from './lease-keeper.js';

export interface PartitionOptions {
  queues: Record<string, { concurrency: number }>;
}

export interface EngineOptionsInput extends Partial<EngineSettings> {
  heartbeatMs?: number;
  /** How long a graceful stop waits for running jobs (default 30 s). */
  shutdownGraceMs?: number;
}

export interface NodeOptions {
  cluster?: string;
  postgres: string | PgOptions;
  /** Postgres schema for Partita's tables (default `partita`). */
  schema?: string;
  nats?: string | false;
  partitions: Record<string, PartitionOptions>;
  jobs: JobDefinition[];
  engine?: EngineOptionsInput;
  retention?: { historyDays?: number };
  limits?: { payloadBytes?: number };
  logger?: Logger;
  /** Defaults to host:pid:random. */
  nodeId?: string;
}

export interface PartitaNode {
  readonly id: string;
  readonly client: Client;
  readonly system: ActorSystem;
  /** Per-partition engine figures: running, prefetched, processed. */
  stats(): Promise<EngineStats[]>;
  /** Stops claiming, lets running jobs finish within graceMs, hands back the rest, releases everything. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

export const ENGINE_DEFAULTS = Object.freeze({
  leaseMs: 15_000,
  heartbeatMs: 5_000,
  pollMs: 1_000,
  prefetch: 32,
  flushMs: 2,
  flushBatch: 500,
  shutdownGraceMs: 30_000,
});

const MAINTENANCE_MS = 60 * 60 * 1000;

export async function startNode(options: NodeOptions): Promise<PartitaNode> {
  const settings = checkOptions(options);
  const nodeId = options.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const root = options.logger ?? createLogger();
  const logger = childLogger(root, { node: nodeId });
  const cluster = options.cluster ?? 'default';

  const store = await JobStore.open({
    postgres: options.postgres,
    logger: childLogger(logger, { actor: 'store' }),
    ...(options.schema ? { schema: options.schema } : {}),
    ...(options.limits?.payloadBytes ? { payloadLimitBytes: options.limits.payloadBytes } : {}),
  });
  const definitions = new Map(options.jobs.map((d) => [d.type, d]));
  try {
    await store.registerQueues(
      nodeId,
      Object.entries(options.partitions).flatMap(([partition, p]) =>
        Object.entries(p.queues).map(([queue, q]) => ({ partition, queue, concurrency: q.concurrency })),
      ),
    );
    await store.registerJobTypes(
      nodeId,
      options.jobs.map((d) => ({ type: d.type, queue: d.queue, maxAttempts: d.maxAttempts, timeoutMs: d.timeoutMs ?? null })),
    );
  } catch (err) {
    await store.close();
    throw err;
  }

  const system = createSystem({ name: nodeId, logger });
  const engineName = (partition: string) => `engine:${partition}`;
  const engines = () => new Map(Object.keys(options.partitions).map((p) => [p, system.whereis(engineName(p)) as ActorRef<EngineMsg, unknown> | undefined]));
  const startedAt = Date.now();

  const partitionSpec = (partition: string): SupervisorSpec => ({
    // rest_for_one: an engine restart also restarts its workers, so no job runs unaccounted for.
    strategy: 'rest_for_one',
    intensity: 5,
    periodMs: 10_000,
    children: [
      {
        id: 'engine',
        name: engineName(partition),
        start: () =>
          engineBehavior({
            nodeId,
            partition,
            queues: options.partitions[partition]!.queues,
            definitions,
            store,
            settings,
            logger: childLogger(logger, { partition, actor: 'engine' }),
            workersName: `workers:${partition}`,
          }),
      },
      {
        id: 'workers',
        name: `workers:${partition}`,
        // Workers are temporary children: a job's failure is recorded, never restarted here.
        start: () => ({ strategy: 'one_for_one', intensity: 1_000_000, periodMs: 1000, children: [] }),
      },
    ],
  });

  const nodeSupervisor = await system.supervise(
    {
      strategy: 'one_for_one',
      intensity: 10,
      periodMs: 60_000,
      children: [
        {
          id: 'leases',
          name: 'lease-keeper',
          start: () =>
            leaseKeeperBehavior({
              nodeId,
              store,
              logger: childLogger(logger, { actor: 'lease-keeper' }),
              leaseMs: settings.leaseMs,
              heartbeatMs: settings.heartbeatMs,
              rescueMs: Math.max(250, Math.floor(settings.leaseMs / 3)),
              maintenanceMs: MAINTENANCE_MS,
              retentionDays: options.retention?.historyDays ?? 7,
              engines,
              info: () => ({ cluster, partitions: Object.keys(options.partitions), pid: process.pid, uptimeMs: Date.now() - startedAt }),
            }),
        },
        ...Object.keys(options.partitions).map((partition) => ({
          id: `partition:${partition}`,
          start: () => partitionSpec(partition),
        })),
      ],
    },
    { name: 'node' },
  );
  system.on('fatal', (err) => logger.fatal({ err: describeError(err) }, 'node supervisor gave up; the node stops processing'));

  const client = new Client(store, { cluster, jobs: options.jobs, logger: childLogger(logger, { actor: 'client' }) });
  client.hooks = {
    enqueued(partition, queues) {
      engines().get(partition)?.cast({ t: 'wake', queues: [...queues] });
    },
    cancelRequested(jobs) {
      for (const job of jobs) if (job.node === nodeId) engines().get(job.partition)?.cast({ t: 'cancel', ids: [job.id] });
    },
  };

  let stopping: Promise<void> | undefined;
  logger.info({ partitions: Object.keys(options.partitions), jobs: [...definitions.keys()] }, 'node started');

  return {
    id: nodeId,
    client,
    system,
    async stats() {
      const out: EngineStats[] = [];
      for (const [, ref] of engines()) if (ref?.alive) out.push((await ref.call({ t: 'stats' })) as EngineStats);
      return out;
    },
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        const graceMs = stopOptions.graceMs ?? settings.shutdownGraceMs;
        logger.info({ graceMs }, 'stopping: no new claims, waiting for running jobs');
        await Promise.all(
          [...engines().values()].map(
            (ref) =>
              new Promise<void>((resolve) => {
                if (!ref?.alive) return resolve();
                const off = ref.monitor(() => resolve());
                ref.cast({ t: 'drain', graceMs, done: () => (off(), resolve()) });
              }),
          ),
        );
        await nodeSupervisor.stop();
        await system.shutdown();
        await client.close();
        await store.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

function checkOptions(options: NodeOptions): EngineSettings & { heartbeatMs: number; shutdownGraceMs: number } {
  if (typeof options !== 'object' || options === null) throw new ValidationError('startNode needs an options object');
  if (options.postgres === undefined) throw new ValidationError('postgres is required: a URL such as postgres://user@host:5432/db', 'postgres');
  if (typeof options.partitions !== 'object' || options.partitions === null || Object.keys(options.partitions).length === 0) {
    throw new ValidationError('declare at least one partition: { billing: { queues: { default: { concurrency: 10 } } } }', 'partitions');
  }
  for (const [partition, p] of Object.entries(options.partitions)) {
    if (!NAME_PATTERN.test(partition)) throw new ValidationError('partition names are 1-64 letters, digits, _ or -', `partitions.${partition}`);
    if (typeof p?.queues !== 'object' || p.queues === null || Object.keys(p.queues).length === 0) {
      throw new ValidationError('declare at least one queue: { queues: { default: { concurrency: 10 } } }', `partitions.${partition}.queues`);
    }
    for (const [queue, q] of Object.entries(p.queues)) {
      if (!NAME_PATTERN.test(queue)) throw new ValidationError('queue names are 1-64 letters, digits, _ or -', `partitions.${partition}.queues.${queue}`);
      if (!Number.isInteger(q?.concurrency) || q.concurrency < 0 || q.concurrency > 10_000) {
        throw new ValidationError('concurrency must be an integer from 0 (declared, not processed here) to 10000', `partitions.${partition}.queues.${queue}.concurrency`);
      }
    }
  }
  if (!Array.isArray(options.jobs)) throw new ValidationError('jobs must be an array of defineJob(...) results', 'jobs');
  const seen = new Set<string>();
  options.jobs.forEach((d, i) => {
    if (typeof d?.perform !== 'function' || typeof d.type !== 'string') throw new ValidationError('is not a job definition; create it with defineJob({ type, perform })', `jobs[${i}]`);
    if (seen.has(d.type)) throw new ValidationError(`job type "${d.type}" is defined twice`, `jobs[${i}]`);
    seen.add(d.type);
  });
  const s = { ...ENGINE_DEFAULTS, ...stripUndefined(options.engine ?? {}) };
  for (const [key, value] of Object.entries(s)) {
    if (!Number.isInteger(value) || value < 0) throw new ValidationError('must be a whole number ≥ 0', `engine.${key}`);
  }
  if (s.leaseMs < 1000) throw new ValidationError('must be at least 1000 ms', 'engine.leaseMs');
  if (s.heartbeatMs >= s.leaseMs) throw new ValidationError(`must be below engine.leaseMs (${s.leaseMs}) so leases are renewed before they expire`, 'engine.heartbeatMs');
  if (s.pollMs < 10) throw new ValidationError('must be at least 10 ms', 'engine.pollMs');
  if (s.flushBatch < 1) throw new ValidationError('must be at least 1', 'engine.flushBatch');
  return s;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
