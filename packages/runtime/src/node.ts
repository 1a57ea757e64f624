import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createSystem, type ActorSystem, type ChildSpec, type SupervisorSpec } from '@partita/actors';
import { PluginError, ValidationError, childLogger, createLogger, describeError, loadTracing, type Logger } from '@partita/core';
import { JobStore, Leases, Notices, migrate, type RegisteredJobType } from '@partita/postgres';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '@partita/postgres-embedded';
import { Client, installClientHooks } from '@partita/client/internal';
import { IDLE_KIND, type IdleAdvert } from '@partita/protocol';
import type { JobDefinition, OutcomeContinuation, ResolvedJobDefinition } from './define.js';
import { engineBehavior, type EngineMsg, type EngineSettings, type EngineStats } from './engine/engine.js';
import { LeaderSeat } from './leadership/leader-seat.js';
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
import { AsyncResourceStack } from './resource-stack.js';
import { checkPluginConfig, checkPlugins, migrationsDir, type NodePlugin, type PluginContext } from './plugin.js';

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
  /**
   * This node stops running these queues of the partition (other nodes are not affected, and no
   * control changes): it claims none of their jobs, hands back the prefetched ones, and resolves once
   * the running ones have finished (aborted and handed back after graceMs, default the shutdown grace)
   * and their outcomes are recorded. Their jobs stay queued for another node or startQueues.
   */
  stopQueues(partition: string, queues: readonly string[], options?: { graceMs?: number }): Promise<void>;
  /** Runs these queues again after stopQueues (or the `stoppedQueues` option). */
  startQueues(partition: string, queues: readonly string[]): Promise<void>;
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

/** The built-in parts of every node, in start order; a plugin cannot take these names. */
const BUILT_IN = ['lease-keeper', 'global', 'jobs', 'http'] as const;

async function openNode(options: NodeOptions, signals: StopSignals | undefined): Promise<PartitaNode> {
  const { config, postgres, jobs } = await resolveOptions(options);
  const extraPlugins = options.plugins ?? [];
  checkPlugins(extraPlugins, BUILT_IN);
  const pluginSections = config.plugins ?? {};
  const unclaimed = checkPluginConfig(extraPlugins, pluginSections, config.configFile);
  await loadTracing(); // OpenTelemetry, when installed, traces this node's jobs from the first claim
  const settings: EngineSettings & { heartbeatMs: number; shutdownGraceMs: number } = config.engine;
  const nodeId = options.nodeId ?? `${hostname().replaceAll('.', '_')}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const root = options.logger ?? createLogger({ level: process.env.PARTITA_LOG_LEVEL ?? config.log.level });
  const logger = childLogger(root, { node: nodeId });
  signals?.setLogger(logger);
  if (unclaimed.length)
    logger.warn(
      { sections: unclaimed.map((k) => `plugins.${k}`) },
      'the config has settings for plugins this node does not run; they are ignored',
    );
  const cluster = config.cluster;
  const definitions = resolveDefinitions(jobs, config.defaults, extraPlugins);
  const partitions = config.partitions;
  /** Partition → queues this node does not run until startQueues (kept here: an engine restart reads them again). */
  const held = new Map(Object.keys(partitions).map((p) => [p, new Set<string>()]));
  const servedQueues = (call: string, partition: string, queues: readonly string[]): string[] => {
    const p = partitions[partition];
    if (!p)
      throw new ValidationError(
        `${call}: this node runs no partition "${partition}" (it runs ${Object.keys(partitions).join(', ')})`,
        'partition',
      );
    if (!Array.isArray(queues)) throw new ValidationError(`${call}: queues must be an array of queue names`, 'queues');
    const unknown = queues.filter((q) => !(q in p.queues));
    if (unknown.length)
      throw new ValidationError(
        `${call}: partition "${partition}" of this node has no queue ${unknown.join(', ')}; add it under partitions.${partition}.queues`,
        'queues',
      );
    return [...queues];
  };
  for (const [partition, queues] of Object.entries(options.stoppedQueues ?? {}))
    for (const q of servedQueues('stoppedQueues', partition, queues)) held.get(partition)!.add(q);

  // Everything the node acquires goes on this stack as it is acquired: a failed start and a stop
  // release it the same way, in reverse.
  const stack = new AsyncResourceStack({ logger: childLogger(logger, { actor: 'resources' }) });
  try {
    let embedded: EmbeddedPostgres | undefined;
    if (postgres === undefined) {
      embedded = await startEmbeddedPostgres({
        dataDir: join(config.dataDir, 'pg'),
        logger: childLogger(logger, { actor: 'embedded-postgres' }),
      });
      stack.use('embedded postgres', embedded, (e) => e.stop());
      logger.info(
        { url: embedded.url, dataDir: embedded.dataDir, owner: embedded.owner },
        embedded.adopted
          ? 'no postgres configured: using the embedded PostgreSQL already running for this data dir'
          : 'no postgres configured: started the embedded PostgreSQL',
      );
    }
    const store = stack.use(
      'store',
      await JobStore.open({
        postgres: postgres ?? { connectionString: embedded!.url, max: config.postgres.poolSize },
        logger: childLogger(logger, { actor: 'store' }),
        schema: config.postgres.schema,
        payloadLimitBytes: config.limits.payloadBytes,
      }),
      (s) => s.close(),
    );
    const pluginMigrations = extraPlugins.flatMap((p) => {
      const dir = migrationsDir(p);
      return dir === undefined ? [] : [{ plugin: p.name, dir }];
    });
    // The core's are applied by JobStore.open; this pass, under the same lock, finds them done.
    if (pluginMigrations.length)
      await migrate(store.pool, store.schema, childLogger(logger, { actor: 'migrate' }), { plugins: pluginMigrations });
    await store.registerQueues(
      nodeId,
      Object.entries(partitions).flatMap(([partition, p]) =>
        Object.entries(p.queues).map(([queue, q]) => ({ partition, queue, concurrency: q.concurrency })),
      ),
    );
    await store.registerJobTypes(nodeId, registeredTypes(definitions, logger));
    // Released just before the store closes: roll calls without the bus stop counting this node.
    stack.defer('nodes table entry', () =>
      store
        .leaveNodes(nodeId)
        .catch((err) =>
          logger.debug(
            { err: describeError(err).message },
            'leaving the nodes table failed; roll calls drop this node after a few heartbeats',
          ),
        ),
    );

    const metrics = createMetrics({ labels: { cluster }, jobCounts: liveJobCounts(store) });
    const bus = stack.use(
      'bus',
      await createBus(config.nats ? await natsBusOptions(config.nats) : false, { cluster, logger: childLogger(logger, { actor: 'bus' }) }),
      (b) => b.close(),
    );
    metrics.attach({ bus });
    const persister: Persister = await createPersister(config.persister, {
      dataDir: config.dataDir,
      cluster,
      pool: store.pool,
      schema: store.schema,
      logger: childLogger(logger, { actor: 'persister' }),
    });
    stack.defer('persister', () => persister.close?.());
    const leases = new Leases(store.pool, store.schema);

    const system = stack.use('actor system', createSystem({ name: nodeId, logger }), (s) => s.shutdown());
    const engineName = (partition: string) => `engine:${partition}`;
    const engineOf = (partition: string) => system.whereis<EngineMsg, unknown>(engineName(partition));
    const engines = () => new Map(Object.keys(partitions).map((p) => [p, engineOf(p)]));
    const startedAt = Date.now();
    let quorum: QuorumMember | undefined;
    let stopping: Promise<void> | undefined;
    /** Tells the engines of every node that jobs of these queues may be claimable now. */
    const publishWake = (partition: string, queues: string[]) => {
      for (const queue of queues) bus.publish(subjects.wake(cluster, partition, queue), 'wake', null);
    };
    const publishEvent = jobEventPublisher({ bus, nodeId, logger: childLogger(logger, { actor: 'events' }) });

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
    stack.use('notices', notices, (n) => n.close());

    // Created before the supervision tree, so that plugins' children find it; its hooks look the
    // engines up when they are called.
    const client = stack.use(
      'client',
      new Client(store, { cluster, jobs: [...definitions.values()], logger: childLogger(logger, { actor: 'client' }), bus }),
      (c) => c.close(),
    );
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

    const stats = async () => {
      const out: EngineStats[] = [];
      for (const [, ref] of engines()) if (ref?.alive) out.push((await ref.call({ t: 'stats' })) as EngineStats);
      return out;
    };
    metrics.attach({ engines: () => stats() });

    // ---- the built-in plugins ------------------------------------------------------------------
    const leaseKeeperPlugin: NodePlugin = {
      name: 'lease-keeper',
      nodeChildren: () => [
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
              leases,
              system,
              engines,
              metrics,
              wake: (partition, queues) => {
                publishWake(partition, queues);
                engineOf(partition)?.cast({ t: 'wake', queues });
              },
              // The roll-call profile, kept in the nodes table for roll calls without the bus.
              info: async () => {
                const base = {
                  cluster,
                  partitions: Object.keys(partitions),
                  pid: process.pid,
                  uptimeMs: Date.now() - startedAt,
                  // With the lease, other nodes' rescue rounds tell from the row when this node has stopped.
                  heartbeatMs: settings.heartbeatMs,
                  leaseMs: settings.leaseMs,
                };
                if (!quorum) return base;
                const profile = await quorum.profile({ counts: false }).catch(() => undefined);
                return profile ? { ...profile, heartbeatMs: settings.heartbeatMs, leaseMs: settings.leaseMs } : base;
              },
            }),
        },
      ],
    };

    const globalPlugin: NodePlugin = {
      name: 'global',
      partitionChildren: (_ctx, partition) => [
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
      ],
    };

    const jobsPlugin: NodePlugin = {
      name: 'jobs',
      // One supervisor per partition, its children contributed by every plugin in order.
      nodeChildren: () =>
        Object.keys(partitions).map((partition) => ({
          id: `partition:${partition}`,
          start: () => partitionSpec(partition),
        })),
      partitionChildren: (_ctx, partition) => [
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
              held: () => held.get(partition)!,
              continuations: outcomeContinuations(),
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
      async start() {
        quorum = await startQuorumMember({
          bus,
          cluster,
          nodeId,
          partitions,
          engines,
          store,
          startedAt,
          logger: childLogger(logger, { actor: 'quorum' }),
        });
        // A heartbeat now puts the full profile in the nodes table: a roll call without the bus sees this node at once.
        system.whereis('lease-keeper')?.cast({ t: 'beat' });
        const leave = quorum;
        return () => leave().catch(() => undefined);
      },
    };

    let http: HttpServer | undefined;
    const httpPlugin: NodePlugin = {
      name: 'http',
      async start() {
        if (!config.http) return;
        http = await startHttpServer({
          port: config.http.port,
          host: config.http.host,
          metrics: metrics.registry,
          logger: childLogger(logger, { actor: 'http' }),
          routes: plugins.flatMap((p) => (p.routes ? p.routes(contexts.get(p)!).map((r) => ({ ...r, owner: `plugin "${p.name}"` })) : [])),
          health: nodeHealth({
            db: store.pool,
            bus,
            partitions: () =>
              Object.fromEntries(
                Object.keys(partitions).map((p) => [
                  p,
                  system.whereis(engineName(p))?.alive === true && system.whereis(`seat:${p}`)?.alive === true
                    ? true
                    : 'supervision tree down',
                ]),
              ),
            stopping: () => stopping !== undefined,
          }),
        });
        logger.info({ url: http.url }, 'health and metrics listening');
        const server = http;
        return () => server.close();
      },
    };

    const plugins: readonly NodePlugin[] = [leaseKeeperPlugin, globalPlugin, jobsPlugin, ...extraPlugins, httpPlugin];
    const base = {
      nodeId,
      cluster,
      client,
      store,
      pool: store.pool,
      schema: store.schema,
      bus,
      system,
      partitions: Object.keys(partitions),
      config,
      metrics,
      leases,
    };
    const contexts = new Map<NodePlugin, PluginContext>(
      plugins.map((p) => {
        const pluginLogger = childLogger(logger, { plugin: p.name });
        const leaderSeat: PluginContext['leaderSeat'] = (seat) =>
          new LeaderSeat({ nodeId, leases, system, ...seat, logger: seat.logger ?? pluginLogger });
        return [p, Object.freeze({ ...base, logger: pluginLogger, pluginConfig: pluginSections[p.name], leaderSeat })];
      }),
    );
    // The node's own (startNode's `continuations`) first, then each plugin's, in plugin order; asked
    // once, when the first engine starts (the plugins' contexts exist by then).
    let continuations: readonly OutcomeContinuation[] | undefined;
    const outcomeContinuations = () =>
      (continuations ??= [...(options.continuations ?? []), ...plugins.flatMap((p) => p.continuations?.(contexts.get(p)!) ?? [])]);
    const contributions = (hook: 'nodeChildren' | 'partitionChildren', partition?: string): ChildSpec[] => {
      const owners = new Map<string, string>();
      return plugins.flatMap((p) => {
        const children =
          hook === 'nodeChildren'
            ? (p.nodeChildren?.(contexts.get(p)!) ?? [])
            : (p.partitionChildren?.(contexts.get(p)!, partition!) ?? []);
        if (!Array.isArray(children)) throw new PluginError(p.name, `${hook} must return an array of child specs`);
        for (const child of children) {
          const taken = owners.get(child?.id);
          if (taken !== undefined) {
            throw new PluginError(
              p.name,
              `its ${hook === 'nodeChildren' ? 'node' : `partition "${partition}"`} child "${child.id}" has the id of one of plugin "${taken}"'s; use ids prefixed with the plugin's name`,
            );
          }
          owners.set(child?.id, p.name);
        }
        return children;
      });
    };
    const partitionSpec = (partition: string): SupervisorSpec => ({
      // rest_for_one: an engine restart also restarts its workers (and what plugins put after them),
      // so no job runs unaccounted for.
      strategy: 'rest_for_one',
      intensity: 5,
      periodMs: 10_000,
      children: contributions('partitionChildren', partition),
    });

    const nodeSupervisor = await system.supervise(
      { strategy: 'one_for_one', intensity: 10, periodMs: 60_000, children: contributions('nodeChildren') },
      { name: 'node' },
    );
    stack.use('node supervisor', nodeSupervisor, (s) => s.stop());
    system.on('fatal', (err) => logger.fatal({ err: describeError(err) }, 'node supervisor gave up; the node stops processing'));

    for (const plugin of plugins) {
      if (!plugin.start) continue;
      let stop: void | (() => unknown);
      try {
        stop = await plugin.start(contexts.get(plugin)!);
      } catch (err) {
        if (BUILT_IN.includes(plugin.name as (typeof BUILT_IN)[number])) throw err;
        throw new PluginError(plugin.name, `start failed: ${describeError(err).message}`, { cause: err });
      }
      if (typeof stop === 'function') stack.defer(`plugin ${plugin.name}`, stop);
    }
    logger.info(
      { partitions: Object.keys(partitions), jobs: [...definitions.keys()], plugins: extraPlugins.map((p) => p.name) },
      'node started',
    );

    return {
      id: nodeId,
      client,
      system,
      bus,
      metrics,
      ...(http ? { http: { url: http.url, port: http.port } } : {}),
      stats,
      async stopQueues(partition, queues, stopOptions = {}) {
        const names = servedQueues('stopQueues', partition, queues);
        for (const q of names) held.get(partition)!.add(q);
        const ref = engineOf(partition);
        if (!ref?.alive) return;
        const graceMs = stopOptions.graceMs ?? settings.shutdownGraceMs;
        logger.info({ partition, queues: names, graceMs }, 'stopping queues on this node: no new claims, waiting for their running jobs');
        await new Promise<void>((resolve) => {
          // An engine that stops meanwhile (the node stopping) ends the wait too.
          const off = ref.monitor(() => resolve());
          ref.cast({ t: 'stopQueues', queues: names, graceMs, done: () => (off(), resolve()) });
        });
      },
      async startQueues(partition, queues) {
        const names = servedQueues('startQueues', partition, queues);
        for (const q of names) held.get(partition)!.delete(q);
        engineOf(partition)?.cast({ t: 'startQueues', queues: names });
        logger.info({ partition, queues: names }, 'running queues on this node again');
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
          await stack.unwind();
          logger.info('stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    logger.debug({ resources: stack.pending() }, 'start-up failed: releasing what was acquired');
    await stack
      .unwind()
      .catch((unwindErr: unknown) =>
        logger.error({ err: describeError(unwindErr).message }, 'releasing after a failed start-up failed too; some resources may be left'),
      );
    throw err;
  }
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
          "(node.client, connect({ jobs }), the CLI with the config's jobs module); a bare connect() or another service enqueues " +
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
/** Fills each definition's unset attempts, backoff and timeout from the node's defaults; plugins' jobs join the node's. */
function resolveDefinitions(
  jobs: JobDefinition[],
  defaults: { maxAttempts: number; backoff: { baseMs: number; maxMs: number }; timeoutMs: number },
  plugins: readonly NodePlugin[],
) {
  if (!Array.isArray(jobs)) throw new ValidationError('jobs must be an array of defineJob(...) results', 'jobs');
  const out = new Map<string, ResolvedJobDefinition>();
  const owner = new Map<string, string>();
  const add = (d: JobDefinition, where: string, plugin?: string) => {
    if (typeof d?.perform !== 'function' || typeof d.type !== 'string') {
      if (plugin) throw new PluginError(plugin, `${where} is not a job definition; create it with defineJob({ type, perform })`);
      throw new ValidationError('is not a job definition; create it with defineJob({ type, perform })', where);
    }
    if (out.has(d.type)) {
      const first = owner.get(d.type);
      if (plugin)
        throw new PluginError(
          plugin,
          `job type "${d.type}" is already defined by ${first}; a type has one definition per node, rename one of them`,
        );
      throw new ValidationError(`job type "${d.type}" is defined twice`, where);
    }
    const timeoutMs = d.timeoutMs ?? (defaults.timeoutMs > 0 ? defaults.timeoutMs : undefined);
    out.set(d.type, {
      ...d,
      maxAttempts: d.maxAttempts ?? defaults.maxAttempts,
      backoff: d.backoff ?? defaults.backoff,
      ...(timeoutMs ? { timeoutMs } : {}),
    });
    owner.set(d.type, plugin ? `plugin "${plugin}"` : "the node's jobs");
  };
  jobs.forEach((d, i) => add(d, `jobs[${i}]`));
  for (const plugin of plugins) (plugin.jobs ?? []).forEach((d, i) => add(d, `jobs[${i}]`, plugin.name));
  return out;
}
