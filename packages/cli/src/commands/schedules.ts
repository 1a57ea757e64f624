/**
 * schedules, schedule: the cron schedules of @partita/processes. `partita schedules` lists them;
 * `partita schedule NAME` shows one with its latest occurrences; `partita schedule pause|resume|trigger
 * NAME` changes it (through Postgres: the schedules leader hears of it by a notification).
 */
import { schedules, type ScheduleRecord } from '@partita/processes';
import { COMMON_OPTIONS, CONNECTION_OPTIONS } from '../args.js';
import { actionAndName, positionals, withClient, type Command } from '../command.js';
import { EXIT, NotFoundError } from '../errors.js';
import { fields, formatDuration, printJson, println, table, whenFromNow } from '../io.js';

function stateOf(s: ScheduleRecord): string {
  if (s.paused) return 'paused';
  return s.lastError ? 'failing' : 'active';
}

export const schedulesList: Command = {
  name: 'schedules',
  summary: 'List the cron schedules: state, next and last fire times, missed occurrences.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita schedules', 'partita schedules --json | jq ".[] | select(.missedCount > 0)"'],
  async run(ctx) {
    positionals(ctx, []);
    return withClient(ctx, async (client) => {
      const list = await schedules(client).list();
      if (ctx.json) printJson(ctx.io, list);
      else if (list.length === 0)
        println(ctx.io, 'no schedules (declare them under plugins.processes.schedules, or create them with schedules(client))');
      else {
        ctx.io.out(
          table(
            ['schedule', 'cron', 'timezone', 'target', 'state', 'next', 'last', 'fired', 'missed'],
            list.map((s) => [
              s.id,
              s.cron,
              s.timezone,
              `${s.partition}/${s.type}`,
              stateOf(s),
              s.nextFireAt?.toISOString() ?? '–',
              s.lastFireAt?.toISOString() ?? '–',
              String(s.firedCount),
              String(s.missedCount),
            ]),
          ),
        );
      }
      return EXIT.OK;
    });
  },
};

const ACTIONS = ['pause', 'resume', 'trigger'] as const;

export const schedule: Command = {
  name: 'schedule',
  summary: 'Show one cron schedule, or pause, resume or trigger it.',
  args: '[pause|resume|trigger] <name>',
  description:
    'With only a name: the schedule, its counters and its latest occurrences (exit code 3 when there is no such schedule). ' +
    'pause: nothing fires until resume, and what would have fired meanwhile is not owed. resume: fires again from now. ' +
    'trigger: runs it now as an extra occurrence (overlap: skip still applies: no job while the last one is live).',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita schedule nightly-report', 'partita schedule pause nightly-report', 'partita schedule trigger nightly-report --json'],
  async run(ctx) {
    const { action, name: id } = actionAndName(ctx, ACTIONS, 'schedule');
    return withClient(ctx, async (client) => {
      const api = schedules(client);
      if (action === 'trigger') {
        const result = await api.trigger(id);
        if (ctx.json) printJson(ctx.io, result);
        else if (result.jobId) println(ctx.io, `triggered ${id}: job ${result.jobId}`);
        else
          println(
            ctx.io,
            `triggered ${id}: no job (${result.skipped === 'overlap' ? 'the last job is still live and overlap is skip' : 'a queue key refused it'})`,
          );
        return EXIT.OK;
      }
      if (action) {
        await api[action](id);
        if (ctx.json) printJson(ctx.io, await api.get(id));
        else println(ctx.io, `${action === 'pause' ? 'paused' : 'resumed'} ${id}`);
        return EXIT.OK;
      }
      const s = await api.get(id);
      if (!s) throw new NotFoundError(`no schedule "${id}"; list them with \`partita schedules\``);
      const occurrences = await api.occurrences(id, 10);
      if (ctx.json) {
        printJson(ctx.io, { ...s, occurrences });
        return EXIT.OK;
      }
      const rows: [string, string][] = [
        ['schedule', s.id],
        ['cron', `${s.cron} (${s.timezone})`],
        ['target', `${s.partition}/${s.type}${s.queue ? ` on queue ${s.queue}` : ''}`],
        ['payload', JSON.stringify(s.payload)],
        ['state', stateOf(s)],
        ['misfire', s.misfire === 'backfill' ? `backfill within ${formatDuration(s.backfillMs)}` : s.misfire],
        ['overlap', s.overlap],
        ['source', s.source],
        ['next fire', whenFromNow(s.nextFireAt)],
        ['last fire', whenFromNow(s.lastFireAt)],
        ['last job', s.lastJobId ? `${s.lastJobId}${s.lastJobLive ? ' (live)' : ''}` : '–'],
        ['fired', String(s.firedCount)],
        ['missed', String(s.missedCount)],
        ['overlap skipped', String(s.overlapSkipped)],
        ['last error', s.lastError ?? '–'],
      ];
      let out = fields(rows);
      if (occurrences.length) {
        out += `\nlatest occurrences:\n${table(
          ['fire time', 'outcome', 'job', 'manual'],
          occurrences.map((o) => [o.fireAt.toISOString(), o.outcome, o.jobId ?? '–', o.manual ? 'yes' : '']),
        )}`;
      }
      ctx.io.out(out);
      return EXIT.OK;
    });
  },
};
