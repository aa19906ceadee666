/** pino, JSON lines or readable text; never logs tokens or payloads (redact paths). */
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';

export type { Logger };

export function createLogger(cfg: Pick<Config, 'logLevel' | 'logFormat'>, destination?: NodeJS.WritableStream): Logger {
  const opts = {
    level: cfg.logLevel,
    base: { service: 'codeq' },
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'payload', '*.payload'], censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (cfg.logFormat === 'text') {
    const out = destination ?? process.stderr;
    const stream = {
      write(line: string) {
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          const { time, level, msg, service: _s, ...rest } = o;
          const extra = Object.keys(rest).length ? ' ' + Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : '';
          out.write(`${String(time)} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${extra}\n`);
        } catch {
          out.write(line);
        }
      },
    };
    return pino(opts, stream);
  }
  return pino(opts, (destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 2, sync: false }));
}
