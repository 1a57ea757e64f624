import test from 'ava';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitaError } from '@partita/core';
import { loadOps, renderOp } from '../src/sql.js';

const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

function withSqlDir(fragments: Record<string, string>, run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'partita-sql-')) + '/';
  try {
    mkdirSync(dir + 'fragments');
    for (const [name, text] of Object.entries(fragments)) writeFileSync(`${dir}fragments/${name}.sql`, text);
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every op loads with all its placeholders resolved', (t) => {
  for (const [op, statement] of Object.entries(loadOps('sql_ops'))) {
    t.false(statement.text.includes('{{'), op);
  }
});

test('the ops that include the job filter get each of its terms', (t) => {
  const ops = loadOps('sql_ops');
  const filterTerms = readFileSync(SQL_DIR + 'fragments/job_filter.sql', 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('--'))
    .map((line) => line.replace(/^AND /, ''));
  t.is(filterTerms.length, 6);
  for (const op of ['list_jobs', 'count_matching', 'cancel_matching', 'delete_matching'] as const) {
    for (const term of filterTerms) t.true(ops[op].text.includes(term), `${op}: ${term}`);
  }
  const liveAndHistory = ops.delete_matching.text.split('($6::jsonb IS NULL OR lookup_index @> $6)').length - 1;
  t.is(liveAndHistory, 2);
});

test('a fragment goes in parenthesised, without its comment lines, and takes the schema', (t) => {
  withSqlDir({ cond: '-- why\n--\na = 1\nOR {{schema}}.f(b)\n' }, (dir) => {
    const text = renderOp('SELECT 1 FROM t\n  WHERE x OR {{> cond}}\n', 'test.sql', 's', dir);
    t.is(text, 'SELECT 1 FROM t\n  WHERE x OR (a = 1\n              OR "s".f(b))\n');
  });
});

test('a missing fragment, an empty one, a nested include and an unknown placeholder each fail at load, naming the file', (t) => {
  withSqlDir({ empty: '-- nothing but a comment\n', outer: 'a = 1 AND {{> inner}}\n', inner: 'b = 2\n' }, (dir) => {
    const missing = t.throws(() => renderOp('SELECT {{> nowhere}}', 'ops/x.sql', 's', dir), { instanceOf: PartitaError });
    t.regex(missing.message, /^ops\/x\.sql: .*sql\/fragments\/nowhere\.sql/);
    t.throws(() => renderOp('SELECT {{> empty}}', 'ops/x.sql', 's', dir), { message: /^ops\/x\.sql: .*empty\.sql has no SQL/ });
    t.throws(() => renderOp('SELECT {{> outer}}', 'ops/x.sql', 's', dir), {
      message: /^ops\/x\.sql: \{\{> inner\}\} is not a placeholder/,
    });
    t.throws(() => renderOp('SELECT {{schema}}.t, {{shema}}.u', 'ops/x.sql', 's', dir), { message: /^ops\/x\.sql: \{\{shema\}\}/ });
  });
});
