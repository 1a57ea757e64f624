import test from 'ava';
import { ValidationError, decode, encode, uuidv7 } from '@partita/core';
import {
  encodeJobEventBatch,
  eventBatchMessageKind,
  jobEventsOf,
  publishJobEventBatch,
  type EventPublisher,
  type JobEventBatch,
  type JobEventBatchItem,
} from '../src/index.js';

const at = new Date('2026-12-07T12:00:00.123Z');
const batchOf = (
  events: JobEventBatchItem[],
  node: string | undefined = 'node-a',
  kind: 'started' | 'completed' = 'completed',
): JobEventBatch => ({
  partition: 'p',
  queue: 'default',
  type: 'send-invoice',
  kind,
  at,
  ...(node !== undefined ? { node } : {}),
  events,
});

test('a batch of plain items encodes byte for byte as the codec encodes it', (t) => {
  const kind = eventBatchMessageKind('completed');
  const attempts = [0, 1, 63, 64, 127, 128, 255, 256, 65_535, 65_536, 0xffffffff];
  const ids = [uuidv7(), 'short', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(255), ''];
  for (const count of [1, 2, 15, 16, 17, 256])
    for (const withResult of [false, true])
      for (const node of ['node-a', undefined]) {
        const items = Array.from({ length: count }, (_, i): JobEventBatchItem => {
          const item: JobEventBatchItem = { id: ids[i % ids.length]!, attempt: attempts[i % attempts.length]! };
          if (withResult && i % 2 === 0) item.result = null;
          return item;
        });
        const batch = batchOf(items, node);
        const bytes = encodeJobEventBatch(kind, batch);
        t.truthy(bytes, `${count} items`);
        t.deepEqual(Buffer.from(bytes!), Buffer.from(encode(kind, batch)), `${count} items, result ${withResult}, node ${node}`);
      }
});

test('what subscribers read from a hand-encoded batch is what they read from the codec', (t) => {
  const kind = eventBatchMessageKind('started');
  const batch = batchOf(
    [
      { id: uuidv7(), attempt: 1 },
      { id: uuidv7(), attempt: 3, result: null },
    ],
    'node-b',
    'started',
  );
  const env = decode(encodeJobEventBatch(kind, batch)!);
  t.is(env.k, kind);
  t.deepEqual(jobEventsOf(env.d, env.k), jobEventsOf(decode(encode(kind, batch)).d, kind));
  t.is(jobEventsOf(env.d, env.k).length, 2);
});

test('a batch with any item of another shape is left to the codec', (t) => {
  const kind = eventBatchMessageKind('completed');
  const id = uuidv7();
  const others: JobEventBatchItem[] = [
    { id, attempt: 1, result: { total: 3 } },
    { id, attempt: 1, result: undefined },
    { id, attempt: 1, error: { attempt: 1, at: at.toISOString(), name: 'Error', message: 'boom' } },
    { id, attempt: 1, retryAt: at },
    { id, attempt: 1, truncated: true },
    { id, attempt: 1, progress: 5 },
    { id: 'é-not-ascii', attempt: 1 },
    { id: 'Łódź', attempt: 1 },
    { id: 'z'.repeat(256), attempt: 1 },
    { id, attempt: -1 },
    { id, attempt: 1.5 },
    { id, attempt: 2 ** 32 },
  ];
  for (const other of others) t.is(encodeJobEventBatch(kind, batchOf([{ id, attempt: 1 }, other])), undefined, JSON.stringify(other));
});

test('publishJobEventBatch sends plain batches pre-encoded where the bus can, split in halves when too large', (t) => {
  const sent: { subject: string; kind: string; bytes?: Uint8Array; data?: unknown }[] = [];
  const bus: EventPublisher = {
    cluster: 'c',
    publish: (subject, kind, data) => void sent.push({ subject, kind, data }),
    publishEncoded: (subject, kind, bytes) => {
      if (bytes.length > 2_000) throw new ValidationError('too large', 'data');
      sent.push({ subject, kind, bytes });
    },
  };
  const items = Array.from({ length: 40 }, () => ({ id: uuidv7(), attempt: 1, result: null }));
  publishJobEventBatch(bus, batchOf(items));
  t.true(sent.length > 1, 'split');
  t.true(sent.every((s) => s.bytes !== undefined && s.kind === 'job.completed.batch'));
  const ids = sent.flatMap((s) => jobEventsOf(decode(s.bytes!).d, s.kind).map((e) => e.id));
  t.deepEqual(
    ids,
    items.map((i) => i.id),
    'every event once, in order',
  );

  sent.length = 0;
  publishJobEventBatch(bus, batchOf([{ id: uuidv7(), attempt: 1, result: { n: 1 } }, ...items.slice(0, 2)]));
  t.is(sent.length, 1);
  t.truthy(sent[0]!.data, 'a result goes through the codec');
});
