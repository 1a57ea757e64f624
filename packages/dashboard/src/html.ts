/**
 * Server-rendered HTML: every page is a complete document built from escaped strings, so each view
 * is a plain URL that serves directly and works without script; the one small script only adds live
 * refresh and conveniences.
 */

/** Text made safe for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A trusted fragment (already escaped). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A template tag: interpolated values are escaped unless they are Html (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new Html(out);
}

function piece(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value === undefined || value === null || value === false) return '';
  return esc(value);
}

export function json(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? 'undefined';
  } catch {
    return String(value);
  }
}

export function time(d: Date): Html {
  return html`<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)}</time>`;
}

export interface Layout {
  base: string;
  title: string;
  nav: 'overview' | 'queues' | 'jobs' | 'workflows' | 'schedules' | 'processes' | '';
  /** Tabs of layers that are installed (the workflows plugin's tables, the schedules', the processes'). */
  tabs?: { workflows: boolean; schedules: boolean; processes: boolean };
  /** Pages that refresh themselves on changes ("jobs" refreshes only while nothing is selected). */
  live: boolean;
  readOnly: boolean;
  flash?: { kind: 'ok' | 'error'; text: string } | undefined;
  body: Html;
}

export function page(l: Layout): string {
  const link = (name: Layout['nav'], href: string, label: string) =>
    html`<a href="${l.base}${href}" ${name === l.nav ? new Html(' aria-current="page"') : ''}>${label}</a>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${l.title} · Partita</title>
        <link rel="stylesheet" href="${l.base}/assets/app.css" />
        <script src="${l.base}/assets/app.js" defer></script>
      </head>
      <body data-base="${l.base}" data-live="${l.live ? 'on' : 'off'}">
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <strong class="brand">Partita</strong>
          <nav aria-label="Sections">
            ${link('overview', '/', 'Overview')}${link('queues', '/queues', 'Queues')}${link('jobs', '/jobs', 'Jobs')}${l.tabs?.workflows
              ? link('workflows', '/workflows', 'Workflows')
              : ''}${l.tabs?.schedules ? link('schedules', '/schedules', 'Schedules') : ''}${l.tabs?.processes
              ? link('processes', '/processes', 'Processes')
              : ''}
          </nav>
          <span class="status" id="live-status" role="status" aria-live="polite">${l.readOnly ? 'read-only · ' : ''}</span>
        </header>
        <main id="main" tabindex="-1">
          ${l.flash
            ? html`<p class="flash ${l.flash.kind}" role="${l.flash.kind === 'error' ? 'alert' : 'status'}">${l.flash.text}</p>`
            : ''}
          ${l.body}
        </main>
      </body>
    </html> `.text;
}

/** A bar chart of one series over the last hour, as inline SVG (no chart library). */
export function bars(label: string, values: number[], unit = ''): Html {
  const max = Math.max(1, ...values);
  const w = 4;
  const h = 40;
  const rects = values.map((v, i) => {
    const bh = v === 0 ? 0 : Math.max(1, Math.round((v / max) * h));
    return `<rect x="${i * w}" y="${h - bh}" width="${w - 1}" height="${bh}"><title>${esc(`${Math.round(v)}${unit}`)}</title></rect>`;
  });
  const total = values.reduce((a, b) => a + b, 0);
  const last = values.at(-1) ?? 0;
  return html`<figure class="chart">
    <figcaption>
      ${label} <small>last minute: <b>${Math.round(last)}${unit}</b>${unit === '' ? html` · hour: ${Math.round(total)}` : ''}</small>
    </figcaption>
    <svg viewBox="0 0 ${values.length * w} ${h}" preserveAspectRatio="none" role="img" aria-label="${label} per minute over the last hour">
      ${new Html(rects.join(''))}
    </svg>
  </figure>`;
}

export interface ActionFormSpec {
  base: string;
  /** The action's name: the form posts to `<base>/actions/<action>`. */
  action: string;
  /** What the action acts on, sent as hidden fields. */
  fields: Record<string, string>;
  /** The page to come back to (with the outcome shown). */
  back: string;
  label: string;
  /** The button's accessible name when its label alone is ambiguous in a table (e.g. "Pause p/q"). */
  ariaLabel?: string;
  cls?: string;
  /** Asked before posting (by the page's script). */
  confirm?: string;
  /** Fields the person fills in, before the button. */
  inputs?: Html;
  id?: string;
}

/** Every action is one small form posting to the dashboard and redirected back: one markup for all. */
export function actionForm(f: ActionFormSpec): Html {
  const attr = (name: string, value: string | undefined) => (value ? html` ${new Html(name)}="${value}"` : '');
  return html`<form class="inline" method="post" action="${f.base}/actions/${f.action}" ${attr('id', f.id)}>
    ${Object.entries(f.fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}<input
      type="hidden"
      name="return"
      value="${f.back}"
    />
    ${f.inputs ?? ''}
    <button type="submit" ${attr('class', f.cls)}${attr('aria-label', f.ariaLabel)}${attr('data-confirm', f.confirm)}>${f.label}</button>
  </form>`;
}
