import test from 'ava';
import { parseYaml, type PathSegment } from '../src/config/yaml.js';
import { closest } from '../src/config/suggest.js';

function linesOf(text: string, paths: PathSegment[][]): number[] {
  const r = parseYaml(text);
  if (!r.ok) throw new Error(`unexpected syntax error: ${r.error.reason}`);
  return paths.map((p) => r.positions.lineOf(r.value, p));
}

test('key and item lines in block style, with comments and blank lines in between', (t) => {
  const text = [
    '# header', //                1
    '', //                         2
    'a: 1', //                     3
    'b:', //                       4
    '  # comment', //              5
    '  c: [x, y]', //              6
    '  d:', //                     7
    '    - 1', //                  8
    '', //                         9
    '    - e: 2', //               10
    '      f: 3', //               11
    'g: {h: 1,', //                12
    '    i: 2}', //                13
    "'quoted key': 1", //          14
    'empty:', //                   15
    'last: x', //                  16
  ].join('\n');
  t.deepEqual(
    linesOf(text, [
      [],
      ['a'],
      ['b'],
      ['b', 'c'],
      ['b', 'c', 1],
      ['b', 'd', 0],
      ['b', 'd', 1],
      ['b', 'd', 1, 'e'],
      ['b', 'd', 1, 'f'],
      ['g', 'h'],
      ['g', 'i'],
      ['quoted key'],
      ['empty'],
      ['last'],
    ]),
    [3, 3, 4, 6, 6, 8, 10, 10, 11, 12, 13, 14, 15, 16],
  );
});

test('a path that leaves the file falls back to the deepest line in it (missing keys → their parent)', (t) => {
  const text = 'a:\n  b:\n    c: 1\nd: scalar\n';
  t.deepEqual(linesOf(text, [['a', 'b', 'missing'], ['a', 'nope', 'x'], ['d', 'url'], ['zzz']]), [2, 1, 4, 1]);
});

test('values that look like keys are not taken for keys', (t) => {
  const text = 'name: other\nother: name\nlist:\n  - name\n  - other\n';
  t.deepEqual(linesOf(text, [['name'], ['other'], ['list', 0], ['list', 1]]), [1, 2, 4, 5]);
});

test('CRLF line endings, a BOM, tabs after values and anchors/aliases', (t) => {
  const text = '\uFEFFbase: &b\r\n  x: 1\r\n\r\nother: *b\r\nmerged:\r\n  <<: *b\r\n  y: 2\t\r\n';
  const r = parseYaml(text);
  if (!r.ok) return t.fail(r.error.reason);
  t.deepEqual(r.value, { base: { x: 1 }, other: { x: 1 }, merged: { x: 1, y: 2 } });
  t.deepEqual(
    [['base', 'x'], ['other'], ['merged', 'y'], ['merged', 'x']].map((p) => r.positions.lineOf(r.value, p)),
    [2, 4, 7, 5], // an alias points at its anchor's keys; merged-in keys fall back to their mapping
  );
});

test('numeric and null keys are found by their string form', (t) => {
  t.deepEqual(linesOf('1: a\n~: b\ntrue: c\n', [['1'], ['null'], ['true']]), [1, 2, 3]);
});

test('syntax errors come back with 1-based line and column, never thrown', (t) => {
  const r = parseYaml('a: 1\nb: [1, 2\n', 'x.yaml');
  t.false(r.ok);
  if (r.ok) return;
  t.is(r.error.line, 3);
  t.is(r.error.column, 1);
  t.regex(r.error.reason, /flow collection/);
  const tab = parseYaml('a:\n\tb: 1\n');
  t.false(tab.ok);
  if (!tab.ok) t.is(tab.error.line, 2);
});

test('did you mean: case and separators, prefixes, typos, and nothing for unrelated words', (t) => {
  const keys = ['leaseMs', 'heartbeatMs', 'pollMs', 'prefetch', 'shutdownGraceMs'];
  t.is(closest('lease_ms', keys), 'leaseMs');
  t.is(closest('LEASEMS', keys), 'leaseMs');
  t.is(closest('laeseMs', keys), 'leaseMs');
  t.is(closest('hartbeatMs', keys), 'heartbeatMs');
  t.is(closest('shutdown', keys), 'shutdownGraceMs');
  t.is(closest('ca', ['rejectUnauthorized', 'caFile', 'certFile', 'keyFile']), 'caFile');
  t.is(closest('warning', ['fatal', 'error', 'warn', 'info']), 'warn');
  t.is(closest('concurrency', keys), undefined);
  t.is(closest('x', keys), undefined);
});

test('lineOfMember: one key or item of a container of this document, undefined for anything else', (t) => {
  const r = parseYaml(['a:', '  b: 1', '  c:', '    - x', '    - y', ''].join('\n'));
  if (!r.ok) return t.fail(r.error.reason);
  const root = r.value as { a: { b: number; c: string[] } };
  t.is(r.positions.lineOfMember(root, 'a'), 1);
  t.is(r.positions.lineOfMember(root.a, 'c'), 3);
  t.is(r.positions.lineOfMember(root.a.c, 1), 5);
  t.is(r.positions.lineOfMember(root.a, 'missing'), undefined);
  t.is(r.positions.lineOfMember(root.a.c, 'x'), undefined);
  t.is(r.positions.lineOfMember({ a: 1 }, 'a'), undefined);
});

test('parseYaml with json: true keeps dates as strings', (t) => {
  const text = 'when: 2026-12-06\n';
  const plain = parseYaml(text);
  const json = parseYaml(text, undefined, { json: true });
  if (!plain.ok || !json.ok) return t.fail('unexpected syntax error');
  t.true((plain.value as { when: unknown }).when instanceof Date);
  t.is((json.value as { when: unknown }).when, '2026-12-06');
});
