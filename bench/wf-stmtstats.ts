/**
 * Per-statement backend CPU from `log_statement_stats` (issue 18): sums the server log's PARSE / BIND /
 * EXECUTE / QUERY STATISTICS entries of one database, from a byte offset on, per message and statement,
 * and prints µs per workflow (user + system). The database needs `ALTER DATABASE D SET
 * log_statement_stats = on; ALTER DATABASE D SET log_min_error_statement = log` (the statement follows
 * each entry); Partita's pools set libpq options, so PGOPTIONS does not reach them.
 *
 *   off=$(stat -c %s LOG); <run against …/D>; npx tsx bench/wf-stmtstats.ts LOG D $off WORKFLOWS
 *
 * A statement is named by its first line that is not a comment (ops start with comments), cut to 70
 * characters, or by its op when the text names one of packages/{workflows,postgres}/sql/ops (the
 * rendered op text minus its `{{…}}` parts is matched by its first comment line).
 */
import { openSync, readSync, fstatSync, readdirSync, readFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';

const [logPath, db, offArg, nArg] = process.argv.slice(2);
if (!logPath || !db) {
  process.stderr.write('usage: wf-stmtstats.ts LOG DATABASE [OFFSET] [WORKFLOWS]\n');
  process.exit(2);
}
const offset = Number(offArg ?? 0);
const per = Number(nArg ?? 1);

const fd = openSync(logPath, 'r');
const size = fstatSync(fd).size;
const buf = Buffer.alloc(size - offset);
readSync(fd, buf, 0, buf.length, offset);
closeSync(fd);
const text = buf.toString('utf8');

// Each op's first comment line names it (most ops open with a `-- plan:` line, then a description).
const root = new URL('..', import.meta.url).pathname;
const opByLine = new Map<string, string>();
for (const pkg of ['workflows', 'postgres']) {
  const dir = join(root, 'packages', pkg, 'sql', 'ops');
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.sql')) continue;
    const first = readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('--') && !l.startsWith('-- plan:'));
    if (first) opByLine.set(first.trim(), f.replace(/\.sql$/, ''));
  }
}
const nameOf = (sql: string): string => {
  const lines = sql.split('\n').map((l) => l.trim());
  for (const l of lines)
    if (l.startsWith('--') && !l.startsWith('-- plan:')) {
      const op = opByLine.get(l);
      if (op) return op;
      break;
    }
  const first = lines.find((l) => l !== '' && !l.startsWith('--')) ?? '';
  return first.slice(0, 70);
};

// Entries: a LOG line "<kind> STATISTICS", a DETAIL with "! U s user, S s system", then (maybe) STATEMENT.
const prefix = /^\d{4}-\d\d-\d\d [\d:.]+ UTC \[(\d+)\] (\S*)@(\S*) (LOG|DETAIL|STATEMENT|ERROR|WARNING):  ?(.*)$/;
const lines = text.split('\n');
const sums = new Map<string, { n: number; us: number }>();
let total = 0;
let pending: { kind: string; us: number } | undefined;
const flush = (sql: string | undefined) => {
  if (!pending) return;
  const key = `${pending.kind.padEnd(8)} ${sql === undefined ? '(no statement)' : nameOf(sql)}`;
  const e = sums.get(key) ?? { n: 0, us: 0 };
  e.n++;
  e.us += pending.us;
  sums.set(key, e);
  total += pending.us;
  pending = undefined;
};
for (let i = 0; i < lines.length; i++) {
  const m = prefix.exec(lines[i]!);
  if (!m || m[3] !== db) continue;
  if (m[4] === 'LOG') {
    const k = /^(\w+)(?: MESSAGE)? STATISTICS$/.exec(m[5]!);
    if (!k) continue;
    flush(undefined);
    // The usage line follows the DETAIL line.
    const usage = /([\d.]+) s user, ([\d.]+) s system/.exec(lines[i + 2] ?? '');
    if (!usage) continue;
    pending = { kind: k[1]!, us: (Number(usage[1]) + Number(usage[2])) * 1e6 };
  } else if (m[4] === 'STATEMENT' && pending) {
    const sql = [m[5]!];
    for (let j = i + 1; j < lines.length && !prefix.test(lines[j]!); j++) sql.push(lines[j]!);
    flush(sql.join('\n'));
  }
}
flush(undefined);
const rows = [...sums].sort((a, b) => b[1].us - a[1].us);
process.stdout.write(`total ${(total / per).toFixed(1)} µs per workflow (${per} workflows)\n`);
for (const [k, v] of rows) {
  if (v.us / per < 0.5) continue;
  process.stdout.write(`${(v.us / per).toFixed(1).padStart(7)}  ${String(v.n).padStart(6)}  ${k}\n`);
}
