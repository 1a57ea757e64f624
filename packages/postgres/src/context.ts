import type pg from 'pg';
import type { Logger } from '@partita/core';
import type { Statements } from './ops.js';

/**
 * What the op-family modules share: JobStore builds one per store and hands it to each of them, so
 * they are plain functions over it (no class per family, nothing allocated per call).
 */
export interface StoreContext {
  readonly pool: pg.Pool;
  /** Claims and single-job inserts only: connections that keep one cached generic plan each (see JobStore). */
  readonly onePlanPool: pg.Pool;
  readonly schema: string;
  readonly ops: Statements;
  readonly logger: Logger;
  readonly payloadLimitBytes: number;
  /** Refuse enqueues to partitions/queues no node has declared. */
  readonly checkQueues: boolean;
  readonly maxRescues: number;
  /** Partitions and their declared queues, as last read (undefined: read again on the next check). */
  known: Map<string, Set<string>> | undefined;
}
