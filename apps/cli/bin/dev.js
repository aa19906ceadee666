#!/usr/bin/env node
// Development entry: recompiles (tsc) and regenerates oclif.manifest.json first, then runs like
// bin/run.js with oclif's debug settings.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execute } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
execFileSync(process.execPath, [join(root, 'scripts', 'manifest.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
await execute({ development: true, dir: import.meta.url });
