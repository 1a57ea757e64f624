/** `partita start`: run a node until SIGTERM/SIGINT. */
import path from 'node:path';
import { ConfigError, createLogger, describeError, loadConfig, type Logger, type PartitaConfig } from '@partita/core';
import type { NodePlugin, PartitaNode } from '@partita/runtime';
import { COMMON_OPTIONS, list, str, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { configPath } from '../connection.js';
import { EXIT, UsageError } from '../errors.js';
import { formatDuration, type Io } from '../io.js';
import { startWatched } from '../node-services.js';
import { prettyLogger } from '../pretty-log.js';
import { ProgressBar } from '../progress.js';

export const start: Command = {
  name: 'start',
  summary: 'Run a node: the partitions named with --partition, or every partition in the config file.',
  description: `
Runs until SIGTERM or SIGINT (Ctrl-C), then stops gracefully: no new claims, running jobs get
engine.shutdownGraceMs to finish, prefetched jobs are handed back, leases released. A second
signal exits at once (code 130 for SIGINT, 143 for SIGTERM); the jobs it was running are rescued
by other nodes when their leases expire. With no postgres: in the config, the node starts an
embedded PostgreSQL in <dataDir>/pg, starts it again if it dies, and stops it on exit; when another
process already runs it there, the node uses it and leaves it running. Health (/health) and Prometheus
metrics (/metrics) are served on http.port when the config has http:. Logs go to stdout
(JSON, or pretty lines on a terminal).`,
  options: {
    config: {
      type: 'string',
      short: 'c',
      arg: 'FILE',
      help: 'node config file (default $PARTITA_CONFIG, ./partita.yaml, ./config/partita.yaml)',
    },
    partition: { type: 'string', short: 'p', arg: 'NAME', multiple: true, help: 'run only this partition (default: all in the file)' },
    'node-id': { type: 'string', arg: 'ID', help: "this node's id (default host:pid:random)" },
    'log-format': { type: 'string', arg: 'json|pretty', help: 'log lines as JSON (default when not a terminal) or pretty' },
    ...COMMON_OPTIONS,
  },
  examples: ['partita start -c config/partita.yaml', 'partita start -c /etc/partita.yaml -p billing -p emails'],
  async run(ctx) {
    if (ctx.positionals.length)
      throw new UsageError(`unexpected argument "${ctx.positionals[0]}" (partitions are given with --partition)`, 'start');
    const file = configPath(ctx.values, ctx.io, { required: true, command: 'start' })!;
    const config = await loadConfig(file, { env: ctx.io.env });
    const partitions = selectPartitions(config, list(ctx.values, 'partition'), file);
    const logger = makeLogger(ctx.values, ctx.io, config);
    return runNode({ io: ctx.io, file, config, partitions, logger, nodeId: str(ctx.values, 'node-id') });
  },
};

export function selectPartitions(config: PartitaConfig, wanted: string[], file: string): string[] {
  const known = Object.keys(config.partitions);
  if (wanted.length === 0) return known;
  const names = [
    ...new Set(
      wanted
        .flatMap((w) => w.split(','))
        .map((w) => w.trim())
        .filter(Boolean),
    ),
  ];
  const missing = names.filter((n) => !known.includes(n));
  if (missing.length) {
    throw new UsageError(
      `partition${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} not in ${file} (it has: ${known.join(', ')})`,
      'start',
    );
  }
  return names;
}

function makeLogger(values: Parsed['values'], io: Io, config: PartitaConfig): Logger {
  const format = str(values, 'log-format') ?? (io.stdoutTTY ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') throw new UsageError(`--log-format must be json or pretty, got "${format}"`, 'start');
  return format === 'pretty' ? prettyLogger(config.log.level, { colour: !io.env.NO_COLOR }) : createLogger({ level: config.log.level });
}

export interface RunNodeOptions {
  io: Io;
  file: string;
  config: PartitaConfig;
  partitions: string[];
  logger: Logger;
  nodeId?: string | undefined;
}

/** Starts the node and keeps it running until a signal; resolves with the exit code. */
async function runNode(opts: RunNodeOptions): Promise<number> {
  const { config, logger, io } = opts;
  const all = Object.keys(config.partitions);
  const state = { stopping: false };
  const started = Date.now();
  let node: PartitaNode | undefined;
  let resolveExit!: (code: number) => void;
  const exit = new Promise<number>((r) => (resolveExit = r));

  /** The graceful stop, started here or (`stopped`) by a signal through startNode's handleSignals. */
  const stop = async (why: string, code: number, stopped?: Promise<void>) => {
    if (state.stopping) return;
    state.stopping = true;
    const graceMs = config.engine.shutdownGraceMs;
    logger.info(
      { reason: why, graceMs },
      `stopping gracefully (up to ${formatDuration(graceMs)} for running jobs); send the signal again to exit at once`,
    );
    const bar = drainProgress(node, io, graceMs);
    try {
      await (stopped ?? node?.stop({ graceMs }));
      bar?.stop();
      logger.info({ uptimeMs: Date.now() - started }, 'node stopped');
      resolveExit(code);
    } catch (err) {
      bar?.stop();
      logger.error({ err: describeError(err) }, 'graceful stop failed');
      resolveExit(EXIT.ERROR);
    }
  };

  const onCrash = (kind: string) => (err: unknown) => {
    logger.fatal({ err: describeError(err) }, `${kind}: the node exits; restart it (jobs it held are rescued when their leases expire)`);
    process.exit(EXIT.ERROR);
  };
  process.on('uncaughtException', onCrash('uncaught exception'));
  process.on('unhandledRejection', onCrash('unhandled promise rejection'));

  const { startNode } = await import('@partita/runtime');
  // A second signal exits at once (130/143), from startNode's handler; the process's 'exit' hooks
  // still stop an embedded PostgreSQL this node owns.
  const plugins = await cliPlugins(config);
  const up = await startWatched(
    startNode({
      config: opts.file,
      logger,
      handleSignals: { exit: false, onStop: ({ signal, stopped }) => void stop(signal, EXIT.OK, stopped) },
      ...(opts.partitions.length !== all.length
        ? { partitions: Object.fromEntries(opts.partitions.map((p) => [p, config.partitions[p]!])) }
        : {}),
      ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
      plugins,
    }),
    logger,
    io.env,
  );
  node = up.node;
  void exit.finally(up.unwatch);
  if (state.stopping) return exit; // a signal came while it was starting
  node.system.on('fatal', (err) => {
    logger.fatal({ err: describeError(err) }, 'a partition supervisor gave up; stopping the node so that it can be restarted');
    void stop('supervisor gave up', EXIT.ERROR);
  });
  // Served by the node itself (config http:), with the node's readiness rule.
  const http = node.http;
  logger.info(
    {
      nodeId: node.id,
      partitions: opts.partitions,
      config: path.relative(io.cwd, opts.file) || opts.file,
      ...(http ? { health: `${http.url}/health`, metrics: `${http.url}/metrics` } : {}),
      startupMs: Date.now() - started,
    },
    'partita node ready',
  );
  return exit;
}

/** While stopping: how many jobs are still running, on stderr. */
function drainProgress(node: PartitaNode | undefined, io: Io, graceMs: number): { stop(): void } | undefined {
  if (!node) return undefined;
  const started = Date.now();
  let initial: number | undefined;
  let bar: ProgressBar | undefined;
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    node
      .stats()
      .then((stats) => {
        const running = stats.reduce((n, s) => n + s.running, 0);
        if (initial === undefined) {
          initial = running;
          if (running === 0) return;
          bar = new ProgressBar({ write: io.err, tty: io.stderrTTY, label: 'draining', total: running, lineEveryMs: 1000 });
        }
        const left = Math.max(0, graceMs - (Date.now() - started));
        bar?.update(Math.max(0, initial - running), `${running} running, ${formatDuration(left)} of grace left`);
      })
      .catch(() => undefined)
      .finally(() => (polling = false));
  }, 250);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      bar?.finish();
    },
  };
}

/**
 * The plugins the CLI's node runs (start and demo): workflows (any app deployed to the cluster runs
 * here), flows (their lookup table: a jobs module may export a flow's `flow.jobs()`), processes
 * (schedules), and the dashboard when the config mounts it (`http.dashboard`).
 */
export async function cliPlugins(config: PartitaConfig): Promise<NodePlugin[]> {
  const { workflowsPlugin, flowsPlugin } = await import('@partita/workflows');
  // Schedules declared under plugins.processes.schedules are synced and fired by the cluster's nodes.
  const { processesPlugin } = await import('@partita/processes');
  const plugins: NodePlugin[] = [workflowsPlugin(), flowsPlugin(), processesPlugin(await jobsModuleProcesses(config)) as NodePlugin];
  if (!config.http?.dashboard) return plugins;
  const { dashboardPlugin } = await import('@partita/dashboard');
  return [...plugins, dashboardPlugin() as NodePlugin];
}

/**
 * The `processes` and `schedules` a jobs module may export beside its `jobs` (the same module the
 * node imports: Node loads it once). A module that does not load is left to the node, which reports it.
 */
async function jobsModuleProcesses(config: PartitaConfig): Promise<{ processes?: never[]; schedules?: never[] }> {
  if (typeof config.jobs !== 'string') return {};
  const { importUserModule } = await import('@partita/runtime');
  const mod = await importUserModule(config.jobs).catch(() => undefined);
  const pick = (key: string) => {
    const value = mod?.[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value))
      throw new ConfigError([{ path: 'jobs', message: `${config.jobs} exports \`${key}\` as something other than an array` }]);
    return value as never[];
  };
  const processes = pick('processes');
  const schedules = pick('schedules');
  return { ...(processes ? { processes } : {}), ...(schedules ? { schedules } : {}) };
}
