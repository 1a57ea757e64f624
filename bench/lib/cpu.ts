import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SEC = 100;

export interface CpuSample {
  /** This bench process: the systems' workers run in it. */
  bench: number;
  /** Every process on this machine named postgres or nats-server (0 when /proc is not there). */
  postgres: number;
  nats: number;
}

function procCpuMs(): { postgres: number; nats: number } {
  const out = { postgres: 0, nats: 0 };
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
    out[key] += ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
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
  return { bench: per(before.bench, after.bench), postgres: per(before.postgres, after.postgres), nats: per(before.nats, after.nats) };
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
