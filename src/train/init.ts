// Weight initialisation for small models trained from scratch. The reference initialises like timm /
// Hugging Face (N(0, 0.02) linears, class token std 1e-6) because it starts from pretrained BERT (and
// optionally MAE) weights; a tiny model trained from scratch for a few hundred steps starts, with that
// init, at a collapsed point where every study and every report embeds to nearly the same vector
// (class-token pooling of near-uniform attention), so the contrastive gradient vanishes. Fan-in
// scaling keeps attention content-dependent from the first step.
import type { HostTensor, Module } from '../nn/module.js';
import { randNormal } from '../tensor/rng.js';

export type InitScheme = 'reference' | 'fan-in';

/** Tensors that keep their constructor values: norms, biases, temperatures, fixed position tables. */
function keeps(name: string, shape: readonly number[]): boolean {
  const leaf = name.split('.').pop() as string;
  if (shape.length < 2) return true; // biases, LayerNorm γ/β, logit scale/bias
  if (leaf.endsWith('posemb') || leaf === 'pos_embed') return true;
  return false;
}

/**
 * Re-draws every weight matrix / table / kernel as N(0, 1/fan_in) with fan_in = the product of all but
 * the first dimension (Linear [out, in] → in; Conv3d [C, inC, d, h, w] → inC·d·h·w; embedding [V, D] →
 * D); the class and register tokens as N(0, 1). Deterministic in `seed`. Returns the names re-drawn.
 */
export function initFanIn(model: Module, seed: number): string[] {
  const out = new Map<string, HostTensor>();
  const names: string[] = [];
  let k = 0;
  for (const [name, t] of model.namedParameters()) {
    k++;
    if (!t.requiresGrad || keeps(name, t.shape)) continue;
    const fanIn = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const tokenLike = /(^|\.)(cls_token|reg_token)$/.test(name);
    const std = tokenLike ? 1 : 1 / Math.sqrt(fanIn);
    out.set(name, { shape: [...t.shape], data: randNormal(t.size, seed, { std, stream: k }) });
    names.push(name);
  }
  model.loadStateDict(out, { strict: false });
  return names;
}
