/**
 * The workflows tab: apps and their versions, a keyset listing of workflows by app, status and a
 * searchable field, and one workflow's page — its graph drawn as inline SVG with each activity's
 * state (no chart or graph library), its activity timeline and its data, with interrupt and hook.
 */
import {
  INTERRUPTED,
  PENDING,
  WORKFLOW_STATUS_NAMES,
  type ActivityTimeline,
  type CompiledGraph,
  type WorkflowState,
  type WorkflowStatusName,
} from '@partita/workflows';
import { actionForm, html, Html, json, time } from './html.js';

/** Status classes of the executor's semaphore, as the listing's tabs name them (the workflows package's names). */
export const WORKFLOW_STATUSES = WORKFLOW_STATUS_NAMES;
export type WorkflowStatus = WorkflowStatusName;

export function statusOf(status: number): WorkflowStatus {
  if (status === PENDING) return 'pending';
  if (status > 0) return 'running';
  if (status === 0) return 'done';
  if (status === INTERRUPTED) return 'interrupted';
  return 'failed';
}

export interface AppVersionRow {
  app_id: string;
  version: string;
  deployed_at: Date;
  active_version: string | null;
  activated_at: Date | null;
}

export interface WorkflowRow {
  id: string;
  app_id: string;
  version: string;
  topic: string;
  partition: string;
  status: string | number;
  search: Record<string, unknown>;
  created_at: Date;
  finished_at: Date | null;
  parent_id: string | null;
}

export interface WorkflowListFilter {
  app: string | undefined;
  status: WorkflowStatus | undefined;
  /** `key:value` over pub's searchable fields. */
  search: string | undefined;
}

/** The keyset cursor of a listing page: the last row's creation time and id. */
export function cursorOf(row: WorkflowRow): string {
  return `${new Date(row.created_at).toISOString()}|${row.id}`;
}

export function listUrl(base: string, f: WorkflowListFilter, before?: string): string {
  const p = new URLSearchParams();
  if (f.app) p.set('app', f.app);
  if (f.status) p.set('status', f.status);
  if (f.search) p.set('search', f.search);
  if (before) p.set('before', before);
  const s = p.toString();
  return `${base}/workflows${s ? `?${s}` : ''}`;
}

export function workflowUrl(base: string, app: string, id: string): string {
  return `${base}/workflows/${encodeURIComponent(app)}/${encodeURIComponent(id)}`;
}

export function statusBadge(status: number): Html {
  const s = statusOf(status);
  return html`<span class="badge wf-${s}" data-status="${s}">${s}${s === 'running' ? ` (${status} open)` : ''}</span>`;
}

export function workflowsBody(
  base: string,
  versions: AppVersionRow[],
  filter: WorkflowListFilter,
  rows: WorkflowRow[],
  next: string | undefined,
  paged: boolean,
): Html {
  const apps = [...new Set(versions.map((v) => v.app_id))];
  const tabs = [undefined, ...WORKFLOW_STATUSES].map((s) => {
    const current = s === filter.status;
    return html`<a href="${listUrl(base, { ...filter, status: s })}" ${current ? new Html(' aria-current="page"') : ''}>${s ?? 'all'}</a>`;
  });
  return html`<h1>Workflows</h1>
    <h2>Apps and versions</h2>
    ${versions.length === 0
      ? html`<p class="muted">No workflow app is deployed.</p>`
      : html`<div class="scroll">
          <table id="versions">
            <thead>
              <tr>
                <th>App</th>
                <th>Version</th>
                <th>Deployed</th>
                <th>Active</th>
              </tr>
            </thead>
            <tbody>
              ${versions.map(
                (v) =>
                  html`<tr data-app="${v.app_id}" data-version="${v.version}">
                    <td><a href="${listUrl(base, { ...filter, app: v.app_id })}">${v.app_id}</a></td>
                    <td>${v.version}</td>
                    <td>${time(new Date(v.deployed_at))}</td>
                    <td>
                      ${v.active_version === v.version
                        ? html`<span class="badge active" data-active="yes">active</span> since ${time(new Date(v.activated_at!))}`
                        : '—'}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>`}
    <h2>Runs</h2>
    <form class="filter" method="get" action="${base}/workflows" role="search">
      <label for="wf-app" class="muted">App</label>
      <select id="wf-app" name="app">
        <option value="">all</option>
        ${apps.map((a) => html`<option value="${a}" ${a === filter.app ? new Html('selected') : ''}>${a}</option>`)}
      </select>
      <label for="wf-search" class="muted">Field</label>
      <input type="search" id="wf-search" name="search" value="${filter.search ?? ''}" placeholder="customer:42" autocomplete="off" />
      ${filter.status ? html`<input type="hidden" name="status" value="${filter.status}" />` : ''}
      <button type="submit" class="primary">Apply</button>
    </form>
    <nav class="tabs" aria-label="Statuses">${tabs}</nav>
    <div class="scroll">
      <table id="workflows">
        <thead>
          <tr>
            <th>Id</th>
            <th>App</th>
            <th>Topic</th>
            <th>Status</th>
            <th class="hide-narrow">Fields</th>
            <th>Started</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (w) =>
              html`<tr data-id="${w.id}">
                <td>
                  <a href="${workflowUrl(base, w.app_id, w.id)}"><code>${w.id.length > 24 ? `${w.id.slice(0, 24)}…` : w.id}</code></a>
                </td>
                <td>${w.app_id} v${w.version}</td>
                <td>${w.topic}</td>
                <td>${statusBadge(Number(w.status))}</td>
                <td class="hide-narrow">
                  ${Object.entries(w.search ?? {})
                    .map(([k, v]) => `${k}:${String(v)}`)
                    .join(' ')}
                </td>
                <td>${time(new Date(w.created_at))}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${rows.length === 0 ? html`<p class="muted">No workflow matches.</p>` : ''}
    <nav class="actions" aria-label="Pages">
      ${paged ? html`<a href="${listUrl(base, filter)}">← Newest</a>` : ''}
      ${next ? html`<a href="${listUrl(base, filter, next)}" rel="next">Older →</a>` : ''}
    </nav>`;
}

export interface WorkflowPageData {
  app: string;
  state: WorkflowState;
  timeline: ActivityTimeline;
  graph: CompiledGraph | undefined;
  /** Hook topics of the graph (the hook form offers them). */
  hookTopics: string[];
}

/**
 * A step's job, linked to its job page while that page has it: a completed step's job leaves no
 * history row (its activity record is its history, shown on this page), so only a running,
 * failed or cancelled step's job is linked.
 */
function jobCell(base: string, a: ActivityTimeline['activities'][number]): Html | string {
  if (!a.jobId) return '—';
  const id = html`<code>${a.jobId.slice(0, 13)}…</code>`;
  return a.state === 'done' ? html`<span title="${a.jobId}">${id}</span>` : html`<a href="${base}/jobs/${a.jobId}">${id}</a>`;
}

export function workflowBody(base: string, readOnly: boolean, d: WorkflowPageData, here: string): Html {
  const { state, timeline } = d;
  const status = Number(state.metadata.js);
  const open = status > 0 || status === -1;
  const fields = { app: d.app, id: timeline.id };
  const actions =
    readOnly || !open
      ? ''
      : html`<div class="actions">
          ${actionForm({
            base,
            action: 'interrupt',
            fields,
            back: here,
            label: 'Interrupt',
            cls: 'danger',
            confirm: 'Interrupt this workflow?',
            inputs: html`<input type="text" name="reason" placeholder="reason" aria-label="Reason for the interrupt" style="width:10em" />`,
          })}
          ${d.hookTopics.length
            ? actionForm({
                base,
                action: 'hook',
                id: 'hook-form',
                fields,
                back: here,
                label: 'Send hook',
                inputs: html`<select name="topic" aria-label="Hook topic">
                    ${d.hookTopics.map((t) => html`<option value="${t}">${t}</option>`)}
                  </select>
                  <textarea name="data" rows="2" cols="30" aria-label="Hook data (JSON)">${JSON.stringify({ id: timeline.id })}</textarea>`,
              })
            : ''}
        </div>`;
  return html`<h1>Workflow <code>${timeline.id}</code> ${statusBadge(status)}</h1>
    ${actions}
    <dl class="fields">
      <dt>App</dt>
      <dd><a href="${listUrl(base, { app: d.app, status: undefined, search: undefined })}">${d.app}</a> version ${timeline.version}</dd>
      <dt>Topic</dt>
      <dd>${timeline.topic}</dd>
      <dt>Started</dt>
      <dd>${time(new Date(state.metadata.jc))}</dd>
      <dt>Finished</dt>
      <dd>${state.metadata.ju ? time(new Date(state.metadata.ju)) : '—'}</dd>
      <dt>Parent</dt>
      <dd>
        ${state.metadata.pj ? html`<a href="${workflowUrl(base, d.app, state.metadata.pj)}"><code>${state.metadata.pj}</code></a>` : '—'}
      </dd>
    </dl>
    <h2>Graph</h2>
    ${d.graph
      ? graphSvg(d.graph, timeline)
      : html`<p class="muted">The graph of topic ${timeline.topic} is not in version ${timeline.version}.</p>`}
    <h2>Timeline</h2>
    <div class="scroll">
      <table id="timeline">
        <thead>
          <tr>
            <th>Activity</th>
            <th>Type</th>
            <th>State</th>
            <th class="num">Entered</th>
            <th>Started</th>
            <th>Finished</th>
            <th>Job</th>
          </tr>
        </thead>
        <tbody>
          ${timeline.activities.map(
            (a) =>
              html`<tr data-activity="${a.activity}">
                  <td>${a.activity}${a.dimension ? html` <small class="muted">${a.dimension}</small>` : ''}</td>
                  <td>${a.type}</td>
                  <td><span class="badge act-${a.state}" data-state="${a.state}">${a.state}</span></td>
                  <td class="num">${a.entered}</td>
                  <td>${time(new Date(a.startedAt))}</td>
                  <td>${a.finishedAt ? time(new Date(a.finishedAt)) : '—'}</td>
                  <td>${jobCell(base, a)}</td>
                </tr>
                ${a.errors.length
                  ? html`<tr>
                      <td colspan="7"><pre class="error">${json(a.errors)}</pre></td>
                    </tr>`
                  : ''}`,
          )}
        </tbody>
      </table>
    </div>
    <h2>Data</h2>
    <pre id="wf-data">${json(state.data)}</pre>
    <details>
      <summary>Activity inputs and outputs</summary>
      <pre>
${json(
          timeline.activities.map((a) => ({
            activity: a.activity,
            dimension: a.dimension,
            input: a.input,
            output: a.output,
            hook: a.hook,
          })),
        )}</pre
      >
    </details>`;
}

const BOX_W = 132;
const BOX_H = 34;
const GAP_X = 24;
const GAP_Y = 30;

/**
 * The graph top-down: each activity on the row of its longest path from the trigger (edges that
 * return to an ancestor are left out of the layout), boxes coloured by the state of the activity's
 * latest pass; activities not reached yet are hollow.
 */
export function graphSvg(graph: CompiledGraph, timeline: ActivityTimeline): Html {
  const latest = new Map<string, string>();
  for (const a of timeline.activities) latest.set(a.activity, a.state);
  const level = new Map<string, number>();
  for (const id of graph.order) {
    const parents = graph.activities[id]?.parents ?? [];
    const known = parents.filter((p) => level.has(p)).map((p) => level.get(p)!);
    level.set(id, known.length ? Math.max(...known) + 1 : 0);
  }
  const rows: string[][] = [];
  for (const id of graph.order) (rows[level.get(id)!] ??= []).push(id);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = widest * (BOX_W + GAP_X) + GAP_X;
  const height = rows.length * (BOX_H + GAP_Y) + GAP_Y;
  const pos = new Map<string, { x: number; y: number }>();
  rows.forEach((row, r) => {
    const offset = (width - row.length * (BOX_W + GAP_X) + GAP_X) / 2;
    row.forEach((id, i) => pos.set(id, { x: offset + i * (BOX_W + GAP_X), y: GAP_Y + r * (BOX_H + GAP_Y) }));
  });
  const edges: string[] = [];
  for (const id of graph.order)
    for (const child of graph.activities[id]?.children ?? []) {
      const a = pos.get(id);
      const b = pos.get(child);
      if (!a || !b) continue;
      const back = (level.get(child) ?? 0) <= (level.get(id) ?? 0);
      edges.push(
        `<line x1="${a.x + BOX_W / 2}" y1="${a.y + BOX_H}" x2="${b.x + BOX_W / 2}" y2="${b.y}" class="edge${back ? ' back' : ''}" marker-end="url(#arrow)"/>`,
      );
    }
  const boxes = graph.order.map((id) => {
    const p = pos.get(id)!;
    const act = graph.activities[id]!;
    const state = latest.get(id) ?? 'not-reached';
    const label = id.length > 16 ? `${id.slice(0, 15)}…` : id;
    return html`<g class="node ${`act-${state}`}" data-activity="${id}" data-state="${state}">
      <title>${id} (${act.type}): ${state}</title>
      <rect x="${p.x}" y="${p.y}" width="${BOX_W}" height="${BOX_H}" rx="6"></rect>
      <text x="${p.x + BOX_W / 2}" y="${p.y + 14}" text-anchor="middle">${label}</text>
      <text x="${p.x + BOX_W / 2}" y="${p.y + 28}" text-anchor="middle" class="sub">${act.type} · ${state}</text>
    </g>`;
  });
  return html`<div class="scroll graph">
    <svg
      id="wf-graph"
      viewBox="0 0 ${width} ${height}"
      width="${width}"
      height="${height}"
      role="img"
      aria-label="Graph of ${graph.subscribes}"
    >
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z"></path>
        </marker>
      </defs>
      ${new Html(edges.join(''))} ${boxes}
    </svg>
  </div>`;
}
