/**
 * Generic plans for the statements that can take them. Custom planning (the store's pools plan each
 * execution: a generic plan chosen for one batch size stalled others) cost more than running for the
 * short keyed statements of a workflow step's transaction (bind 0.2-0.5 ms against 0.03-0.18 ms of
 * execution each). A statement whose file carries the line `-- plan: generic` promises that every
 * plan of it reaches its rows by key, whatever the statistics; test/plans.test.ts of @partita/postgres
 * and of @partita/workflows hold each marked statement to it. A transaction opened with
 * `genericPlans` plans those once per connection and every other statement as before.
 */
import type pg from 'pg';
import type { Statement } from './ops.js';

const MARK = /^--\s*plan:\s*generic\s*$/m;

/** The names of the statements marked generic, of every package's ops loaded in this process. */
const marked = new Set<string>();

/** A loaded op: marked generic when its text says so. */
export function markedStatement(name: string, text: string): Statement {
  if (!MARK.test(text)) return { name, text };
  marked.add(name);
  return { name, text, generic: true };
}

/**
 * What a transaction sets before a marked statement. A generic plan is made once per connection from
 * the statistics of that moment and kept: made while a table looked empty (analyzed empty and
 * truncated by VACUUM: no rows in no pages), a scan would look free and stay chosen however large the
 * table grew. A marked statement never wants a scan.
 */
export const GENERIC_PLAN_SETTINGS = 'SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off';
/** And before any other statement after one: the connection's own settings again. */
const CONNECTION_PLAN_SETTINGS = 'SET LOCAL plan_cache_mode TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT';

/**
 * Until the returned function is called, the statements sent on `client` are planned as they are
 * marked: a marked prepared statement generically, every other one (named or not, the caller's own
 * SQL included) with the connection's settings. The settings go out only where the kind changes, on
 * the wire ahead of the statement (no round trip of their own). Only inside a transaction (SET LOCAL).
 */
export function planByMark(client: pg.PoolClient): () => void {
  const own = Object.prototype.hasOwnProperty.call(client, 'query');
  const query = client.query;
  const send = query.bind(client) as (...args: unknown[]) => unknown;
  let generic = false;
  const plan = (want: boolean) => {
    if (want === generic) return;
    generic = want;
    // Its failure (a dead connection) fails the statement behind it: heard there.
    (send(want ? GENERIC_PLAN_SETTINGS : CONNECTION_PLAN_SETTINGS) as Promise<unknown>).catch(() => undefined);
  };
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const [config, values] = args;
    // BEGIN, COMMIT and the like (text alone) are not planned: they leave the settings as they are.
    if (typeof config === 'object' && config !== null) {
      const name = (config as { name?: unknown }).name;
      plan(typeof name === 'string' && marked.has(name));
    } else if (values !== undefined) plan(false);
    return send(...args);
  };
  return () => {
    if (own) (client as { query: unknown }).query = query;
    else delete (client as { query?: unknown }).query;
  };
}
