/**
 * The NATS server Partita's node and separate client use: `--nats <url>`, none with `--nats off`,
 * and with `--nats auto` (the default) PARTITA_BENCH_NATS_URL, else the test helper's discovery
 * (PARTITA_TEST_NATS_URL, nats://127.0.0.1:4222, else the shared nats-server it spawns), else none.
 */
export async function resolveNatsUrl(flag: string, log: (msg: string) => void): Promise<string | undefined> {
  if (flag === 'off') return undefined;
  if (flag !== 'auto') return flag;
  const fromEnv = process.env.PARTITA_BENCH_NATS_URL?.trim();
  if (fromEnv) return fromEnv === 'off' ? undefined : fromEnv;
  try {
    const helpers = await import('../../test/helpers/index.js');
    return await helpers.natsUrl();
  } catch (err) {
    log(
      `test helper could not find NATS (${(err as Error).message.split('\n')[0]}); Partita runs without NATS (its separate client is found by polling)`,
    );
    return undefined;
  }
}
