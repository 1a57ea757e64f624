/** ActiveVersions.peek: the version a pub takes without a wait, only while get() would give it from the cache. */
import test from 'ava';
import { ActiveVersions } from '../src/active.js';

test('peek gives the cached version once read, and nothing under nocache, after forget or a reconnect, or while a read is under way', async (t) => {
  let reads = 0;
  let answer: string | undefined = '1';
  const actives = new ActiveVersions(async () => {
    reads += 1;
    return answer;
  });
  t.is(actives.peek('a'), undefined, 'not read yet');
  const reading = actives.get('a');
  t.is(actives.peek('a'), undefined, 'being read');
  t.is(await reading, '1');
  t.is(actives.peek('a'), '1');
  t.is(reads, 1);

  actives.enterNocache('a', '2');
  t.is(actives.peek('a'), undefined, 'nocache: every use reads');
  answer = '2';
  t.is(await actives.get('a'), '2');
  t.is(actives.peek('a'), '2', 'seen flipped: cached again');

  actives.forget('a');
  t.is(actives.peek('a'), undefined, 'forgotten');
  await actives.get('a');
  actives.forgetAll();
  t.is(actives.peek('a'), undefined, 'after a reconnect');

  actives.activated('a', '3');
  t.is(actives.peek('a'), '3', 'flipped by this client');
});
