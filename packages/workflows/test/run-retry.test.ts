/**
 * A worker activity's `retry`: with a backoffCoefficient/maximumInterval the delays between attempts
 * follow the activity (min(coefficient^attempt, maximumInterval) seconds), not the job definition's
 * backoff; attempts count over the activity, and the workflow fails once they are spent.
 */
import test from 'ava';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { FAILED, app } from '../src/index.js';
import { retryDelayMs, stepAttempts } from '../src/retry.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: retry
  version: '1'
  graphs:
    - subscribes: r.start
      activities:
        t1: { type: trigger }
        work:
          type: worker
          topic: flaky
          input: { maps: { key: '{t1.output.data.key}', failures: '{t1.output.data.failures}' } }
          retry: { maximumAttempts: 3, backoffCoefficient: 2, maximumInterval: 0.4 }
          job: { maps: { result: '{work.output.data.ok}' } }
      transitions:
        t1: [{ to: work }]
`;

test('retry delays: HotMesh rule, capped by maximumInterval; only a backoff setting hands retries to the executor', (t) => {
  t.is(retryDelayMs({ backoffCoefficient: 2 }, 1), 2000);
  t.is(retryDelayMs({ backoffCoefficient: 2 }, 3), 8000);
  t.is(retryDelayMs({ backoffCoefficient: 2, maximumInterval: 5 }, 3), 5000);
  t.is(retryDelayMs({ maximumInterval: 60 }, 1), 10_000);
  t.is(retryDelayMs({ maximumAttempts: 9 }, 3), 120_000);
  t.deepEqual(stepAttempts(undefined), {});
  t.deepEqual(stepAttempts({ maximumAttempts: 4 }), { maxAttempts: 4 });
  t.deepEqual(stepAttempts({ maximumAttempts: 4, backoffCoefficient: 3 }), { maxAttempts: 1 });
});

test.serial('a worker retries on the activity’s backoff, not the job definition’s; spent attempts fail the workflow', async (t) => {
  const calls = new Map<string, number[]>();
  const { node } = await workflowNode(t, 'wf_retry', {
    concurrency: 4,
    pollMs: 50,
    jobs: [
      defineJob<{ key: string; failures: number }>({
        type: 'flaky',
        // Were this backoff used, the second attempt would wait ≥ 5 s.
        maxAttempts: 10,
        backoff: { baseMs: 10_000, maxMs: 10_000 },
        perform: (p) => {
          const at = calls.get(p.key) ?? [];
          at.push(Date.now());
          calls.set(p.key, at);
          if (at.length <= p.failures) throw new Error(`failure ${at.length} of ${p.key}`);
          return { ok: at.length };
        },
      }),
    ],
  });
  const retry = app(node.client, 'retry');
  await retry.deploy(APP);
  await retry.activate('1');

  const ok = await retry.pub('r.start', { key: 'a', failures: 2 });
  const spent = await retry.pub('r.start', { key: 'b', failures: 5 });
  await until('both ended', async () => (await retry.getStatus(ok)) === 0 && (await retry.getStatus(spent)) === FAILED, 15_000);

  const a = calls.get('a')!;
  t.is(a.length, 3);
  for (let i = 1; i < a.length; i++) {
    const gap = a[i]! - a[i - 1]!;
    t.true(gap >= 390 && gap < 3000, `gap ${i}: ${gap} ms (activity's maximumInterval is 0.4 s)`);
  }
  t.is((await retry.getState('r.start', ok)).data['result'], 3);
  const work = (await retry.export(ok)).activities.find((x) => x.activity === 'work')!;
  t.is(work.state, 'done');
  t.is(work.attempts, 3);
  t.is(work.errors.length, 2);
  t.regex(JSON.stringify(work.errors[1]), /failure 2 of a/);

  // maximumAttempts 3 counts over the activity's jobs: three performs, then the workflow fails.
  t.is(calls.get('b')!.length, 3);
  const failed = (await retry.export(spent)).activities.find((x) => x.activity === 'work')!;
  t.is(failed.state, 'failed');
  t.is(failed.attempts, 3);
  t.is(failed.errors.length, 3);
  await new Promise((r) => setTimeout(r, 600));
  t.is(calls.get('b')!.length, 3, 'no attempt after the last');
});
