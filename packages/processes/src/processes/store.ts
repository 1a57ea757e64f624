/**
 * Background processes in Postgres: the SQL of sql/ops (one operation per file). Every write a run
 * makes happens in a transaction that first locks the process row and checks that the run still
 * owns it (owner and epoch), so a run that lost ownership writes nothing; admin changes lock the same
 * row, so they are ordered with a run's writes and bump the settings version the run merges by.
 */
import type pg from 'pg';
import { inTransaction, runOp, type Statement } from '@partita/postgres';
import { processesOps } from '../sql.js';
import { UnknownProcessError } from './errors.js';
import type { RunState, RunStatus, WorkStatus } from './define.js';

type OpName =
  | 'process_changed'
  | 'process_claim'
  | 'process_define'
  | 'process_finish'
  | 'process_get'
  | 'process_list'
  | 'process_lock'
  | 'process_pause'
  | 'process_peek'
  | 'process_release'
  | 'process_renew'
  | 'process_reset_stats'
  | 'process_save'
  | 'process_settings'
  | 'process_trigger'
  | 'work_drop_cleaned'
  | 'work_list'
  | 'work_prune_dropped'
  | 'work_register'
  | 'work_save_status'
  | 'work_unregister'
  | 'work_counts';

type Db = pg.Pool | pg.PoolClient;

export interface ClaimedRun {
  epoch: number;
  runNo: number;
  startedAt: Date;
  resumed: boolean;
  run: RunStatus | null;
  settings: unknown;
  settingsVersion: number;
  runSettingsVersion: number;
  scheduleMs: number;
}

export interface Peek {
  scheduleMs: number;
  paused: boolean;
  leaseExpiresAt: Date | undefined;
  unfinished: boolean;
  triggered: boolean;
  dbNow: Date;
}

export interface StoredWork {
  name: string;
  list: 'active' | 'cleanup' | 'dropped';
  params: unknown;
  modifiedAt: Date;
  listedAt: Date;
  status: WorkStatus | null;
}

export interface ProcessRow {
  name: string;
  schedule_ms: string;
  settings: unknown;
  settings_version: string;
  paused: boolean;
  triggered_at: Date | null;
  owner: string | null;
  owner_epoch: string;
  lease_expires_at: Date | null;
  lease_live: boolean | null;
  run_no: string;
  run_started_at: Date | null;
  run_finished_at: Date | null;
  progress_at: Date | null;
  run_state: RunState | null;
  run_settings_version: string;
  run: RunStatus | null;
  aggregate: Record<string, number>;
  created_at: Date;
  updated_at: Date;
}

/** What a run's fenced write sees once it holds the row lock. */
export interface LockedProcess {
  owner: string | null;
  epoch: number;
  settings: unknown;
  settingsVersion: number;
  scheduleMs: number;
  paused: boolean;
  /** The database's now() in the write's transaction: the clock the run's start was taken with. */
  dbNow: Date;
}

export class ProcessStore {
  private readonly ops: Record<OpName, Statement>;

  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
  ) {
    this.ops = processesOps<OpName>(schema);
  }

  run<R extends pg.QueryResultRow>(op: OpName, db: Db, values: unknown[]): Promise<R[]> {
    return runOp<R>(this.ops[op], db, values);
  }

  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  async define(name: string, scheduleMs: number, settings: unknown): Promise<void> {
    await this.run('process_define', this.pool, [name, scheduleMs, JSON.stringify(settings ?? {})]);
  }

  async claim(name: string, owner: string, leaseMs: number): Promise<ClaimedRun | undefined> {
    const [row] = await this.run<{
      owner_epoch: string;
      run_no: string;
      run_started_at: Date;
      resumed: boolean;
      run: RunStatus | null;
      settings: unknown;
      settings_version: string;
      run_settings_version: string;
      schedule_ms: string;
    }>('process_claim', this.pool, [name, owner, leaseMs]);
    if (!row) return undefined;
    return {
      epoch: Number(row.owner_epoch),
      runNo: Number(row.run_no),
      startedAt: row.run_started_at,
      resumed: row.resumed,
      run: row.run,
      settings: row.settings,
      settingsVersion: Number(row.settings_version),
      runSettingsVersion: Number(row.run_settings_version),
      scheduleMs: Number(row.schedule_ms),
    };
  }

  async peek(name: string): Promise<Peek | undefined> {
    const [row] = await this.run<{
      schedule_ms: string;
      paused: boolean;
      lease_expires_at: Date | null;
      unfinished: boolean;
      triggered: boolean | null;
      db_now: Date;
    }>('process_peek', this.pool, [name]);
    if (!row) return undefined;
    return {
      scheduleMs: Number(row.schedule_ms),
      paused: row.paused,
      leaseExpiresAt: row.lease_expires_at ?? undefined,
      unfinished: row.unfinished,
      triggered: row.triggered === true,
      dbNow: row.db_now,
    };
  }

  /** False: the run lost ownership. */
  async renew(name: string, owner: string, epoch: number, leaseMs: number): Promise<boolean> {
    return (await this.run('process_renew', this.pool, [name, owner, epoch, leaseMs])).length > 0;
  }

  async lock(client: pg.PoolClient, name: string): Promise<LockedProcess | undefined> {
    const [row] = await this.run<{
      owner: string | null;
      owner_epoch: string;
      settings: unknown;
      settings_version: string;
      schedule_ms: string;
      paused: boolean;
      db_now: Date;
    }>('process_lock', client, [name]);
    if (!row) return undefined;
    return {
      owner: row.owner,
      epoch: Number(row.owner_epoch),
      settings: row.settings,
      settingsVersion: Number(row.settings_version),
      scheduleMs: Number(row.schedule_ms),
      paused: row.paused,
      dbNow: row.db_now,
    };
  }

  async save(client: pg.PoolClient, name: string, owner: string, epoch: number, run: RunStatus, version: number, leaseMs: number) {
    return (await this.run('process_save', client, [name, owner, epoch, JSON.stringify(run), version, leaseMs])).length > 0;
  }

  async finish(
    client: pg.PoolClient,
    name: string,
    owner: string,
    epoch: number,
    run: RunStatus,
    version: number,
    state: RunState,
    aggregate: Record<string, number>,
  ) {
    return (await this.run('process_finish', client, [name, owner, epoch, JSON.stringify(run), version, state, JSON.stringify(aggregate)]))
      .length;
  }

  async release(client: pg.PoolClient, name: string, owner: string, epoch: number, run: RunStatus, version: number) {
    return (await this.run('process_release', client, [name, owner, epoch, JSON.stringify(run), version])).length > 0;
  }

  async aggregateOf(client: pg.PoolClient, name: string): Promise<Record<string, number>> {
    const [row] = await this.run<ProcessRow>('process_get', client, [name]);
    return row?.aggregate ?? {};
  }

  async saveStatuses(client: pg.PoolClient, process: string, statuses: [string, WorkStatus | undefined][]): Promise<void> {
    if (statuses.length === 0) return;
    await this.run('work_save_status', client, [
      process,
      statuses.map(([n]) => n),
      statuses.map(([, s]) => (s === undefined ? null : JSON.stringify(s))),
    ]);
  }

  async dropCleaned(client: pg.PoolClient, process: string, names: string[]): Promise<void> {
    if (names.length) await this.run('work_drop_cleaned', client, [process, names]);
  }

  async pruneDropped(client: pg.PoolClient, process: string, retentionMs: number): Promise<void> {
    await this.run('work_prune_dropped', client, [process, retentionMs]);
  }

  async work(process: string, lists: readonly StoredWork['list'][], db: Db = this.pool): Promise<StoredWork[]> {
    const rows = await this.run<{
      name: string;
      list: StoredWork['list'];
      params: unknown;
      modified_at: Date;
      listed_at: Date;
      status: WorkStatus | null;
    }>('work_list', db, [process, lists]);
    return rows.map((r) => ({
      name: r.name,
      list: r.list,
      params: r.params,
      modifiedAt: r.modified_at,
      listedAt: r.listed_at,
      status: r.status,
    }));
  }

  /** process → list → count, for every process in one query. */
  async workCounts(): Promise<Map<string, Record<StoredWork['list'], number>>> {
    const out = new Map<string, Record<StoredWork['list'], number>>();
    for (const r of await this.run<{ process: string; list: StoredWork['list']; n: number }>('work_counts', this.pool, [])) {
      const counts = out.get(r.process) ?? { active: 0, cleanup: 0, dropped: 0 };
      counts[r.list] = r.n;
      out.set(r.process, counts);
    }
    return out;
  }

  async get(name: string): Promise<ProcessRow | undefined> {
    return (await this.run<ProcessRow>('process_get', this.pool, [name]))[0];
  }

  async list(): Promise<ProcessRow[]> {
    return this.run<ProcessRow>('process_list', this.pool, []);
  }

  /**
   * An admin change to the work items: applied with the version bump in one transaction, or rolled
   * back when it changed nothing (registering again with equal params). True when something changed.
   */
  async changeWork(process: string, op: 'work_register' | 'work_unregister', values: unknown[]): Promise<boolean> {
    const unchanged = Symbol('unchanged');
    try {
      return await this.transaction(async (client) => {
        if ((await this.run('process_changed', client, [process])).length === 0) throw new UnknownProcessError(process);
        if ((await this.run(op, client, [process, ...values])).length === 0) throw unchanged;
        return true;
      });
    } catch (err) {
      if (err === unchanged) return false;
      throw err;
    }
  }

  async updateSettings(name: string, settings: unknown, scheduleMs: number | undefined): Promise<void> {
    const rows = await this.run('process_settings', this.pool, [
      name,
      settings === undefined ? null : JSON.stringify(settings),
      scheduleMs ?? null,
    ]);
    if (rows.length === 0) throw new UnknownProcessError(name);
  }

  async setPaused(name: string, paused: boolean): Promise<void> {
    if ((await this.run('process_pause', this.pool, [name, paused])).length === 0) throw new UnknownProcessError(name);
  }

  async trigger(name: string): Promise<void> {
    if ((await this.run('process_trigger', this.pool, [name])).length === 0) throw new UnknownProcessError(name);
  }

  async resetStats(name: string): Promise<void> {
    if ((await this.run('process_reset_stats', this.pool, [name])).length === 0) throw new UnknownProcessError(name);
  }
}
