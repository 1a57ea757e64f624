import test from 'ava';
import { isUuid, uuidv4, uuidv7 } from '@partita/core';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

// The generator keeps the last millisecond it used: these run in order, each ahead of the last.
test.serial('a v7 UUID carries its millisecond in the first 48 bits, then version and variant', (t) => {
  const now = Date.now() + 1000;
  const id = uuidv7(now);
  t.regex(id, V7);
  t.true(isUuid(id));
  t.is(msOf(id), now);
  t.is(id.slice(0, 8) + id.slice(9, 13), now.toString(16).padStart(12, '0'));
});

test.serial('ids made in one millisecond sort in the order they were made, past the counter overflow', (t) => {
  const now = Date.now() + 2000;
  const ids = Array.from({ length: 10_000 }, () => uuidv7(now));
  for (let i = 1; i < ids.length; i++) t.true(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  for (const id of ids) t.regex(id, V7);
  t.is(new Set(ids).size, ids.length);
  t.is(msOf(ids[0]!), now);
  t.true(msOf(ids.at(-1)!) > now, 'a full counter borrows the next millisecond');
  t.true(new Set(ids.map((id) => id.slice(19))).size > 9_000, 'the tail is random');
});

test.serial('ids stay ordered when the clock steps back, and across milliseconds', (t) => {
  const now = Date.now() + 10_000;
  const a = uuidv7(now);
  const b = uuidv7(now - 5000);
  const c = uuidv7(now + 1);
  const d = uuidv7();
  t.true(a < b && b < c && c < d);
  t.is(msOf(c), now + 1);
});

test.serial('every bit of the 48-bit timestamp is encoded', (t) => {
  const now = 0xfe_dc_ba_98_76_54; // the year 10889: keep this test last
  const id = uuidv7(now);
  t.is(id.slice(0, 14), 'fedcba98-7654-');
  t.is(msOf(id), now);
  t.regex(id, V7);
});

test('a v4 UUID is random but for its version and variant, and one flat string', (t) => {
  const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const ids = Array.from({ length: 20_000 }, () => uuidv4());
  for (const id of ids) t.regex(id, V4);
  t.is(new Set(ids).size, ids.length);
  // Every hex digit of the random positions turns up at each of them (16 values, 20,000 draws).
  for (const at of [0, 7, 9, 12, 15, 20, 24, 35]) t.is(new Set(ids.map((id) => id[at])).size, 16, `position ${at}`);
  t.is(new Set(ids.map((id) => id[19])).size, 4, 'the variant digit is one of 8, 9, a, b');
  // Made between v7 ids, it leaves their order alone (the two share the random pool, not the text).
  const a = uuidv7();
  uuidv4();
  t.true(a < uuidv7());
});
