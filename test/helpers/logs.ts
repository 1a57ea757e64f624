import { createLogger, type Logger } from '@partita/core';

/** One log record as pino writes it: numeric level, message, and the record's fields. */
export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A real logger (createLogger, so records look as in production) whose records, parsed, go to `lines` instead of stdout. */
export function capturingLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): { logger: Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const logger = createLogger({
    level,
    hooks: {
      streamWrite(line: string) {
        lines.push(JSON.parse(line));
        return '';
      },
    },
  });
  return { logger, lines };
}
