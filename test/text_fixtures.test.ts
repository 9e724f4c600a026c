// Golden fixtures of the text side, the CLIP wrapper and the losses, run through the same fixture
// runner as `hlip fixture`, in Node and in Chromium.
import { describe, expect, it } from 'vitest';
import { getDevice } from './helpers/device.js';
import { crossRuntime, formatErrors, runGolden } from './helpers/golden.js';

/** Node ≈ Chromium acceptance (max|a−b|/max|b|). */
const CROSS = 1e-5;

async function check(name: string, expectCount?: number): Promise<void> {
  const dev = await getDevice();
  const { outputs, errors } = await runGolden(dev, name);
  console.log(`${name}: ${errors.length} tensors, worst:\n${formatErrors(errors, 8)}`);
  if (expectCount !== undefined) expect(errors.length).toBe(expectCount);
  for (const e of errors) {
    expect(e.err, e.name).toBeLessThanOrEqual(e.tol);
    // Both runtimes within CROSS/2 of the same reference ⇒ Node and Chromium within CROSS of each other.
    if (!e.absolute) expect(e.err, `${e.name} (cross-runtime bound)`).toBeLessThanOrEqual(CROSS / 2);
  }
  // Direct comparison with the other runtime's last run, when there is one (informational: it may be stale).
  const x = await crossRuntime(name, outputs);
  if (x) console.log(`${name}: vs last ${x.other} run, worst ${x.worst.toExponential(2)} (${x.worstName})`);
}

describe('golden fixtures: text towers, CLIP wrapper, losses', () => {
  it('losses: CLIP, CLIP + bias, CLIP at max scale, SigLIP (init and trained), 2026 dual loss, with every gradient', async () => {
    await check('losses', 53);
  });
  it('clip_wrapper: text transformer (causal, EOT pooling), image tower, normalised features, logit scale and logits', async () => {
    await check('clip_wrapper', 9);
  });
  it('checkpoint_openclip: strict load of the training checkpoint (module. keys) and its forward check', async () => {
    await check('checkpoint_openclip', 2);
  });
  for (const [name, count] of [
    ['vit2025_slice_study', 2 * 10 + 1],
    ['vit2025_scan_study', 2 * 11 + 1],
    ['vit2025_slice_scan_study', 2 * 11 + 1],
    ['vit2026_slice_scan_study_dualdinotxt', 2 * 12 + 1],
  ] as const) {
    it(`${name}: the visual encoder fixture through the same runner`, async () => {
      await check(name, count);
    });
  }
  it('vit2025_slice_study_grads: loss, input gradient and 77 parameter gradients (parameters from model_parameters_from)', async () => {
    await check('vit2025_slice_study_grads', 2 + 77);
  });
  it('bert_text: hidden states, pooled, projected, loss and all 54 parameter gradients', async () => {
    await check('bert_text', 62);
  });
});
