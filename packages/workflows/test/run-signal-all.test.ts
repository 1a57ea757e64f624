/**
 * Signals to many: a `signal` activity with `subtype: all` re-enters every workflow waiting on the
 * hook topic whose searchable field (resolver `key_name`/`key_value`) matches, and `hookAll` does
 * the same from outside; hook data failing the hook's schema is refused with its JSON path.
 */
import test from 'ava';
import { ValidationError } from '@partita/core';
import { UnknownTopicError, app } from '../src/index.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: bcast
  version: '1'
  graphs:
    - subscribes: w.start
      activities:
        t1: { type: trigger }
        wait:
          type: hook
          hook:
            schema:
              type: object
              required: [msg]
              properties:
                msg: { type: string }
                meta: { type: object, properties: { count: { type: integer } } }
          job: { maps: { got: '{wait.output.data.msg}' } }
      transitions:
        t1: [{ to: wait }]
      hooks:
        w.go:
          - to: wait
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
    - subscribes: b.start
      activities:
        t1: { type: trigger }
        all:
          type: signal
          subtype: all
          topic: w.go
          signal: { maps: { msg: '{t1.output.data.msg}' } }
          resolver: { maps: { key_name: group, key_value: '{t1.output.data.group}' } }
          job: { maps: { reached: '{all.output.data.ids}' } }
      transitions:
        t1: [{ to: all }]
`;

test.serial('signal subtype all and hookAll reach every waiting workflow of the search field; hook schema paths', async (t) => {
  const { node } = await workflowNode(t, 'wf_bcast', {
    concurrency: 2,
  });
  const bcast = app(node.client, 'bcast');
  await bcast.deploy(APP);
  await bcast.activate('1');

  const red = await Promise.all([1, 2, 3].map(() => bcast.pub('w.start', {}, { search: { group: 'red' } })));
  const blue = await Promise.all([1, 2].map(() => bcast.pub('w.start', {}, { search: { group: 'blue' } })));

  // The signal activity, in its own transaction with the three re-entries.
  const sender = await bcast.pub('b.start', { group: 'red', msg: 'to red' });
  t.is(await bcast.getStatus(sender), 0);
  t.deepEqual(((await bcast.getState('b.start', sender)).data['reached'] as string[]).sort(), [...red].sort());
  for (const id of red) {
    t.is(await bcast.getStatus(id), 0);
    t.is((await bcast.getState('w.start', id)).data['got'], 'to red');
  }
  for (const id of blue) t.true((await bcast.getStatus(id)) > 0);
  // No one waits in red any more: a second signal reaches nobody.
  const again = await bcast.pub('b.start', { group: 'red', msg: 'again' });
  t.deepEqual((await bcast.getState('b.start', again)).data['reached'], []);

  // hookAll from outside, validated against the hook schema first (nothing is delivered when it fails).
  const nested = await t.throwsAsync(bcast.hookAll('w.go', { msg: 'x', meta: { count: 'many' } }, { key: 'group', value: 'blue' }), {
    instanceOf: ValidationError,
  });
  t.is(nested?.path, 'meta.count');
  const missing = await t.throwsAsync(bcast.hook('w.go', { id: blue[0] }), { instanceOf: ValidationError });
  t.is(missing?.path, 'msg');
  for (const id of blue) t.true((await bcast.getStatus(id)) > 0);
  t.deepEqual(
    (await bcast.hookAll('w.go', { msg: 'to blue', meta: { count: 2 } }, { key: 'group', value: 'blue' })).sort(),
    [...blue].sort(),
  );
  for (const id of blue) t.is((await bcast.getState('w.start', id)).data['got'], 'to blue');

  await t.throwsAsync(bcast.hookAll('no.such.topic', { msg: 'x' }, { key: 'group', value: 'blue' }), { instanceOf: UnknownTopicError });
  await t.throwsAsync(bcast.hookAll('w.go', { msg: 'x' }, { key: '', value: 'blue' }), { instanceOf: ValidationError });
});
