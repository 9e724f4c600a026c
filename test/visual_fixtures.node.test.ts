// HLIP visual encoder vs the PyTorch reference fixtures (../shared/golden, beside the repo).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { getDevice } from './helpers/device.js';
import { CROSS_TOL, GRAD_TOL, OUT_TOL } from './helpers/visual_tolerances.js';
import { buildEncoder, hostTensors, parseFixture, runVisualCase, runVisualGrads, type Sidecar } from './helpers/visual_fixture.js';
import { relErr } from './helpers/ref.js';
import { nativeGrid, visualConfigFromJson } from '../src/models/configs.js';
import { sincos1d, sincos3d } from '../src/models/posemb.js';
import { HlipVisualEncoder } from '../src/models/visual.js';

const golden = fileURLToPath(new URL('../../shared/golden/', import.meta.url));
const load = (stem: string) => ({
  st: parseFixture(new Uint8Array(readFileSync(`${golden}${stem}.safetensors`)), `${stem}.safetensors`),
  sidecar: JSON.parse(readFileSync(`${golden}${stem}.json`, 'utf8')) as Sidecar,
});

// Acceptance: outputs within 1e-4, gradients within 1e-3 (max|got − ref| / max|ref|); the stricter
// CROSS_TOL / 2 bound, asserted in both runtimes, makes Node and Chromium agree within CROSS_TOL.

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

const FIXTURES = ['vit2025_slice_study', 'vit2025_scan_study', 'vit2025_slice_scan_study', 'vit2026_slice_scan_study_dualdinotxt'];

describe('HLIP visual encoder: golden fixtures', () => {
  for (const stem of FIXTURES) {
    it(`${stem}: main and resampled cases, every stage`, async () => {
      const { st, sidecar } = load(stem);
      const enc = buildEncoder(dev, st, sidecar);
      try {
        for (const kase of ['main', 'resampled']) {
          const { errors } = await runVisualCase(dev, enc, st, kase);
          console.log(`${stem}/${kase}: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
          expect(Object.keys(errors).length).toBeGreaterThanOrEqual(sidecar.architecture.constructor_kwargs['depth'] as number + 4);
          for (const [name, err] of Object.entries(errors)) {
            expect(err, `${stem}/${kase}.${name}`).toBeLessThanOrEqual(OUT_TOL);
            expect(err, `${stem}/${kase}.${name} (cross-runtime bound)`).toBeLessThanOrEqual(CROSS_TOL / 2);
          }
        }
      } finally {
        enc.dispose();
      }
    });
  }

  it('sin-cos tables: the formulas reproduce the stored tables; a checkpoint without them still loads', async () => {
    for (const stem of ['vit2025_scan_study', 'vit2026_slice_scan_study_dualdinotxt']) {
      const { st, sidecar } = load(stem);
      const cfg = visualConfigFromJson(sidecar.architecture);
      const grid = nativeGrid(cfg);
      expect(relErr(sincos3d(grid, cfg.embedDim), st.float32Sync('visual.trunk.spatial_posemb')), stem).toBeLessThan(1e-6);
      if (cfg.maxNumScans > 1) {
        const seq = sincos1d(cfg.embedDim, Array.from({ length: cfg.maxNumScans }, (_, i) => i));
        expect(relErr(seq, st.float32Sync('visual.trunk.sequential_posemb'))).toBeLessThan(1e-6);
      }
    }
    // Drop the tables from the state dict: strict loading recomputes them and the forward is unchanged.
    const { st, sidecar } = load('vit2025_scan_study');
    const all = hostTensors(st, 'visual.trunk.');
    all.delete('visual.trunk.spatial_posemb');
    all.delete('visual.trunk.sequential_posemb');
    const enc = new HlipVisualEncoder(dev, visualConfigFromJson(sidecar.architecture));
    try {
      enc.trunk.loadStateDict(all, { prefix: 'visual.trunk.' });
      const { errors } = await runVisualCase(dev, enc, st, 'resampled');
      expect(errors['forward_features']).toBeLessThan(1e-5);
    } finally {
      enc.dispose();
    }
  });

  it('vit2025_slice_study_grads: input and every parameter gradient', async () => {
    const { st, sidecar } = load('vit2025_slice_study');
    const grads = parseFixture(new Uint8Array(readFileSync(`${golden}vit2025_slice_study_grads.safetensors`)), 'vit2025_slice_study_grads.safetensors');
    const enc = buildEncoder(dev, st, sidecar);
    try {
      const errors = await runVisualGrads(dev, enc, grads);
      const worst = Object.entries(errors).sort((a, b) => b[1] - a[1]);
      console.log(`grads: loss ${errors['loss']!.toExponential(2)}, input ${errors['grad.input']!.toExponential(2)}, worst ${worst.slice(0, 3).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
      expect(Object.keys(errors).length).toBe(2 + 77);
      for (const [name, err] of Object.entries(errors)) {
        expect(err, name).toBeLessThanOrEqual(name === 'loss' ? OUT_TOL : GRAD_TOL);
        expect(err, `${name} (cross-runtime bound)`).toBeLessThanOrEqual(CROSS_TOL / 2);
      }
    } finally {
      enc.dispose();
    }
  });
});
