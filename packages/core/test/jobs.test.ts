import test from 'ava';
import {
  FINISHED_JOB_STATES,
  JOB_STATES,
  LIVE_JOB_STATES,
  isFinishedJobState,
  isJobState,
  statusOf,
  STATUS_PENDING,
} from '../src/index.js';

test('the job states: live and finished, each once', (t) => {
  t.deepEqual([...JOB_STATES], [...LIVE_JOB_STATES, ...FINISHED_JOB_STATES]);
  t.is(new Set(JOB_STATES).size, JOB_STATES.length);
  for (const state of JOB_STATES) t.true(isJobState(state));
  for (const bad of ['done', 'Queued', '', null, undefined, 3]) t.false(isJobState(bad), String(bad));
});

test('isFinishedJobState is true for exactly the finished states', (t) => {
  for (const state of FINISHED_JOB_STATES) t.true(isFinishedJobState(state));
  for (const state of LIVE_JOB_STATES) {
    t.false(isFinishedJobState(state));
    if (state !== 'running') t.is(statusOf({ state, attempts: 0 }), STATUS_PENDING);
  }
});
