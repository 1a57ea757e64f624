/**
 * Job events on the bus: what they look like, which subject carries each, and the encoding of job
 * types into a subject token.
 *
 * Subject: `partita.<cluster>.event.<partition>.<queue>.<typeToken>.<kind>`
 *
 * Partition and queue names are already subject-safe (letters, digits, `_`, `-`). Job types may be
 * any string, so the type travels as a *type token*: percent-encoding (UTF-8, as encodeURIComponent)
 * of the characters a NATS token cannot hold — `.` → `%2E`, `*` → `%2A`, `>` → `%3E`, `%` → `%25`,
 * whitespace and control characters → `%20`, `%0A`, … — everything else as is. `invoice` stays `invoice`; `billing.invoice` becomes
 * `billing%2Einvoice`. The encoding is exact (two types never share a token), so a pattern on one
 * type never receives another's events. Use `eventTypeToken(type)` when writing a string pattern
 * by hand, or pass a filter object (`{ type: 'billing.invoice' }`), which encodes for you. The event
 * itself always carries the real `type`.
 */
import { ValidationError, type JobError } from '@partita/core';
import * as subjects from './subjects.js';
import { validatePattern } from './subjects.js';

export const JOB_EVENT_KINDS = ['enqueued', 'started', 'progress', 'completed', 'failed', 'retrying', 'cancelled'] as const;
export type JobEventKind = (typeof JOB_EVENT_KINDS)[number];
/** Kinds after which the job does not change any more. */
export const TERMINAL_EVENT_KINDS = ['completed', 'failed', 'cancelled'] as const satisfies readonly JobEventKind[];

/** Envelope kind on the wire: `job.<kind>` for one event. */
export const eventMessageKind = (kind: JobEventKind): string => `job.${kind}`;
/**
 * Envelope kind of several events of one subject in one message (`job.<kind>.batch`): a node's
 * completions of one flush, a client's enqueue of many jobs. Subscribers get them one by one.
 */
export const eventBatchMessageKind = (kind: JobEventKind): string => `job.${kind}.batch`;
const MESSAGE_KINDS: readonly string[] = JOB_EVENT_KINDS.flatMap((k) => [eventMessageKind(k), eventBatchMessageKind(k)]);
/** Events per batch message at most; a batch the server would refuse as too large is split. */
const BATCH_MAX_EVENTS = 256;

/**
 * A job event as published on the bus and handed to `client.subscribe` callbacks. Events of one
 * publisher arrive in order (a node's started → progress → completed); `enqueued` comes from the
 * client and may arrive after `started` when a node claims the job before enqueue() returns.
 */
export interface JobEvent {
  id: string;
  partition: string;
  queue: string;
  type: string;
  kind: JobEventKind;
  /** The attempt the event is about (0 for `enqueued`, 1 for the first run). */
  attempt: number;
  /** `completed`: the job's result, in its stored (JSON) form. */
  result?: unknown;
  /** `failed` / `retrying`: the error of this attempt. */
  error?: JobError | null;
  /** `progress`: the value given to `ctx.progress()`, in its stored (JSON) form. */
  progress?: unknown;
  /** `retrying`: when the next attempt is due. */
  retryAt?: Date;
  /** When the event happened (on the publisher's clock). */
  at: Date;
  /** The node that ran the job; absent for events published by a client (`enqueued`, `cancelled` of a queued job). */
  node?: string;
  /**
   * Set when `result`/`progress` was left out because the message would exceed the server's
   * max payload; read the job (`client.job(id)`) for it. `client.result()` does so itself.
   */
  truncated?: true;
}

/** Filter form of an event subscription: omitted parts (or `*`) match anything. `type` is the real job type. */
export interface EventFilter {
  partition?: string;
  queue?: string;
  type?: string;
  kind?: JobEventKind | '*';
}

const MAX_TOKEN = 256;
const HASH_SUFFIX = 12;

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[.*>%\s\u0000-\u001f\u007f]/u;
// eslint-disable-next-line no-control-regex
const ESCAPE_ALL = /[.*>%\s\u0000-\u001f\u007f]/gu;

const tokenCache = new Map<string, string>();

/**
 * The subject token of a job type (see the module comment). Types whose encoding would exceed 256
 * characters are cut to 243 and suffixed with `~` and 12 hex digits of a hash of the full type.
 */
export function eventTypeToken(type: string): string {
  if (typeof type !== 'string' || type.length === 0) throw new ValidationError('job type must be a non-empty string', 'type');
  if (!NEEDS_ESCAPE.test(type) && type.length <= MAX_TOKEN) return type;
  let token = tokenCache.get(type);
  if (token !== undefined) return token;
  token = type.replace(ESCAPE_ALL, (c) => (c === '.' ? '%2E' : c === '*' ? '%2A' : encodeURIComponent(c)));
  if (token.length > MAX_TOKEN) token = `${token.slice(0, MAX_TOKEN - HASH_SUFFIX - 1)}~${fnv1a(type)}`;
  if (tokenCache.size > 10_000) tokenCache.clear();
  tokenCache.set(type, token);
  return token;
}

/** The job type a token stands for (inverse of eventTypeToken, except for hashed long types). */
export function eventTypeFromToken(token: string): string {
  if (!token.includes('%')) return token;
  try {
    return decodeURIComponent(token);
  } catch {
    return token;
  }
}

function fnv1a(s: string): string {
  // Two 32-bit FNV-1a passes with different seeds: 12 hex digits, plenty to keep long types apart.
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return (a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')).slice(0, HASH_SUFFIX);
}

const subjectCache = new Map<string, string>();

/** The subject an event of this job and kind is published on. */
export function jobEventSubject(cluster: string, partition: string, queue: string, type: string, kind: JobEventKind): string {
  const key = `${cluster}\u0000${partition}\u0000${queue}\u0000${type}\u0000${kind}`;
  let subject = subjectCache.get(key);
  if (subject === undefined) {
    subject = subjects.event(cluster, partition, queue, eventTypeToken(type), kind);
    if (subjectCache.size > 50_000) subjectCache.clear();
    subjectCache.set(key, subject);
  }
  return subject;
}

/**
 * The NATS pattern for `client.subscribe(pattern)`:
 *  - a filter object `{ partition?, queue?, type?, kind? }` (type is the real job type);
 *  - a pattern relative to the cluster's events, `<partition>.<queue>.<typeToken>.<kind>`, with
 *    NATS wildcards: `billing.*.invoice.completed`, `billing.>`, `*.*.*.failed`, `>`;
 *  - a full subject pattern `partita.<cluster>.event.…`.
 */
export function eventSubscriptionPattern(cluster: string, pattern: string | EventFilter): string {
  if (typeof pattern === 'object' && pattern !== null) {
    const { partition, queue, type, kind } = pattern;
    if (kind !== undefined && kind !== '*' && !(JOB_EVENT_KINDS as readonly string[]).includes(kind)) {
      throw new ValidationError(`unknown event kind "${String(kind)}"; use one of ${JOB_EVENT_KINDS.join(', ')} or "*"`, 'kind');
    }
    return subjects.eventPattern(cluster, {
      ...(partition !== undefined ? { partition } : {}),
      ...(queue !== undefined ? { queue } : {}),
      ...(type !== undefined && type !== '*' ? { type: eventTypeToken(type) } : {}),
      ...(kind !== undefined ? { kind } : {}),
    });
  }
  if (typeof pattern !== 'string')
    throw new ValidationError('must be a subject pattern string or a filter object { partition?, queue?, type?, kind? }', 'pattern');
  validatePattern(pattern, 'event pattern');
  const tokens = pattern.split('.');
  const prefix = subjects.eventPattern(cluster, '>').slice(0, -1); // `partita.<cluster>.event.`
  if (tokens[0] === subjects.SUBJECT_ROOT) {
    if (!pattern.startsWith(prefix) || tokens.length > 7) {
      throw new ValidationError(
        `event pattern "${pattern}" is not within this cluster's events; full patterns look like ${prefix}<partition>.<queue>.<type>.<kind>`,
        'pattern',
      );
    }
    checkReachable(pattern, tokens.length - 3);
    return pattern;
  }
  checkReachable(pattern, tokens.length);
  return subjects.eventPattern(cluster, pattern);
}

function checkReachable(pattern: string, relativeTokens: number): void {
  if (relativeTokens > 4) {
    throw new ValidationError(`event pattern "${pattern}" has more than 4 tokens; events are <partition>.<queue>.<type>.<kind>`, 'pattern');
  }
  if (relativeTokens < 4 && !pattern.endsWith('>')) {
    throw new ValidationError(
      `event pattern "${pattern}" can never match: events have 4 tokens <partition>.<queue>.<type>.<kind>; ` +
        `end it with ".>" ("${pattern}.>") or spell out every token`,
      'pattern',
    );
  }
}

/** The stored (JSON) form of a value, so an event carries exactly what Postgres returns later. */
export function jsonForm(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object') return typeof value === 'number' && !Number.isFinite(value) ? null : value;
  return JSON.parse(JSON.stringify(value));
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Checks the shape of an event that came off the bus; anything else is dropped. */
export function isJobEvent(value: unknown): value is JobEvent {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    isString(e.id) &&
    isString(e.partition) &&
    isString(e.queue) &&
    isString(e.type) &&
    typeof e.kind === 'string' &&
    (JOB_EVENT_KINDS as readonly string[]).includes(e.kind) &&
    typeof e.attempt === 'number' &&
    e.at instanceof Date &&
    (e.node === undefined || typeof e.node === 'string') &&
    (e.retryAt === undefined || e.retryAt instanceof Date) &&
    (e.error === undefined || e.error === null || typeof e.error === 'object')
  );
}

/**
 * What publishing job events needs of a bus (`Bus` of @partita/nats has it): the wire contract sits
 * below the bus, so it names only the two members it uses.
 */
export interface EventPublisher {
  readonly cluster: string;
  publish(subject: string, kind: string, data?: unknown): unknown;
}

export interface EventPublishProblem {
  event: JobEvent;
  error: unknown;
}

/**
 * Publishes a job event. Never throws: an event that is too large goes out without its
 * result/progress (`truncated: true`); one that still cannot go is reported through `onProblem`.
 * While the bus is away the event is dropped (the bus counts it); Postgres still has the outcome.
 */
export function publishJobEvent(bus: EventPublisher, event: JobEvent, onProblem?: (p: EventPublishProblem) => void): void {
  let subject: string;
  try {
    subject = jobEventSubject(bus.cluster, event.partition, event.queue, event.type, event.kind);
  } catch (error) {
    onProblem?.({ event, error });
    return;
  }
  const kind = eventMessageKind(event.kind);
  try {
    bus.publish(subject, kind, event);
  } catch (error) {
    if (error instanceof ValidationError && (event.result !== undefined || event.progress !== undefined)) {
      const { result: _r, progress: _p, ...rest } = event;
      try {
        bus.publish(subject, kind, { ...rest, truncated: true } satisfies JobEvent);
        return;
      } catch (again) {
        onProblem?.({ event, error: again });
        return;
      }
    }
    onProblem?.({ event, error });
  }
}

/** The envelope kinds of job events (single and batch), for `bus.subscribe(..., { kinds })`. */
export function eventMessageKinds(kinds: readonly JobEventKind[] = JOB_EVENT_KINDS): string[] {
  return kinds === JOB_EVENT_KINDS ? [...MESSAGE_KINDS] : kinds.flatMap((k) => [eventMessageKind(k), eventBatchMessageKind(k)]);
}

/** What one event of a batch message carries of its own; the rest is shared by the batch. */
export type JobEventBatchItem = Pick<JobEvent, 'id' | 'attempt' | 'result' | 'error' | 'progress' | 'retryAt' | 'truncated'>;
/** A batch message's body: what its events share, and each event's own part. */
export interface JobEventBatch {
  partition: string;
  queue: string;
  type: string;
  kind: JobEventKind;
  at: Date;
  node?: string;
  events: JobEventBatchItem[];
}

/**
 * Publishes many job events with as few messages as their subjects allow: events of one subject
 * (partition, queue, type, kind) and one publisher go out as one batch message, which subscribers
 * unpack (`jobEventsOf`). Never throws; problems go to `onProblem` as with publishJobEvent.
 */
export function publishJobEvents(bus: EventPublisher, events: readonly JobEvent[], onProblem?: (p: EventPublishProblem) => void): void {
  if (events.length === 1) return publishJobEvent(bus, events[0]!, onProblem);
  const batches = new JobEventBatches();
  for (const e of events) batches.batchFor(e.partition, e.queue, e.type, e.kind, e.at, e.node).events.push(batchItem(e));
  for (const batch of batches.all) publishJobEventBatch(bus, batch, onProblem);
}

/**
 * Gathers events into batch form, one batch per subject (partition, queue, type, kind) and
 * publisher. Found by comparing with the batches so far (a handful: one per subject of a call),
 * the last one first, rather than by a key string per event, which cost a concatenation and a
 * hash for every job. The first event of a batch gives its `at`.
 */
export class JobEventBatches {
  readonly all: JobEventBatch[] = [];
  private last: JobEventBatch | undefined;

  batchFor(partition: string, queue: string, type: string, kind: JobEventKind, at: Date, node: string | undefined): JobEventBatch {
    let batch = this.last;
    if (batch === undefined || !sameSubject(batch, partition, queue, type, kind, node)) {
      batch = undefined;
      for (const b of this.all) if (sameSubject(b, partition, queue, type, kind, node)) batch = b;
    }
    if (batch === undefined) {
      batch = { partition, queue, type, kind, at, ...(node !== undefined ? { node } : {}), events: [] };
      this.all.push(batch);
    }
    this.last = batch;
    return batch;
  }
}

function sameSubject(
  b: JobEventBatch,
  partition: string,
  queue: string,
  type: string,
  kind: JobEventKind,
  node: string | undefined,
): boolean {
  return b.partition === partition && b.queue === queue && b.type === type && b.kind === kind && b.node === node;
}

function batchItem({ id, attempt, result, error, progress, retryAt, truncated }: JobEvent): JobEventBatchItem {
  const item: JobEventBatchItem = { id, attempt };
  if (result !== undefined) item.result = result;
  if (error !== undefined) item.error = error;
  if (progress !== undefined) item.progress = progress;
  if (retryAt !== undefined) item.retryAt = retryAt;
  if (truncated) item.truncated = truncated;
  return item;
}

/** One event of a batch as a whole JobEvent (for a single message, or to report a problem with it). */
function eventOf(batch: JobEventBatch, item: JobEventBatchItem): JobEvent {
  const { events: _events, ...shared } = batch;
  return { ...shared, ...item };
}

/**
 * Publishes events of one subject (partition, queue, type, kind) and one publisher, already in
 * their batch form: what a node that gathers its events by subject hands over, with one small item
 * per event and nothing per event besides. More than a message takes go out in several; a single
 * event goes out as a plain event message. Never throws; problems go to `onProblem` as with
 * publishJobEvent.
 */
export function publishJobEventBatch(bus: EventPublisher, batch: JobEventBatch, onProblem?: (p: EventPublishProblem) => void): void {
  const items = batch.events;
  if (items.length === 0) return;
  if (items.length === 1) return publishJobEvent(bus, eventOf(batch, items[0]!), onProblem);
  if (items.length > BATCH_MAX_EVENTS) {
    for (let i = 0; i < items.length; i += BATCH_MAX_EVENTS)
      publishJobEventBatch(bus, { ...batch, events: items.slice(i, i + BATCH_MAX_EVENTS) }, onProblem);
    return;
  }
  let subject: string;
  try {
    subject = jobEventSubject(bus.cluster, batch.partition, batch.queue, batch.type, batch.kind);
  } catch (error) {
    for (const item of items) onProblem?.({ event: eventOf(batch, item), error });
    return;
  }
  try {
    bus.publish(subject, eventBatchMessageKind(batch.kind), batch);
  } catch (error) {
    if (!(error instanceof ValidationError)) {
      for (const item of items) onProblem?.({ event: eventOf(batch, item), error });
      return;
    }
    // Too large for the server (results): halves go separately, down to single events, which
    // publishJobEvent sends without their result if need be.
    const half = Math.ceil(items.length / 2);
    publishJobEventBatch(bus, { ...batch, events: items.slice(0, half) }, onProblem);
    publishJobEventBatch(bus, { ...batch, events: items.slice(half) }, onProblem);
  }
}

/**
 * The job events in a message off the bus, single or batch (by its envelope kind); anything
 * malformed yields nothing (dropped, as every bad message is).
 */
export function jobEventsOf(data: unknown, messageKind: string): JobEvent[] {
  if (!messageKind.endsWith('.batch')) return isJobEvent(data) ? [data] : [];
  if (typeof data !== 'object' || data === null) return [];
  const b = data as Partial<JobEventBatch>;
  if (!Array.isArray(b.events)) return [];
  const out: JobEvent[] = [];
  for (const item of b.events) {
    if (typeof item !== 'object' || item === null) continue;
    const event = {
      partition: b.partition,
      queue: b.queue,
      type: b.type,
      kind: b.kind,
      at: b.at,
      ...(b.node !== undefined ? { node: b.node } : {}),
      ...item,
    };
    if (isJobEvent(event)) out.push(event);
  }
  return out;
}
