// HLIP visual encoder vs the reference fixtures in Chromium (the Node run is visual_fixtures.node.test.ts).
// The fixture bytes come over Vite's /@fs/ route (vitest.config.ts allows ../shared and defines its path).
// Cross-runtime agreement: both runs assert every tensor within CROSS_TOL/2 of the same reference
// tensor, so Node and Chromium agree within CROSS_TOL (max|a − b| ≤ max|a − ref| + max|ref − b|).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { getDevice, inBrowser } from './helpers/device.js';
import { buildEncoder, parseFixture, runVisualCase, runVisualGrads, type Sidecar } from './helpers/visual_fixture.js';
import { CROSS_TOL, GRAD_TOL, OUT_TOL } from './helpers/visual_tolerances.js';

declare const __HLIP_GOLDEN_DIR__: string;
const golden = typeof __HLIP_GOLDEN_DIR__ === 'string' ? __HLIP_GOLDEN_DIR__ : null;
const available = inBrowser && golden !== null;

async function fetchBytes(file: string): Promise<Uint8Array> {
  const r = await fetch(`/@fs${golden}${file}`);
  if (!r.ok) throw new Error(`fetching ${file}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function load(stem: string) {
  const st = parseFixture(await fetchBytes(`${stem}.safetensors`), `${stem}.safetensors`);
  const sidecar = JSON.parse(new TextDecoder().decode(await fetchBytes(`${stem}.json`))) as Sidecar;
  return { st, sidecar };
}

let dev: Device;
beforeAll(async () => {
  if (available) dev = await getDevice();
});

const FIXTURES = ['vit2025_slice_study', 'vit2025_scan_study', 'vit2025_slice_scan_study', 'vit2026_slice_scan_study_dualdinotxt'];

describe.skipIf(!available)('HLIP visual encoder: golden fixtures (Chromium)', () => {
  for (const stem of FIXTURES) {
    it(`${stem}: main and resampled cases, every stage`, async () => {
      const { st, sidecar } = await load(stem);
      const enc = buildEncoder(dev, st, sidecar);
      try {
        for (const kase of ['main', 'resampled']) {
          const { errors } = await runVisualCase(dev, enc, st, kase);
          console.log(`[chromium] ${stem}/${kase}: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
          expect(Object.keys(errors).length).toBeGreaterThanOrEqual((sidecar.architecture.constructor_kwargs['depth'] as number) + 4);
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

  it('vit2025_slice_study_grads: input and every parameter gradient', async () => {
    const { st, sidecar } = await load('vit2025_slice_study');
    const grads = parseFixture(await fetchBytes('vit2025_slice_study_grads.safetensors'), 'vit2025_slice_study_grads.safetensors');
    const enc = buildEncoder(dev, st, sidecar);
    try {
      const errors = await runVisualGrads(dev, enc, grads);
      const worst = Object.entries(errors).sort((a, b) => b[1] - a[1]);
      console.log(`[chromium] grads: loss ${errors['loss']!.toExponential(2)}, input ${errors['grad.input']!.toExponential(2)}, worst ${worst.slice(0, 3).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
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
