/** enqueue, cancel, retry, status, job, jobs (and their bulk retry, cancel, delete), migrate. */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import {
  DuplicateQueueKeyError,
  JOB_STATES,
  createLogger,
  isFinishedJobState,
  isJobState,
  isUuid,
  statusOf,
  type EnqueueOptions,
  type JobRecord,
  type JobState,
} from '@partita/core';
import type { BulkResult, Client, EnqueueManyItem } from '@partita/client';
import { COMMON_OPTIONS, CONNECTION_OPTIONS, date, duration, flag, int, json, list, lookups, str } from '../args.js';
import { withClient, type Command, type Context } from '../command.js';
import { EXIT, ExitError, NotFoundError, UsageError } from '../errors.js';
import { brief, colour, eprintln, formatDuration, printJson, println, table, whenFromNow } from '../io.js';
import type { JobFilter } from '../listing.js';
import { ProgressBar } from '../progress.js';
import { migratePlugins, pluginsWithTables } from '../plugin-tables.js';

const JOB_OPTIONS = {
  queue: { type: 'string', arg: 'NAME', help: "queue (default: the job type's queue, else default)" },
  delay: { type: 'string', arg: 'DURATION', help: 'run after this long: 1500 (ms), 30s, 5m, 2h' },
  'run-at': { type: 'string', arg: 'TIME', help: 'run at this ISO time (2030-01-01T09:00:00Z) or +10m' },
  priority: { type: 'string', arg: 'N', help: 'lower runs first (default 0)' },
  'max-attempts': { type: 'string', arg: 'N', help: "attempts before it fails for good (default: the job type's)" },
  timeout: { type: 'string', arg: 'DURATION', help: 'abort an attempt after this long' },
  'queue-key': { type: 'string', arg: 'KEY', help: 'refuse the job while another live job holds this key' },
  'execution-key': { type: 'string', arg: 'KEY', help: 'run one job with this key at a time, cluster-wide' },
  lookup: { type: 'string', arg: 'K=V', multiple: true, help: 'a lookup key for finding the job later (jobs --lookup)' },
  'allow-unknown-type': { type: 'boolean', help: 'enqueue a type no node has defined yet (it waits for a node that defines it)' },
} as const;

function jobOptions(ctx: Context): EnqueueOptions {
  const v = ctx.values;
  const c = ctx.spec.name;
  const out: EnqueueOptions = {};
  const queue = str(v, 'queue');
  if (queue !== undefined) out.queue = queue;
  const delay = duration(str(v, 'delay'), '--delay', c);
  const runAt = date(str(v, 'run-at'), '--run-at', c);
  if (delay !== undefined && runAt !== undefined) throw new UsageError('give --delay or --run-at, not both', c);
  if (delay !== undefined) out.delayMs = delay;
  if (runAt !== undefined) out.runAt = runAt;
  const priority = int(str(v, 'priority'), '--priority', c);
  if (priority !== undefined) out.priority = priority;
  const maxAttempts = int(str(v, 'max-attempts'), '--max-attempts', c, { min: 1, max: 1000 });
  if (maxAttempts !== undefined) out.maxAttempts = maxAttempts;
  const timeout = duration(str(v, 'timeout'), '--timeout', c);
  if (timeout !== undefined) out.timeoutMs = timeout;
  const queueKey = str(v, 'queue-key');
  if (queueKey !== undefined) out.queueKey = queueKey;
  const executionKey = str(v, 'execution-key');
  if (executionKey !== undefined) out.executionKey = executionKey;
  const lookup = lookups(list(v, 'lookup'), c);
  if (lookup) out.lookup = lookup;
  if (flag(v, 'allow-unknown-type')) out.allowUnknownType = true;
  return out;
}

// ── enqueue ──────────────────────────────────────────────────────────────────────────────────

export const enqueue: Command = {
  name: 'enqueue',
  summary: 'Add a job (or many, from a JSON Lines file) to a partition.',
  args: '<partition> <type> [payload-json]',
  description: `
Prints the new job's id (with --json: {"id": …}). The payload is JSON; @FILE reads it from a file.

Bulk: --file FILE (or - for stdin) with one JSON document per line. With <type> given, each line
is a payload; without, each line is a job: {"type": …, "payload": …, "partition"?: …, "queue"?: …,
"delayMs"?: …, "runAt"?: …, "priority"?: …, "maxAttempts"?: …, "timeoutMs"?: …, "queueKey"?: …,
"executionKey"?: …, "lookup"?: {…}}. The command-line job options apply to every line that does not
set its own. Lines are checked before anything is enqueued; then jobs go in batches with a
progress bar on stderr. Jobs refused because their queue key is held are listed (exit code 5).`,
  options: {
    ...JOB_OPTIONS,
    file: { type: 'string', arg: 'FILE', help: 'enqueue every line of a JSON Lines file (- for stdin)' },
    'batch-size': { type: 'string', arg: 'N', help: 'jobs per round trip with --file (default 1000)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: [
    `partita enqueue billing invoice.total '{"invoice":"INV-1"}'`,
    `partita enqueue emails email.send '{"to":"a@example.com"}' --delay 10m --lookup customer=42`,
    `partita enqueue billing --file jobs.jsonl --json`,
  ],
  async run(ctx) {
    const file = str(ctx.values, 'file');
    if (file !== undefined) return enqueueFile(ctx, file);
    const [partition, type, payloadText, ...rest] = ctx.positionals;
    if (!partition || !type) throw new UsageError('enqueue needs <partition> <type> [payload-json] (or --file FILE)', 'enqueue');
    if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}" (quote the payload JSON as one argument)`, 'enqueue');
    const payload = payloadText === undefined ? undefined : await payloadArg(payloadText, ctx);
    const options = jobOptions(ctx);
    return withClient(ctx, async (client) => {
      const { id } = await client.enqueue(partition, type, payload, options);
      if (ctx.json) printJson(ctx.io, { id, partition, type });
      else println(ctx.io, id);
      return EXIT.OK;
    });
  },
};

async function payloadArg(text: string, ctx: Context): Promise<unknown> {
  if (text.startsWith('@')) {
    const file = path.resolve(ctx.io.cwd, text.slice(1));
    let body: string;
    try {
      body = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the payload file ${file}: ${(err as Error).message}`, ctx.spec.name);
    }
    return json(body, `the payload in ${file}`, ctx.spec.name);
  }
  return json(text, 'the payload', ctx.spec.name);
}

const LINE_KEYS = new Set([
  'type',
  'payload',
  'partition',
  'queue',
  'delayMs',
  'runAt',
  'priority',
  'maxAttempts',
  'timeoutMs',
  'queueKey',
  'executionKey',
  'lookup',
]);

async function enqueueFile(ctx: Context, file: string): Promise<number> {
  const c = 'enqueue';
  const [partitionArg, typeArg, ...rest] = ctx.positionals;
  if (rest.length) throw new UsageError(`with --file, give at most <partition> <type>; unexpected "${rest[0]}"`, c);
  const batchSize = int(str(ctx.values, 'batch-size'), '--batch-size', c, { min: 1, max: 50_000 }) ?? 1000;
  const defaults = jobOptions(ctx);

  // Read and check every line first: a typo on line 90,000 must not leave 89,999 jobs enqueued.
  const input = file === '-' ? ctx.io.stdin : createReadStream(path.resolve(ctx.io.cwd, file));
  const jobs: { line: number; partition: string; item: EnqueueManyItem }[] = [];
  const problems: string[] = [];
  let lineNo = 0;
  try {
    for await (const raw of createInterface({ input, crlfDelay: Infinity })) {
      lineNo++;
      const text = raw.trim();
      if (!text) continue;
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        problems.push(`line ${lineNo}: not JSON (${(err as Error).message})`);
        continue;
      }
      if (typeArg !== undefined) {
        if (!partitionArg) throw new UsageError('enqueue --file with a <type> needs the <partition> too', c);
        jobs.push({ line: lineNo, partition: partitionArg, item: { ...defaults, type: typeArg, payload: doc } });
        continue;
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        problems.push(`line ${lineNo}: expected a job object {"type": …, "payload": …} (or give <type> so each line is a payload)`);
        continue;
      }
      const obj = doc as Record<string, unknown>;
      const unknown = Object.keys(obj).filter((k) => !LINE_KEYS.has(k));
      if (unknown.length) {
        problems.push(`line ${lineNo}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${[...LINE_KEYS].join(', ')})`);
        continue;
      }
      if (typeof obj.type !== 'string' || !obj.type) {
        problems.push(`line ${lineNo}: "type" must be a job type name`);
        continue;
      }
      const partition = typeof obj.partition === 'string' ? obj.partition : partitionArg;
      if (!partition) {
        problems.push(`line ${lineNo}: no partition (give <partition> on the command line or "partition" in the line)`);
        continue;
      }
      const { partition: _p, runAt, ...restOfLine } = obj;
      const item: EnqueueManyItem = { ...defaults, ...(restOfLine as unknown as EnqueueManyItem) };
      if (runAt !== undefined) {
        const d = typeof runAt === 'string' || typeof runAt === 'number' ? new Date(runAt) : undefined;
        if (!d || Number.isNaN(d.getTime())) {
          problems.push(`line ${lineNo}: "runAt" must be an ISO date-time`);
          continue;
        }
        item.runAt = d;
        delete item.delayMs;
      } else if (restOfLine.delayMs !== undefined) {
        delete item.runAt;
      }
      jobs.push({ line: lineNo, partition, item });
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, c);
  }
  if (problems.length) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new UsageError(
      `${file} has ${problems.length} bad line${problems.length === 1 ? '' : 's'}; nothing was enqueued:\n  ${shown}${problems.length > 10 ? `\n  … and ${problems.length - 10} more` : ''}`,
      c,
    );
  }
  if (jobs.length === 0) throw new UsageError(`${file} holds no jobs (one JSON document per line)`, c);

  return withClient(ctx, async (client) => {
    const bar = new ProgressBar({ write: ctx.io.err, tty: ctx.io.stderrTTY, label: 'enqueue', total: jobs.length });
    const ids: string[] = [];
    const refused: { line: number; queueKey: string; heldBy: string | undefined }[] = [];
    let done = 0;
    // Batches of consecutive lines of one partition, in file order.
    for (let i = 0; i < jobs.length; ) {
      const partition = jobs[i]!.partition;
      const batch: typeof jobs = [];
      while (i < jobs.length && batch.length < batchSize && jobs[i]!.partition === partition) batch.push(jobs[i++]!);
      let result;
      try {
        result = await client.enqueueMany(
          partition,
          batch.map((b) => b.item),
        );
      } catch (err) {
        bar.finish();
        const e = err as Error & { code?: string };
        const where = done > 0 ? ` (${done} jobs before line ${batch[0]!.line} were enqueued)` : ' (nothing was enqueued)';
        const path = (e as { path?: string }).path;
        const lineHint = path && /^jobs\[(\d+)\]/.exec(path) ? ` at line ${batch[Number(/^jobs\[(\d+)\]/.exec(path)![1])]?.line}` : '';
        throw Object.assign(new Error(`${e.message}${lineHint}${where}`), { code: e.code });
      }
      ids.push(...result.ids);
      for (const r of result.refused) refused.push({ line: batch[r.index]!.line, queueKey: r.queueKey, heldBy: r.heldBy });
      done += batch.length;
      bar.update(done, refused.length ? `${refused.length} refused` : '');
    }
    bar.finish();
    if (ctx.json) {
      printJson(ctx.io, { enqueued: ids.length, ids, refused });
    } else {
      println(ctx.io, `enqueued ${ids.length} job${ids.length === 1 ? '' : 's'}`);
      for (const r of refused.slice(0, 20)) {
        eprintln(ctx.io, `line ${r.line}: refused, queue key "${r.queueKey}" is held${r.heldBy ? ` by job ${r.heldBy}` : ''}`);
      }
      if (refused.length > 20) eprintln(ctx.io, `… and ${refused.length - 20} more refused`);
    }
    return refused.length ? EXIT.CONFLICT : EXIT.OK;
  });
}

// ── status, job ──────────────────────────────────────────────────────────────────────────────

function checkId(id: string | undefined, command: string): string {
  if (!id) throw new UsageError(`${command} needs a job id`, command);
  if (!isUuid(id)) throw new UsageError(`"${id}" is not a job id (job ids are UUIDs, as printed by enqueue)`, command);
  return id;
}

function describeState(job: JobRecord): string {
  switch (job.state) {
    case 'running':
      return `running (attempt ${job.attempts} of ${job.maxAttempts}${job.node ? ` on ${job.node}` : ''})`;
    case 'scheduled':
      return `scheduled for ${job.runAt.toISOString()}${job.attempts > 0 ? ` (retry ${job.attempts + 1} of ${job.maxAttempts})` : ''}`;
    case 'queued':
      return job.attempts > 0 ? `queued (retry ${job.attempts + 1} of ${job.maxAttempts})` : 'queued';
    case 'waiting':
      return `waiting for execution key "${job.executionKey}"`;
    case 'completed':
      return `completed${job.startedAt && job.finishedAt ? ` in ${formatDuration(job.finishedAt.getTime() - job.startedAt.getTime())}` : ''}`;
    case 'failed':
      return `failed after ${job.attempts} attempt${job.attempts === 1 ? '' : 's'}${job.errors.length ? `: ${job.errors.at(-1)!.message}` : ''}`;
    case 'cancelled':
      return 'cancelled';
  }
}

const unsuccessful = (state: JobState) => state === 'failed' || state === 'cancelled';

export const status: Command = {
  name: 'status',
  summary: "Show a job's status; exit code 4 when it failed or was cancelled.",
  args: '<job-id>',
  description: `
Prints the state (with --json: {"id", "status", "state", "attempts", "maxAttempts"}; status is the
Roger-style number: -1 pending, >0 running attempt, 0 completed, -1000000000 cancelled,
-1000000001 failed). Exit code 0 pending/running/completed, 3 no such job, 4 failed or cancelled.
With --wait, waits for the job to finish first: exit code 0 completed, 4 failed or cancelled,
1 still unfinished when --timeout runs out.`,
  options: {
    wait: { type: 'boolean', short: 'w', help: 'wait until the job finishes' },
    timeout: { type: 'string', arg: 'DURATION', help: 'with --wait: give up after this long (default: wait forever)' },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: ['partita status 0192f0c4-…', 'partita status "$id" --wait --timeout 5m && echo done'],
  async run(ctx) {
    const id = checkId(ctx.positionals[0], 'status');
    const wait = flag(ctx.values, 'wait');
    const timeoutMs = duration(str(ctx.values, 'timeout'), '--timeout', 'status');
    if (timeoutMs !== undefined && !wait) throw new UsageError('--timeout only applies with --wait', 'status');
    return withClient(ctx, async (client) => {
      let job = await client.job(id);
      if (!job)
        throw new NotFoundError(
          `no job with id ${id} (finished jobs are kept for the retention period; a workflow step's success is kept in its workflow's timeline only: partita workflow APP ID)`,
        );
      if (wait && !isFinishedJobState(job.state)) job = await waitFinished(client, id, timeoutMs);
      const code = unsuccessful(job.state) ? EXIT.JOB_UNSUCCESSFUL : EXIT.OK;
      if (ctx.json) {
        printJson(ctx.io, { id, status: statusOf(job), state: job.state, attempts: job.attempts, maxAttempts: job.maxAttempts });
      } else {
        const text = describeState(job);
        println(
          ctx.io,
          job.state === 'completed' ? colour(ctx.io, 'green', text) : unsuccessful(job.state) ? colour(ctx.io, 'red', text) : text,
        );
      }
      if (wait && !isFinishedJobState(job.state)) {
        throw new ExitError(`job ${id} is still ${job.state} after ${formatDuration(timeoutMs!)}`, EXIT.ERROR, 'TIMEOUT');
      }
      return code;
    });
  },
};

async function waitFinished(client: Client, id: string, timeoutMs: number | undefined): Promise<JobRecord> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let pause = 50;
  for (;;) {
    const job = await client.job(id);
    if (!job) throw new NotFoundError(`job ${id} disappeared (pruned from history?)`);
    if (isFinishedJobState(job.state) || Date.now() >= deadline) return job;
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
    pause = Math.min(pause * 2, 1000);
  }
}

export const job: Command = {
  name: 'job',
  summary: 'Show everything about a job: payload, state, attempts, errors, result.',
  args: '<job-id>',
  description: 'Exit code 0 when the job exists (whatever its state), 3 when there is no such job.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  examples: ['partita job 0192f0c4-… --json | jq .result'],
  async run(ctx) {
    const id = checkId(ctx.positionals[0], 'job');
    return withClient(ctx, async (client) => {
      const record = await client.job(id);
      if (!record)
        throw new NotFoundError(
          `no job with id ${id} (finished jobs are kept for the retention period; a workflow step's success is kept in its workflow's timeline only: partita workflow APP ID)`,
        );
      if (ctx.json) printJson(ctx.io, record);
      else ctx.io.out(renderJob(record));
      return EXIT.OK;
    });
  },
};

function renderJob(j: JobRecord): string {
  const rows: [string, string][] = [
    ['id', j.id],
    ['partition', j.partition],
    ['queue', j.queue],
    ['type', j.type],
    ['state', describeState(j)],
    ['attempts', `${j.attempts} of ${j.maxAttempts}`],
    ['priority', String(j.priority)],
    ['created', whenFromNow(j.createdAt)],
    ['run at', j.runAt ? j.runAt.toISOString() : '–'],
    ['started', whenFromNow(j.startedAt)],
    ['finished', whenFromNow(j.finishedAt)],
    ['node', j.node ?? '–'],
    ['queue key', j.queueKey ?? '–'],
    ['execution key', j.executionKey ?? '–'],
    ['lookup', j.lookup ? JSON.stringify(j.lookup) : '–'],
    ['progress', j.progress === null || j.progress === undefined ? '–' : JSON.stringify(j.progress)],
    ['payload', JSON.stringify(j.payload)],
    ['result', j.state === 'completed' ? JSON.stringify(j.result) : '–'],
  ];
  let out = rows.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n') + '\n';
  if (j.errors.length) {
    out += 'errors\n';
    for (const e of j.errors)
      out += `  attempt ${e.attempt} at ${e.at}: ${e.name}: ${e.message}${e.rescued ? ' (node stopped; rescued)' : ''}\n`;
  }
  return out;
}

// ── cancel ───────────────────────────────────────────────────────────────────────────────────

export const cancel: Command = {
  name: 'cancel',
  summary: 'Cancel jobs: a queued job never runs; a running one has its signal aborted.',
  args: '<job-id>...',
  description: 'Exit code 0 when every job is cancelled (or already was), 3 when an id names no job, 5 when a job had already finished.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError('cancel needs at least one job id', 'cancel');
    const ids = ctx.positionals.map((id) => checkId(id, 'cancel'));
    return withClient(ctx, async (client) => {
      const results: { id: string; cancelled: boolean; state: JobState | null }[] = [];
      let code: number = EXIT.OK;
      for (const id of ids) {
        const ok = await client.cancel(id);
        const record = await client.job(id);
        const state = record?.state ?? null;
        results.push({ id, cancelled: ok || state === 'cancelled', state });
        if (!record) code = Math.max(code, EXIT.NOT_FOUND);
        else if (!ok && state !== 'cancelled') code = EXIT.CONFLICT;
      }
      if (ctx.json) printJson(ctx.io, ids.length === 1 ? results[0] : results);
      else {
        for (const r of results) {
          if (r.state === null) eprintln(ctx.io, `${r.id}: no such job`);
          else if (r.cancelled) println(ctx.io, `${r.id}: ${r.state === 'cancelled' ? 'cancelled' : `cancel requested (was ${r.state})`}`);
          else eprintln(ctx.io, `${r.id}: already ${r.state}; nothing to cancel`);
        }
      }
      return code;
    });
  },
};

// ── jobs (list) ──────────────────────────────────────────────────────────────────────────────

/** The client's defaults for bulk operations, shown in help. */
const DEFAULT_BULK_LIMIT = 1000;
const MAX_BULK_LIMIT = 1_000_000;

export const jobs: Command = {
  name: 'jobs',
  summary: 'List jobs, newest first, filtered by partition, queue, type, state and lookup keys; or retry, cancel or delete them.',
  description: `States: ${JOB_STATES.join(', ')} (comma-separated or repeated). Finished jobs come from
history (kept for the retention period). Lookup filters match jobs enqueued with --lookup k=v.

With --retry, --cancel or --delete the matching jobs are acted on instead of listed, newest first,
at most --limit of them (default ${DEFAULT_BULK_LIMIT} here). Without --yes this only prints how many would
be (a dry run) and changes nothing. --retry takes failed and cancelled jobs (as \`partita retry\`);
--cancel takes live ones (as \`partita cancel\`); --delete takes finished jobs and live jobs that are
not running (they never run and leave no history). Running jobs are never deleted: --cancel them
first. Exit code 5 when a retry was refused because a live job holds the queue key.`,
  options: {
    partition: { type: 'string', short: 'p', arg: 'NAME', help: 'only this partition' },
    queue: { type: 'string', short: 'q', arg: 'NAME', help: 'only this queue' },
    type: { type: 'string', short: 't', arg: 'TYPE', help: 'only this job type' },
    state: { type: 'string', short: 's', arg: 'STATE', multiple: true, help: 'only these states' },
    lookup: { type: 'string', arg: 'K=V', multiple: true, help: 'only jobs whose lookup has k=v' },
    limit: {
      type: 'string',
      short: 'n',
      arg: 'N',
      help: `at most this many (default 50, max 10000; with --retry, --cancel, --delete: default ${DEFAULT_BULK_LIMIT}, max ${MAX_BULK_LIMIT})`,
    },
    before: { type: 'string', arg: 'JOB-ID', help: 'only jobs older than this one (the next page)' },
    retry: { type: 'boolean', help: 'retry the matching failed and cancelled jobs (needs --yes)' },
    cancel: { type: 'boolean', help: 'cancel the matching live jobs (needs --yes)' },
    delete: { type: 'boolean', help: 'delete the matching jobs, except running ones (needs --yes)' },
    yes: { type: 'boolean', short: 'y', help: 'with --retry, --cancel, --delete: do it (without: only count)' },
    'max-attempts': { type: 'string', arg: 'N', help: "with --retry: attempts each job gets (default: its type's maxAttempts)" },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: [
    'partita jobs --state running',
    'partita jobs -p billing --state failed,cancelled --json',
    'partita jobs --lookup customer=42',
    'partita jobs --state failed --type invoice.total --retry          # how many would be retried',
    'partita jobs --state failed --type invoice.total --retry --yes',
    'partita jobs --state completed --before 0192f0c4-… --delete --limit 50000 --yes',
  ],
  async run(ctx) {
    const c = 'jobs';
    if (ctx.positionals.length)
      throw new UsageError(`unexpected argument "${ctx.positionals[0]}"; filters are options (--state, --queue, …)`, c);
    const states = list(ctx.values, 'state')
      .flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    for (const s of states) if (!isJobState(s)) throw new UsageError(`unknown state "${s}"; use one of ${JOB_STATES.join(', ')}`, c);
    const operations = (['retry', 'cancel', 'delete'] as const).filter((o) => flag(ctx.values, o));
    if (operations.length > 1)
      throw new UsageError(`give one of --retry, --cancel, --delete, not ${operations.map((o) => `--${o}`).join(' and ')}`, c);
    const operation = operations[0];
    if (!operation && flag(ctx.values, 'yes')) throw new UsageError('--yes confirms --retry, --cancel or --delete; give one of them', c);
    if (operation !== 'retry' && str(ctx.values, 'max-attempts') !== undefined)
      throw new UsageError('--max-attempts only applies with --retry', c);
    const limit = operation
      ? (int(str(ctx.values, 'limit'), '--limit', c, { min: 1, max: MAX_BULK_LIMIT }) ?? DEFAULT_BULK_LIMIT)
      : (int(str(ctx.values, 'limit'), '--limit', c, { min: 1, max: 10_000 }) ?? 50);
    const before = str(ctx.values, 'before');
    if (before !== undefined && !isUuid(before)) throw new UsageError(`--before takes a job id, got "${before}"`, c);
    const lookup = lookups(list(ctx.values, 'lookup'), c);
    return withClient(ctx, async (client) => {
      const filter: JobFilter = {
        limit,
        ...(str(ctx.values, 'partition') !== undefined ? { partition: str(ctx.values, 'partition')! } : {}),
        ...(str(ctx.values, 'queue') !== undefined ? { queue: str(ctx.values, 'queue')! } : {}),
        ...(str(ctx.values, 'type') !== undefined ? { type: str(ctx.values, 'type')! } : {}),
        ...(states.length ? { states: states as JobState[] } : {}),
        ...(lookup ? { lookup } : {}),
        ...(before ? { before } : {}),
      };
      if (operation) return bulk(ctx, client, operation, filter);
      const found = await client.listJobs(filter);
      if (ctx.json) {
        printJson(ctx.io, found);
        return EXIT.OK;
      }
      if (found.length === 0) {
        eprintln(ctx.io, 'no jobs match');
        return EXIT.OK;
      }
      ctx.io.out(
        table(
          ['ID', 'PARTITION', 'QUEUE', 'TYPE', 'STATE', 'ATTEMPTS', 'CREATED', 'PAYLOAD'],
          found.map((j) => [
            j.id,
            j.partition,
            j.queue,
            j.type,
            j.state,
            `${j.attempts}/${j.maxAttempts}`,
            j.createdAt.toISOString(),
            brief(j.payload, 40),
          ]),
        ),
      );
      if (found.length === limit) eprintln(ctx.io, `(first ${limit}; --limit N for more, --before ${found.at(-1)!.id} for the next page)`);
      return EXIT.OK;
    });
  },
};

const PAST = { retry: 'retried', cancel: 'cancelled', delete: 'deleted' } as const;

/** `partita jobs … --retry|--cancel|--delete [--yes]`: the client's bulk operation, a dry run without --yes. */
async function bulk(ctx: Context, client: Client, operation: 'retry' | 'cancel' | 'delete', filter: JobFilter): Promise<number> {
  const { limit, ...match } = filter;
  const dryRun = !flag(ctx.values, 'yes');
  const options = { limit, dryRun };
  const maxAttempts = int(str(ctx.values, 'max-attempts'), '--max-attempts', 'jobs', { min: 1, max: 1000 });
  const result =
    operation === 'retry'
      ? await client.retryMany(match, { ...options, ...(maxAttempts !== undefined ? { maxAttempts } : {}) })
      : operation === 'cancel'
        ? await client.cancelMany(match, options)
        : await client.deleteMany(match, options);
  const refused = 'refused' in result ? result.refused : [];
  if (ctx.json) {
    printJson(ctx.io, { operation, ...result });
    return refused.length ? EXIT.CONFLICT : EXIT.OK;
  }
  const jobsText = (n: number) => `${n} job${n === 1 ? '' : 's'}`;
  const states = (r: BulkResult) =>
    Object.entries(r.byState)
      .filter(([state, n]) => n && !(operation === 'delete' && state === 'running'))
      .map(([state, n]) => `${state} ${n}`)
      .join(', ');
  if (dryRun) {
    println(
      ctx.io,
      `would ${operation} ${jobsText(result.count)}${result.count ? ` (${states(result)})` : ''}; nothing was changed: add --yes to do it`,
    );
  } else {
    println(ctx.io, `${PAST[operation]} ${jobsText(result.count)}`);
    if ('running' in result && result.running) eprintln(ctx.io, `${result.running} of them running: their nodes abort them`);
    for (const r of refused.slice(0, 20))
      eprintln(ctx.io, `${r.id}: not retried, queue key "${r.queueKey}" is held${r.heldBy ? ` by job ${r.heldBy}` : ''}`);
    if (refused.length > 20) eprintln(ctx.io, `… and ${refused.length - 20} more not retried`);
  }
  if (result.more) {
    eprintln(
      ctx.io,
      `${result.matching} jobs match, more than --limit ${limit}: ${dryRun ? 'raise --limit to take them all' : 'run it again, or raise --limit'}`,
    );
  }
  if ('runningSkipped' in result && result.runningSkipped) {
    eprintln(ctx.io, `${jobsText(result.runningSkipped)} running left alone: running jobs are never deleted; --cancel them first`);
  }
  return refused.length ? EXIT.CONFLICT : EXIT.OK;
}

// ── retry ────────────────────────────────────────────────────────────────────────────────────

export const retry: Command = {
  name: 'retry',
  summary: 'Run failed or cancelled jobs again, with a fresh attempt budget.',
  args: '<job-id>...',
  description: `
Each job leaves history and is queued to run now, keeping its id, payload, keys and error history.
Its attempt count goes on and its maxAttempts is raised by --max-attempts (default: its job type's
maxAttempts). Exit code 0 when every job was retried, 3 when an id names no job, 5 when a job is
still live or completed (nothing to retry) or another live job holds its queue key. To retry by
filter: partita jobs --state failed --type TYPE --retry --yes.`,
  options: {
    'max-attempts': { type: 'string', arg: 'N', help: "attempts each job gets (default: its type's maxAttempts)" },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: ['partita retry 0192f0c4-…', 'partita retry "$id" --max-attempts 5 && partita status "$id" --wait'],
  async run(ctx) {
    const c = 'retry';
    if (ctx.positionals.length === 0) throw new UsageError('retry needs at least one job id', c);
    const ids = ctx.positionals.map((id) => checkId(id, c));
    const maxAttempts = int(str(ctx.values, 'max-attempts'), '--max-attempts', c, { min: 1, max: 1000 });
    return withClient(ctx, async (client) => {
      const results: { id: string; retried: boolean; state: JobState | null; error?: string }[] = [];
      let code: number = EXIT.OK;
      for (const id of ids) {
        let retried = false;
        let error: string | undefined;
        try {
          retried = await client.retry(id, maxAttempts !== undefined ? { maxAttempts } : {});
        } catch (err) {
          if (!(err instanceof DuplicateQueueKeyError)) throw err;
          error = err.message;
        }
        const state = (await client.job(id))?.state ?? null;
        results.push({ id, retried, state, ...(error ? { error } : {}) });
        if (state === null) code = Math.max(code, EXIT.NOT_FOUND);
        else if (!retried) code = EXIT.CONFLICT;
      }
      if (ctx.json) printJson(ctx.io, ids.length === 1 ? results[0] : results);
      else {
        for (const r of results) {
          if (r.state === null) eprintln(ctx.io, `${r.id}: no such job`);
          else if (r.retried) println(ctx.io, `${r.id}: retried (now ${r.state})`);
          else if (r.error) eprintln(ctx.io, `${r.id}: not retried: ${r.error}`);
          else eprintln(ctx.io, `${r.id}: ${r.state}; only failed and cancelled jobs are retried`);
        }
      }
      return code;
    });
  },
};

// ── migrate ──────────────────────────────────────────────────────────────────────────────────

export const migrate: Command = {
  name: 'migrate',
  summary: "Create or upgrade Partita's tables in the schema, the workflows' and schedules' too (nodes also do this on start).",
  description: 'Safe to run while nodes run: migrations take an advisory lock and apply each version once.',
  options: { ...CONNECTION_OPTIONS, ...COMMON_OPTIONS },
  async run(ctx) {
    // connect() migrates; its 'applied migration' log lines say which versions this run applied.
    const appliedNow: number[] = [];
    const logger = createLogger({
      level: 'info',
      hooks: {
        streamWrite(line: string) {
          for (const l of line.split('\n').filter(Boolean)) {
            try {
              const rec = JSON.parse(l) as { msg?: string; version?: number };
              if (rec.msg === 'applied migration' && typeof rec.version === 'number') appliedNow.push(rec.version);
            } catch {
              /* not ours */
            }
          }
          return '';
        },
      },
    });
    return withClient(
      ctx,
      async (client, conn) => {
        appliedNow.push(...(await client.admin.migrate()));
        // The tables of the node plugins (workflows, schedules), as a node would create them.
        await migratePlugins(client, await pluginsWithTables(), logger);
        const rows = await client.admin.migrations();
        const fresh = rows.filter((r) => appliedNow.includes(r.version));
        if (ctx.json) {
          printJson(ctx.io, {
            schema: conn.schema,
            versions: rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.appliedAt })),
            appliedNow: fresh.map((r) => r.version),
          });
        } else {
          for (const r of rows)
            println(
              ctx.io,
              `${String(r.version).padStart(4, '0')}_${r.name}  ${fresh.includes(r) ? 'applied now' : `applied ${r.appliedAt.toISOString()}`}`,
            );
          println(ctx.io, `schema "${conn.schema}" is at version ${rows.at(-1)?.version ?? 0}`);
        }
        return EXIT.OK;
      },
      logger,
    );
  },
};
