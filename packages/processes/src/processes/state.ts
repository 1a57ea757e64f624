/**
 * The pure parts of a run: error budgets, stats, and merging admin changes into a running state.
 * Kept apart from the SQL so the rules can be tested alone.
 */
import { describeError } from '@partita/core';
import type { ErrorRecord, ProcessState, RunStatus, Work, WorkStatus } from './define.js';
import type { StoredWork } from './store.js';

/** How many of the first and of the latest errors are kept (the total is always counted). */
export const KEPT_ERRORS = 5;

export function emptyErrors(): ErrorRecord {
  return { total: 0, inRun: 0, first: [], last: [] };
}

export function newRunStatus(runNo: number, startedAt: Date): RunStatus {
  return { runNo, startedAt: startedAt.toISOString(), state: 'active', errors: emptyErrors(), stats: {}, resumes: 0 };
}

export function newWorkStatus(runNo: number, now = new Date()): WorkStatus {
  return { state: 'active', runNo, startedAt: now.toISOString(), errors: emptyErrors(), stats: {} };
}

/** Counts an error into a record; returns the count in this run. */
export function recordError(record: ErrorRecord, err: unknown, now = new Date()): number {
  const entry = { at: now.toISOString(), message: describeError(err).message.slice(0, 2000) };
  record.total++;
  record.inRun++;
  record.lastAt = entry.at;
  if (record.first.length < KEPT_ERRORS) record.first.push(entry);
  else {
    record.last.push(entry);
    if (record.last.length > KEPT_ERRORS) record.last.shift();
  }
  return record.inRun;
}

export function addStat(stats: Record<string, number>, name: string, count: number): void {
  stats[name] = (stats[name] ?? 0) + count;
}

/** The run's stats added into the aggregate over runs, with the built-in run counters. */
export function aggregate(into: Record<string, number>, run: RunStatus, durationMs: number): Record<string, number> {
  const out = { ...into };
  addStat(out, 'runs', 1);
  addStat(out, `state.${run.state}`, 1);
  addStat(out, 'errors', run.errors.inRun);
  addStat(out, 'durationMs', durationMs);
  for (const [k, v] of Object.entries(run.stats)) addStat(out, k, v);
  return out;
}

/**
 * Merges the stored work lists (changed by an admin during the run) into the running state: items
 * in both keep their in-memory status and take the stored params; items unregistered go to cleanup;
 * newly registered ones are added (the run's snapshot does not hold them: they wait for the next
 * run); an item registered again after being unregistered leaves cleanup. Returns the names whose
 * status changed list (their stored status must be written again).
 */
export function mergeWork(state: ProcessState<unknown, unknown>, stored: readonly StoredWork[]): void {
  const storedActive = new Map<string, StoredWork>();
  const storedCleanup = new Map<string, StoredWork>();
  for (const w of stored) (w.list === 'active' ? storedActive : w.list === 'cleanup' ? storedCleanup : new Map()).set(w.name, w);
  for (const [name, w] of storedActive) {
    const mine = state.active.get(name);
    if (mine) {
      mine.params = w.params;
      mine.modifiedAt = w.modifiedAt.toISOString();
    } else {
      const cleaning = state.cleanup.get(name);
      state.cleanup.delete(name);
      state.active.set(name, {
        name,
        params: w.params,
        modifiedAt: w.modifiedAt.toISOString(),
        status: cleaning ? undefined : (w.status ?? undefined),
      } satisfies Work<unknown>);
    }
  }
  for (const name of [...state.active.keys()]) {
    if (storedActive.has(name)) continue;
    state.active.delete(name);
    const w = storedCleanup.get(name);
    if (w) state.cleanup.set(name, { since: w.listedAt.toISOString(), status: undefined });
  }
  for (const [name, w] of storedCleanup) {
    if (!state.cleanup.has(name)) state.cleanup.set(name, { since: w.listedAt.toISOString(), status: w.status ?? undefined });
  }
}
