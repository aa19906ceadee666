/** `@codeq/cli` programmatic entry: run the CLI in-process (`await run(['tasks', 'get', id])`). */
export { run } from '@oclif/core';
export { BaseCommand, exitCodeFor, CLI_RETRY } from './base-command.js';
export { resolveSettings, configPath, type Settings, type Profile } from './settings.js';
