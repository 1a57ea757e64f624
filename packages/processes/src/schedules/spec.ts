/** A schedule as users declare it (config, jobs module, schedules(client).create), and its checks. */
import { NAME_PATTERN, PartitaError, ValidationError } from '@partita/core';
import { parseCron } from './cron.js';
import type { MisfirePolicy, OverlapPolicy } from './plan.js';

export interface ScheduleSpec {
  /** Unique; names the schedule in the CLI, the metric and its jobs' occurrences. */
  id: string;
  /** 5 fields, 6 with seconds first, or @yearly/@monthly/@weekly/@daily/@hourly. */
  cron: string;
  /** IANA zone the cron fields are read in. Default UTC. */
  timezone?: string;
  partition: string;
  type: string;
  /** Unset: the job type's queue. */
  queue?: string;
  payload?: unknown;
  /** When the cluster was down at fire times: skip them, run the latest once (default), or run each within backfillMs. */
  misfire?: MisfirePolicy;
  /** backfill: how far back missed occurrences still run. Default one day. */
  backfillMs?: number;
  /** skip (default): no new occurrence while the last one's job is live; allow: always enqueue. */
  overlap?: OverlapPolicy;
}

export const DEFAULT_BACKFILL_MS = 86_400_000;

/** A schedule with every default filled in. */
export type ResolvedSchedule = Required<Omit<ScheduleSpec, 'queue' | 'payload'>> & { queue: string | undefined; payload: unknown };

/** A schedule id that no schedule has. */
export class UnknownScheduleError extends PartitaError {
  readonly scheduleId: string;
  constructor(id: string) {
    super('UNKNOWN_SCHEDULE', `no schedule "${id}"; list them with \`partita schedules\` or schedules(client).list()`);
    this.scheduleId = id;
  }
}

const MISFIRE: readonly MisfirePolicy[] = ['skip', 'runOnce', 'backfill'];
const OVERLAP: readonly OverlapPolicy[] = ['skip', 'allow'];
const KEYS = new Set(['id', 'cron', 'timezone', 'partition', 'type', 'queue', 'payload', 'misfire', 'backfillMs', 'overlap']);

/** Checks a declared schedule; `path` prefixes the field names of its errors. */
export function resolveSchedule(spec: ScheduleSpec, path = 'schedule'): ResolvedSchedule {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new ValidationError('must be a mapping { id, cron, partition, type, ... }', path);
  }
  for (const key of Object.keys(spec)) {
    if (!KEYS.has(key)) throw new ValidationError(`unknown field; a schedule has ${[...KEYS].join(', ')}`, `${path}.${key}`);
  }
  if (typeof spec.id !== 'string' || spec.id.length === 0 || spec.id.length > 200 || /\s/.test(spec.id)) {
    throw new ValidationError('must be 1-200 characters without spaces', `${path}.id`);
  }
  const timezone = spec.timezone ?? 'UTC';
  if (typeof timezone !== 'string') throw new ValidationError('must be an IANA time zone name', `${path}.timezone`);
  parseCron(spec.cron, timezone, `${path}.cron`);
  if (typeof spec.partition !== 'string' || !NAME_PATTERN.test(spec.partition)) {
    throw new ValidationError('must be a partition name (1-64 letters, digits, _ or -)', `${path}.partition`);
  }
  if (typeof spec.type !== 'string' || spec.type.length === 0 || spec.type.length > 200) {
    throw new ValidationError('must be a job type', `${path}.type`);
  }
  if (spec.queue !== undefined && (typeof spec.queue !== 'string' || !NAME_PATTERN.test(spec.queue))) {
    throw new ValidationError('must be a queue name (1-64 letters, digits, _ or -)', `${path}.queue`);
  }
  const misfire = spec.misfire ?? 'runOnce';
  if (!MISFIRE.includes(misfire)) throw new ValidationError(`must be one of ${MISFIRE.join(', ')}`, `${path}.misfire`);
  const overlap = spec.overlap ?? 'skip';
  if (!OVERLAP.includes(overlap)) throw new ValidationError(`must be one of ${OVERLAP.join(', ')}`, `${path}.overlap`);
  const backfillMs = spec.backfillMs ?? DEFAULT_BACKFILL_MS;
  if (!Number.isInteger(backfillMs) || backfillMs < 0)
    throw new ValidationError('must be a whole number of milliseconds ≥ 0', `${path}.backfillMs`);
  if (spec.payload !== undefined) {
    try {
      JSON.stringify(spec.payload);
    } catch {
      throw new ValidationError('must be JSON', `${path}.payload`);
    }
  }
  return {
    id: spec.id,
    cron: spec.cron,
    timezone,
    partition: spec.partition,
    type: spec.type,
    queue: spec.queue,
    payload: spec.payload ?? null,
    misfire,
    backfillMs,
    overlap,
  };
}
