/**
 * deploy, activate, pub, hook, interrupt, workflow, workflows: the workflow apps of @partita/workflows
 * from the command line, through `app(client, id)` as any program would.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Client } from '@partita/client';
import type { ActivityTimeline, HookStatus, WorkflowApp, WorkflowStatusName, WorkflowSummary } from '@partita/workflows';
import { COMMON_OPTIONS, CONNECTION_OPTIONS, duration, flag, int, json, list, str } from '../args.js';
import { positionals, withClient as withPlainClient, type Command, type Context } from '../command.js';
import { migratePlugins } from '../plugin-tables.js';
import { EXIT, ExitError, NotFoundError, UsageError } from '../errors.js';
import { brief, colour, fields, formatDuration, printJson, println, table, type Io } from '../io.js';

// @partita/workflows' INTERRUPTED and FAILED, and its WORKFLOW_STATUS_NAMES below: repeated here because the
// package is loaded only when a command talks to a cluster (`--help` and usage errors stay fast).
const INTERRUPTED = -1_000_000_000;
const FAILED = -1_000_000_001;

/** -1 pending · > 0 running (open activities) · 0 done · interrupted · failed. */
export function statusName(status: number): WorkflowStatusName | 'unknown' {
  if (status === -1) return 'pending';
  if (status > 0) return 'running';
  if (status === 0) return 'done';
  if (status === INTERRUPTED) return 'interrupted';
  if (status === FAILED) return 'failed';
  return 'unknown';
}

function describeStatus(status: number): string {
  const name = statusName(status);
  return name === 'running' ? `running (${status} open ${status === 1 ? 'activity' : 'activities'})` : `${name} (${status})`;
}

/** A client on a schema that has the workflow tables (created here when no node made them yet). */
function withClient<T>(ctx: Context, fn: (client: Client) => Promise<T>): Promise<T> {
  return withPlainClient(ctx, async (client) => {
    const { workflowsPlugin } = await import('@partita/workflows');
    await migratePlugins(client, [workflowsPlugin()]);
    return fn(client);
  });
}

async function openApp(client: Client, id: string): Promise<WorkflowApp> {
  const { app } = await import('@partita/workflows');
  return app(client, id);
}

/** A JSON argument; invalid JSON names the argument. */
function jsonArgument(value: string, name: string, command: string): unknown {
  return json(value, `the ${name} argument`, command);
}

/** `--search k=v` repeated → { k: v }. */
function searchFields(values: string[], command: string): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--search takes key=value, got "${item}"`, command);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

const APP_ARG = 'APP';

// ---- deploy ----------------------------------------------------------------------------------------

export const deploy: Command = {
  name: 'deploy',
  summary: 'Deploy a workflow app from its YAML file ($refs merged); prints its id and version.',
  args: '<file>',
  description: `
Resolves every $ref across the app's YAML files, validates the whole app and stores the version; the
merged JSON is written beside the file as .partita.<id>.<version>.json. The version is not used until
\`partita activate\`. Problems are listed as file:line:key (exit code 2). Deploying a version again with
the same content changes nothing; with other content it is refused (exit code 5): give it a new version.`,
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita deploy config/apps/orders/app.yaml', 'partita deploy app.yaml --json'],
  async run(ctx) {
    const [file] = positionals(ctx, ['FILE']);
    const source = path.resolve(ctx.io.cwd, file!);
    // The file names the app: compile it first (no connection needed to report its problems).
    const { compileApp } = await import('@partita/workflows');
    const compiled = await compileApp(source);
    return withClient(ctx, async (client) => {
      const deployed = await (await openApp(client, compiled.id)).deploy(source);
      if (ctx.json) printJson(ctx.io, deployed);
      else {
        println(ctx.io, `deployed ${deployed.id} version ${deployed.version}`);
        println(ctx.io, colour(ctx.io, 'dim', `activate it with: partita activate ${deployed.id} ${deployed.version}`));
      }
      return EXIT.OK;
    });
  },
};

// ---- activate --------------------------------------------------------------------------------------

export const activate: Command = {
  name: 'activate',
  summary: 'Make a deployed version the one new workflows of an app start on.',
  args: '<app> <version>',
  description: `
Running workflows stay on the version they started on. Exit code 3 when the version was not deployed.`,
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita activate orders 1'],
  async run(ctx) {
    const [appId, version] = positionals(ctx, [APP_ARG, 'VERSION']);
    return withClient(ctx, async (client) => {
      try {
        await (await openApp(client, appId!)).activate(version!);
      } catch (err) {
        if ((err as { code?: string }).code !== 'WORKFLOW_NOT_FOUND') throw err;
        throw new NotFoundError(`app ${appId} has no version ${version}: deploy it first (partita deploy FILE)`);
      }
      if (ctx.json) printJson(ctx.io, { app: appId, version, active: true });
      else println(ctx.io, `activated ${appId} version ${version}`);
      return EXIT.OK;
    });
  },
};

// ---- pub -------------------------------------------------------------------------------------------

export const pub: Command = {
  name: 'pub',
  summary: "Start a workflow on a topic of an app's active version; prints its id (with --wait, its output).",
  args: '<app> <topic> [data-json]',
  description: `
data-json is the workflow's input (default {}); it must match the graph's input schema. Without --wait
the workflow's id is printed as soon as it is stored. With --wait the command waits for the workflow
to finish and prints its output as JSON (exit code 4 when it failed or was interrupted, 1 when
--timeout runs out). A topic no graph of the active version subscribes to is refused (exit code 2).`,
  options: {
    wait: { type: 'boolean', short: 'w', help: 'wait for the workflow to finish and print its output' },
    timeout: { type: 'string', arg: 'DURATION', help: 'with --wait: give up after this long (default 60s)' },
    id: { type: 'string', arg: 'ID', help: "the workflow's id (default: a new UUID)" },
    search: { type: 'string', arg: 'K=V', multiple: true, help: 'a searchable field (workflows --search, hookAll)' },
    partition: { type: 'string', short: 'p', arg: 'NAME', help: 'the partition its steps (jobs) run in (default: default)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: [
    `partita pub orders order.placed '{"orderId":"A-1","customer":"ada","items":[{"sku":"book","qty":1,"price":12}]}' -p billing`,
    `partita pub orders order.placed "$(cat order.json)" --wait --timeout 30s`,
  ],
  async run(ctx) {
    const [appId, topic, dataText] = positionals(ctx, [APP_ARG, 'TOPIC', 'DATA'], 1);
    const data = dataText === undefined ? {} : jsonArgument(dataText, 'DATA (the workflow input, 3rd)', 'pub');
    const wait = flag(ctx.values, 'wait');
    const timeoutMs = duration(str(ctx.values, 'timeout'), '--timeout', 'pub');
    if (timeoutMs !== undefined && !wait) throw new UsageError('--timeout only applies with --wait', 'pub');
    const search = searchFields(list(ctx.values, 'search'), 'pub');
    const partition = str(ctx.values, 'partition');
    const id = str(ctx.values, 'id') ?? randomUUID();
    const opts = { id, ...(search ? { search } : {}), ...(partition ? { partition } : {}) };
    return withClient(ctx, async (client) => {
      const handle = await openApp(client, appId!);
      try {
        return await publish(handle);
      } catch (err) {
        if ((err as { code?: string }).code !== 'UNKNOWN_PARTITION' || partition) throw err;
        throw new ExitError(
          `${(err as Error).message}; or start the workflow in one of them with -p/--partition NAME`,
          EXIT.USAGE,
          'UNKNOWN_PARTITION',
        );
      }
    });
    async function publish(handle: WorkflowApp): Promise<number> {
      if (!wait) {
        await handle.pub(topic!, data, opts);
        if (ctx.json) printJson(ctx.io, { id });
        else println(ctx.io, id);
        return EXIT.OK;
      }
      const output = await handle.pubsub(topic!, data, { ...opts, timeoutMs: timeoutMs ?? 60_000 });
      printJson(ctx.io, ctx.json ? { id, output } : output);
      return EXIT.OK;
    }
  },
};

// ---- hook ------------------------------------------------------------------------------------------

export const hook: Command = {
  name: 'hook',
  summary: 'Send hook data: resumes the waiting workflow that the app’s hook rules for the topic select.',
  args: '<app> <topic> <data-json>',
  description: `
Prints the id of the workflow it resumed. When none waits yet, the signal is kept (for the graph's
expire) and delivered when a matching hook activity starts waiting; that is said, and is not an error.
Data that fails the hook's schema is refused (exit code 2). --status pending (code 202) answers the
hook activity and keeps it waiting for another hook (its transitions that name code 202 run); --status
error fails it (and its workflow) unless a transition names the code (default 500).`,
  options: {
    status: { type: 'string', arg: 'STATUS', help: 'success (default), pending (answer, keep waiting) or error' },
    code: { type: 'string', arg: 'CODE', help: 'the response code transitions match (default 200; 202 pending; 500 error)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: [
    `partita hook orders order.approval '{"id":"<workflow id>","approved":true}'`,
    `partita hook orders order.note '{"id":"<workflow id>","text":"called the customer"}' --status pending`,
  ],
  async run(ctx) {
    const [appId, topic, dataText] = positionals(ctx, [APP_ARG, 'TOPIC', 'DATA']);
    const data = jsonArgument(dataText!, 'DATA (the hook data, 3rd)', 'hook');
    const status = str(ctx.values, 'status');
    if (status !== undefined && !['success', 'pending', 'error'].includes(status))
      throw new UsageError(`--status must be success, pending or error, got "${status}"`, 'hook');
    const code = int(str(ctx.values, 'code'), '--code', 'hook', { min: 100, max: 599 });
    const answer = { ...(status ? { status: status as HookStatus } : {}), ...(code !== undefined ? { code } : {}) };
    return withClient(ctx, async (client) => {
      const resumed = await (await openApp(client, appId!)).hook(topic!, data, answer);
      if (ctx.json) printJson(ctx.io, { id: resumed ?? null, kept: resumed === undefined });
      else if (resumed) println(ctx.io, resumed);
      else
        println(
          ctx.io,
          `no workflow of ${appId} was waiting for ${topic} with that data: the signal is kept (until the graph's expire) and delivered when a matching hook activity starts waiting`,
        );
      return EXIT.OK;
    });
  },
};

// ---- interrupt -------------------------------------------------------------------------------------

export const interrupt: Command = {
  name: 'interrupt',
  summary: 'Interrupt a running workflow (and with --descend its child workflows).',
  args: '<app> <id>',
  description: `
Its open steps are cancelled and its status becomes −1,000,000,000. A workflow that had already
finished is left as it is: that is said, and is not an error. Exit code 3 when there is no such workflow.`,
  options: {
    reason: { type: 'string', arg: 'TEXT', help: 'why (kept as the workflow output)' },
    descend: { type: 'boolean', help: 'interrupt its child workflows too' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: ['partita interrupt orders 0f4e…', 'partita interrupt orders 0f4e… --descend --reason "customer cancelled"'],
  async run(ctx) {
    const [appId, id] = positionals(ctx, [APP_ARG, 'ID']);
    const reason = str(ctx.values, 'reason');
    return withClient(ctx, async (client) => {
      const handle = await openApp(client, appId!);
      await handle.getStatus(id!); // WorkflowNotFoundError (exit 3) for an unknown id
      const interrupted = await handle.interrupt(undefined, id!, {
        ...(reason ? { reason } : {}),
        descend: flag(ctx.values, 'descend'),
      });
      const status = await handle.getStatus(id!).catch(() => undefined);
      if (ctx.json) printJson(ctx.io, { id, interrupted, ...(status !== undefined ? { status, state: statusName(status) } : {}) });
      else if (interrupted) println(ctx.io, `interrupted ${id}`);
      else
        println(
          ctx.io,
          `workflow ${id} had already finished${status !== undefined ? ` (${statusName(status)})` : ''}: nothing to interrupt`,
        );
      return EXIT.OK;
    });
  },
};

// ---- workflow --------------------------------------------------------------------------------------

export const workflow: Command = {
  name: 'workflow',
  summary: 'Show one workflow: its status, data and activity timeline.',
  args: '<app> <id>',
  description: 'Exit code 3 when there is no such workflow (finished workflows are removed after their graph’s expire).',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita workflow orders 0f4e…', 'partita workflow orders 0f4e… --json | jq .timeline.activities'],
  async run(ctx) {
    const [appId, id] = positionals(ctx, [APP_ARG, 'ID']);
    return withClient(ctx, async (client) => {
      const handle = await openApp(client, appId!);
      const state = await handle.getState('', id!);
      const timeline = await handle.export(id!);
      if (ctx.json) {
        printJson(ctx.io, {
          id,
          status: timeline.status,
          state: statusName(timeline.status),
          data: state.data,
          metadata: state.metadata,
          timeline,
        });
        return EXIT.OK;
      }
      const m = state.metadata;
      const rows: [string, string][] = [
        ['workflow', id!],
        ['app', `${m.app} version ${m.vrs}`],
        ['topic', m.tpc],
        ['status', describeStatus(m.js)],
        ['created', m.jc.toISOString()],
        ['finished', m.ju ? `${m.ju.toISOString()} (took ${formatDuration(m.ju.getTime() - m.jc.getTime())})` : '–'],
        ['parent', m.pj ?? '–'],
        ['data', brief(state.data, 200)],
      ];
      ctx.io.out(fields(rows) + '\n');
      ctx.io.out(timelineTable(ctx.io, timeline, m.jc));
      return EXIT.OK;
    });
  },
};

function timelineTable(io: Io, timeline: ActivityTimeline, started: Date): string {
  if (timeline.activities.length === 0) return 'no activity has started yet\n';
  return table(
    ['activity', 'pass', 'type', 'state', 'at', 'took', 'attempts', 'output / error'],
    timeline.activities.map((a) => {
      const lastError = (a.errors.at(-1) as { message?: string } | undefined)?.message;
      const shown =
        a.state === 'failed' && lastError ? colour(io, 'red', lastError) : a.hook !== undefined ? brief(a.hook, 60) : brief(a.output, 60);
      return [
        a.activity,
        a.dimension || '–',
        a.type,
        a.state,
        `+${formatDuration(a.startedAt.getTime() - started.getTime())}`,
        a.finishedAt ? formatDuration(a.finishedAt.getTime() - a.startedAt.getTime()) : '–',
        a.type === 'worker' ? String(a.attempts) : '',
        a.output === undefined && a.hook === undefined && !lastError ? '' : shown,
      ];
    }),
  );
}

// ---- workflows -------------------------------------------------------------------------------------

const STATUSES: WorkflowStatusName[] = ['pending', 'running', 'done', 'interrupted', 'failed'];

export const workflowsList: Command = {
  name: 'workflows',
  summary: "List an app's workflows, newest first: status, topic, version, times.",
  args: '<app>',
  options: {
    status: {
      type: 'string',
      short: 's',
      arg: 'NAME',
      multiple: true,
      help: `only these: ${STATUSES.join(', ')} (comma-separated or repeated)`,
    },
    search: { type: 'string', arg: 'K=V', multiple: true, help: "only workflows whose searchable field K is V (pub's --search)" },
    topic: { type: 'string', arg: 'TOPIC', help: 'only workflows started on this topic (children have their own)' },
    limit: { type: 'string', short: 'n', arg: 'N', help: 'at most this many (default 50)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: [
    'partita workflows orders',
    'partita workflows orders --status running --search customer=ada',
    'partita workflows orders --json',
  ],
  async run(ctx) {
    const [appId] = positionals(ctx, [APP_ARG]);
    const status = list(ctx.values, 'status')
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = status.filter((s) => !(STATUSES as string[]).includes(s));
    if (unknown.length) throw new UsageError(`unknown --status ${unknown.join(', ')}; use ${STATUSES.join(', ')}`, 'workflows');
    const search = searchFields(list(ctx.values, 'search'), 'workflows');
    const limit = int(str(ctx.values, 'limit'), '--limit', 'workflows', { min: 1, max: 10_000 }) ?? 50;
    const topic = str(ctx.values, 'topic');
    return withClient(ctx, async (client) => {
      const found: WorkflowSummary[] = await (
        await openApp(client, appId!)
      ).list({
        ...(status.length ? { status: status as WorkflowStatusName[] } : {}),
        ...(search ? { search } : {}),
        ...(topic ? { topic } : {}),
        limit,
      });
      if (ctx.json) {
        printJson(
          ctx.io,
          found.map((w) => ({ ...w, state: statusName(w.status) })),
        );
      } else if (found.length === 0) println(ctx.io, `no workflows of ${appId} match`);
      else
        ctx.io.out(
          table(
            ['id', 'topic', 'version', 'status', 'created', 'took', 'search'],
            found.map((w) => [
              w.id,
              w.topic,
              w.version,
              statusName(w.status),
              w.createdAt.toISOString(),
              w.finishedAt ? formatDuration(w.finishedAt.getTime() - w.createdAt.getTime()) : '–',
              Object.keys(w.search).length ? brief(w.search, 40) : '',
            ]),
          ),
        );
      return EXIT.OK;
    });
  },
};
