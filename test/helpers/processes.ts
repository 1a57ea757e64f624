/**
 * Real processes a test owns: its own nats-server, its own PostgreSQL, Node children. All of them are
 * killed when the test process exits (normally, or on SIGINT/SIGTERM/SIGHUP); servers left behind by a
 * test process that was SIGKILLed are swept by the next process that starts one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../packages/postgres-embedded/src/embedded.js';
import { spawnNatsServer } from './nats-server.js';
import { TEST_PG_SETTINGS } from './shared.js';
import { killIfIs, pidAlive, servicesDir, sleep, waitGone } from './util.js';

// ---------------------------------------------------------------------------------------------
// Cleanup on exit

const cleanups = new Set<() => void>();
let hooked = false;

function onExit(fn: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.once('exit', runCleanups);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runCleanups();
        // Die of the signal as we would have without this hook, unless someone else handles it.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    }
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
  cleanups.clear();
}

// ---------------------------------------------------------------------------------------------
// Dedicated server dirs: <servicesDir>/dedicated/<kind>-<pid>-<n>/ with owner.json { owner, pids }

let swept = false;
let counter = 0;

function dedicatedDir(kind: string): { dir: string; record(pids: number[]): void } {
  const root = path.join(servicesDir(), 'dedicated');
  mkdirSync(root, { recursive: true });
  chmodSync(servicesDir(), 0o755);
  chmodSync(root, 0o755);
  if (!swept) {
    swept = true;
    sweep(root);
  }
  const dir = path.join(root, `${kind}-${process.pid}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as another OS user and must reach its data dir below
  const ownerFile = path.join(dir, 'owner.json');
  const record = (pids: number[]) => writeFileSync(ownerFile, JSON.stringify({ owner: process.pid, kind, pids }));
  record([]);
  return { dir, record };
}

/** Removes dedicated dirs whose owning test process is gone, killing their servers first. */
function sweep(root: string): void {
  for (const name of readdirSync(root)) {
    const dir = path.join(root, name);
    let owner: { owner: number; kind: string; pids: number[] } | undefined;
    try {
      owner = JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'));
    } catch {
      owner = undefined;
    }
    if (owner && pidAlive(owner.owner)) continue;
    for (const pid of owner?.pids ?? []) killIfIs(pid, owner?.kind === 'pg' ? 'postgres' : 'nats-server', 'SIGKILL');
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      /* next time */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// startNats

export interface TestNats {
  url: string;
  port: number;
  /** Pid of the current server process (changes on restart; undefined while stopped). */
  readonly pid: number | undefined;
  /** JetStream store dir (kept across restart). */
  storeDir: string;
  /** Stops the server for real (default SIGTERM; pass 'SIGKILL' for a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port with the same store (after stop(); stops it first if running). */
  restart(): Promise<void>;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

/** A nats-server of the test's own (JetStream on, own store dir, free port) that it can kill and restart. */
export async function startNats(opts: { jetstream?: boolean } = {}): Promise<TestNats> {
  const { dir, record } = dedicatedDir('nats');
  const storeDir = path.join(dir, 'js');
  const logFile = path.join(dir, 'nats.log');
  let child: ChildProcess | undefined;
  let unhook: (() => void) | undefined;
  let port = 0;

  const launch = async () => {
    const s = await spawnNatsServer({ port, storeDir, logFile, jetstream: opts.jetstream });
    child = s.child;
    port = s.port;
    record([s.child.pid!]);
    const c = s.child;
    unhook = onExit(() => c.kill('SIGKILL'));
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child;
    if (!c) return;
    child = undefined;
    unhook?.();
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    record([]);
  };

  await launch();
  const cleanupDir = onExit(() => rmSync(dir, { recursive: true, force: true }));
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return child?.pid;
    },
    storeDir,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async destroy() {
      await stop('SIGKILL');
      cleanupDir();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// startPostgres

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (the port stays the same across restarts) */
  url: string;
  port: number;
  dataDir: string;
  /** Pid of the postmaster (undefined while stopped). */
  readonly pid: number | undefined;
  /** Clean fast shutdown; waits until it is gone. */
  stop(): Promise<void>;
  /**
   * Crash: SIGKILL to the postmaster (backends die when they notice); the next start runs crash
   * recovery. `everything`: its backends and helpers get SIGKILL at the same moment, as in a crash of
   * the machine or the OOM killer, so none goes on to commit what its connection had already sent or
   * to write the WAL it holds in shared memory (what an asynchronous commit leaves there is lost).
   */
  kill(opts?: { everything?: boolean }): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** stop() + start(). */
  restart(): Promise<void>;
  /** Stops it and removes the data dir. */
  destroy(): Promise<void>;
}

/** A PostgreSQL of the test's own (embedded, own data dir, free port) that it can stop, kill and restart. */
export async function startPostgres(opts: { settings?: Record<string, string | number | boolean> } = {}): Promise<TestPostgres> {
  const { dir, record } = dedicatedDir('pg');
  const dataDir = path.join(dir, 'data');
  const settings = { ...TEST_PG_SETTINGS, max_connections: 200, ...opts.settings };
  let server: EmbeddedPostgres | undefined;
  let unhook: (() => void) | undefined;
  let port = 0;

  const start = async () => {
    if (server) return;
    // Not supervised: the tests kill and restart it themselves, to see what an outage does.
    server = await startEmbeddedPostgres({ dataDir, port, settings, startTimeoutMs: 60_000, supervise: false });
    port = server.port;
    record([server.pid]);
    const pid = server.pid;
    unhook = onExit(() => killIfIs(pid, 'postgres', 'SIGKILL'));
  };
  const stop = async () => {
    const s = server;
    if (!s) return;
    server = undefined;
    unhook?.();
    await s.stop();
    record([]);
  };

  await start();
  const cleanupDir = onExit(() => rmSync(dir, { recursive: true, force: true, maxRetries: 2 }));
  return {
    get url() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    get port() {
      return port;
    },
    get pid() {
      return server?.pid;
    },
    dataDir,
    stop,
    async kill(opts: { everything?: boolean } = {}) {
      const s = server;
      if (!s) return;
      server = undefined;
      unhook?.();
      // Read synchronously: a test's node in this process sends nothing more between the call and the kill.
      const children = opts.everything ? postgresChildrenOf(s.pid) : [];
      process.kill(s.pid, 'SIGKILL');
      for (const pid of children) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
      await waitGone(s.pid, 10_000);
      // Wait for the orphaned backends too, so a start right after does not trip over their shared memory.
      const end = Date.now() + 10_000;
      while (Date.now() < end && postgresChildrenOf(s.pid).length > 0) await sleep(50);
      record([]);
    },
    start,
    async restart() {
      await stop();
      await start();
    },
    async destroy() {
      await stop();
      cleanupDir();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Processes whose parent was `ppid` (Linux /proc); empty elsewhere. Read synchronously: kill()
 * takes them in the same tick as it kills the postmaster, so a node in this process sends nothing
 * in between (a few ms of /proc reads, also in kill()'s wait for the orphans).
 */
function postgresChildrenOf(ppid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// spawnNode

export interface SpawnedNode {
  pid: number;
  /** Sends a signal (default SIGTERM). Returns false when the process had already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote to stdout and stderr so far (the last 1 MB), for failure diagnostics. */
  output(): string;
  /** Resolves with the match once the output matches `pattern`; rejects on exit or timeout (with the output). */
  waitForOutput(pattern: RegExp | string, opts?: { timeoutMs?: number }): Promise<RegExpMatchArray | string>;
}

const OUTPUT_CAP = 1024 * 1024;
let tsxLoader: string | undefined;

/**
 * Starts a real Node child process: a `.ts`/`.mts` script runs through tsx (`node --import tsx`),
 * anything else as is. Its env is this process's env plus `env`. Output is captured, not printed.
 * The child is SIGKILLed if the test process exits while it runs.
 */
export function spawnNode(
  scriptPath: string,
  opts: { env?: Record<string, string | undefined>; args?: string[]; cwd?: string; execArgv?: string[] } = {},
): SpawnedNode {
  const script = path.resolve(scriptPath);
  const execArgv = [...(opts.execArgv ?? [])];
  if (/\.(c|m)?ts$/.test(script)) {
    tsxLoader ??= pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    execArgv.unshift('--import', tsxLoader);
  }
  const child = spawn(process.execPath, [...execArgv, script, ...(opts.args ?? [])], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > OUTPUT_CAP * 2) out = out.slice(-OUTPUT_CAP);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const unhook = onExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      append(Buffer.from(`\n[spawnNode] ${err.message}\n`));
      done = true;
      unhook();
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => {
      done = true;
      unhook();
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  const output = () => (out.length > OUTPUT_CAP ? out.slice(-OUTPUT_CAP) : out);
  return {
    pid: child.pid ?? -1,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (done || child.exitCode !== null || child.signalCode !== null) return false;
      return child.kill(signal);
    },
    exited,
    output,
    waitForOutput(pattern, { timeoutMs = 30_000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const o = output();
          const m = typeof pattern === 'string' ? (o.includes(pattern) ? pattern : null) : o.match(pattern);
          if (m) return finish(() => resolve(m));
          if (done) return finish(() => reject(new Error(`${path.basename(script)} exited before printing ${pattern}; output:\n${o}`)));
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`${path.basename(script)} did not print ${pattern} within ${timeoutMs} ms; output:\n${output()}`)),
            ),
          timeoutMs,
        );
        const finish = (f: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
  };
}
