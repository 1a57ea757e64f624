/** The partita_jobs gauge's counts: reused longer the longer they take, one count at a time. */
import test from 'ava';
import { createMetrics, type JobCount } from '../src/metrics.js';
import { sleep, until } from './helpers.js';

const ROWS: JobCount[] = [{ partition: 'p', queue: 'default', state: 'queued', count: 7 }];

/** A job count source that takes `ms` and counts its calls. */
function countSource(ms: number) {
  const source = {
    calls: 0,
    count: async (): Promise<JobCount[]> => {
      source.calls++;
      if (ms > 0) await sleep(ms); // a timer's own millisecond or more would be reused 50 times over

      return ROWS;
    },
  };
  return source;
}

const queued = (text: string) => /partita_jobs\{[^}]*state="queued"[^}]*\} (\d+)/.exec(text)?.[1];

test('a quick count is asked again once jobCountsCacheMs has passed', async (t) => {
  const source = countSource(0);
  const metrics = createMetrics({ defaultMetrics: false, jobCounts: source.count, jobCountsCacheMs: 50 });
  const began = Date.now();
  t.is(queued(await metrics.scrape()), '7');
  await metrics.scrape();
  t.is(source.calls, 1, 'within jobCountsCacheMs the last count serves');
  // When exactly depends on what the first count took (its reuse is fifty times that, at least 50 ms).
  await until('a second count', async () => (await metrics.scrape(), source.calls === 2), 5000, 10);
  t.true(Date.now() - began >= 50);
});

test('a count that took long is reused for fifty times what it took', async (t) => {
  const source = countSource(40);
  const metrics = createMetrics({ defaultMetrics: false, jobCounts: source.count, jobCountsCacheMs: 1 });
  await metrics.scrape();
  await sleep(100);
  t.is(queued(await metrics.scrape()), '7');
  t.is(source.calls, 1, 'a 40 ms count is good for ~2 s, far past jobCountsCacheMs');
});

test('a count past the source timeout is not started again while it runs, and serves once it ends', async (t) => {
  const source = countSource(150);
  const metrics = createMetrics({ defaultMetrics: false, jobCounts: source.count, jobCountsCacheMs: 1, sourceTimeoutMs: 30 });
  const first = await metrics.scrape();
  t.is(queued(first), undefined, 'no figures yet');
  t.regex(first, /partita_metrics_source_errors_total\{source="job_counts"\} 1/);
  await metrics.scrape();
  t.is(source.calls, 1, 'the count still running is waited on again, not started twice');
  await sleep(200);
  t.is(queued(await metrics.scrape()), '7', 'the late count is kept');
  t.is(source.calls, 1);
});
