/**
 * Node plugins: how every layer above jobs (workflows, processes, the dashboard) and the node's own
 * parts (the job engine, Global, the lease keeper, HTTP) join a node. startNode assembles the node
 * from them in order: their migrations after the core's, their jobs with the node's, their children in
 * the node's and each partition's supervisor, their routes on the node's HTTP server, their start-up
 * on the node's resource stack (stopped in reverse).
 */
import { fileURLToPath } from 'node:url';
import type { ActorSystem, ChildSpec } from '@partita/actors';
import { ConfigError, NAME_PATTERN, PluginError, type ConfigProblem, type Logger, type PartitaConfig } from '@partita/core';
import type { JobStore, LeaseStore } from '@partita/postgres';
import type { Client } from '@partita/client';
import type { Bus } from '@partita/nats';
import type pg from 'pg';
import type { JobDefinition, OutcomeContinuation } from './define.js';
import type { Route } from './http.js';
import type { Metrics } from './metrics.js';
import type { LeaderSeat, LeaderSeatOptions } from './leadership/leader-seat.js';

export type { Route, RouteHandler, HttpMethod } from './http.js';

/** What a plugin is given: the node's shared parts, never its private wiring. */
export interface PluginContext<C = unknown> {
  readonly nodeId: string;
  readonly cluster: string;
  /** A child of the node's logger with `plugin: <name>`. */
  readonly logger: Logger;
  /** The node's client (enqueue, cancel, pause, subscribe…), the same object as node.client. */
  readonly client: Client;
  /** The node's store: its pool, schema and the jobs' SQL operations. */
  readonly store: JobStore;
  readonly pool: pg.Pool;
  /** The Postgres schema of Partita's tables, and of the plugin's migrations. */
  readonly schema: string;
  readonly bus: Bus;
  readonly system: ActorSystem;
  /** The partitions this node runs. */
  readonly partitions: readonly string[];
  /** The whole node configuration. */
  readonly config: PartitaConfig;
  /** This plugin's section (`plugins.<name>` of the config), as the configSchema accepted it. */
  readonly pluginConfig: C;
  /** Where plugins register their Prometheus metrics (exposed on /metrics). */
  readonly metrics: Metrics;
  /**
   * Name-keyed fenced leases with epochs, the building block of a single owner across the cluster
   * (each partition's Global holds 'global:<partition>'; a plugin takes leases under names of its own,
   * e.g. 'schedule:nightly').
   */
  readonly leases: LeaseStore;
  /**
   * A seat for one of the plugin's leases on this node's leases, system and logger: run
   * `seat.behavior()` as one of the plugin's node children, and its `start(epoch)` child runs on one
   * node of the cluster at a time.
   */
  leaderSeat(options: Omit<LeaderSeatOptions, 'nodeId' | 'leases' | 'system' | 'logger'> & { logger?: Logger }): LeaderSeat;
}

/** A problem with a plugin's config section; `path` is relative to the section (e.g. `retention.days`). */
export interface PluginConfigProblem {
  path?: string;
  message: string;
}

export interface NodePlugin<C = unknown> {
  /** Unique on the node; letters, digits, "_" or "-". Names its config section and its migrations. */
  name: string;
  /**
   * A folder of `NNNN_name.sql` files (a path or a file: URL), applied after the core's migrations
   * under the same advisory lock, each in its own transaction, recorded under the plugin's name.
   * `{{schema}}` stands for the quoted schema, `{{schema_raw}}` for its bare name.
   */
  migrations?: string | URL;
  /** Job types the plugin runs; they join the node's (a type defined twice is a PluginError). */
  jobs?: readonly JobDefinition[];
  /**
   * Continuations the plugin attaches to job outcomes, run in the transaction that records them (see
   * defineJob's `continuation`): by type list, by a predicate, or (no `types`) only for the jobs
   * marked with the continuation's name (NewJob.continuation, set by the plugin when it enqueues
   * them, e.g. a workflow's steps). Prefer marks for jobs known only at run time: every other job of
   * the node then keeps the plain write, and only nodes that run the continuation claim marked jobs.
   * Asked once, when the node's first engine starts.
   */
  continuations?(ctx: PluginContext<C>): readonly OutcomeContinuation[];
  /** Children of the node supervisor (one_for_one), after the partitions' supervisors. */
  nodeChildren?(ctx: PluginContext<C>): ChildSpec[];
  /** Children of each partition's supervisor (rest_for_one), after the engine and its workers. */
  partitionChildren?(ctx: PluginContext<C>, partition: string): ChildSpec[];
  /** HTTP routes mounted on the node's server (config `http:`); a route taken twice is a RouteConflictError. */
  routes?(ctx: PluginContext<C>): Route[];
  /**
   * Checks the plugin's config section (`plugins.<name>` in the YAML, or startNode's
   * `pluginConfig[name]`), given `undefined` when there is none. Returns its problems (paths relative
   * to the section), reported as one ConfigError naming `plugins.<name>.<path>`.
   */
  configSchema?(section: unknown): readonly PluginConfigProblem[] | void;
  /**
   * Runs once the node's supervision tree is up, in plugin order; what it returns is called on stop
   * (in reverse plugin order) or when a later part of the start-up fails.
   */
  start?(ctx: PluginContext<C>): void | (() => unknown) | Promise<void | (() => unknown)>;
}

/** Checks a plugin's shape once, where it is defined, so that a mistake names its author's code. */
export function definePlugin<C = unknown>(plugin: NodePlugin<C>): NodePlugin<C> {
  checkPlugin(plugin as NodePlugin, 'definePlugin');
  return plugin;
}

const HOOKS = ['continuations', 'nodeChildren', 'partitionChildren', 'routes', 'configSchema', 'start'] as const;

function checkPlugin(plugin: NodePlugin, where: string): void {
  if (typeof plugin !== 'object' || plugin === null) throw new PluginError(String(plugin), `${where} needs a plugin object { name, ... }`);
  const name = plugin.name;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new PluginError(
      String(name),
      'the name must be 1-64 letters, digits, "_" or "-" (it names the config section and the migrations)',
    );
  }
  for (const hook of HOOKS) {
    if (plugin[hook] !== undefined && typeof plugin[hook] !== 'function') throw new PluginError(name, `${hook} must be a function`);
  }
  if (plugin.jobs !== undefined && !Array.isArray(plugin.jobs))
    throw new PluginError(name, 'jobs must be an array of defineJob(...) results');
  if (plugin.migrations !== undefined && typeof plugin.migrations !== 'string' && !(plugin.migrations instanceof URL)) {
    throw new PluginError(name, 'migrations must be the path (or file: URL) of a folder of NNNN_name.sql files');
  }
}

/** The plugins of one node, checked together: names unique, sections valid. */
export function checkPlugins(plugins: readonly NodePlugin[], reserved: readonly string[]): void {
  if (!Array.isArray(plugins)) throw new PluginError('?', 'startNode({ plugins }) takes an array of plugins');
  const seen = new Set(reserved);
  for (const plugin of plugins) {
    checkPlugin(plugin, 'startNode');
    if (seen.has(plugin.name)) {
      throw new PluginError(
        plugin.name,
        reserved.includes(plugin.name) ? 'the name is a built-in part of the node; choose another' : 'given twice; pass each plugin once',
      );
    }
    seen.add(plugin.name);
  }
}

/**
 * Runs each plugin's configSchema over its section; all problems become one ConfigError. Returns the
 * sections no plugin of this node claims (a config file shared by nodes with other plugins has them).
 */
export function checkPluginConfig(plugins: readonly NodePlugin[], sections: Record<string, unknown>, file: string | undefined): string[] {
  const problems: ConfigProblem[] = [];
  const names = new Set(plugins.map((p) => p.name));
  for (const plugin of plugins) {
    if (!plugin.configSchema) continue;
    let found: readonly PluginConfigProblem[] | void;
    try {
      found = plugin.configSchema(sections[plugin.name]);
    } catch (err) {
      found = [{ message: `the plugin's check failed: ${(err as Error)?.message ?? String(err)}` }];
    }
    for (const p of found ?? []) {
      problems.push({
        ...(file ? { file } : {}),
        path: ['plugins', plugin.name, ...(p.path ? [p.path] : [])].join('.'),
        message: p.message,
      });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.keys(sections).filter((key) => !names.has(key));
}

/** A plugin's migrations folder as a path. */
export function migrationsDir(plugin: NodePlugin): string | undefined {
  const dir = plugin.migrations;
  if (dir === undefined) return undefined;
  return dir instanceof URL ? fileURLToPath(dir) : dir;
}
