/**
 * Bootstrap only: loadConfig() → createApp(config) → listen; graceful SIGTERM/SIGINT.
 * `main.js migrate-to-postgres --from <dir> --to <url>` moves the embedded engine's data to PostgreSQL.
 */
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './common/logger.js';
import { createApp } from './app.js';

// A queue server allocates many short-lived objects per request; a larger young generation
// cuts scavenge work (measured: about 10% less CPU per task cycle). Set before the heap grows;
// an explicit --max-semi-space-size in NODE_OPTIONS wins.
if (!process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) && !(process.env['NODE_OPTIONS'] ?? '').includes('--max-semi-space-size')) {
  setFlagsFromString('--max-semi-space-size=32');
}

async function main(): Promise<void> {
  if (process.argv[2] === 'migrate-to-postgres') {
    const { migrateCommand } = await import('./persistence/migrate-to-postgres.js');
    const code = await migrateCommand(process.argv.slice(3), (s) => process.stdout.write(`${s}\n`), (s) => process.stderr.write(`${s}\n`));
    process.exit(code);
  }
  let config;
  try {
    config = loadConfig({ env: process.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`codeq: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config);
  let server;
  try {
    server = await createApp(config, { logger: log });
    await server.listen();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, 'start-up failed');
    process.stderr.write(`codeq: start-up failed: ${(e as Error).message}\n`);
    log.flush?.();
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error({}, 'shutdown grace period exceeded; exiting');
      process.exit(1);
    }, config.shutdownGraceSeconds * 1000 + 5000);
    force.unref();
    server
      .close()
      .then(() => {
        log.info({}, 'stopped');
        log.flush?.();
        process.exit(0);
      })
      .catch((e: unknown) => {
        log.error({ err: (e as Error).message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
