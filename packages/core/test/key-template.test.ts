import test from 'ava';
import { ValidationError, evaluateKeyTemplate, keyFromRule, parseKeyTemplate } from '@partita/core';

const ctx = { type: 'invoice.total', which: 'queueKey' as const };
const key = (template: string, payload: unknown) => evaluateKeyTemplate(template, payload, ctx);
function refusal(template: string, payload: unknown, at?: string): ValidationError {
  try {
    evaluateKeyTemplate(template, payload, { ...ctx, ...(at ? { at } : {}) });
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error(`${template} gave a key for ${JSON.stringify(payload)}`);
}

test('placeholders take payload values at dotted paths, array items by index', (t) => {
  t.is(key('invoice:{invoice}', { invoice: 'INV-88', lines: [] }), 'invoice:INV-88');
  t.is(key('customer-{customer.id}', { customer: { id: 'c7', name: 'Ada' } }), 'customer-c7');
  t.is(key('{a.b.c}/{x}', { a: { b: { c: 'deep' } }, x: 'top' }), 'deep/top');
  t.is(key('sku:{lines.1.sku}', { lines: [{ sku: 'A' }, { sku: 'B' }] }), 'sku:B');
  t.is(key('singleton', { anything: 1 }), 'singleton', 'a template without placeholders is a constant key');
  t.is(key('{{literal}}:{id}', { id: 'x' }), '{literal}:x', 'doubled braces are literal');
});

test('numbers and booleans are written as String() writes them; strings as they are', (t) => {
  t.is(key('customer-{customer.id}', { customer: { id: 42 } }), 'customer-42');
  t.is(key('n:{n}', { n: -1.5 }), 'n:-1.5');
  t.is(key('n:{n}', { n: 0 }), 'n:0', 'zero is a value, not a missing one');
  t.is(key('flag:{f}', { f: false }), 'flag:false');
  t.is(key('s:{s}', { s: '' }), 's:');
  t.is(key('t:{t}', { t: 'a b {c}' }), 't:a b {c}', 'braces in values are not placeholders');
});

test('a missing or null value is a ValidationError naming the payload path and what to do', (t) => {
  const missing = refusal('customer-{customer.id}', { customer: { name: 'Ada' } });
  t.is(missing.path, 'payload.customer.id');
  t.is(
    missing.message,
    'payload.customer.id: is missing, but the queueKey template "customer-{customer.id}" of job type "invoice.total" needs a string, number or boolean here; ' +
      'add it to the payload, or pass queueKey explicitly',
  );
  t.is(refusal('customer-{customer.id}', { customer: null }).path, 'payload.customer.id', 'a null parent');
  t.is(refusal('invoice:{invoice}', undefined).path, 'payload.invoice', 'no payload at all');
  t.is(refusal('invoice:{invoice}', 'INV-1').path, 'payload.invoice', 'a payload that is not an object');
  t.regex(refusal('invoice:{invoice}', { invoice: null }).message, /^payload\.invoice: is null, but/);
  t.is(
    refusal('invoice:{invoice}', { custmer: 1 }, 'jobs[3].payload').path,
    'jobs[3].payload.invoice',
    'the caller says where the payload is',
  );
  t.is(refusal('{constructor}', {}).path, 'payload.constructor', 'inherited properties are not payload values');
  t.is(refusal('{items.length}', { items: [1, 2] }).path, 'payload.items.length', 'only own properties, not an array length');
});

test('an object, an array, NaN or Infinity is refused: a key needs a scalar', (t) => {
  t.regex(
    refusal('customer-{customer}', { customer: { id: 1 } }).message,
    /^payload\.customer: is an object, but .*point the template at a value inside it \(such as \{customer\.id\}\)$/,
  );
  t.regex(refusal('tags:{tags}', { tags: ['a'] }).message, /^payload\.tags: is an array, but/);
  t.regex(refusal('n:{n}', { n: NaN }).message, /^payload\.n: is NaN, but/);
  t.regex(refusal('n:{n}', { n: Infinity }).message, /^payload\.n: is Infinity, but/);
  t.regex(refusal('n:{n}', { n: 10n }).message, /^payload\.n: is a bigint, but/);
});

test('malformed templates are refused with where and why', (t) => {
  const bad = (template: string) =>
    t.throws(() => parseKeyTemplate(template, 'defineJob("x").queueKey'), { instanceOf: ValidationError })!.message;
  t.regex(bad(''), /^defineJob\("x"\)\.queueKey: a key template must be a non-empty string/);
  t.regex(bad('invoice:{invoice'), /"\{" at 8 is never closed/);
  t.regex(bad('invoice:invoice}'), /"\}" at 15 closes no "\{"/);
  t.regex(bad('a:{}'), /\{\} in "a:\{\}" is not a payload path/);
  t.regex(bad('a:{ invoice }'), /is not a payload path; write dotted names without spaces/);
  t.regex(bad('a:{customer..id}'), /is not a payload path/);
  t.throws(() => parseKeyTemplate(42 as unknown as string), { instanceOf: ValidationError });
});

test('keyFromRule: templates evaluated, functions called, a throwing function becomes a ValidationError', (t) => {
  t.is(keyFromRule(undefined, { a: 1 }, ctx), undefined);
  t.is(keyFromRule('a:{a}', { a: 1 }, ctx), 'a:1');
  t.is(
    keyFromRule((p: { a: number }) => `fn:${p.a}`, { a: 2 }, ctx),
    'fn:2',
  );
  t.is(
    keyFromRule(() => undefined, {}, ctx),
    undefined,
  );
  const err = t.throws(
    () =>
      keyFromRule(
        () => {
          throw new Error('boom');
        },
        {},
        { ...ctx, at: 'jobs[1].payload' },
      ),
    { instanceOf: ValidationError },
  )!;
  t.is(err.message, 'jobs[1].payload: queueKey(payload) of job type "invoice.total" threw: boom');
});
