import test from 'ava';
import {
  ActorCrashedError,
  ActorStoppedError,
  ChildStartError,
  createSystem,
  DuplicateChildError,
  InvalidSpecError,
  SupervisorGaveUpError,
  type ActorRef,
  type Behavior,
  type ChildSpec,
  type RestartPolicy,
  type Strategy,
  type SupervisorRef,
  type SupervisorSpec,
} from '@partita/actors';
import { gate, guardProcess, memoryLogger, sleep, tick, waitFor } from './helpers.js';

guardProcess(test);

type Msg = 'crash' | 'ping' | 'stop';

/** A child that records its lifecycle in `log` as "<event> <id>#<incarnation>". */
function recorder(log: string[], id: string, opts: { initMs?: number; failInit?: () => boolean } = {}) {
  let incarnation = 0;
  const starts = { count: 0 };
  const start = (): Behavior<Msg, string> => {
    const n = ++incarnation;
    starts.count++;
    return {
      async init() {
        log.push(`init ${id}#${n}`);
        if (opts.initMs) await sleep(opts.initMs);
        if (opts.failInit?.()) throw new Error(`init of ${id} failed`);
        log.push(`ready ${id}#${n}`);
      },
      handle(msg, ctx) {
        if (msg === 'crash') throw new Error(`${id} crashed`);
        if (msg === 'stop') ctx.stop();
        return `${id}#${n}`;
      },
      terminate(reason) {
        log.push(`terminate ${id}#${n} ${reason instanceof Error ? 'error' : String(reason)}`);
      },
    };
  };
  return { start, starts };
}

function specOf(
  log: string[],
  strategy: Strategy,
  ids: string[],
  restart?: RestartPolicy,
  extra: Partial<SupervisorSpec> = {},
): SupervisorSpec {
  return {
    strategy,
    ...extra,
    children: ids.map((id) => ({ id, start: recorder(log, id).start, ...(restart ? { restart } : {}) })),
  };
}

const refOf = (sup: SupervisorRef, id: string) => sup.child(id) as ActorRef<Msg, string>;

/** Crashes child `id` and waits until the supervisor has a live replacement for it. */
async function crashAndWait(sup: SupervisorRef, id: string): Promise<ActorRef<Msg, string>> {
  const old = refOf(sup, id);
  old.cast('crash');
  await waitFor(() => {
    const now = sup.child(id);
    return now !== undefined && now !== old && now.alive && !sup.children().some((c) => !c.ref.alive);
  }, `a restarted ${id}`);
  return refOf(sup, id);
}

test('supervise starts children left to right, each init after the previous one resolved, and resolves after the last', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const spec: SupervisorSpec = {
    strategy: 'one_for_one',
    children: ['a', 'b', 'c'].map((id, i) => ({ id, start: recorder(log, id, { initMs: 10 - i * 4 }).start })),
  };
  const sup = await system.supervise(spec);
  t.deepEqual(log, ['init a#1', 'ready a#1', 'init b#1', 'ready b#1', 'init c#1', 'ready c#1']);
  t.deepEqual(
    sup.children().map((c) => [c.id, c.restarts, c.ref.alive, c.ref.kind]),
    [
      ['a', 0, true, 'actor'],
      ['b', 0, true, 'actor'],
      ['c', 0, true, 'actor'],
    ],
  );
  t.is(await refOf(sup, 'b').call('ping'), 'b#1');
  t.is(sup.kind, 'supervisor');
  t.true(sup.alive);
  await system.shutdown();
});

test('stop stops children in reverse start order, then the supervisor', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['a', 'b', 'c']));
  log.length = 0;
  await sup.stop();
  t.deepEqual(log, ['terminate c#1 shutdown', 'terminate b#1 shutdown', 'terminate a#1 shutdown']);
  t.false(sup.alive);
  t.deepEqual(sup.children(), []);
  await t.notThrowsAsync(sup.stop());
  await system.shutdown();
});

test('a child whose init fails fails supervise(): started siblings are stopped in reverse, no fatal', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const fatal: unknown[] = [];
  system.on('fatal', (e) => fatal.push(e));
  const spec: SupervisorSpec = {
    strategy: 'one_for_one',
    children: [
      { id: 'a', start: recorder(log, 'a').start },
      { id: 'b', start: recorder(log, 'b').start },
      { id: 'c', start: recorder(log, 'c', { failInit: () => true }).start },
      { id: 'd', start: recorder(log, 'd').start },
    ],
  };
  const err = await t.throwsAsync(system.supervise(spec, { name: 'top' }), { instanceOf: ChildStartError });
  t.is(err.code, 'CHILD_START_FAILED');
  t.is(err.childId, 'c');
  t.is((err.cause as Error).message, 'init of c failed');
  t.regex(err.message, /child "c" of supervisor "top" failed to start: init of c failed; /);
  t.deepEqual(log, ['init a#1', 'ready a#1', 'init b#1', 'ready b#1', 'init c#1', 'terminate b#1 shutdown', 'terminate a#1 shutdown']);
  t.deepEqual(fatal, []);
  t.is(system.whereisSupervisor('top'), undefined);
  t.deepEqual(system.registered(), []);
  await system.shutdown();
});

test('a start() that throws or returns junk is a start failure too', async (t) => {
  const system = createSystem();
  const throws = await t.throwsAsync(
    system.supervise({
      strategy: 'one_for_one',
      children: [
        {
          id: 'x',
          start: () => {
            throw new Error('cannot build');
          },
        },
      ],
    }),
    { instanceOf: ChildStartError },
  );
  t.is((throws.cause as Error).message, 'cannot build');
  const junk = await t.throwsAsync(system.supervise({ strategy: 'one_for_one', children: [{ id: 'x', start: () => ({}) as Behavior }] }), {
    instanceOf: ChildStartError,
  });
  t.true(junk.cause instanceof InvalidSpecError);
  await system.shutdown();
});

test('one_for_one restarts only the crashed child, with a fresh behavior from the same start()', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['a', 'b', 'c']));
  const [a, c] = [refOf(sup, 'a'), refOf(sup, 'c')];
  log.length = 0;
  const b2 = await crashAndWait(sup, 'b');
  t.is(await b2.call('ping'), 'b#2');
  t.deepEqual(log, ['terminate b#1 error', 'init b#2', 'ready b#2']);
  t.is(refOf(sup, 'a'), a);
  t.is(refOf(sup, 'c'), c);
  t.deepEqual(
    sup.children().map((x) => [x.id, x.restarts]),
    [
      ['a', 0],
      ['b', 1],
      ['c', 0],
    ],
  );
  await system.shutdown();
});

test('one_for_all stops the others (last first) and restarts everyone left to right', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_all', ['a', 'b', 'c']));
  log.length = 0;
  await crashAndWait(sup, 'b');
  t.deepEqual(log, [
    'terminate b#1 error',
    'terminate c#1 shutdown',
    'terminate a#1 shutdown',
    'init a#2',
    'ready a#2',
    'init b#2',
    'ready b#2',
    'init c#2',
    'ready c#2',
  ]);
  t.deepEqual(
    sup.children().map((x) => [x.id, x.restarts]),
    [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ],
  );
  t.is(await refOf(sup, 'a').call('ping'), 'a#2');
  await system.shutdown();
});

test('rest_for_one restarts the crashed child and those started after it', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'rest_for_one', ['a', 'b', 'c', 'd']));
  const a = refOf(sup, 'a');
  log.length = 0;
  await crashAndWait(sup, 'b');
  t.deepEqual(log, [
    'terminate b#1 error',
    'terminate d#1 shutdown',
    'terminate c#1 shutdown',
    'init b#2',
    'ready b#2',
    'init c#2',
    'ready c#2',
    'init d#2',
    'ready d#2',
  ]);
  t.is(refOf(sup, 'a'), a);
  t.true(a.alive);
  await system.shutdown();
});

test('permanent children come back even after a normal stop', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['p'], 'permanent'));
  const p1 = refOf(sup, 'p');
  await p1.stop();
  await waitFor(() => refOf(sup, 'p') !== p1 && refOf(sup, 'p').alive, 'the restart');
  t.is(await refOf(sup, 'p').call('ping'), 'p#2');
  t.is(sup.children()[0]!.restarts, 1);
  await system.shutdown();
});

test('transient children are restarted after a crash but not after a normal stop', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['t', 'other'], 'transient'));
  await crashAndWait(sup, 't');
  t.is(await refOf(sup, 't').call('ping'), 't#2');
  const t2 = refOf(sup, 't');
  await t2.call('stop');
  await waitFor(() => !sup.children().some((c) => c.id === 't'), 'the child to be dropped');
  await sleep(10);
  t.deepEqual(
    sup.children().map((c) => c.id),
    ['other'],
  );
  t.false(log.includes('init t#3'));
  await system.shutdown();
});

test('temporary children are never restarted', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['x', 'y'], 'temporary'));
  refOf(sup, 'x').cast('crash');
  await refOf(sup, 'y').call('stop');
  await waitFor(() => sup.children().length === 0, 'both children gone');
  await sleep(10);
  t.deepEqual(
    log.filter((l) => l.startsWith('init')),
    ['init x#1', 'init y#1'],
  );
  t.true(sup.alive, 'exits of temporary children do not count against intensity');
  await system.shutdown();
});

test('one_for_all does not bring back temporary siblings', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise({
    strategy: 'one_for_all',
    children: [
      { id: 'perm', start: recorder(log, 'perm').start },
      { id: 'temp', start: recorder(log, 'temp').start, restart: 'temporary' },
    ],
  });
  await crashAndWait(sup, 'perm');
  t.deepEqual(
    sup.children().map((c) => c.id),
    ['perm'],
  );
  t.true(log.includes('terminate temp#1 shutdown'));
  t.false(log.includes('init temp#2'));
  await system.shutdown();
});

test('the restarted child starts with an empty mailbox; calls queued behind the crash are rejected, never hang', async (t) => {
  const system = createSystem();
  const handled: string[] = [];
  const release = gate();
  let incarnation = 0;
  const sup = await system.supervise({
    strategy: 'one_for_one',
    children: [
      {
        id: 'w',
        start: () => {
          const n = ++incarnation;
          return {
            async handle(m: string) {
              handled.push(`${n}:${m}`);
              if (m === 'crash') {
                await release.promise;
                throw new Error('crash');
              }
              return `${n}:${m}`;
            },
          };
        },
      },
    ],
  });
  const w1 = sup.child('w') as ActorRef<string, string>;
  const crash = w1.call('crash');
  const queued = [w1.call('q1'), w1.call('q2')];
  w1.cast('q3');
  await tick();
  release.open();
  await t.throwsAsync(crash, { instanceOf: ActorCrashedError });
  for (const q of queued) await t.throwsAsync(q, { instanceOf: ActorStoppedError });
  await waitFor(() => sup.child('w') !== w1 && sup.child('w')!.alive, 'the restart');
  const w2 = sup.child('w') as ActorRef<string, string>;
  t.is(w2.mailboxSize, 0);
  t.is(await w2.call('fresh'), '2:fresh');
  t.deepEqual(handled, ['1:crash', '2:fresh']);
  await system.shutdown();
});

test('more than intensity restarts within periodMs: the supervisor stops its children and a root emits fatal', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const log: string[] = [];
  const fatal: { err: Error; sup: SupervisorRef }[] = [];
  system.on('fatal', (err, sup) => fatal.push({ err, sup }));
  const sup = await system.supervise(specOf(log, 'one_for_one', ['a', 'b', 'c'], 'permanent', { intensity: 2, periodMs: 1000 }), {
    name: 'root',
  });
  await crashAndWait(sup, 'b');
  await crashAndWait(sup, 'b');
  t.true(sup.alive, 'two restarts are within intensity 2');
  log.length = 0;
  refOf(sup, 'b').cast('crash');
  await waitFor(() => !sup.alive && fatal.length === 1, 'the supervisor to give up');
  t.deepEqual(log, ['terminate b#3 error', 'terminate c#1 shutdown', 'terminate a#1 shutdown']);
  const err = fatal[0]!.err as SupervisorGaveUpError;
  t.true(err instanceof SupervisorGaveUpError);
  t.is(err.code, 'SUPERVISOR_GAVE_UP');
  t.is(err.childId, 'b');
  t.is((err.cause as Error).message, 'b crashed');
  t.regex(err.message, /supervisor "root" gave up: more than 2 restarts within 1000 ms \(last: child "b": b crashed\); fix/);
  t.is(fatal[0]!.sup, sup);
  t.is(system.whereisSupervisor('root'), undefined);
  t.true(logger.entries.some((e) => e.level === 'error' && /root supervisor gave up/.test(e.msg ?? '')));
  await t.throwsAsync(sup.startChild({ id: 'late', start: () => ({ handle: () => 1 }) }), { instanceOf: ActorStoppedError });
  await system.shutdown();
});

test('intensity 0 gives up on the first crash; off() removes a fatal listener', async (t) => {
  const system = createSystem();
  const seen: string[] = [];
  const first = (e: Error) => seen.push(`first ${e.name}`);
  const second = (e: Error) => seen.push(`second ${e.name}`);
  system.on('fatal', first).on('fatal', second).off('fatal', first);
  const sup = await system.supervise(specOf([], 'one_for_one', ['a'], 'permanent', { intensity: 0 }));
  refOf(sup, 'a').cast('crash');
  await waitFor(() => !sup.alive, 'the supervisor to give up');
  t.deepEqual(seen, ['second SupervisorGaveUpError']);
  await system.shutdown();
});

test('restarts spread out beyond periodMs never exhaust the intensity', async (t) => {
  const system = createSystem();
  const sup = await system.supervise(specOf([], 'one_for_one', ['a'], 'permanent', { intensity: 1, periodMs: 40 }));
  for (let i = 0; i < 4; i++) {
    await crashAndWait(sup, 'a');
    await sleep(60);
  }
  t.true(sup.alive);
  t.is(sup.children()[0]!.restarts, 4);
  await system.shutdown();
});

test('a child that keeps failing to restart counts as restarts until the supervisor gives up', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  let broken = false;
  const fatal: Error[] = [];
  system.on('fatal', (e) => fatal.push(e));
  const child = recorder(log, 'flaky', { failInit: () => broken });
  const sup = await system.supervise({
    strategy: 'one_for_one',
    intensity: 3,
    periodMs: 5000,
    children: [{ id: 'flaky', start: child.start }],
  });
  broken = true;
  refOf(sup, 'flaky').cast('crash');
  await waitFor(() => !sup.alive, 'the supervisor to give up');
  t.is(child.starts.count, 4, 'first start + 3 failed restarts');
  t.is(fatal.length, 1);
  t.regex((fatal[0]!.cause as Error).message, /init of flaky failed/);
  await system.shutdown();
});

test('a restart that fails once is retried and then recovers', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  let failures = 1;
  const child = recorder(log, 'x', { failInit: () => log.some((l) => l === 'init x#2') && failures-- > 0 });
  const sup = await system.supervise({ strategy: 'one_for_one', children: [{ id: 'x', start: child.start }] });
  refOf(sup, 'x').cast('crash');
  await waitFor(() => log.includes('ready x#3'), 'the second restart');
  t.is(await refOf(sup, 'x').call('ping'), 'x#3');
  t.is(sup.children()[0]!.restarts, 2);
  t.true(sup.alive);
  await system.shutdown();
});

test('supervisors nest: start() may return a SupervisorSpec and children() exposes its SupervisorRef', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const root = await system.supervise({
    strategy: 'rest_for_one',
    children: [
      { id: 'engine', start: recorder(log, 'engine').start },
      { id: 'workers', start: () => specOf(log, 'one_for_one', ['w1', 'w2']) },
      { id: 'tail', start: recorder(log, 'tail').start },
    ],
  });
  t.deepEqual(log, [
    'init engine#1',
    'ready engine#1',
    'init w1#1',
    'ready w1#1',
    'init w2#1',
    'ready w2#1',
    'init tail#1',
    'ready tail#1',
  ]);
  const info = root.children()[1]!;
  t.is(info.ref.kind, 'supervisor');
  const workers = info.ref as SupervisorRef;
  t.is(workers.name, `${root.name}/workers`);
  t.deepEqual(
    workers.children().map((c) => c.id),
    ['w1', 'w2'],
  );
  t.is(await refOf(workers, 'w2').call('ping'), 'w2#1');
  const dyn = await workers.startChild({ id: 'job-1', restart: 'temporary', start: () => ({ handle: (n: number) => n + 1 }) });
  t.is(await dyn.call(1), 2);
  log.length = 0;
  await root.stop();
  t.deepEqual(log, ['terminate tail#1 shutdown', 'terminate w2#1 shutdown', 'terminate w1#1 shutdown', 'terminate engine#1 shutdown']);
  t.false(dyn.alive);
  await system.shutdown();
});

test('a nested supervisor that gives up is a crashed child of its parent, which restarts it', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const fatal: Error[] = [];
  system.on('fatal', (e) => fatal.push(e));
  const leaf = recorder(log, 'leaf');
  const root = await system.supervise({
    strategy: 'one_for_one',
    intensity: 1,
    periodMs: 5000,
    children: [
      { id: 'sibling', start: recorder(log, 'sibling').start },
      { id: 'inner', start: () => ({ strategy: 'one_for_one', intensity: 0, children: [{ id: 'leaf', start: leaf.start }] }) },
    ],
  });
  const inner1 = root.child('inner') as SupervisorRef;
  refOf(inner1, 'leaf').cast('crash');
  await waitFor(() => root.child('inner') !== inner1 && root.child('inner')!.alive, 'the nested supervisor to be restarted');
  const inner2 = root.child('inner') as SupervisorRef;
  t.false(inner1.alive);
  t.is(root.children()[1]!.restarts, 1);
  t.true(log.includes('init leaf#2'));
  t.deepEqual(fatal, []);
  t.true(refOf(root, 'sibling').alive);

  // A second give-up within the parent's window exceeds the parent's intensity 1: it fails upward to 'fatal'.
  refOf(inner2, 'leaf').cast('crash');
  await waitFor(() => !root.alive, 'the root to give up');
  t.is(fatal.length, 1);
  t.true(fatal[0]!.cause instanceof SupervisorGaveUpError, 'the cause is the nested supervisor giving up');
  t.true(log.includes('terminate sibling#1 shutdown'));
  await system.shutdown();
});

test('startChild returns the child ref once its init is done; terminateChild stops it for good', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  const spec = { id: 'dyn', start: recorder(log, 'dyn', { initMs: 5 }).start } satisfies ChildSpec;
  const ref = await sup.startChild(spec);
  t.deepEqual(log, ['init dyn#1', 'ready dyn#1']);
  t.is(await ref.call('ping'), 'dyn#1');
  t.is(sup.child('dyn'), ref);
  await t.throwsAsync(sup.startChild(spec), { instanceOf: DuplicateChildError, message: /already has a child with id "dyn"/ });
  t.true(await sup.terminateChild('dyn'));
  t.deepEqual(log, ['init dyn#1', 'ready dyn#1', 'terminate dyn#1 shutdown']);
  t.false(ref.alive);
  t.deepEqual(sup.children(), []);
  t.false(await sup.terminateChild('dyn'));
  await sleep(10);
  t.false(log.includes('init dyn#2'), 'a terminated child is not restarted');
  const again = await sup.startChild(spec);
  t.is(await again.call('ping'), 'dyn#2', 'the id can be reused once terminated');
  await system.shutdown();
});

test('launchChild starts a child without a promise; a failed start goes to onFailed with the spec, never synchronously', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise({ strategy: 'one_for_one', intensity: 0, children: [] });
  const failures: { err: unknown; id: string }[] = [];
  const onFailed = (err: unknown, spec: ChildSpec) => void failures.push({ err, id: spec.id });
  // A synchronous start: the child is there when launchChild returns.
  sup.launchChild({ id: 'ok', restart: 'temporary', start: () => ({ handle: (m: string) => `${m}!` }) }, onFailed);
  t.is(await (sup.child('ok') as ActorRef<string, string>).call('ping'), 'ping!');
  // An init that fails (after a delay), a duplicate id, a start() that throws: each reported once, after the call returned.
  sup.launchChild({ id: 'bad', start: recorder(log, 'bad', { initMs: 5, failInit: () => true }).start }, onFailed);
  sup.launchChild({ id: 'ok', start: () => ({ handle: () => 1 }) }, onFailed);
  sup.launchChild(
    {
      id: 'throws',
      start: () => {
        throw new Error('no behavior');
      },
    },
    onFailed,
  );
  t.deepEqual(failures, [], 'never reported inside launchChild');
  await waitFor(() => failures.length === 3, 'three failures');
  const byId = new Map(failures.map((f) => [f.id, f.err]));
  t.true(byId.get('bad') instanceof ChildStartError);
  t.true(byId.get('ok') instanceof DuplicateChildError);
  t.true(byId.get('throws') instanceof ChildStartError);
  t.deepEqual(
    sup.children().map((c) => c.id),
    ['ok'],
  );
  // The child's normal exit removes it, as for startChild.
  await (sup.child('ok') as ActorRef).stop();
  await waitFor(() => sup.children().length === 0, 'temporary child gone');
  await sup.stop();
  sup.launchChild({ id: 'late', start: () => ({ handle: () => 1 }) }, onFailed);
  await waitFor(() => failures.length === 4, 'stopped supervisor reported');
  t.true(failures[3]!.err instanceof ActorStoppedError);
  await system.shutdown();
});

test('startChild whose init fails rejects with ChildStartError and leaves nothing behind', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise({ strategy: 'one_for_one', intensity: 0, children: [] });
  const err = await t.throwsAsync(sup.startChild({ id: 'bad', start: recorder(log, 'bad', { failInit: () => true }).start }), {
    instanceOf: ChildStartError,
  });
  t.is(err.childId, 'bad');
  t.deepEqual(sup.children(), []);
  t.true(sup.alive, 'a failed startChild is not a restart');
  await t.throwsAsync(sup.startChild({ id: '', start: () => ({ handle: () => 1 }) }), { instanceOf: InvalidSpecError });
  await system.shutdown();
});

test('a dynamic supervisor runs many short-lived temporary workers', async (t) => {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', intensity: 0, children: [] });
  const done: number[] = [];
  const n = 300;
  const refs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      sup.startChild({
        id: `job-${i}`,
        restart: 'temporary',
        start: () => ({
          init(ctx) {
            ctx.self.cast('run');
          },
          async handle(_: 'run', ctx) {
            await tick();
            done.push(i);
            ctx.stop();
          },
        }),
      }),
    ),
  );
  t.is(refs.length, n);
  await waitFor(() => done.length === n && sup.children().length === 0, 'every worker to finish and leave');
  t.deepEqual(
    [...done].sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i),
  );
  t.true(sup.alive);
  await system.shutdown();
});

test('with nothing else under way, a child whose init is synchronous is started and forgotten on the spot; queued behind an operation, it waits its turn', async (t) => {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  const order: string[] = [];
  const quick = (id: string): ChildSpec => ({
    id,
    restart: 'temporary',
    start: () => ({
      init() {
        order.push(`init ${id}`);
      },
      handle: () => id,
    }),
  });
  // The fast path: init ran and the child is listed before startChild's promise is even awaited.
  const started = sup.startChild(quick('a'));
  t.deepEqual(order, ['init a']);
  t.deepEqual(
    sup.children().map((c) => c.id),
    ['a'],
  );
  const a = await started;
  // A temporary child that stops is gone from the supervisor as soon as it has exited.
  await a.stop();
  t.deepEqual(sup.children(), []);
  t.is(sup.child('a'), undefined);

  // An async operation on the chain (a slow init): the next start waits behind it, in order.
  const slowInit = gate();
  const slow = sup.startChild({
    id: 'slow',
    start: () => ({
      async init() {
        order.push('init slow');
        await slowInit.promise;
      },
      handle: () => 'slow',
    }),
  });
  const b = sup.startChild(quick('b'));
  await tick();
  t.deepEqual(order, ['init a', 'init slow'], 'b waits for the slow start ahead of it');
  slowInit.open();
  await Promise.all([slow, b]);
  t.deepEqual(order, ['init a', 'init slow', 'init b']);
  t.deepEqual(
    sup.children().map((c) => c.id),
    ['slow', 'b'],
    'children stay in start order',
  );
  await system.shutdown();
});

test('terminateChild of a slow child does not hold up startChild of others', async (t) => {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  const slow = gate();
  await sup.startChild({ id: 'slow', start: () => ({ handle: () => 1, terminate: () => slow.promise }) });
  const terminating = sup.terminateChild('slow');
  let terminated = false;
  void terminating.then(() => (terminated = true));
  const quick = await sup.startChild({ id: 'quick', start: () => ({ handle: () => 'quick' }) });
  t.is(await quick.call(undefined), 'quick');
  t.false(terminated, 'the new child started while the old one is still in terminate');
  slow.open();
  t.true(await terminating);
  await system.shutdown();
});

test('supervisor.stop waits for children being terminated by terminateChild', async (t) => {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  const log: string[] = [];
  await sup.startChild({
    id: 'slow',
    start: () => ({
      handle: () => 1,
      async terminate() {
        await sleep(20);
        log.push('slow terminated');
      },
    }),
  });
  void sup.terminateChild('slow');
  await tick();
  await sup.stop();
  log.push('supervisor stopped');
  t.deepEqual(log, ['slow terminated', 'supervisor stopped']);
  await system.shutdown();
});

test('each child gets shutdownMs for terminate, then is abandoned with a warning and the stop goes on', async (t) => {
  const logger = memoryLogger();
  const system = createSystem({ logger });
  const log: string[] = [];
  const sup = await system.supervise({
    strategy: 'one_for_one',
    children: [
      { id: 'a', start: recorder(log, 'a').start },
      { id: 'stuck', shutdownMs: 25, start: () => ({ handle: () => 1, terminate: () => new Promise<void>(() => {}) }) },
    ],
  });
  const started = Date.now();
  await sup.stop();
  const took = Date.now() - started;
  // Abandoned at its 25 ms, not after the default 5 s: generous, for timers on a loaded machine.
  t.true(took >= 20 && took < 2500, `took ${took} ms`);
  t.deepEqual(log.slice(-1), ['terminate a#1 shutdown']);
  t.true(logger.entries.some((e) => e.level === 'warn' && e.obj['actor'] === `${sup.name}/stuck` && /abandoned/.test(e.msg ?? '')));
  await system.shutdown();
});

test('no restart happens once the supervisor is stopping', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const sup = await system.supervise(specOf(log, 'one_for_one', ['a', 'b']));
  refOf(sup, 'a').cast('crash');
  const stopping = sup.stop();
  await stopping;
  await sleep(10);
  t.false(log.some((l) => l.includes('#2')));
  t.false(sup.alive);
  await system.shutdown();
});

test('system.shutdown stops every tree in reverse start order, children in reverse too', async (t) => {
  const system = createSystem();
  const log: string[] = [];
  const first = await system.supervise(specOf(log, 'one_for_one', ['a1', 'a2']));
  system.spawn({ handle: () => 1, terminate: () => void log.push('terminate loose') });
  const second = await system.supervise(specOf(log, 'one_for_one', ['b1', 'b2']));
  log.length = 0;
  await system.shutdown();
  t.deepEqual(log, [
    'terminate b2#1 shutdown',
    'terminate b1#1 shutdown',
    'terminate loose',
    'terminate a2#1 shutdown',
    'terminate a1#1 shutdown',
  ]);
  t.false(first.alive);
  t.false(second.alive);
});

test('invalid supervisor specs are rejected with InvalidSpecError', async (t) => {
  const system = createSystem();
  const h = () => ({ handle: () => 1 });
  const bad: unknown[] = [
    { strategy: 'one_for_some', children: [] },
    { strategy: 'one_for_one' },
    { strategy: 'one_for_one', intensity: -1, children: [] },
    { strategy: 'one_for_one', intensity: 1.5, children: [] },
    { strategy: 'one_for_one', periodMs: 0, children: [] },
    {
      strategy: 'one_for_one',
      children: [
        { id: 'a', start: h },
        { id: 'a', start: h },
      ],
    },
    { strategy: 'one_for_one', children: [{ id: 'a', start: 'nope' }] },
    { strategy: 'one_for_one', children: [{ id: 'a', start: h, restart: 'sometimes' }] },
    { strategy: 'one_for_one', children: [{ id: 'a', start: h, shutdownMs: -1 }] },
  ];
  for (const spec of bad) {
    await t.throwsAsync(system.supervise(spec as SupervisorSpec), { instanceOf: InvalidSpecError }, JSON.stringify(spec));
  }
  t.deepEqual(system.registered(), []);
  await system.shutdown();
});

test('a child stopped and abandoned while its init hangs fails startChild instead of hanging the supervisor', async (t) => {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  const starting = sup.startChild({
    id: 'hung',
    name: 'hung',
    shutdownMs: 20,
    start: () => ({ init: () => new Promise<void>(() => {}), handle: () => 1 }),
  });
  await waitFor(() => system.whereis('hung') !== undefined, 'the child to exist');
  await system.whereis('hung')!.stop();
  const err = await t.throwsAsync(starting, { instanceOf: ChildStartError });
  t.true(err.cause instanceof ActorStoppedError);
  t.regex((err.cause as Error).message, /stopped before init finished/);
  t.is(await (await sup.startChild({ id: 'next', start: () => ({ handle: () => 'ok' }) })).call(null), 'ok');
  await system.shutdown();
});
