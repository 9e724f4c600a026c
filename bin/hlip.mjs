#!/usr/bin/env node
// Runs the bundled CLI; in a source checkout it is built on first use.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'node-cli', 'cli.js');
if (!existsSync(cli) && existsSync(join(root, 'esbuild.config.mjs'))) {
  execFileSync(process.execPath, [join(root, 'esbuild.config.mjs')], { cwd: root, stdio: 'inherit' });
}
await import(cli);
