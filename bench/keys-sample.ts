// Samples the job states of the newest `keys` bench schema every 20 ms, for a drain run meanwhile:
//   npx tsx bench/keys-sample.ts [seconds] & npm run bench -w bench -- --only keys --systems partita --repeat 1
// (both with the same PARTITA_BENCH_POSTGRES_URL). One line per sample: ms, schema tail, state=count.
import pg from 'pg';
const c = new pg.Client({ connectionString: process.env.PARTITA_BENCH_POSTGRES_URL });
await c.connect();
const end = Date.now() + Number(process.argv[2] ?? 30) * 1000;
let schema = '';
let seen = 0;
while (Date.now() < end) {
  if (Date.now() - seen > 500) {
    const r = await c.query(
      `select n.nspname from pg_class t join pg_namespace n on n.oid = t.relnamespace where t.relname = 'execution_key_heads' and n.nspname like '%keys%' order by t.oid desc limit 1`,
    );
    schema = r.rows[0]?.nspname ?? '';
    seen = Date.now();
  }
  if (schema) {
    try {
      const r = await c.query(`select state, count(*)::int n from "${schema}".jobs group by state order by state`);
      console.log(`${Date.now() % 100000} ${schema.slice(-12)} ${r.rows.map((x) => `${x.state}=${x.n}`).join(' ')}`);
    } catch {
      schema = '';
    }
  }
  await new Promise((r) => setTimeout(r, 20));
}
await c.end();
