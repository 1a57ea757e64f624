import test from 'ava';
import { encode, decode, pack, ValidationError, WIRE_VERSION } from '@partita/core';

test('an envelope round-trips with its version and kind', (t) => {
  const env = decode<{ n: number }>(encode('wake', { n: 3 }));
  t.deepEqual(env, { v: WIRE_VERSION, k: 'wake', d: { n: 3 } });
});

test('a message that is not an envelope is a ValidationError, not a crash', (t) => {
  t.throws(() => decode(pack([1, 2, 3])), { instanceOf: ValidationError });
  t.throws(() => decode(pack({ k: 'x' })), { instanceOf: ValidationError, message: /version/ });
  t.throws(() => decode(pack({ v: WIRE_VERSION + 1, k: 'x' })), { instanceOf: ValidationError, message: /upgrade/ });
  t.throws(() => decode(new Uint8Array([0xc1])), { instanceOf: ValidationError });
});
