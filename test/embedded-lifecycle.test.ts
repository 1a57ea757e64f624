/**
 * The embedded PostgreSQL's life across real processes (issue 12, bugs 2 and 7): one owner per data
 * dir, other processes adopt and detach, the owner restarts a killed server, a stale postmaster.pid is
 * cleaned up, and a startNode({ handleSignals: true }) program stops its node and database on SIGTERM.
 * Every test has a data dir of its own under the OS temp dir.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { postgresUrl, spawnNode, type SpawnedNode } from './helpers/index.js';
import { CLI, FIXTURES, runCli, sleep, startCliNode, tempDir, until, writeConfig } from './fixtures/cli.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Pids of the postgres processes (postmaster and backends) whose working directory is `pgDir`. */
function postgresProcessesIn(pgDir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/cwd`) === pgDir && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('postgres')) out.push(Number(e));
    } catch {
      /* gone, or not ours to look at */
    }
  }
  return out;
}

async function postmasterPid(pgDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The startNode({ handleSignals: true }) fixture (test/fixtures/signals-node.ts) on a data dir of its own; killed, with its PostgreSQL, when the test ends. */
async function signalsNode(t: import('ava').ExecutionContext, name: string): Promise<{ node: SpawnedNode; pgDir: string }> {
  const tmp = await tempDir(name);
  const dataDir = path.join(tmp.dir, 'data');
  const pgDir = path.join(dataDir, 'pg');
  const node = spawnNode(path.join(FIXTURES, 'signals-node.ts'), { env: { SIGNALS_DATA_DIR: dataDir, PARTITA_LOG_LEVEL: 'info' } });
  t.teardown(async () => {
    node.kill('SIGKILL');
    for (const pid of postgresProcessesIn(pgDir)) process.kill(pid, 'SIGKILL');
    await tmp.cleanup();
  });
  return { node, pgDir };
}

interface Setup {
  dir: string;
  pgDir: string;
  config: string;
  nodes: SpawnedNode[];
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Enqueues a short job through the CLI and waits for it to complete. */
  jobCompletes(): Promise<boolean>;
  health(node: SpawnedNode): Promise<{ status: number; body: string }>;
}

async function setup(t: import('ava').ExecutionContext, name: string): Promise<Setup> {
  const tmp = await tempDir(name);
  const nodes: SpawnedNode[] = [];
  const pgDir = path.join(tmp.dir, 'data', 'pg');
  t.teardown(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    // Whatever a failed test left running on this data dir.
    for (const pid of postgresProcessesIn(pgDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await tmp.cleanup();
  });
  const config = await writeConfig(tmp.dir, {
    cluster: name,
    dataDir: './data',
    jobs: path.join(FIXTURES, 'fault-jobs.mjs'),
    engine: { pollMs: 100, shutdownGraceMs: 5000 },
    http: { port: 0, host: '127.0.0.1' },
    partitions: { work: { queues: { default: { concurrency: 2 } } } },
  });
  const cli = (args: string[]) => runCli([...args, '-c', config], { cwd: tmp.dir });
  return {
    dir: tmp.dir,
    pgDir,
    config,
    nodes,
    cli,
    async jobCompletes() {
      const enq = await cli(['enqueue', 'work', 'sleep', '{"ms":5}', '--json']);
      if (enq.code !== 0) throw new Error(`enqueue failed: ${enq.stderr}`);
      const { id } = JSON.parse(enq.stdout) as { id: string };
      const done = await cli(['status', id, '--wait', '--timeout', '20s', '--json']);
      return done.code === 0 && (JSON.parse(done.stdout) as { state: string }).state === 'completed';
    },
    async health(node) {
      const m = node.output().match(/"health":"([^"]+)"/);
      if (!m) throw new Error(`no health URL in the node's output:\n${node.output()}`);
      try {
        const res = await fetch(m[1]!);
        return { status: res.status, body: await res.text() };
      } catch (err) {
        return { status: 0, body: (err as Error).message };
      }
    },
  };
}

const ownerPid = async (pgDir: string) => (JSON.parse(await fs.readFile(`${pgDir}.owner`, 'utf8')) as { pid: number }).pid;

test.serial(
  'two nodes on one embedded data dir: the one that did not start the server exits without stopping it; when the owner stops, the other takes over',
  async (t) => {
    const s = await setup(t, 'embedded-two');
    // Started at the same moment: only one may initialise and start the server, the other adopts it.
    const [a, b] = await Promise.all([
      startCliNode(s.config, { nodeId: 'a', onSpawn: (n) => s.nodes.push(n) }),
      startCliNode(s.config, { nodeId: 'b', onSpawn: (n) => s.nodes.push(n) }),
    ]);
    const serverPid = (await postmasterPid(s.pgDir))!;
    const owner = await ownerPid(s.pgDir);
    t.true([a.pid, b.pid].includes(owner), 'one of the two nodes owns the server');
    const [first, second] = owner === a.pid ? [a, b] : [b, a];
    t.regex(second.output(), /already running for this data dir/);

    second.kill('SIGTERM');
    const exit = await second.exited;
    t.is(exit.code, 0, second.output().slice(-2000));
    await sleep(500);
    t.true(alive(serverPid), 'the server the first node started still runs');
    t.is(await postmasterPid(s.pgDir), serverPid);
    t.is((await s.health(first)).status, 200, 'the first node is healthy');
    t.true(await s.jobCompletes(), 'a job still completes on the first node');

    // A third node adopts; then the owner stops (and stops its server): the third starts it again on the
    // same port and owns it from then on.
    const c = await startCliNode(s.config, { nodeId: 'c', onSpawn: (n) => s.nodes.push(n) });
    first.kill('SIGTERM');
    t.is((await first.exited).code, 0, first.output().slice(-2000));
    await until(
      'the third node to own the restarted server',
      async () => (await ownerPid(s.pgDir).catch(() => 0)) === c.pid && alive((await postmasterPid(s.pgDir)) ?? -1),
      30_000,
      100,
    );
    await until('the third node to be healthy', async () => (await s.health(c)).status === 200, 20_000, 200);
    t.true(await s.jobCompletes(), 'a job completes on the node that took over');

    c.kill('SIGTERM');
    t.is((await c.exited).code, 0, c.output().slice(-2000));
    t.deepEqual(postgresProcessesIn(s.pgDir), [], 'the last owner stopped the server');
  },
);

test.serial('kill -9 of the embedded PostgreSQL: the node that owns it starts it again and keeps working', async (t) => {
  const s = await setup(t, 'embedded-kill');
  const node = await startCliNode(s.config, { onSpawn: (n) => s.nodes.push(n) });
  const before = (await postmasterPid(s.pgDir))!;
  process.kill(before, 'SIGKILL');
  const after = await until(
    'a new postmaster',
    async () => {
      const pid = await postmasterPid(s.pgDir);
      return pid !== undefined && pid !== before && alive(pid) && pid;
    },
    30_000,
    100,
  );
  t.not(after, before);
  t.regex(
    await node.waitForOutput('embedded PostgreSQL started again', { timeoutMs: 30_000 }).then(() => node.output()),
    /is gone \(killed\?\); starting it again/,
  );
  await until('the node to be healthy again', async () => (await s.health(node)).status === 200, 30_000, 200);
  t.true(await s.jobCompletes(), 'a job completes after the restart');
  node.kill('SIGTERM');
  t.is((await node.exited).code, 0, node.output().slice(-2000));
  t.deepEqual(postgresProcessesIn(s.pgDir), []);
});

test.serial('a startNode({ handleSignals: true }) program: SIGTERM stops the node and its embedded PostgreSQL', async (t) => {
  const { node, pgDir } = await signalsNode(t, 'embedded-signals');
  await node.waitForOutput(/^ready /m, { timeoutMs: 60_000 });
  const pgPid = (await postmasterPid(pgDir))!;
  t.true(alive(pgPid));
  node.kill('SIGTERM');
  const exit = await node.exited;
  // Stopped gracefully, then the process exited (cleanly: the stop went well).
  t.is(exit.code, 0, node.output().slice(-2000));
  t.regex(node.output(), /"msg":"stopped"/, 'the node stopped gracefully');
  t.false(alive(pgPid), 'its embedded PostgreSQL is stopped');
  t.deepEqual(postgresProcessesIn(pgDir), [], 'no postgres process left for that data dir');
});

test.serial(
  'a killed owner leaves its server or a stale postmaster.pid behind: the next start takes the server over, or starts fresh',
  async (t) => {
    const s = await setup(t, 'embedded-stale');
    const a = await startCliNode(s.config, { nodeId: 'a', onSpawn: (n) => s.nodes.push(n) });
    const server = (await postmasterPid(s.pgDir))!;
    // The owner dies without a word; its server (its own process group) keeps running.
    a.kill('SIGKILL');
    await a.exited;
    t.true(alive(server));
    const b = await startCliNode(s.config, { nodeId: 'b', onSpawn: (n) => s.nodes.push(n) });
    t.is(await postmasterPid(s.pgDir), server, 'the running server is adopted');
    t.is(await ownerPid(s.pgDir), b.pid, 'and owned by the new node, since its owner is gone');
    t.true(await s.jobCompletes());

    // Both die: a postmaster.pid is left behind. Its pid is then reused by another postgres process (as
    // after a reboot): here a backend of another server, held open for the test.
    b.kill('SIGKILL');
    await b.exited;
    const stalePidFile = await fs.readFile(path.join(s.pgDir, 'postmaster.pid'), 'utf8');
    process.kill(server, 'SIGKILL');
    await until('the old server and its backends to be gone', async () => postgresProcessesIn(s.pgDir).length === 0, 20_000, 50);
    const other = new pg.Client({ connectionString: await postgresUrl() });
    await other.connect();
    t.teardown(() => other.end().catch(() => undefined));
    const reusedPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await fs.writeFile(path.join(s.pgDir, 'postmaster.pid'), stalePidFile.replace(/^\d+/, String(reusedPid)));

    const c = await startCliNode(s.config, { nodeId: 'c', onSpawn: (n) => s.nodes.push(n) });
    const fresh = (await postmasterPid(s.pgDir))!;
    t.not(fresh, reusedPid);
    t.true(alive(fresh));
    t.regex(c.output(), /removing a stale postmaster.pid/);
    t.true(await s.jobCompletes(), 'a job completes on the freshly started server');
    t.true(alive(reusedPid), 'the process the stale file named is left alone');
    c.kill('SIGTERM');
    t.is((await c.exited).code, 0);
    t.deepEqual(postgresProcessesIn(s.pgDir), []);
  },
);

/** Pid of a child of `parent`, from /proc. */
function childOf(parent: number): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so count from the last ')'.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) return Number(e);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/**
 * `partita start` as npm runs it: `sh -c '<bin> start …'`; on SIGTERM npm signals that shell, which dies
 * without passing the signal on (a trailing command keeps it from exec'ing node). The node's output goes
 * to a file (a pipe would end with the shell): it says why, if it does not stop.
 */
async function npmLaunched(t: import('ava').ExecutionContext, s: Setup) {
  const logFile = path.join(s.dir, 'node.log');
  const shell = spawn(
    'sh',
    ['-c', `"${process.execPath}" "${CLI}" start -c "${s.config}" --log-format json --node-id npm >"${logFile}" 2>&1; true`],
    {
      env: { ...process.env, npm_command: 'exec', PARTITA_LOG_LEVEL: 'debug', NO_COLOR: '1' },
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  const nodePid = await until('the shell to start the node', async () => childOf(shell.pid!), 20_000, 20);
  t.teardown(() => {
    shell.kill('SIGKILL');
    if (alive(nodePid)) process.kill(nodePid, 'SIGKILL');
  });
  const log = () => fs.readFile(logFile, 'utf8').catch(() => '');
  return {
    nodePid,
    log,
    /** Kills the shell as npm would and waits for the node to stop (what an orphan never does). */
    async killLauncher(): Promise<number> {
      shell.kill('SIGTERM');
      const killed = Date.now();
      try {
        await until('the node to stop', async () => !alive(nodePid), 60_000, 100);
      } catch (err) {
        t.log((await log()).slice(-6000));
        throw err;
      }
      return Date.now() - killed;
    },
  };
}

test.serial(
  'started by npm (npx partita start): SIGTERM to npm kills only its shell, and the node stops with it instead of running on as an orphan',
  async (t) => {
    const s = await setup(t, 'embedded-npm');
    const npm = await npmLaunched(t, s);
    t.is(
      await until('the node to own its embedded PostgreSQL', async () => ownerPid(s.pgDir).catch(() => undefined), 60_000, 100),
      npm.nodePid,
    );
    await until('the node to be ready', async () => /partita node ready/.test(await npm.log()), 60_000, 100);
    const server = (await postmasterPid(s.pgDir))!;
    // It notices within 500 ms and stops gracefully, database included: 1.5-3.5 s here.
    t.log(`stopped ${await npm.killLauncher()} ms after its launcher was killed`);
    t.regex(await npm.log(), /the npm process that started this node is gone/);
    t.false(alive(server), 'its embedded PostgreSQL is stopped');
    t.deepEqual(postgresProcessesIn(s.pgDir), []);
  },
);

test.serial(
  'started by npm, and npm killed while the node starts (initdb): the node stops as soon as it is up, database included',
  async (t) => {
    // The launcher's pid is read when the CLI loads: read once the node was up (as before), a launcher
    // gone during a slow start had already been replaced by init, and the node ran on as an orphan.
    const s = await setup(t, 'embedded-npm-early');
    const npm = await npmLaunched(t, s);
    await until(
      'the node to initialise its data dir',
      async () => /initialising embedded PostgreSQL data dir/.test(await npm.log()),
      60_000,
      50,
    );
    t.log(`stopped ${await npm.killLauncher()} ms after its launcher was killed`);
    const log = await npm.log();
    t.regex(log, /the npm process that started this node is gone/);
    t.regex(log, /"msg":"embedded PostgreSQL stopped"/);
    t.deepEqual(postgresProcessesIn(s.pgDir), [], 'no postgres process left for that data dir');
  },
);

test.serial('handleSignals: a SIGTERM while the node is starting (initdb) stops it as soon as it is up, database included', async (t) => {
  const { node, pgDir } = await signalsNode(t, 'embedded-signals-early');
  await node.waitForOutput('initialising embedded PostgreSQL data dir', { timeoutMs: 60_000 });
  node.kill('SIGTERM');
  const exit = await node.exited;
  t.is(exit.code, 0, node.output().slice(-3000));
  t.regex(node.output(), /signal while starting: the node stops as soon as it is up/);
  t.regex(node.output(), /"msg":"embedded PostgreSQL stopped"/);
  t.deepEqual(postgresProcessesIn(pgDir), [], 'no postgres process left for that data dir');
});

test.serial('a server left hung by a killed owner is killed and replaced on the next start', async (t) => {
  const s = await setup(t, 'embedded-hung');
  const a = await startCliNode(s.config, { nodeId: 'a', onSpawn: (n) => s.nodes.push(n) });
  const hung = (await postmasterPid(s.pgDir))!;
  t.teardown(() => {
    try {
      process.kill(hung, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  // Stopped (not dead): its pid is alive and its postmaster.pid says ready, but it accepts no connection.
  process.kill(hung, 'SIGSTOP');
  a.kill('SIGKILL');
  await a.exited;
  const b = await startCliNode(s.config, { nodeId: 'b', onSpawn: (n) => s.nodes.push(n) });
  t.regex(b.output(), /left running by a dead owner does not answer; killing it to start afresh/);
  t.false(alive(hung), 'the hung server is gone');
  const fresh = (await postmasterPid(s.pgDir))!;
  t.not(fresh, hung);
  t.is(await ownerPid(s.pgDir), b.pid);
  t.true(await s.jobCompletes());
  b.kill('SIGTERM');
  t.is((await b.exited).code, 0);
  t.deepEqual(postgresProcessesIn(s.pgDir), []);
});
