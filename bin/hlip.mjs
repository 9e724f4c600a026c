#!/usr/bin/env node
// Runs the bundled CLI. In a source checkout (esbuild.config.mjs present) it is rebuilt first when any
// source file is newer than the bundle; esbuild takes about a second.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'node-cli', 'cli.js');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (existsSync(join(root, 'esbuild.config.mjs')) && existsSync(join(root, 'src'))) {
  const built = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  if (Math.max(newest(join(root, 'src')), newest(join(root, 'shaders'))) > built) {
    execFileSync(process.execPath, [join(root, 'esbuild.config.mjs')], { cwd: root, stdio: 'inherit' });
  }
}
await import(pathToFileURL(cli).href);
