/**
 * `processes(client)`: background processes seen and steered from anywhere with a client (a node's
 * own, `connect()`, the CLI, the dashboard). Changes go to Postgres and are announced on the bus so
 * that the owner of a run merges them at once (and nodes look at a trigger at once); without a bus
 * the owner merges at its next progress save and a trigger waits for a node's next look.
 */
import type { Client } from '@partita/client';
import { clientBus, clientStore } from '@partita/client/internal';
import { ValidationError } from '@partita/core';
import type { ErrorRecord, RunStatus, WorkStatus } from './define.js';
import { ANNOUNCE_KIND, announceSubject, type ProcessAnnouncement } from './runner.js';
import { UnknownProcessError } from './errors.js';
import { ProcessStore, type ProcessRow, type StoredWork } from './store.js';

/** A work item as listed (plain JSON-serialisable data). */
export interface ProcessWorkRecord {
  name: string;
  list: 'active' | 'cleanup' | 'dropped';
  params: unknown;
  modifiedAt: string;
  listedAt: string;
  status: WorkStatus | null;
}

/** A process as listed: its settings, owner, last (or current) run and aggregate stats. */
export interface ProcessRecord {
  name: string;
  scheduleMs: number;
  settings: unknown;
  settingsVersion: number;
  paused: boolean;
  /** running: a run holds a live lease; stalled: a run is unfinished and its owner's lease ran out (it will be resumed). */
  state: 'idle' | 'running' | 'stalled' | 'paused';
  owner: { id: string; epoch: number; leaseExpiresAt: string | null } | null;
  lastRun: {
    runNo: number;
    state: RunStatus['state'] | null;
    startedAt: string | null;
    progressAt: string | null;
    finishedAt: string | null;
    errors: ErrorRecord | null;
    stats: Record<string, number>;
    resumes: number;
  } | null;
  aggregate: Record<string, number>;
  triggeredAt: string | null;
  counts: { active: number; cleanup: number; dropped: number };
  /** Only from get(): every work item. */
  work?: ProcessWorkRecord[];
  updatedAt: string;
}

export interface Processes {
  /** Adds a work item (idempotent on equal params; new params start its status over). True when something changed. */
  registerWork(process: string, name: string, params?: unknown): Promise<boolean>;
  /** Moves a work item to cleanup: cleanupWork runs for it in the next run, then it is dropped. */
  unregisterWork(process: string, name: string): Promise<boolean>;
  /** Replaces the settings (and the schedule when given); a running owner merges them. */
  updateSettings(process: string, settings: unknown, opts?: { scheduleMs?: number }): Promise<void>;
  get(process: string): Promise<ProcessRecord | undefined>;
  list(): Promise<ProcessRecord[]>;
  /** Asks for a run now (a run under way finishes first; then one more starts). */
  trigger(process: string): Promise<void>;
  /** No run starts while paused; a run under way stops at its next progress save (state incomplete). */
  pause(process: string): Promise<void>;
  resume(process: string): Promise<void>;
  /** Clears the stats aggregated over runs. */
  resetStats(process: string): Promise<void>;
}

const stores = new WeakMap<Client, ProcessStore>();

export function processStoreOf(client: Client): ProcessStore {
  let store = stores.get(client);
  if (!store) {
    const s = clientStore(client);
    store = new ProcessStore(s.pool, s.schema);
    stores.set(client, store);
  }
  return store;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

function toWork(w: StoredWork): ProcessWorkRecord {
  return {
    name: w.name,
    list: w.list,
    params: w.params,
    modifiedAt: w.modifiedAt.toISOString(),
    listedAt: w.listedAt.toISOString(),
    status: w.status,
  };
}

export function toProcessRecord(row: ProcessRow, counts: ProcessRecord['counts']): ProcessRecord {
  const unfinished = row.run_started_at !== null && row.run_finished_at === null;
  return {
    name: row.name,
    scheduleMs: Number(row.schedule_ms),
    settings: row.settings,
    settingsVersion: Number(row.settings_version),
    paused: row.paused,
    state: unfinished ? (row.lease_live ? 'running' : 'stalled') : row.paused ? 'paused' : 'idle',
    owner: row.owner ? { id: row.owner, epoch: Number(row.owner_epoch), leaseExpiresAt: iso(row.lease_expires_at) } : null,
    lastRun: row.run_started_at
      ? {
          runNo: Number(row.run_no),
          state: row.run_state,
          startedAt: iso(row.run_started_at),
          progressAt: iso(row.progress_at),
          finishedAt: iso(row.run_finished_at),
          errors: row.run?.errors ?? null,
          stats: row.run?.stats ?? {},
          resumes: row.run?.resumes ?? 0,
        }
      : null,
    aggregate: row.aggregate,
    triggeredAt: iso(row.triggered_at),
    counts,
    updatedAt: row.updated_at.toISOString(),
  };
}

const nameOf = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || value.length === 0) throw new ValidationError('must be a non-empty string', what);
  return value;
};

export function processes(client: Client): Processes {
  const store = processStoreOf(client);
  const announce = (process: string, what: ProcessAnnouncement['what']) => {
    const bus = clientBus(client);
    bus?.publish(announceSubject(bus.cluster), ANNOUNCE_KIND, { process, what } satisfies ProcessAnnouncement);
  };
  const get = async (name: string, withWork: boolean): Promise<ProcessRecord | undefined> => {
    const row = await store.get(name);
    if (!row) return undefined;
    const work = await store.work(name, ['active', 'cleanup', 'dropped']);
    const counts = { active: 0, cleanup: 0, dropped: 0 };
    for (const w of work) counts[w.list]++;
    const record = toProcessRecord(row, counts);
    return withWork ? { ...record, work: work.map(toWork) } : record;
  };
  return {
    async registerWork(process, name, params) {
      nameOf(process, 'process');
      nameOf(name, 'work name');
      const changed = await store.changeWork(process, 'work_register', [name, JSON.stringify(params ?? null)]);
      if (changed) announce(process, 'changed');
      return changed;
    },
    async unregisterWork(process, name) {
      nameOf(process, 'process');
      nameOf(name, 'work name');
      const changed = await store.changeWork(process, 'work_unregister', [name]);
      if (changed) announce(process, 'changed');
      return changed;
    },
    async updateSettings(process, settings, opts = {}) {
      if (opts.scheduleMs !== undefined && !(Number.isFinite(opts.scheduleMs) && opts.scheduleMs > 0))
        throw new ValidationError('must be a number of milliseconds above 0', 'scheduleMs');
      await store.updateSettings(nameOf(process, 'process'), settings, opts.scheduleMs);
      announce(process, 'changed');
    },
    get: (name) => get(name, true),
    async list() {
      const [rows, counts] = await Promise.all([store.list(), store.workCounts()]);
      return rows.map((row) => toProcessRecord(row, counts.get(row.name) ?? { active: 0, cleanup: 0, dropped: 0 }));
    },
    async trigger(process) {
      await store.trigger(nameOf(process, 'process'));
      announce(process, 'trigger');
    },
    async pause(process) {
      await store.setPaused(nameOf(process, 'process'), true);
      announce(process, 'pause');
    },
    async resume(process) {
      await store.setPaused(nameOf(process, 'process'), false);
      announce(process, 'resume');
    },
    async resetStats(process) {
      await store.resetStats(nameOf(process, 'process'));
    },
  };
}

export { UnknownProcessError };
