import type { Client } from '@partita/client';
import type { Logger } from '@partita/core';
import type { CommandSpec, Parsed } from './args.js';
import { openClient, resolveConnection, type Connection } from './connection.js';
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
