/** pause, resume, paused, roll-call, throttle: cluster controls through the client's Global and quorum calls. */
import type { Client } from '@partita/client';
import { COMMON_OPTIONS, CONNECTION_OPTIONS, duration, str } from '../args.js';
import { withClient, type Command } from '../command.js';
import { EXIT, NotAvailableError, UsageError } from '../errors.js';
import { eprintln, formatBytes, formatDuration, printJson, println, table } from '../io.js';

/** The client's method, or NotAvailableError when this client version lacks it. */
function method<K extends string>(client: Client, name: K, what: string): (...args: any[]) => Promise<any> {
  const fn = (client as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new NotAvailableError(what);
  return (fn as (...args: any[]) => Promise<any>).bind(client);
}

function partitionQueue(positionals: string[], command: string): [string, string] {
  const [partition, queue, extra] = positionals;
  if (!partition || !queue) throw new UsageError(`${command} needs <partition> <queue>`, command);
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, command);
  return [partition, queue];
}

export const pause: Command = {
  name: 'pause',
  summary: 'Stop claims of a queue on every node (running jobs finish); survives restarts.',
  args: '<partition> <queue>',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita pause billing invoices', 'partita resume billing invoices'],
  async run(ctx) {
    const [partition, queue] = partitionQueue(ctx.positionals, 'pause');
    return withClient(ctx, async (client) => {
      await method(client, 'pause', 'partita pause')(partition, queue);
      if (ctx.json) printJson(ctx.io, { partition, queue, paused: true });
      else println(ctx.io, `paused ${partition}/${queue}`);
      return EXIT.OK;
    });
  },
};

export const resume: Command = {
  name: 'resume',
  summary: 'Resume claims of a paused queue on every node.',
  args: '<partition> <queue>',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  async run(ctx) {
    const [partition, queue] = partitionQueue(ctx.positionals, 'resume');
    return withClient(ctx, async (client) => {
      await method(client, 'resume', 'partita resume')(partition, queue);
      if (ctx.json) printJson(ctx.io, { partition, queue, paused: false });
      else println(ctx.io, `resumed ${partition}/${queue}`);
      return EXIT.OK;
    });
  },
};

export const paused: Command = {
  name: 'paused',
  summary: 'List the paused queues of a partition.',
  args: '<partition>',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  async run(ctx) {
    const [partition, extra] = ctx.positionals;
    if (!partition) throw new UsageError('paused needs <partition>', 'paused');
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, 'paused');
    return withClient(ctx, async (client) => {
      const queues = (await method(client, 'paused', 'partita paused')(partition)) as string[];
      if (ctx.json) printJson(ctx.io, { partition, paused: queues });
      else if (queues.length === 0) eprintln(ctx.io, `no paused queues in ${partition}`);
      else for (const q of queues) println(ctx.io, q);
      return EXIT.OK;
    });
  },
};

export const rollCall: Command = {
  name: 'roll-call',
  summary: 'Ask every node of the cluster to report: partitions, queues, running jobs, throttle, memory, uptime.',
  description: 'Needs NATS (the nodes answer over the bus); waits --delay for answers.',
  options: {
    delay: { type: 'string', arg: 'DURATION', help: 'how long to collect answers (default 1s)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  async run(ctx) {
    if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`, 'roll-call');
    const delayMs = duration(str(ctx.values, 'delay'), '--delay', 'roll-call');
    return withClient(ctx, async (client) => {
      const members = (await method(client, 'rollCall', 'partita roll-call')(delayMs !== undefined ? { delayMs } : {})) as Record<string, unknown>[];
      if (ctx.json) {
        printJson(ctx.io, members);
        return EXIT.OK;
      }
      if (members.length === 0) {
        eprintln(ctx.io, 'no node answered (is NATS configured and are nodes running?)');
        return EXIT.OK;
      }
      ctx.io.out(
        table(
          ['NODE', 'PARTITIONS', 'RUNNING', 'QUEUED', 'THROTTLE', 'CPU', 'MEMORY', 'UPTIME', 'VERSION'],
          members.map((m) => [
            String(m.id ?? m.nodeId ?? m.node ?? '?'),
            describePartitions(m.partitions),
            String(m.running ?? '–'),
            m.queued === null || m.queued === undefined ? '–' : String(m.queued),
            describeThrottle(m.throttleMs ?? m.throttle),
            typeof m.cpuPercent === 'number' ? `${Math.round(m.cpuPercent)}%` : '–',
            typeof m.memory === 'number' ? formatBytes(m.memory) : typeof (m.memory as { rss?: number })?.rss === 'number' ? formatBytes((m.memory as { rss: number }).rss) : '–',
            typeof m.uptimeMs === 'number' ? formatDuration(m.uptimeMs) : '–',
            typeof m.version === 'string' ? m.version : '–',
          ]),
        ),
      );
      return EXIT.OK;
    });
  },
};

function describePartitions(p: unknown): string {
  if (Array.isArray(p)) return p.map((x) => (typeof x === 'string' ? x : (x as { name?: string; partition?: string })?.name ?? (x as { partition?: string })?.partition ?? '?')).join(',');
  if (p && typeof p === 'object') return Object.keys(p).join(',');
  return '–';
}

function describeThrottle(t: unknown): string {
  if (t === undefined || t === null) return '–';
  if (typeof t === 'number') return t < 0 ? 'stopped' : t === 0 ? 'none' : `${t} ms`;
  return JSON.stringify(t);
}

export const throttle: Command = {
  name: 'throttle',
  summary: 'Slow down or stop claiming, cluster-wide or for a partition, queue or node.',
  args: '<ms|stop|off>',
  description: `ms: wait this long before each claim (1500, 2s, …). stop (or -1): claim nothing until
lifted; running jobs finish. off (or 0): lift the throttle. Survives restarts; nodes that join later
read it.`,
  options: {
    partition: { type: 'string', short: 'p', arg: 'NAME', help: 'only this partition' },
    queue: { type: 'string', short: 'q', arg: 'NAME', help: 'only this queue' },
    node: { type: 'string', arg: 'NODE-ID', help: 'only this node (ids as shown by roll-call)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: ['partita throttle 500ms -p billing', 'partita throttle stop -p billing -q invoices', 'partita throttle off'],
  async run(ctx) {
    const [value, extra] = ctx.positionals;
    if (value === undefined) throw new UsageError('throttle needs <ms|stop|off>', 'throttle');
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, 'throttle');
    const ms = value === 'stop' || value === '-1' ? -1 : value === 'off' ? 0 : duration(value, 'the throttle', 'throttle')!;
    const target = {
      ...(str(ctx.values, 'partition') ? { partition: str(ctx.values, 'partition') } : {}),
      ...(str(ctx.values, 'queue') ? { queue: str(ctx.values, 'queue') } : {}),
      ...(str(ctx.values, 'node') ? { node: str(ctx.values, 'node') } : {}),
    };
    return withClient(ctx, async (client) => {
      await method(client, 'throttle', 'partita throttle')({ ms, ...target });
      if (ctx.json) printJson(ctx.io, { ms, ...target });
      else {
        const scope = [target.partition, target.queue].filter(Boolean).join('/') || 'every partition';
        println(ctx.io, `${ms < 0 ? 'stopped claiming' : ms === 0 ? 'lifted the throttle' : `throttled to one claim per ${formatDuration(ms)}`} for ${scope}${target.node ? ` on ${target.node}` : ''}`);
      }
      return EXIT.OK;
    });
  },
};
