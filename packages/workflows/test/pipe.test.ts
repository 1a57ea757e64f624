import test from 'ava';
import { evaluateMapping, parseMapping, MappingEvaluationError, PIPE_FUNCTIONS, type MappingContext } from '../src/index.js';

const ctx: MappingContext = {
  activities: {
    a1: {
      output: {
        data: {
          n: 7,
          name: '  Ada Lovelace ',
          tags: ['b', 'a', 'c'],
          user: { plan: 'pro', age: 41 },
          when: '2026-12-06T10:20:30Z',
          missing: null,
        },
      },
    },
    h1: { hook: { data: { approved: true } } },
  },
  self: { output: { data: { risk: 55 } }, input: { data: { email: 'a@x.io' } } },
  job: { data: { sent: 2 }, metadata: { jid: 'job-1' } },
  app: { id: 'signup', version: '1', settings: { reminders: 3, nested: { limit: 10 } } },
};

/** Compiles (failing the test on a problem) and evaluates. */
function ev(mapping: unknown, context: MappingContext = ctx): unknown {
  const parsed = parseMapping(mapping);
  if (parsed.problems.length > 0) throw new Error(`unexpected problems: ${JSON.stringify(parsed.problems)}`);
  return evaluateMapping(parsed.expr, context);
}
const pipe = (...rows: unknown[]) => ({ '@pipe': rows });

test('paths: activity output and hook, $self, $job, $app; missing paths are undefined', (t) => {
  t.is(ev('{a1.output.data.n}'), 7);
  t.is(ev('{a1.output.data.user.plan}'), 'pro');
  t.is(ev('{a1.output.data.tags.1}'), 'a');
  t.is(ev('{h1.hook.data.approved}'), true);
  t.is(ev('{$self.output.data.risk}'), 55);
  t.is(ev('{$self.input.data.email}'), 'a@x.io');
  t.is(ev('{$job.data.sent}'), 2);
  t.is(ev('{$job.metadata.jid}'), 'job-1');
  t.is(ev('{$app.settings.reminders}'), 3);
  t.is(ev('{$app.settings.nested.limit}'), 10);
  t.is(ev('{$app.version}'), '1');
  t.is(ev('{a1.output.data.nope.deeper}'), undefined);
  t.is(ev('{zz.output.data.x}'), undefined);
  // Inherited properties are not data.
  t.is(ev('{a1.output.data.user.toString}'), undefined);
  t.is(ev('{a1.output.data.tags.length}'), 3);
  // Braces around what no path could be are text.
  t.is(ev('{"a": 1}'), '{"a": 1}');
});

test('literals and nested objects and arrays of mappings', (t) => {
  t.is(ev('plain text'), 'plain text');
  t.is(ev(42), 42);
  t.is(ev(null), null);
  t.deepEqual(ev({ a: '{a1.output.data.n}', b: { c: ['{$job.data.sent}', 'x', 1] }, d: true }), { a: 7, b: { c: [2, 'x', 1] }, d: true });
});

test('@pipe rows: a row feeds the next; a function row’s own cells are appended to its arguments (Partita, not HotMesh)', (t) => {
  // gte(55, 50) → [true] → ternary(true, 'Senior', 'Junior')
  t.is(ev(pipe(['{$self.output.data.risk}', 50], ['{@number.gte}'], ['{@conditional.ternary}', 'Senior', 'Junior'])), 'Senior');
  t.is(ev(pipe(['{$self.output.data.risk}', 60], ['{@number.gte}'], ['{@conditional.ternary}', 'Senior', 'Junior'])), 'Junior');
  // The signup example's counter: nullish(sent, 0) then add(…, 1).
  t.is(ev(pipe(['{$job.data.sent}', 0], ['{@conditional.nullish}'], ['{@math.add}', 1])), 3);
  t.is(ev(pipe(['{$job.data.unset}', 0], ['{@conditional.nullish}'], ['{@math.add}', 1])), 1);
  // Cells of a middle row are its function's arguments too, not the next row's (HotMesh's reading).
  t.is(ev(pipe(['{$job.data.sent}'], ['{@math.add}', 10], ['{@math.multiply}', 2])), 24);
  // A nullary function as a cell and as a whole value.
  const now = ev('{@date.now}') as number;
  t.true(Math.abs(now - Date.now()) < 5_000);
  t.is(typeof ev(pipe(['{@date.now}'], ['{@date.toISOString}'])), 'string');
});

test('@pipe fan-out and fan-in: nested pipes give the arguments of the next function row', (t) => {
  const v = ev(
    pipe(pipe(['{a1.output.data.n}', 3], ['{@math.multiply}']), pipe(['{$job.data.sent}', 10], ['{@math.add}']), ['{@math.subtract}']),
  );
  t.is(v, 21 - 12);
});

test('string family', (t) => {
  t.is(ev(pipe(['{a1.output.data.name}'], ['{@string.trim}'], ['{@string.toUpperCase}'])), 'ADA LOVELACE');
  t.deepEqual(ev(pipe(['a,b,c', ','], ['{@string.split}'])), ['a', 'b', 'c']);
  t.is(ev(pipe(['x', 'y', 'z'], ['{@string.concat}'])), 'xyz');
  t.is(ev(pipe(['hello', 1, 3], ['{@string.slice}'])), 'el');
  t.is(ev(pipe(['7', 3, '0'], ['{@string.padStart}'])), '007');
  t.is(ev(pipe(['a-b-c', '-', '+'], ['{@string.replace}'])), 'a+b-c');
  t.is(ev(pipe(['a$b', '$', '$&'], ['{@string.replace}'])), 'a$&b');
  t.true(ev(pipe(['hello', 'ell'], ['{@string.includes}'])) as boolean);
  t.true(ev(pipe(['hello', 'he'], ['{@string.startsWith}'])) as boolean);
  t.is(ev(pipe(['ab', 3], ['{@string.repeat}'])), 'ababab');
  t.is(ev(pipe(['hello', 'l'], ['{@string.lastIndexOf}'])), 3);
});

test('number family', (t) => {
  t.true(ev(pipe([5, 5], ['{@number.gte}'])) as boolean);
  t.false(ev(pipe([4, 5], ['{@number.gt}'])) as boolean);
  t.true(ev(pipe([4, 5], ['{@number.lt}'])) as boolean);
  t.true(ev(pipe([4], ['{@number.isEven}'])) as boolean);
  t.true(ev(pipe([-3], ['{@number.isOdd}'])) as boolean);
  t.is(ev(pipe(['3.75'], ['{@number.parseFloat}'])), 3.75);
  t.is(ev(pipe(['ff', 16], ['{@number.parseInt}'])), 255);
  t.is(ev(pipe([3.14159, 2], ['{@number.toFixed}'])), '3.14');
  t.is(ev(pipe([1, [2, 3]], ['{@number.add}'])), 6);
  t.true(ev(pipe([2.5], ['{@number.isInteger}'])) === false);
});

test('math family', (t) => {
  t.is(ev(pipe([10, 3, 2], ['{@math.subtract}'])), 5);
  t.is(ev(pipe([2, 3, 4], ['{@math.multiply}'])), 24);
  t.is(ev(pipe([12, 3, 2], ['{@math.divide}'])), 2);
  t.true(Number.isNaN(ev(pipe([1, 0], ['{@math.divide}']))));
  t.is(ev(pipe([-2.5], ['{@math.abs}'])), 2.5);
  t.is(ev(pipe([2.1], ['{@math.ceil}'])), 3);
  t.is(ev(pipe([2, 10], ['{@math.pow}'])), 1024);
  t.is(ev(pipe([3, 9, 1], ['{@math.max}'])), 9);
  t.is(ev(pipe([3, 4], ['{@math.hypot}'])), 5);
  const r = ev('{@math.random}') as number;
  t.true(r >= 0 && r < 1);
  t.throws(() => ev(pipe([], ['{@math.subtract}'])), {
    instanceOf: MappingEvaluationError,
    message: /math\.subtract.*at least one operand/,
  });
});

test('date family: ISO strings, epoch milliseconds and numeric strings; setters do not change the input', (t) => {
  t.is(ev(pipe(['{a1.output.data.when}'], ['{@date.getUTCHours}'])), 10);
  t.is(ev(pipe(['{a1.output.data.when}'], ['{@date.getTime}'])), Date.UTC(2026, 11, 6, 10, 20, 30));
  t.is(ev(pipe([Date.UTC(2026, 0, 2)], ['{@date.toISOString}'])), '2026-01-02T00:00:00.000Z');
  t.is(ev(pipe([String(Date.UTC(2026, 0, 2))], ['{@date.getUTCDate}'])), 2);
  t.is(ev(pipe(['{a1.output.data.when}', 0], ['{@date.setUTCHours}'], ['{@date.toISOString}'])), '2026-12-06T00:20:30.000Z');
  t.is(ev(pipe([2026, 11, 6], ['{@date.UTC}'])), Date.UTC(2026, 11, 6));
  t.is(ev(pipe(['2026-12-06T00:00:00Z'], ['{@date.parse}'])), Date.UTC(2026, 11, 6));
  t.throws(() => ev(pipe(['next tuesday'], ['{@date.getUTCDay}'])), { instanceOf: MappingEvaluationError, message: /not a date/ });
});

test('array family never changes its input', (t) => {
  const tags = (ctx.activities!['a1']!.output!.data as { tags: string[] }).tags;
  t.is(ev(pipe(['{a1.output.data.tags}', 2], ['{@array.get}'])), 'c');
  t.is(ev(pipe(['{a1.output.data.tags}'], ['{@array.length}'])), 3);
  t.deepEqual(ev(pipe(['{a1.output.data.tags}'], ['{@array.sort}'])), ['a', 'b', 'c']);
  t.deepEqual(ev(pipe(['{a1.output.data.tags}', 'DESCENDING'], ['{@array.sort}'])), ['c', 'b', 'a']);
  t.deepEqual(ev(pipe(['{a1.output.data.tags}', 'd'], ['{@array.push}'])), ['b', 'a', 'c', 'd']);
  t.is(ev(pipe(['{a1.output.data.tags}'], ['{@array.pop}'])), 'c');
  t.deepEqual(ev(pipe(['{a1.output.data.tags}'], ['{@array.reverse}'])), ['c', 'a', 'b']);
  t.is(ev(pipe(['{a1.output.data.tags}', '+'], ['{@array.join}'])), 'b+a+c');
  t.deepEqual(ev(pipe(['{a1.output.data.tags}', 1, 1], ['{@array.splice}'])), ['a']);
  t.deepEqual(ev(pipe(['{a1.output.data.tags}', ['z']], ['{@array.concat}'])), ['b', 'a', 'c', 'z']);
  t.is(ev(pipe(['{a1.output.data.tags}', 'c'], ['{@array.indexOf}'])), 2);
  t.deepEqual(tags, ['b', 'a', 'c']);
});

test('object family never changes its input', (t) => {
  const user = (ctx.activities!['a1']!.output!.data as { user: object }).user;
  t.is(ev(pipe(['{a1.output.data.user}', 'plan'], ['{@object.get}'])), 'pro');
  t.deepEqual(ev(pipe(['{a1.output.data.user}', 'plan', 'free'], ['{@object.set}'])), { plan: 'free', age: 41 });
  t.deepEqual(ev(pipe(['id', '{$job.metadata.jid}', 'n', 1], ['{@object.create}'])), { id: 'job-1', n: 1 });
  t.deepEqual(ev(pipe(['{a1.output.data.user}'], ['{@object.keys}'])), ['plan', 'age']);
  t.deepEqual(ev(pipe(['{a1.output.data.user}'], ['{@object.entries}'], ['{@object.fromEntries}'])), { plan: 'pro', age: 41 });
  t.deepEqual(ev(pipe(['{a1.output.data.user}', { extra: 1 }], ['{@object.assign}'])), { plan: 'pro', age: 41, extra: 1 });
  t.true(ev(pipe(['{a1.output.data.user}', 'age'], ['{@object.hasOwnProperty}'])) as boolean);
  t.deepEqual(user, { plan: 'pro', age: 41 });
});

test('conditional family', (t) => {
  t.is(ev(pipe([false, 'y', 'n'], ['{@conditional.ternary}'])), 'n');
  t.true(ev(pipe([1, '1'], ['{@conditional.equality}'])) as boolean);
  t.false(ev(pipe([1, '1'], ['{@conditional.strict_equality}'])) as boolean);
  t.true(ev(pipe([1, '1'], ['{@conditional.strict_inequality}'])) as boolean);
  t.true(ev(pipe([2, 1], ['{@conditional.greater_than}'])) as boolean);
  t.true(ev(pipe([1, 1], ['{@conditional.less_than_or_equal}'])) as boolean);
  t.is(ev(pipe(['{a1.output.data.missing}', 'fallback'], ['{@conditional.nullish}'])), 'fallback');
  t.is(ev(pipe([0, 'fallback'], ['{@conditional.nullish}'])), 0);
});

test('logical family', (t) => {
  t.is(ev(pipe([true, false], ['{@logical.and}'])), false);
  t.is(ev(pipe([false, true], ['{@logical.or}'])), true);
  t.is(ev(pipe(pipe(['{$self.output.data.risk}', 50], ['{@number.gt}']), pipe(['{h1.hook.data.approved}']), ['{@logical.and}'])), true);
});

test('json family', (t) => {
  t.is(ev(pipe(['{a1.output.data.user}'], ['{@json.stringify}'])), '{"plan":"pro","age":41}');
  t.is(ev(pipe([{ a: 1 }, null, 1], ['{@json.stringify}'])), '{\n "a": 1\n}');
  t.deepEqual(ev(pipe(['{"a":[1,2]}'], ['{@json.parse}'])), { a: [1, 2] });
  t.throws(() => ev(pipe(['not json'], ['{@json.parse}'])), { instanceOf: MappingEvaluationError, message: /json\.parse/ });
});

test('every family users reach for first is there', (t) => {
  t.deepEqual(Object.keys(PIPE_FUNCTIONS).sort(), [
    'array',
    'conditional',
    'date',
    'json',
    'logical',
    'math',
    'number',
    'object',
    'string',
  ]);
});

test('parse problems: unknown function with a suggestion, malformed paths, rows without a function', (t) => {
  const p = parseMapping({
    a: pipe(['{x.output.data.y}'], ['{@math.ad}']),
    b: '{$jb.data.x}',
    c: '{a1.outptu.data.x}',
    d: pipe([1], [2]),
    e: pipe(pipe([1])),
  });
  const byAt = Object.fromEntries(p.problems.map((x) => [x.at.join('/'), x]));
  t.regex(byAt['a/@pipe/1/0']!.message, /unknown @pipe function \{@math\.ad\}/);
  t.regex(byAt['a/@pipe/1/0']!.hint!, /math\.add/);
  t.regex(byAt['b']!.message, /unknown mapping root \$jb/);
  t.regex(byAt['c']!.message, /one of input, output, hook, not outptu/);
  t.regex(byAt['d/@pipe/1/0']!.message, /must start with a function/);
  t.regex(byAt['e/@pipe/0']!.message, /cannot end with a nested @pipe/);
  t.is(p.problems.length, 5);
});
