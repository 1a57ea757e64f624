import { pino, type DestinationStream, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

/**
 * The root logger. Level comes from `PARTITA_LOG_LEVEL` (default `info`; tests set `silent` or `warn`).
 * Library code never logs through console: everything goes through a child of this.
 */
export function createLogger(options: LoggerOptions & { name?: string } = {}, destination?: DestinationStream): Logger {
  const settings = { name: options.name ?? 'partita', level: options.level ?? process.env.PARTITA_LOG_LEVEL ?? 'info', ...options };
  // Another destination than stdout: the test mode's runJob keeps a job's log lines for the test to read.
  return destination ? pino(settings, destination) : pino(settings);
}

/** One child logger per partition and per actor, so every line says where it came from. */
export function childLogger(
  parent: Logger,
  bindings: { partition?: string; actor?: string; node?: string; [key: string]: unknown },
): Logger {
  return parent.child(bindings);
}

/** A logger that drops everything: the default for library objects created without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
