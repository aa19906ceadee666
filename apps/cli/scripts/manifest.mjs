#!/usr/bin/env node
// Writes oclif.manifest.json (what `oclif manifest` does, without the oclif dev CLI and its
// network-heavy dependencies): the command list with flags and args, so an installed `codeq`
// does not import every command file to answer `--help` or to find a command.
// Run after `tsc` (the build script does); the file is generated, not committed.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin } from '@oclif/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const plugin = new Plugin({ root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true });
await plugin.load();
const ids = Object.keys(plugin.manifest.commands);
if (ids.length === 0) throw new Error('no commands found: build first (tsc -p tsconfig.build.json)');
await writeFile(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n');
console.log(`oclif.manifest.json: ${ids.length} commands, version ${plugin.manifest.version}`);
