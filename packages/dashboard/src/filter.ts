/**
 * The jobs page's filter: a line of qualifiers a person types (and the URL carries), turned into
 * what the client's listing takes plus the few narrowings the dashboard applies itself.
 *
 *   queue:emails type:send state:failed partition:billing node:n1 lookup.customer:42
 *   payload.user.id:7 since:2026-12-06T01:00 until:2026-12-06T02:00 0193a2f1   (a bare word: id prefix)
 *
 * Ids are UUIDv7, whose first 48 bits are the creation time in ms: a time range and an id prefix are
 * both id ranges, so they narrow the keyset walk (an upper bound given to the listing as `before`,
 * a lower bound where the walk stops) instead of filtering rows one by one.
 */
import { JOB_STATES, ValidationError, type JobState } from '@partita/core';
import type { JobListFilter, JobMatch } from '@partita/client';

export interface JobFilter {
  partition?: string;
  queue?: string;
  type?: string;
  states: JobState[];
  node?: string;
  lookup: Record<string, string>;
  /** Payload paths (`user.id`) and the value they must hold, compared as text. */
  payload: [path: string[], value: string][];
  since?: Date;
  until?: Date;
  /** Lower-case hex digits without dashes. */
  idPrefix?: string;
}

const QUALIFIERS = ['partition', 'queue', 'type', 'state', 'node', 'since', 'until'] as const;

export function parseFilter(q: string): JobFilter {
  const filter: JobFilter = { states: [], lookup: {}, payload: [] };
  for (const token of q.trim().split(/\s+/).filter(Boolean)) {
    const colon = token.indexOf(':');
    if (colon < 0) {
      const hex = token.toLowerCase().replace(/-/g, '');
      if (!/^[0-9a-f]{1,32}$/.test(hex)) {
        throw new ValidationError(`"${token}" is neither a qualifier (queue:, type:, state:, …) nor the start of a job id`, 'q');
      }
      filter.idPrefix = hex;
      continue;
    }
    const key = token.slice(0, colon);
    const value = token.slice(colon + 1);
    if (value === '') throw new ValidationError(`"${token}" has no value after the colon`, 'q');
    if (key.startsWith('lookup.') && key.length > 7) filter.lookup[key.slice(7)] = value;
    else if (key.startsWith('payload.') && key.length > 8) filter.payload.push([key.slice(8).split('.'), value]);
    else if (key === 'state') {
      for (const s of value.split(',')) {
        if (!(JOB_STATES as readonly string[]).includes(s)) throw new ValidationError(`state must be one of ${JOB_STATES.join(', ')}`, 'q');
        filter.states.push(s as JobState);
      }
    } else if (key === 'since' || key === 'until') {
      const at = new Date(value);
      if (Number.isNaN(at.getTime())) throw new ValidationError(`${key}: "${value}" is not a date (e.g. 2026-12-06T01:00Z)`, 'q');
      filter[key] = at;
    } else if ((QUALIFIERS as readonly string[]).includes(key)) {
      filter[key as 'partition' | 'queue' | 'type' | 'node'] = value;
    } else {
      throw new ValidationError(
        `unknown qualifier "${key}:"; use ${QUALIFIERS.join(':, ')}:, lookup.KEY:, payload.PATH: or an id prefix`,
        'q',
      );
    }
  }
  return filter;
}

/** The filter written back as the qualifier line (for tabs and links). */
export function formatFilter(f: JobFilter): string {
  const parts: string[] = [];
  for (const k of ['partition', 'queue', 'type'] as const) if (f[k]) parts.push(`${k}:${f[k]}`);
  if (f.states.length) parts.push(`state:${f.states.join(',')}`);
  if (f.node) parts.push(`node:${f.node}`);
  for (const [k, v] of Object.entries(f.lookup)) parts.push(`lookup.${k}:${v}`);
  for (const [path, v] of f.payload) parts.push(`payload.${path.join('.')}:${v}`);
  if (f.since) parts.push(`since:${f.since.toISOString()}`);
  if (f.until) parts.push(`until:${f.until.toISOString()}`);
  if (f.idPrefix) parts.push(f.idPrefix);
  return parts.join(' ');
}

/** A UUID from 32 hex digits. */
function uuidOf(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The smallest UUIDv7 made at `at` or later. */
function idAt(at: Date): string {
  return uuidOf(Math.max(0, at.getTime()).toString(16).padStart(12, '0').slice(-12) + '0'.repeat(20));
}

/** The id range the filter allows: ids in [low, high). */
export function idRange(f: JobFilter): { low?: string; high?: string } {
  let low: string | undefined;
  let high: string | undefined;
  if (f.since) low = idAt(f.since);
  if (f.until) high = idAt(f.until);
  if (f.idPrefix) {
    const p = f.idPrefix;
    const pLow = uuidOf(p.padEnd(32, '0'));
    if (!low || pLow > low) low = pLow;
    // The first id past every id with the prefix: the prefix plus one, padded (none when it is all f).
    if (!/^f+$/.test(p)) {
      const next = (BigInt('0x' + p) + 1n).toString(16).padStart(p.length, '0');
      const pHigh = uuidOf(next.padEnd(32, '0'));
      if (!high || pHigh < high) high = pHigh;
    }
  }
  return { ...(low ? { low } : {}), ...(high ? { high } : {}) };
}

/** Whether the listing alone applies the filter (no row-by-row narrowing by node or payload). */
export function listingOnly(f: JobFilter): boolean {
  return f.node === undefined && f.payload.length === 0;
}

/**
 * The filter as the bulk operations take it, or why it cannot be: they filter by partition, queue,
 * type, state, lookup and an upper id bound, so node:, payload.…:, since: and an id prefix are
 * refused (select the jobs instead) rather than widened into acting on more than the page shows.
 */
export function bulkMatch(f: JobFilter): JobMatch | string {
  if (f.node) return 'node: cannot be used by a bulk action on the whole filter';
  if (f.payload.length) return 'payload.…: cannot be used by a bulk action on the whole filter';
  if (f.since) return 'since: cannot be used by a bulk action on the whole filter';
  if (f.idPrefix) return 'an id prefix cannot be used by a bulk action on the whole filter';
  const { high } = idRange(f);
  return { ...matchedFields(f), ...(high ? { before: high } : {}) };
}

/** The filter's fields that both the listing and a bulk action take as they are. */
function matchedFields(f: JobFilter) {
  return {
    ...(f.partition ? { partition: f.partition } : {}),
    ...(f.queue ? { queue: f.queue } : {}),
    ...(f.type ? { type: f.type } : {}),
    ...(f.states.length ? { states: f.states } : {}),
    ...(Object.keys(f.lookup).length ? { lookup: f.lookup } : {}),
  };
}

/** The listing's part of the filter for one page walk starting below `before`. */
export function listFilter(f: JobFilter, before: string | undefined, limit: number): JobListFilter {
  const { high } = idRange(f);
  const upper = before && high ? (before < high ? before : high) : (before ?? high);
  return { ...matchedFields(f), ...(upper ? { before: upper } : {}), limit };
}

/** The narrowings the listing does not make: node and payload paths. */
export function matchesRow(f: JobFilter, job: { node: string | null; payload: unknown }): boolean {
  if (f.node !== undefined && job.node !== f.node) return false;
  for (const [path, value] of f.payload) {
    let at: unknown = job.payload;
    for (const step of path) at = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[step] : undefined;
    if (at === undefined || at === null || typeof at === 'object' || String(at) !== value) return false;
  }
  return true;
}
