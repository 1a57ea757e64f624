import test from 'ava';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ConfigProblem } from '../src/errors.js';
import { CONFIG_DEFAULTS, loadConfig, parseConfig, validateConfig, type PartitaConfig } from '../src/config/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/config/', import.meta.url));
const bad = (name: string) => join(fixtures, 'bad', name);
const good = (name: string) => join(fixtures, 'good', name);
const exampleConfig = fileURLToPath(new URL('../../../config/partita.yaml', import.meta.url));

interface Expected {
  line: number;
  path: string;
  message: RegExp;
}

/** Every bad fixture, with every problem it must produce: exact line, exact key path, the gist of the message. */
const BAD_FIXTURES: Record<string, Expected[]> = {
  'unknown-key.yaml': [
    { line: 5, path: 'engine.hartbeatMs', message: /^unknown key; did you mean "heartbeatMs"\? \(expected one of: leaseMs, heartbeatMs, / },
  ],
  'unknown-key-snake.yaml': [{ line: 9, path: 'retention.history_days', message: /^unknown key; did you mean "historyDays"\?/ }],
  'wrong-type.yaml': [
    { line: 3, path: 'retention.historyDays', message: /^expected an integer from 1 to 3650 days \(.*\), got "seven"$/ },
    { line: 5, path: 'limits.payloadBytes', message: /^expected an integer from 1024 to \d+ bytes .*got "1048576"; remove the quotes/ },
  ],
  'negative-concurrency.yaml': [
    {
      line: 8,
      path: 'partitions.billing.queues.emails.concurrency',
      message: /^expected an integer from 0 to 10000 \(jobs of this queue one node runs at once; 0 declares .*\), got -4$/,
    },
  ],
  // Missing key: the line of the parent mapping (for the top level, its first key after the comments).
  'missing-partitions.yaml': [
    { line: 4, path: 'partitions', message: /^is required: expected a mapping of partitions .*e\.g\. partitions: \{ billing:/ },
  ],
  'empty-partitions.yaml': [{ line: 2, path: 'partitions', message: /^expected at least one partition/ }],
  'missing-queues.yaml': [
    { line: 4, path: 'partitions.billing.queues.default.concurrency', message: /^is required: expected an integer from 0 to 10000/ },
    { line: 5, path: 'partitions.emails.queues', message: /^is required: expected a mapping of queues/ },
    { line: 6, path: 'partitions.emails.concurency', message: /^unknown key \(expected one of: queues\)$/ },
  ],
  'bad-partition-name.yaml': [
    { line: 6, path: 'partitions["billing.eu"]', message: /^partition "billing\.eu" is not allowed: use 1-64 letters, digits, "_" or "-"/ },
    { line: 11, path: 'partitions.emails.queues["send mail"]', message: /^queue "send mail" is not allowed/ },
  ],
  'rate-limit.yaml': [
    {
      line: 7,
      path: 'partitions.billing.queues.invoices.rateLimit.limit',
      message: /^expected an integer from 1 to 1000000 \(jobs that may start in any window of periodMs\), got 0$/,
    },
    {
      line: 11,
      path: 'partitions.billing.queues.emails.rateLimit.periodMs',
      message: /^is required: expected an integer from 10 to 86400000 ms/,
    },
    {
      line: 14,
      path: 'partitions.billing.queues.webhooks.rateLimit.burst',
      message: /^unknown key \(expected one of: limit, periodMs, key\)$/,
    },
    {
      line: 14,
      path: 'partitions.billing.queues.webhooks.rateLimit.periodMs',
      message: /^expected an integer from 10 to 86400000 ms .*got 5$/,
    },
    { line: 14, path: 'partitions.billing.queues.webhooks.rateLimit.key', message: /customer\.\.id/ },
  ],
  'heartbeat-lease.yaml': [{ line: 2, path: 'engine.heartbeatMs', message: /^must be less than leaseMs \(15000\) .*got 15000/ }],
  'prefetch-max.yaml': [{ line: 3, path: 'engine.maxPrefetch', message: /^must be at least prefetch \(64\), got 10/ }],
  'bad-persister.yaml': [
    {
      line: 1,
      path: 'persister',
      message: /^expected "file", "postgres" or a module path such as \.\/my-persister\.js .*got "fille"; did you mean "file"\?$/,
    },
  ],
  'syntax-error.yaml': [
    { line: 8, path: '', message: /^YAML syntax error at line 8, column 1: unexpected end of the stream within a flow collection/ },
  ],
  'bad-indent.yaml': [
    { line: 4, path: '', message: /^YAML syntax error at line 4, column 10: bad indentation of a mapping entry\n.*4 \|    pollMs: 100/s },
  ],
  'duplicate-key.yaml': [{ line: 2, path: '', message: /^YAML syntax error at line 2, column 1: duplicated mapping key/ }],
  'missing-env.yaml': [
    {
      line: 3,
      path: 'postgres.url',
      message:
        /^environment variable PARTITA_TEST_UNSET_PG_PASSWORD is not set \(referenced as \$\{PARTITA_TEST_UNSET_PG_PASSWORD\}\); set it, or give a default/,
    },
    { line: 7, path: 'nats.servers[1]', message: /^environment variable PARTITA_TEST_UNSET_NATS_B is not set/ },
  ],
  'many-problems.yaml': [
    { line: 5, path: 'postgres.host', message: /^cannot be combined with url: give either a url or host\/port\/user\/database$/ },
    { line: 6, path: 'postgres.poolSize', message: /^expected an integer from 1 to 1000 .*got 0$/ },
    { line: 7, path: 'nats.pass', message: /^is required when user is set$/ },
    { line: 8, path: 'nats.servers', message: /^expected at least 1 item/ },
    { line: 11, path: 'engine.leaseMs', message: /^expected an integer from 1000 to 2147483647 ms .*got 500$/ },
    { line: 13, path: 'defaults.maxAttempts', message: /got 2\.5$/ },
    { line: 14, path: 'defaults.backof', message: /^unknown key; did you mean "backoff"\?/ },
    { line: 15, path: 'http.port', message: /^expected an integer from 0 to 65535 .*got 70000$/ },
    { line: 16, path: 'log.level', message: /^expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent" .*got "loud"$/ },
    { line: 20, path: 'partitions.billing.queues.default.concurrency', message: /got -1$/ },
  ],
  'not-a-mapping.yaml': [{ line: 2, path: '', message: /^expected a mapping of settings/ }],
  'nats-auth.yaml': [
    { line: 1, path: 'nats.pass', message: /^is required when user is set$/ },
    { line: 4, path: 'nats.token', message: /^cannot be combined with user: use one way to authenticate$/ },
    { line: 5, path: 'nats.tls.keyFile', message: /^is required when certFile is set$/ },
  ],
  // A secret is never echoed back, and a number where text is wanted says to quote it.
  'secrets.yaml': [
    {
      line: 3,
      path: 'postgres.password',
      message: /^expected a non-empty string \(password of the role\), got a number; put the value in quotes/,
    },
  ],
  'empty.yaml': [{ line: 1, path: '', message: /^the file is empty/ }],
};

function configError(t: { fail(m: string): void }, fn: () => unknown): ConfigError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  t.fail('expected a ConfigError');
  return undefined;
}

for (const [name, expected] of Object.entries(BAD_FIXTURES)) {
  test(`bad config ${name}: one ConfigError naming file, line, key path and expectation of every problem`, async (t) => {
    const file = bad(name);
    const err = await t.throwsAsync(loadConfig(file, { env: {} }), { instanceOf: ConfigError });
    if (!err) return;
    const problems = (err as ConfigError).problems;
    t.deepEqual(
      problems.map((p) => [p.line, p.path]),
      expected.map((e) => [e.line, e.path]),
      'lines and key paths, in file order',
    );
    for (const [i, e] of expected.entries()) {
      const p = problems[i]!;
      t.is(p.file, file);
      t.regex(p.message, e.message);
      // The rendered message lists it as file:line: key.path: message.
      t.true(err.message.includes(`${file}:${e.line}: ${e.path || '(root)'}: ${p.message}`), err.message);
    }
    t.regex(err.message, new RegExp(`^invalid configuration \\(${expected.length} problems?\\)`));
    t.is((err as ConfigError).code, 'CONFIG');
  });
}

test('a YAML syntax error carries the column too', async (t) => {
  const err = await t.throwsAsync(loadConfig(bad('bad-indent.yaml'), { env: {} }), { instanceOf: ConfigError });
  t.like((err as ConfigError).problems[0] as ConfigProblem & { column?: number }, { line: 4, column: 10 });
});

test('a missing file is a ConfigError that says so', async (t) => {
  const err = await t.throwsAsync(loadConfig(join(fixtures, 'nope.yaml'), { env: {} }), { instanceOf: ConfigError });
  t.regex(err!.message, /nope\.yaml: \(root\): cannot read the config file \(no such file\)/);
});

const EXPECTED_DEFAULTS = {
  cluster: 'default',
  postgres: { poolSize: 10, schema: 'partita' },
  persister: { kind: 'file' as const, byDefault: true as const },
  defaults: { maxAttempts: 1, backoff: { baseMs: 1000, maxMs: 300_000 }, timeoutMs: 0 },
  engine: {
    leaseMs: 15_000,
    heartbeatMs: 5_000,
    pollMs: 1_000,
    prefetch: 32,
    maxPrefetch: 2_000,
    flushMs: 2,
    flushBatch: 500,
    shutdownGraceMs: 30_000,
  },
  retention: { historyDays: 7 },
  limits: { payloadBytes: 1_048_576 },
  log: { level: 'info' as const },
};

test('a minimal config is normalised with every default filled in', async (t) => {
  const file = good('minimal.yaml');
  const config = await loadConfig(file, { env: {} });
  t.deepEqual(config, {
    configFile: file,
    ...EXPECTED_DEFAULTS,
    dataDir: join(fixtures, 'good', '.partita'),
    partitions: { billing: { queues: { default: { concurrency: 5 } } } },
  } satisfies PartitaConfig);
  t.is(config.nats, undefined, 'no nats: in-process bus');
  t.is(config.postgres.url, undefined, 'no postgres url: embedded');
  t.is(config.http, undefined, 'no http: no server');
});

test('CONFIG_DEFAULTS agree with what the loader fills in', (t) => {
  const config = validateConfig({ partitions: { p: { queues: { q: { concurrency: 1 } } } } });
  t.is(config.cluster, CONFIG_DEFAULTS.cluster);
  t.deepEqual(config.engine, CONFIG_DEFAULTS.engine);
  t.deepEqual(config.defaults, CONFIG_DEFAULTS.defaults);
  t.deepEqual(config.retention, CONFIG_DEFAULTS.retention);
  t.deepEqual(config.limits, CONFIG_DEFAULTS.limits);
  t.is(config.log.level, CONFIG_DEFAULTS.log.level);
  t.is(config.postgres.schema, CONFIG_DEFAULTS.postgres.schema);
  t.is(config.postgres.poolSize, CONFIG_DEFAULTS.postgres.poolSize);
  t.is(config.dataDir, resolve(CONFIG_DEFAULTS.dataDir));
});

test('a full config: every setting, relative paths resolved against the config file directory', async (t) => {
  const file = good('full.yaml');
  const dir = join(fixtures, 'good');
  const config = await loadConfig(file, { env: {} });
  t.deepEqual(config, {
    configFile: file,
    cluster: 'prod-eu',
    postgres: {
      url: 'postgres://partita:p%40ss%3Aw%2Frd@db.internal:6432/jobs',
      ssl: { rejectUnauthorized: false, caFile: join(dir, 'certs/ca.pem') },
      poolSize: 20,
      schema: 'jobs_eu',
    },
    nats: {
      servers: ['nats://n1:4222', 'tls://n2:4222'],
      nkeySeedFile: join(dir, 'secrets/seed.nk'),
      tls: { rejectUnauthorized: true },
    },
    persister: { kind: 'module', path: join(dir, 'lib/persister.js') },
    dataDir: '/var/lib/partita',
    jobs: join(fixtures, 'jobs/index.js'),
    http: { port: 0, host: '127.0.0.1' },
    defaults: { maxAttempts: 5, backoff: { baseMs: 500, maxMs: 60_000 }, timeoutMs: 120_000 },
    engine: {
      leaseMs: 30_000,
      heartbeatMs: 5_000,
      pollMs: 250,
      prefetch: 0,
      maxPrefetch: 0,
      flushMs: 2,
      flushBatch: 500,
      shutdownGraceMs: 0,
    },
    retention: { historyDays: 30 },
    limits: { payloadBytes: 65_536 },
    log: { level: 'debug' },
    partitions: {
      billing: { queues: { default: { concurrency: 10 }, invoices: { concurrency: 2 } } },
      emails: { queues: { default: { concurrency: 50 } } },
    },
  } satisfies PartitaConfig);
  // The password survives the URL encoding.
  t.is(decodeURIComponent(new URL(config.postgres.url!).password), 'p@ss:w/rd');
});

test('short spellings: postgres URL, comma-separated NATS servers, persister name, http: false', async (t) => {
  const config = await loadConfig(good('shorthands.yaml'), { env: {} });
  t.deepEqual(config.postgres, { url: 'postgres://app:secret@db:5432/app?sslmode=require', poolSize: 10, schema: 'partita' });
  t.deepEqual(config.nats, { servers: ['nats://n1:4222', 'nats://n2:4222'] });
  t.deepEqual(config.persister, { kind: 'postgres' });
  t.is(config.http, undefined);
  t.deepEqual(Object.keys(config.partitions.p1!.queues), ['q_1', 'q-2']);
});

test('the example config/partita.yaml loads: embedded Postgres, in-process bus, jobs next to it', async (t) => {
  const config = await loadConfig(exampleConfig, { env: {} });
  const dir = resolve(exampleConfig, '..');
  t.is(config.cluster, 'demo');
  t.is(config.postgres.url, undefined);
  t.is(config.nats, undefined);
  t.is(config.jobs, join(dir, 'jobs.js'));
  t.is(config.dataDir, join(dir, '.partita'));
  t.deepEqual(config.persister, { kind: 'file', byDefault: true }, 'the embedded PostgreSQL: the file persister, by default');
  t.deepEqual(config.http, { port: 9464, host: '127.0.0.1', dashboard: '/ui' });
  t.true(Object.keys(config.partitions).length >= 2);
  for (const p of Object.values(config.partitions)) t.true(Object.keys(p.queues).length >= 1);
});

test('heartbeatMs defaults to a third of a short leaseMs, so it stays under it', (t) => {
  const config = validateConfig({ engine: { leaseMs: 3000 }, partitions: { p: { queues: { q: { concurrency: 1 } } } } });
  t.is(config.engine.heartbeatMs, 1000);
});

test('postgres from parts: unix socket host, IPv6 host, user without password, no database', (t) => {
  const pg = (postgres: object) => validateConfig({ postgres, partitions: { p: { queues: { q: { concurrency: 1 } } } } }).postgres.url;
  t.is(pg({ host: '/var/run/postgresql', user: 'me', database: 'db' }), 'postgres://me@localhost:5432/db?host=%2Fvar%2Frun%2Fpostgresql');
  t.is(pg({ host: '::1', port: 5433 }), 'postgres://[::1]:5433');
  t.is(pg({ user: 'me' }), 'postgres://me@localhost:5432');
  t.is(pg({ url: 'postgres://me:old@db/x', password: 'n:ew' }), 'postgres://me:n%3Aew@db/x');
  t.is(pg({ schema: 'other' }), undefined, 'only a schema: still embedded');
});

// ---- validateConfig (programmatic) ----------------------------------------------------------------

test('validateConfig: the same checks for a programmatic object, without lines', (t) => {
  const err = configError(t, () =>
    validateConfig(
      {
        postgres: 'mysql://x',
        nats: 42,
        engine: { leaseMs: 1000, heartbeatMs: 1000, pollMS: 5 },
        partitions: { 'a b': { queues: { q: { concurrency: 0 } } }, ok: { queues: { idle: { concurrency: 0 } } } },
      },
      '/etc/partita.yaml',
    ),
  );
  if (!err) return;
  t.deepEqual(
    err.problems.map((p) => [p.file, p.line, p.path]),
    [
      ['/etc/partita.yaml', undefined, 'postgres.url'],
      ['/etc/partita.yaml', undefined, 'nats'],
      ['/etc/partita.yaml', undefined, 'engine.pollMS'],
      ['/etc/partita.yaml', undefined, 'engine.heartbeatMs'],
      ['/etc/partita.yaml', undefined, 'partitions["a b"]'],
    ],
  );
  t.regex(
    err.problems[1]!.message,
    /^expected a mapping, a nats:\/\/ URL \(comma-separated for several\), a list of URLs or false \(.*\), got 42$/,
  );
  t.regex(err.message, /\/etc\/partita\.yaml: engine\.pollMS: unknown key; did you mean "pollMs"\?/);
  const noFile = configError(t, () => validateConfig({}));
  t.deepEqual(noFile?.problems, [{ path: 'partitions', message: noFile!.problems[0]!.message }]);
  t.regex(noFile!.message, /^invalid configuration \(1 problem\); fix these and start again:\n {2}partitions: is required/);
});

test('validateConfig: accepts what startNode is given (URL strings, nats: false, a persister object, job definitions)', (t) => {
  const persister = { load: async () => undefined, save: async () => {} };
  const jobs = [{ type: 'a', perform: () => 1 }];
  const input = {
    cluster: 'c1',
    postgres: 'postgres://localhost/x',
    nats: false as const,
    persister,
    jobs,
    dataDir: 'rel/dir',
    partitions: { p: { queues: { q: { concurrency: 3 } } } },
  };
  const snapshot = JSON.stringify(input);
  const config = validateConfig(input, undefined, { baseDir: '/srv/app' });
  t.is(config.nats, undefined);
  t.is(config.postgres.url, 'postgres://localhost/x');
  t.deepEqual(config.persister, { kind: 'instance', instance: persister });
  t.is((config.persister as { instance: unknown }).instance, persister, 'the same object');
  t.is(config.jobs, jobs, 'the same array');
  t.is(config.dataDir, '/srv/app/rel/dir');
  t.is(config.configFile, undefined);
  t.is(JSON.stringify(input), snapshot, 'the input is not modified');
});

test('validateConfig: the environment only counts when it is passed', (t) => {
  const input = { partitions: { p: { queues: { q: { concurrency: 3 } } } } };
  const saved = process.env.PARTITA_CLUSTER;
  process.env.PARTITA_CLUSTER = 'from-process-env';
  try {
    t.is(validateConfig(input).cluster, 'default');
    t.is(validateConfig(input, undefined, { env: { PARTITA_CLUSTER: 'from-opts' } }).cluster, 'from-opts');
  } finally {
    if (saved === undefined) delete process.env.PARTITA_CLUSTER;
    else process.env.PARTITA_CLUSTER = saved;
  }
});

test('parseConfig is pure: same text, same file name, same result; messages use the name given', (t) => {
  const text = 'partitions:\n  p:\n    queues:\n      q: { concurrency: nope }\n';
  const err = configError(t, () => parseConfig(text, 'inline.yaml', { env: {}, baseDir: '/x' }));
  t.regex(err!.message, /inline\.yaml:4: partitions\.p\.queues\.q\.concurrency: expected an integer from 0 to 10000/);
  const ok = parseConfig('partitions: {p: {queues: {q: {concurrency: 1}}}}\njobs: ./j.js\n', 'inline.yaml', { env: {}, baseDir: '/x' });
  t.is(ok.jobs, '/x/j.js');
});

test('the default persister is postgres when a Postgres server is configured, file with the embedded one; a given one stays', (t) => {
  const partitions = { p: { queues: { q: { concurrency: 1 } } } };
  t.deepEqual(validateConfig({ partitions }).persister, { kind: 'file', byDefault: true });
  t.deepEqual(validateConfig({ partitions, postgres: 'postgres://db/x' }).persister, { kind: 'postgres', byDefault: true });
  t.deepEqual(validateConfig({ partitions, postgres: { host: 'db', database: 'x' } }).persister, { kind: 'postgres', byDefault: true });
  t.deepEqual(validateConfig({ partitions, postgres: 'postgres://db/x', persister: 'file' }).persister, { kind: 'file' });
  t.deepEqual(validateConfig({ partitions }, undefined, { env: { PARTITA_POSTGRES_URL: 'postgres://db/x' } }).persister, {
    kind: 'postgres',
    byDefault: true,
  });
  t.is(CONFIG_DEFAULTS.persister, 'postgres');
});

test('persister and jobs module paths: relative, absolute, file URL', (t) => {
  const base = 'partitions: {p: {queues: {q: {concurrency: 1}}}}\n';
  const load = (extra: string) => parseConfig(base + extra, '/etc/partita/node.yaml', { env: {} });
  t.deepEqual(load('persister: ../lib/p.mjs').persister, { kind: 'module', path: '/etc/lib/p.mjs' });
  t.deepEqual(load('persister: my-persister.js').persister, { kind: 'module', path: '/etc/partita/my-persister.js' });
  t.deepEqual(load('persister: /opt/p.js').persister, { kind: 'module', path: '/opt/p.js' });
  t.is(load('jobs: file:///opt/jobs.js').jobs, '/opt/jobs.js');
  t.is(load('dataDir: data').dataDir, '/etc/partita/data');
  const err = configError(t, () => load('persister: redis'));
  t.regex(err!.message, /node\.yaml:2: persister: expected "file", "postgres" or a module path .*got "redis"$/m);
});

test('"__proto__" cannot be a partition or queue name (it would not survive as a plain object key)', (t) => {
  const err = configError(t, () =>
    parseConfig('partitions:\n  p:\n    queues:\n      __proto__: { concurrency: 1 }\n', 'x.yaml', { env: {} }),
  );
  t.deepEqual(err?.problems, [
    { file: 'x.yaml', line: 4, path: 'partitions.p.queues.__proto__', message: 'queue name "__proto__" is reserved; choose another name' },
  ]);
  const programmatic = configError(t, () =>
    validateConfig(JSON.parse('{"partitions": {"__proto__": {"queues": {"q": {"concurrency": 2}}}}}')),
  );
  t.is(programmatic?.problems[0]?.path, 'partitions.__proto__');
});

test('a date where a string is wanted says to quote it', (t) => {
  const err = configError(t, () =>
    parseConfig('cluster: 2024-01-01\npartitions: {p: {queues: {q: {concurrency: 1}}}}\n', 'x.yaml', { env: {} }),
  );
  t.regex(err!.problems[0]!.message, /got a date \(2024-01-01\); put it in quotes$/);
  t.is(err!.problems[0]!.line, 1);
});

test('a queue rate limit is kept as given, and a bad one given to startNode is named by its key path', (t) => {
  const rateLimit = { limit: 100, periodMs: 1000, key: 'customer.id' };
  const config = validateConfig({ partitions: { p: { queues: { q: { concurrency: 2, rateLimit } } } } });
  t.deepEqual(config.partitions.p!.queues.q!.rateLimit, rateLimit);
  t.is(validateConfig({ partitions: { p: { queues: { q: { concurrency: 2 } } } } }).partitions.p!.queues.q!.rateLimit, undefined);
  const err = t.throws(
    () => validateConfig({ partitions: { p: { queues: { q: { concurrency: 2, rateLimit: { limit: 1.5, periodMs: 1000, key: '' } } } } } }),
    {
      instanceOf: ConfigError,
    },
  );
  t.deepEqual(
    (err as ConfigError).problems.map((p) => p.path),
    ['partitions.p.queues.q.rateLimit.limit', 'partitions.p.queues.q.rateLimit.key'],
  );
});
