/**
 * The schedules tab: every cron schedule with its next and last fire, fired / missed / overlap
 * counts and last error; pause, resume and trigger (an extra occurrence now).
 */
import type { ScheduleRecord } from '@partita/processes';
import { actionForm, html, time, type Html } from './html.js';

export function schedulesBody(base: string, readOnly: boolean, list: ScheduleRecord[]): Html {
  const here = `${base}/schedules`;
  const form = (action: string, id: string, label: string, cls = '') =>
    actionForm({ base, action, fields: { id }, back: here, label, ariaLabel: `${label} ${id}`, cls });
  return html`<h1>Schedules</h1>
    ${list.length === 0
      ? html`<p class="muted">No schedule is defined.</p>`
      : html`<div class="scroll">
          <table id="schedules">
            <thead>
              <tr>
                <th>Id</th>
                <th>Cron</th>
                <th>Job</th>
                <th>Next fire</th>
                <th>Last fire</th>
                <th class="num">Fired</th>
                <th class="num">Missed</th>
                <th class="num hide-narrow" title="Occurrences not enqueued because the last job was still live">Skipped</th>
                <th>Status</th>
                ${readOnly ? '' : html`<th>Actions</th>`}
              </tr>
            </thead>
            <tbody>
              ${list.map(
                (s) =>
                  html`<tr data-schedule="${s.id}">
                    <td>${s.id} <small class="muted">${s.source}</small></td>
                    <td><code>${s.cron}</code>${s.timezone !== 'UTC' ? html` <small>${s.timezone}</small>` : ''}</td>
                    <td>${s.type} <small class="muted">${s.partition}${s.queue ? `/${s.queue}` : ''}</small></td>
                    <td>${s.paused ? '—' : s.nextFireAt ? time(s.nextFireAt) : '—'}</td>
                    <td>
                      ${s.lastFireAt ? time(s.lastFireAt) : '—'}${s.lastJobId
                        ? html` <a href="${base}/jobs/${s.lastJobId}" data-last-job="${s.lastJobId}">job</a>${s.lastJobLive
                              ? ' (live)'
                              : ''}`
                        : ''}
                    </td>
                    <td class="num" data-fired="${s.firedCount}">${s.firedCount}</td>
                    <td class="num">${s.missedCount}</td>
                    <td class="num hide-narrow">${s.overlapSkipped}</td>
                    <td>
                      ${s.paused
                        ? html`<span class="badge paused" data-badge="paused">paused</span>`
                        : html`<span class="badge active">active</span>`}
                      ${s.lastError ? html`<span class="badge failed" title="${s.lastError}">last firing failed</span>` : ''}
                    </td>
                    ${readOnly
                      ? ''
                      : html`<td>
                          ${s.paused ? form('schedule-resume', s.id, 'Resume') : form('schedule-pause', s.id, 'Pause')}
                          ${form('schedule-trigger', s.id, 'Trigger', 'primary')}
                        </td>`}
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>`}
    <p class="muted">
      Missed: occurrences the misfire policy passed over while the cluster was down or late. Trigger runs one extra occurrence now.
    </p>`;
}
