/**
 * The SDKs are silent unless given a logger. Any object with some of these methods works:
 * `console`, winston (message first, fields second), a test spy — and pino, which takes the
 * fields object first (`logger.warn({ taskId }, 'msg')`): a pino logger is recognised (it has
 * `child()` and `bindings()`) and called fields first. Other fields-first loggers (bunyan, …)
 * can be wrapped with {@link objectFirstLogger}.
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
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

/** A logger whose methods take `(fields, message)`, as pino and bunyan do. */
export type ObjectFirstLogger = { [L in Level]?: (fields: Record<string, unknown>, message?: string) => void };

const objectFirst = new WeakMap<object, boolean>();

/** pino (and anything shaped like it: `child()` + `bindings()`) wants the fields object first. */
function isObjectFirst(logger: Logger): boolean {
  let v = objectFirst.get(logger);
  if (v === undefined) {
    const l = logger as { child?: unknown; bindings?: unknown };
    v = typeof l.child === 'function' && typeof l.bindings === 'function';
    objectFirst.set(logger, v);
  }
  return v;
}

/** Adapts a fields-first logger (pino, bunyan, …) to {@link Logger}; pino is also recognised without it. */
export function objectFirstLogger(target: ObjectFirstLogger): Logger {
  const out: Logger = {};
  for (const level of LEVELS) {
    const fn = target[level];
    if (typeof fn === 'function') out[level] = (message, fields) => fn.call(target, fields ?? {}, message);
  }
  return out;
}

/** Calls `logger[level]` if it exists; a throwing logger never breaks the caller. */
export function log(logger: Logger | undefined, level: Level, message: string, fields?: Record<string, unknown>): void {
  if (!logger) return;
  try {
    if (isObjectFirst(logger)) (logger as ObjectFirstLogger)[level]?.(fields ?? {}, message);
    else if (fields) logger[level]?.(message, fields);
    else logger[level]?.(message);
  } catch {
    /* a logger must not break the SDK */
  }
}
