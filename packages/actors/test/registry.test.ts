import test from 'ava';
import { ActorSystemError, ChildStartError, createSystem, NameTakenError, SystemStoppedError, type ActorRef } from '@partita/actors';
import { gate, guardProcess, sleep, waitFor } from './helpers.js';

guardProcess(test);

test('whereis finds a live named actor; unnamed actors are not registered', async (t) => {
  const system = createSystem();
  const named = system.spawn({ handle: (n: number) => n + 1 }, { name: 'adder' });
  system.spawn({ handle: () => 0 });
  t.is(system.whereis('adder'), named);
  t.is(await system.whereis<number, number>('adder')!.call(1), 2);
  t.is(system.whereis('nobody'), undefined);
  t.deepEqual(system.registered(), ['adder']);
  await system.shutdown();
  t.deepEqual(system.registered(), []);
});

test('a duplicate live name throws NameTakenError with a message that says what to do', async (t) => {
  const system = createSystem();
  system.spawn({ handle: () => 0 }, { name: 'global' });
  const err = t.throws(() => system.spawn({ handle: () => 1 }, { name: 'global' }), { instanceOf: NameTakenError });
  t.is(err.code, 'NAME_TAKEN');
  t.is(err.name, 'NameTakenError');
  t.is(err.takenName, 'global');
  t.true(err instanceof ActorSystemError);
  t.regex(err.message, /"global" is already registered.*pick another name, or await the holder's stop\(\)/);
  await system.shutdown();
});

test('the name is freed when the actor stops, and can be taken again', async (t) => {
  const system = createSystem();
  const first = system.spawn({ handle: () => 'first' }, { name: 'engine' });
  await first.stop();
  t.is(system.whereis('engine'), undefined);
  const second = system.spawn({ handle: () => 'second' }, { name: 'engine' });
  t.is(await system.whereis<unknown, string>('engine')!.call(null), 'second');
  t.not(first, second);
  await system.shutdown();
});

test('the name is freed after a crash', async (t) => {
  const system = createSystem();
  const ref = system.spawn(
    {
      handle() {
        throw new Error('x');
      },
    },
    { name: 'fragile' },
  );
  ref.cast(null);
  await waitFor(() => system.registered().length === 0, 'the name to be released');
  t.is(system.whereis('fragile'), undefined);
  t.notThrows(() => system.spawn({ handle: () => 0 }, { name: 'fragile' }));
  await system.shutdown();
});

test('a stopping actor keeps its name until terminate is done, but whereis no longer returns it', async (t) => {
  const system = createSystem();
  const release = gate();
  const ref = system.spawn({ handle: () => 0, terminate: () => release.promise }, { name: 'global' });
  await ref.call(null);
  const stopping = ref.stop();
  t.is(system.whereis('global'), undefined, 'not alive: not found');
  t.throws(() => system.spawn({ handle: () => 1 }, { name: 'global' }), { instanceOf: NameTakenError });
  release.open();
  await stopping;
  t.notThrows(() => system.spawn({ handle: () => 1 }, { name: 'global' }));
  await system.shutdown();
});

test('supervised children are registered only when their spec has a name, and each restart re-registers', async (t) => {
  const system = createSystem();
  let n = 0;
  const sup = await system.supervise({
    strategy: 'one_for_one',
    children: [
      {
        id: 'engine',
        name: 'billing.engine',
        start: () => {
          const me = ++n;
          return {
            handle(m: string) {
              if (m === 'crash') throw new Error('crash');
              return me;
            },
          };
        },
      },
      { id: 'anon', start: () => ({ handle: () => 0 }) },
    ],
  });
  t.deepEqual(system.registered(), ['billing.engine']);
  const first = system.whereis<string, number>('billing.engine')!;
  t.is(sup.child('engine'), first);
  t.is(sup.child('anon')!.name, `${sup.name}/anon`);
  first.cast('crash');
  await waitFor(() => system.whereis('billing.engine') !== undefined && system.whereis('billing.engine') !== first, 'the restart');
  t.is(await system.whereis<string, number>('billing.engine')!.call('who'), 2);
  await sup.stop();
  t.deepEqual(system.registered(), []);
  await system.shutdown();
});

test('a child whose name is taken fails to start with the NameTakenError as cause', async (t) => {
  const system = createSystem();
  system.spawn({ handle: () => 0 }, { name: 'taken' });
  const err = await t.throwsAsync(
    system.supervise({ strategy: 'one_for_one', children: [{ id: 'x', name: 'taken', start: () => ({ handle: () => 1 }) }] }),
    { instanceOf: ChildStartError },
  );
  t.true(err.cause instanceof NameTakenError);
  await system.shutdown();
});

test('supervisors can be named: whereisSupervisor finds them, names are shared with actors', async (t) => {
  const system = createSystem();
  const sup = await system.supervise(
    {
      strategy: 'one_for_one',
      children: [{ id: 'nested', name: 'nested-sup', start: () => ({ strategy: 'one_for_all', children: [] }) }],
    },
    { name: 'node' },
  );
  t.is(system.whereisSupervisor('node'), sup);
  t.truthy(system.whereisSupervisor('nested-sup'));
  t.is(sup.child('nested'), system.whereisSupervisor('nested-sup'));
  t.is(system.whereis('node'), undefined, 'whereis returns actors only');
  t.throws(() => system.spawn({ handle: () => 0 }, { name: 'node' }), { instanceOf: NameTakenError });
  await t.throwsAsync(system.supervise({ strategy: 'one_for_one', children: [] }, { name: 'node' }), { instanceOf: NameTakenError });
  await sup.stop();
  t.is(system.whereisSupervisor('node'), undefined);
  t.is(system.whereisSupervisor('nested-sup'), undefined);
  await system.shutdown();
});

test('after shutdown the system refuses new actors and supervisors', async (t) => {
  const system = createSystem({ name: 'gone' });
  const ref: ActorRef = system.spawn({ handle: () => 0 }, { name: 'x' });
  await system.shutdown();
  t.false(ref.alive);
  const err = t.throws(() => system.spawn({ handle: () => 0 }), { instanceOf: SystemStoppedError });
  t.regex(err.message, /actor system "gone" has been shut down; create a new system/);
  await t.throwsAsync(system.supervise({ strategy: 'one_for_one', children: [] }), { instanceOf: SystemStoppedError });
});

test('systems are independent: the same name can live in two systems', async (t) => {
  const a = createSystem();
  const b = createSystem();
  const ra = a.spawn({ handle: () => 'a' }, { name: 'same' });
  const rb = b.spawn({ handle: () => 'b' }, { name: 'same' });
  t.is(await a.whereis('same')!.call(null), 'a');
  t.is(await b.whereis('same')!.call(null), 'b');
  await a.shutdown();
  t.false(ra.alive);
  t.true(rb.alive);
  await sleep(1);
  await b.shutdown();
});
