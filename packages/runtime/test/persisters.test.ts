import test from 'ava';
import { access, copyFile, mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { PostgresGlobalState, migrate } from '@partita/postgres';
import { ConfigError, PersisterError, StaleEpochError, ValidationError, silentLogger } from '@partita/core';
import { FilePersister, PostgresPersister, createPersister, loadPersisterModule, validateSnapshot } from '../src/global/persisters.js';
import { emptySnapshot } from '../src/global/types.js';
// From the package's public surface: a persister module written by a user types itself with these.
import type { GlobalSnapshot, Persister } from '@partita/runtime';
import { capturingLogger, freshSchema, type TestSchema } from '../../../test/helpers/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const logger = silentLogger();

function snapshot(partition: string, epoch: number, extra: Partial<GlobalSnapshot> = {}): GlobalSnapshot {
  return {
    ...emptySnapshot(partition, epoch),
    savedAt: new Date().toISOString(),
    cancelled: ['0190a6c4-0000-7000-8000-000000000001'],
    paused: ['mail'],
    throttles: [
      { ms: 250, queue: 'mail' },
      { ms: -1, node: 'node-x' },
    ],
    ...extra,
  };
}

async function tempDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'partita-persister-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8'));

// ── file persister ────────────────────────────────────────────────────────────────────────────

test('file: nothing saved loads as undefined; a save round-trips with its epoch and checksum recorded', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(join(dir, 'global')); // created on first save
  t.is(await p.load('billing'), undefined);
  const s = snapshot('billing', 3);
  await p.save('billing', s, 3);
  t.deepEqual(await p.load('billing'), s);
  const doc = await readJson(p.fileOf('billing'));
  t.like(doc, { format: 'partita-global-state', version: 1, partition: 'billing', epoch: 3 });
  t.regex(doc.checksum, /^sha256:[0-9a-f]{64}$/);
  const again: Persister = new FilePersister(join(dir, 'global'));
  t.deepEqual(await again.load('billing'), s, 'a new process reads it back');
});

test('file: the previous good copy is kept as <partition>.prev.json', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  const first = snapshot('p', 1, { paused: ['a'] });
  const second = snapshot('p', 1, { paused: ['b'] });
  await p.save('p', first, 1);
  t.deepEqual((await readdir(dir)).sort(), ['p.json'], 'no previous copy after the first save, and no temp files');
  await p.save('p', second, 1);
  t.deepEqual((await readdir(dir)).sort(), ['p.json', 'p.prev.json']);
  t.deepEqual((await readJson(p.previousOf('p'))).snapshot, first);
  t.deepEqual(await p.load('p'), second);
});

test('file: a save from an older epoch is refused, also after a restart', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  await p.save('p', snapshot('p', 4, { paused: ['new'] }), 4);
  const err = await t.throwsAsync(p.save('p', snapshot('p', 3, { paused: ['old'] }), 3), { instanceOf: StaleEpochError });
  t.regex(err!.message, /epoch 3 refused: epoch 4 has taken over/);
  await t.throwsAsync(new FilePersister(dir).save('p', snapshot('p', 2), 2), { instanceOf: StaleEpochError });
  t.deepEqual((await p.load('p'))?.paused, ['new']);
  await p.save('p', snapshot('p', 5, { paused: ['newer'] }), 5);
  t.deepEqual((await p.load('p'))?.paused, ['newer']);
});

test('file: concurrent saves of one partition are serialised, in call order', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  const s = snapshot('p', 1);
  const saves = Array.from({ length: 20 }, (_, i) => {
    s.cancelled = [`job-${i}`]; // changed after each call: each save must keep what it was given
    return p.save('p', s, 1);
  });
  await Promise.all(saves);
  t.deepEqual((await p.load('p'))?.cancelled, ['job-19']);
  t.deepEqual((await readJson(p.previousOf('p'))).snapshot.cancelled, ['job-18']);
  t.deepEqual((await readdir(dir)).sort(), ['p.json', 'p.prev.json']);
});

test('file: a corrupt state file stops the load with an error naming the file and the recovery options', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  await p.save('p', snapshot('p', 1, { paused: ['good'] }), 1);
  await p.save('p', snapshot('p', 2, { paused: ['latest'] }), 2);
  const file = p.fileOf('p');
  const good = await readFile(file, 'utf8');

  const cases: [string, string, RegExp][] = [
    ['truncated', good.slice(0, good.length / 2), /is not valid JSON/],
    ['edited', good.replace('"latest"', '"edited"'), /fails its checksum/],
    ['foreign', JSON.stringify({ hello: 'world' }), /is not a Partita Global state file/],
    ['future', good.replace('"version":1,', '"version":7,'), /file version 7/],
  ];
  // A file whose checksum is right but whose snapshot has the wrong shape.
  const body = JSON.stringify({ ...snapshot('p', 2), cancelled: 'all' });
  const sum = 'sha256:' + createHash('sha256').update(body).digest('hex');
  cases.push([
    'wrong shape',
    `{"format":"partita-global-state","version":1,"partition":"p","epoch":2,"checksum":"${sum}","snapshot":${body}}`,
    /cancelled must be an array/,
  ]);

  for (const [what, text, problem] of cases) {
    await writeFile(file, text);
    const err = await t.throwsAsync(p.load('p'), { instanceOf: PersisterError }, what);
    t.regex(err!.message, problem, what);
    t.true(err!.message.includes(file), `${what}: names the file`);
    t.true(err!.message.includes(`mv ${p.previousOf('p')} ${file}`), `${what}: offers the previous copy`);
    t.regex(err!.message, /epoch 1, saved at/, `${what}: says how old the previous copy is`);
    t.regex(err!.message, /delete .* to start the partition empty — its cancelled job ids, paused queues .* would be lost/, what);
    // Nor may a save rotate the corrupt file over the good previous copy.
    await t.throwsAsync(p.save('p', snapshot('p', 3), 3), { instanceOf: PersisterError }, what);
    t.deepEqual((await readJson(p.previousOf('p'))).snapshot.paused, ['good'], what);
  }
  // Following the advice works.
  await writeFile(file, await readFile(p.previousOf('p')));
  t.deepEqual((await p.load('p'))?.paused, ['good']);
});

test('file: a corrupt file without a previous copy, or a missing file with one, is not an empty start either', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  await writeFile(p.fileOf('solo'), '{"format":');
  const err = await t.throwsAsync(p.load('solo'), { instanceOf: PersisterError });
  t.regex(err!.message, /there is no previous copy/);

  await p.save('gone', snapshot('gone', 1), 1);
  await p.save('gone', snapshot('gone', 1), 1);
  await unlink(p.fileOf('gone'));
  const missing = await t.throwsAsync(new FilePersister(dir).load('gone'), { instanceOf: PersisterError });
  t.regex(missing!.message, /is missing although its previous copy exists/);
});

test('file: temp files left by a crash mid-save are ignored and cleaned up', async (t) => {
  const dir = await tempDir(t);
  const p = new FilePersister(dir);
  const s = snapshot('p', 1);
  await p.save('p', s, 1);
  await writeFile(join(dir, 'p.json.4242-deadbeef.tmp'), '{"format":"partita-glo'); // crashed before its rename
  await writeFile(join(dir, 'p.prev.json.4242-deadbeef.tmp'), 'x');
  await writeFile(join(dir, 'q.json.4242-deadbeef.tmp'), '{"half'); // a partition that never completed a save
  const restarted = new FilePersister(dir);
  t.deepEqual(await restarted.load('p'), s);
  t.is(await restarted.load('q'), undefined);
  t.deepEqual((await readdir(dir)).sort(), ['p.json']);
});

test('file: partition names cannot leave the directory', async (t) => {
  const p = new FilePersister(await tempDir(t));
  await t.throwsAsync(p.load('../etc'), { instanceOf: ValidationError });
  await t.throwsAsync(p.save('a/b', snapshot('a/b', 1), 1), { instanceOf: ValidationError });
  await t.throwsAsync(p.save('p', snapshot('p', 1), -1), { instanceOf: ValidationError });
});

test('file: clusters and schemas sharing a directory keep apart; a file of another cluster or schema is refused', async (t) => {
  const dir = await tempDir(t);
  const a = new FilePersister(dir, { cluster: 'alpha', schema: 'partita' });
  const b = new FilePersister(dir, { cluster: 'beta', schema: 'partita' });
  const a2 = new FilePersister(dir, { cluster: 'alpha', schema: 'other_schema' });
  t.is(a.fileOf('billing'), join(dir, 'alpha', 'partita', 'billing.json'));
  t.is(a.previousOf('billing'), join(dir, 'alpha', 'partita', 'billing.prev.json'));
  t.is(a2.fileOf('billing'), join(dir, 'alpha', 'other_schema', 'billing.json'));
  t.is(new FilePersister(dir, { cluster: 'alpha' }).fileOf('billing'), join(dir, 'alpha', 'billing.json'));

  const sa = snapshot('billing', 3, { paused: ['alpha-queue'] });
  await a.save('billing', sa, 3);
  t.is(await b.load('billing'), undefined, 'another cluster sees nothing');
  t.is(await a2.load('billing'), undefined, 'another schema of the same cluster sees nothing');
  const sb = snapshot('billing', 1, { paused: ['beta-queue'], throttles: [] });
  await b.save('billing', sb, 1); // a lower epoch than alpha's: not refused, the epochs are not alpha's
  t.deepEqual(await a.load('billing'), sa);
  t.deepEqual(await b.load('billing'), sb);
  t.deepEqual(
    await new FilePersister(dir, { cluster: 'alpha', schema: 'partita' }).load('billing'),
    sa,
    "a new process of alpha reads alpha's",
  );
  t.like(await readJson(a.fileOf('billing')), { cluster: 'alpha', schema: 'partita', partition: 'billing', epoch: 3 });
  t.deepEqual((await readdir(dir)).sort(), ['alpha', 'beta'], 'nothing in the shared directory itself');

  // A file copied into another cluster's (or schema's) place is not loaded as that one's state.
  for (const [target, field, owner] of [
    [b, 'cluster', 'alpha'],
    [a2, 'schema', 'partita'],
  ] as const) {
    await mkdir(target.stateDir, { recursive: true });
    await copyFile(a.fileOf('billing'), target.fileOf('billing'));
    const err = await t.throwsAsync(target.load('billing'), { instanceOf: PersisterError });
    t.regex(err!.message, new RegExp(`belongs to ${field} "${owner}", not "(beta|other_schema)"`));
    t.true(err!.message.includes(target.fileOf('billing')));
  }

  // The names become path segments: nothing that could leave the directory.
  t.throws(() => new FilePersister(dir, { cluster: '../x' }), { instanceOf: ValidationError });
  t.throws(() => new FilePersister(dir, { cluster: 'c', schema: '../x' }), { instanceOf: ValidationError });
  t.throws(() => new FilePersister(dir, { schema: 'partita' }), { instanceOf: ValidationError });
});

test('file: a state file of the layout before clusters is adopted once, with a warning naming both paths', async (t) => {
  const dir = await tempDir(t);
  const old = new FilePersister(dir); // the unscoped layout: <dir>/<partition>.json
  const first = snapshot('billing', 6, { paused: ['old-1'] });
  const latest = snapshot('billing', 7, { paused: ['old-2'] });
  await old.save('billing', first, 6);
  await old.save('billing', latest, 7);
  const legacy = join(dir, 'billing.json');
  t.is(old.fileOf('billing'), legacy);

  const { logger, lines } = capturingLogger();
  const p = new FilePersister(dir, { cluster: 'demo', schema: 'partita', logger });
  t.is(p.legacyFileOf('billing'), legacy);
  t.deepEqual(await p.load('billing'), latest, 'the state survives the upgrade');
  const warning = lines.find((l) => l.level === 40 && /adopted the Global state of partition "billing"/.test(l.msg));
  t.truthy(warning, 'a warning says so');
  t.true(warning!.msg.includes(legacy) && warning!.msg.includes(p.fileOf('billing')), 'naming both paths');
  t.like(warning, { legacyFile: legacy, file: p.fileOf('billing'), cluster: 'demo', schema: 'partita', epoch: 7 });

  // Copied to the new place, with its epoch; the old files moved aside so no other cluster adopts them too.
  t.like(await readJson(p.fileOf('billing')), { cluster: 'demo', schema: 'partita', epoch: 7, snapshot: latest });
  t.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.json') || n.endsWith('.adopted')).sort(), [
    'billing.json.adopted',
    'billing.prev.json.adopted',
  ]);
  t.is(
    await new FilePersister(dir, { cluster: 'other', schema: 'partita' }).load('billing'),
    undefined,
    'a second cluster does not get it',
  );
  await t.throwsAsync(p.save('billing', snapshot('billing', 6), 6), { instanceOf: StaleEpochError }, 'the adopted epoch still fences');
  await p.save('billing', snapshot('billing', 8, { paused: ['new'] }), 8);
  t.deepEqual((await new FilePersister(dir, { cluster: 'demo', schema: 'partita' }).load('billing'))?.paused, ['new']);
  t.is(lines.filter((l) => /adopted/.test(l.msg)).length, 1, 'adopted once');
});

test('file: an old-layout file is not adopted when the new file exists or it records another cluster; a damaged one stops the load', async (t) => {
  const dir = await tempDir(t);
  const old = new FilePersister(dir);
  const p = new FilePersister(dir, { cluster: 'demo', schema: 'partita' });

  // The partition already has a file in the new layout: the old one is not looked at.
  await p.save('a', snapshot('a', 2, { paused: ['mine'] }), 2);
  await old.save('a', snapshot('a', 9, { paused: ['legacy'] }), 9);
  t.deepEqual((await p.load('a'))?.paused, ['mine']);
  t.true((await readdir(dir)).includes('a.json'), 'and it is left where it is');

  // One whose header names another cluster is someone else's: left alone, the partition starts empty.
  const foreign = new FilePersister(join(dir, 'elsewhere'), { cluster: 'beta' });
  await foreign.save('b', snapshot('b', 1), 1);
  await copyFile(foreign.fileOf('b'), join(dir, 'b.json'));
  t.is(await p.load('b'), undefined);
  t.true((await readdir(dir)).includes('b.json'));

  // A damaged one (or one of another partition) could be ours: the load stops, naming the file.
  await old.save('d', snapshot('d', 1, { paused: ['legacy'] }), 1);
  const cases: [string, string, RegExp][] = [
    ['c', '{"format":', /is not valid JSON/],
    ['d', (await readFile(old.fileOf('d'), 'utf8')).replace('"legacy"', '"edited"'), /fails its checksum/],
    ['e', await readFile(old.fileOf('a'), 'utf8'), /belongs to partition "a", not "e"/],
  ];
  for (const [partition, text, problem] of cases) {
    await writeFile(join(dir, `${partition}.json`), text);
    const err = await t.throwsAsync(p.load(partition), { instanceOf: PersisterError }, partition);
    t.regex(err!.message, problem, partition);
    t.true(err!.message.includes(join(dir, `${partition}.json`)), `${partition}: names the old file`);
    t.regex(err!.message, /move .* away to start the partition empty — its cancelled job ids/, partition);
    await t.throwsAsync(access(p.fileOf(partition)), undefined, `${partition}: nothing written in the new place`);
  }
});

// ── snapshot validation ───────────────────────────────────────────────────────────────────────

test('validateSnapshot accepts a snapshot and lists what is wrong with anything else', (t) => {
  const s = snapshot('p', 2);
  t.is(validateSnapshot(s, 'here'), s);
  t.is(validateSnapshot(emptySnapshot('p', 0), 'here', 'p').epoch, 0);
  const err = t.throws(() => validateSnapshot({ ...s, version: 2, epoch: -1, throttles: [{ ms: 'x' }] }, 'the thing'), {
    instanceOf: PersisterError,
  });
  t.regex(err!.message, /^the thing does not hold a valid Global snapshot: version 2 is newer/);
  t.regex(err!.message, /epoch must be a non-negative integer/);
  t.regex(err!.message, /throttles\[0\] must be/);
  t.regex(t.throws(() => validateSnapshot(s, 'x', 'other'))!.message, /belongs to partition "p", not "other"/);
  t.regex(t.throws(() => validateSnapshot([], 'x'))!.message, /expected an object, found an array/);
  // Written before Postgres held execution keys: still read, the keys left to Postgres.
  const legacy = validateSnapshot({ ...snapshot('p', 3), executionKeys: { k: { holder: 'j', waiters: [] } } }, 'old file');
  t.deepEqual(legacy, snapshot('p', 3, { savedAt: legacy.savedAt }));
});

// ── postgres persister ────────────────────────────────────────────────────────────────────────

test('postgres: round trip, stale epoch refused in SQL, corrupt row is an error with the way out', async (t) => {
  const db: TestSchema = await freshSchema('persister');
  t.teardown(() => db.drop());
  await migrate(db.pool, db.schema);
  const p = await createPersister({ kind: 'postgres' }, { dataDir: '/nonexistent', pool: db.pool, schema: db.schema, logger });
  t.true(p instanceof PostgresPersister);
  t.is(await p.load('p'), undefined);
  const s = snapshot('p', 2);
  await p.save('p', s, 2);
  t.deepEqual(await p.load('p'), s);
  const err = await t.throwsAsync(p.save('p', snapshot('p', 1, { paused: [] }), 1), { instanceOf: StaleEpochError });
  t.regex(err!.message, /epoch 1 refused: epoch 2 has taken over/);
  t.deepEqual(await p.load('p'), s);
  // A stale save fenced without the in-process check: another persister (node) on the same table.
  const other = new PostgresPersister(new PostgresGlobalState(db.pool, db.schema));
  await t.throwsAsync(other.save('p', s, 1), { instanceOf: StaleEpochError });

  await db.pool.query(`UPDATE "${db.schema}".global_state SET snapshot = '{"version": 1, "cancelled": 3}' WHERE partition = 'p'`);
  const bad = await t.throwsAsync(p.load('p'), { instanceOf: PersisterError });
  t.regex(bad!.message, /global_state/);
  t.regex(bad!.message, /cancelled must be an array/);
  t.regex(bad!.message, /DELETE FROM .* to start the partition empty — .* would be lost/);
});

// ── user modules ──────────────────────────────────────────────────────────────────────────────

const ctx = { dataDir: '/var/lib/partita', logger };

test('module: a default-exported persister object is used as is', async (t) => {
  const p = await loadPersisterModule(fixture('persister-object.mjs'), ctx);
  const s = snapshot('p', 1);
  await p.save('p', s, 1);
  t.deepEqual(await p.load('p'), s);
});

test('module: a `persister` export, a factory and a class are accepted; factories and classes get the context', async (t) => {
  const named = await loadPersisterModule(fixture('persister-named.mjs'), ctx);
  t.is(typeof named.save, 'function');
  const fromFactory = (await loadPersisterModule(fixture('persister-factory.mjs'), ctx)) as unknown as { ctx: typeof ctx };
  t.is(fromFactory.ctx.dataDir, ctx.dataDir);
  const fromClass = (await loadPersisterModule(fixture('persister-class.mjs'), ctx)) as unknown as {
    ctx: typeof ctx;
    constructor: { name: string };
  };
  t.is(fromClass.ctx, ctx);
  t.is(fromClass.constructor.name, 'MemoryPersister');
});

test('module: something that is not a persister is a ConfigError naming the file', async (t) => {
  const cases: [string, RegExp][] = [
    ['persister-invalid.mjs', /its default export does not implement Persister \(no save function\)/],
    ['persister-no-export.mjs', /has no default or `persister` export/],
    ['persister-bad-factory.mjs', /what its factory \(default export\) returned does not implement Persister \(no load or save function\)/],
    ['does-not-exist.mjs', /does not exist/],
  ];
  for (const [name, problem] of cases) {
    const err = await t.throwsAsync(loadPersisterModule(fixture(name), ctx), { instanceOf: ConfigError }, name);
    t.true(err!.message.includes(fixture(name)), `${name}: names the file`);
    t.regex(err!.message, problem, name);
  }
});

test('createPersister: file under the data dir, modules and instances checked, what they load shape-checked', async (t) => {
  const dataDir = await tempDir(t);
  const file = await createPersister({ kind: 'file' }, { dataDir, logger });
  t.true(file instanceof FilePersister);
  t.is((file as FilePersister).dir, join(dataDir, 'global'));
  t.is((file as FilePersister).stateDir, join(dataDir, 'global'), 'no cluster given: the unscoped layout');
  const scoped = (await createPersister({ kind: 'file' }, { dataDir, cluster: 'demo', schema: 'partita', logger })) as FilePersister;
  t.is(scoped.dir, join(dataDir, 'global'));
  t.is(scoped.fileOf('billing'), join(dataDir, 'global', 'demo', 'partita', 'billing.json'));

  const fromModule = await createPersister({ kind: 'module', path: fixture('persister-factory.mjs') }, { dataDir, logger });
  t.is(await fromModule.load('p'), undefined, 'null loads as nothing saved');
  const garbage = await createPersister({ kind: 'module', path: fixture('persister-garbage.mjs') }, { dataDir, logger });
  const err = await t.throwsAsync(garbage.load('p'), { instanceOf: PersisterError });
  t.regex(err!.message, /persister-garbage\.mjs loaded for partition "p" does not hold a valid Global snapshot/);
  await t.throwsAsync(createPersister({ kind: 'module', path: fixture('persister-invalid.mjs') }, { dataDir, logger }), {
    instanceOf: ConfigError,
  });

  const saved: unknown[] = [];
  const instance = await createPersister(
    { kind: 'instance', instance: { load: async () => undefined, save: async (...args: unknown[]) => void saved.push(args) } },
    { dataDir, logger },
  );
  await instance.save('p', snapshot('p', 1), 1);
  t.is(saved.length, 1);
  await t.throwsAsync(createPersister({ kind: 'instance', instance: { load: async () => undefined } as never }, { dataDir, logger }), {
    instanceOf: ConfigError,
  });
  await t.throwsAsync(createPersister({ kind: 'postgres' }, { dataDir, logger }), { instanceOf: ConfigError });
});
