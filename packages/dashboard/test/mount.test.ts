/**
 * The README's mounting recipes for Fastify and Koa, run as written: each framework serves its own
 * route beside the dashboard at /ui, a page loads through it, and a form POST (pause a queue) reaches
 * the cluster. Fastify parses request bodies itself (and refuses a form with 415 by default), so its
 * recipe takes the body parsers away inside the dashboard's scope; the handler reads the raw request.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import Koa from 'koa';
import { silentLogger } from '@partita/core';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { dashboard } from '@partita/dashboard';
import { freshSchema, natsUrl, tempDataDir, type TestSchema } from '../../../test/helpers/index.js';
import { listen } from './helpers.js';

let db: TestSchema;
let node: PartitaNode;

test.before(async () => {
  db = await freshSchema('dashm');
  node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: await natsUrl(),
    cluster: db.schema,
    dataDir: tempDataDir('dashm'),
    persister: 'postgres',
    logger: silentLogger(),
    partitions: { p: { queues: { fastify: { concurrency: 1 }, koa: { concurrency: 1 } } } },
    jobs: [defineJob({ type: 'm.noop', perform: async () => 'ok' })],
  });
});

test.after.always(async () => {
  await node?.stop({ graceMs: 100 }).catch(() => undefined);
  await db?.drop();
});

/** A page, the host app's own route, and a pause posted from the queues page, through `origin`. */
async function exercise(t: import('ava').ExecutionContext, origin: string, queue: string) {
  const overview = await fetch(`${origin}/ui`);
  t.is(overview.status, 200);
  t.regex(overview.headers.get('content-type') ?? '', /text\/html/);
  const queues = await fetch(`${origin}/ui/queues`);
  t.is(queues.status, 200);
  const page = await queues.text();
  t.regex(page, /href="\/ui\/jobs/, 'links are made under the mount');
  t.regex(page, /action="\/ui\/actions\/pause"/, 'the queues page offers pause under the mount');
  t.regex(await (await fetch(`${origin}/ui/assets/app.css`)).text(), /\S/, 'assets serve under the mount');

  const missing = await fetch(`${origin}/ui/jobs/${randomUUID()}`);
  t.is(missing.status, 404, 'a page with a status of its own keeps it');
  t.regex(await missing.text(), /No such job/);

  const stream = new AbortController();
  const events = await fetch(`${origin}/ui/events`, { signal: stream.signal });
  t.is(events.status, 200);
  t.regex(events.headers.get('content-type') ?? '', /text\/event-stream/, 'the live stream serves under the mount');
  stream.abort();

  const host = await fetch(`${origin}/hello`);
  t.is(await host.text(), 'host app', "the framework's own routes still answer");

  t.false((await node.client.paused('p')).includes(queue));
  const res = await fetch(`${origin}/ui/actions/pause`, {
    method: 'POST',
    body: new URLSearchParams({ partition: 'p', queue, return: '/ui/queues' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    redirect: 'manual',
  });
  t.is(res.status, 303, await res.clone().text());
  const location = new URL(res.headers.get('location')!, origin);
  t.is(location.pathname, '/ui/queues');
  t.regex(location.searchParams.get('msg') ?? '', /paused/);
  t.true((await node.client.paused('p')).includes(queue), 'the queue is paused in the cluster');
  await node.client.resume('p', queue);
}

test.serial('Fastify: the README recipe serves pages and takes a pause', async (t) => {
  const handler = dashboard({ client: node.client, basePath: '/ui' });
  const fastify = Fastify();
  fastify.get('/hello', async () => 'host app');
  // --- as in the README ---
  await fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
    const serve = (
      req: { raw: import('node:http').IncomingMessage },
      reply: { hijack(): void; raw: import('node:http').ServerResponse },
    ) => {
      reply.hijack();
      handler(req.raw, reply.raw);
    };
    scope.all('/ui', serve);
    scope.all('/ui/*', serve);
  });
  // ---
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await handler.close();
    await fastify.close();
  });
  await exercise(t, `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`, 'fastify');
});

test.serial('Koa: the README recipe serves pages and takes a pause', async (t) => {
  const handler = dashboard({ client: node.client, basePath: '/ui' });
  const app = new Koa();
  // --- as in the README ---
  app.use((ctx, next) => {
    if (ctx.path !== '/ui' && !ctx.path.startsWith('/ui/')) return next();
    ctx.respond = false; // the handler writes the response itself
    handler(ctx.req, ctx.res);
  });
  // ---
  app.use((ctx) => {
    if (ctx.path === '/hello') ctx.body = 'host app';
  });
  const s = await listen(app.callback(), [handler]); // what app.listen() serves
  t.teardown(s.close);
  await exercise(t, s.origin, 'koa');
});
