/**
 * The filter behind `partita jobs` (its states are @partita/core's JOB_STATES). The listing itself
 * (live jobs and history, newest first) is client.listJobs over JobStore.listJobs, @partita/postgres's sql/ops/list_jobs.sql.
 */
import type { JobRecord, JobState } from '@partita/core';
import type { Client } from '@partita/client';

export interface JobFilter {
  partition?: string;
  queue?: string;
  type?: string;
  states?: JobState[];
  /** Every key must match (a value array: the job's value list must contain each). */
  lookup?: Record<string, string | string[]>;
  /** Only jobs with ids below this one (the previous page's last id). */
  before?: string;
  /** Only these ids. */
  ids?: string[];
  limit: number;
}

/** Counts of jobs by state among `ids` (live and history), for progress displays. */
export async function statesOf(client: Pick<Client, 'listJobs'>, ids: string[]): Promise<Map<string, JobRecord>> {
  const out = new Map<string, JobRecord>();
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    for (const job of await client.listJobs({ ids: chunk, limit: chunk.length })) out.set(job.id, job);
  }
  return out;
}
