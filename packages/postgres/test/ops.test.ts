import test from 'ava';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitaError } from '@partita/core';
import {
  ADMIN_STORE,
  CLIENT_STORE,
  ENGINE_STORE,
  GLOBAL_STORE,
  JobStore,
  LEASE_STORE,
  Leases,
  type AdminStore,
  type ClientStore,
  type EngineStore,
  type GlobalStore,
  type LeaseStore,
} from '@partita/postgres';
import * as ops from '../src/ops.js';
import { freshSchema } from '../../../test/helpers/index.js';

// The typed op registry (src/ops.ts) and the storage ports (src/ports.ts).

const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

/** A copy of the package's sql folder to damage; removed after `run`. */
function withSqlCopy(run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'partita-ops-')) + '/';
  try {
    cpSync(SQL_DIR + 'ops', dir + 'ops', { recursive: true });
    cpSync(SQL_DIR + 'fragments', dir + 'fragments', { recursive: true });
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const camel = (name: string) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

test('the registry loads every file of sql/ops, and each op has its typed function', (t) => {
  const loaded = ops.loadOps('ops_registry');
  t.deepEqual(Object.keys(loaded).sort(), [...ops.OP_NAMES].sort());
  const exported = ops as unknown as Record<string, unknown>;
  for (const name of ops.OP_NAMES) {
    t.is(typeof exported[camel(name)], 'function', `ops.${camel(name)} runs sql/ops/${name}.sql`);
    t.regex(loaded[name].name, new RegExp(`^partita_${name}_[0-9a-f]{10}$`), 'prepared under the same name as before');
  }
});

test('a copy of the folder as shipped loads the same statements', (t) => {
  withSqlCopy((dir) => t.deepEqual(ops.loadOps('ops_registry', dir), ops.loadOps('ops_registry')));
});

test('the registry refuses a folder with an op file missing, naming it', (t) => {
  withSqlCopy((dir) => {
    rmSync(dir + 'ops/heartbeat.sql');
    rmSync(dir + 'ops/notify.sql');
    const err = t.throws(() => ops.loadOps('ops_registry', dir), { instanceOf: PartitaError });
    t.is(err?.code, 'SQL_OPS');
    t.regex(err!.message, / are missing; the package's sql folder is damaged/);
    t.regex(err!.message, /sql\/ops\/heartbeat\.sql\b/);
    t.regex(err!.message, /sql\/ops\/notify\.sql\b/);
  });
});

test('the registry refuses a file no op runs, naming it', (t) => {
  withSqlCopy((dir) => {
    writeFileSync(dir + 'ops/forgotten_op.sql', 'SELECT 1\n');
    const err = t.throws(() => ops.loadOps('ops_registry', dir), { instanceOf: PartitaError });
    t.is(err?.code, 'SQL_OPS');
    t.regex(err!.message, /^sql\/ops\/forgotten_op\.sql: no op of @partita\/postgres runs this file/);
    t.notRegex(err!.message, /heartbeat/, 'only the stray file is named');
  });
});

test('JobStore and Leases have every member of each port', async (t) => {
  const db = await freshSchema('ports');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  try {
    // Compile-time: the store is each port (a port naming a member JobStore lacks fails typecheck).
    const engine: EngineStore = store;
    const global: GlobalStore = store;
    const client: ClientStore = store;
    const admin: AdminStore = store;
    const leases: LeaseStore = new Leases(store.pool, store.schema);
    const ports: [string, readonly string[], object][] = [
      ['EngineStore', ENGINE_STORE, engine],
      ['GlobalStore', GLOBAL_STORE, global],
      ['ClientStore', CLIENT_STORE, client],
      ['AdminStore', ADMIN_STORE, admin],
      ['LeaseStore', LEASE_STORE, leases],
    ];
    for (const [port, members, impl] of ports) {
      t.true(members.length > 0, port);
      for (const member of members) {
        const value = (impl as Record<string, unknown>)[member];
        if (member === 'pool' || member === 'schema') t.truthy(value, `${port}.${member}`);
        else t.is(typeof value, 'function', `${port}.${member}`);
      }
    }
    t.is(new Set(ENGINE_STORE).size, ENGINE_STORE.length, 'no member listed twice');
  } finally {
    await store.close();
    await db.drop();
  }
});

test('a typed op runs on a transaction client and sees what the transaction wrote', async (t) => {
  const db = await freshSchema('ops_tx');
  const store = await JobStore.open({ postgres: db.url, schema: db.schema });
  try {
    await store.registerQueues('node-a', [{ partition: 'p', queue: 'default', concurrency: 1 }]);
    const statements = ops.loadOps(db.schema);
    let id = '';
    await t.throwsAsync(
      store.withTransaction(async (tx) => {
        [{ id }] = (await tx.enqueue([{ partition: 'p', type: 't', payload: { n: 1 } }])) as [{ id: string }];
        const [row] = await ops.getJob(statements, tx.client, [id]);
        t.deepEqual(row?.payload, { n: 1 }, 'read inside the transaction');
        t.deepEqual(await ops.getJob(statements, store.pool, [id]), [], 'not visible outside it before commit');
        throw new Error('roll back');
      }),
      { message: 'roll back' },
    );
    t.deepEqual(await ops.getJob(statements, store.pool, [id]), [], 'rolled back');
  } finally {
    await store.close();
    await db.drop();
  }
});

test('array rows are read by column name: any order, and a column the statement lost is an error naming it and the op', (t) => {
  const at = ops.columnIndexes(['queue', 'found', 'id'], ['id', 'queue', 'found'] as const, 'claim_batch');
  t.deepEqual(at, { id: 2, queue: 0, found: 1 });
  const err = t.throws(() => ops.columnIndexes(['id', 'queue'], ['id', 'queue', 'continuation'] as const, 'claim_batch'), {
    instanceOf: PartitaError,
  });
  t.regex(err.message, /claim_batch\.sql returns no column "continuation" \(it returns id, queue\)/);
});
