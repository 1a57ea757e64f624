/**
 * Schedules in Postgres: the SQL of sql/ops (one operation per file) and the firing transaction.
 * A firing locks the schedule's row, plans with the database's clock, claims each occurrence by its
 * primary key (schedule, fire time) and enqueues its job in the same transaction, so an occurrence
 * exists exactly when its job does, whichever node (or how many) tries.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, runOp, type Statement, type Tx } from '@partita/postgres';
import { processesOps } from '../sql.js';
import { parseCron } from './cron.js';
import { planFiring, type MisfirePolicy, type OverlapPolicy } from './plan.js';
import { UnknownScheduleError, type ResolvedSchedule } from './spec.js';

type OpName =
  | 'db_now'
  | 'jobs_live'
  | 'jobs_queues'
  | 'occurrence_claim'
  | 'occurrence_list'
  | 'occurrence_settle'
  | 'occurrences_claim_many'
  | 'occurrences_settle_many'
  | 'occurrences_prune'
  | 'schedule_failed'
  | 'schedule_fired'
  | 'schedule_get'
  | 'schedule_list'
  | 'schedule_lock'
  | 'schedule_pause'
  | 'schedule_remove'
  | 'schedule_resume'
  | 'schedule_upsert'
  | 'schedules_due'
  | 'schedules_fired_many'
  | 'schedules_lock_many';

/** A schedule as stored, with its state. */
export interface ScheduleRecord extends ResolvedSchedule {
  paused: boolean;
  /** declared: from a node's config or jobs module (re-synced at its start); api: schedules(client). */
  source: 'declared' | 'api';
  nextFireAt: Date | undefined;
  lastFireAt: Date | undefined;
  lastJobId: string | undefined;
  /** The last job is still queued, waiting or running (what overlap: skip looks at). */
  lastJobLive: boolean;
  firedCount: number;
  /** Occurrences passed over by the misfire policy (the cluster was down or late). */
  missedCount: number;
  /** Occurrences not enqueued because the last job was still live (overlap: skip). */
  overlapSkipped: number;
  /** Why the last firing failed (cleared by the next that works). */
  lastError: string | undefined;
  createdAt: Date;
  updatedAt: Date;
}

export interface Occurrence {
  fireAt: Date;
  jobId: string | undefined;
  outcome: 'enqueued' | 'overlap' | 'refused';
  manual: boolean;
}

export interface FiringResult {
  /** The schedule is gone or paused: nothing was done. */
  idle: boolean;
  enqueued: { fireAt: Date; jobId: string }[];
  missed: number;
  overlapSkipped: number;
  next: Date | undefined;
  /** True when the walk stopped short of now (a long backlog): fire again at once. */
  more: boolean;
}

export interface TriggerResult {
  fireAt: Date;
  /** Set when a job was enqueued. */
  jobId?: string;
  /** Why no job was enqueued: the last one is live (overlap: skip), or a queue key refused it. */
  skipped?: 'overlap' | 'refused';
}

interface ScheduleRow {
  id: string;
  cron: string;
  timezone: string;
  partition: string;
  queue: string | null;
  type: string;
  payload: unknown;
  misfire: MisfirePolicy;
  backfill_ms: string;
  overlap: OverlapPolicy;
  paused: boolean;
  source: 'declared' | 'api';
  accounted_until: Date;
  next_fire_at: Date | null;
  last_fire_at: Date | null;
  last_job_id: string | null;
  fired_count: string;
  missed_count: string;
  overlap_skipped: string;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  last_job_live: boolean;
}

function toRecord(row: ScheduleRow): ScheduleRecord {
  return {
    id: row.id,
    cron: row.cron,
    timezone: row.timezone,
    partition: row.partition,
    queue: row.queue ?? undefined,
    type: row.type,
    payload: row.payload,
    misfire: row.misfire,
    backfillMs: Number(row.backfill_ms),
    overlap: row.overlap,
    paused: row.paused,
    source: row.source,
    nextFireAt: row.next_fire_at ?? undefined,
    lastFireAt: row.last_fire_at ?? undefined,
    lastJobId: row.last_job_id ?? undefined,
    lastJobLive: row.last_job_live,
    firedCount: Number(row.fired_count),
    missedCount: Number(row.missed_count),
    overlapSkipped: Number(row.overlap_skipped),
    lastError: row.last_error ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The notification channel the leader listens on (the schema's, shortened past Postgres's 63 bytes). */
export function schedulesChannel(schema: string): string {
  const plain = `partita_schedules_${schema}`;
  return Buffer.byteLength(plain) <= 63 ? plain : `partita_schedules_${createHash('sha1').update(schema).digest('hex').slice(0, 32)}`;
}

/** What a firing needs from the job store: a transaction whose enqueue takes part in it, and wake-ups. */
export interface SchedulesJobStore {
  withTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  notifyEnqueued(partition: string, queues: Iterable<string>): Promise<void>;
}

export class ScheduleStore {
  readonly channel: string;
  private readonly ops: Record<OpName, Statement>;

  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    private readonly jobs: SchedulesJobStore,
  ) {
    this.ops = processesOps<OpName>(schema);
    this.channel = schedulesChannel(schema);
  }

  /** Runs an op as a named statement (prepared once per connection). */
  private run<R extends pg.QueryResultRow>(op: OpName, db: pg.Pool | pg.PoolClient, values: unknown[]): Promise<R[]> {
    return runOp<R>(this.ops[op], db, values);
  }

  async now(db: pg.Pool | pg.PoolClient = this.pool): Promise<Date> {
    return (await this.run<{ now: Date }>('db_now', db, []))[0]!.now;
  }

  /**
   * Creates or replaces a schedule. `paused` undefined keeps a stored schedule's pause (so a node
   * re-syncing its declared schedules does not resume one an operator paused). Returns true when created.
   */
  async upsert(s: ResolvedSchedule, source: 'declared' | 'api', paused?: boolean): Promise<boolean> {
    const cron = parseCron(s.cron, s.timezone);
    return inTransaction(this.pool, async (client) => {
      // The same clock as the row's accounted_until (now() of this transaction).
      const now = await this.now(client);
      const rows = await this.run<{ created: boolean }>('schedule_upsert', client, [
        s.id,
        s.cron,
        s.timezone,
        s.partition,
        s.queue ?? null,
        s.type,
        JSON.stringify(s.payload ?? null),
        s.misfire,
        s.backfillMs,
        s.overlap,
        source,
        cron.nextAfter(now) ?? null,
        paused ?? null,
        this.channel,
      ]);
      return rows[0]!.created;
    });
  }

  async get(id: string): Promise<ScheduleRecord | undefined> {
    const [row] = await this.run<ScheduleRow>('schedule_get', this.pool, [id]);
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ScheduleRecord[]> {
    return (await this.run<ScheduleRow>('schedule_list', this.pool, [])).map(toRecord);
  }

  async occurrences(id: string, limit = 20): Promise<Occurrence[]> {
    const rows = await this.run<{ fire_at: Date; job_id: string | null; outcome: Occurrence['outcome']; manual: boolean }>(
      'occurrence_list',
      this.pool,
      [id, limit],
    );
    return rows.map((r) => ({ fireAt: r.fire_at, jobId: r.job_id ?? undefined, outcome: r.outcome, manual: r.manual }));
  }

  async remove(id: string): Promise<boolean> {
    return (await this.run('schedule_remove', this.pool, [id, this.channel])).length > 0;
  }

  async pause(id: string): Promise<void> {
    if ((await this.run('schedule_pause', this.pool, [id, this.channel])).length === 0) throw new UnknownScheduleError(id);
  }

  async resume(id: string): Promise<void> {
    const record = await this.get(id);
    if (!record) throw new UnknownScheduleError(id);
    const next = parseCron(record.cron, record.timezone).nextAfter(await this.now());
    if ((await this.run('schedule_resume', this.pool, [id, next ?? null, this.channel])).length === 0) throw new UnknownScheduleError(id);
  }

  /** Due schedules (ids) and the earliest fire time of the rest, by the database's clock. */
  async due(earlyMs: number, limit: number): Promise<{ due: string[]; nextAt: Date | undefined; dbNow: Date; full: boolean }> {
    const rows = await this.run<{ id: string; next_fire_at: Date; db_now: Date; due: boolean }>('schedules_due', this.pool, [
      earlyMs,
      limit,
    ]);
    const due = rows.filter((r) => r.due).map((r) => r.id);
    const waiting = rows.find((r) => !r.due);
    return {
      due,
      nextAt: waiting?.next_fire_at,
      dbNow: rows[0]?.db_now ?? (await this.now()),
      full: rows.length === limit && waiting === undefined,
    };
  }

  async recordFailure(id: string, message: string): Promise<void> {
    await this.run('schedule_failed', this.pool, [id, message.slice(0, 2000)]);
  }

  async prune(olderThanMs: number): Promise<number> {
    const res = await this.pool.query({
      name: this.ops.occurrences_prune.name,
      text: this.ops.occurrences_prune.text,
      values: [olderThanMs],
    });
    return res.rowCount ?? 0;
  }

  /** Fires what is due of one schedule (see planFiring), in one transaction: fireMany of one. */
  async fire(id: string, graceMs: number): Promise<FiringResult> {
    return (await this.fireMany([id], graceMs)).get(id)!;
  }

  /**
   * Fires what is due of many schedules in one transaction and a fixed number of round trips (lock,
   * claim, enqueue, settle, record, wake), whatever their number (see planFiring). Within one
   * firing, an occurrence after one whose job a queue key refused counts the refused one as live for
   * overlap: skip.
   */
  async fireMany(ids: readonly string[], graceMs: number): Promise<Map<string, FiringResult>> {
    const woken = new Map<string, Set<string>>();
    const results = new Map<string, FiringResult>();
    if (ids.length === 0) return results;
    await this.jobs.withTransaction(async (tx) => {
      const rows = await this.run<ScheduleRow & { db_now: Date }>('schedules_lock_many', tx.client, [ids]);
      await this.refreshLiveness(tx, rows);
      const plans = new Map<string, { s: ScheduleRecord; plan: ReturnType<typeof planFiring>; dbNow: Date }>();
      for (const row of rows) {
        if (row.paused) continue;
        const s = toRecord(row);
        const plan = planFiring({
          cron: parseCron(s.cron, s.timezone),
          misfire: s.misfire,
          backfillMs: s.backfillMs,
          graceMs,
          accountedUntil: row.accounted_until,
          now: row.db_now,
        });
        plans.set(s.id, { s, plan, dbNow: row.db_now });
      }
      const wanted = [...plans.values()].flatMap(({ s, plan }) => plan.fire.map((fireAt) => [s.id, fireAt] as const));
      const claimed = new Set<string>();
      if (wanted.length) {
        const got = await this.run<{ schedule_id: string; fire_at: Date }>('occurrences_claim_many', tx.client, [
          wanted.map(([id]) => id),
          wanted.map(([, at]) => at),
        ]);
        for (const r of got) claimed.add(`${r.schedule_id}\u0000${r.fire_at.getTime()}`);
      }
      const toEnqueue: { id: string; fireAt: Date }[] = [];
      const settle: { id: string; fireAt: Date; jobId: string | null; outcome: Occurrence['outcome'] }[] = [];
      const overlapCount = new Map<string, number>();
      for (const { s, plan } of plans.values()) {
        let live = s.overlap === 'skip' && s.lastJobLive;
        for (const fireAt of plan.fire) {
          if (!claimed.has(`${s.id}\u0000${fireAt.getTime()}`)) continue; // another firing owns it
          if (live) {
            settle.push({ id: s.id, fireAt, jobId: null, outcome: 'overlap' });
            overlapCount.set(s.id, (overlapCount.get(s.id) ?? 0) + 1);
            continue;
          }
          toEnqueue.push({ id: s.id, fireAt });
          live = s.overlap === 'skip';
        }
      }
      const outcomes = toEnqueue.length
        ? await tx.enqueue(
            toEnqueue.map(({ id }) => {
              const s = plans.get(id)!.s;
              return { partition: s.partition, type: s.type, payload: s.payload, ...(s.queue ? { queue: s.queue } : {}) };
            }),
          )
        : [];
      const enqueued = new Map<string, { fireAt: Date; jobId: string }[]>();
      toEnqueue.forEach(({ id, fireAt }, i) => {
        const outcome = outcomes[i]!;
        if (outcome.refused) settle.push({ id, fireAt, jobId: null, outcome: 'refused' });
        else {
          settle.push({ id, fireAt, jobId: outcome.id, outcome: 'enqueued' });
          enqueued.set(id, [...(enqueued.get(id) ?? []), { fireAt, jobId: outcome.id }]);
        }
      });
      if (settle.length) {
        await this.run('occurrences_settle_many', tx.client, [
          settle.map((x) => x.id),
          settle.map((x) => x.fireAt),
          settle.map((x) => x.jobId),
          settle.map((x) => x.outcome),
        ]);
      }
      const fired = [...plans.values()];
      if (fired.length) {
        await this.run('schedules_fired_many', tx.client, [
          fired.map(({ s }) => s.id),
          fired.map(({ plan }) => plan.accountedUntil),
          fired.map(({ plan }) => plan.next ?? null),
          fired.map(({ plan }) => (plan.fire.length ? plan.fire[plan.fire.length - 1] : null)),
          fired.map(({ s }) => enqueued.get(s.id)?.at(-1)?.jobId ?? null),
          fired.map(({ s }) => enqueued.get(s.id)?.length ?? 0),
          fired.map(({ plan }) => plan.missed),
          fired.map(({ s }) => overlapCount.get(s.id) ?? 0),
        ]);
      }
      const allJobs = [...enqueued.values()].flat();
      if (allJobs.length) await this.collectQueues(tx, allJobs, woken);
      for (const id of ids) {
        const p = plans.get(id);
        if (!p) {
          results.set(id, { idle: true, enqueued: [], missed: 0, overlapSkipped: 0, next: undefined, more: false });
          continue;
        }
        results.set(id, {
          idle: false,
          enqueued: enqueued.get(id) ?? [],
          missed: p.plan.missed,
          overlapSkipped: overlapCount.get(id) ?? 0,
          next: p.plan.next,
          more: p.plan.next !== undefined && p.plan.next.getTime() <= p.dbNow.getTime(),
        });
      }
    });
    await this.wake(woken);
    return results;
  }

  /** Runs the schedule now, as an extra occurrence at the database's clock (overlap still applies). */
  async trigger(id: string): Promise<TriggerResult> {
    const woken = new Map<string, Set<string>>();
    const result = await this.jobs.withTransaction(async (tx) => {
      const [row] = await this.run<ScheduleRow & { db_now: Date }>('schedule_lock', tx.client, [id]);
      if (!row) throw new UnknownScheduleError(id);
      await this.refreshLiveness(tx, [row]);
      const s = toRecord(row);
      const fireAt = row.db_now;
      const outcome = await this.claim(tx, s, fireAt, true, s.overlap === 'skip' && s.lastJobLive);
      await this.run('schedule_fired', tx.client, [
        id,
        row.accounted_until,
        row.next_fire_at,
        fireAt,
        outcome.jobId ?? null,
        outcome.jobId ? 1 : 0,
        0,
        outcome.skipped === 'overlap' ? 1 : 0,
      ]);
      if (outcome.jobId) await this.collectQueues(tx, [{ jobId: outcome.jobId }], woken);
      return { fireAt, ...outcome };
    });
    await this.wake(woken);
    return result;
  }

  /**
   * Claims one occurrence and, when it is ours and no live job blocks it, enqueues its job in the
   * same transaction. A claim that finds the key taken did nothing: another firing owns it.
   */
  private async claim(
    tx: Tx,
    s: ScheduleRecord,
    fireAt: Date,
    manual: boolean,
    blocked: boolean,
  ): Promise<{ jobId?: string; skipped?: 'overlap' | 'refused'; taken?: true }> {
    const claimed = await this.run('occurrence_claim', tx.client, [s.id, fireAt, manual]);
    if (claimed.length === 0) return { taken: true };
    if (blocked) {
      await this.run('occurrence_settle', tx.client, [s.id, fireAt, null, 'overlap']);
      return { skipped: 'overlap' };
    }
    const [outcome] = await tx.enqueue([
      { partition: s.partition, type: s.type, payload: s.payload, ...(s.queue ? { queue: s.queue } : {}) },
    ]);
    if (outcome!.refused) {
      await this.run('occurrence_settle', tx.client, [s.id, fireAt, null, 'refused']);
      return { skipped: 'refused' };
    }
    await this.run('occurrence_settle', tx.client, [s.id, fireAt, outcome!.id, 'enqueued']);
    return { jobId: outcome!.id };
  }

  /**
   * Reads again whether the locked schedules' last jobs are live: when the lock was waited for, the
   * lock statement's own answer predates the firing that held it (overlap: skip would then enqueue
   * beside the job that firing just enqueued).
   */
  private async refreshLiveness(tx: Tx, rows: ScheduleRow[]): Promise<void> {
    const last = rows.filter((r) => r.last_job_id && r.overlap === 'skip').map((r) => r.last_job_id!);
    if (last.length === 0) return;
    const live = new Set((await this.run<{ id: string }>('jobs_live', tx.client, [last])).map((r) => r.id));
    for (const r of rows) if (r.last_job_id && r.overlap === 'skip') r.last_job_live = live.has(r.last_job_id);
  }

  private async collectQueues(tx: Tx, jobs: { jobId: string }[], into: Map<string, Set<string>>): Promise<void> {
    const rows = await this.run<{ partition: string; queue: string }>('jobs_queues', tx.client, [jobs.map((j) => j.jobId)]);
    for (const r of rows) into.set(r.partition, (into.get(r.partition) ?? new Set()).add(r.queue));
  }

  /** After the commit: engines polling would find the jobs anyway; this makes them start now. */
  private async wake(queues: Map<string, Set<string>>): Promise<void> {
    for (const [partition, set] of queues) await this.jobs.notifyEnqueued(partition, set).catch(() => undefined);
  }
}
