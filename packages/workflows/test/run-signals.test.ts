/**
 * Early signals at scale: of 500 workflows that each wait for one hook, 10 % get their hook before
 * they reach the hook activity (kept, then taken when they start waiting), the rest once they wait.
 * None may be lost or delivered twice.
 */
import test from 'ava';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { app } from '../src/index.js';
import { workflowNode } from './helpers.js';

const N = 500;
const EARLY = N / 10;

const APP = [
  'app:',
  '  id: early',
  "  version: '1'",
  '  graphs:',
  '    - subscribes: early.start',
  '      activities:',
  '        t1: { type: trigger }',
  "        arm: { type: worker, topic: arm, input: { maps: { early: '{t1.output.data.early}' } } }",
  "        wait: { type: hook, job: { maps: { got: '{$self.hook.data.n}' } } }",
  '      transitions:',
  '        t1: [{ to: arm }]',
  '        arm: [{ to: wait }]',
  '      hooks:',
  '        early.go:',
  '          - to: wait',
  "            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }",
  '',
].join('\n');

test.serial('10 % of 500 hooks sent before their workflow waits: every hook delivered once, none lost', async (t) => {
  let releaseEarly!: () => void;
  const earlyHooksSent = new Promise<void>((r) => (releaseEarly = r));
  const { db, node } = await workflowNode(t, 'wf_early', {
    concurrency: 16,
    jobs: [
      defineJob<{ early?: boolean }>({
        type: 'arm',
        // The early workflows cannot reach their hook activity before the test has sent their hooks.
        perform: async (p) => {
          if (p.early) await earlyHooksSent;
          return {};
        },
      }),
    ],
  });
  t.teardown(() => releaseEarly());
  const early = app(node.client, 'early');
  await early.deploy(APP);
  await early.activate('1');

  const ids = Array.from({ length: N }, (_, i) => `w${i}`);
  const isEarly = (i: number) => i % 10 === 0;
  for (let i = 0; i < N; i += 50)
    await Promise.all(ids.slice(i, i + 50).map((id, k) => early.pub('early.start', { early: isEarly(i + k) }, { id })));

  const earlyIds = ids.filter((_, i) => isEarly(i));
  t.is(earlyIds.length, EARLY);
  const earlyReached = await Promise.all(earlyIds.map((id) => early.hook('early.go', { id, n: id })));
  t.true(
    earlyReached.every((r) => r === undefined),
    'every early hook found no waiting activity and was kept',
  );
  const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
  t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".wf_signals`), EARLY);
  releaseEarly();

  await until(
    'the other workflows wait',
    async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".wf_hooks`)) === N - EARLY,
    40_000,
    100,
  );
  const lateIds = ids.filter((_, i) => !isEarly(i));
  const lateReached: (string | undefined)[] = [];
  for (let i = 0; i < lateIds.length; i += 50)
    lateReached.push(...(await Promise.all(lateIds.slice(i, i + 50).map((id) => early.hook('early.go', { id, n: id })))));
  t.deepEqual(lateReached, lateIds, 'each later hook reached its waiting workflow');

  await until(
    'every workflow finished',
    async () => (await count(`SELECT count(*) AS n FROM "${db.schema}".wf_workflows WHERE status = 0`)) === N,
    40_000,
    100,
  );
  const rows = (await db.pool.query(`SELECT id, data FROM "${db.schema}".wf_workflows`)).rows as { id: string; data: { got?: string } }[];
  t.true(
    rows.every((r) => r.data.got === r.id),
    'each workflow got its own hook',
  );
  t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".wf_signals`), 0, 'every kept signal was taken');
  t.is(await count(`SELECT count(*) AS n FROM "${db.schema}".wf_hooks`), 0, 'no activity still waits');
  t.is(
    await count(`SELECT count(*) AS n FROM "${db.schema}".wf_activities WHERE activity = 'wait' AND entered = 1 AND state = 'done'`),
    N,
    'each hook activity entered once and finished',
  );
});
