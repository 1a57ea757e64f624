import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SEC = 100;

export interface CpuSample {
  /** This bench process: the systems' workers run in it. */
  bench: number;
  /** Every process on this machine named postgres or nats-server (0 when /proc is not there). */
  postgres: number;
  nats: number;
  /**
   * The Postgres backends serving this process's connections only: on a machine shared with other
   * work, `postgres` counts that work's backends too. Backends gone before the second sample are
   * missing; ones opened between the samples count whole.
   */
  postgresOwn: number;
}

/** Local TCP ports of this process's sockets (from /proc/self/fd and /proc/net/tcp{,6}). */
function ownPorts(): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed since the listing
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** A backend's client port, from its process title ("postgres: … user db 127.0.0.1(54321) state"). */
function backendPort(pid: string): number | undefined {
  try {
    const m = /\((\d+)\)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function procCpuMs(): { postgres: number; nats: number; postgresOwn: number } {
  const out = { postgres: 0, nats: 0, postgresOwn: 0 };
  const mine = ownPorts();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
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
    const key = comm === 'postgres' ? 'postgres' : comm === 'nats-server' ? 'nats' : undefined;
    if (!key) continue;
    // Fields after "(comm) ": state is the 3rd field; utime and stime are the 14th and 15th.
    const fields = stat.slice(close + 2).split(' ');
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
    out[key] += ms;
    if (key === 'postgres' && mine.size > 0) {
      const port = backendPort(pid);
      if (port !== undefined && mine.has(port)) out.postgresOwn += ms;
    }
  }
  return out;
}

/** CPU time used so far, in ms, by the bench process and by the local Postgres and NATS servers. */
export function cpuSample(): CpuSample {
  const u = process.cpuUsage();
  return { bench: (u.user + u.system) / 1000, ...procCpuMs() };
}

/**
 * CPU ms per 1,000 jobs spent between two samples, per side: where a system's cost goes. Postgres
 * processes that exited between the samples are missing from it (pools keep theirs open). Servers
 * the bench does not run on this machine read 0.
 */
export function cpuPerThousand(before: CpuSample, after: CpuSample, jobs: number): CpuSample {
  const per = (a: number, b: number) => Math.round(((b - a) * 1000 * 100) / jobs) / 100;
  return {
    bench: per(before.bench, after.bench),
    postgres: per(before.postgres, after.postgres),
    nats: per(before.nats, after.nats),
    postgresOwn: per(before.postgresOwn, after.postgresOwn),
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
