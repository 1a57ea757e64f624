import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SEC = 100;

export interface CpuSample {
  /** This bench process: the systems' workers run in it. */
  bench: number;
  /** Every process on this machine named postgres or nats-server (0 when /proc is not there). */
  postgres: number;
  nats: number;
  /**
   * Postgres backends connected to this process only, per pid (their other side is one of this
   * process's TCP sockets): unlike `postgres`, not swollen by other work on a shared server.
   * Background processes (WAL writer, checkpointer) are left out of it.
   */
  ownBackends: Map<number, number>;
}

/** CPU ms per 1,000 jobs between two samples, as reported. */
export interface CpuPerThousand {
  bench: number;
  postgres: number;
  nats: number;
  /** This process's own Postgres backends (see CpuSample.ownBackends). */
  postgresOwn: number;
}

/**
 * CPU ms of a single-threaded process (a Postgres backend) from /proc/<pid>/schedstat, in
 * nanoseconds: /proc/<pid>/stat counts 10 ms ticks, and a 20,000-job drain spreads ~500 ms of
 * Postgres over ten backends, so ticks alone moved the per-1,000-jobs figure by several ms from run
 * to run. Only the main thread's time is there, hence not for nats-server (Go threads).
 */
function schedstatMs(pid: string): number | undefined {
  try {
    const ns = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/** Every process's pid, command name and CPU ms so far (user + system), from /proc/<pid>/stat (schedstat for Postgres). */
function* processes(): Generator<{ pid: string; comm: string; cpuMs: number }> {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone since the listing
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    // Fields after "(comm) ": state is the 3rd field; utime and stime are the 14th and 15th.
    const fields = stat.slice(close + 2).split(' ');
    const cpuMs =
      (comm === 'postgres' ? schedstatMs(pid) : undefined) ?? ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
    yield { pid, comm, cpuMs };
  }
}

function procCpuMs(): { postgres: number; nats: number } {
  const out = { postgres: 0, nats: 0 };
  for (const p of processes()) {
    const key = p.comm === 'postgres' ? 'postgres' : p.comm === 'nats-server' ? 'nats' : undefined;
    if (key) out[key] += p.cpuMs;
  }
  return out;
}

function socketInodes(pid: string): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed since the listing
    }
  }
  return out;
}

/** inode → [local port, remote port] of every TCP socket in this network namespace. */
function tcpSockets(): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (addr: string) => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16);
      out.set(f[9]!, [port(f[1]!), port(f[2]!)]);
    }
  }
  return out;
}

function ownBackendsCpuMs(): Map<number, number> {
  const out = new Map<number, number>();
  const sockets = tcpSockets();
  const mine = new Set<number>();
  for (const inode of socketInodes('self')) {
    const s = sockets.get(inode);
    if (s) mine.add(s[0]);
  }
  for (const p of processes()) {
    if (p.comm !== 'postgres') continue;
    let ours = false;
    for (const inode of socketInodes(p.pid)) {
      const s = sockets.get(inode);
      if (s && mine.has(s[1])) {
        ours = true;
        break;
      }
    }
    if (ours) out.set(Number(p.pid), p.cpuMs);
  }
  return out;
}

/** CPU time used so far, in ms, by the bench process and by the local Postgres and NATS servers. */
/** `at` says which side of a measured span the sample is: the /proc walk's own CPU stays outside it. */
export function cpuSample(at: 'before' | 'after' = 'after'): CpuSample {
  const before = at === 'before' ? { ...procCpuMs(), ownBackends: ownBackendsCpuMs() } : undefined;
  const u = process.cpuUsage();
  return { bench: (u.user + u.system) / 1000, ...(before ?? { ...procCpuMs(), ownBackends: ownBackendsCpuMs() }) };
}

/**
 * CPU ms per 1,000 jobs spent between two samples, per side: where a system's cost goes. Postgres
 * processes that exited between the samples are missing from it (pools keep theirs open). Servers
 * the bench does not run on this machine read 0.
 */
export function cpuPerThousand(before: CpuSample, after: CpuSample, jobs: number): CpuPerThousand {
  const per = (a: number, b: number) => Math.round(((b - a) * 1000 * 100) / jobs) / 100;
  // A backend opened during the drain counts from 0; one closed during it is missing.
  let own = 0;
  for (const [pid, ms] of after.ownBackends) own += ms - (before.ownBackends.get(pid) ?? 0);
  return {
    bench: per(before.bench, after.bench),
    postgres: per(before.postgres, after.postgres),
    nats: per(before.nats, after.nats),
    postgresOwn: per(0, own),
  };
}

/**
 * Starts V8's CPU profiler on this process; the returned function stops it and writes
 * `<dir>/<name>.cpuprofile` (open it in Chrome DevTools or speedscope).
 */
export async function startCpuProfile(dir: string, name: string): Promise<() => Promise<string>> {
  const { Session } = await import('node:inspector/promises');
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    return file;
  };
}

interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapProfileNode[];
}

/** Self bytes per function (name + file:line, relative to `root`) over a sampling heap profile's tree; returns the total. */
export function allocationSites(node: HeapProfileNode, into: Map<string, number>, root = ''): number {
  const f = node.callFrame;
  const file = f.url.replace(/^file:\/\//, '').replace(root ? root + '/' : '', '');
  const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
  into.set(key, (into.get(key) ?? 0) + node.selfSize);
  let total = node.selfSize;
  for (const c of node.children) total += allocationSites(c, into, root);
  return total;
}

/**
 * Starts V8's sampling heap profiler with the objects both collections freed included, so it counts
 * every byte allocated; the returned function stops it and gives the total and the bytes per
 * allocating function.
 */
export async function startHeapProfile(): Promise<() => Promise<{ total: number; sites: Map<string, number> }>> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapProfileNode } };
    session.disconnect();
    // The whole profile (its call trees), for a look at who called an allocating builtin.
    if (process.env.PARTITA_BENCH_HEAP_FILE) writeFileSync(process.env.PARTITA_BENCH_HEAP_FILE, JSON.stringify(profile));
    const sites = new Map<string, number>();
    const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
    return { total: allocationSites(profile.head, sites, root), sites };
  };
}

/** The top `n` allocation sites as lines of bytes per unit. */
export function allocationTable(result: { total: number; sites: Map<string, number> }, units: number, n: number): string {
  return [...result.sites]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${String(Math.round(v / units)).padStart(7)} B ${((v / result.total) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}
