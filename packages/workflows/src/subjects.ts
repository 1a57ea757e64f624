/**
 * Workflow subjects: `partita.<cluster>.wf.<app>.<topic…>` carry outputs and emitted data (a topic's
 * dots are subject tokens, so `psub('user.*')` is a NATS wildcard); `partita.<cluster>.wfctl.<app>`
 * carries `nocache` when a version is activated.
 */
export const EVENT_KIND = 'wf.event';
export const NOCACHE_KIND = 'wf.nocache';

export function eventSubject(cluster: string, app: string, topic: string): string {
  return `partita.${cluster}.wf.${app}.${topic}`;
}

export function controlSubject(cluster: string, app: string): string {
  return `partita.${cluster}.wfctl.${app}`;
}

export interface NocacheMessage {
  app: string;
  /** The version just activated: caches older than it read the active version again. */
  untilVersion: string;
}
