import type { Client } from '@partita/client';
import type { Logger } from '@partita/core';
import type { CommandSpec, Parsed } from './args.js';
import { openClient, resolveConnection, type Connection } from './connection.js';
import { UsageError } from './errors.js';
import type { Io } from './io.js';

export interface Context {
  io: Io;
  values: Parsed['values'];
  positionals: string[];
  json: boolean;
  spec: CommandSpec;
}

export interface Command extends CommandSpec {
  /** Resolves with the exit code; throws for errors (mapped by exitCodeOf). */
  run(ctx: Context): Promise<number>;
}

/** Connects with the command's connection options, runs `fn`, always closes. */
export async function withClient<T>(ctx: Context, fn: (client: Client, conn: Connection) => Promise<T>, logger?: Logger): Promise<T> {
  const conn = await resolveConnection(ctx.values, ctx.io, ctx.spec.name);
  const client = await openClient(conn, logger);
  try {
    return await fn(client, conn);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Exactly `names` positionals (the last `optional` ones may be missing); a missing one is a usage error naming it. */
export function positionals(ctx: Context, names: string[], optional = 0): string[] {
  const given = ctx.positionals;
  if (given.length > names.length) throw new UsageError(`unexpected argument "${given[names.length]}"`, ctx.spec.name);
  if (given.length < names.length - optional)
    throw new UsageError(`missing ${names.slice(given.length, names.length - optional).join(' and ')}`, ctx.spec.name);
  return given;
}

/**
 * `[action] <name>`: a name alone, or one of `actions` then a name (`partita schedule pause nightly`).
 * A lone word that is also an action is taken as a name, so a schedule may be called `pause`.
 */
export function actionAndName<A extends string>(ctx: Context, actions: readonly A[], what: string): { action?: A; name: string } {
  const [first, second, extra] = ctx.positionals;
  const command = ctx.spec.name;
  if (!first) throw new UsageError(`${command} needs a ${what} name, or ${actions.join('|')} and a name`, command);
  const action = (actions as readonly string[]).includes(first) && second !== undefined ? (first as A) : undefined;
  const rest = action ? extra : second;
  if (rest !== undefined) throw new UsageError(`unexpected argument "${rest}"`, command);
  return action ? { action, name: second! } : { name: first };
}
