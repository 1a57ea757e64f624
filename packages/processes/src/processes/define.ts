/**
 * defineProcess: a background process in the Go `process` model. Its runs start on clock-aligned
 * slots of `scheduleMs` on whichever node claims it first; each run walks the active work items
 * (processActiveWork) and then those unregistered since (cleanupWork).
 */
import { ValidationError, type Logger } from '@partita/core';

export type ProgressResult = 'none' | 'updated' | 'merged' | 'conflict';
export type ErrorAction = 'continue' | 'abort';
export type RunState = 'active' | 'completed' | 'incomplete' | 'aborted';
export type ItemState = 'new' | 'active' | 'completed' | 'incomplete' | 'aborted';

export interface ProcessError {
  at: string;
  message: string;
}

/** Errors as kept: the first and the latest few with their times, the total always counted. */
export interface ErrorRecord {
  total: number;
  /** Errors counted toward the cap in the current run (the cap is per run). */
  inRun: number;
  first: ProcessError[];
  last: ProcessError[];
  lastAt?: string;
}

export interface WorkStatus {
  state: ItemState;
  /** The run these fields belong to (a resumed run skips items it completed). */
  runNo: number;
  startedAt?: string;
  finishedAt?: string;
  errors: ErrorRecord;
  stats: Record<string, number>;
  /** Cleanup items: cleaned up in this run (moved to dropped at its end). */
  cleaned?: boolean;
}

export interface Work<P = unknown> {
  name: string;
  params: P;
  modifiedAt: string;
  status: WorkStatus | undefined;
}

export interface RunStatus {
  runNo: number;
  startedAt: string;
  progressAt?: string;
  finishedAt?: string;
  state: RunState;
  errors: ErrorRecord;
  stats: Record<string, number>;
  /** How many times this run was taken over from an owner that stopped or died. */
  resumes: number;
}

/** The in-memory state of a run, as the worker sees it (ctx.state). */
export interface ProcessState<S = Record<string, unknown>, P = unknown> {
  name: string;
  owner: string;
  epoch: number;
  settings: S;
  settingsVersion: number;
  scheduleMs: number;
  run: RunStatus;
  active: Map<string, Work<P>>;
  /** Unregistered items waiting for cleanupWork: name → when they were unregistered. */
  cleanup: Map<string, { since: string; status: WorkStatus | undefined }>;
}

export interface ProcessContext<S = Record<string, unknown>, P = unknown> {
  readonly state: ProcessState<S, P>;
  /** The settings, merged from admin changes during the run. */
  readonly settings: S;
  /** Aborted when the run lost ownership (conflict), the process was paused, or the node stops. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Saves the run's state (at most every progressMs) and merges admin changes. */
  progress(): Promise<ProgressResult>;
  addError(err: unknown, workName?: string): ErrorAction;
  addStats(count: number, name: string, workName?: string): void;
}

export interface ProcessDefinition<S = Record<string, unknown>, P = unknown> {
  name: string;
  /** Runs start on multiples of this since the epoch (clamped to minScheduleMs), plus jitter. */
  scheduleMs: number;
  /** Default settings, stored when the process is first declared (the stored ones win afterwards). */
  settings: S;
  /** The first look after the node starts. Default 60000. */
  initialWaitMs?: number;
  /** The shortest schedule allowed. Default 15 minutes. */
  minScheduleMs?: number;
  /** progress() saves at most this often. Default min(scheduleMs / 10, minScheduleMs / 3). */
  progressMs?: number;
  /** The run's lease: a dead owner's run is resumed by another node after about this. Default 60000. */
  leaseMs?: number;
  /** Random delay after the slot boundary, so nodes do not all claim at once. Default min(30 s, scheduleMs / 10). */
  jitterMs?: number;
  /** Errors tolerated per item and run (the next one aborts the run). Default 10. */
  maxErrorsPerItem?: number;
  /** Errors tolerated per run. Default 25. */
  maxErrorsPerRun?: number;
  /** Dropped items are kept this long. Default 30 days. */
  dropRetentionMs?: number;
  /** A cleanup error for which this returns true means the item is already gone (e.g. a 404). */
  isGone?(err: unknown): boolean;
  processActiveWork(ctx: ProcessContext<S, P>, workName: string, work: Work<P>): Promise<void>;
  cleanupWork(ctx: ProcessContext<S, P>, workName: string): Promise<void>;
}

/** A definition with every default filled in. */
export interface ResolvedProcess<S = Record<string, unknown>, P = unknown> extends ProcessDefinition<S, P> {
  initialWaitMs: number;
  minScheduleMs: number;
  progressMs: number;
  leaseMs: number;
  jitterMs: number;
  maxErrorsPerItem: number;
  maxErrorsPerRun: number;
  dropRetentionMs: number;
}

const positive = (value: unknown, path: string, allowZero = false) => {
  if (value === undefined) return;
  if (!(typeof value === 'number' && Number.isFinite(value) && (allowZero ? value >= 0 : value > 0)))
    throw new ValidationError(`must be a number of milliseconds ${allowZero ? 'of 0 or more' : 'above 0'}`, path);
};

export function defineProcess<S = Record<string, unknown>, P = unknown>(def: ProcessDefinition<S, P>): ResolvedProcess<S, P> {
  const where = `defineProcess(${JSON.stringify(def?.name)})`;
  if (typeof def?.name !== 'string' || def.name.length === 0 || def.name.length > 200)
    throw new ValidationError('must be a name of 1-200 characters', `${where}.name`);
  for (const key of ['scheduleMs', 'minScheduleMs', 'progressMs', 'leaseMs', 'dropRetentionMs'] as const)
    positive(def[key], `${where}.${key}`);
  for (const key of ['initialWaitMs', 'jitterMs'] as const) positive(def[key], `${where}.${key}`, true);
  if (def.scheduleMs === undefined) throw new ValidationError('is required (how often a run starts, in ms)', `${where}.scheduleMs`);
  for (const key of ['maxErrorsPerItem', 'maxErrorsPerRun'] as const) {
    const v = def[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0))
      throw new ValidationError('must be a whole number of 0 or more', `${where}.${key}`);
  }
  if (typeof def.processActiveWork !== 'function') throw new ValidationError('must be a function', `${where}.processActiveWork`);
  if (typeof def.cleanupWork !== 'function') throw new ValidationError('must be a function', `${where}.cleanupWork`);
  const minScheduleMs = def.minScheduleMs ?? 15 * 60_000;
  const scheduleMs = Math.max(def.scheduleMs, minScheduleMs);
  return {
    ...def,
    scheduleMs,
    initialWaitMs: def.initialWaitMs ?? 60_000,
    minScheduleMs,
    progressMs: def.progressMs ?? Math.min(scheduleMs / 10, minScheduleMs / 3),
    leaseMs: def.leaseMs ?? 60_000,
    jitterMs: def.jitterMs ?? Math.min(30_000, scheduleMs / 10),
    maxErrorsPerItem: def.maxErrorsPerItem ?? 10,
    maxErrorsPerRun: def.maxErrorsPerRun ?? 25,
    dropRetentionMs: def.dropRetentionMs ?? 30 * 86_400_000,
  };
}

/** Milliseconds from `now` to the next multiple of `scheduleMs` since the epoch. */
export function msToNextSlot(now: number, scheduleMs: number): number {
  return (Math.floor(now / scheduleMs) + 1) * scheduleMs - now;
}
