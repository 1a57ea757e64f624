import test from 'ava';
import { randomUUID } from 'node:crypto';
import { JobStore } from '@partita/postgres';
import { uuidv7 } from '@partita/core';
import { encodeColumnsJsonArrays, tidArray, uuidArray, uuidArrayOf, uuidOrder, uuidWords } from '../src/binary.js';
import { freshSchema } from '../../../test/helpers/index.js';

// The completion sends its ids as a binary uuid[]: Postgres must read back exactly the ids given,
// and anything not in the canonical form goes as text, to be parsed (or refused) as before.

test('a binary uuid[] reads back in Postgres as the same ids, in order, either case', async (t) => {
  const db = await freshSchema('binary');
  try {
    const ids = [
      ...Array.from({ length: 500 }, () => uuidv7()),
      ...Array.from({ length: 20 }, () => randomUUID().toUpperCase()),
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '0123ABCD-4567-89ab-CDEF-0123456789aB',
    ];
    for (const batch of [ids, ids.slice(0, 1), []]) {
      const param = uuidArray(batch);
      t.truthy(param);
      const { rows } = await db.pool.query<{ ids: string[] }>('SELECT $1::uuid[]::text[] AS ids', [param]);
      t.deepEqual(
        rows[0]!.ids,
        batch.map((id) => id.toLowerCase()),
      );
    }
  } finally {
    await db.drop();
  }
});

test("a completion's id order (uuidWords, uuidOrder) is Postgres's uuid order, either case; equal ids keep theirs", async (t) => {
  const db = await freshSchema('binary');
  try {
    const sorted = Array.from({ length: 300 }, () => uuidv7());
    const ids = [
      ...sorted.slice(0, 100), // already in order
      ...sorted.slice(100).reverse(),
      ...Array.from({ length: 50 }, () => randomUUID().toUpperCase()),
      ...Array.from({ length: 50 }, () => randomUUID()),
      sorted[5]!.toUpperCase(), // the same uuid twice, its two texts keep their order
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '00000000-0000-0000-0000-000000000000',
      '80000000-0000-0000-0000-000000000000',
      '7fffffff-ffff-ffff-ffff-ffffffffffff',
    ];
    const words = new Uint32Array(ids.length * 4);
    t.true(uuidWords(ids, words));
    const order = uuidOrder(words, ids.length);
    const { rows } = await db.pool.query<{ ids: string[] }>(
      'SELECT array_agg(id::text ORDER BY id, n) AS ids FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)',
      [uuidArray(ids)],
    );
    t.deepEqual(
      order.map((i) => ids[i]!.toLowerCase()),
      rows[0]!.ids,
    );
    t.is(order.indexOf(5), order.indexOf(ids.indexOf(sorted[5]!.toUpperCase())) - 1);
    // The array of a part of the order reads back as those ids.
    const { rows: part } = await db.pool.query<{ ids: string[] }>('SELECT $1::uuid[]::text[] AS ids', [uuidArrayOf(words, order, 10, 60)]);
    t.deepEqual(
      part[0]!.ids,
      order.slice(10, 60).map((i) => ids[i]!.toLowerCase()),
    );
    t.false(uuidWords([sorted[0]!, 'not-a-uuid'], new Uint32Array(8)));
  } finally {
    await db.drop();
  }
});

test('ids not in the canonical form are not encoded: the caller sends them as text', (t) => {
  const good = uuidv7();
  for (const bad of [
    good.replaceAll('-', ''),
    `{${good}}`,
    good.slice(0, 35),
    `${good.slice(0, 35)}g`,
    `${good.slice(0, 8)}_${good.slice(9)}`,
    `${good.slice(0, 10)}é${good.slice(11)}`,
  ])
    t.is(uuidArray([good, bad]), undefined, bad);
});

test('complete: an id that is not a uuid is refused as before; the rest of the batch completes', async (t) => {
  const db = await freshSchema('binary');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  try {
    await store.registerQueues('n', [{ partition: 'p', queue: 'default', concurrency: 4 }]);
    await store.enqueue(Array.from({ length: 3 }, (_, i) => ({ partition: 'p', type: 't', payload: { i } })));
    const claimed = await store.claim({ nodeId: 'n', partition: 'p', leaseMs: 60_000, queues: [{ queue: 'default', limit: 3 }] });
    const items = [...claimed.map((j) => ({ id: j.id, attempt: j.attempt, result: null })), { id: 'not-a-uuid', attempt: 1, result: null }];
    const accepted = await store.complete('n', items);
    t.deepEqual([...accepted].sort(), claimed.map((j) => j.id).sort());
    t.deepEqual([...accepted.refused.keys()], ['not-a-uuid']);
    for (const j of claimed) t.is((await store.getJob(j.id))?.state, 'completed');
  } finally {
    await store.close();
    await db.drop();
  }
});

test('encodeColumnsJsonArrays: jsonb columns as one JSON array each (NULL for an absent value, NULL when all are), the rest in binary, in column order', async (t) => {
  const db = await freshSchema('binary_json');
  try {
    type Row = { id: string; data?: unknown; search?: unknown; n?: number };
    const rows: Row[] = [
      { id: 'a', data: { x: 1, s: 'é"\\' }, n: 1 },
      { id: 'b', data: [1, null], search: { k: 'v' } },
      { id: 'c', data: 'text', search: null, n: 3 },
    ];
    const params = encodeColumnsJsonArrays(rows, [
      ['text', (r) => r.id],
      ['jsonb', (r) => r.data],
      ['jsonb', (r) => r.search],
      ['int4', (r) => r.n],
      ['jsonb', () => undefined],
    ]);
    t.true(Buffer.isBuffer(params[0]) && Buffer.isBuffer(params[3]));
    t.is(typeof params[1], 'string');
    t.is(params[4], null, 'a column with no value is one NULL');
    const { rows: back } = await db.pool.query(
      `SELECT id, nullif(data, 'null') AS data, nullif(search, 'null') AS search, n, nullif(none, 'null') AS none
       FROM ROWS FROM (unnest($1::text[]), jsonb_array_elements($2::jsonb), jsonb_array_elements($3::jsonb), unnest($4::int[]),
                       jsonb_array_elements($5::jsonb)) AS r(id, data, search, n, none)`,
      params,
    );
    t.deepEqual(back, [
      { id: 'a', data: { x: 1, s: 'é"\\' }, search: null, n: 1, none: null },
      { id: 'b', data: [1, null], search: { k: 'v' }, n: null, none: null },
      { id: 'c', data: 'text', search: null, n: 3, none: null },
    ]);
  } finally {
    await db.drop();
  }
});

// The keyless completion sends its rows' addresses as a binary tid[]: Postgres must read back the
// same addresses, NULLs in place; anything not in Postgres's own form goes as text.
test('a binary tid[] reads back in Postgres as the same addresses, in order, NULLs kept', async (t) => {
  const db = await freshSchema('binary_tid');
  try {
    const tids = ['(0,1)', '(12,345)', null, '(4294967295,65535)', '(7,0)'];
    for (const batch of [tids, tids.slice(0, 1), [null], []]) {
      const param = tidArray(batch);
      t.truthy(param);
      const { rows } = await db.pool.query<{ tids: (string | null)[] }>('SELECT $1::tid[]::text[] AS tids', [param]);
      t.deepEqual(rows[0]!.tids, batch);
    }
    for (const odd of ['(1,2', '1,2)', '(a,1)', '(1,)', '(,1)', '(1,65536)', '(4294967296,1)', '(1;2)'])
      t.is(tidArray(['(0,1)', odd]), undefined, odd);
  } finally {
    await db.drop();
  }
});
