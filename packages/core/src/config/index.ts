/**
 * Loading a node's configuration: YAML → `${VAR}` interpolation → `PARTITA_*` overrides →
 * schema check (every problem, with file, line and key path, in one ConfigError) → a normalised
 * `PartitaConfig`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { applyEnvOverrides, interpolate, ValueSources } from './env.js';
import { CONFIG_SCHEMA } from './schema.js';
import type { PartitaConfig } from './types.js';
import { formatPath, isPlainObject, walkSchema, type RawProblem } from './walker.js';
import { parseYaml, type PathSegment, type YamlPositions } from './yaml.js';

export { CONFIG_DEFAULTS, CONFIG_LIMITS, CONFIG_SCHEMA, LOG_LEVELS, MAX_TIMER_MS } from './schema.js';
export { ENV_OVERRIDES } from './env.js';
export { redactUrlPassword } from './walker.js';
export type * from './types.js';

export interface ConfigOptions {
  /** Environment for `${VAR}` and the `PARTITA_*` overrides; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory relative paths resolve against; default the config file's directory. */
  baseDir?: string;
}

/** Reads and checks a YAML config file. Rejects with a ConfigError listing every problem. */
export async function loadConfig(path: string, opts: ConfigOptions = {}): Promise<PartitaConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new ConfigError([
      { file: path, path: '', message: `cannot read the config file (${why}); pass the path of a YAML file such as config/partita.yaml` },
    ]);
  }
  return parseConfig(text, path, opts);
}

/**
 * Checks YAML text as if read from `file` (used in messages, and as the base of relative paths).
 * Pure apart from reading `process.env` when `opts.env` is not given.
 */
export function parseConfig(text: string, file: string, opts: ConfigOptions = {}): PartitaConfig {
  const env = opts.env ?? process.env;
  const baseDir = opts.baseDir ?? dirname(resolve(file));
  const parsed = parseYaml(text, file);
  if (!parsed.ok) {
    const { line, column, reason, snippet } = parsed.error;
    const problem: ConfigProblem & { column?: number } = {
      file,
      line,
      column,
      path: '',
      message: `YAML syntax error at line ${line}, column ${column}: ${reason}${snippet ? `\n${snippet.replace(/^/gm, '      ')}` : ''}`,
    };
    throw new ConfigError([problem]);
  }
  const raw = parsed.value;
  if (raw === undefined || raw === null) {
    throw new ConfigError([
      { file, line: 1, path: '', message: 'the file is empty; expected a mapping with at least `partitions:` (see config/partita.yaml)' },
    ]);
  }
  if (!isPlainObject(raw)) {
    throw new ConfigError([
      { file, line: parsed.positions.rootLine, path: '', message: 'expected a mapping of settings (key: value lines) at the top level' },
    ]);
  }
  const sources = new ValueSources();
  const pending: RawProblem[] = [];
  interpolate(raw, env, sources, (path, message) => pending.push({ path, message }));
  return finish(raw, pending, sources, { file, baseDir, env, positions: parsed.positions });
}

/**
 * Checks a programmatic config (e.g. the options of `startNode`): the same rules as the file,
 * without line numbers. The environment is only consulted when `opts.env` is given.
 */
export function validateConfig(obj: unknown, file?: string, opts: ConfigOptions = {}): PartitaConfig {
  const baseDir = opts.baseDir ?? (file !== undefined ? dirname(resolve(file)) : process.cwd());
  if (!isPlainObject(obj)) {
    throw new ConfigError([{ ...(file !== undefined ? { file } : {}), path: '', message: 'expected an object of settings' }]);
  }
  // Job definitions and a persister instance are passed through as they are (identity matters).
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    Object.defineProperty(copy, k, {
      value: k === 'jobs' || k === 'persister' ? v : clonePlain(v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return finish(copy, [], new ValueSources(), { file, baseDir, env: opts.env });
}

function finish(
  raw: Record<string, unknown>,
  pending: RawProblem[],
  sources: ValueSources,
  ctx: { file: string | undefined; baseDir: string; env: NodeJS.ProcessEnv | undefined; positions?: YamlPositions },
): PartitaConfig {
  // Values that failed to interpolate are reported once, not again as wrong types.
  const failed = new Set(pending.map((p) => formatPath(p.path)));
  if (ctx.env) applyEnvOverrides(raw, ctx.env, sources);
  const cwd = process.cwd();
  const result = walkSchema(CONFIG_SCHEMA, raw, {
    baseDir: ctx.baseDir,
    substituted: (path) => sources.isSubstituted(path),
    resolveBaseFor: (path) => (sources.overrideFor(path) !== undefined ? cwd : undefined),
  });
  const all = [...pending, ...result.problems.filter((p) => !failed.has(formatPath(p.path)))];
  if (all.length > 0) {
    const problems = all.map((p) => toProblem(p, raw, sources, ctx));
    // Stable sort by line; problems without a line (from the environment) last.
    problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    throw new ConfigError(problems);
  }
  const config = result.value as PartitaConfig;
  return ctx.positions && ctx.file !== undefined ? { configFile: resolve(ctx.file), ...config } : config;
}

function toProblem(
  p: RawProblem,
  raw: unknown,
  sources: ValueSources,
  ctx: { file: string | undefined; positions?: YamlPositions },
): ConfigProblem {
  const variable = sources.overrideFor(p.path);
  const problem: ConfigProblem = { path: formatPath(p.path), message: p.message };
  if (ctx.file !== undefined) problem.file = ctx.file;
  if (variable !== undefined) problem.message += ` (the value comes from the environment variable ${variable})`;
  else if (ctx.positions) problem.line = ctx.positions.lineOf(raw, p.path as PathSegment[]);
  return problem;
}

/** Copies plain objects and arrays (so overrides never touch the caller's object); keeps anything else as is. */
function clonePlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clonePlain);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      Object.defineProperty(out, k, { value: clonePlain(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}
