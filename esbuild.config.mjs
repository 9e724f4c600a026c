// Builds the library (Node and browser ESM), the CLI and the benchmarks. WGSL files are bundled as text.
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

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

await Promise.all(builds.map((b) => esbuild.build(b)));
