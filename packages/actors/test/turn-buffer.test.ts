/** TurnBuffer: items of a turn taken together; one added while a turn is taken waits for the next. */
import test from 'ava';
import { TurnBuffer } from '@partita/actors';

const taken = <T>(b: TurnBuffer<T>): T[] => {
  let out: T[] = [];
  b.take((items, n) => (out = items.slice(0, n) as T[]));
  return out;
};

test('add says which item opens a turn; take hands over that turn in order, and the next starts empty', (t) => {
  const b = new TurnBuffer<number>(8);
  t.true(b.add(1));
  t.false(b.add(2));
  t.false(b.add(3));
  t.deepEqual(taken(b), [1, 2, 3]);
  t.deepEqual(taken(b), []);
  t.true(b.add(4), 'the first item after a take opens a new turn');
  t.deepEqual(taken(b), [4]);
});

test('an item added while a turn is taken goes to the next turn', (t) => {
  const b = new TurnBuffer<string>(8);
  b.add('a');
  const seen: string[][] = [];
  b.take((items, n) => {
    seen.push(items.slice(0, n) as string[]);
    t.true(b.add('late'));
  });
  b.take((items, n) => seen.push(items.slice(0, n) as string[]));
  t.deepEqual(seen, [['a'], ['late']]);
});

test('a turn’s slots are cleared after take, also when the consumer throws; kept slots are reused', (t) => {
  const b = new TurnBuffer<object>(8);
  const item = { big: true };
  b.add(item);
  b.add(item);
  let held: readonly (object | undefined)[] = [];
  t.throws(() =>
    b.take((items) => {
      held = items;
      throw new Error('consumer failed');
    }),
  );
  t.deepEqual([...held], [undefined, undefined], 'no reference to the taken items is kept');
  b.add(item);
  taken(b);
  b.add(item);
  b.take((items) => t.is(items, held, 'the same array serves every other turn'));
});
