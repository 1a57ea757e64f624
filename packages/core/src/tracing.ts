import type * as OTel from '@opentelemetry/api';

/**
 * OpenTelemetry spans for a job's way through Partita: `partita.enqueue` (the enqueuer),
 * `partita.claim` (one per claim batch), `partita.perform` (one per attempt, the child of the
 * enqueue span), `partita.complete` (one per batch of recorded outcomes).
 *
 * `@opentelemetry/api` is an optional peer dependency: it is imported once, lazily, and when it
 * is absent or no tracer provider is registered every function here returns at its first check,
 * without allocating. Nothing of the API's types shows in this module's exports, so a project
 * without it still type-checks.
 *
 * The enqueuer's trace context travels with the job as a W3C `traceparent` stored in the job's
 * `lookup` jsonb under the key TRACEPARENT_KEY. User lookup keys cannot start with `$`, the key is
 * left out of the lookup's index form (never searched), and job records hide it.
 */

/** The key of the enqueuer's traceparent in a stored job's lookup document. */
export const TRACEPARENT_KEY = '$traceparent';

const TRACER_NAME = '@partita/runtime';

let api: typeof OTel | undefined;
let loading: Promise<boolean> | undefined;

/**
 * Imports `@opentelemetry/api` if it is installed (once; later calls return the same promise).
 * Started when this module loads; startNode and connect await it so their first job is traced.
 */
export function loadTracing(): Promise<boolean> {
  loading ??= import('@opentelemetry/api').then(
    (m) => {
      // The ESM build has the named exports; a CJS interop build may put them under default.
      api = (typeof m.trace === 'object' ? m : (m as unknown as { default: typeof OTel }).default) ?? undefined;
      return api !== undefined;
    },
    () => false,
  );
  return loading;
}
void loadTracing();

/** The provider whose tracer is cached, and that tracer (undefined: no SDK registered). */
let cachedFor: OTel.TracerProvider | undefined;
let cachedTracer: OTel.Tracer | undefined;
/** The global provider as last looked up, and how many checks ago. */
let globalProvider: OTel.TracerProvider | undefined;
let checksSinceLookup = 0;
/**
 * The global provider is looked up again after this many checks. It is a proxy that stays the
 * same object when an SDK registers (its delegate changes, which every check sees); only
 * `trace.disable()` replaces it. The lookup (a global read and a version check) cost 40-90 ns,
 * the delegate check a few.
 */
const LOOKUP_EVERY = 1024;

/**
 * Partita's tracer, or undefined while no tracer provider is registered: the check on every
 * job's path, so it allocates nothing and looks the tracer up only when the provider changed.
 */
function tracer(): OTel.Tracer | undefined {
  if (api === undefined) return undefined;
  if (globalProvider === undefined || ++checksSinceLookup >= LOOKUP_EVERY) {
    globalProvider = api.trace.getTracerProvider();
    checksSinceLookup = 0;
  }
  const provider = globalProvider;
  if (provider instanceof api.ProxyTracerProvider) {
    const delegate = provider.getDelegate();
    if (delegate !== cachedFor) {
      cachedFor = delegate;
      cachedTracer = provider.getDelegateTracer(TRACER_NAME);
    }
  } else if (provider !== cachedFor) {
    cachedFor = provider;
    cachedTracer = provider.getTracer(TRACER_NAME);
  }
  return cachedTracer;
}

/** True when spans are being made (the API is loaded and a tracer provider is registered). */
export function tracingActive(): boolean {
  return tracer() !== undefined;
}

// ── trace context in the job ───────────────────────────────────────────────────────────────

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function formatTraceparent(sc: OTel.SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

function parseTraceparent(value: string | null | undefined): OTel.SpanContext | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true };
}

/** A stored lookup without the trace context: what job records show. */
export function withoutTraceContext<L extends Record<string, unknown>>(lookup: L | null): L | null {
  if (lookup === null || typeof lookup !== 'object' || !(TRACEPARENT_KEY in lookup)) return lookup;
  const { [TRACEPARENT_KEY]: _traceparent, ...rest } = lookup;
  return Object.keys(rest).length > 0 ? (rest as L) : null;
}

/** The lookup document to store: the user's lookup (null when it has no keys), plus the traceparent when there is one. */
export function lookupWithTraceContext(lookup: object | null | undefined, traceparent: string | undefined): object | null {
  if (!traceparent) return lookup ?? null;
  return { ...(lookup ?? {}), [TRACEPARENT_KEY]: traceparent };
}

// ── spans ──────────────────────────────────────────────────────────────────────────────────

/** What the spans read of a job: a ClaimedJob fits. */
export interface TracedJob {
  id: string;
  partition: string;
  queue: string;
  type: string;
  attempt: number;
  traceparent?: string | null;
}

/**
 * Enqueues under a `partita.enqueue` span (kind producer, a child of the caller's active span):
 * `insert` gets the jobs with the span's traceparent set, and returns the outcome, from which
 * `ids` takes the ids enqueued. With tracing off, `insert` gets the jobs as they are.
 */
export function traceEnqueue<J extends { partition: string; type: string; queue?: string; traceparent?: string }, R>(
  jobs: J[],
  insert: (jobs: J[]) => Promise<R>,
  ids: (result: R) => string[],
): Promise<R> {
  const t = tracer();
  // Malformed input goes untraced to the insert, whose checks say what is wrong with it.
  if (t === undefined || !Array.isArray(jobs) || jobs.length === 0 || !jobs.every((j) => typeof j === 'object' && j !== null))
    return insert(jobs);
  const first = jobs[0]!;
  const attributes: OTel.Attributes = { 'partita.job.count': jobs.length };
  if (typeof first.partition === 'string') attributes['partita.partition'] = first.partition;
  if (typeof first.type === 'string') attributes['partita.job.type'] = first.type;
  if (typeof first.queue === 'string') attributes['partita.queue'] = first.queue;
  const span = t.startSpan('partita.enqueue', { kind: api!.SpanKind.PRODUCER, attributes }, api!.context.active());
  const traceparent = formatTraceparent(span.spanContext());
  return insert(jobs.map((j) => ({ ...j, traceparent }))).then(
    (result) => {
      const enqueued = ids(result);
      if (enqueued.length === 1) span.setAttribute('partita.job.id', enqueued[0]!);
      else span.setAttribute('partita.job.ids', enqueued.slice(0, 100));
      span.end();
      return result;
    },
    (error: unknown) => {
      failSpan(span, error);
      span.end();
      throw error;
    },
  );
}

/**
 * Span contexts made for a job object: the claim that took it (perform links to it), and its
 * perform span (the completion batch links to it). Weak, so a job forgotten is an entry gone.
 */
const claimOf = new WeakMap<object, OTel.SpanContext>();
const performOf = new WeakMap<object, OTel.SpanContext>();

/**
 * One `partita.claim` span for a claim batch that got jobs (or failed): started when the claim
 * was sent (`startedAt`, a performance.now() reading), ended now. It links to each job's enqueue
 * span (a link per job, with its id); empty claims, an idle engine's polls, make no span.
 */
export function traceClaim(partition: string, startedAt: number, jobs: readonly TracedJob[], error?: unknown): void {
  if (jobs.length === 0 && error === undefined) return;
  const t = tracer();
  if (t === undefined) return;
  const links: OTel.Link[] = [];
  for (const job of jobs) {
    const sc = parseTraceparent(job.traceparent);
    if (sc) links.push({ context: sc, attributes: { 'partita.job.id': job.id } });
  }
  const span = t.startSpan(
    'partita.claim',
    {
      kind: api!.SpanKind.CONSUMER,
      startTime: performance.timeOrigin + startedAt,
      attributes: { 'partita.partition': partition, 'partita.claim.count': jobs.length },
      links,
      root: true,
    },
    api!.ROOT_CONTEXT,
  );
  if (error !== undefined) failSpan(span, error);
  const sc = span.spanContext();
  for (const job of jobs) claimOf.set(job, sc);
  span.end();
}

/** A running `partita.perform` span: `run` calls perform inside it, `end` records the attempt's outcome. */
export interface PerformSpan {
  run<A extends unknown[], R>(fn: (...args: A) => R, thisArg: unknown, ...args: A): R;
  end(outcome: { ok: boolean; error?: unknown }): void;
}

class ActivePerformSpan implements PerformSpan {
  constructor(
    private readonly span: OTel.Span,
    private readonly context: OTel.Context,
  ) {}
  run<A extends unknown[], R>(fn: (...args: A) => R, thisArg: unknown, ...args: A): R {
    return api!.context.with(this.context, fn, thisArg, ...args);
  }
  end(outcome: { ok: boolean; error?: unknown }): void {
    if (!outcome.ok) failSpan(this.span, outcome.error);
    this.span.end();
  }
}

/**
 * Starts the `partita.perform` span of one attempt (kind consumer): a child of the job's enqueue
 * span when the job carries a traceparent, linked to the claim that took it. Undefined when
 * tracing is off.
 */
export function startPerformSpan(job: TracedJob): PerformSpan | undefined {
  const t = tracer();
  if (t === undefined) return undefined;
  const o = api!;
  const enqueued = parseTraceparent(job.traceparent);
  const parent = enqueued ? o.trace.setSpanContext(o.ROOT_CONTEXT, enqueued) : o.ROOT_CONTEXT;
  const claim = claimOf.get(job);
  const span = t.startSpan(
    'partita.perform',
    {
      kind: o.SpanKind.CONSUMER,
      attributes: {
        'partita.job.id': job.id,
        'partita.job.type': job.type,
        'partita.partition': job.partition,
        'partita.queue': job.queue,
        'partita.job.attempt': job.attempt,
      },
      ...(claim ? { links: [{ context: claim, attributes: { 'partita.link': 'claim' } }] } : {}),
    },
    parent,
  );
  performOf.set(job, span.spanContext());
  return new ActivePerformSpan(span, o.trace.setSpan(parent, span));
}

/** A `partita.complete` span under way: end it when the batch was written (or failed to be). */
export interface CompleteSpan {
  end(error?: unknown): void;
}

/**
 * One `partita.complete` span per batch of outcomes written to Postgres (completions and failed
 * attempts), linked to each job's perform span. Undefined when tracing is off or the batch
 * records no outcome (only progress or hand-backs).
 */
export function traceComplete(
  partition: string,
  completions: readonly { job: TracedJob }[],
  failures: readonly { job: TracedJob }[],
): CompleteSpan | undefined {
  if (completions.length + failures.length === 0) return undefined;
  const t = tracer();
  if (t === undefined) return undefined;
  const links: OTel.Link[] = [];
  for (const list of [completions, failures]) {
    for (const { job } of list) {
      const sc = performOf.get(job);
      if (sc) links.push({ context: sc, attributes: { 'partita.job.id': job.id } });
    }
  }
  const span = t.startSpan(
    'partita.complete',
    {
      kind: api!.SpanKind.INTERNAL,
      attributes: {
        'partita.partition': partition,
        'partita.complete.completed': completions.length,
        'partita.complete.failed': failures.length,
      },
      links,
      root: true,
    },
    api!.ROOT_CONTEXT,
  );
  return {
    end(error?: unknown) {
      if (error !== undefined) failSpan(span, error);
      span.end();
    },
  };
}

function failSpan(span: OTel.Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.recordException(e);
  span.setStatus({ code: api!.SpanStatusCode.ERROR, message: e.message });
}
