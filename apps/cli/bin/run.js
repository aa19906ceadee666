#!/usr/bin/env node
// The `codeq` CLI (oclif). Commands are loaded from dist/commands (see "oclif" in package.json).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
