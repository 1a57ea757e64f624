/** The config's `nats:` section becomes bus options: credentials files are read, TLS passes through. */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@partita/core';
import { natsBusOptions } from '../src/bus-options.js';

test('servers, user/pass, token and TLS pass through; nkey seed and creds are read from their files', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'partita-nats-opts-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const seed = path.join(dir, 'user.nk');
  const creds = path.join(dir, 'user.creds');
  await fs.writeFile(seed, 'SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n');
  await fs.writeFile(creds, '-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n');

  t.deepEqual(await natsBusOptions({ servers: ['nats://a:4222', 'nats://b:4222'], user: 'u', pass: 'p' }), {
    servers: ['nats://a:4222', 'nats://b:4222'],
    user: 'u',
    pass: 'p',
  });
  t.deepEqual(await natsBusOptions({ servers: ['nats://a:4222'], token: 's3cret' }), { servers: ['nats://a:4222'], token: 's3cret' });
  const withSeed = await natsBusOptions({ servers: ['nats://a:4222'], nkeySeedFile: seed });
  t.is(withSeed.nkey, 'SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n');
  const withCreds = await natsBusOptions({ servers: ['nats://a:4222'], credsFile: creds });
  t.regex(String(withCreds.creds), /BEGIN NATS USER JWT/);
  const tls = await natsBusOptions({
    servers: ['tls://a:4222'],
    tls: { rejectUnauthorized: false, caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
  });
  t.deepEqual(tls.tls, { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', rejectUnauthorized: false } as never);
});

test('a credentials file that cannot be read is a ConfigError naming the setting', async (t) => {
  const err = await t.throwsAsync(natsBusOptions({ servers: ['nats://a:4222'], credsFile: '/nonexistent/user.creds' }), {
    instanceOf: ConfigError,
  });
  t.regex(err!.message, /nats\.credsFile/);
  t.regex(err!.message, /nonexistent/);
});
