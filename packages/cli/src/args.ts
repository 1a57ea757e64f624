/**
 * Command-line parsing on node's util.parseArgs, plus the help text generated from the same
 * option table, so `--help` can never disagree with what is accepted.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, e.g. FILE. */
  arg?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments as shown in the usage line, e.g. `<partition> <type> [payload-json]`. */
  args?: string;
  /** Paragraphs after the usage line. */
  description?: string;
  options: Record<string, OptionSpec>;
  examples?: string[];
}

/** Options every command has. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  json: { type: 'boolean', help: 'machine-readable JSON on stdout (errors as JSON on stderr)' },
};

/** Options of every command that talks to a cluster. */
export const CONNECTION_OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: 'string',
    short: 'c',
    arg: 'FILE',
    help: 'node config file to take the connection from (default $PARTITA_CONFIG, ./partita.yaml, ./config/partita.yaml)',
  },
  postgres: { type: 'string', arg: 'URL', help: 'Postgres URL (overrides the config file; default $PARTITA_POSTGRES_URL)' },
  schema: { type: 'string', arg: 'NAME', help: "Postgres schema of Partita's tables (default from the config, else partita)" },
  nats: { type: 'string', arg: 'URLS', help: 'NATS servers, comma-separated (overrides the config file); "false" for none' },
  cluster: { type: 'string', arg: 'NAME', help: 'cluster name (overrides the config file)' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

const NEGATIVE_NUMBER = /^-\d+(\.\d+)?$/;
const NEG_MARK = '\u0000neg:';

export function parse(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  // parseArgs takes "-1" for an option: give negative numbers to the option before them
  // (`--ms -1` → `--ms=-1`), or keep them as positionals (`throttle -1`).
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const prev = args[args.length - 1];
    const prevName = prev?.startsWith('--') && !prev.includes('=') ? prev.slice(2) : undefined;
    if (NEGATIVE_NUMBER.test(a)) {
      if (prevName && options[prevName]?.type === 'string') args[args.length - 1] = `${prev}=${a}`;
      else args.push(NEG_MARK + a);
    } else {
      args.push(a);
    }
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    let message = e.message.split('\n')[0]!;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) message = `unknown option ${unknown[1]}`;
    throw new UsageError(message, spec.name);
  }
  const positionals = parsed.positionals.map((p) => (p.startsWith(NEG_MARK) ? p.slice(NEG_MARK.length) : p));
  return { values: parsed.values as Parsed['values'], positionals };
}

export function helpText(spec: CommandSpec): string {
  const lines: string[] = [];
  lines.push(`Usage: partita ${spec.name}${spec.args ? ' ' + spec.args : ''} [options]`, '', spec.summary);
  if (spec.description) lines.push('', spec.description.trim());
  lines.push('', 'Options:');
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    return [flag, o.help + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)));
  for (const [flag, help] of rows) {
    if (flag.length > width) lines.push(`  ${flag}`, `  ${' '.repeat(width)}  ${help}`);
    else lines.push(`  ${flag.padEnd(width)}  ${help}`);
  }
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

// ---- value parsers ----------------------------------------------------------------------------

export function str(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(values: Parsed['values'], name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function flag(values: Parsed['values'], name: string): boolean {
  return values[name] === true;
}

export function int(
  value: string | undefined,
  what: string,
  command: string,
  opts: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new UsageError(`${what} must be a whole number, got "${value}"`, command);
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`${what} must be at least ${opts.min}, got ${n}`, command);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`${what} must be at most ${opts.max}, got ${n}`, command);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1500" (ms), "1.5s", "10m", "2h", "1d" → milliseconds. */
export function duration(value: string | undefined, what: string, command: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$/.exec(value);
  if (!m) throw new UsageError(`${what} must be a duration such as 1500 (ms), 30s, 5m, 2h; got "${value}"`, command);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

/** An ISO date/time ("2030-01-01T09:00:00Z"), or a relative "+10m". */
export function date(value: string | undefined, what: string, command: string): Date | undefined {
  if (value === undefined) return undefined;
  if (value.startsWith('+')) return new Date(Date.now() + duration(value.slice(1), what, command)!);
  const d = new Date(value);
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`${what} must be an ISO date-time such as 2030-01-01T09:00:00Z (or +10m); got "${value}"`, command);
  return d;
}

/** `--lookup k=v` repeated → { k: v } (a key given twice collects an array). */
export function lookups(values: string[], command: string): Record<string, string | string[]> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string | string[]> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--lookup takes key=value, got "${item}"`, command);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export function json(value: string, what: string, command: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new UsageError(`${what} must be JSON (e.g. '{"invoice": 42}'): ${(err as Error).message}`, command);
  }
}
