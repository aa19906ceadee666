#!/usr/bin/env node
// The `codeq` CLI (oclif). Commands are loaded from dist/commands (see "oclif" in package.json).
import { existsSync } from 'node:fs';
import { execute } from '@oclif/core';

if (!existsSync(new URL('../dist/commands', import.meta.url))) {
  // A repository checkout where only the server was built (`npm start`): say so instead of oclif's
  // "command … not found".
  process.stderr.write('[ERROR] the codeq CLI is not built: run `bash scripts/pnpm.sh --filter @codeq/cli... run build` (or `npm start`) at the repository root\n');
  process.exit(1);
}
await execute({ dir: import.meta.url });
