/**
 * The SDKs are silent unless given a logger. Any object with some of these methods works:
 * `console`, a pino/winston child logger (fields arrive as the second argument), or a test spy.
 */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {};

type Level = 'debug' | 'info' | 'warn' | 'error';

/** Calls `logger[level]` if it exists; a throwing logger never breaks the caller. */
export function log(logger: Logger | undefined, level: Level, message: string, fields?: Record<string, unknown>): void {
  if (!logger) return;
  try {
    if (fields) logger[level]?.(message, fields);
    else logger[level]?.(message);
  } catch {
    /* a logger must not break the SDK */
  }
}
