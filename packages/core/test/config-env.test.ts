import test from 'ava';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/errors.js';
import { ENV_OVERRIDES, loadConfig, parseConfig } from '../src/config/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/config/', import.meta.url));
const FILE = '/etc/partita/node.yaml';
const PARTITIONS = 'partitions:\n  p:\n    queues:\n      q: { concurrency: 1 }\n';

const parse = (text: string, env: NodeJS.ProcessEnv) => parseConfig(text + PARTITIONS, FILE, { env });
function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('PARTITA_POSTGRES_URL replaces the whole endpoint of the file; PARTITA_POSTGRES_PASSWORD goes into the URL', (t) => {
  const text = 'postgres:\n  host: file-db\n  user: u\n  password: file-pw\n  schema: s1\n';
  const config = parse(text, { PARTITA_POSTGRES_URL: 'postgres://env-user@env-db:5433/envdb' });
  t.deepEqual(config.postgres, { url: 'postgres://env-user@env-db:5433/envdb', poolSize: 10, schema: 's1' });
  const withPassword = parse(text, { PARTITA_POSTGRES_URL: 'postgres://env-user@env-db/envdb', PARTITA_POSTGRES_PASSWORD: 'p@ss' });
  t.is(withPassword.postgres.url, 'postgres://env-user:p%40ss@env-db/envdb');
  // Password alone, over the file's parts and over a URL shorthand.
  t.is(parse(text, { PARTITA_POSTGRES_PASSWORD: 'x' }).postgres.url, 'postgres://u:x@file-db:5432');
  t.is(parse('postgres: postgres://a:old@h/d\n', { PARTITA_POSTGRES_PASSWORD: 'new' }).postgres.url, 'postgres://a:new@h/d');
  // Turning on an external Postgres from the environment alone.
  t.is(parse('', { PARTITA_POSTGRES_URL: 'postgres://h/d' }).postgres.url, 'postgres://h/d');
  // Embedded stays embedded when only a password is given.
  t.is(parse('', { PARTITA_POSTGRES_PASSWORD: 'x' }).postgres.url, undefined);
});

test('PARTITA_NATS_URL (comma-separated) turns NATS on, even over nats: false; credentials apply only when NATS is on', (t) => {
  t.deepEqual(parse('nats: false\n', { PARTITA_NATS_URL: 'nats://a:4222, nats://b:4222' }).nats, {
    servers: ['nats://a:4222', 'nats://b:4222'],
  });
  t.is(parse('', { PARTITA_NATS_USER: 'u', PARTITA_NATS_PASS: 'p' }).nats, undefined, 'credentials alone do not turn NATS on');
  t.deepEqual(parse('nats: nats://file:4222\n', { PARTITA_NATS_USER: 'u', PARTITA_NATS_PASS: 'p' }).nats, {
    servers: ['nats://file:4222'],
    user: 'u',
    pass: 'p',
  });
  t.deepEqual(parse('nats:\n  servers: [nats://file:4222]\n', { PARTITA_NATS_URL: 'nats://env:4222', PARTITA_NATS_TOKEN: 't0k' }).nats, {
    servers: ['nats://env:4222'],
    token: 't0k',
  });
});

test('PARTITA_CLUSTER, PARTITA_DATA_DIR (relative to the working directory), PARTITA_HTTP_PORT, PARTITA_LOG_LEVEL', (t) => {
  const config = parse('cluster: file\ndataDir: ./file-data\nlog: { level: info }\n', {
    PARTITA_CLUSTER: 'env-cluster',
    PARTITA_DATA_DIR: 'env-data',
    PARTITA_HTTP_PORT: '9100',
    PARTITA_LOG_LEVEL: 'silent',
  });
  t.is(config.cluster, 'env-cluster');
  t.is(config.dataDir, resolve(process.cwd(), 'env-data'));
  t.deepEqual(config.http, { port: 9100, host: '127.0.0.1' });
  t.is(config.log.level, 'silent');
});

test('empty PARTITA_* variables are ignored', (t) => {
  const config = parse('cluster: file\n', { PARTITA_CLUSTER: '', PARTITA_NATS_URL: '' });
  t.is(config.cluster, 'file');
  t.is(config.nats, undefined);
});

test('a bad value from the environment is reported against its variable, without a line', (t) => {
  const err = problemsOf(() =>
    parse('http:\n  port: 9464\n', { PARTITA_HTTP_PORT: 'eighty', PARTITA_NATS_URL: 'nats://ok:4222,http://bad', PARTITA_CLUSTER: 'a.b' }),
  );
  t.deepEqual(
    err.problems.map((p) => [p.line, p.path]),
    [
      [undefined, 'cluster'],
      [undefined, 'nats.servers[1]'],
      [undefined, 'http.port'],
    ],
  );
  t.regex(err.problems[2]!.message, /got "eighty" \(the value comes from the environment variable PARTITA_HTTP_PORT\)$/);
  t.regex(err.problems[1]!.message, /\(the value comes from the environment variable PARTITA_NATS_URL\)$/);
  t.true(err.message.includes(`${FILE}: http.port: expected an integer from 0 to 65535`));
});

test('${VAR} and ${VAR:-default} inside string values; $${ is a literal; numbers and booleans convert', (t) => {
  const text = [
    'cluster: ${CLUSTER}-${REGION:-eu}',
    'postgres:',
    '  url: postgres://app:${PGPASS}@${PGHOST:-localhost}/app',
    '  port_is_not_here: no',
  ].join('\n');
  const err = problemsOf(() => parse(text + '\n', { CLUSTER: 'c' }));
  t.deepEqual(
    err.problems.map((p) => [p.line, p.path]),
    [
      [3, 'postgres.url'],
      [4, 'postgres.port_is_not_here'],
    ],
  );
  const config = parse(
    [
      'cluster: ${CLUSTER}-${REGION:-eu}',
      'postgres: { url: "postgres://app:${PGPASS}@${PGHOST:-localhost}/app", ssl: { rejectUnauthorized: "${VERIFY}" } }',
      'http: { port: "${PORT}", host: "$${not-a-var}" }',
      'engine: { leaseMs: "${LEASE:-20000}" }',
      '',
    ].join('\n'),
    { CLUSTER: 'c', PGPASS: 's3cret', REGION: '', PORT: '8080', VERIFY: 'false' },
  );
  t.is(config.cluster, 'c-eu', 'an empty variable takes the default, as in the shell');
  t.is(config.postgres.url, 'postgres://app:s3cret@localhost/app');
  t.deepEqual(config.postgres.ssl, { rejectUnauthorized: false });
  t.deepEqual(config.http, { port: 8080, host: '${not-a-var}' });
  t.is(config.engine.leaseMs, 20_000);
});

test('a bad ${...} reference, and a substituted value of the wrong type, are reported at the key line', (t) => {
  const err = problemsOf(() => parse('cluster: ${1BAD}\nhttp:\n  port: ${PORT}\njobs: ${UNTERMINATED\n', { PORT: 'abc' }));
  t.deepEqual(
    err.problems.map((p) => [p.line, p.path]),
    [
      [1, 'cluster'],
      [3, 'http.port'],
      [4, 'jobs'],
    ],
  );
  t.regex(err.problems[0]!.message, /^bad reference "\$\{1BAD\}"; write \$\{NAME\} or \$\{NAME:-default\}/);
  t.regex(err.problems[1]!.message, /^expected an integer from 0 to 65535 .*got "abc"$/);
  t.regex(err.problems[2]!.message, /^unterminated "\$\{"/);
});

test('secrets from the environment are not echoed, and URL passwords are masked', (t) => {
  const err = problemsOf(() => parse('', { PARTITA_POSTGRES_URL: 'mysql://root:hunter2@db/x' }));
  t.false(err.message.includes('hunter2'));
  t.regex(err.message, /got "mysql:\/\/root:\*\*\*@db\/x"/);
});

test('loadConfig reads process.env by default', async (t) => {
  const saved = process.env.PARTITA_CLUSTER;
  process.env.PARTITA_CLUSTER = 'from-env';
  try {
    t.is((await loadConfig(join(fixtures, 'good', 'minimal.yaml'))).cluster, 'from-env');
  } finally {
    if (saved === undefined) delete process.env.PARTITA_CLUSTER;
    else process.env.PARTITA_CLUSTER = saved;
  }
});

test('every documented override variable is applied', (t) => {
  const names = ENV_OVERRIDES.map((o) => o.variable).sort();
  t.deepEqual(names, [
    'PARTITA_CLUSTER',
    'PARTITA_DATA_DIR',
    'PARTITA_HTTP_PORT',
    'PARTITA_LOG_LEVEL',
    'PARTITA_NATS_PASS',
    'PARTITA_NATS_TOKEN',
    'PARTITA_NATS_URL',
    'PARTITA_NATS_USER',
    'PARTITA_POSTGRES_PASSWORD',
    'PARTITA_POSTGRES_URL',
  ]);
});
