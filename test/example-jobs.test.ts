/**
 * config/jobs.js is the example users copy: its jobs must behave as real job code should. Here: a job
 * that sleeps in a loop leaves no abort listeners on ctx.signal (a leak shows as MaxListenersExceeded),
 * and still stops at once when the signal aborts.
 */
import test from 'ava';
import { getEventListeners } from 'node:events';
import { pino } from 'pino';
import type { JobContext, JobDefinition } from '@partita/runtime';

const contextFor = (signal: AbortSignal): JobContext => ({
  id: 'job-1',
  partition: 'billing',
  queue: 'invoices',
  attempt: 1,
  signal,
  logger: pino({ level: 'silent' }),
  progress: () => {},
});

// A JavaScript module without types, imported as users' nodes import it.
const { invoiceTotal } = (await import(new URL('../config/jobs.js', import.meta.url).href)) as { invoiceTotal: JobDefinition };

const lines = (n: number) => Array.from({ length: n }, () => ({ unitPrice: 1, quantity: 1 }));

test('invoice.total sleeps once per line and leaves no abort listener behind', async (t) => {
  const controller = new AbortController();
  const result = await invoiceTotal.perform({ invoice: 'INV-1', lines: lines(12) }, contextFor(controller.signal));
  t.is(result.total, 12);
  t.is(getEventListeners(controller.signal, 'abort').length, 0);
});

test('invoice.total stops at once when its signal aborts', async (t) => {
  const controller = new AbortController();
  const started = Date.now();
  const run = invoiceTotal.perform({ invoice: 'INV-2', lines: lines(1000) }, contextFor(controller.signal));
  setTimeout(() => controller.abort(new Error('cancelled')), 30);
  await t.throwsAsync(run);
  t.true(Date.now() - started < 1000, 'did not run on through its 1000 lines');
});
