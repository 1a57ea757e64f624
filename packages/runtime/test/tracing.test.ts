import test from 'ava';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { defineJob } from '@partita/runtime';
import { connect } from '@partita/client';
import { JobFailedError, TRACEPARENT_KEY, ValidationError, tracingActive } from '@partita/core';
import { cluster, until } from './helpers.js';
import { natsUrl } from '../../../test/helpers/index.js';
import { clientStore } from '@partita/client/internal';

// The spans are global state (one tracer provider per process): these tests run one after the
// other, the first before any provider is registered.

const partitions = { p: { queues: { default: { concurrency: 4 } } } };
const fast = { pollMs: 20, flushMs: 1 };

test.serial('without a tracer provider nothing is traced and jobs carry no trace context', async (t) => {
  t.false(tracingActive());
  const c = await cluster('otel_off');
  try {
    const node = await c.start({ partitions, jobs: [defineJob({ type: 'plain', perform: () => 1 })], engine: fast });
    const client = await connect({ postgres: c.db.url, schema: c.db.schema });
    try {
      const { id } = await client.enqueue('p', 'plain', null, { lookup: { customer: 7 } });
      t.is(await client.result(id, { timeoutMs: 10_000 }), 1);
      const { rows } = await c.db.pool.query(`SELECT lookup FROM jobs_history WHERE id = $1`, [id]);
      t.deepEqual(rows[0].lookup, { customer: 7 }, 'the stored lookup is the user’s, nothing added');
    } finally {
      await client.close();
      await node.stop({ graceMs: 200 });
    }
  } finally {
    await c.close();
  }
});

const exporter = new InMemorySpanExporter();

test.serial('enqueue → claim → perform → complete: spans linked by job id, perform a child of enqueue', async (t) => {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  t.true(tracingActive(), 'a registered provider turns tracing on');

  const c = await cluster('otel');
  try {
    let calls = 0;
    const seenInside: string[] = [];
    const node = await c.start({
      partitions,
      engine: fast,
      defaults: { backoff: { baseMs: 10, maxMs: 10 } },
      jobs: [
        defineJob({
          type: 'charge',
          maxAttempts: 2,
          perform(_p, ctx) {
            // perform runs inside its span: a span the job makes is its child.
            const inner = trace.getTracer('user-code').startSpan('charge.inner');
            seenInside.push(inner.spanContext().traceId);
            inner.end();
            if (ctx.attempt === 1 && calls++ === 0) throw new Error('card declined once');
            return { charged: true };
          },
        }),
        defineJob({
          type: 'broken',
          perform() {
            throw new Error('always broken');
          },
        }),
      ],
    });
    // A bare client (no bus): its jobs go through Postgres and a claim, never a hand-off.
    const client = await connect({ postgres: c.db.url, schema: c.db.schema });
    try {
      const tracer = trace.getTracer('test');
      const request = tracer.startSpan('http.request');
      const [charged, broken] = await context.with(trace.setSpan(context.active(), request), () =>
        Promise.all([client.enqueue('p', 'charge', { amount: 5 }), client.enqueue('p', 'broken')]),
      );
      request.end();
      t.deepEqual(await client.result(charged.id, { timeoutMs: 10_000 }), { charged: true });
      await t.throwsAsync(client.result(broken.id, { timeoutMs: 10_000 }), { instanceOf: JobFailedError });

      const spans = () => exporter.getFinishedSpans();
      const completeLinking = (performs: ReadableSpan[]) =>
        spans().filter(
          (s) => s.name === 'partita.complete' && s.links.some((l) => performs.some((p) => p.spanContext().spanId === l.context.spanId)),
        );
      const performsOf = (id: string) => spans().filter((s) => s.name === 'partita.perform' && s.attributes['partita.job.id'] === id);
      await until(
        'complete spans for every attempt',
        () =>
          performsOf(charged.id).length === 2 &&
          completeLinking(performsOf(charged.id)).length >= 2 &&
          completeLinking(performsOf(broken.id)).length === 1,
        10_000,
        20,
      );

      const requestCtx = request.spanContext();
      const enqueues = spans().filter((s) => s.name === 'partita.enqueue');
      const enqueueOf = (id: string) => enqueues.find((s) => s.attributes['partita.job.id'] === id)!;
      for (const id of [charged.id, broken.id]) {
        const e = enqueueOf(id);
        t.truthy(e, `an enqueue span names job ${id}`);
        t.is(e.kind, SpanKind.PRODUCER);
        t.is(e.spanContext().traceId, requestCtx.traceId, 'enqueue is in the caller’s trace');
        t.is(e.parentSpanContext?.spanId, requestCtx.spanId, 'enqueue is a child of the caller’s active span');
        t.is(e.attributes['partita.partition'], 'p');
      }

      // The charge job: attempt 1 failed, attempt 2 succeeded; both performs are children of its enqueue.
      const performs = performsOf(charged.id).sort(
        (a, b) => Number(a.attributes['partita.job.attempt']) - Number(b.attributes['partita.job.attempt']),
      );
      t.deepEqual(
        performs.map((s) => s.attributes['partita.job.attempt']),
        [1, 2],
      );
      for (const s of performs) {
        t.is(s.kind, SpanKind.CONSUMER);
        t.is(s.spanContext().traceId, requestCtx.traceId, 'perform is in the enqueuer’s trace');
        t.is(s.parentSpanContext?.spanId, enqueueOf(charged.id).spanContext().spanId, 'perform is a child of the enqueue span');
        t.like(s.attributes, { 'partita.job.type': 'charge', 'partita.partition': 'p', 'partita.queue': 'default' });
      }
      t.is(performs[0]!.status.code, SpanStatusCode.ERROR);
      t.is(performs[0]!.status.message, 'card declined once');
      t.true(
        performs[0]!.events.some((e) => e.name === 'exception'),
        'the failure is recorded as an exception event',
      );
      t.not(performs[1]!.status.code, SpanStatusCode.ERROR);
      const [brokenPerform] = performsOf(broken.id);
      t.is(brokenPerform!.status.code, SpanStatusCode.ERROR);
      t.is(brokenPerform!.parentSpanContext?.spanId, enqueueOf(broken.id).spanContext().spanId);

      // A span made inside perform belongs to the same trace (perform ran in its span's context).
      const inner = spans().filter((s) => s.name === 'charge.inner');
      t.is(inner.length, 2);
      for (const s of inner) t.true(performs.some((p) => p.spanContext().spanId === s.parentSpanContext?.spanId));
      t.deepEqual(new Set(seenInside), new Set([requestCtx.traceId]));

      // Each perform links to the claim that took it; that claim links back to the job's enqueue, by job id.
      for (const p of [...performs, brokenPerform!]) {
        const claimLink = p.links.find((l) => l.attributes?.['partita.link'] === 'claim');
        t.truthy(claimLink, 'perform links to its claim');
        const claim = spans().find((s) => s.spanContext().spanId === claimLink!.context.spanId)!;
        t.is(claim.name, 'partita.claim');
        t.true(Number(claim.attributes['partita.claim.count']) >= 1);
        t.is(claim.attributes['partita.partition'], 'p');
        const jobId = p.attributes['partita.job.id'];
        const back = claim.links.find((l) => l.attributes?.['partita.job.id'] === jobId);
        t.truthy(back, 'the claim links to the job by id');
        t.is(back!.context.spanId, enqueueOf(String(jobId)).spanContext().spanId);
        t.is(back!.context.traceId, requestCtx.traceId);
      }
      // One claim span per batch, not per job: no claim span claimed zero jobs (idle polls make none).
      t.true(
        spans()
          .filter((s) => s.name === 'partita.claim')
          .every((s) => Number(s.attributes['partita.claim.count']) > 0),
      );

      // Every attempt's outcome was written by a complete span linking to its perform, by job id.
      for (const p of [...performs, brokenPerform!]) {
        const [complete] = completeLinking([p]);
        t.truthy(complete);
        const link = complete!.links.find((l) => l.context.spanId === p.spanContext().spanId)!;
        t.is(link.attributes?.['partita.job.id'], p.attributes['partita.job.id']);
        t.is(link.context.traceId, requestCtx.traceId);
      }

      // The trace context is stored with the job, and job records do not show it.
      const { rows } = await c.db.pool.query(`SELECT lookup FROM jobs_history WHERE id = $1`, [charged.id]);
      t.regex(
        rows[0].lookup[TRACEPARENT_KEY],
        new RegExp(`^00-${requestCtx.traceId}-${enqueueOf(charged.id).spanContext().spanId}-0[01]$`),
      );
      t.is((await client.job(charged.id))!.lookup, null);
    } finally {
      await client.close();
      await node.stop({ graceMs: 200 });
    }
  } finally {
    await c.close();
  }
});

test.serial('a user lookup beside the trace context is kept, shown and searchable; a handed-off job is traced too', async (t) => {
  t.true(tracingActive());
  exporter.reset();
  const c = await cluster('otel_lookup');
  try {
    const node = await c.start({
      partitions,
      engine: fast,
      jobs: [defineJob({ type: 'find-me', perform: (p: { n: number }) => p.n * 2 })],
    });
    // The node's own client has the bus: an idle engine's advert lets an enqueue be handed straight to it.
    const spanOf = (name: string, id: string) =>
      exporter.getFinishedSpans().find((s) => s.name === name && s.attributes['partita.job.id'] === id);
    let handedOff: string | undefined;
    await until(
      'a job handed straight to the idle engine (no claim)',
      async () => {
        const { id } = await node.client.enqueue('p', 'find-me', { n: 0 });
        await node.client.result(id, { timeoutMs: 5000 });
        await until('its perform span', () => spanOf('partita.perform', id) !== undefined, 20_000, 5);
        if (spanOf('partita.perform', id)!.links.length === 0) handedOff = id;
        return handedOff !== undefined;
      },
      10_000,
      50,
    );
    t.is(
      spanOf('partita.perform', handedOff!)!.parentSpanContext?.spanId,
      spanOf('partita.enqueue', handedOff!)!.spanContext().spanId,
      'a handed-off job’s perform is a child of its enqueue',
    );
    // The same from another process's client: the hand-off message over NATS carries the trace context.
    const remote = await connect({
      postgres: c.db.url,
      schema: c.db.schema,
      nats: await natsUrl(),
      cluster: c.db.schema.replaceAll('_', '-'),
    });
    try {
      let overNats: string | undefined;
      await until(
        'a job handed to the node over NATS',
        async () => {
          const { id } = await remote.enqueue('p', 'find-me', { n: 1 });
          await remote.result(id, { timeoutMs: 5000 });
          await until('its perform span', () => spanOf('partita.perform', id) !== undefined, 20_000, 5);
          if (spanOf('partita.perform', id)!.links.length === 0) overNats = id;
          return overNats !== undefined;
        },
        10_000,
        50,
      );
      t.is(spanOf('partita.perform', overNats!)!.parentSpanContext?.spanId, spanOf('partita.enqueue', overNats!)!.spanContext().spanId);
    } finally {
      await remote.close();
    }
    const { id } = await node.client.enqueue('p', 'find-me', { n: 21 }, { lookup: { order: 'A-1', tags: ['x', 'y'] } });
    t.is(await node.client.result(id, { timeoutMs: 10_000 }), 42);
    const record = await node.client.job(id);
    t.deepEqual(record!.lookup, { order: 'A-1', tags: ['x', 'y'] });
    t.deepEqual(
      (await node.client.jobsByKey('p', 'tags', 'y')).map((j) => j.id),
      [id],
    );
    const { rows } = await c.db.pool.query(`SELECT lookup, lookup_index FROM jobs_history WHERE id = $1`, [id]);
    t.truthy(rows[0].lookup[TRACEPARENT_KEY]);
    t.false(TRACEPARENT_KEY in rows[0].lookup_index, 'the trace context is not indexed');
    await until(
      'its perform span',
      () => exporter.getFinishedSpans().some((s) => s.name === 'partita.perform' && s.attributes['partita.job.id'] === id),
      20_000,
      20,
    );
    const perform = exporter.getFinishedSpans().find((s) => s.name === 'partita.perform' && s.attributes['partita.job.id'] === id)!;
    const enqueue = exporter.getFinishedSpans().find((s) => s.name === 'partita.enqueue' && s.attributes['partita.job.id'] === id)!;
    t.is(perform.parentSpanContext?.spanId, enqueue.spanContext().spanId);
    t.is(perform.spanContext().traceId, enqueue.spanContext().traceId);
    // Malformed input meets the store's own checks, traced or not.
    await t.throwsAsync(clientStore(node.client).enqueue([null as never]), { instanceOf: ValidationError });
    await t.throwsAsync(clientStore(node.client).enqueue([{ partition: 'p', type: '' }]), { instanceOf: ValidationError });
    const failedEnqueue = exporter.getFinishedSpans().filter((s) => s.name === 'partita.enqueue' && s.status.code === SpanStatusCode.ERROR);
    t.is(failedEnqueue.length, 1, 'a refused enqueue ends its span with an error');
    await node.stop({ graceMs: 200 });
  } finally {
    await c.close();
  }
});
