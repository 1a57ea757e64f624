/**
 * pause, resume, paused, roll-call, throttle: cluster controls. With NATS they go through the
 * partition's Global and the quorum; without, through Postgres (the nodes hear of a change by a
 * Postgres notification, and roll call reads the profiles nodes store with each heartbeat).
 *
 * Pause and throttle are two controls: a pause stops one queue (`resume` lifts it); `throttle
 * stop` (-1) stops claiming for a partition, queue or node until `throttle off` lifts it. Both
 * show in `paused`, each with the command that lifts it.
 */
import { queueThrottle, type Client, type ThrottleRule } from '@partita/client';
import { COMMON_OPTIONS, CONNECTION_OPTIONS, duration, int, str } from '../args.js';
import { positionals, withClient, type Command } from '../command.js';
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

/** A queue that a throttle of -1 stops (on every node, or on `node`), with the rule and the command that lifts it. */
interface StoppedQueue {
  queue: string;
  node?: string;
  rule: ThrottleRule;
  lift: string;
}

/** The most specific rule of -1 that stops `queue` (on `node`, or on every node when undefined). */
function stoppingRule(rules: readonly ThrottleRule[], queue: string, node: string | undefined): ThrottleRule | undefined {
  const relevant = node === undefined ? rules.filter((r) => r.node === undefined) : rules;
  if (queueThrottle(relevant, node ?? '', queue) !== -1) return undefined;
  const level = (r: ThrottleRule) => (r.node !== undefined ? 2 : 0) + (r.queue !== undefined ? 1 : 0);
  return relevant
    .filter((r) => r.ms === -1 && (r.queue === undefined || r.queue === queue) && (r.node === undefined || r.node === node))
    .sort((a, b) => level(b) - level(a))[0];
}

function liftCommand(partition: string, rule: ThrottleRule): string {
  return `partita throttle off -p ${partition}${rule.queue !== undefined ? ` -q ${rule.queue}` : ''}${rule.node !== undefined ? ` --node ${rule.node}` : ''}`;
}

/** Queues of a partition that throttles of -1 stop: everywhere, or on named nodes. */
function stoppedQueues(partition: string, queues: Iterable<string>, rules: readonly ThrottleRule[]): StoppedQueue[] {
  const nodes = [...new Set(rules.filter((r) => r.ms === -1 && r.node !== undefined).map((r) => r.node!))].sort();
  const out: StoppedQueue[] = [];
  for (const queue of [...new Set(queues)].sort()) {
    const everywhere = stoppingRule(rules, queue, undefined);
    if (everywhere) {
      out.push({ queue, rule: everywhere, lift: liftCommand(partition, everywhere) });
      continue;
    }
    for (const node of nodes) {
      const rule = stoppingRule(rules, queue, node);
      if (rule) out.push({ queue, node, rule, lift: liftCommand(partition, rule) });
    }
  }
  return out;
}

/** A partition's pauses and the queues its throttles stop (declared queues, and queues named by rules). */
async function controlOf(client: Client, partition: string): Promise<{ paused: string[]; stopped: StoppedQueue[] }> {
  const { paused, throttles } = (await method(client, 'control', 'partita paused')(partition)) as {
    paused: string[];
    throttles: ThrottleRule[];
  };
  const declared = (await client.knownQueues()).get(partition) ?? new Set<string>();
  const named = throttles.flatMap((r) => (r.queue !== undefined ? [r.queue] : []));
  return { paused, stopped: stoppedQueues(partition, [...declared, ...named, ...paused], throttles) };
}

export const pause: Command = {
  name: 'pause',
  summary: 'Stop claims of a queue on every node (running jobs finish); survives restarts. resume lifts it.',
  description: `Running jobs finish. Works with or without NATS (without, the nodes hear of it through
Postgres). To stop a whole partition or one node instead, see throttle stop.`,
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
      const before = await controlOf(client, partition);
      await method(client, 'resume', 'partita resume')(partition, queue);
      const wasPaused = before.paused.includes(queue);
      // A queue that throttle stop holds stays stopped: say so, and how to lift it, rather than "resumed".
      const stopped = before.stopped.filter((s) => s.queue === queue);
      if (ctx.json) {
        printJson(ctx.io, {
          partition,
          queue,
          paused: false,
          wasPaused,
          stoppedBy: stopped.map(({ node, rule, lift }) => ({ ...(node ? { node } : {}), rule, lift })),
        });
        return EXIT.OK;
      }
      if (wasPaused) println(ctx.io, `resumed ${partition}/${queue}${stopped.length ? ' (its pause is lifted)' : ''}`);
      else if (!stopped.length) eprintln(ctx.io, `${partition}/${queue} was not paused; nothing to resume`);
      for (const s of stopped) {
        eprintln(
          ctx.io,
          `${partition}/${queue} ${wasPaused ? 'still claims nothing' : 'is not paused but claims nothing'}${s.node ? ` on node ${s.node}` : ''}: ` +
            `a throttle of -1 (stop) holds it, and resume does not lift throttles. Lift it with: ${s.lift}`,
        );
      }
      return EXIT.OK;
    });
  },
};

export const paused: Command = {
  name: 'paused',
  summary: 'List the queues of a partition that claim nothing: paused, or stopped by a throttle of -1.',
  description: 'Each with the command that lifts it: resume for a pause, throttle off for a stop.',
  args: '<partition>',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  async run(ctx) {
    const [partition, extra] = ctx.positionals;
    if (!partition) throw new UsageError('paused needs <partition>', 'paused');
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, 'paused');
    return withClient(ctx, async (client) => {
      const { paused: queues, stopped } = await controlOf(client, partition);
      if (ctx.json) {
        printJson(ctx.io, {
          partition,
          paused: queues,
          stopped: stopped.map(({ queue, node, rule, lift }) => ({ queue, ...(node ? { node } : {}), rule, lift })),
        });
        return EXIT.OK;
      }
      if (queues.length === 0 && stopped.length === 0) {
        eprintln(ctx.io, `no paused or stopped queues in ${partition}`);
        return EXIT.OK;
      }
      ctx.io.out(
        table(
          ['QUEUE', 'STATE', 'LIFT WITH'],
          [
            ...queues.map((q) => [q, 'paused', `partita resume ${partition} ${q}`]),
            ...stopped.map((s) => [s.queue, `stopped by throttle${s.node ? ` on ${s.node}` : ''}`, s.lift]),
          ],
        ),
      );
      return EXIT.OK;
    });
  },
};

export const rollCall: Command = {
  name: 'roll-call',
  summary: 'Ask every node of the cluster to report: partitions, queues, running jobs, throttle, memory, uptime.',
  description: `With NATS the nodes answer over the bus (collected for --delay). Without, a Postgres
notification asks every node to store its profile in the nodes table, which is read once they all did
(at most --delay); a node that did not is shown as of its last heartbeat. With --expect N it stops
collecting as soon as N nodes answered: a script that knows its cluster's size gets every answer
however loaded the nodes are (give it a long --delay) without waiting out the window.`,
  options: {
    delay: { type: 'string', arg: 'DURATION', help: 'how long to collect answers (default 1s)' },
    expect: { type: 'string', arg: 'N', help: 'stop once N nodes answered (still at most --delay)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  async run(ctx) {
    positionals(ctx, []);
    const delayMs = duration(str(ctx.values, 'delay'), '--delay', 'roll-call');
    const expect = int(str(ctx.values, 'expect'), '--expect', 'roll-call', { min: 1 });
    return withClient(ctx, async (client) => {
      const asked = { ...(delayMs !== undefined ? { delayMs } : {}), ...(expect !== undefined ? { max: expect } : {}) };
      const members = (await method(client, 'rollCall', 'partita roll-call')(asked)) as Record<string, unknown>[];
      if (ctx.json) {
        printJson(ctx.io, members);
        return EXIT.OK;
      }
      if (members.length === 0) {
        eprintln(ctx.io, 'no node answered (are nodes of this cluster running? check --cluster and the config)');
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
            typeof m.memory === 'number'
              ? formatBytes(m.memory)
              : typeof (m.memory as { rss?: number })?.rss === 'number'
                ? formatBytes((m.memory as { rss: number }).rss)
                : '–',
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
  if (Array.isArray(p))
    return p
      .map((x) =>
        typeof x === 'string' ? x : ((x as { name?: string; partition?: string })?.name ?? (x as { partition?: string })?.partition ?? '?'),
      )
      .join(',');
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
lifted; running jobs finish. off (or 0): lift the throttle of that same scope (-p/-q/--node). Survives
restarts; nodes that join later read it. A stop is not a pause: resume does not lift it, and paused
lists both.`,
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
        println(
          ctx.io,
          `${ms < 0 ? 'stopped claiming' : ms === 0 ? 'lifted the throttle' : `throttled to one claim per ${formatDuration(ms)}`} for ${scope}${target.node ? ` on ${target.node}` : ''}`,
        );
        if (ms < 0) {
          const lift = [
            'partita throttle off',
            target.partition && `-p ${target.partition}`,
            target.queue && `-q ${target.queue}`,
            target.node && `--node ${target.node}`,
          ]
            .filter(Boolean)
            .join(' ');
          println(ctx.io, `lift it with: ${lift}`);
        }
      }
      return EXIT.OK;
    });
  },
};
