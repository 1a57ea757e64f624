/**
 * Plugins' migrations next to the core's: recorded per plugin, under the same advisory lock, on
 * fresh schemas and on schemas created before plugins had migrations (before 0010).
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginError } from '@partita/core';
import { JobStore, loadOpsFrom, migrate } from '@partita/postgres';
import { freshSchema } from '../../../test/helpers/index.js';

const NOTES = fileURLToPath(new URL('../../runtime/test/fixtures/plugins/notes/', import.meta.url));

test("a schema from before plugin migrations (0009) upgrades, then takes a plugin's migrations once", async (t) => {
  const db = await freshSchema('pmig');
  t.teardown(() => db.drop());
  await migrate(db.pool, db.schema);
  // Back to the table as versions up to 0009 left it: no plugin column, the version alone as key.
  // (Later core migrations stay recorded: their effects are still in the schema.)
  await db.pool.query(`DELETE FROM "${db.schema}".migrations WHERE version = 10`);
  await db.pool.query(`ALTER TABLE "${db.schema}".migrations DROP CONSTRAINT migrations_pkey`);
  await db.pool.query(`ALTER TABLE "${db.schema}".migrations DROP COLUMN plugin`);
  await db.pool.query(`ALTER TABLE "${db.schema}".migrations ADD PRIMARY KEY (version)`);

  const results = await Promise.all(
    Array.from({ length: 4 }, () => migrate(db.pool, db.schema, undefined, { plugins: [{ plugin: 'notes', dir: NOTES }] })),
  );
  t.deepEqual(
    results.filter((r) => r.length > 0),
    [[10]],
    'one process applied 0010, the others found it done',
  );
  const { rows } = await db.pool.query(`SELECT plugin, version FROM "${db.schema}".migrations WHERE version <= 2 ORDER BY plugin, version`);
  t.deepEqual(rows, [
    { plugin: '', version: 1 },
    { plugin: '', version: 2 },
    { plugin: 'notes', version: 1 },
    { plugin: 'notes', version: 2 },
  ]);
  const { rows: cols } = await db.pool.query(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'notes' ORDER BY ordinal_position`,
    [db.schema],
  );
  t.deepEqual(
    cols.map((c) => c.column_name),
    ['id', 'partition', 'body', 'author'],
  );

  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  t.teardown(() => store.close());
  const core = await store.appliedMigrations();
  t.deepEqual(
    core.map((m) => m.version),
    [...core.keys()].map((i) => i + 1),
    'the core list holds no plugin rows',
  );
});

test('a misnamed migration file or a number used twice is refused before anything runs', async (t) => {
  const db = await freshSchema('pmig');
  t.teardown(() => db.drop());
  const dir = mkdtempSync(join(tmpdir(), 'partita-pmig-'));
  writeFileSync(join(dir, '0001_first.sql'), 'CREATE TABLE {{schema}}.first_one (id int);');
  writeFileSync(join(dir, 'second.sql'), 'CREATE TABLE {{schema}}.second_one (id int);');
  const err = await t.throwsAsync(migrate(db.pool, db.schema, undefined, { plugins: [{ plugin: 'sloppy', dir }] }), {
    instanceOf: PluginError,
  });
  t.regex(err!.message, /plugin "sloppy".*second\.sql: a migration file is named NNNN_name\.sql/);
  const { rows } = await db.pool.query(`SELECT to_regclass($1) AS t`, [`"${db.schema}".first_one`]);
  t.is(rows[0].t, null);

  const twice = mkdtempSync(join(tmpdir(), 'partita-pmig-'));
  writeFileSync(join(twice, '0001_a.sql'), 'SELECT 1;');
  writeFileSync(join(twice, '0001_b.sql'), 'SELECT 1;');
  await t.throwsAsync(migrate(db.pool, db.schema, undefined, { plugins: [{ plugin: 'twice', dir: twice }] }), {
    instanceOf: PluginError,
    message: /number 0001/,
  });
});

test("a plugin's SQL operations load with the schema and {{> fragment}} includes from its own folder", (t) => {
  const root = mkdtempSync(join(tmpdir(), 'partita-pops-'));
  mkdirSync(join(root, 'ops'));
  mkdirSync(join(root, 'fragments'));
  writeFileSync(join(root, 'fragments', 'visible.sql'), '-- notes anyone may read\nhidden = false OR author = $1\n');
  writeFileSync(join(root, 'ops', 'list_notes.sql'), 'SELECT body FROM {{schema}}.notes\nWHERE {{> visible}}\n');
  const ops = loadOpsFrom<'list_notes'>(join(root, 'ops'), 'plugin_schema', 'notes');
  t.is(ops.list_notes.text, 'SELECT body FROM "plugin_schema".notes\nWHERE (hidden = false OR author = $1)\n');
  t.regex(ops.list_notes.name, /^notes_list_notes_[0-9a-f]{10}$/);
});
