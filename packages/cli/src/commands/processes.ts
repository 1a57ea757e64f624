/**
 * processes, process: the background processes of @partita/processes. `partita processes` lists
 * them; `partita process NAME` shows one (owner, last run, per-item status, errors, stats);
 * `partita process trigger|pause|resume NAME` steers it (through Postgres, announced on the bus).
 */
import { processes, type ProcessRecord } from '@partita/processes';
import { COMMON_OPTIONS, CONNECTION_OPTIONS } from '../args.js';
import { actionAndName, positionals, withClient, type Command } from '../command.js';
import { EXIT, NotFoundError } from '../errors.js';
import { fields, formatDuration, printJson, println, table, whenFromNow } from '../io.js';

function lastRunOf(p: ProcessRecord): string {
  const run = p.lastRun;
  if (!run) return 'never ran';
  return `#${run.runNo} ${run.state ?? '?'}${run.errors?.total ? `, ${run.errors.total} errors` : ''}`;
}

export const processesList: Command = {
  name: 'processes',
  summary: 'List the background processes: state, owner, last run, work items.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita processes', 'partita processes --json | jq ".[] | select(.lastRun.state != \\"completed\\")"'],
  async run(ctx) {
    positionals(ctx, []);
    return withClient(ctx, async (client) => {
      const list = await processes(client).list();
      if (ctx.json) printJson(ctx.io, list);
      else if (list.length === 0)
        println(ctx.io, 'no background processes (a node declares them with processesPlugin({ processes: [defineProcess(...)] }))');
      else {
        ctx.io.out(
          table(
            ['process', 'state', 'every', 'owner', 'last run', 'finished', 'active', 'cleanup', 'runs'],
            list.map((p) => [
              p.name,
              p.state,
              formatDuration(p.scheduleMs),
              p.owner?.id ?? '–',
              lastRunOf(p),
              p.lastRun?.finishedAt ?? '–',
              String(p.counts.active),
              String(p.counts.cleanup),
              String(p.aggregate.runs ?? 0),
            ]),
          ),
        );
      }
      return EXIT.OK;
    });
  },
};

const ACTIONS = ['trigger', 'pause', 'resume'] as const;

export const processShow: Command = {
  name: 'process',
  summary: 'Show one background process, or trigger, pause or resume it.',
  args: '[trigger|pause|resume] <name>',
  description:
    'With only a name: the process, its owner, its last run with errors and stats, and every work item (exit code 3 when there is no such process). ' +
    'trigger: a run starts now (after the one under way, if any). pause: no run starts, and one under way stops at its next save. resume: runs again.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita process key-gc', 'partita process key-gc --json', 'partita process trigger key-gc'],
  async run(ctx) {
    const { action, name } = actionAndName(ctx, ACTIONS, 'process');
    return withClient(ctx, async (client) => {
      const api = processes(client);
      if (action) {
        // An unknown name: UnknownProcessError (UNKNOWN_PROCESS), exit code 3.
        await api[action](name);
        if (ctx.json) printJson(ctx.io, await api.get(name));
        else println(ctx.io, `${action === 'trigger' ? 'triggered' : action === 'pause' ? 'paused' : 'resumed'} ${name}`);
        return EXIT.OK;
      }
      const p = await api.get(name);
      if (!p) throw new NotFoundError(`no background process "${name}"; list them with \`partita processes\``);
      if (ctx.json) {
        printJson(ctx.io, p);
        return EXIT.OK;
      }
      const run = p.lastRun;
      const rows: [string, string][] = [
        ['process', p.name],
        ['state', p.state],
        ['schedule', `every ${formatDuration(p.scheduleMs)}`],
        ['owner', p.owner ? `${p.owner.id} (epoch ${p.owner.epoch})` : '–'],
        ['settings', `${JSON.stringify(p.settings)} (version ${p.settingsVersion})`],
        ['last run', lastRunOf(p)],
        ['started', whenFromNow(run?.startedAt)],
        ['progress', whenFromNow(run?.progressAt)],
        ['finished', whenFromNow(run?.finishedAt)],
        ['run stats', run ? JSON.stringify(run.stats) : '–'],
        ['aggregate', JSON.stringify(p.aggregate)],
      ];
      for (const e of [...(run?.errors?.first ?? []), ...(run?.errors?.last ?? [])]) rows.push(['error', `${e.at} ${e.message}`]);
      let out = fields(rows);
      if (p.work?.length) {
        out += `\nwork items:\n${table(
          ['work', 'list', 'status', 'errors', 'params'],
          p.work.map((w) => [w.name, w.list, w.status?.state ?? 'new', String(w.status?.errors.total ?? 0), JSON.stringify(w.params)]),
        )}`;
      }
      ctx.io.out(out);
      return EXIT.OK;
    });
  },
};
