import { InvalidSpecError } from './errors.js';
import { validShutdownMs } from './internals.js';
import type { Behavior, ChildSpec, SupervisorSpec } from './types.js';

const STRATEGIES = new Set(['one_for_one', 'one_for_all', 'rest_for_one']);
const RESTARTS = new Set(['permanent', 'transient', 'temporary']);

export const DEFAULT_INTENSITY = 3;
export const DEFAULT_PERIOD_MS = 5000;
export const DEFAULT_SHUTDOWN_MS = 5000;

export function isBehavior(value: unknown): value is Behavior {
  return typeof value === 'object' && value !== null && typeof (value as Behavior).handle === 'function';
}

export function isSupervisorSpec(value: unknown): value is SupervisorSpec {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SupervisorSpec).strategy === 'string' &&
    Array.isArray((value as SupervisorSpec).children)
  );
}

export function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidSpecError(`${what} must be a non-empty string, got ${JSON.stringify(name) ?? String(name)}`);
  }
}

export function checkChildSpec(spec: ChildSpec, supervisor: string): void {
  if (typeof spec !== 'object' || spec === null) {
    throw new InvalidSpecError(`a child spec of supervisor "${supervisor}" is not an object; pass { id, start }`);
  }
  // The messages are built only on failure: a dynamic supervisor checks one spec per job it runs.
  if (typeof spec.id !== 'string' || spec.id === '') checkName(spec.id, `child id in supervisor "${supervisor}"`);
  if (typeof spec.start !== 'function') {
    throw new InvalidSpecError(`${childWhere(spec, supervisor)}: start must be a function returning a behavior or a supervisor spec`);
  }
  if (spec.restart !== undefined && !RESTARTS.has(spec.restart)) {
    throw new InvalidSpecError(
      `${childWhere(spec, supervisor)}: restart must be 'permanent', 'transient' or 'temporary', got ${JSON.stringify(spec.restart)}`,
    );
  }
  if (spec.shutdownMs !== undefined && !validShutdownMs(spec.shutdownMs)) {
    throw new InvalidSpecError(
      `${childWhere(spec, supervisor)}: shutdownMs must be a number >= 0 or Infinity, got ${String(spec.shutdownMs)}`,
    );
  }
  if (spec.name !== undefined && (typeof spec.name !== 'string' || spec.name === ''))
    checkName(spec.name, `${childWhere(spec, supervisor)}: name`);
}

function childWhere(spec: ChildSpec, supervisor: string): string {
  return `child "${spec.id}" of supervisor "${supervisor}"`;
}

export function checkSupervisorSpec(spec: SupervisorSpec, supervisor: string): void {
  if (!isSupervisorSpec(spec)) {
    throw new InvalidSpecError(`supervisor "${supervisor}": the spec must be { strategy, children: [...] }`);
  }
  if (!STRATEGIES.has(spec.strategy)) {
    throw new InvalidSpecError(
      `supervisor "${supervisor}": strategy must be 'one_for_one', 'one_for_all' or 'rest_for_one', got ${JSON.stringify(spec.strategy)}`,
    );
  }
  if (spec.intensity !== undefined && !(Number.isInteger(spec.intensity) && spec.intensity >= 0)) {
    throw new InvalidSpecError(`supervisor "${supervisor}": intensity must be an integer >= 0, got ${String(spec.intensity)}`);
  }
  if (spec.periodMs !== undefined && !(Number.isFinite(spec.periodMs) && spec.periodMs > 0)) {
    throw new InvalidSpecError(`supervisor "${supervisor}": periodMs must be a finite number > 0, got ${String(spec.periodMs)}`);
  }
  const ids = new Set<string>();
  for (const child of spec.children) {
    checkChildSpec(child, supervisor);
    if (ids.has(child.id)) {
      throw new InvalidSpecError(`supervisor "${supervisor}": two children have the id "${child.id}"; child ids must be unique`);
    }
    ids.add(child.id);
  }
}
