import test from 'ava';
import { types } from 'node:util';
import * as core from '@partita/core';
import { NoRespondersError, RemoteError, deserializeError, registerErrorClass, serializeError } from '../src/index.js';

const roundTrip = (err: unknown) => deserializeError(core.unpack(core.pack(serializeError(err))), 'partita.c.global.p');

test('every Partita error class survives the wire with class, name, message, code and fields', (t) => {
  const samples: Error[] = [
    new core.TimeoutError('global call', 500),
    new core.ValidationError('bad', 'a.b'),
    new core.DuplicateQueueKeyError('k1', 'job-9'),
    new core.JobFailedError('job-1', [{ message: 'x' }], 'boom'),
    new core.StaleEpochError('p', 3, 4),
    new core.NotLeaderError('p'),
    new core.BusUnavailableError('x'),
    new core.UnknownPartitionError('p', ['a', 'b']),
    new NoRespondersError('a.b'),
  ];
  for (const original of samples) {
    const back = roundTrip(original);
    t.true(back instanceof (original.constructor as new (...a: never[]) => Error), original.name);
    t.true(back instanceof core.PartitaError);
    t.true(types.isNativeError(back), 'a real Error');
    t.is(back.name, original.name);
    t.is(back.message, original.message);
    t.is((back as core.PartitaError).code, (original as core.PartitaError).code);
    t.true(back.stack!.includes('responder on partita.c.global.p'));
  }
  const dup = roundTrip(new core.DuplicateQueueKeyError('k1', 'job-9')) as core.DuplicateQueueKeyError;
  t.is(dup.queueKey, 'k1');
  t.is(dup.heldBy, 'job-9');
  const v = roundTrip(new core.ValidationError('bad', 'a.b')) as core.ValidationError;
  t.is(v.path, 'a.b');
});

test('unknown errors and non-errors come back as RemoteError with the remote name and message', (t) => {
  const e = roundTrip(new RangeError('too far'));
  t.true(e instanceof RemoteError);
  t.is(e.name, 'RangeError');
  t.is((e as RemoteError).remoteName, 'RangeError');
  t.is(e.message, 'too far');
  const s = roundTrip({ some: 'object' });
  t.true(s instanceof RemoteError);
  t.regex(s.message, /some/);
  t.true(deserializeError('garbage', 'x') instanceof RemoteError);
});

test('registerErrorClass makes an application error class travel too; unencodable fields are left out', (t) => {
  class QuotaError extends Error {
    readonly limit: number;
    readonly fn = () => 1;
    constructor(limit: number) {
      super(`quota ${limit} exceeded`);
      this.name = 'QuotaError';
      this.limit = limit;
    }
  }
  registerErrorClass(QuotaError);
  const back = roundTrip(new QuotaError(7));
  t.true(back instanceof QuotaError);
  t.is((back as QuotaError).limit, 7);
  t.is((back as unknown as { fn?: unknown }).fn, undefined);
  t.is(back.message, 'quota 7 exceeded');
});

test('a hostile wire error cannot pollute prototypes', (t) => {
  const e = deserializeError(
    { name: 'NotLeaderError', message: 'm', props: JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}') },
    'x',
  );
  t.true(e instanceof core.NotLeaderError);
  t.is(({} as { polluted?: boolean }).polluted, undefined);
  t.is((e as unknown as { polluted?: boolean }).polluted, undefined);
});
