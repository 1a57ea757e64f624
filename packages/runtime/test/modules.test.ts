/**
 * Loading the modules users write (jobs, persisters): a module that fails to load says where — file,
 * line and column, with that line — whether it is a syntax error (JavaScript or TypeScript), a throw
 * while it is evaluated, or a syntax error in a module it imports.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@partita/core';
import { describeImportError, importUserModule, startNode } from '@partita/runtime';

async function moduleDir(t: import('ava').ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'partita-modules-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  return dir;
}

async function importError(file: string): Promise<string> {
  try {
    await importUserModule(file);
  } catch (err) {
    return describeImportError(err, file);
  }
  throw new Error(`${file} loaded`);
}

test('a JavaScript syntax error: file:line:column, the line and a caret', async (t) => {
  const dir = await moduleDir(t, { 'jobs.js': `export const jobs = [\n  { type: 'a', perform: () => 1 } oops,\n];\n` });
  const file = path.join(dir, 'jobs.js');
  const said = await importError(file);
  t.true(said.startsWith(`${file}:2:35: SyntaxError: Unexpected identifier 'oops'`), said);
  t.regex(said, /\n {4} {2}\{ type: 'a', perform: \(\) => 1 \} oops,\n {4} {34}\^$/);
});

test('a TypeScript syntax error: file:line:column from tsx, the line and a caret', async (t) => {
  const dir = await moduleDir(t, { 'jobs.ts': `const n: number = 1;\nexport const jobs = [];\nconst broken = (x: number) => x +;\n` });
  const file = path.join(dir, 'jobs.ts');
  const said = await importError(file);
  t.true(said.includes(`${file}:3:33: ERROR: Unexpected ";"`), said);
  t.regex(said, /\n {4}const broken = \(x: number\) => x \+;\n {4} {33}\^$/);
});

test('a throw while a module is evaluated: the line in the user file that threw, also from a helper it imports', async (t) => {
  const dir = await moduleDir(t, {
    'settings.ts': `const env: Record<string, string | undefined> = {};\nexport const region: string = env.REGION ?? fail('REGION is not set');\nfunction fail(why: string): never {\n  throw new Error(why);\n}\n`,
    'jobs.ts': `import { region } from './settings.js';\nexport const jobs = [{ type: region, perform: () => 1 }];\n`,
  });
  const said = await importError(path.join(dir, 'jobs.ts'));
  t.true(said.startsWith(`${path.join(dir, 'settings.ts')}:4:9: Error: REGION is not set`), said);
  t.regex(said, /\n {4} {2}throw new Error\(why\);\n/);
});

test('a syntax error in an imported module is reported as such, a missing module by its path', async (t) => {
  const dir = await moduleDir(t, {
    'lib.js': 'export const x = ;\n',
    'jobs.js': `import { x } from './lib.js';\nexport const jobs = [x];\n`,
    'gone.js': `import './nowhere.js';\n`,
  });
  t.is(
    await importError(path.join(dir, 'jobs.js')),
    `SyntaxError: Unexpected token ';' (in a module that ${path.join(dir, 'jobs.js')} imports)`,
  );
  t.regex(await importError(path.join(dir, 'gone.js')), new RegExp(`Cannot find module '${path.join(dir, 'nowhere.js')}'`));
});

test('startNode with a jobs module that does not load: a ConfigError naming the module and the line, before any connection', async (t) => {
  const dir = await moduleDir(t, { 'jobs.js': `export const jobs = [];\nthrow new TypeError('bad jobs module');\n` });
  const file = path.join(dir, 'jobs.js');
  const err = await t.throwsAsync(
    startNode({
      jobs: file,
      postgres: 'postgres://127.0.0.1:1/unreachable',
      nats: false,
      partitions: { p: { queues: { default: { concurrency: 1 } } } },
    }),
    { instanceOf: ConfigError },
  );
  t.true(err!.message.includes(`jobs: cannot load the jobs module ${file}: ${file}:2:7: TypeError: bad jobs module`), err!.message);
});
