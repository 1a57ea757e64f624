/**
 * The environment's part in a config: `${VAR}` references inside string values, and the
 * `PARTITA_*` variables that override secrets and endpoints (so one file serves every
 * environment and secrets stay out of it).
 */
import { formatPath, isPlainObject } from './walker.js';
import type { PathSegment } from './yaml.js';

type Env = NodeJS.ProcessEnv;
type Obj = Record<string, unknown>;

/** Remembers which values came from the environment, for messages and for string → number conversion. */
export class ValueSources {
  private readonly overrides = new Map<string, string>();
  private readonly interpolated = new Set<string>();

  setOverride(path: readonly PathSegment[], variable: string): void {
    this.overrides.set(formatPath(path), variable);
  }

  setInterpolated(path: readonly PathSegment[]): void {
    this.interpolated.add(formatPath(path));
  }

  /** The `PARTITA_*` variable that set this path or one of its parents. */
  overrideFor(path: readonly PathSegment[]): string | undefined {
    for (let n = path.length; n > 0; n--) {
      const found = this.overrides.get(formatPath(path.slice(0, n)));
      if (found !== undefined) return found;
    }
    return undefined;
  }

  isSubstituted(path: readonly PathSegment[]): boolean {
    return this.overrideFor(path) !== undefined || this.interpolated.has(formatPath(path));
  }
}

// ---- ${VAR} interpolation -------------------------------------------------------------------------------

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string value (not in keys), in place.
 * `$${` stands for a literal `${`. An unset variable without a default is a problem at the
 * value's key path.
 */
export function interpolate(root: unknown, env: Env, sources: ValueSources, report: (path: PathSegment[], message: string) => void): void {
  const visit = (container: Obj | unknown[], key: string | number, path: PathSegment[]): void => {
    const value = (container as Record<string | number, unknown>)[key];
    if (typeof value === 'string') {
      if (!value.includes('$')) return;
      const r = interpolateString(value, env);
      for (const m of r.problems) report(path, m);
      if (r.value !== value) {
        (container as Record<string | number, unknown>)[key] = r.value;
        sources.setInterpolated(path);
      }
    } else if (Array.isArray(value)) {
      value.forEach((_, i) => visit(value, i, [...path, i]));
    } else if (isPlainObject(value)) {
      for (const k of Object.keys(value)) visit(value, k, [...path, k]);
    }
  };
  const holder = { root };
  visit(holder, 'root', []);
}

export function interpolateString(text: string, env: Env): { value: string; problems: string[] } {
  const problems: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '$' && text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (ch === '$' && text[i + 1] === '{') {
      const end = text.indexOf('}', i + 2);
      if (end === -1) {
        problems.push(`unterminated "\${" in the value; write \${NAME} or \${NAME:-default}, or $\${ for a literal "\${"`);
        out += text.slice(i);
        break;
      }
      const expr = text.slice(i + 2, end);
      const m = REFERENCE.exec(expr);
      if (!m) {
        problems.push(
          `bad reference "\${${expr}}"; write \${NAME} or \${NAME:-default} (NAME: letters, digits, "_"), or $\${ for a literal "\${"`,
        );
      } else {
        const [, name, fallback] = m as unknown as [string, string, string | undefined];
        const v = env[name];
        if (fallback !== undefined && (v === undefined || v === '')) out += fallback;
        else if (v === undefined)
          problems.push(
            `environment variable ${name} is not set (referenced as \${${name}}); set it, or give a default: \${${name}:-value}`,
          );
        else out += v;
      }
      i = end + 1;
    } else {
      out += ch;
      i++;
    }
  }
  return { value: out, problems };
}

// ---- PARTITA_* overrides --------------------------------------------------------------------------------

/** Gets `root[key]` as a mapping, first rewriting a shorthand (URL string, list, false, null) to one. */
function section(root: Obj, key: string, long: (v: unknown) => Obj): Obj {
  const current = root[key];
  if (isPlainObject(current)) return current;
  const made = long(current);
  root[key] = made;
  return made;
}

const pgLong = (v: unknown): Obj => (typeof v === 'string' ? { url: v } : {});
const natsLong = (v: unknown): Obj => (typeof v === 'string' || Array.isArray(v) ? { servers: v } : {});
const empty = (): Obj => ({});
/** NATS credentials only apply when NATS is on (in the file or through PARTITA_NATS_URL). */
const natsIfOn = (root: Obj): Obj | undefined =>
  root.nats === undefined || root.nats === null || root.nats === false ? undefined : section(root, 'nats', natsLong);

export interface EnvOverride {
  variable: string;
  /** The key path it sets. */
  path: readonly string[];
  doc: string;
  /** Sets the value; returns false when it does not apply. */
  apply(root: Obj, value: string): boolean | void;
}

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { variable: 'PARTITA_CLUSTER', path: ['cluster'], doc: 'cluster name', apply: (r, v) => void (r.cluster = v) },
  {
    variable: 'PARTITA_POSTGRES_URL',
    path: ['postgres', 'url'],
    doc: 'Postgres URL; replaces the whole endpoint (host, port, user, password, database) of the file',
    apply(r, v) {
      const pg = section(r, 'postgres', pgLong);
      for (const k of ['host', 'port', 'user', 'password', 'database']) delete pg[k];
      pg.url = v;
    },
  },
  {
    variable: 'PARTITA_POSTGRES_PASSWORD',
    path: ['postgres', 'password'],
    doc: 'Postgres password (replaces the one in the URL); ignored for the embedded server',
    apply(r, v) {
      if (r.postgres === undefined || r.postgres === null) return false;
      section(r, 'postgres', pgLong).password = v;
    },
  },
  {
    variable: 'PARTITA_NATS_URL',
    path: ['nats', 'servers'],
    doc: 'NATS server URLs, comma-separated; turns NATS on',
    apply: (r, v) => void (section(r, 'nats', natsLong).servers = v),
  },
  ...(['user', 'pass', 'token'] as const).map(
    (key): EnvOverride => ({
      variable: `PARTITA_NATS_${key.toUpperCase()}`,
      path: ['nats', key],
      doc: `NATS ${key}; ignored when NATS is off`,
      apply(r, v) {
        const n = natsIfOn(r);
        if (!n) return false;
        n[key] = v;
      },
    }),
  ),
  {
    variable: 'PARTITA_DATA_DIR',
    path: ['dataDir'],
    doc: 'data directory (relative to the working directory)',
    apply: (r, v) => void (r.dataDir = v),
  },
  {
    variable: 'PARTITA_HTTP_PORT',
    path: ['http', 'port'],
    doc: 'health/metrics port; turns the server on',
    apply: (r, v) => void (section(r, 'http', empty).port = v),
  },
  { variable: 'PARTITA_LOG_LEVEL', path: ['log', 'level'], doc: 'log level', apply: (r, v) => void (section(r, 'log', empty).level = v) },
];

/** Applies the `PARTITA_*` variables that are set and not empty, in place. */
export function applyEnvOverrides(root: Obj, env: Env, sources: ValueSources): void {
  for (const o of ENV_OVERRIDES) {
    const value = env[o.variable];
    if (value === undefined || value === '') continue;
    if (o.apply(root, value) !== false) sources.setOverride(o.path, o.variable);
  }
}
