/**
 * The stage getJobsByKey reports is read from the job's data (the last stage done, which each
 * stage's transition writes) and the flow's definition, not from the activity records: the stage
 * after the last one done, except while a parent stage's children have not all ended.
 */
import test from 'ava';
import { compileFlow, currentStage } from '../src/flows/compile.js';

const flow = compileFlow(
  'stages',
  [
    { name: 'a', nextQueue: 'b' },
    { name: 'b', nextQueue: 'c', children: [{ queue: 'x' }, { queue: 'y' }] },
    { name: 'c' },
    { name: 'x', nextQueue: 'x2' },
    { name: 'x2' },
    { name: 'y' },
  ],
  3600,
);

test('currentStage: the stage after the last one done; a parent stage until its children have all ended', (t) => {
  t.is(currentStage(flow, 'stages', {}, false), 'a', 'before any stage is done: the first');
  t.is(currentStage(flow, 'stages', { stage: 'a' }, false), 'b');
  t.is(currentStage(flow, 'stages', { stage: 'b' }, false), 'b', 'children running');
  t.is(currentStage(flow, 'stages', { stage: 'b', children__x: [] }, false), 'b', 'one child queue still running');
  t.is(currentStage(flow, 'stages', { stage: 'b', children__x: [], children__y: [] }, false), 'c');
  t.is(currentStage(flow, 'stages', { stage: 'c' }, false), 'c', 'the last stage');
  t.is(currentStage(flow, 'stages', { stage: 'a' }, true), 'a', 'ended: the last stage done');
  t.is(currentStage(flow, 'stages.x', {}, false), 'x', "a child chain's first queue");
  t.is(currentStage(flow, 'stages.x', { stage: 'x' }, false), 'x2');
  t.is(currentStage(flow, 'stages.y', { stage: 'y' }, true), 'y');
});
