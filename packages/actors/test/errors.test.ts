import test from 'ava';
import {
  ActorCrashedError,
  ActorStoppedError,
  ActorSystemError,
  ChildStartError,
  DuplicateChildError,
  InvalidSpecError,
  NameTakenError,
  SupervisorGaveUpError,
  SystemStoppedError,
  TimeoutError,
} from '@partita/actors';

test('TimeoutError(what, timeoutMs): the shape @partita/core re-exports', (t) => {
  const err = new TimeoutError('waiting for the lease', 250);
  t.true(err instanceof Error);
  t.true(err instanceof ActorSystemError);
  t.is(err.name, 'TimeoutError');
  t.is(err.code, 'TIMEOUT');
  t.is(err.what, 'waiting for the lease');
  t.is(err.timeoutMs, 250);
  t.is(err.message, 'waiting for the lease did not finish within 250 ms; raise timeoutMs or check that the other side is alive');
  t.true(typeof err.stack === 'string' && err.stack.includes('TimeoutError'));
});

test('every error has a stable code, its class name, and a message that says what to do', (t) => {
  const cause = new Error('disk full');
  const cases: [ActorSystemError, string, string, RegExp][] = [
    [new ActorCrashedError('engine', cause), 'ActorCrashedError', 'ACTOR_CRASHED', /crashed .*: disk full; .*retry only if/],
    [
      new ActorStoppedError('engine', 'normal'),
      'ActorStoppedError',
      'ACTOR_STOPPED',
      /"engine" is not running \(reason: normal\); .*retry/,
    ],
    [new NameTakenError('g'), 'NameTakenError', 'NAME_TAKEN', /pick another name/],
    [
      new SupervisorGaveUpError('s', 3, 5000, 'c', cause),
      'SupervisorGaveUpError',
      'SUPERVISOR_GAVE_UP',
      /more than 3 restarts within 5000 ms.*fix/,
    ],
    [new ChildStartError('s', 'c', cause), 'ChildStartError', 'CHILD_START_FAILED', /failed to start: disk full; .*fix/],
    [new DuplicateChildError('s', 'c'), 'DuplicateChildError', 'DUPLICATE_CHILD', /unique id.*terminateChild/],
    [new InvalidSpecError('bad'), 'InvalidSpecError', 'INVALID_SPEC', /bad/],
    [new SystemStoppedError('x'), 'SystemStoppedError', 'SYSTEM_STOPPED', /create a new system/],
  ];
  for (const [err, name, code, message] of cases) {
    t.true(err instanceof Error, name);
    t.is(err.name, name);
    t.is(err.code, code);
    t.regex(err.message, message);
  }
  t.is(new ActorCrashedError('a', cause).cause, cause);
  t.is(new ChildStartError('s', 'c', cause).cause, cause);
  t.is(new SupervisorGaveUpError('s', 1, 10, 'c', cause).cause, cause);
  t.is(new ActorStoppedError('a', cause).cause, cause, 'an Error reason is also the cause');
  t.is(new ActorStoppedError('a', 'normal').reason, 'normal');
});

test('messages describe non-Error causes readably', (t) => {
  t.regex(new ActorCrashedError('a', { code: 42 }).message, /\{"code":42\}/);
  t.regex(new ActorCrashedError('a', 'plain string').message, /: plain string;/);
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  t.notThrows(() => new ActorCrashedError('a', circular));
  t.regex(new SupervisorGaveUpError('s', 1, 10, 'c', undefined).message, /more than 1 restart within 10 ms/);
});
