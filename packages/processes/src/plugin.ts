/**
 * processesPlugin: cron schedules and background processes on a node. Schedules come
 * from three places, all kept in Postgres: the plugin's `schedules` option (code), the config's
 * `plugins.processes.schedules` section (YAML), both synced at start, and schedules(client) at run
 * time. Every node sits for the 'schedules' lease; the one holding it runs the leader (leader.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { definePlugin, type NodePlugin, type PluginConfigProblem, type PluginContext } from '@partita/runtime';
import { describeError, ValidationError } from '@partita/core';
import { schedulerBehavior } from './schedules/leader.js';
import { resolveSchedule, type ResolvedSchedule, type ScheduleSpec } from './schedules/spec.js';
import { ScheduleStore } from './schedules/store.js';
import { MIGRATIONS_DIR } from './sql.js';
import type { ResolvedProcess } from './processes/define.js';
import { processRoutes } from './processes/http.js';
import { ProcessRunner, type RunObserver } from './processes/runner.js';
import { ProcessStore } from './processes/store.js';
import type { RunOutcome } from './processes/run.js';

export interface ProcessesPluginOptions {
  /** Background processes (defineProcess results) this node runs its share of. */
  processes?: readonly ResolvedProcess<any, any>[];
  /** Called on this node after each of its runs ends (tests, metrics). */
  onProcessRunEnd?: (process: string, outcome: RunOutcome) => void;
  /** Schedules declared in code; synced at start (created, or changed to match). */
  schedules?: readonly ScheduleSpec[];
  /** The 'schedules' lease's time to live: a dead leader is replaced within about this. Default 10000. */
  leaseMs?: number;
  /** An occurrence at most this late is on time and fires under every misfire policy. Default 5000. */
  misfireGraceMs?: number;
  /** Longest the leader sleeps without looking (a lost notification costs at most this). Default 60000. */
  maxSleepMs?: number;
}

/** The `plugins.processes` section of the YAML config (its values win over the plugin's options). */
export interface ProcessesConfig {
  schedules?: ScheduleSpec[];
  leaseMs?: number;
  misfireGraceMs?: number;
  maxSleepMs?: number;
}

const DURATIONS = ['leaseMs', 'misfireGraceMs', 'maxSleepMs'] as const;

export const PLUGIN_NAME = 'processes';
export const SCHEDULES_LEASE = 'schedules';
const KEEP_OCCURRENCES_MS = 7 * 86_400_000;

function checkSection(section: unknown): PluginConfigProblem[] {
  if (section === undefined || section === null) return [];
  if (typeof section !== 'object' || Array.isArray(section)) return [{ message: 'expected a mapping such as { schedules: [...] }' }];
  const problems: PluginConfigProblem[] = [];
  for (const key of Object.keys(section)) {
    if (key !== 'schedules' && !(DURATIONS as readonly string[]).includes(key)) {
      problems.push({ path: key, message: `unknown key; this section has schedules, ${DURATIONS.join(', ')}` });
    }
  }
  for (const key of DURATIONS) {
    const value = (section as ProcessesConfig)[key];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
      problems.push({ path: key, message: 'expected a whole number of milliseconds above 0' });
    }
  }
  const list = (section as ProcessesConfig).schedules;
  if (list === undefined) return problems;
  if (!Array.isArray(list)) return [...problems, { path: 'schedules', message: 'expected a list of schedules' }];
  const ids = new Set<string>();
  list.forEach((spec, i) => {
    const id = (spec as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && ids.has(id)) problems.push({ path: `schedules.${i}.id`, message: `"${id}" is declared twice` });
    if (typeof id === 'string') ids.add(id);
    try {
      resolveSchedule(spec, `schedules.${i}`);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      problems.push({ ...(err.path ? { path: err.path } : {}), message: err.message.replace(`${err.path}: `, '') });
    }
  });
  return problems;
}

/** The processes' metrics on a node's registry; every defined process shows (at 0) before its first run. */
function processMetrics(registry: Registry, names: readonly string[]): RunObserver {
  const runs = new Counter({
    name: 'partita_process_runs_total',
    help: 'Background process runs that ended on this node, by result (completed, incomplete, aborted; conflict: lost ownership; released: the node stopped mid-run)',
    labelNames: ['process', 'result'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'partita_process_errors_total',
    help: 'Errors added to background process runs on this node (addError, a worker that threw, a failed save)',
    labelNames: ['process'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'partita_process_run_duration_seconds',
    help: 'How long the background process runs on this node took, from claim to end, by result',
    labelNames: ['process', 'result'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400],
    registers: [registry],
  });
  const owned = new Gauge({
    name: 'partita_process_owned',
    help: '1 while this node owns a run of the background process (holds its fenced lease), else 0',
    labelNames: ['process'] as const,
    registers: [registry],
  });
  for (const process of names) {
    owned.set({ process }, 0);
    errors.inc({ process }, 0);
  }
  return {
    owned: (process, owning) => owned.set({ process }, owning ? 1 : 0),
    runEnded: (process, result, durationMs) => {
      runs.inc({ process, result });
      duration.observe({ process, result }, durationMs / 1000);
    },
    errorAdded: (process) => errors.inc({ process }),
  };
}

export function processesPlugin(options: ProcessesPluginOptions = {}): NodePlugin<ProcessesConfig | undefined> {
  const definitions = options.processes ?? [];
  const names = new Set<string>();
  definitions.forEach((d, i) => {
    if (typeof d?.processActiveWork !== 'function' || typeof d.leaseMs !== 'number')
      throw new ValidationError('must be the result of defineProcess({ ... })', `processesPlugin.processes.${i}`);
    if (names.has(d.name)) throw new ValidationError(`"${d.name}" is given twice`, `processesPlugin.processes.${i}.name`);
    names.add(d.name);
  });
  const declared: ResolvedSchedule[] = (options.schedules ?? []).map((s, i) => resolveSchedule(s, `processesPlugin.schedules.${i}`));
  // One store per node: the same plugin object may be handed to several nodes (tests, embedding).
  const stores = new WeakMap<object, ScheduleStore>();
  const storeOf = (ctx: PluginContext<ProcessesConfig | undefined>) => {
    let store = stores.get(ctx.store);
    if (!store) stores.set(ctx.store, (store = new ScheduleStore(ctx.pool, ctx.schema, ctx.store)));
    return store;
  };

  return definePlugin<ProcessesConfig | undefined>({
    name: PLUGIN_NAME,
    migrations: MIGRATIONS_DIR,
    configSchema: checkSection,
    routes: (ctx) => processRoutes(ctx.client),
    nodeChildren(ctx) {
      const schedules = storeOf(ctx);
      const config = ctx.pluginConfig ?? {};
      const leaseMs = config.leaseMs ?? options.leaseMs ?? 10_000;
      const labels = ['schedule'] as const;
      const missed = new Counter({
        name: 'partita_schedule_missed_total',
        help: 'Schedule occurrences passed over by their misfire policy (the cluster was down or late), counted by the leader that found them',
        labelNames: labels,
        registers: [ctx.metrics.registry],
      });
      const fired = new Counter({
        name: 'partita_schedule_fired_total',
        help: 'Schedule occurrences whose job this node enqueued as the schedules leader',
        labelNames: labels,
        registers: [ctx.metrics.registry],
      });
      const seat = ctx.leaderSeat({
        lease: SCHEDULES_LEASE,
        ttlMs: leaseMs,
        tickMs: Math.max(50, Math.floor(leaseMs / 5)),
        name: 'schedules-leader',
        start: () =>
          schedulerBehavior({
            store: schedules,
            logger: ctx.logger.child({ actor: 'schedules-leader' }),
            counters: {
              fired: (schedule, n) => fired.inc({ schedule }, n),
              missed: (schedule, n) => missed.inc({ schedule }, n),
            },
            graceMs: config.misfireGraceMs ?? options.misfireGraceMs ?? 5_000,
            maxSleepMs: config.maxSleepMs ?? options.maxSleepMs ?? 60_000,
            retryMs: 30_000,
            keepOccurrencesMs: KEEP_OCCURRENCES_MS,
          }),
      });
      return [{ id: 'schedules-seat', start: () => seat.behavior() }];
    },
    async start(ctx) {
      const fromConfig = (ctx.pluginConfig?.schedules ?? []).map((s, i) => resolveSchedule(s, `plugins.processes.schedules.${i}`));
      const all = new Map<string, ResolvedSchedule>();
      for (const s of [...fromConfig, ...declared]) all.set(s.id, s);
      const schedules = storeOf(ctx);
      for (const s of all.values()) {
        try {
          await schedules.upsert(s, 'declared');
        } catch (err) {
          throw new ValidationError(`could not be stored: ${describeError(err).message}`, `schedule ${s.id}`);
        }
      }
      if (all.size) ctx.logger.info({ schedules: [...all.keys()] }, 'declared schedules synced');
      if (definitions.length === 0) return;
      const runner = new ProcessRunner({
        store: new ProcessStore(ctx.pool, ctx.schema),
        bus: ctx.bus,
        nodeId: ctx.nodeId,
        logger: ctx.logger.child({ actor: 'processes' }),
        processes: definitions,
        observer: processMetrics(
          ctx.metrics.registry,
          definitions.map((d) => d.name),
        ),
        ...(options.onProcessRunEnd ? { onRunEnd: options.onProcessRunEnd } : {}),
      });
      await runner.start();
      return () => runner.stop();
    },
  });
}
