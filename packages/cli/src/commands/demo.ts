/**
 * `partita demo` (what `npm start` runs): a node from config/partita.yaml — on the embedded
 * PostgreSQL when the file configures none — the example jobs of its jobs module (`demo` export)
 * enqueued and its example workflow apps (`demoWorkflows`) deployed, activated and started, their
 * progress shown until they finish, then a graceful stop.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, describeError, loadConfig, silentLogger, type EnqueueOptions, type JobRecord, type Logger } from '@partita/core';
import type { PartitaNode } from '@partita/runtime';
import { COMMON_OPTIONS, duration, flag, str } from '../args.js';
import type { Command } from '../command.js';
import { configPath, embeddedUrl } from '../connection.js';
import { EXIT, UsageError } from '../errors.js';
import { brief, colour, formatDuration, printJson, println, type Io } from '../io.js';
import { statesOf } from '../listing.js';
import { startWatched } from '../node-services.js';
import { cliPlugins } from './start.js';
import { WorkflowDemo, demoWorkflowSpecs, type DemoWorkflowSpec } from './demo-workflows.js';
import { prettyLogger } from '../pretty-log.js';
import { ProgressBar } from '../progress.js';

interface DemoJob {
  partition: string;
  type: string;
  payload?: unknown;
  options?: EnqueueOptions;
}

/** config/partita.yaml of the Partita checkout this CLI belongs to (dist/commands → ../../../../config). */
const BUNDLED_CONFIG = fileURLToPath(new URL('../../../../config/partita.yaml', import.meta.url));

export const demo: Command = {
  name: 'demo',
  summary: 'Start a node from config/partita.yaml, run the example jobs and workflows and show them being processed.',
  description: `
With no postgres: in the config (as in config/partita.yaml) the node runs an embedded PostgreSQL in
the config's dataDir — no servers needed. The jobs come from the \`demo\` export of the config's jobs
module (config/jobs.js), the workflow apps from its \`demoWorkflows\` export (config/apps/orders: an
order that a person approves with \`partita hook\`, a command the demo prints). Stops once every job
and workflow has finished, or on Ctrl-C (twice: at once).`,
  options: {
    config: { type: 'string', short: 'c', arg: 'FILE', help: 'node config file (default: config/partita.yaml)' },
    keep: { type: 'boolean', help: 'keep the node running after the jobs finish (Ctrl-C to stop)' },
    verbose: { type: 'boolean', short: 'v', help: "show the node's info logs too" },
    timeout: { type: 'string', arg: 'DURATION', help: 'give up when the jobs have not finished after this long (default 2m)' },
    'answer-after': {
      type: 'string',
      arg: 'DURATION',
      help: 'a workflow waiting for a person: send its hook after this long if nobody did (default 45s on a terminal, else 5s; 0: never)',
    },
    ...COMMON_OPTIONS,
  },
  async run(ctx) {
    const { io } = ctx;
    const file = configPath(ctx.values, io) ?? (existsSync(BUNDLED_CONFIG) ? BUNDLED_CONFIG : undefined);
    if (!file) throw new UsageError('no config file: pass -c FILE (see config/partita.yaml in the Partita repository)', 'demo');
    const config = await loadConfig(file, { env: io.env });
    const timeoutMs = duration(str(ctx.values, 'timeout'), '--timeout', 'demo') ?? 120_000;
    const verbose = flag(ctx.values, 'verbose');
    const level = verbose ? 'info' : (io.env.PARTITA_LOG_LEVEL ?? 'warn');
    const logger: Logger =
      ctx.json && !verbose ? silentLogger() : prettyLogger(level, { colour: io.stdoutTTY && !io.env.NO_COLOR, prefix: '  ' });
    const rel = (p: string) => path.relative(io.cwd, p) || p;
    const say = (line = '') => {
      if (!ctx.json) println(io, line);
    };

    const answerAfterMs = duration(str(ctx.values, 'answer-after'), '--answer-after', 'demo') ?? (io.stdoutTTY ? 45_000 : 5_000);
    let examples: DemoJob[] = [];
    let workflowSpecs: DemoWorkflowSpec[] = [];
    if (typeof config.jobs === 'string') {
      const { describeImportError, importUserModule } = await import('@partita/runtime');
      let mod: { demo?: DemoJob[] | (() => DemoJob[]); demoWorkflows?: unknown };
      try {
        mod = await importUserModule(config.jobs);
      } catch (err) {
        throw new ConfigError([
          { file, path: 'jobs', message: `cannot load the jobs module ${config.jobs}: ${describeImportError(err, config.jobs)}` },
        ]);
      }
      examples = typeof mod.demo === 'function' ? mod.demo() : (mod.demo ?? []);
      workflowSpecs = demoWorkflowSpecs(mod.demoWorkflows, config.jobs, file);
    }

    say(colour(io, 'bold', `Partita demo — ${rel(file)}`));
    if (config.postgres.url === undefined) {
      const pgDir = path.join(config.dataDir, 'pg');
      if (embeddedUrl(config.dataDir))
        say(
          `  no postgres: configured → using the embedded PostgreSQL already running in ${rel(pgDir)} (another node started it; it keeps running after the demo)`,
        );
      else
        say(
          `  no postgres: configured → starting an embedded PostgreSQL in ${rel(pgDir)}${existsSync(path.join(pgDir, 'PG_VERSION')) ? '' : ' (first run: initialising it takes a few seconds)'}`,
        );
    }
    let node: PartitaNode | undefined;
    let interrupted = false;
    let wake: (() => void) | undefined;

    // A demo should not fail because something else holds the metrics port: take a free one then.
    let http0: { port: number; host: string; dashboard?: string } | undefined;
    if (config.http && config.http.port !== 0 && !(await portFree(config.http.port, config.http.host))) {
      say(`  port ${config.http.port} is in use; serving health and metrics on a free port instead`);
      http0 = { port: 0, host: config.http.host, ...(config.http.dashboard ? { dashboard: config.http.dashboard } : {}) };
      config.http = http0;
    }
    const t0 = Date.now();
    const { startNode } = await import('@partita/runtime');
    const graceMs = Math.min(config.engine.shutdownGraceMs, 10_000);
    // A signal stops the node gracefully (startNode's handleSignals, as `partita start`); a second one
    // exits at once. The loop below notices and reports.
    const plugins = await cliPlugins(config);
    const started = await startWatched(
      startNode({
        config: file,
        logger,
        handleSignals: {
          graceMs,
          exit: false,
          onStop: () => {
            interrupted = true;
            wake?.();
          },
        },
        ...(http0 ? { http: http0 } : {}),
        plugins,
      }),
      logger,
      io.env,
    );
    node = started.node;
    const { unwatch } = started;
    const partitions = Object.keys(config.partitions);
    // Served by the node itself (config http:), with the node's readiness rule.
    const http = node.http;
    say(
      `  node ${node.id} ready in ${formatDuration(Date.now() - t0)}: ` +
        partitions
          .map(
            (p) =>
              `${p} (${Object.entries(config.partitions[p]!.queues)
                .map(([q, c]) => `${q}×${c.concurrency}`)
                .join(', ')})`,
          )
          .join(', '),
    );
    if (http)
      say(
        `  health ${http.url}/health · metrics ${http.url}/metrics${config.http?.dashboard ? ` · dashboard ${http.url}${config.http.dashboard}` : ''}`,
      );

    // Enqueue; a queue key still held by a job of an earlier, interrupted run is tracked instead.
    const ids: string[] = [];
    for (const ex of examples) {
      if (interrupted) break;
      try {
        ids.push((await node.client.enqueue(ex.partition, ex.type, ex.payload, ex.options ?? {})).id);
      } catch (err) {
        if (interrupted) break; // the node is stopping under the loop (a signal): nothing more to enqueue
        const e = err as { code?: string; heldBy?: string; queueKey?: string };
        if (e.code === 'DUPLICATE_QUEUE_KEY' && e.heldBy) {
          ids.push(e.heldBy);
          say(`  ${ex.type}: queue key "${e.queueKey}" is held by job ${e.heldBy} from an earlier run; following that one`);
        } else throw err;
      }
    }
    if (ctx.json) printJson(io, { event: 'enqueued', ids });
    say(`  enqueued ${ids.length} jobs: ${summarize(examples)}`);
    // The hints name the CLI as a person in the checkout runs it; another config file is named with -c.
    const cli = { command: 'npx partita', configArgs: file === BUNDLED_CONFIG ? '' : ` -c ${rel(file)}` };
    let workflows: WorkflowDemo | undefined;
    try {
      if (workflowSpecs.length && !interrupted)
        workflows = await WorkflowDemo.start(node.client, workflowSpecs, { io, cli, answerAfterMs, say });
    } catch (err) {
      // An app that does not deploy (an edited YAML under the same version, say): report it with the node stopped.
      await node.stop({ graceMs: 0 }).catch(() => undefined);
      unwatch();
      throw err;
    }
    if (ctx.json && workflows) printJson(io, { event: 'workflows-started', ids: workflows.ids });
    say();
    const total = ids.length + (workflows?.total ?? 0);

    const seen = new Map<string, { state: string; errors: number }>();
    const bar = ctx.json ? undefined : new ProgressBar({ write: io.out, tty: io.stdoutTTY, label: '  progress', total, lineEveryMs: 2000 });
    const deadline = Date.now() + timeoutMs;
    let finished = 0;
    let failed = 0;
    while (!interrupted) {
      let states: Map<string, JobRecord>;
      try {
        states = await statesOf(node.client, ids);
      } catch (err) {
        say(`  (could not read job states: ${describeError(err).message}; retrying)`);
        await pauseFor(1000, (w) => (wake = w));
        continue;
      }
      finished = 0;
      failed = 0;
      let running = 0;
      let waiting = 0;
      for (const id of ids) {
        const job = states.get(id);
        if (!job) continue;
        const before = seen.get(id);
        if (job.state === 'running') running++;
        else if (job.state === 'completed') finished++;
        else if (job.state === 'failed' || job.state === 'cancelled') {
          finished++;
          failed++;
        } else waiting++;
        if (before?.state === job.state && before.errors === job.errors.length) continue;
        seen.set(id, { state: job.state, errors: job.errors.length });
        const line = describeTransition(io, job, before?.errors ?? 0);
        if (line) {
          if (ctx.json)
            printJson(io, {
              event: job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled' ? job.state : 'retrying',
              ...pick(job),
            });
          else {
            bar?.clear();
            println(io, line);
          }
        }
      }
      if (workflows) {
        let wf: Awaited<ReturnType<WorkflowDemo['poll']>>;
        try {
          wf = await workflows.poll();
        } catch (err) {
          say(`  (could not read the workflows: ${describeError(err).message}; retrying)`);
          await pauseFor(1000, (w) => (wake = w));
          continue;
        }
        finished += wf.finished;
        failed += wf.failed;
        running += wf.running;
        for (const r of wf.reports) {
          if (ctx.json) {
            if (r.event) printJson(io, r.event);
          } else if (r.line) {
            bar?.clear();
            println(io, r.line);
          }
        }
      }
      bar?.update(finished, `${running} running · ${waiting} waiting${failed ? ` · ${failed} failed` : ''}`);
      if (finished === total) break;
      if (Date.now() > deadline) {
        bar?.finish();
        say(colour(io, 'red', `  the jobs did not all finish within ${formatDuration(timeoutMs)}; stopping`));
        break;
      }
      await pauseFor(150, (w) => (wake = w));
    }
    if (!interrupted) bar?.finish();
    const allDone = finished === total && (total > 0 || !interrupted);
    if (ctx.json)
      printJson(io, { event: 'summary', jobs: ids.length, workflows: workflows?.total ?? 0, finished, failed, ms: Date.now() - t0 });
    else if (allDone) {
      say(
        colour(
          io,
          failed ? 'red' : 'green',
          `  all ${ids.length} jobs${workflows ? ` and ${workflows.total} workflows` : ''} finished: ${total - failed} completed, ${failed} failed/cancelled`,
        ),
      );
      say(`  while a node runs (npm start -- --keep, or partita start in another terminal):`);
      say(`  try: npx partita jobs${cli.configArgs} --state completed`);
      for (const line of workflows?.tryLines() ?? []) say(line);
    } else if (interrupted) say('\n  interrupted');

    if (flag(ctx.values, 'keep') && !interrupted) {
      say(`  --keep: the node keeps running; try the commands above in another terminal. Ctrl-C to stop.`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
    say('  stopping the node…');
    await node.stop({ graceMs });
    unwatch();
    say('  stopped.');
    if (interrupted) return EXIT.OK;
    return allDone && failed === 0 ? EXIT.OK : EXIT.ERROR;
  },
};

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function pauseFor(ms: number, setWake: (w: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    setWake(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function summarize(examples: DemoJob[]): string {
  const counts = new Map<string, number>();
  for (const e of examples) counts.set(`${e.type}`, (counts.get(e.type) ?? 0) + 1);
  return [...counts].map(([t, n]) => `${n}× ${t}`).join(', ');
}

function pick(job: JobRecord) {
  return {
    id: job.id,
    type: job.type,
    partition: job.partition,
    queue: job.queue,
    attempts: job.attempts,
    ...(job.state === 'completed' ? { result: job.result } : {}),
    ...(job.errors.length ? { error: job.errors.at(-1)!.message } : {}),
  };
}

function describeTransition(io: Io, job: JobRecord, errorsBefore: number): string | undefined {
  const head = `${job.type.padEnd(15)} ${`${job.partition}/${job.queue}`.padEnd(17)} …${job.id.slice(-8)}`;
  const took = job.startedAt && job.finishedAt ? formatDuration(job.finishedAt.getTime() - job.startedAt.getTime()).padStart(7) : '';
  switch (job.state) {
    case 'completed':
      return `  ${colour(io, 'green', '✓')} ${head} ${took}  ${colour(io, 'dim', brief(job.result, 70))}${job.attempts > 1 ? ` (attempt ${job.attempts})` : ''}`;
    case 'failed':
      return `  ${colour(io, 'red', '✗')} ${head} failed after ${job.attempts} attempts: ${job.errors.at(-1)?.message ?? ''}`;
    case 'cancelled':
      return `  ${colour(io, 'yellow', '⊘')} ${head} cancelled`;
    case 'queued':
    case 'scheduled':
      if (job.errors.length > errorsBefore) {
        const e = job.errors.at(-1)!;
        const when = job.runAt.getTime() - Date.now();
        return `  ${colour(io, 'yellow', '↻')} ${head} attempt ${e.attempt} failed: ${e.message}; retry ${job.attempts + 1} of ${job.maxAttempts}${when > 0 ? ` in ${formatDuration(when)}` : ''}`;
      }
      return undefined;
    default:
      return undefined;
  }
}
