// Runs the HLIP visual encoder on a golden fixture (bytes of the .safetensors plus its parsed .json
// sidecar) and measures max|got − ref| / max|ref| per tensor. Runtime-neutral: Node and Chromium
// tests only differ in how they obtain the bytes.
import type { Device } from '../../src/gpu/device.js';
import { parseSafetensors, type SafetensorsFile } from '../../src/io/index.js';
import { visualConfigFromJson } from '../../src/models/configs.js';
import { HlipVisualEncoder } from '../../src/models/visual.js';
import type { HostTensor } from '../../src/nn/module.js';
import { l2Normalize } from '../../src/ops/normalize.js';
import { mul } from '../../src/ops/elementwise.js';
import { sum } from '../../src/ops/reduce.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { relErr } from './ref.js';

export interface Sidecar {
  architecture: { constructor_kwargs: Record<string, unknown>; out_dim?: number };
  cases: Record<string, unknown>;
}

export function hostTensors(st: SafetensorsFile, prefix: string): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  for (const [name, e] of st.tensors) if (name.startsWith(prefix)) m.set(name, { shape: e.shape, data: st.float32Sync(name) });
  return m;
}

export function buildEncoder(dev: Device, st: SafetensorsFile, sidecar: Sidecar): HlipVisualEncoder {
  const cfg = visualConfigFromJson(sidecar.architecture);
  const enc = new HlipVisualEncoder(dev, cfg);
  if (cfg.outDim) enc.loadStateDict(hostTensors(st, 'visual.'), { prefix: 'visual.' });
  else enc.trunk.loadStateDict(hostTensors(st, 'visual.trunk.'), { prefix: 'visual.trunk.' });
  return enc;
}

/** Per-tensor errors (name → relErr) of one case, and the raw outputs for cross-runtime checks. */
export async function runVisualCase(dev: Device, enc: HlipVisualEncoder, st: SafetensorsFile, kase: string): Promise<{ errors: Record<string, number>; outputs: Record<string, Float32Array> }> {
  const errors: Record<string, number> = {};
  const outputs: Record<string, Float32Array> = {};
  const has = (n: string) => st.tensors.has(`${kase}.${n}`);
  await scopeAsync(async () => {
    const input = st.entry(`${kase}.input`);
    const x = Tensor.from(dev, st.float32Sync(`${kase}.input`), input.shape);
    const out = enc.forward(x, { blocks: true, intermediates: true });
    const got: [string, Tensor][] = [
      ['patch_embed', out.patchEmbed as Tensor],
      ['pos_embed', out.posEmbed as Tensor],
      ...(out.blocks as Tensor[]).map((b, i) => [`block.${i}`, b] as [string, Tensor]),
      ['forward_features', out.tokens as Tensor],
      ['pooled', out.pooled],
    ];
    if (has('image_features_unnormalized')) {
      got.push(['image_features_unnormalized', out.features]);
      got.push(['image_features', l2Normalize(out.features, -1)]);
    }
    for (const [name, t] of got) {
      const ref = st.float32Sync(`${kase}.${name}`);
      const shape = st.entry(`${kase}.${name}`).shape;
      if (t.shape.join() !== shape.join()) throw new Error(`${kase}.${name}: shape [${t.shape.join(', ')}] vs reference [${shape.join(', ')}]`);
      const data = (await t.data()) as Float32Array;
      outputs[name] = data;
      errors[name] = relErr(data, ref);
    }
  });
  return { errors, outputs };
}

/** Gradients of loss = sum(pooled · loss_weights) w.r.t. the input and every trainable parameter. */
export async function runVisualGrads(dev: Device, enc: HlipVisualEncoder, grads: SafetensorsFile): Promise<Record<string, number>> {
  const errors: Record<string, number> = {};
  await scopeAsync(async () => {
    const e = grads.entry('input');
    const x = Tensor.from(dev, grads.float32Sync('input'), e.shape);
    x.requiresGrad = true;
    const lw = Tensor.from(dev, grads.float32Sync('loss_weights'), grads.entry('loss_weights').shape);
    const out = enc.forward(x, { tokens: false });
    const loss = sum(mul(out.pooled, lw));
    errors['loss'] = relErr(await loss.data(), grads.float32Sync('loss'));
    loss.backward();
    errors['grad.input'] = relErr((await x.grad!.data()) as Float32Array, grads.float32Sync('grad.input'));
    for (const [name, p] of enc.trunk.namedParameters('visual.trunk.')) {
      const key = `grad.${name}`;
      if (!grads.tensors.has(key)) throw new Error(`fixture lacks ${key}`);
      if (!p.grad) throw new Error(`${name} got no gradient`);
      errors[key] = relErr((await p.grad.data()) as Float32Array, grads.float32Sync(key));
    }
    const expected = [...grads.tensors.keys()].filter((k) => k.startsWith('grad.visual.')).length;
    const seen = Object.keys(errors).filter((k) => k.startsWith('grad.visual.')).length;
    if (seen !== expected) throw new Error(`checked ${seen} parameter gradients, fixture has ${expected}`);
  });
  for (const [, p] of enc.trunk.namedParameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  return errors;
}

export function parseFixture(bytes: Uint8Array, name: string): SafetensorsFile {
  return parseSafetensors(bytes, name);
}
