/**
 * What the dashboard learns from the cluster's job events: per-minute counters for the overview's
 * charts (kept in memory, so an open dashboard never counts history in Postgres; the hour before
 * it started is read from history once, at start), and the fan-out of "something changed" to the
 * pages open over server-sent events.
 */
import type { ServerResponse } from 'node:http';
import type { Client, JobEvent } from '@partita/client';
import { clientBus } from '@partita/client/internal';
import { describeError, type Logger } from '@partita/core';
import { ANNOUNCE_KIND, processPattern, RUN_EVENT_KIND } from '@partita/processes';

/** Reads the charts' minutes finished in [from, to) from history (one query, bucketed by minute). */
export type HistoryReader = (from: Date, to: Date) => Promise<HistoryMinute[]>;

/** A minute as history gives it (no starts: history holds a job's last start only). */
export type HistoryMinute = Omit<Minute, 'started' | 'retried'>;

/** One minute of the chart. */
export interface Minute {
  /** Start of the minute, ms since the epoch. */
  at: number;
  completed: number;
  failed: number;
  retried: number;
  started: number;
  /** Sum and count of enqueue → start waits and of run times, ms. */
  waitMs: number;
  waits: number;
  runMs: number;
  runs: number;
}

const WINDOW_MINUTES = 60;
/** Started jobs remembered for run times; past this the oldest are forgotten (their run time is not charted). */
const MAX_RUNNING_TRACKED = 10_000;
/** Pages are told of changes at most this often, however many events arrive. */
const PUSH_EVERY_MS = 1000;
const HEARTBEAT_MS = 15_000;

/** The creation time a UUIDv7 carries in its first 48 bits. */
export function idTime(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

export class Live {
  private readonly minutes: Minute[] = [];
  private readonly startedAt = new Map<string, number>();
  private readonly streams = new Set<ServerResponse>();
  private readonly unsubscribes: (() => Promise<void>)[] = [];
  private subscribing: Promise<void> | undefined;
  private filling: Promise<void> | undefined;
  private pending: { kinds: Set<string>; jobs: Set<string>; processes: Set<string> } | undefined;
  private pushTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  /** Events before this time are counted already (read from history at start). */
  private countedBefore = 0;
  /** Whether events arrive (else pages poll). */
  subscribed = false;
  /** Why the hour before the dashboard started is missing from the charts, if it is. */
  historyProblem: string | undefined;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    private readonly history?: HistoryReader,
  ) {
    this.heartbeat = setInterval(() => {
      for (const res of this.streams) res.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Subscribes once, at the first page served (a dashboard never opened costs nothing). */
  listen(): Promise<void> {
    this.subscribing ??= Promise.allSettled([this.client.subscribe({}, (event) => this.record(event)), this.subscribeProcesses()]).then(
      async ([jobs, processes]) => {
        for (const r of [jobs, processes]) if (r.status === 'fulfilled' && r.value) this.unsubscribes.push(r.value);
        if (this.closed) return void (await this.unsubscribeAll());
        this.subscribed = jobs.status === 'fulfilled';
        // No bus (or it is down): the pages poll instead.
        if (jobs.status === 'rejected')
          this.logger.warn({ err: describeError(jobs.reason).message }, 'dashboard: no job events; pages poll');
        if (processes.status === 'rejected')
          this.logger.warn(
            { err: describeError(processes.reason).message },
            'dashboard: no process events; process pages refresh on job events only',
          );
      },
    );
    return this.subscribing;
  }

  /**
   * listen(), then the last hour filled from history, once: what finished before the subscription
   * from there, what after from the events, so nothing is counted twice.
   */
  start(): Promise<void> {
    this.filling ??= this.listen().then(() => this.fillFromHistory());
    return this.filling;
  }

  /**
   * A process's run starting or ending, and its pause, resume and trigger, change its pages though no
   * job event says so (a run need not enqueue anything).
   */
  private subscribeProcesses(): Promise<(() => Promise<void>) | undefined> {
    const bus = clientBus(this.client);
    if (!bus) return Promise.resolve(undefined);
    return bus.subscribe<{ process?: unknown }>(
      processPattern(bus.cluster),
      (data) => this.changed('process', undefined, typeof data?.process === 'string' ? data.process : undefined),
      { kinds: [RUN_EVENT_KIND, ANNOUNCE_KIND] },
    );
  }

  private async unsubscribeAll(): Promise<void> {
    const offs = this.unsubscribes.splice(0);
    await Promise.all(offs.map((off) => off().catch(() => undefined)));
  }

  private async fillFromHistory(): Promise<void> {
    if (!this.history || this.closed) return;
    const to = Date.now();
    const from = Math.floor(to / 60_000) * 60_000 - (WINDOW_MINUTES - 1) * 60_000;
    try {
      const rows = await this.history(new Date(from), new Date(to));
      this.countedBefore = to;
      for (const r of rows) {
        const m = this.minute(Number(r.at));
        m.completed += Number(r.completed);
        m.failed += Number(r.failed);
        m.waitMs += Number(r.waitMs);
        m.waits += Number(r.waits);
        m.runMs += Number(r.runMs);
        m.runs += Number(r.runs);
      }
    } catch (err) {
      this.historyProblem = describeError(err).message;
      this.logger.warn({ err: this.historyProblem }, 'dashboard: the last hour could not be read from history; charts start now');
    }
  }

  /** The last hour, oldest first, a slot for every minute. */
  window(now = Date.now()): Minute[] {
    const last = Math.floor(now / 60_000) * 60_000;
    const byAt = new Map(this.minutes.map((m) => [m.at, m]));
    const out: Minute[] = [];
    for (let i = WINDOW_MINUTES - 1; i >= 0; i--) {
      const at = last - i * 60_000;
      out.push(byAt.get(at) ?? emptyMinute(at));
    }
    return out;
  }

  record(event: JobEvent): void {
    const at = event.at instanceof Date ? event.at.getTime() : Date.now();
    // Only what started is tracked for an event history counted already (a late delivery).
    const m = at < this.countedBefore ? emptyMinute(at) : this.minute(at);
    switch (event.kind) {
      case 'started': {
        m.started++;
        if (event.attempt === 1) {
          const wait = at - idTime(event.id);
          if (wait >= 0) {
            m.waitMs += wait;
            m.waits++;
          }
        }
        if (this.startedAt.size >= MAX_RUNNING_TRACKED) this.startedAt.delete(this.startedAt.keys().next().value!);
        this.startedAt.set(event.id, at);
        break;
      }
      case 'completed':
      case 'failed':
      case 'retrying': {
        if (event.kind === 'completed') m.completed++;
        else if (event.kind === 'failed') m.failed++;
        else m.retried++;
        const began = this.startedAt.get(event.id);
        if (began !== undefined) {
          this.startedAt.delete(event.id);
          m.runMs += at - began;
          m.runs++;
        }
        break;
      }
      case 'cancelled':
        this.startedAt.delete(event.id);
        break;
      default:
        break;
    }
    this.changed(event.kind, event.id);
  }

  private minute(at: number): Minute {
    const start = Math.floor(at / 60_000) * 60_000;
    let m = this.minutes.find((x) => x.at === start);
    if (!m) {
      m = emptyMinute(start);
      this.minutes.push(m);
      this.minutes.sort((a, b) => a.at - b.at);
      const horizon = Date.now() - (WINDOW_MINUTES + 1) * 60_000;
      while (this.minutes.length && this.minutes[0]!.at < horizon) this.minutes.shift();
    }
    return m;
  }

  /** Tells the open pages, at most once a second, which kinds of events and which jobs and processes changed. */
  changed(kind: string, jobId?: string, process?: string): void {
    if (this.streams.size === 0) return;
    this.pending ??= { kinds: new Set(), jobs: new Set(), processes: new Set() };
    this.pending.kinds.add(kind);
    if (jobId && this.pending.jobs.size < 100) this.pending.jobs.add(jobId);
    if (process && this.pending.processes.size < 100) this.pending.processes.add(process);
    this.pushTimer ??= setTimeout(() => {
      this.pushTimer = undefined;
      const batch = this.pending!;
      this.pending = undefined;
      const data = JSON.stringify({ kinds: [...batch.kinds], jobs: [...batch.jobs], processes: [...batch.processes] });
      for (const res of this.streams) res.write(`event: change\ndata: ${data}\n\n`);
    }, PUSH_EVERY_MS);
  }

  /** Serves one page's event stream. */
  stream(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // A stream with no events (no bus) tells the page to poll instead.
    res.write(`retry: 5000\nevent: hello\ndata: ${JSON.stringify({ live: this.subscribed })}\n\n`);
    this.streams.add(res);
    res.on('close', () => this.streams.delete(res));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    if (this.pushTimer) clearTimeout(this.pushTimer);
    for (const res of this.streams) res.end();
    this.streams.clear();
    await this.subscribing;
    await this.unsubscribeAll();
  }
}

function emptyMinute(at: number): Minute {
  return { at, completed: 0, failed: 0, retried: 0, started: 0, waitMs: 0, waits: 0, runMs: 0, runs: 0 };
}
