/**
 * A jobs module exporting `processes` and `schedules` beside its `jobs`: `partita start` runs them,
 * and the CLI lists, shows, triggers, pauses and resumes the process.
 */
import test from 'ava';
import path from 'node:path';
import { processes } from '@partita/processes';
import { cliCluster, cliJson, runCli, until } from '../../../test/fixtures/cli.js';

const JOBS_MODULE = path.join(import.meta.dirname, 'fixtures', 'process-jobs.mjs');

test.serial('partita start runs the processes and schedules of the jobs module; partita process steers them', async (t) => {
  const { config, start, connect } = await cliCluster(t, 'proc-cli', {
    postgres: { poolSize: 4 },
    jobs: JOBS_MODULE,
    partitions: { p: { queues: { default: { concurrency: 1 } } } },
  });
  const client = await connect();
  await start('cli-node');
  const conn = ['-c', config];
  const api = processes(client);
  await until('the process is declared', async () => (await api.get('tally')) !== undefined, 20_000);
  await api.registerWork('tally', 'a', { n: 2 });
  await api.registerWork('tally', 'b', { n: 5 });

  const triggered = await runCli(['process', 'trigger', 'tally', ...conn]);
  t.is(triggered.code, 0, triggered.stderr);
  t.regex(triggered.stdout, /triggered tally/);
  await until('the triggered run completes', async () => (await api.get('tally'))?.lastRun?.state === 'completed', 20_000);
  const shown = cliJson(await runCli(['process', 'tally', ...conn, '--json']));
  t.is(shown.lastRun.stats['work.units'], 7);
  t.is(shown.owner.id.split('/')[0], 'cli-node');
  t.deepEqual(
    shown.work.map((w: { name: string; status: { state: string } }) => [w.name, w.status.state]),
    [
      ['a', 'completed'],
      ['b', 'completed'],
    ],
  );
  const listed = await runCli(['processes', ...conn]);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /^tally\s+idle\s+1 h 0 min\s+cli-node\/\S+\s+#1 completed/m);
  const text = await runCli(['process', 'tally', ...conn]);
  t.regex(text.stdout, /work items:/);
  t.is((await runCli(['process', 'pause', 'tally', ...conn])).code, 0);
  t.is((await api.get('tally'))!.state, 'paused');
  t.is((await runCli(['process', 'resume', 'tally', ...conn])).code, 0);
  t.is((await runCli(['process', 'nope', ...conn])).code, 3);
  // Steering an unknown process: the API's UnknownProcessError, exit code 3, the message saying how to list them.
  const unknown = await runCli(['process', 'pause', 'nope', ...conn]);
  t.is(unknown.code, 3, unknown.stderr);
  t.regex(unknown.stderr, /no background process "nope".*partita processes/s);

  const sched = cliJson(await runCli(['schedule', 'hourly', ...conn, '--json']));
  t.is(sched.cron, '@hourly', 'the schedule exported by the jobs module was synced');
});
