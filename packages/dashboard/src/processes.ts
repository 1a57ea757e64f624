/**
 * The processes tab: every background process with its owner, state, last run, next slot and work
 * item counts; and one process's page with its owner and epoch, the last run, each work item's
 * status, the errors kept (first and latest with their times), stats per run, per item and over
 * runs, and its settings. Trigger, pause and resume act on the row in Postgres and are announced on
 * the bus, so the owner of a run under way hears them at once.
 */
import { msToNextSlot, type ErrorRecord, type ProcessRecord, type ProcessWorkRecord } from '@partita/processes';
import { actionForm, html, json, time, type Html } from './html.js';

const when = (iso: string | null | undefined): Html | string => (iso ? time(new Date(iso)) : '—');

/** Runs start on multiples of scheduleMs since the epoch (plus a small jitter the owner adds): the owner's rule. */
function nextSlot(now: number, scheduleMs: number): Date {
  return new Date(now + msToNextSlot(now, scheduleMs));
}

export function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function stateBadge(p: ProcessRecord): Html {
  const paused = html`<span class="badge paused" data-badge="paused">paused</span>`;
  // A paused process with a run under way (stopping at its next save) shows both.
  if (p.state === 'paused') return paused;
  return html`<span class="badge proc-${p.state}" data-state="${p.state}">${p.state}</span>${p.paused ? html` ${paused}` : ''}`;
}

function resultBadge(state: string | null | undefined): Html {
  if (!state) return html`<span class="muted">never run</span>`;
  return html`<span class="badge run-${state}" data-result="${state}">${state}</span>`;
}

function actionForms(base: string, here: string, p: ProcessRecord): Html {
  const form = (action: string, label: string, cls = '') =>
    actionForm({ base, action, fields: { id: p.name }, back: here, label, ariaLabel: `${label} ${p.name}`, cls });
  return html`${p.paused ? form('process-resume', 'Resume') : form('process-pause', 'Pause')}
  ${form('process-trigger', 'Trigger', 'primary')}`;
}

export function processesBody(base: string, readOnly: boolean, list: ProcessRecord[], now: number): Html {
  const here = `${base}/processes`;
  return html`<h1>Processes</h1>
    ${list.length === 0
      ? html`<p class="muted">No background process is defined.</p>`
      : html`<div class="scroll">
          <table id="processes">
            <thead>
              <tr>
                <th>Name</th>
                <th class="hide-narrow">Owner</th>
                <th>State</th>
                <th>Last run</th>
                <th class="hide-narrow">Next slot</th>
                <th class="num" title="Active / cleanup / dropped work items">Items</th>
                <th class="num" title="Errors in the last run / over all runs">Errors</th>
                ${readOnly ? '' : html`<th>Actions</th>`}
              </tr>
            </thead>
            <tbody>
              ${list.map(
                (p) =>
                  html`<tr data-process="${p.name}">
                    <td>
                      <a href="${base}/processes/${encodeURIComponent(p.name)}">${p.name}</a>
                      <small class="muted">every ${duration(p.scheduleMs)}</small>
                    </td>
                    <td class="hide-narrow" data-owner="${p.owner?.id ?? ''}">
                      ${p.owner ? html`<code>${p.owner.id}</code>` : html`<span class="muted">none</span>`}
                    </td>
                    <td>${stateBadge(p)}</td>
                    <td data-run-no="${p.lastRun?.runNo ?? 0}">
                      ${resultBadge(p.lastRun?.state)}
                      ${p.lastRun ? html` <small>#${p.lastRun.runNo} ${when(p.lastRun.finishedAt ?? p.lastRun.startedAt)}</small>` : ''}
                    </td>
                    <td class="hide-narrow">
                      ${p.paused ? '—' : time(nextSlot(now, p.scheduleMs))}${p.triggeredAt ? html` <small>(triggered)</small>` : ''}
                    </td>
                    <td class="num" data-items="${p.counts.active}">
                      ${p.counts.active}<small class="muted"> / ${p.counts.cleanup} / ${p.counts.dropped}</small>
                    </td>
                    <td class="num" data-errors="${p.lastRun?.errors?.total ?? 0}">
                      ${p.lastRun?.errors?.total ?? 0}<small class="muted"> / ${p.aggregate.errors ?? 0}</small>
                    </td>
                    ${readOnly ? '' : html`<td>${actionForms(base, here, p)}</td>`}
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>`}
    <p class="muted">
      Runs start on each multiple of the schedule (plus a few seconds of jitter) on one node, the owner; Trigger asks for one run now (a run
      under way finishes first). Pause stops a run under way at its next progress save.
    </p>`;
}

function statsTable(id: string, caption: string, stats: Record<string, number>): Html {
  const keys = Object.keys(stats).sort();
  if (keys.length === 0) return html`<p class="muted">${caption}: none.</p>`;
  return html`<div class="scroll">
    <table id="${id}" class="stats">
      <caption>
        ${caption}
      </caption>
      <tbody>
        ${keys.map(
          (k) =>
            html`<tr data-stat="${k}">
              <th scope="row">${k}</th>
              <td class="num">${stats[k]}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function errorList(errors: ErrorRecord | null | undefined): Html {
  if (!errors || errors.total === 0) return html`<p class="muted">No errors.</p>`;
  const row = (e: { at: string; message: string }) => html`<li>${when(e.at)} <code>${e.message}</code></li>`;
  // The latest few may repeat the first few when only a handful were kept.
  const firstAts = new Set(errors.first.map((e) => `${e.at}\u0000${e.message}`));
  const latest = errors.last.filter((e) => !firstAts.has(`${e.at}\u0000${e.message}`));
  return html`<p data-error-total="${errors.total}">
      <b>${errors.total}</b> error${errors.total === 1 ? '' : 's'}${errors.inRun !== errors.total
        ? html` (${errors.inRun} in this run)`
        : ''}${errors.first[0] ? html` · first ${when(errors.first[0].at)}` : ''}${errors.lastAt
        ? html` · latest ${when(errors.lastAt)}`
        : ''}
    </p>
    <ol class="errors">
      ${errors.first.map(row)}
    </ol>
    ${latest.length
      ? html`<p class="muted">Latest:</p>
          <ol class="errors">
            ${latest.map(row)}
          </ol>`
      : ''}`;
}

function itemStats(stats: Record<string, number>): Html | string {
  const keys = Object.keys(stats).sort();
  return keys.length ? html`${keys.map((k) => html`<span class="stat">${k} <b>${stats[k]}</b></span> `)}` : '—';
}

function workTable(work: ProcessWorkRecord[]): Html {
  if (work.length === 0) return html`<p class="muted">No work item is registered.</p>`;
  return html`<div class="scroll">
      <table id="work">
        <thead>
          <tr>
            <th>Item</th>
            <th class="hide-narrow">List</th>
            <th>Status</th>
            <th class="hide-narrow">Run</th>
            <th class="hide-narrow">Finished</th>
            <th class="num">Errors</th>
            <th>Stats</th>
          </tr>
        </thead>
        <tbody>
          ${work.map((w) => {
            const s = w.status;
            const errors = s?.errors;
            return html`<tr data-item="${w.name}">
              <td>
                ${w.name}${w.params !== null
                  ? html`<details>
                      <summary>params</summary>
                      <pre>${json(w.params)}</pre>
                    </details>`
                  : ''}
              </td>
              <td class="hide-narrow">${w.list}</td>
              <td>
                ${s
                  ? html`<span class="badge run-${s.state}" data-item-state="${s.state}">${s.state}</span>`
                  : html`<span class="muted" data-item-state="new">new</span>`}
              </td>
              <td class="hide-narrow">${s ? `#${s.runNo}` : '—'}</td>
              <td class="hide-narrow">${when(s?.finishedAt)}</td>
              <td class="num">
                ${errors?.total
                  ? html`<details>
                      <summary>${errors.total}</summary>
                      ${errorList(errors)}
                    </details>`
                  : '0'}
              </td>
              <td>${s ? itemStats(s.stats) : '—'}</td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>
    <p class="muted">Unregistered items go to cleanup: the next run cleans them up, then they are dropped.</p>`;
}

export function processBody(base: string, readOnly: boolean, p: ProcessRecord, now: number): Html {
  const here = `${base}/processes/${encodeURIComponent(p.name)}`;
  const run = p.lastRun;
  return html`<h1>${p.name} ${stateBadge(p)}</h1>
    ${readOnly ? '' : html`<div class="actions">${actionForms(base, here, p)}</div>`}
    <dl class="fields">
      <dt>Owner</dt>
      <dd id="owner">
        ${p.owner
          ? html`<code>${p.owner.id}</code> · epoch <b data-epoch="${p.owner.epoch}">${p.owner.epoch}</b>${p.owner.leaseExpiresAt
                ? html` · lease until ${when(p.owner.leaseExpiresAt)}`
                : ''}`
          : html`<span class="muted">none yet</span>`}
      </dd>
      <dt>Schedule</dt>
      <dd>every ${duration(p.scheduleMs)} · next slot ${p.paused ? '— (paused)' : time(nextSlot(now, p.scheduleMs))}</dd>
      <dt>Triggered</dt>
      <dd>${when(p.triggeredAt)}</dd>
      <dt>Last run</dt>
      <dd id="last-run" data-run-no="${run?.runNo ?? 0}">
        ${resultBadge(run?.state)}${run
          ? html` #${run.runNo} · started ${when(run.startedAt)} · finished
            ${when(run.finishedAt)}${run.progressAt ? html` · progress saved ${when(run.progressAt)}` : ''}${run.resumes
              ? html` · resumed ${run.resumes}×`
              : ''}`
          : ''}
      </dd>
      <dt>Work items</dt>
      <dd>${p.counts.active} active · ${p.counts.cleanup} cleanup · ${p.counts.dropped} dropped</dd>
    </dl>
    <section class="card" aria-labelledby="errors-h">
      <h2 id="errors-h">Errors in the last run</h2>
      ${errorList(run?.errors)}
    </section>
    <section class="card" aria-labelledby="work-h">
      <h2 id="work-h">Work items</h2>
      ${workTable(p.work ?? [])}
    </section>
    <section class="card" aria-labelledby="stats-h">
      <h2 id="stats-h">Stats</h2>
      <div class="stats-pair">
        ${statsTable('run-stats', 'Last run', run?.stats ?? {})} ${statsTable('aggregate-stats', 'Over all runs', p.aggregate)}
      </div>
    </section>
    <section class="card" aria-labelledby="settings-h">
      <h2 id="settings-h">Settings <small class="muted">version ${p.settingsVersion}</small></h2>
      <pre id="settings">${json(p.settings)}</pre>
    </section>`;
}
