/**
 * `partita retry` and `partita jobs … --retry|--cancel|--delete [--yes]`, run as a real process
 * (packages/cli/dist/bin.js; needs the build) against a node in this process.
 */
import test from 'ava';
import { defineJob } from '@partita/runtime';
import { cliJson as json, nodeForCli, until } from './fixtures/cli.js';

test('retry by id, and bulk retry, cancel and delete by filter: dry run without --yes, limits, exit codes', async (t) => {
  const broken = { boom: true };
  const { node, cli } = await nodeForCli(t, 'cliretry', {
    partitions: { billing: { queues: { default: { concurrency: 4 } } } },
    jobs: [
      defineJob({
        type: 'boom',
        perform: (_p: unknown, ctx) => {
          if (broken.boom) throw new Error('kaboom');
          return { attempt: ctx.attempt };
        },
      }),
      defineJob({ type: 'later', perform: () => 'ran' }),
    ],
  });
  const client = node.client;
  const stateOf = async (id: string) => (await client.job(id))?.state;

  const { ids: booms } = await client.enqueueMany(
    'billing',
    [1, 2, 3, 4].map((n) => ({ type: 'boom', payload: { n } })),
  );
  await until('the boom jobs failed', async () => (await Promise.all(booms.map(stateOf))).every((s) => s === 'failed'), 20_000);
  broken.boom = false;

  // partita retry ID
  const one = await cli(['retry', booms[0]!, '--json']);
  t.is(one.code, 0, one.stderr);
  t.like(json(one), { id: booms[0], retried: true });
  const done = await cli(['status', booms[0]!, '--wait', '--timeout', '20s', '--json']);
  t.like(json(done), { state: 'completed', attempts: 2 });
  const again = await cli(['retry', booms[0]!]);
  t.is(again.code, 5, 'a completed job: nothing to retry');
  t.regex(again.stderr, /completed; only failed and cancelled jobs are retried/);
  t.is((await cli(['retry', '0192f0c4-0000-7000-8000-000000000000'])).code, 3);
  t.is((await cli(['retry', 'not-an-id'])).code, 2);

  // A held queue key refuses the retry, naming the holder.
  const keyed = await client.enqueue('billing', 'later', null, { queueKey: 'INV-9', delayMs: 3_600_000 });
  await client.cancel(keyed.id);
  const holder = await client.enqueue('billing', 'later', null, { queueKey: 'INV-9', delayMs: 3_600_000 });
  const refused = await cli(['retry', keyed.id]);
  t.is(refused.code, 5);
  t.regex(refused.stderr, new RegExp(`not retried: queue key "INV-9" is already held by job ${holder.id}`));

  // jobs --retry: without --yes a count only; with it, up to --limit.
  const dry = await cli(['jobs', '--state', 'failed', '--type', 'boom', '--retry']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^would retry 3 jobs \(failed 3\); nothing was changed: add --yes to do it$/m);
  t.is(await stateOf(booms[1]!), 'failed', 'the dry run changed nothing');
  const limited = await cli(['jobs', '--state', 'failed', '--type', 'boom', '--retry', '--yes', '--limit', '2']);
  t.is(limited.code, 0, limited.stderr);
  t.regex(limited.stdout, /^retried 2 jobs$/m);
  t.regex(limited.stderr, /3 jobs match, more than --limit 2: run it again, or raise --limit/);
  const rest = await cli(['jobs', '--state', 'failed', '--type', 'boom', '--retry', '--yes', '--json']);
  t.like(json(rest), { operation: 'retry', dryRun: false, matching: 1, count: 1, more: false, refused: [] });
  for (const id of booms) t.like(json(await cli(['status', id, '--wait', '--timeout', '20s', '--json'])), { state: 'completed' });

  // jobs --cancel, then --delete of what it cancelled.
  const { ids: later } = await client.enqueueMany(
    'billing',
    [1, 2, 3].map((n) => ({ type: 'later', payload: { n }, delayMs: 3_600_000 })),
  );
  t.like(json(await cli(['jobs', '--type', 'later', '--cancel', '--json'])), {
    operation: 'cancel',
    dryRun: true,
    matching: 4,
    count: 4,
    ids: [],
  });
  const cancelled = await cli(['jobs', '--type', 'later', '--state', 'scheduled', '--cancel', '--yes']);
  t.is(cancelled.code, 0, cancelled.stderr);
  t.regex(cancelled.stdout, /^cancelled 4 jobs$/m);
  for (const id of [...later, holder.id]) t.is(await stateOf(id), 'cancelled');
  const deleted = await cli(['jobs', '--state', 'cancelled', '--delete', '--yes', '--json']);
  t.like(json(deleted), { operation: 'delete', count: 5, runningSkipped: 0 });
  t.is(await client.job(later[0]!), undefined);

  // Usage errors.
  t.is((await cli(['jobs', '--yes'])).code, 2);
  t.is((await cli(['jobs', '--retry', '--cancel'])).code, 2);
  t.is((await cli(['jobs', '--cancel', '--max-attempts', '2'])).code, 2);
  const running = await cli(['jobs', '--state', 'running', '--delete']);
  t.is(running.code, 2);
  t.regex(running.stderr, /cancel running jobs first/);
});
