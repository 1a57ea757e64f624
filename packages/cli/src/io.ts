/**
 * Where the CLI writes. Data (ids, records, tables, JSON) goes to stdout; progress, notices and
 * errors go to stderr, so `partita jobs --json | jq` and `id=$(partita enqueue …)` stay clean.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal (tables get aligned columns, colours). */
  readonly stdoutTTY: boolean;
  /** stderr is a terminal (progress bars redraw in place). */
  readonly stderrTTY: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly stdin: NodeJS.ReadableStream;
}

export function processIo(): Io {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    stdoutTTY: process.stdout.isTTY === true,
    stderrTTY: process.stderr.isTTY === true,
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
  };
}

export function println(io: Io, line = ''): void {
  io.out(line + '\n');
}

export function eprintln(io: Io, line = ''): void {
  io.err(line + '\n');
}

/** JSON for scripts: one document, pretty when a person is looking, compact when piped. */
export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, jsonReplacer, io.stdoutTTY ? 2 : undefined) + '\n');
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Left-aligned columns; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const useColour = (io: Io) => io.stdoutTTY && !io.env.NO_COLOR;

export function colour(io: Io, code: 'green' | 'red' | 'yellow' | 'dim' | 'bold' | 'cyan', text: string): string {
  if (!useColour(io)) return text;
  const codes = { green: 32, red: 31, yellow: 33, dim: 2, bold: 1, cyan: 36 } as const;
  return `\x1b[${codes[code]}m${text}\x1b[0m`;
}

/** 1234 → "1.2 s", 95 → "95 ms", 3_700_000 → "1 h 1 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

/** A time with how far it is from now: "2026-12-06T07:00:00.000Z (3.2 s ago)", "… (in 1 min 5 s)"; none: "–". */
export function whenFromNow(at: Date | string | null | undefined): string {
  if (at === null || at === undefined) return '–';
  const d = typeof at === 'string' ? new Date(at) : at;
  const ms = d.getTime() - Date.now();
  return `${d.toISOString()} (${ms >= 0 ? `in ${formatDuration(ms)}` : `${formatDuration(-ms)} ago`})`;
}

/** Label/value lines, the values aligned after the longest label. */
export function fields(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** A short, single-line rendering of a JSON value for tables and progress lines. */
export function brief(value: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}
