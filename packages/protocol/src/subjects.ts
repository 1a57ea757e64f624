/**
 * Subject names. Every Partita subject lives under `partita.<cluster>.`; the helpers here are the
 * only place that spells them, so a typo cannot split the cluster into two that never hear each
 * other. Tokens that must be literals (cluster, partition, queue, job type, ...) are validated:
 * a space, a `.` or a wildcard inside one would silently change which subscribers match.
 *
 * Layout:
 *   partita.<c>.wake.<partition>.<queue>                       enqueue wake-ups
 *   partita.<c>.idle.<partition>.<queue>                       an engine with nothing to do
 *   partita.<c>.event.<partition>.<queue>.<type>.<kind>        job events
 *   partita.<c>.global.<partition>                             Global request/reply
 *   partita.<c>.rollcall                                       roll call (gather)
 *   partita.<c>.throttle                                       throttle broadcasts
 *   partita.<c>.pause.<partition>                              pause / resume
 *   partita.<c>.cancel.<partition>                             kill running jobs
 *   partita.<c>.node.<nodeId>                                  messages to one node
 *   partita.<c>.quorum.<topic...>                              user raw messages (pubQuorum/subQuorum)
 *   partita.<c>.action.<kind>                                  dashboard actions (audit events)
 *   partita.<c>.wf.rollcall | wf.activate | wf.activations      workflow version activation
 */
import { ValidationError } from '@partita/core';

export const SUBJECT_ROOT = 'partita';
/** Longest literal token accepted; NATS has no such limit, but a 300-character queue name is a bug. */
export const MAX_TOKEN_LENGTH = 256;

// Whitespace of any kind and control characters end a subject on the NATS wire protocol.
// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\s\u0000-\u001f\u007f]/u;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : `a ${value === null ? 'null' : typeof value}`;
}

/** Why `value` is not usable as a literal subject token, or undefined when it is. */
export function tokenProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_TOKEN_LENGTH) return `must be at most ${MAX_TOKEN_LENGTH} characters`;
  if (BAD_CHARS.test(value)) return `${describe(value)} contains whitespace or a control character`;
  if (value.includes('.')) return `${describe(value)} contains "." (it would split into several subject tokens)`;
  if (value.includes('*') || value.includes('>')) return `${describe(value)} contains a NATS wildcard ("*" or ">")`;
  return undefined;
}

/** Returns `value` when it is a valid literal token, otherwise throws ValidationError naming `what`. */
export function validateToken(value: unknown, what = 'subject token'): string {
  const problem = tokenProblem(value);
  if (problem) throw new ValidationError(`${what} ${problem}; use letters, digits, "-" or "_"`, what);
  return value as string;
}

/** Why `subject` is not a valid literal subject (what you publish to), or undefined. */
export function subjectProblem(subject: unknown): string | undefined {
  if (typeof subject !== 'string') return `must be a string, got ${describe(subject)}`;
  if (subject.length === 0) return 'must not be empty';
  const tokens = subject.split('.');
  for (const t of tokens) {
    if (t.length === 0) return `${describe(subject)} has an empty token (leading, trailing or doubled ".")`;
    if (BAD_CHARS.test(t)) return `${describe(subject)} contains whitespace or a control character`;
    if (t.includes('*') || t.includes('>')) return `${describe(subject)} contains a wildcard; publish to a literal subject`;
  }
  return undefined;
}

/** Why `pattern` is not a valid subscription pattern, or undefined. `*` = one token, `>` = one or more, last only. */
export function patternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return `must be a string, got ${describe(pattern)}`;
  if (pattern.length === 0) return 'must not be empty';
  const tokens = pattern.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.length === 0) return `${describe(pattern)} has an empty token (leading, trailing or doubled ".")`;
    if (BAD_CHARS.test(t)) return `${describe(pattern)} contains whitespace or a control character`;
    if (t === '>') {
      if (i !== tokens.length - 1) return `${describe(pattern)} has ">" before the last token; ">" matches the rest and must come last`;
      continue;
    }
    if (t === '*') continue;
    if (t.includes('*') || t.includes('>')) {
      return `${describe(pattern)} has a wildcard inside the token "${t}"; wildcards must be whole tokens ("a.*.c", "a.>")`;
    }
  }
  return undefined;
}

export function validateSubject(subject: unknown, what = 'subject'): string {
  const problem = subjectProblem(subject);
  if (problem) throw new ValidationError(`${what} ${problem}`, what);
  return subject as string;
}

export function validatePattern(pattern: unknown, what = 'subject pattern'): string {
  const problem = patternProblem(pattern);
  if (problem) throw new ValidationError(`${what} ${problem}`, what);
  return pattern as string;
}

export function isValidSubject(subject: unknown): subject is string {
  return subjectProblem(subject) === undefined;
}
export function isValidPattern(pattern: unknown): pattern is string {
  return patternProblem(pattern) === undefined;
}

/**
 * NATS subject matching: tokens compare literally, `*` matches exactly one token, a final `>`
 * matches one or more tokens. Both arguments are assumed valid.
 */
export function matchSubject(pattern: string, subject: string): boolean {
  return matchTokens(pattern.split('.'), subject.split('.'));
}

/** Same as matchSubject on pre-split tokens (the in-process broker caches the split pattern). */
export function matchTokens(pattern: readonly string[], subject: readonly string[]): boolean {
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return subject.length === n;
}

function base(cluster: string): string {
  return `${SUBJECT_ROOT}.${validateToken(cluster, 'cluster')}`;
}

/** `partita.<cluster>.wake.<partition>.<queue>` — published after enqueue so idle workers claim at once. */
export function wake(cluster: string, partition: string, queue: string): string {
  return `${base(cluster)}.wake.${validateToken(partition, 'partition')}.${validateToken(queue, 'queue')}`;
}

/** `partita.<cluster>.idle.<partition>.<queue>` — an engine idle for this queue: clients may hand it jobs. */
export function idle(cluster: string, partition: string, queue: string): string {
  return `${base(cluster)}.idle.${validateToken(partition, 'partition')}.${validateToken(queue, 'queue')}`;
}

/** `partita.<cluster>.event.<partition>.<queue>.<type>.<kind>` — job events (completed, failed, progress, ...). */
export function event(cluster: string, partition: string, queue: string, type: string, kind: string): string {
  return (
    `${base(cluster)}.event.${validateToken(partition, 'partition')}.${validateToken(queue, 'queue')}` +
    `.${validateToken(type, 'job type')}.${validateToken(kind, 'event kind')}`
  );
}

/** `partita.<cluster>.global.<partition>` — request/reply to the partition's Global actor (the lease holder). */
export function global(cluster: string, partition: string): string {
  return `${base(cluster)}.global.${validateToken(partition, 'partition')}`;
}

/** `partita.<cluster>.rollcall` — every node answers a gather with its profile. */
export function rollCall(cluster: string): string {
  return `${base(cluster)}.rollcall`;
}

/** `partita.<cluster>.throttle` — throttle broadcasts (targets are in the payload). */
export function throttle(cluster: string): string {
  return `${base(cluster)}.throttle`;
}

/** `partita.<cluster>.pause.<partition>` — pause/resume broadcasts for a partition's queues. */
export function pause(cluster: string, partition: string): string {
  return `${base(cluster)}.pause.${validateToken(partition, 'partition')}`;
}

/** `partita.<cluster>.cancel.<partition>` — kill running jobs of a partition, wherever they run. */
export function cancel(cluster: string, partition: string): string {
  return `${base(cluster)}.cancel.${validateToken(partition, 'partition')}`;
}

/** `partita.<cluster>.node.<nodeId>` — messages addressed to a single node. */
export function node(cluster: string, nodeId: string): string {
  return `${base(cluster)}.node.${validateToken(nodeId, 'node id')}`;
}

/**
 * `partita.<cluster>.quorum.<topic>` — user raw messages (HotMesh pubQuorum/subQuorum style).
 * The topic may have several dot-separated tokens (`orders.created`); each must be a literal.
 */
export function quorum(cluster: string, topic: string): string {
  if (typeof topic !== 'string' || topic.length === 0) validateToken(topic, 'quorum topic');
  topic.split('.').forEach((t, i) => validateToken(t, `quorum topic token ${i + 1}`));
  return `${base(cluster)}.quorum.${topic}`;
}

/**
 * `partita.<cluster>.action.<kind>` — an action a person took through the dashboard (retry, pause,
 * interrupt, ...), for audit trails and anyone who reacts to operators.
 */
export function action(cluster: string, kind: string): string {
  return `${base(cluster)}.action.${validateToken(kind, 'action kind')}`;
}

// ---------------------------------------------------------------- patterns (for subscribe)

const ANY = '*';

function patternToken(value: string | undefined, what: string): string {
  return value === undefined || value === ANY ? ANY : validateToken(value, what);
}

/** Pattern over wake subjects; omitted (or `*`) parts match any partition/queue. */
export function wakePattern(cluster: string, partition?: string, queue?: string): string {
  return `${base(cluster)}.wake.${patternToken(partition, 'partition')}.${patternToken(queue, 'queue')}`;
}

/** Pattern over idle subjects of a partition (every queue). */
export function idlePattern(cluster: string, partition: string): string {
  return `${base(cluster)}.idle.${validateToken(partition, 'partition')}.*`;
}

export interface EventFilter {
  partition?: string;
  queue?: string;
  type?: string;
  kind?: string;
}

/**
 * Pattern over job-event subjects. Either a filter (omitted parts, or `*`, match anything) or a
 * NATS pattern relative to `partita.<cluster>.event.` such as `billing.>` or `*.*.email.failed`.
 */
export function eventPattern(cluster: string, filter: EventFilter | string = {}): string {
  if (typeof filter === 'string') {
    validatePattern(filter, 'event pattern');
    if (filter.split('.').length > 4) {
      throw new ValidationError(
        `event pattern "${filter}" has more than 4 tokens; events are <partition>.<queue>.<type>.<kind>`,
        'event pattern',
      );
    }
    return `${base(cluster)}.event.${filter}`;
  }
  return (
    `${base(cluster)}.event.${patternToken(filter.partition, 'partition')}.${patternToken(filter.queue, 'queue')}` +
    `.${patternToken(filter.type, 'job type')}.${patternToken(filter.kind, 'event kind')}`
  );
}

/** Pattern over quorum topics: a NATS pattern relative to `partita.<cluster>.quorum.` (default `>`: all). */
export function quorumPattern(cluster: string, topicPattern = '>'): string {
  validatePattern(topicPattern, 'quorum topic pattern');
  return `${base(cluster)}.quorum.${topicPattern}`;
}

/** `partita.<cluster>.>` — everything of a cluster (diagnostics). */
export function clusterPattern(cluster: string): string {
  return `${base(cluster)}.>`;
}

export interface EventSubject {
  cluster: string;
  partition: string;
  queue: string;
  type: string;
  kind: string;
}

/** Splits an event subject back into its parts; undefined when it is not one. */
export function parseEvent(subject: string): EventSubject | undefined {
  const t = subject.split('.');
  if (t.length !== 7 || t[0] !== SUBJECT_ROOT || t[2] !== 'event') return undefined;
  return { cluster: t[1]!, partition: t[3]!, queue: t[4]!, type: t[5]!, kind: t[6]! };
}

/** Splits a wake subject back into its parts; undefined when it is not one. */
export function parseWake(subject: string): { cluster: string; partition: string; queue: string } | undefined {
  const t = subject.split('.');
  if (t.length !== 5 || t[0] !== SUBJECT_ROOT || t[2] !== 'wake') return undefined;
  return { cluster: t[1]!, partition: t[3]!, queue: t[4]! };
}

/** Splits an idle subject back into its parts; undefined when it is not one. */
export function parseIdle(subject: string): { cluster: string; partition: string; queue: string } | undefined {
  const t = subject.split('.');
  if (t.length !== 5 || t[0] !== SUBJECT_ROOT || t[2] !== 'idle') return undefined;
  return { cluster: t[1]!, partition: t[3]!, queue: t[4]! };
}

/** Splits a quorum subject into cluster and topic; undefined when it is not one. */
export function parseQuorum(subject: string): { cluster: string; topic: string } | undefined {
  const t = subject.split('.');
  if (t.length < 4 || t[0] !== SUBJECT_ROOT || t[2] !== 'quorum') return undefined;
  return { cluster: t[1]!, topic: t.slice(3).join('.') };
}

// ---------------------------------------------------------------- workflows

/**
 * Workflow subjects live under `partita.<cluster>.wf.`. Control subjects of version activation have
 * exactly one token after `wf` (`wf.rollcall`, `wf.activate`, `wf.activations`); an app's own subjects
 * (`wf.<app>.<topic…>`, outputs and emitted data) always have at least two, so neither can match the
 * other whatever an app is called.
 */

/** `partita.<cluster>.wf.rollcall` — activation roll call (gather): every node running workflows answers. */
export function wfRollCall(cluster: string): string {
  return `${base(cluster)}.wf.rollcall`;
}

/** `partita.<cluster>.wf.activate` — an activation's `nocache`, `activated` and `abandon` notices (gathered for acks). */
export function wfActivate(cluster: string): string {
  return `${base(cluster)}.wf.activate`;
}

/** `partita.<cluster>.wf.activations` — which activations are under way (gather): every running activator answers. */
export function wfActivations(cluster: string): string {
  return `${base(cluster)}.wf.activations`;
}

/** Pattern over dashboard action events; omitted (or `*`) kind matches every action. */
export function actionPattern(cluster: string, kind?: string): string {
  return `${base(cluster)}.action.${patternToken(kind, 'action kind')}`;
}
