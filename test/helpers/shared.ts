/**
 * The shared fallback servers: one embedded PostgreSQL and one nats-server for all test processes of
 * this OS user, started by whichever process needs them first and reused by the others (ava runs test
 * files in several worker processes at once).
 *
 *   <servicesDir>/lock        held while checking/starting servers (pid inside; stale when that pid is dead)
 *   <servicesDir>/state.json  { postgres?: { url, port, pid, dataDir }, nats?: { url, port, pid } }
 *   <servicesDir>/pg          embedded PostgreSQL data dir (+ postgres.log)
 *   <servicesDir>/nats        JetStream store and nats.log
 *
 * The servers are detached and stay up after the run, so later runs start in milliseconds; stop them
 * with `npx tsx test/helpers/stop-services.ts`. state.json is never trusted: every entry is probed with
 * a real handshake first, and a dead or hung server is replaced (an orphaned postmaster that still
 * serves the data dir is adopted by startEmbeddedPostgres).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../packages/postgres-embedded/src/embedded.js';
import { spawnNatsServer } from './nats-server.js';
import { cmdline, killIfIs, notice, pidAlive, probeNats, probePostgres, servicesDir, sleep, waitGone } from './util.js';

/**
 * Settings for throwaway test databases: no fsync (survives a process crash, not an OS crash), room for
 * many parallel pools. synchronous_commit stays on: with it off a killed postmaster loses commits that
 * were already acknowledged, which would make crash tests lie.
 */
export const TEST_PG_SETTINGS = {
  fsync: 'off',
  full_page_writes: 'off',
  max_connections: 500,
} as const;

interface State {
  postgres?: { url: string; port: number; pid: number; dataDir: string };
  nats?: { url: string; port: number; pid: number };
}

async function ensureDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  // Searchable by others: as root, PostgreSQL runs as another OS user and must reach <dir>/pg.
  await fs.chmod(dir, 0o755).catch(() => undefined);
  return dir;
}

async function readState(dir: string): Promise<State> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'state.json'), 'utf8')) as State;
  } catch {
    return {};
  }
}

async function writeState(dir: string, state: State): Promise<void> {
  const tmp = path.join(dir, `state.json.${process.pid}.tmp`);
  await fs.writeFile(tmp, JSON.stringify(state, null, 2));
  await fs.rename(tmp, path.join(dir, 'state.json'));
}

/** A cross-process lock: a file created with O_EXCL holding `pid:nonce`; broken when its pid is dead. */
export async function withLock<T>(fn: () => Promise<T>, dir = servicesDir()): Promise<T> {
  await ensureDir(dir);
  const lockPath = path.join(dir, 'lock');
  const token = `${process.pid}:${randomBytes(6).toString('hex')}`;
  const started = Date.now();
  for (;;) {
    try {
      await fs.writeFile(lockPath, token, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let content: string;
    let mtime: number;
    try {
      content = await fs.readFile(lockPath, 'utf8');
      mtime = (await fs.stat(lockPath)).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    const holder = Number(content.split(':')[0]);
    const stale = holder > 0 ? !pidAlive(holder) : Date.now() - mtime > 10_000;
    if (stale) {
      await breakStaleLock(lockPath, content, token);
      continue;
    }
    if (Date.now() - started > 180_000) {
      throw new Error(
        `the test services lock ${lockPath} has been held by pid ${holder} for 3 minutes; if that process is stuck, kill it or remove the file`,
      );
    }
    await sleep(50 + Math.random() * 50);
  }
  try {
    return await fn();
  } finally {
    if ((await fs.readFile(lockPath, 'utf8').catch(() => '')) === token) await fs.unlink(lockPath).catch(() => undefined);
  }
}

/**
 * Removes the lock file if it still holds `stale`, under a lock of its own (`lock.break`): a breaker
 * that moved the lock aside and put it back when it was no longer the stale one left a moment with no
 * lock, in which a third process took a fresh one while the lock it had moved aside still counted as
 * held (two holders: two nats-servers started side by side). Under `lock.break` the lock can change only
 * by a holder releasing its own or a process creating one where none is, so a read then unlink is safe.
 */
async function breakStaleLock(lockPath: string, stale: string, token: string): Promise<void> {
  const breakPath = `${lockPath}.break`;
  try {
    await fs.writeFile(breakPath, token, { flag: 'wx' });
  } catch {
    // Another process is breaking it; a break lock left by a process that died while breaking goes after 10 s.
    const age = await fs
      .stat(breakPath)
      .then((st) => Date.now() - st.mtimeMs)
      .catch(() => 0);
    if (age > 10_000) await fs.unlink(breakPath).catch(() => undefined);
    await sleep(20);
    return;
  }
  try {
    if ((await fs.readFile(lockPath, 'utf8').catch(() => undefined)) === stale) await fs.unlink(lockPath).catch(() => undefined);
  } finally {
    await fs.unlink(breakPath).catch(() => undefined);
  }
}

export interface SharedService {
  url: string;
  pid: number;
  /** true when this process started it (false: reused a running one). */
  started: boolean;
}

export async function sharedPostgres(dir = servicesDir()): Promise<SharedService> {
  await ensureDir(dir);
  const quick = (await readState(dir)).postgres;
  if (quick && (await probePostgres(quick.url, 3000)) === undefined) return { url: quick.url, pid: quick.pid, started: false };
  return withLock(async () => {
    const state = await readState(dir);
    if (state.postgres && (await probePostgres(state.postgres.url, 3000)) === undefined) {
      return { url: state.postgres.url, pid: state.postgres.pid, started: false };
    }
    const dataDir = path.join(dir, 'pg');
    const start = () => startEmbeddedPostgres({ dataDir, detached: true, settings: TEST_PG_SETTINGS, startTimeoutMs: 60_000 });
    let pg;
    try {
      pg = await start();
    } catch (err) {
      // Test data is disposable: a data dir left broken by a crash (half-run initdb, …) is recreated once.
      const entries = await fs.readdir(dataDir).catch(() => [] as string[]);
      if (entries.length === 0) throw err;
      notice(`embedded PostgreSQL in ${dataDir} did not start (${String((err as Error).message).split('\n')[0]}); recreating its data dir`);
      await fs.rm(dataDir, { recursive: true, force: true });
      pg = await start();
    }
    state.postgres = { url: pg.url, port: pg.port, pid: pg.pid, dataDir: pg.dataDir };
    await writeState(dir, state);
    notice(
      `postgres: ${pg.adopted ? 'adopted the running' : 'started'} embedded PostgreSQL (pid ${pg.pid}) at ${pg.url}, data ${pg.dataDir}; ` +
        'it stays up for later runs (stop: npx tsx test/helpers/stop-services.ts)',
    );
    return { url: pg.url, pid: pg.pid, started: !pg.adopted };
  }, dir);
}

export async function sharedNats(dir = servicesDir()): Promise<SharedService> {
  await ensureDir(dir);
  const quick = (await readState(dir)).nats;
  if (quick && (await probeNats(quick.url)) === undefined) return { url: quick.url, pid: quick.pid, started: false };
  return withLock(async () => {
    const state = await readState(dir);
    if (state.nats && (await probeNats(state.nats.url)) === undefined) return { url: state.nats.url, pid: state.nats.pid, started: false };
    // A recorded server that is running but slow to answer (a loaded machine) gets longer before it
    // counts as hung: replacing it would leave whoever it was handed to on a killed server.
    const running = state.nats && pidAlive(state.nats.pid) && cmdline(state.nats.pid).includes('nats-server');
    if (running && (await probeNats(state.nats!.url, 15_000)) === undefined)
      return { url: state.nats!.url, pid: state.nats!.pid, started: false };
    // A recorded server that no longer answers is hung: replace it.
    if (state.nats && killIfIs(state.nats.pid, 'nats-server', 'SIGKILL')) await waitGone(state.nats.pid, 5000);
    const natsDir = path.join(dir, 'nats');
    await fs.mkdir(natsDir, { recursive: true });
    const s = await spawnNatsServer({ storeDir: path.join(natsDir, 'js'), logFile: path.join(natsDir, 'nats.log'), detached: true });
    state.nats = { url: s.url, port: s.port, pid: s.child.pid! };
    await writeState(dir, state);
    notice(
      `nats: started nats-server (pid ${s.child.pid}) at ${s.url}, store ${natsDir}; it stays up for later runs (stop: npx tsx test/helpers/stop-services.ts)`,
    );
    return { url: s.url, pid: s.child.pid!, started: true };
  }, dir);
}

/** Stops the shared fallback servers and removes their data. Returns what it did, one line each. */
export async function stopSharedServices(dir = servicesDir()): Promise<string[]> {
  const done: string[] = [];
  await withLock(async () => {
    const state = await readState(dir);
    if (state.nats && killIfIs(state.nats.pid, 'nats-server', 'SIGTERM')) {
      if (!(await waitGone(state.nats.pid, 5000))) killIfIs(state.nats.pid, 'nats-server', 'SIGKILL');
      done.push(`stopped nats-server pid ${state.nats.pid}`);
    }
    // The postmaster per its own pid file (state.json may be stale or missing).
    const pgDir = path.join(dir, 'pg');
    const pidLine = (await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0];
    const pgPid = Number(pidLine) || state.postgres?.pid;
    if (pgPid && pidAlive(pgPid) && cmdline(pgPid).includes('postgres')) {
      process.kill(pgPid, 'SIGINT');
      if (!(await waitGone(pgPid, 20_000))) killIfIs(pgPid, 'postgres', 'SIGKILL');
      done.push(`stopped embedded PostgreSQL pid ${pgPid}`);
    }
    await fs.rm(pgDir, { recursive: true, force: true });
    await fs.rm(path.join(dir, 'nats'), { recursive: true, force: true });
    await fs.rm(path.join(dir, 'state.json'), { force: true });
    done.push(`removed ${pgDir}, ${path.join(dir, 'nats')} and state.json`);
  }, dir);
  return done;
}
