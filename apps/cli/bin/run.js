#!/usr/bin/env node
// The `codeq` CLI (oclif). Commands are loaded from dist/commands (see "oclif" in package.json).
import { existsSync } from 'node:fs';
import { Errors, flush, run } from '@oclif/core';

if (!existsSync(new URL('../dist/commands', import.meta.url))) {
  // A repository checkout where only the server was built: say so instead of oclif's "command … not found".
  process.stderr.write('[ERROR] the codeq CLI is not built: run `bash scripts/pnpm.sh --filter @codeq/cli... run build` (or `npm start`) at the repository root\n');
  process.exit(1);
}

// `codeq help tasks submit` (as upstream's CLI) = `codeq tasks submit --help`.
let argv = process.argv.slice(2);
if (argv[0] === 'help') argv = [...argv.slice(1), '--help'];

try {
  await run(argv, import.meta.url);
  await flush();
} catch (err) {
  const missing = err instanceof Error ? /^command (\S+) not found$/.exec(err.message) : null;
  if (missing) {
    // oclif names it `tasks:submit:X` (the id plus stray arguments); show what the user typed.
    process.stderr.write(`[ERROR] unknown command: codeq ${(missing[1] ?? '').replaceAll(':', ' ')}\nSee \`codeq --help\` for the commands.\n`);
    process.exit(2);
  }
  await Errors.handle(err);
}
