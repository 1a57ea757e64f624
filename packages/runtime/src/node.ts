import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSystem, type ActorSystem, type SupervisorSpec } from '@partita/actors';
import { ValidationError, childLogger, createLogger, describeError, loadTracing, type Logger } from '@partita/core';
import { JobStore, Notices, PartitionLeases, type RegisteredJobType } from '@partita/postgres';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '@partita/postgres-embedded';
import { Client, installClientHooks } from '@partita/client/internal';
import { IDLE_KIND, type IdleAdvert } from '@partita/protocol';
import type { JobDefinition, ResolvedJobDefinition } from './define.js';
import { engineBehavior, type EngineMsg, type EngineSettings, type EngineStats } from './engine/engine.js';
import { leaseKeeperBehavior } from './lease-keeper.js';
import { resolveOptions, type NodeOptions } from './options.js';
import { catchStopSignals, type StopSignals } from './signals.js';
import { createBus, type Bus } from '@partita/nats';
import { subjects } from '@partita/protocol';
import { startQuorumMember, type QuorumMember } from './quorum.js';
import { jobEventPublisher } from './events.js';
import { createMetrics, liveJobCounts, type Metrics } from './metrics.js';
import { startHttpServer, nodeHealth, type HttpServer } from './http.js';
import { natsBusOptions } from './bus-options.js';
import { FilePersister, createPersister } from './global/persisters.js';
import { seatBehavior, type SeatMsg } from './global/seat.js';
import { noticeRouter } from './notice-router.js';
import type { Persister } from './global/types.js';

export type { NodeOptions, PartitionOptions } from './options.js';

export interface PartitaNode {
  readonly id: string;
  readonly client: Client;
  readonly system: ActorSystem;
  readonly bus: Bus;
  readonly metrics: Metrics;
  /** The health and metrics server, when config.http is set. */
  readonly http?: { url: string; port: number };
  /** Per-partition engine figures: running, prefetched, processed. */
  stats(): Promise<EngineStats[]>;
  /** Stops claiming, lets running jobs finish within graceMs, hands back the rest, releases everything. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

const MAINTENANCE_MS = 60 * 60 * 1000;
/** A dead Global leader is replaced within about this long (plus one tick). */
const GLOBAL_LEASE_MS = 3000;
const GLOBAL_TICK_MS = 500;
const GLOBAL_RECONCILE_MS = 5000;
const CONTROL_REFRESH_MS = 2000;
const GLOBAL_TIMEOUT_MS = 5000;

export async function startNode(options: NodeOptions): Promise<PartitaNode> {
  const signals = options.handleSignals ? catchStopSignals(options.handleSignals === true ? {} : options.handleSignals) : undefined;
  let node: PartitaNode;
  try {
    node = await openNode(options, signals);
  } catch (err) {
    signals?.detach();
    throw err;
  }
  if (!signals) return node;
  const stop = node.stop.bind(node);
  // Once the node has stopped, for whatever reason, the process's signals are the program's again.
  // (Replaced in place rather than copied, so that any getters of the node stay live.)
  node.stop = (stopOptions) => stop(stopOptions).finally(() => signals.detach());
  signals.attach((stopOptions) => node.stop(stopOptions));
  return node;
}

async function openNode(options: NodeOptions, signals: StopSignals | undefined): Promise<PartitaNode> {
  const { config, postgres, jobs } = await resolveOptions(options);
  await loadTracing(); // OpenTelemetry, when installed, traces this node's jobs from the first claim
  const settings: EngineSettings & { heartbeatMs: number; shutdownGraceMs: number } = config.engine;
  const nodeId = options.nodeId ?? `${hostname().replaceAll('.', '_')}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const root = options.logger ?? createLogger({ level: process.env.PARTITA_LOG_LEVEL ?? config.log.level });
  const logger = childLogger(root, { node: nodeId });
  signals?.setLogger(logger);
  const cluster = config.cluster;
  const definitions = resolveDefinitions(jobs, config.defaults);
  const partitions = config.partitions;

  let embedded: EmbeddedPostgres | undefined;
  if (postgres === undefined) {
    embedded = await startEmbeddedPostgres({ dataDir: join(config.dataDir, 'pg'), logger: childLogger(logger, { actor: 'embedded-postgres' }) });
    logger.info(
      { url: embedded.url, dataDir: embedded.dataDir, owner: embedded.owner },
      embedded.adopted
        ? 'no postgres configured: using the embedded PostgreSQL already running for this data dir'
        : 'no postgres configured: started the embedded PostgreSQL',
    );
  }
  let store: JobStore;
  try {
    store = await JobStore.open({
      postgres: postgres ?? { connectionString: embedded!.url, max: config.postgres.poolSize },
      logger: childLogger(logger, { actor: 'store' }),
      schema: config.postgres.schema,
      payloadLimitBytes: config.limits.payloadBytes,
    });
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
  try {
    await store.registerQueues(
      nodeId,
      Object.entries(partitions).flatMap(([partition, p]) =>
        Object.entries(p.queues).map(([queue, q]) => ({ partition, queue, concurrency: q.concurrency })),
      ),
    );
    await store.registerJobTypes(nodeId, registeredTypes(definitions, logger));
  } catch (err) {
    await store.close();
    await embedded?.stop();
    throw err;
  }

  const metrics = createMetrics({ labels: { cluster }, jobCounts: liveJobCounts(store) });
  let bus: Bus;
  try {
    bus = await createBus(config.nats ? await natsBusOptions(config.nats) : false, { cluster, logger: childLogger(logger, { actor: 'bus' }) });
  } catch (err) {
    await store.close();
    await embedded?.stop();
    throw err;
  }

  metrics.attach({ bus });
  let persister: Persister;
  try {
    persister = await createPersister(config.persister, { dataDir: config.dataDir, cluster, pool: store.pool, schema: store.schema, logger: childLogger(logger, { actor: 'persister' }) });
  } catch (err) {
    await bus.close();
    await store.close();
    await embedded?.stop();
    throw err;
  }
  const leases = new PartitionLeases(store.pool, store.schema);

  const system = createSystem({ name: nodeId, logger });
  const engineName = (partition: string) => `engine:${partition}`;
  const engineOf = (partition: string) => system.whereis<EngineMsg, unknown>(engineName(partition));
  const engines = () => new Map(Object.keys(partitions).map((p) => [p, engineOf(p)]));
  const startedAt = Date.now();
  let quorum: QuorumMember | undefined;
  /** Tells the engines of every node that jobs of these queues may be claimable now. */
  const publishWake = (partition: string, queues: string[]) => {
    for (const queue of queues) bus.publish(subjects.wake(cluster, partition, queue), 'wake', null);
  };
  const publishEvent = jobEventPublisher({ bus, nodeId, logger: childLogger(logger, { actor: 'events' }) });

  const partitionSpec = (partition: string): SupervisorSpec => ({
    // rest_for_one: an engine restart also restarts its workers, so no job runs unaccounted for.
    strategy: 'rest_for_one',
    intensity: 5,
    periodMs: 10_000,
    children: [
      {
        id: 'seat',
        name: `seat:${partition}`,
        start: () =>
          seatBehavior({
            partition,
            nodeId,
            cluster,
            leases,
            persister,
            store,
            bus,
            system,
            logger: childLogger(logger, { partition, actor: 'seat' }),
            queues: Object.keys(partitions[partition]!.queues),
            engine: () => engineOf(partition),
            ttlMs: GLOBAL_LEASE_MS,
            tickMs: GLOBAL_TICK_MS,
            reconcileMs: GLOBAL_RECONCILE_MS,
            controlRefreshMs: CONTROL_REFRESH_MS,
            requestTimeoutMs: GLOBAL_TIMEOUT_MS,
            metrics,
            ...(persister instanceof FilePersister ? { localStateDir: persister.stateDir } : {}),
          }),
      },
      {
        id: 'engine',
        name: engineName(partition),
        start: () =>
          engineBehavior({
            nodeId,
            partition,
            queues: partitions[partition]!.queues,
            definitions,
            store,
            settings,
            logger: childLogger(logger, { partition, actor: 'engine' }),
            workersName: `workers:${partition}`,
            events: publishEvent,
            metrics,
            claimable: (queues) => publishWake(partition, queues),
            ...(options.continuations ? { continuations: options.continuations } : {}),
            idle: (queues) => {
              for (const { queue, free } of queues) {
                const advert: IdleAdvert = { node: nodeId, leaseMs: settings.leaseMs, free };
                bus.publish(subjects.idle(cluster, partition, queue), IDLE_KIND, advert);
              }
            },
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

  // Processes without the bus (a CLI, a client with no NATS) reach the nodes through Postgres
  // notifications: enqueues wake the engines, pause/throttle changes are re-read at once.
  const notices = await Notices.start({
    connection: store.pool.options,
    schema: store.schema,
    logger: childLogger(logger, { actor: 'notices' }),
    ...noticeRouter({
      store,
      partitions: Object.keys(partitions),
      engineOf,
      seatOf: (partition) => system.whereis(`seat:${partition}`),
      beat: () => system.whereis('lease-keeper')?.cast({ t: 'beat' }),
      logger: childLogger(logger, { actor: 'notices' }),
    }),
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
              retentionDays: config.retention.historyDays,
              engines,
              metrics,
              wake: (partition, queues) => {
                publishWake(partition, queues);
                engineOf(partition)?.cast({ t: 'wake', queues });
              },
              // The roll-call profile, kept in the nodes table for roll calls without the bus.
              info: async () => {
                const base = { cluster, partitions: Object.keys(partitions), pid: process.pid, uptimeMs: Date.now() - startedAt, heartbeatMs: settings.heartbeatMs };
                if (!quorum) return base;
                const profile = await quorum.profile({ counts: false }).catch(() => undefined);
                return profile ? { ...profile, heartbeatMs: settings.heartbeatMs } : base;
              },
            }),
        },
        ...Object.keys(partitions).map((partition) => ({
          id: `partition:${partition}`,
          start: () => partitionSpec(partition),
        })),
      ],
    },
    { name: 'node' },
  );
  system.on('fatal', (err) => logger.fatal({ err: describeError(err) }, 'node supervisor gave up; the node stops processing'));

  const client = new Client(store, { cluster, jobs: [...definitions.values()], logger: childLogger(logger, { actor: 'client' }), bus });
  const leaveQuorum = await startQuorumMember({ bus, cluster, nodeId, partitions, engines, store, startedAt, logger: childLogger(logger, { actor: 'quorum' }) });
  quorum = leaveQuorum;
  // A heartbeat now puts the full profile in the nodes table: a roll call without the bus sees this node at once.
  system.whereis('lease-keeper')?.cast({ t: 'beat' });
  installClientHooks(client, {
    enqueued(partition, queues) {
      // The bus carries wake-ups to every node; the local engine hears it directly, a few hops sooner.
      engineOf(partition)?.cast({ t: 'wake', queues: [...queues] });
    },
    handOff(node, job) {
      // A hand-off to this node from its own client skips the bus.
      const engine = node === nodeId ? engineOf(job.partition) : undefined;
      if (!engine?.alive) return false;
      engine.cast({ t: 'handoff', job });
      return true;
    },
    cancelRequested(jobs) {
      for (const job of jobs) if (job.node === nodeId) engineOf(job.partition)?.cast({ t: 'cancel', ids: [job.id] });
    },
    controlChanged(partition, row) {
      const seat = system.whereis<SeatMsg, void>(`seat:${partition}`);
      if (!seat?.alive) return;
      // Resolved once the seat has handed the state to the engine, whose mailbox then holds it
      // ahead of any wake-up for a job enqueued after this call.
      // A seat that stops meanwhile never answers: the call then returns after a second anyway.
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        seat.cast({ t: 'row', row, after: () => (clearTimeout(timer), resolve()) });
      });
    },
  });

  let stopping: Promise<void> | undefined;
  const stats = async () => {
    const out: EngineStats[] = [];
    for (const [, ref] of engines()) if (ref?.alive) out.push((await ref.call({ t: 'stats' })) as EngineStats);
    return out;
  };
  metrics.attach({ engines: () => stats() });
  let http: HttpServer | undefined;
  if (config.http) {
    try {
      http = await startHttpServer({
        port: config.http.port,
        host: config.http.host,
        metrics: metrics.registry,
        logger: childLogger(logger, { actor: 'http' }),
        health: nodeHealth({
          db: store.pool,
          bus,
          partitions: () =>
            Object.fromEntries(
              Object.keys(partitions).map((p) => [
                p,
                system.whereis(engineName(p))?.alive === true && system.whereis(`seat:${p}`)?.alive === true ? true : 'supervision tree down',
              ]),
            ),
          stopping: () => stopping !== undefined,
        }),
      });
      logger.info({ url: http.url }, 'health and metrics listening');
    } catch (err) {
      await leaveQuorum().catch(() => undefined);
      await nodeSupervisor.stop();
      await system.shutdown();
      await notices.close();
      await bus.close();
      await persister.close?.();
      await store.close();
      await embedded?.stop();
      throw err;
    }
  }
  logger.info({ partitions: Object.keys(partitions), jobs: [...definitions.keys()] }, 'node started');

  return {
    id: nodeId,
    client,
    system,
    bus,
    metrics,
    ...(http ? { http: { url: http.url, port: http.port } } : {}),
    stats,
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
        await leaveQuorum().catch(() => undefined);
        await nodeSupervisor.stop();
        await http?.close();
        await system.shutdown();
        await notices.close();
        await store.leaveNodes(nodeId).catch((err) => logger.debug({ err: describeError(err).message }, 'leaving the nodes table failed; roll calls drop this node after a few heartbeats'));
        await client.close();
        await bus.close();
        await persister.close?.();
        await store.close();
        await embedded?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/**
 * What the node records of each job type for enqueuers without the definitions: defaults and the
 * keys declared as templates. A key declared as a function cannot be recorded: it holds only for
 * clients given the definitions, which is worth a warning at every start.
 */
function registeredTypes(definitions: Map<string, ResolvedJobDefinition>, logger: Logger): RegisteredJobType[] {
  return [...definitions.values()].map((d) => {
    const functionKeys = (['queueKey', 'executionKey'] as const).filter((k) => typeof d[k] === 'function');
    if (functionKeys.length) {
      logger.warn(
        { type: d.type, keys: functionKeys },
        `job type "${d.type}" declares ${functionKeys.join(' and ')} as a function, which only clients given the definitions apply ` +
          '(node.client, connect({ jobs }), the CLI with the config\'s jobs module); a bare connect() or another service enqueues ' +
          "without the key. Declare it as a template such as 'invoice:{invoice}' to make it hold for every enqueuer",
      );
    }
    return {
      type: d.type,
      queue: d.queue,
      maxAttempts: d.maxAttempts,
      timeoutMs: d.timeoutMs ?? null,
      queueKey: typeof d.queueKey === 'string' ? d.queueKey : null,
      executionKey: typeof d.executionKey === 'string' ? d.executionKey : null,
    };
  });
}

/** Fills each definition's unset attempts, backoff and timeout from the node's defaults. */
function resolveDefinitions(jobs: JobDefinition[], defaults: { maxAttempts: number; backoff: { baseMs: number; maxMs: number }; timeoutMs: number }) {
  if (!Array.isArray(jobs)) throw new ValidationError('jobs must be an array of defineJob(...) results', 'jobs');
  const out = new Map<string, ResolvedJobDefinition>();
  jobs.forEach((d, i) => {
    if (typeof d?.perform !== 'function' || typeof d.type !== 'string') throw new ValidationError('is not a job definition; create it with defineJob({ type, perform })', `jobs[${i}]`);
    if (out.has(d.type)) throw new ValidationError(`job type "${d.type}" is defined twice`, `jobs[${i}]`);
    const timeoutMs = d.timeoutMs ?? (defaults.timeoutMs > 0 ? defaults.timeoutMs : undefined);
    out.set(d.type, { ...d, maxAttempts: d.maxAttempts ?? defaults.maxAttempts, backoff: d.backoff ?? defaults.backoff, ...(timeoutMs ? { timeoutMs } : {}) });
  });
  return out;
}
