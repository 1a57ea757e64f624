/**
 * Progress for long work (bulk enqueue, draining on stop, the demo). On a terminal: one line
 * redrawn in place, at most ten times a second. Piped: a plain line every `lineEveryMs` and at
 * the end, so logs stay readable.
 */
import { formatDuration } from './io.js';

export interface ProgressOptions {
  /** Where to draw: usually stderr. */
  write: (text: string) => void;
  tty: boolean;
  label: string;
  /** Undefined: unknown total (a counter, no bar). */
  total?: number;
  width?: number;
  lineEveryMs?: number;
}

export class ProgressBar {
  private done = 0;
  private note = '';
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastLine = 0;
  private drawn = false;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {}

  update(done: number, note = ''): void {
    this.done = done;
    this.note = note;
    const now = Date.now();
    if (this.opts.tty) {
      if (now - this.lastDraw >= 100 || done === this.opts.total) this.draw(now);
    } else if (now - this.lastLine >= (this.opts.lineEveryMs ?? 2000)) {
      this.lastLine = now;
      this.opts.write(this.render(now) + '\n');
    }
  }

  /** Ends the bar: the final state stays on screen, followed by `message` if given. */
  finish(message?: string): void {
    if (this.finished) return;
    this.finished = true;
    const now = Date.now();
    if (this.opts.tty) {
      this.draw(now);
      this.opts.write('\n');
    } else if (this.lastLine === 0 || now - this.lastLine > 0) {
      this.opts.write(this.render(now) + '\n');
    }
    if (message) this.opts.write(message + '\n');
  }

  /** Clears the bar line (terminal) so other output can be printed, then it redraws on the next update. */
  clear(): void {
    if (this.opts.tty && this.drawn) {
      this.opts.write('\r\x1b[2K');
      this.drawn = false;
      this.lastDraw = 0;
    }
  }

  private draw(now: number): void {
    this.lastDraw = now;
    this.drawn = true;
    this.opts.write('\r\x1b[2K' + this.render(now));
  }

  private render(now: number): string {
    const elapsed = now - this.started;
    const rate = elapsed > 0 ? (this.done / elapsed) * 1000 : 0;
    const parts = [this.opts.label];
    const total = this.opts.total;
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.done / total);
      const width = this.opts.width ?? 24;
      const full = Math.round(frac * width);
      const bar = this.opts.tty ? '█'.repeat(full) + '░'.repeat(width - full) : '#'.repeat(full) + '-'.repeat(width - full);
      parts.push(`[${bar}]`, `${String(Math.floor(frac * 100)).padStart(3)}%`, `${this.done}/${total}`);
      if (rate > 0 && this.done < total && elapsed > 500) parts.push(`eta ${formatDuration(((total - this.done) / rate) * 1000)}`);
    } else {
      parts.push(String(this.done));
    }
    if (rate > 0 && elapsed > 500) parts.push(`${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s`);
    if (this.note) parts.push(this.note);
    return parts.join(' ');
  }
}
