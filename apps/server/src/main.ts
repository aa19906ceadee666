/** Bootstrap only: loadConfig() → createApp(config) → listen; graceful SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './common/logger.js';
import { createApp } from './app.js';

async function main(): Promise<void> {
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
