/**
 * Lookup attributes as guild-queues indexes them: a string or number value is one key, an array one
 * key per string/number element, any other type is ignored. Values are stored as text, so 7 and '7'
 * find the same jobs.
 */
export interface KeyRow {
  flow: string;
  key: string;
  value: string;
  job_id: string;
}

export function lookupValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

export function lookupRows(flow: string, jobId: string, params: Record<string, unknown>, attributes: readonly string[]): KeyRow[] {
  const rows: KeyRow[] = [];
  const seen = new Set<string>();
  for (const key of attributes) {
    const raw = params[key];
    for (const element of Array.isArray(raw) ? raw : [raw]) {
      const value = lookupValue(element);
      if (value === undefined || seen.has(`${key}\u0000${value}`)) continue;
      seen.add(`${key}\u0000${value}`);
      rows.push({ flow, key, value, job_id: jobId });
    }
  }
  return rows;
}
