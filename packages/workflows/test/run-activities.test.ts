/**
 * Activity types and condition forms beyond the signup example: a signal from one workflow re-entering
 * another's hook, an interrupt activity stopping another workflow and one stopping itself, `emit`,
 * `gate: or` and psub over topic wildcards (a hook answered with 202: run-hook-answers).
 */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { INTERRUPTED, app, type WorkflowEvent } from '../src/index.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: acts
  version: '1'
  graphs:
    - subscribes: w.start
      activities:
        t1: { type: trigger }
        wait: { type: hook, hook: { schema: { type: object, required: [id] } } }
        fin:
          type: hook
          emit: true
          job: { maps: { got: '{wait.output.data.msg}' } }
      transitions:
        t1: [{ to: wait }]
        wait:
          - to: fin
            conditions: { match: [{ expected: true, actual: true }] }
      hooks:
        w.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
    - subscribes: s.start
      activities:
        t1: { type: trigger }
        sig:
          type: signal
          topic: w.go
          signal: { maps: { id: '{t1.output.data.target}', msg: hello } }
      transitions:
        t1: [{ to: sig }]
    - subscribes: x.start
      activities:
        t1: { type: trigger }
        stop: { type: interrupt, topic: w.start, target: '{t1.output.data.target}', reason: 'stopped by x' }
      transitions:
        t1: [{ to: stop }]
    - subscribes: g.start
      activities:
        t1: { type: trigger }
        yes: { type: hook, job: { maps: { branch: yes } } }
        no: { type: hook, job: { maps: { branch: no } } }
        halt: { type: interrupt }
      transitions:
        t1:
          - to: yes
            conditions:
              gate: or
              match:
                - { expected: 1, actual: '{t1.output.data.x}' }
                - { expected: 2, actual: '{t1.output.data.x}' }
          - to: no
            conditions: { match: [{ expected: 3, actual: '{t1.output.data.x}' }] }
        no:
          - to: halt
            conditions: { match: [{ expected: true, actual: '{t1.output.data.halt}' }] }
`;

test.serial('signal, interrupt (other and self), emit, gate or, psub', async (t) => {
  const { node } = await workflowNode(t, 'wf_acts', {
    concurrency: 4,
    jobs: [defineJob({ type: 'noop', perform: () => null })],
  });
  const acts = app(node.client, 'acts');
  await acts.deploy(APP);
  await acts.activate('1');
  const events: WorkflowEvent[] = [];
  const unsub = await acts.psub('w.>', (_data, e) => events.push(e));
  t.teardown(unsub);

  // A signal activity re-enters another workflow's waiting hook with its mapped data.
  const w1 = await acts.pub('w.start', {});
  t.true((await acts.getStatus(w1)) > 0);
  await acts.pub('s.start', { target: w1 });
  await until('w1 finished', async () => (await acts.getStatus(w1)) === 0, 10_000);
  t.is((await acts.getState('w.start', w1)).data['got'], 'hello');
  await until('the emit and the output arrived', async () => events.filter((e) => e.id === w1).length >= 2, 10_000);
  t.deepEqual(
    events
      .filter((e) => e.id === w1)
      .map((e) => e.kind)
      .sort(),
    ['emit', 'output'],
  );

  // An interrupt activity stops another workflow; a hook for it is then kept, not delivered.
  const w2 = await acts.pub('w.start', {});
  const x = await acts.pub('x.start', { target: w2 });
  t.is(await acts.getStatus(w2), INTERRUPTED);
  t.is(await acts.getStatus(x), 0);
  t.deepEqual((await acts.export(x)).activities.find((a) => a.activity === 'stop')?.output, { interrupted: true });
  t.is(await acts.hook('w.go', { id: w2, msg: 'late' }), undefined);

  // hookAll re-enters every waiting workflow whose searchable field matches; hook data must match the hook schema.
  const a1 = await acts.pub('w.start', {}, { search: { group: 'a' } });
  const a2 = await acts.pub('w.start', {}, { search: { group: 'a' } });
  const b1 = await acts.pub('w.start', {}, { search: { group: 'b' } });
  t.deepEqual((await acts.hookAll('w.go', { id: 'any', msg: 'all' }, { key: 'group', value: 'a' })).sort(), [a1, a2].sort());
  t.is(await acts.getStatus(a1), 0);
  t.is((await acts.getState('w.start', a2)).data['got'], 'all');
  t.true((await acts.getStatus(b1)) > 0);
  const invalid = await t.throwsAsync(acts.hook('w.go', { msg: 'no id' }), { instanceOf: ValidationError });
  t.is(invalid?.path, 'id');

  // gate: or takes the edge when one match holds; the other edge's single match decides it.
  const g2 = await acts.pub('g.start', { x: 2 });
  t.is((await acts.getState('g.start', g2)).data['branch'], 'yes');
  const g3 = await acts.pub('g.start', { x: 3 });
  t.is((await acts.getState('g.start', g3)).data['branch'], 'no');
  t.is(await acts.getStatus(g3), 0);
  // An interrupt without a target interrupts its own workflow.
  const gh = await acts.pub('g.start', { x: 3, halt: true });
  t.is(await acts.getStatus(gh), INTERRUPTED);
  t.is(await acts.getQueryState(gh, ['branch']).then((s) => s['branch']), 'no');
});
