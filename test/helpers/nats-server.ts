import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { freePort, isRoot, notice, probeNats, sleep } from './util.js';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/local/sbin', '/usr/bin', '/snap/bin'];

function findOnPath(): string | undefined {
  const explicit = process.env.PARTITA_NATS_SERVER;
  if (explicit) {
    try {
      accessSync(explicit, constants.X_OK);
    } catch {
      throw new Error(`no NATS for tests: PARTITA_NATS_SERVER=${explicit} is not an executable file; point it at nats-server or unset it`);
    }
    return explicit;
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const p = path.join(dir, 'nats-server');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

let found: string | undefined;

/**
 * The nats-server binary: `$PARTITA_NATS_SERVER`, else PATH (plus the usual sbin dirs). When missing
 * and running as root with apt-get, installs the `nats-server` package (one stderr line says so).
 * Throws one line naming what to install otherwise. Call it under the shared lock when installing
 * may happen, so parallel workers do not run apt-get together.
 */
export function natsServerBinary(): string {
  found ??= findOnPath();
  if (found) return found;
  const apt = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (isRoot() && apt) {
    notice('nats-server not found on PATH: running apt-get install -y nats-server');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync(apt, ['install', '-y', '-q', 'nats-server'], { env, encoding: 'utf8' });
    if (r.status !== 0) {
      spawnSync(apt, ['update', '-q'], { env, encoding: 'utf8' });
      r = spawnSync(apt, ['install', '-y', '-q', 'nats-server'], { env, encoding: 'utf8' });
    }
    found = findOnPath();
    if (found) return found;
    throw new Error(
      `no NATS for tests: apt-get install nats-server failed (${(r.stderr || r.stdout || '').trim().split('\n').pop()}); install nats-server (https://github.com/nats-io/nats-server/releases) or set PARTITA_TEST_NATS_URL`,
    );
  }
  throw new Error(
    'no NATS for tests: nothing answers at PARTITA_TEST_NATS_URL or 127.0.0.1:4222 and nats-server is not on PATH; install nats-server (apt-get install nats-server, or https://github.com/nats-io/nats-server/releases) or set PARTITA_TEST_NATS_URL',
  );
}

export interface SpawnedNats {
  child: ChildProcess;
  port: number;
  url: string;
}

/**
 * Starts nats-server on 127.0.0.1 with JetStream (store in `storeDir`) and waits until it answers a
 * real handshake. `port` 0 picks a free one (retrying if it was taken meanwhile). With `detached` the
 * server outlives this process (own session, output to `logFile`, unref'd).
 */
export async function spawnNatsServer(opts: {
  port?: number;
  storeDir: string;
  logFile: string;
  detached?: boolean;
  jetstream?: boolean;
  timeoutMs?: number;
}): Promise<SpawnedNats> {
  const bin = natsServerBinary();
  mkdirSync(opts.storeDir, { recursive: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await freePort());
    // A free port may be taken by another test's server before ours binds it; ours then exits, but
    // a probe could reach the other one first. The name tells them apart.
    const name = `partita-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    const args = ['-a', '127.0.0.1', '-p', String(port), '-l', opts.logFile, '--server_name', name];
    if (opts.jetstream !== false) args.push('-js', '-sd', opts.storeDir);
    const logStart = size(opts.logFile);
    const fd = openSync(opts.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: Boolean(opts.detached) });
    } finally {
      closeSync(fd);
    }
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = signal ?? `code ${code}`));
    child.once('error', (err) => (exited = err.message));
    const url = `nats://127.0.0.1:${port}`;
    for (;;) {
      if (exited) break;
      if ((await probeNats(url, 500, name)) === undefined && !exited) {
        if (opts.detached) child.unref();
        return { child, port, url };
      }
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    if (!exited) child.kill('SIGKILL');
    const log = tail(opts.logFile, logStart);
    const portTaken = /address already in use|bind/i.test(log);
    if (exited && portTaken && Date.now() < deadline && attempt < 20) {
      await sleep(100 * Math.min(attempt, 5));
      continue;
    }
    throw new Error(`nats-server (${bin} ${args.join(' ')}) did not start${exited ? ` (exited: ${exited})` : ''}:\n${log}`);
  }
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function tail(file: string, from: number): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8').trimEnd().split('\n').slice(-10).join('\n');
  } catch {
    return '';
  }
}
