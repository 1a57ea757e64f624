import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Line = Record<string, unknown> & { workload: string };

interface Target {
  name: string;
  pass: boolean | null;
  detail: string;
}

/** Prints result lines as JSON to stdout, appends them to the results file, and prints the summary table to stderr. */
export class Reporter {
  readonly lines: Line[] = [];
  readonly targets: Target[] = [];

  constructor(private readonly file: string | undefined) {
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  /** A line for the file only (run metadata), not stdout. */
  meta(line: Record<string, unknown>): void {
    if (this.file) appendFileSync(this.file, JSON.stringify(line) + '\n');
  }

  emit(line: Line): void {
    const text = JSON.stringify(line);
    this.lines.push(line);
    process.stdout.write(text + '\n');
    if (this.file) appendFileSync(this.file, text + '\n');
  }

  target(name: string, pass: boolean | null, detail: string): void {
    this.targets.push({ name, pass, detail });
  }

  summary(): string {
    const rows: string[][] = [['workload', 'system', 'enqueue/s', 'process/s', 'p50 ms', 'p99 ms', 'notes']];
    const fmt = (v: unknown, digits = 0) =>
      typeof v === 'number' && Number.isFinite(v)
        ? v.toLocaleString('en-US', { maximumFractionDigits: digits })
        : v === null || v === undefined
          ? ''
          : String(v);
    for (const l of this.lines) {
      if (l.error) {
        rows.push([l.workload, String(l.system ?? ''), '', '', '', '', `ERROR: ${String(l.error).slice(0, 80)}`]);
      } else if (l.ratio && typeof l.ratio === 'object') {
        const r = l.ratio as Record<string, unknown>;
        if (l.workload === 'latency') {
          for (const [ch, v] of Object.entries(r)) {
            const x = v as { p50: number | null; p99: number | null };
            rows.push([l.workload, `ratio ${ch}`, '', '', `${fmt(x.p50, 2)}×`, `${fmt(x.p99, 2)}×`, `partita/${ch} ÷ ${String(l.versus)}`]);
          }
        } else {
          rows.push([l.workload, 'ratio', `${fmt(r.enqueue, 2)}×`, `${fmt(r.process, 2)}×`, '', '', 'partita ÷ graphile']);
        }
      } else if (l.workload === 'latency') {
        rows.push([
          l.workload,
          `${String(l.system)}/${String(l.channel)}`,
          '',
          '',
          fmt(l.p50Ms, 2),
          fmt(l.p99Ms, 2),
          `${String(l.samples)} samples, ${String(l.wake)}${l.truncated ? ' (budget)' : ''}`,
        ]);
      } else {
        const notes: string[] = [];
        if (l.timedOut) notes.push(`TIMED OUT after ${fmt(l.processed)} jobs`);
        const backlog = l.backlog as { jobs: number; insertMs: number } | undefined;
        if (backlog) notes.push(`backlog ${fmt(backlog.jobs)} inserted in ${fmt(backlog.insertMs / 1000, 1)} s`);
        const vs = l.vsPlain as { process: number | null } | null | undefined;
        if (vs) notes.push(`process ${fmt(vs.process, 2)}× plain`);
        const cpu = l.cpuMsPerThousandJobs as { bench: number; postgres: number; postgresOwn?: number } | undefined;
        if (cpu)
          notes.push(
            `CPU ms/1k jobs: process ${fmt(cpu.bench, 1)}, postgres ${fmt(cpu.postgres, 1)}` +
              (cpu.postgresOwn === undefined ? '' : ` (own backends ${fmt(cpu.postgresOwn, 1)})`),
          );
        const info = l.info as { note?: string } | undefined;
        if (info?.note) notes.push('see info.note');
        rows.push([l.workload, String(l.system), fmt(l.enqueuePerSec), fmt(l.processPerSec), '', '', notes.join('; ')]);
      }
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
    const right = new Set([2, 3, 4, 5]);
    const out = rows.map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    );
    out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
    if (this.targets.length) {
      out.push('', 'targets:');
      for (const t of this.targets) out.push(`  ${t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`);
    }
    return out.join('\n');
  }
}
