import { JobStore } from '@partita/postgres';
const S = 'claimx';
const s = await JobStore.open({ postgres: 'postgres://postgres@127.0.0.1:5432/test', schema: S, checkQueues: false });
const jobs = Array.from({ length: 20000 }, (_, i) => ({ partition: 'p', type: 'noop', queue: 'default', payload: { n: i }, executionKey: 'k' + (i % 1000) }));
for (let i = 0; i < jobs.length; i += 5000) await s.enqueue(jobs.slice(i, i + 5000));
await s.claim({ nodeId: 'n0', partition: 'p', leaseMs: 60000, queues: [{ queue: 'default', limit: 300 }] });
await s.pool.query(`ANALYZE ${S}.jobs`);
await s.close();
