// `hlip fixture` end to end (Node): fixtures stripped to their parameters and inputs, sidecars without
// sha256, run through the CLI command, outputs compared with the golden references.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../src/cli/fixture.js';
import { fixtureHandler, fixtureOutputNames, isPrecisionReference, parseSidecar } from '../src/eval/fixtures.js';
import { parseSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { readSafetensorsFile } from '../src/io/node-files.js';
import { formatErrors, GOLDEN_DIR, isNoiseTensor, maxAbs, maxRel, type TensorError } from './helpers/golden.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hlip-fixture-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Copies a fixture keeping only what the runner reads (its inputs), and its sidecar without sha256. */
async function stripped(name: string): Promise<{ path: string; dropped: number }> {
  const sidecar = parseSidecar(JSON.parse(await readFile(`${GOLDEN_DIR}/${name}.json`, 'utf8')));
  const h = fixtureHandler(sidecar);
  const src = parseSafetensors(new Uint8Array(await readFile(`${GOLDEN_DIR}/${name}.safetensors`)));
  const keep = src.names().filter((n) => h.isInput(n, sidecar));
  const tensors = keep.map((n) => [n, { dtype: src.entry(n).dtype, shape: src.entry(n).shape, data: src.bytesSync(n) }] as const);
  const path = join(dir, `${name}.safetensors`);
  await writeFile(path, writeSafetensors(tensors));
  delete sidecar.sha256;
  await writeFile(join(dir, `${name}.json`), JSON.stringify(sidecar));
  // A fixture whose parameters live in another one: that file goes beside it, untouched.
  if (sidecar.model_parameters_from) {
    const stem = sidecar.model_parameters_from.replace(/\.safetensors$/, '');
    for (const ext of ['.safetensors', '.json']) await writeFile(join(dir, stem + ext), await readFile(`${GOLDEN_DIR}/${stem}${ext}`));
  }
  return { path, dropped: src.names().length - keep.length };
}

async function runCli(name: string): Promise<TensorError[]> {
  const { path, dropped } = await stripped(name);
  const sidecar = parseSidecar(JSON.parse(await readFile(`${GOLDEN_DIR}/${name}.json`, 'utf8')));
  const want = Object.keys(sidecar.tensor_index).filter((n) => !isPrecisionReference(n) && !fixtureHandler(sidecar).isInput(n, sidecar));
  expect(dropped).toBeGreaterThanOrEqual(want.length);
  const out = join(dir, `${name}.out.safetensors`);
  expect(await fixture([path, '--out', out])).toBe(0);
  const got = await readSafetensorsFile(out);
  const ref = await readSafetensorsFile(`${GOLDEN_DIR}/${name}.safetensors`);
  try {
    expect(got.names().sort()).toEqual([...want].sort());
    expect(fixtureOutputNames(sidecar).sort()).toEqual([...want].sort());
    const errs: TensorError[] = [];
    for (const n of want) {
      expect(got.entry(n).dtype).toBe('F32');
      expect(got.entry(n).shape).toEqual(sidecar.tensor_index[n]?.shape);
      const a = await got.float32(n);
      const r = await ref.float32(n);
      const absolute = isNoiseTensor(n);
      const grad = n.startsWith('grad.') || n.includes('.grad.');
      errs.push({ name: n, err: absolute ? maxAbs(a, r) : maxRel(a, r), absolute, tol: absolute ? 1e-5 : grad ? 1e-3 : 1e-4 });
    }
    console.log(`hlip fixture ${name}: ${errs.length} tensors, worst:\n${formatErrors(errs, 6)}`);
    for (const e of errs) expect(e.err, e.name).toBeLessThanOrEqual(e.tol);
    return errs;
  } finally {
    await got.close();
    await ref.close();
  }
}

describe('hlip fixture (CLI) on stripped fixtures', () => {
  it('losses: 53 outputs, logits and gradients from the leaves only', async () => {
    expect((await runCli('losses')).length).toBe(53);
  });
  it('clip_wrapper: 9 outputs from the weights and inputs only', async () => {
    expect((await runCli('clip_wrapper')).length).toBe(9);
  });
  it('bert_text: 8 forward tensors and 54 parameter gradients from the weights and inputs only', async () => {
    const errs = await runCli('bert_text');
    expect(errs.filter((e) => e.name.startsWith('grad.')).length).toBe(54);
  });
  it('vit2025_slice_study_grads: parameters read from the fixture named by model_parameters_from; loss, input and 77 parameter gradients', async () => {
    const errs = await runCli('vit2025_slice_study_grads');
    expect(errs.filter((e) => e.name.startsWith('grad.visual.trunk.')).length).toBe(77);
  });
  it('refuses a sidecar that does not describe a fixture, and a fixture kind it does not know', async () => {
    expect(() => parseSidecar({ tensor_index: {} })).toThrow(/fixture/);
    expect(() => fixtureHandler(parseSidecar({ fixture: 'nope', tensor_index: {} }))).toThrow(/no fixture runner for 'nope'/);
    expect(await fixture([join(dir, 'missing.safetensors')])).toBe(2);
  });
});
