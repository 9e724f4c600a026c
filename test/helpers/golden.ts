// Golden fixtures (../shared/golden) in either runtime: Node reads the files, Chromium asks the vitest
// server for them (vitest.config.ts allows '..'). Comparison in the README's metric max|got−ref|/max|ref|.
import { inBrowser } from './device.js';
import { parseSafetensors, writeSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import { parseSidecar, runFixture, type FixtureFiles, type FixtureOutputs, type FixtureSidecar } from '../../src/eval/fixtures.js';
import type { Device } from '../../src/gpu/device.js';

/** Relative to the project root. */
export const GOLDEN_DIR = '../shared/golden';
/** Where each runtime leaves its outputs for the Node ≈ Chromium comparison (git-ignored). */
export const RUNS_DIR = 'node_modules/.cache/hlip-fixture-runs';

type Commands = {
  readFile(path: string, opts: { encoding: 'base64' | 'utf8' }): Promise<string>;
  writeFile(path: string, data: string, opts: { encoding: 'base64' }): Promise<void>;
};

// A virtual module of browser mode; importing it in Node throws, so only the browser branch loads it.
async function browserCommands(): Promise<Commands> {
  return (await import('vitest/browser')).commands as unknown as Commands;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of a file relative to the project root, or null when it does not exist. */
export async function readProjectFile(path: string): Promise<Uint8Array | null> {
  try {
    if (inBrowser) return fromBase64(await (await browserCommands()).readFile(path, { encoding: 'base64' }));
    const fs = 'node:fs/promises';
    const { readFile } = (await import(/* @vite-ignore */ fs)) as typeof import('node:fs/promises');
    return new Uint8Array(await readFile(path));
  } catch {
    return null;
  }
}

export async function writeProjectFile(path: string, data: Uint8Array): Promise<void> {
  if (inBrowser) return (await browserCommands()).writeFile(path, toBase64(data), { encoding: 'base64' });
  const fs = 'node:fs/promises';
  const { writeFile, mkdir } = (await import(/* @vite-ignore */ fs)) as typeof import('node:fs/promises');
  await mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
  await writeFile(path, data);
}

export interface Golden {
  sidecar: FixtureSidecar;
  file: SafetensorsFile;
  files: FixtureFiles;
}

export async function loadGolden(name: string): Promise<Golden> {
  const bytes = await readProjectFile(`${GOLDEN_DIR}/${name}.safetensors`);
  const json = await readProjectFile(`${GOLDEN_DIR}/${name}.json`);
  if (!bytes || !json) throw new Error(`golden fixture ${name} not found under ${GOLDEN_DIR}`);
  const sidecar = parseSidecar(JSON.parse(new TextDecoder().decode(json)), `${name}.json`);
  const file = parseSafetensors(bytes, `${name}.safetensors`);
  const files: FixtureFiles = { sidecar, file };
  if (sidecar.model_parameters_from) {
    const p = await loadGolden(sidecar.model_parameters_from.replace(/\.safetensors$/, ''));
    files.params = p.file;
    files.paramsSidecar = p.sidecar;
  }
  return { sidecar, file, files };
}

export function maxRel(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs((got[i] as number) - (ref[i] as number)));
    den = Math.max(den, Math.abs(ref[i] as number));
  }
  return got.length !== ref.length ? Infinity : den === 0 ? num : num / den;
}

export function maxAbs(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs((got[i] as number) - (ref[i] as number)));
  return got.length !== ref.length ? Infinity : m;
}

export interface TensorError {
  name: string;
  /** max|got−ref|/max|ref|, or the absolute error for tensors compared absolutely. */
  err: number;
  absolute: boolean;
  tol: number;
}

/** Tensors whose reference is float32 rounding noise around 0 (README): compared absolutely. */
export const isNoiseTensor = (name: string): boolean => /attention\.self\.key\.bias$/.test(name) || name === 'clip_bias.grad.logit_bias';

/** Acceptance: outputs within 1e-4, gradients within 1e-3 (relative); noise tensors within 1e-5 absolute. */
export async function compareToGolden(g: Golden, outputs: FixtureOutputs): Promise<TensorError[]> {
  const errs: TensorError[] = [];
  for (const [name, t] of outputs) {
    const ref = await g.file.float32(name);
    const absolute = isNoiseTensor(name);
    const grad = name.startsWith('grad.') || name.includes('.grad.');
    errs.push({ name, err: absolute ? maxAbs(t.data, ref) : maxRel(t.data, ref), absolute, tol: absolute ? 1e-5 : grad ? 1e-3 : 1e-4 });
  }
  return errs;
}

export async function runGolden(dev: Device, name: string): Promise<{ golden: Golden; outputs: FixtureOutputs; errors: TensorError[] }> {
  const golden = await loadGolden(name);
  const outputs = await runFixture(dev, golden.files);
  return { golden, outputs, errors: await compareToGolden(golden, outputs) };
}

/** One line per tensor, worst first. */
export function formatErrors(errs: readonly TensorError[], limit = 12): string {
  return [...errs]
    .sort((a, b) => b.err / b.tol - a.err / a.tol)
    .slice(0, limit)
    .map((e) => `${e.name}: ${e.err.toExponential(2)}${e.absolute ? ' abs' : ''}`)
    .join('\n');
}

/** Saves this runtime's outputs and, when the other runtime's are there, returns their max relative gap. */
export async function crossRuntime(name: string, outputs: FixtureOutputs): Promise<{ other: string; worst: number; worstName: string } | null> {
  const me = inBrowser ? 'chromium' : 'node';
  const other = inBrowser ? 'node' : 'chromium';
  const tensors = [...outputs].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }] as const);
  await writeProjectFile(`${RUNS_DIR}/${me}/${name}.safetensors`, writeSafetensors(tensors));
  const bytes = await readProjectFile(`${RUNS_DIR}/${other}/${name}.safetensors`);
  if (!bytes) return null;
  const f = parseSafetensors(bytes, `${other}/${name}`);
  let worst = 0;
  let worstName = '';
  for (const [n, t] of outputs) {
    if (!f.tensors.has(n)) continue;
    const e = isNoiseTensor(n) ? maxAbs(t.data, f.float32Sync(n)) : maxRel(t.data, f.float32Sync(n));
    if (e > worst) {
      worst = e;
      worstName = n;
    }
  }
  return { other, worst, worstName };
}
