import test from 'ava';
import { toJsonStrict, ValidationError } from '@partita/core';

function message(value: unknown, what: string | (() => string) = 'job.payload', limit?: number): string {
  try {
    toJsonStrict(value, what, limit);
  } catch (err) {
    if (err instanceof ValidationError) return err.message;
    throw err;
  }
  return 'no error';
}

test('errors name the offending item by its full path', (t) => {
  t.is(message({ a: [1, { b: NaN }] }), 'job.payload.a[1].b: is NaN, which JSON cannot represent; use null or a string');
  t.is(message({ n: 10n }), 'job.payload.n: is a BigInt, which JSON cannot represent; convert it to a string');
  t.is(message([() => 1]), 'job.payload[0]: is a function, which cannot be stored; pass data only');
  t.is(message({ s: [[Symbol('x')]] }), 'job.payload.s[0][0]: is a symbol, which cannot be stored; pass data only');
  t.is(message({ m: new Map() }), 'job.payload.m: is a Map, which JSON turns into {}; convert it to an object or array');
  t.is(message({ deep: { s: new Set() } }), 'job.payload.deep.s: is a Set, which JSON turns into {}; convert it to an object or array');
  t.is(message({ list: [1, undefined] }), 'job.payload.list[1]: is undefined inside an array, which JSON turns into null; use null');
  t.is(message(Infinity, 'x'), 'x: is Infinity, which JSON cannot represent; use null or a string');
  t.is(message({ '0': { 'a.b': -Infinity } }), 'job.payload.0.a.b: is -Infinity, which JSON cannot represent; use null or a string');
});

test('cycles are refused where they close; shared objects are not cycles', (t) => {
  const cyclic: Record<string, unknown> = { a: [1, {}] };
  (cyclic.a as [number, Record<string, unknown>])[1].back = cyclic;
  t.is(message(cyclic), 'job.payload.a[1].back: contains a circular reference; JSON cannot represent cycles');
  const shared = { z: 1 };
  t.is(toJsonStrict({ a: shared, b: [shared, shared] }, 'x').json, '{"a":{"z":1},"b":[{"z":1},{"z":1}]}');
});

test('what JSON.stringify accepts passes through unchanged, with its UTF-8 size', (t) => {
  t.deepEqual(toJsonStrict(undefined, 'x'), { json: 'null', bytes: 4 });
  t.deepEqual(toJsonStrict('é"\\', 'x'), { json: '"é\\"\\\\"', bytes: 8 });
  t.is(toJsonStrict([1, , 3], 'x').json, '[1,null,3]', 'a hole is not an undefined element');
  t.is(toJsonStrict({ at: new Date(0), u: undefined }, 'x').json, '{"at":"1970-01-01T00:00:00.000Z"}');
  t.is(
    message(
      {
        toJSON: () => {
          throw new Error('boom');
        },
      },
      'x',
    ),
    'x: is not JSON-serialisable (boom); pass plain objects, arrays, strings, numbers, booleans or null',
  );
});

test('the size limit counts UTF-8 bytes', (t) => {
  t.is(toJsonStrict('ééé', 'x', 8).bytes, 8);
  t.is(
    message('éééé', 'x', 8),
    'x: is 10 bytes of JSON, over the 8-byte limit; store large data elsewhere and enqueue a reference, or raise limits.payloadBytes',
  );
});

test('a path given as a function is built only for an error', (t) => {
  let calls = 0;
  const what = () => {
    calls++;
    return 'jobs[7].payload';
  };
  toJsonStrict({ a: [1, 2, { b: 'c' }] }, what, 100);
  t.is(calls, 0);
  t.is(message({ a: [1, 2, { b: NaN }] }, what), 'jobs[7].payload.a[2].b: is NaN, which JSON cannot represent; use null or a string');
  t.is(
    message('x'.repeat(200), what, 100),
    'jobs[7].payload: is 202 bytes of JSON, over the 100-byte limit; store large data elsewhere and enqueue a reference, or raise limits.payloadBytes',
  );
  t.is(calls, 2);
});

test('text Postgres jsonb refuses (NUL, unpaired surrogates) is refused where it is made, by its path', (t) => {
  t.is(
    message({ name: 'a\u0000b' }),
    'job.payload.name: contains a NUL character (\\u0000), which Postgres cannot store in JSON; remove it',
  );
  t.is(
    message({ list: ['ok', 'broken \ud800 text'] }),
    'job.payload.list[1]: contains an unpaired UTF-16 surrogate (broken text), which Postgres cannot store in JSON; fix the text',
  );
  t.is(
    message({ 'k\u0000': 1 }),
    'job.payload.k\u0000: its key contains a NUL character (\\u0000), which Postgres cannot store in JSON; remove it',
  );
  t.is(message('\udc00', 'x'), 'x: contains an unpaired UTF-16 surrogate (broken text), which Postgres cannot store in JSON; fix the text');
  t.is(
    message({ at: { toJSON: () => 'a\u0000' } }),
    'job.payload: contains a NUL character or an unpaired surrogate, which Postgres cannot store in JSON; remove it',
  );
  // What only looks like those escapes in the JSON text, and paired surrogates, are fine.
  t.is(toJsonStrict({ path: 'C:\\u0000\\udp', emoji: '😀' }, 'x').json, '{"path":"C:\\\\u0000\\\\udp","emoji":"😀"}');
});

test('refusals can be reported as another named error', (t) => {
  class ResultError extends Error {
    constructor(
      message: string,
      readonly path?: string,
    ) {
      super(path ? `${path}: ${message}` : message);
    }
  }
  const err = t.throws(() => toJsonStrict({ total: NaN }, 'result', undefined, ResultError), { instanceOf: ResultError });
  t.is(err!.message, 'result.total: is NaN, which JSON cannot represent; use null or a string');
  t.is(err!.path, 'result.total');
  t.throws(
    () =>
      toJsonStrict(
        {
          toJSON: () => {
            throw new Error('boom');
          },
        },
        'result',
        undefined,
        ResultError,
      ),
    { instanceOf: ResultError },
  );
});
