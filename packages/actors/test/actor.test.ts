import test from 'ava';
import {
  ActorCrashedError,
  ActorStoppedError,
  ActorSystemError,
  createSystem,
  InvalidSpecError,
  TimeoutError,
  type ActorContext,
  type ActorExit,
  type Behavior,
} from '@partita/actors';
import { gate, guardProcess, memoryLogger, sleep, tick, waitFor } from './helpers.js';

const problems = guardProcess(test);

test('call resolves with what handle returned, sync or async', async (t) => {
  const system = createSystem();
  const sync = system.spawn({ handle: (n: number) => n * 2 });
  const async = system.spawn({
    handle: async (n: number) => {
      await sleep(1);
      return `got ${n}`;
    },
  });
  t.is(await sync.call(21), 42);
  t.is(await async.call(7), 'got 7');
  t.deepEqual(await Promise.all([sync.call(1), sync.call(2), sync.call(3)]), [2, 4, 6]);
  await system.shutdown();
});

test('messages are handled in arrival order, casts and calls alike', async (t) => {
  const system = createSystem();
  const seen: string[] = [];
  const ref = system.spawn({
    handle(msg: string) {
      seen.push(msg);
      return msg.toUpperCase();
    },
  });
  ref.cast('a');
  const b = ref.call('b');
  ref.cast('c');
  const d = ref.call('d');
  ref.cast('e');
  t.deepEqual(await Promise.all([b, d]), ['B', 'D']);
  await ref.call('f');
  t.deepEqual(seen, ['a', 'b', 'c', 'd', 'e', 'f']);
  await system.shutdown();
});

test("delivery is asynchronous: cast never runs the handler on the sender's stack", async (t) => {
  const system = createSystem();
  const seen: number[] = [];
  const ref = system.spawn({ handle: (n: number) => void seen.push(n) });
  ref.cast(1);
  t.deepEqual(seen, [], 'handled only after the sender yields');
  await ref.call(2);
  t.deepEqual(seen, [1, 2]);
  await system.shutdown();
});

test('an async handler holds the mailbox: the next message waits until it settles', async (t) => {
  const system = createSystem();
  let active = 0;
  let maxActive = 0;
  const log: string[] = [];
  const ref = system.spawn({
    async handle(msg: { id: number; waits: number }) {
      active++;
      maxActive = Math.max(maxActive, active);
      log.push(`start ${msg.id}`);
      for (let i = 0; i < msg.waits; i++) await (i % 2 ? tick() : sleep(1));
      log.push(`end ${msg.id}`);
      active--;
      return msg.id;
    },
  });
  const results = await Promise.all([3, 0, 2, 1, 4].map((waits, id) => ref.call({ id, waits })));
  t.deepEqual(results, [0, 1, 2, 3, 4]);
  t.is(maxActive, 1);
  t.deepEqual(
    log,
    [0, 1, 2, 3, 4].flatMap((id) => [`start ${id}`, `end ${id}`]),
  );
  await system.shutdown();
});

test('call rejects with TimeoutError after timeoutMs; the late reply is dropped and the actor goes on', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const slow = gate();
  let slowDone = false;
  const ref = system.spawn({
    async handle(n: number) {
      if (n === 0) {
        await slow.promise;
        slowDone = true;
      }
      return n;
    },
  });
  const err = await t.throwsAsync(ref.call(0, { timeoutMs: 15 }), { instanceOf: TimeoutError });
  t.false(slowDone, 'rejected at the timeout, while the handler is still running');
  slow.open();
  t.is(err.code, 'TIMEOUT');
  t.is(err.message, 'call to actor "actor#1" did not finish within 15 ms; raise timeoutMs or check that the other side is alive');
  t.is(await ref.call(1), 1, 'the next call is answered once the slow one is done');
  t.true(ref.alive);
  t.true(logger.entries.some((e) => e.level === 'debug' && /reply after the caller timed out/.test(e.msg ?? '')));
  await system.shutdown();
});

test('the system callTimeoutMs is the default timeout of call, Infinity disables it', async (t) => {
  const system = createSystem({ callTimeoutMs: 10 });
  const never = gate<string>();
  const ref = system.spawn({ handle: (m: string) => (m === 'hang' ? never.promise : m) });
  await t.throwsAsync(ref.call('hang'), { instanceOf: TimeoutError, message: /within 10 ms/ });
  const pending = ref.call('x', { timeoutMs: Infinity });
  await sleep(30);
  never.open('ignored');
  t.is(await pending, 'x');
  await t.throwsAsync(ref.call('x', { timeoutMs: -1 }), { instanceOf: InvalidSpecError });
  await t.throwsAsync(ref.call('x', { timeoutMs: Number.NaN }), { instanceOf: InvalidSpecError });
  await system.shutdown();
});

test('a sync throw in handle crashes the actor; its caller gets ActorCrashedError with the cause', async (t) => {
  const system = createSystem();
  const boom = new Error('boom');
  const ref = system.spawn({
    handle(n: number) {
      if (n === 2) throw boom;
      return n;
    },
  });
  t.is(await ref.call(1), 1);
  const err = await t.throwsAsync(ref.call(2), { instanceOf: ActorCrashedError });
  t.is(err.cause, boom);
  t.is(err.code, 'ACTOR_CRASHED');
  t.regex(err.message, /actor "actor#1" crashed while handling this message: boom; .*retry/);
  t.false(ref.alive);
  const after = await t.throwsAsync(ref.call(3), { instanceOf: ActorStoppedError });
  t.is(after.code, 'ACTOR_STOPPED');
  t.is(after.reason, boom);
  await system.shutdown();
});

test('a rejection in an async handler crashes the actor the same way', async (t) => {
  const system = createSystem();
  const ref = system.spawn({
    async handle(n: number) {
      await tick();
      if (n < 0) throw new RangeError('negative');
      return n;
    },
  });
  const err = await t.throwsAsync(ref.call(-1), { instanceOf: ActorCrashedError });
  t.true(err.cause instanceof RangeError);
  t.false(ref.alive);
  await system.shutdown();
});

test('calls queued behind a crash are rejected with ActorStoppedError and never handled', async (t) => {
  const system = createSystem();
  const handled: number[] = [];
  const release = gate();
  const ref = system.spawn({
    async handle(n: number) {
      handled.push(n);
      if (n === 1) {
        await release.promise;
        throw new Error('crash on 1');
      }
      return n;
    },
  });
  const first = ref.call(1);
  const queued = [ref.call(2), ref.call(3)];
  ref.cast(4);
  await tick();
  t.is(ref.mailboxSize, 3);
  release.open();
  await t.throwsAsync(first, { instanceOf: ActorCrashedError });
  for (const q of queued) {
    const err = await t.throwsAsync(q, { instanceOf: ActorStoppedError });
    t.regex(err.message, /crashed before handling this call/);
  }
  t.deepEqual(handled, [1]);
  t.is(ref.mailboxSize, 0);
  await system.shutdown();
});

test('a crash never reaches the process, and casts that crash reject nothing', async (t) => {
  const system = createSystem();
  const refs = Array.from({ length: 20 }, (_, i) =>
    system.spawn({
      async handle(m: string) {
        if (i % 2) throw new Error(`sync-ish ${m}`);
        await tick();
        throw new Error(`async ${m}`);
      },
    }),
  );
  for (const r of refs) r.cast('die');
  await waitFor(() => refs.every((r) => !r.alive), 'every actor to crash');
  await sleep(10);
  t.deepEqual(problems, []);
  await system.shutdown();
});

test('cast to an actor that is not alive is dropped and logged at debug, never thrown', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const seen: number[] = [];
  const ref = system.spawn({ handle: (n: number) => void seen.push(n) });
  await ref.stop();
  t.notThrows(() => ref.cast(1));
  t.deepEqual(seen, []);
  t.true(logger.entries.some((e) => e.level === 'debug' && e.obj['actor'] === 'actor#1' && /dropped/.test(e.msg ?? '')));
  await t.throwsAsync(ref.call(1), { instanceOf: ActorStoppedError, message: /"actor#1" is not running \(reason: normal\)/ });
  await system.shutdown();
});

test('init runs before the first message; messages sent meanwhile wait in order', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const ready = gate();
  const ref = system.spawn({
    async init(ctx) {
      log.push('init start');
      ctx.self.cast('from init');
      await ready.promise;
      log.push('init end');
    },
    handle(m: string) {
      log.push(m);
      return m;
    },
  });
  ref.cast('early cast');
  const early = ref.call('early call');
  await sleep(5);
  t.deepEqual(log, ['init start']);
  t.true(ref.alive);
  ready.open();
  t.is(await early, 'early call');
  t.deepEqual(log, ['init start', 'init end', 'from init', 'early cast', 'early call']);
  await system.shutdown();
});

test('init failure is a crash: waiting calls are rejected, terminate is not called', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  let terminated = false;
  const exits: ActorExit[] = [];
  const ref = system.spawn({
    async init() {
      await tick();
      throw new Error('no database');
    },
    handle: (m: string) => m,
    terminate() {
      terminated = true;
    },
  });
  ref.monitor((exit) => exits.push(exit));
  const err = await t.throwsAsync(ref.call('x'), { instanceOf: ActorStoppedError });
  t.is((err.reason as Error).message, 'no database');
  await waitFor(() => exits.length === 1, 'the exit');
  t.false(terminated);
  t.true(exits[0]!.crashed);
  t.false(ref.alive);
  t.true(logger.entries.some((e) => e.level === 'error' && /failed to start/.test(e.msg ?? '')));

  const syncFail = system.spawn({
    init() {
      throw new Error('sync init failure');
    },
    handle: () => 1,
  });
  await t.throwsAsync(syncFail.call(undefined), { instanceOf: ActorStoppedError, message: /sync init failure/ });
  await system.shutdown();
});

test('stop waits for the message in progress, rejects queued calls, drops queued casts, then runs terminate', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const release = gate();
  const ref = system.spawn({
    async handle(m: string) {
      log.push(`handle ${m}`);
      if (m === 'slow') await release.promise;
      return m;
    },
    terminate(reason) {
      log.push(`terminate ${String(reason)}`);
    },
  });
  const slow = ref.call('slow');
  const queued = ref.call('queued');
  ref.cast('queued cast');
  await tick();
  const stopped = ref.stop('enough');
  t.false(ref.alive);
  await t.throwsAsync(queued, { instanceOf: ActorStoppedError, message: /stopped before handling this call/ });
  await sleep(5);
  t.deepEqual(log, ['handle slow'], 'terminate waits for the handler in progress');
  release.open();
  t.is(await slow, 'slow', 'the message in progress still gets its reply');
  await stopped;
  t.deepEqual(log, ['handle slow', 'terminate enough']);
  let again = false;
  void ref.stop().then(() => (again = true));
  await tick();
  t.true(again, 'stop of a stopped actor resolves at once');
  await system.shutdown();
});

test('stop is idempotent while stopping and never rejects, even if terminate throws or rejects', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const a = system.spawn({
    handle: () => 1,
    terminate() {
      throw new Error('terminate threw');
    },
  });
  const b = system.spawn({
    handle: () => 1,
    async terminate() {
      await tick();
      throw new Error('terminate rejected');
    },
  });
  await a.call(undefined);
  await b.call(undefined);
  const p1 = b.stop();
  const p2 = b.stop();
  t.is(p1, p2);
  await t.notThrowsAsync(a.stop());
  await t.notThrowsAsync(p1);
  t.is(logger.entries.filter((e) => e.level === 'warn' && /terminate/.test(e.msg ?? '')).length, 2);
  await system.shutdown();
});

test('terminate gets the crash error as reason; monitors see crashed: true', async (t) => {
  const system = createSystem();
  const reasons: unknown[] = [];
  const exits: ActorExit[] = [];
  const boom = new Error('boom');
  const ref = system.spawn({
    handle() {
      throw boom;
    },
    terminate(reason) {
      reasons.push(reason);
    },
  });
  ref.monitor((e) => exits.push(e));
  ref.cast(undefined);
  await waitFor(() => exits.length === 1, 'the exit');
  t.deepEqual(reasons, [boom]);
  t.deepEqual(exits, [{ reason: boom, crashed: true }]);
  const late: ActorExit[] = [];
  ref.monitor((e) => late.push(e));
  await tick();
  t.deepEqual(late, [{ reason: boom, crashed: true }], 'monitoring a dead actor reports its exit');
  const normal = system.spawn({ handle: () => 0 });
  const normalExits: ActorExit[] = [];
  const unmonitor = normal.monitor((e) => normalExits.push(e));
  const other: ActorExit[] = [];
  normal.monitor((e) => other.push(e));
  unmonitor();
  await normal.stop('bye');
  t.deepEqual(normalExits, []);
  t.deepEqual(other, [{ reason: 'bye', crashed: false }]);
  await system.shutdown();
});

test('a terminate slower than shutdownMs is abandoned with a warning', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const ref = system.spawn(
    {
      handle: () => 1,
      terminate: () => new Promise<void>(() => {}),
    },
    { shutdownMs: 30, name: 'stuck' },
  );
  await ref.call(undefined);
  const started = Date.now();
  await ref.stop();
  const took = Date.now() - started;
  // Abandoned at its 30 ms, not after the default 5 s: generous, for timers on a loaded machine.
  t.true(took >= 25 && took < 2500, `took ${took} ms`);
  t.true(logger.entries.some((e) => e.level === 'warn' && e.obj['actor'] === 'stuck' && /abandoned/.test(e.msg ?? '')));
  t.is(system.whereis('stuck'), undefined);
  await system.shutdown();
});

test('a handler still running at shutdownMs is abandoned: its caller gets ActorStoppedError', async (t) => {
  const system = createSystem();
  let terminated = false;
  const ref = system.spawn(
    {
      handle: () => new Promise<number>(() => {}),
      terminate() {
        terminated = true;
      },
    },
    { shutdownMs: 20 },
  );
  const hung = ref.call(undefined, { timeoutMs: Infinity });
  await tick();
  await ref.stop();
  await t.throwsAsync(hung, { instanceOf: ActorStoppedError, message: /abandoned while handling this call/ });
  t.false(terminated, 'terminate does not run while the handler may still be running');
  await system.shutdown();
});

test('ctx: self, name, system, a logger bound to the actor, and stop() from inside a handler', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger, name: 'sys' });
  let seen: ActorContext | undefined;
  const log: string[] = [];
  const ref = system.spawn(
    {
      handle(m: string, ctx) {
        seen = ctx;
        ctx.logger.info({ m }, 'handling');
        if (m === 'quit') ctx.stop('asked to');
        log.push(m);
        return m;
      },
      terminate(reason) {
        log.push(`terminate ${String(reason)}`);
      },
    },
    { name: 'worker' },
  );
  await ref.call('hello');
  t.is(seen!.self, ref);
  t.is(seen!.name, 'worker');
  t.is(seen!.system, system);
  t.is(system.name, 'sys');
  const entry = logger.entries.find((e) => e.msg === 'handling');
  t.deepEqual(entry?.bindings, { actor: 'worker' });
  t.deepEqual(entry?.obj, { m: 'hello' });
  t.is(seen!.logger, seen!.logger, 'the child logger is made once');
  const stop = ref.call('quit');
  ref.cast('after quit');
  t.is(await stop, 'quit', 'the handler that called ctx.stop() still replies');
  await waitFor(() => log.includes('terminate asked to'), 'terminate');
  t.deepEqual(log, ['hello', 'quit', 'terminate asked to']);
  await system.shutdown();
});

test('ctx.signal aborts when the actor stops, so a long handler can give up', async (t) => {
  const system = createSystem();
  let aborted: unknown;
  const ref = system.spawn({
    handle(_: null, ctx) {
      return new Promise<string>((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = ctx.signal.reason;
          resolve('gave up');
        });
      });
    },
  });
  const running = ref.call(null, { timeoutMs: Infinity });
  await tick();
  await ref.stop('cancel');
  t.is(await running, 'gave up');
  t.is(aborted, 'cancel');
  await system.shutdown();
});

test('ctx.sendAfter and ctx.sendEvery cast to self and are cleared when the actor stops', async (t) => {
  const system = createSystem();
  const seen: string[] = [];
  let cancelLater: (() => void) | undefined;
  const ref = system.spawn({
    init(ctx) {
      ctx.sendEvery(5, 'tick');
      ctx.sendAfter(10, 'once');
      cancelLater = ctx.sendAfter(10, 'cancelled');
    },
    handle(m: string) {
      seen.push(m);
    },
  });
  cancelLater!();
  await waitFor(() => seen.filter((m) => m === 'tick').length >= 3 && seen.includes('once'), 'timer messages');
  t.false(seen.includes('cancelled'));
  await ref.stop();
  const count = seen.length;
  await sleep(25);
  t.is(seen.length, count, 'no timer fires into a stopped actor');
  await system.shutdown();
});

test("a crash clears the actor's timers too", async (t) => {
  const system = createSystem();
  let ticks = 0;
  const ref = system.spawn({
    init(ctx) {
      ctx.sendEvery(2, 'tick');
    },
    handle(m: string) {
      if (m === 'tick') ticks++;
      if (ticks === 3) throw new Error('third tick');
    },
  });
  await waitFor(() => !ref.alive, 'the crash');
  await sleep(15);
  t.is(ticks, 3);
  await system.shutdown();
});

test('a flood of casts does not starve the event loop, and every message is handled in order', async (t) => {
  const system = createSystem();
  const n = 30_000;
  let handled = 0;
  let inOrder = true;
  const ref = system.spawn({
    handle(i: number) {
      if (i !== handled) inOrder = false;
      handled++;
    },
  });
  let atImmediate = -1;
  let atTimeout = -1;
  setImmediate(() => (atImmediate = handled));
  setTimeout(() => (atTimeout = handled), 0);
  for (let i = 0; i < n; i++) ref.cast(i);
  await waitFor(() => handled >= n, 'all messages');
  t.true(atImmediate >= 0 && atImmediate < n, `setImmediate ran after ${atImmediate} messages`);
  t.true(atTimeout >= 0 && atTimeout < n, `setTimeout ran after ${atTimeout} messages`);
  t.true(inOrder);
  await system.shutdown();
});

test('two actors casting to each other forever still let timers run', async (t) => {
  const system = createSystem();
  let exchanged = 0;
  let stop = false;
  const ping = system.spawn<number, void>({
    handle(n) {
      exchanged++;
      if (!stop) pong.cast(n + 1);
    },
  });
  const pong = system.spawn<number, void>({
    handle(n) {
      exchanged++;
      if (!stop) ping.cast(n + 1);
    },
  });
  ping.cast(0);
  await sleep(20); // only returns if the ping-pong yields to the event loop
  stop = true;
  t.true(exchanged > 100, `exchanged ${exchanged}`);
  await system.shutdown();
});

test('a long backlog behind async handlers keeps its order (mailbox reuse and compaction)', async (t) => {
  const system = createSystem();
  const seen: number[] = [];
  const ref = system.spawn({
    async handle(i: number) {
      if (i % 500 === 0) await tick();
      seen.push(i);
      return i;
    },
  });
  const n = 12_000;
  const calls: Promise<number>[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) calls.push(ref.call(i, { timeoutMs: Infinity }));
    else ref.cast(i);
    if (i % 4000 === 0) await tick();
  }
  const answers = await Promise.all(calls);
  await ref.call(-1);
  t.is(seen.length, n + 1);
  t.true(seen.every((v, i) => (i < n ? v === i : v === -1)));
  t.true(answers.every((v, i) => v === i * 3));
  t.is(ref.mailboxSize, 0);
  await system.shutdown();
});

test('spawn validates its arguments', (t) => {
  const system = createSystem();
  t.throws(() => system.spawn({} as Behavior), { instanceOf: InvalidSpecError, message: /handle/ });
  t.throws(() => system.spawn({ handle: () => 1 }, { name: '' }), { instanceOf: InvalidSpecError });
  t.throws(() => system.spawn({ handle: () => 1 }, { shutdownMs: -5 }), { instanceOf: InvalidSpecError });
  t.throws(() => createSystem({ callTimeoutMs: -1 }), { instanceOf: InvalidSpecError });
  const e = t.throws(() => system.spawn(null as unknown as Behavior));
  t.true(e instanceof ActorSystemError);
});

test('refs have ids, names and kind; a spawned actor is alive until it stops', async (t) => {
  const system = createSystem();
  const a = system.spawn({ handle: () => 1 });
  const b = system.spawn({ handle: () => 1 }, { name: 'b' });
  t.is(a.kind, 'actor');
  t.not(a.id, b.id);
  t.is(a.name, `actor#${a.id}`);
  t.is(b.name, 'b');
  t.true(a.alive);
  await system.shutdown();
  t.false(a.alive);
  t.false(b.alive);
});

test('system.shutdown stops top-level actors, most recently spawned first', async (t) => {
  const system = createSystem();
  const order: string[] = [];
  for (const name of ['first', 'second', 'third']) {
    system.spawn(
      {
        handle: () => 0,
        async terminate() {
          await tick();
          order.push(name);
        },
      },
      { name },
    );
  }
  await system.shutdown();
  t.deepEqual(order, ['third', 'second', 'first']);
  t.is(system.shutdown(), system.shutdown(), 'idempotent');
});

test('a handler that calls ctx.stop() and then throws ends as one crash, not two stops', async (t) => {
  const system = createSystem();
  const reasons: unknown[] = [];
  const exits: ActorExit[] = [];
  const boom = new Error('after stop');
  const ref = system.spawn({
    handle(_: null, ctx) {
      ctx.stop('leaving');
      throw boom;
    },
    terminate(reason) {
      reasons.push(reason);
    },
  });
  ref.monitor((e) => exits.push(e));
  await t.throwsAsync(ref.call(null), { instanceOf: ActorCrashedError });
  await ref.stop();
  await sleep(5);
  t.deepEqual(reasons, [boom]);
  t.deepEqual(exits, [{ reason: boom, crashed: true }]);
  await system.shutdown();
});

test('ctx.stop() begins a stop no one awaits; a ref.stop() during it resolves only once terminate has finished and monitors fired', async (t) => {
  const system = createSystem();
  const order: string[] = [];
  const slowTerminate = gate();
  const ref = system.spawn({
    handle(_msg: 'bye', ctx: ActorContext) {
      ctx.stop('done');
      order.push('handler returned');
    },
    async terminate(reason: unknown) {
      order.push(`terminate ${String(reason)}`);
      await slowTerminate.promise;
      order.push('terminate finished');
    },
  });
  ref.monitor((exit: ActorExit) => order.push(`monitor ${String(exit.reason)}`));
  ref.cast('bye');
  await waitFor(() => order.includes('terminate done'), 'terminate called');
  t.false(ref.alive);
  const stopped = ref.stop('again').then(() => order.push('stop resolved'));
  await tick();
  t.false(order.includes('stop resolved'), 'not before terminate finished');
  slowTerminate.open();
  await stopped;
  t.deepEqual(order, ['handler returned', 'terminate done', 'terminate finished', 'monitor done', 'stop resolved']);
  // Once stopped, stop() resolves at once and a late monitor still hears the exit.
  await ref.stop();
  const late: unknown[] = [];
  ref.monitor((exit: ActorExit) => late.push(exit.reason));
  await tick();
  t.deepEqual(late, ['done']);
  await system.shutdown();
});
