/**
 * The smallest logger shape the actor system needs. It is structural so that a pino logger (what
 * @partita/core hands out) fits as is, without this package importing pino.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

const NOOP_LOGGER: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => NOOP_LOGGER,
};

/** A logger that drops everything: the default when createSystem() is given none. */
export function noopLogger(): Logger {
  return NOOP_LOGGER;
}
