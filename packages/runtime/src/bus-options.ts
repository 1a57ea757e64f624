import { readFile } from 'node:fs/promises';
import { ConfigError, type NatsConfig } from '@partita/core';
import type { NatsBusOptions } from '@partita/nats';

/**
 * The config's `nats:` section as bus options: servers, user/pass, token, the NKey seed and JWT
 * credentials (read from their files here), TLS (the NATS client reads the PEM files itself).
 */
export async function natsBusOptions(nats: NatsConfig): Promise<NatsBusOptions> {
  const read = async (file: string, key: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ path: `nats.${key}`, message: `cannot read ${file}: ${(err as Error).message}` }]);
    }
  };
  const tls = nats.tls;
  return {
    servers: nats.servers,
    ...(nats.user !== undefined ? { user: nats.user } : {}),
    ...(nats.pass !== undefined ? { pass: nats.pass } : {}),
    ...(nats.token !== undefined ? { token: nats.token } : {}),
    ...(nats.nkeySeedFile !== undefined ? { nkey: await read(nats.nkeySeedFile, 'nkeySeedFile') } : {}),
    ...(nats.credsFile !== undefined ? { creds: await read(nats.credsFile, 'credsFile') } : {}),
    ...(tls
      ? {
          tls: {
            ...(tls.caFile ? { caFile: tls.caFile } : {}),
            ...(tls.certFile ? { certFile: tls.certFile } : {}),
            ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
            // Passed through to node's tls.connect by the NATS transport.
            ...(tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
          } as NonNullable<NatsBusOptions['tls']>,
        }
      : {}),
  };
}
