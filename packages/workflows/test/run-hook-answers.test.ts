/**
 * How a hook answers its waiting activity (hook()'s `status` and `code`, a signal activity's): a 202
 * (status 'pending') answers and keeps the hook waiting, its 202 transitions run once per answer, each
 * reading its own answer's data, until an answer closes it; an error fails the workflow unless a
 * transition names its code; a signal kept before the hook waits answers as it was sent.
 */
import test, { type ExecutionContext } from 'ava';
import { ValidationError } from '@partita/core';
import { defineJob } from '@partita/runtime';
import { until } from '../../../test/helpers/index.js';
import { FAILED, app } from '../src/index.js';
import { workflowNode } from './helpers.js';

const APP = `
app:
  id: answers
  version: '1'
  graphs:
    - subscribes: review.start
      activities:
        t1: { type: trigger }
        arm: { type: worker, topic: arm, input: { maps: { hold: '{t1.output.data.hold}' } } }
        review: { type: hook }
        note: { type: worker, topic: note, input: { maps: { text: '{review.output.data.text}', wf: '{$job.metadata.jid}' } } }
        rejected: { type: hook, job: { maps: { outcome: rejected } } }
        closed: { type: hook, job: { maps: { outcome: '{review.output.data.text}' } } }
      transitions:
        t1: [{ to: arm }]
        arm: [{ to: review }]
        review:
          - to: note
            conditions: { code: 202 }
          - to: rejected
            conditions: { code: 409 }
          - to: closed
      hooks:
        review.note:
          - to: review
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
    - subscribes: ping.start
      activities:
        t1: { type: trigger }
        ping:
          type: signal
          topic: review.note
          status: pending
          signal: { maps: { id: '{t1.output.data.target}', text: from-signal } }
      transitions:
        t1: [{ to: ping }]
`;

async function answersApp(t: ExecutionContext, name: string) {
  const notes: { wf: string; text: string }[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const { node } = await workflowNode(t, name, {
    concurrency: 8,
    jobs: [
      defineJob<{ hold?: boolean }>({
        type: 'arm',
        // A workflow started with hold reaches its hook only once the test lets it (its hooks sent early).
        perform: async (p) => {
          if (p.hold) await held;
          return {};
        },
      }),
      defineJob<{ wf: string; text: string }>({
        type: 'note',
        perform: async (p) => {
          notes.push(p);
          return {};
        },
      }),
    ],
  });
  t.teardown(() => release());
  const wf = app(node.client, 'answers');
  await wf.activate((await wf.deploy(APP)).version);
  const waiting = (id: string) =>
    until(`${id} waits on its review`, async () => (await wf.export(id)).activities.some((a) => a.activity === 'review'), 10_000);
  return { wf, notes, release, waiting };
}

test('a pending answer keeps the hook waiting: each runs the 202 transitions with its own data, a success closes it', async (t) => {
  const { wf, notes, waiting } = await answersApp(t, 'wf_answer_pending');
  const id = await wf.pub('review.start', {});
  await waiting(id);
  t.is(await wf.hook('review.note', { id, text: 'first' }, { status: 'pending' }), id);
  t.is(await wf.hook('review.note', { id, text: 'second' }, { code: 202 }), id);
  await until('both notes ran', async () => notes.length === 2, 10_000);
  t.true((await wf.getStatus(id)) > 0, 'still open: the hook waits');
  // A signal activity answers pending too.
  await wf.pub('ping.start', { target: id });
  await until('the signal note ran', async () => notes.length === 3, 10_000);
  t.deepEqual(notes.map((n) => n.text).sort(), ['first', 'from-signal', 'second']);
  t.true(notes.every((n) => n.wf === id));

  t.is(await wf.hook('review.note', { id, text: 'done' }), id);
  await until('the workflow finished', async () => (await wf.getStatus(id)) === 0, 10_000);
  t.is((await wf.getState('review.start', id)).data['outcome'], 'done');
  t.is(notes.length, 3, 'the closing answer runs no 202 transition');
  const timeline = (await wf.export(id)).activities;
  const reviews = timeline.filter((a) => a.activity === 'review');
  t.deepEqual(
    reviews.map((a) => [a.dimension, a.state]).sort(([a], [b]) => (a! < b! ? -1 : 1)),
    [
      ['', 'done'],
      [',1', 'done'],
      [',2', 'done'],
      [',3', 'done'],
    ],
  );
  t.deepEqual(
    reviews.filter((a) => a.dimension !== '').map((a) => (a.hook as { text: string }).text),
    ['first', 'second', 'from-signal'],
  );
  t.deepEqual(
    timeline
      .filter((a) => a.activity === 'note')
      .map((a) => a.dimension)
      .sort(),
    [',1', ',2', ',3'],
  );
  // Closed: a later hook finds nothing waiting and is kept.
  t.is(await wf.hook('review.note', { id, text: 'late' }, { status: 'pending' }), undefined);
});

test('an error answer fails the workflow, unless a transition names its code', async (t) => {
  const { wf } = await answersApp(t, 'wf_answer_error');
  const failing = await wf.pub('review.start', {});
  const routed = await wf.pub('review.start', {});
  await Promise.all(
    [failing, routed].map(async (id) =>
      until(`${id} waits`, async () => (await wf.export(id)).activities.some((a) => a.activity === 'review'), 10_000),
    ),
  );

  t.is(await wf.hook('review.note', { id: failing, text: 'broken' }, { status: 'error' }), failing);
  t.is(await wf.getStatus(failing), FAILED);
  const review = (await wf.export(failing)).activities.find((a) => a.activity === 'review');
  t.is(review?.state, 'failed');
  t.deepEqual(review?.errors, [{ code: 500, data: { id: failing, text: 'broken' } }]);

  t.is(await wf.hook('review.note', { id: routed, text: 'conflict' }, { status: 'error', code: 409 }), routed);
  await until('the routed workflow finished', async () => (await wf.getStatus(routed)) === 0, 10_000);
  t.is((await wf.getState('review.start', routed)).data['outcome'], 'rejected');
});

test('signals sent before the hook waits answer as they were sent: two pending, then the closing one', async (t) => {
  const { wf, notes, release } = await answersApp(t, 'wf_answer_early');
  const id = await wf.pub('review.start', { hold: true });
  t.is(await wf.hook('review.note', { id, text: 'early-1' }, { status: 'pending' }), undefined);
  t.is(await wf.hook('review.note', { id, text: 'early-2' }, { status: 'pending' }), undefined);
  t.is(await wf.hook('review.note', { id, text: 'early-close' }), undefined);
  release();
  await until('the workflow finished', async () => (await wf.getStatus(id)) === 0, 10_000);
  t.deepEqual(notes.map((n) => n.text).sort(), ['early-1', 'early-2']);
  t.is((await wf.getState('review.start', id)).data['outcome'], 'early-close');
});

test("hook()'s status and code are checked before anything is sent", async (t) => {
  const { wf } = await answersApp(t, 'wf_answer_bad');
  const bad = [
    [{ status: 'maybe' as 'pending' }, 'status'],
    [{ code: 1.5 }, 'code'],
    [{ code: 99 }, 'code'],
    [{ status: 'pending' as const, code: 200 }, 'code'],
    [{ status: 'success' as const, code: 202 }, 'status'],
    [{ status: 'error' as const, code: 302 }, 'code'],
  ] as const;
  for (const [opts, path] of bad) {
    const err = await t.throwsAsync(wf.hook('review.note', { id: 'x' }, opts), { instanceOf: ValidationError });
    t.is(err?.path, path, JSON.stringify(opts));
  }
});

const LOOP = `
app:
  id: loop
  version: '1'
  graphs:
    - subscribes: loop.start
      activities:
        t1: { type: trigger }
        round: { type: worker, topic: round, cycle: true }
        review: { type: hook }
        note: { type: worker, topic: note, input: { maps: { text: '{review.output.data.text}', round: '{round.output.data.round}' } } }
        again: { type: cycle, ancestor: round }
        closed: { type: hook }
      transitions:
        t1: [{ to: round }]
        round: [{ to: review }]
        review:
          - to: note
            conditions: { code: 202 }
          - to: again
            conditions: { match: [{ expected: true, actual: '{review.output.data.more}' }] }
          - to: closed
            conditions: { match: [{ expected: false, actual: '{review.output.data.more}' }] }
      hooks:
        loop.note:
          - to: review
            conditions: { match: [{ expected: '{$job.metadata.jid}', actual: '{$self.hook.data.id}' }] }
`;

test("a pending answer to a hook in a cycle's later pass: its branch reads that pass's records", async (t) => {
  const notes: { text: string; round: number }[] = [];
  let rounds = 0;
  const { node } = await workflowNode(t, 'wf_answer_loop', {
    concurrency: 4,
    jobs: [
      defineJob({ type: 'round', perform: async () => ({ round: ++rounds }) }),
      defineJob<{ text: string; round: number }>({
        type: 'note',
        perform: async (p) => {
          notes.push(p);
          return {};
        },
      }),
    ],
  });
  const wf = app(node.client, 'loop');
  await wf.activate((await wf.deploy(LOOP)).version);
  const id = await wf.pub('loop.start', {});
  const waitingIn = (dimension: string) =>
    until(
      `the review of pass "${dimension}" waits`,
      async () =>
        (await wf.export(id)).activities.some((a) => a.activity === 'review' && a.dimension === dimension && a.state === 'waiting'),
      10_000,
    );
  await waitingIn('');
  await wf.hook('loop.note', { id, text: 'a' }, { status: 'pending' });
  await until('the first note ran', async () => notes.length === 1, 10_000);
  await wf.hook('loop.note', { id, more: true });
  await waitingIn('/1');
  await wf.hook('loop.note', { id, text: 'b' }, { status: 'pending' });
  await until('the second note ran', async () => notes.length === 2, 10_000);
  await wf.hook('loop.note', { id, more: false });
  await until('the workflow finished', async () => (await wf.getStatus(id)) === 0, 10_000);
  t.deepEqual(notes, [
    { text: 'a', round: 1 },
    { text: 'b', round: 2 },
  ]);
  const notesAt = (await wf.export(id)).activities.filter((a) => a.activity === 'note').map((a) => a.dimension);
  t.deepEqual(notesAt.sort(), [',1', '/1,1']);
});
