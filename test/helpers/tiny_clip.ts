// Tiny CustomTextCLIP models and batches for the training tests (shapes kept small: the CPU is shared).
import type { Device } from '../../src/gpu/device.js';
import { BertTextEncoder } from '../../src/models/bert.js';
import { CustomTextCLIP, type ClipOptions } from '../../src/models/clip.js';
import { visualConfigFromJson } from '../../src/models/configs.js';
import { TextTransformer } from '../../src/models/text-transformer.js';
import { HlipVisualEncoder } from '../../src/models/visual.js';
import type { HostTensor } from '../../src/nn/module.js';
import type { TrainBatch } from '../../src/train/trainer.js';
import { randomData } from './ref.js';

/** The JSON a run config would carry: reference kwarg names for the visual tower. */
export const TINY_CONFIG = {
  embed_dim: 8,
  vision: {
    img_size: [4, 8, 8], patch_size: [2, 4, 4], embed_dim: 12, depth: 2, num_heads: 2, max_num_scans: 4,
    slice_attn_indexes: [0], study_attn_indexes: [1], drop_path_rate: 0.1,
  },
  text: { context_length: 8, vocab_size: 32, width: 16, heads: 2, layers: 1 },
  bert: { vocab_size: 32, hidden: 16, layers: 2, heads: 2, intermediate: 32, max_positions: 8 },
} as const;

export const VOCAB = TINY_CONFIG.text.vocab_size;
export const CTX = TINY_CONFIG.text.context_length;

export interface TinyOptions extends ClipOptions {
  /** Visual config overrides (reference kwarg names). */
  vision?: Record<string, unknown>;
  /** Text tower: open_clip TextTransformer (default) or a tiny BERT. */
  text?: 'transformer' | 'bert';
}

export function tinyClip(dev: Device, o: TinyOptions = {}): CustomTextCLIP {
  const c = TINY_CONFIG;
  const visual = new HlipVisualEncoder(dev, visualConfigFromJson({ ...c.vision, ...(o.vision ?? {}), out_dim: c.embed_dim }));
  const text =
    o.text === 'bert'
      ? new BertTextEncoder(dev, { vocabSize: c.bert.vocab_size, hidden: c.bert.hidden, layers: c.bert.layers, heads: c.bert.heads, intermediate: c.bert.intermediate, maxPositions: c.bert.max_positions, typeVocabSize: 2, eps: 1e-12, padId: 0 }, c.embed_dim, c.bert.max_positions, 3)
      : new TextTransformer(dev, { contextLength: c.text.context_length, vocabSize: c.text.vocab_size, width: c.text.width, heads: c.text.heads, layers: c.text.layers, outputDim: c.embed_dim, seed: 11 });
  return new CustomTextCLIP(dev, visual, text, o);
}

/**
 * Deterministic batch k: B studies of S scans [4, 8, 8]; texts of T ≤ 8 tokens ending in the EOT id
 * (the largest, which TextTransformer pools) then padding 0. `T` shorter than 8 tests padding joins.
 */
export function tinyBatch(k: number, B = 4, S = 2, T = 6): TrainBatch {
  const [D, H, W] = TINY_CONFIG.vision.img_size;
  const images = Float32Array.from(randomData(B * S * D * H * W, 1000 + k));
  const ids = new Int32Array(B * T);
  const r = randomData(B * T, 2000 + k);
  for (let b = 0; b < B; b++) {
    const len = 2 + ((b + k) % (T - 2));
    for (let t = 0; t < len; t++) ids[b * T + t] = 1 + Math.floor((r[b * T + t] as number + 1) * 0.5 * (VOCAB - 3));
    ids[b * T + len] = VOCAB - 1;
  }
  return { images, shape: [B, S, D, H, W], ids };
}

/** A copy of a model's weights on the host (to start a second model from the same point). */
export async function snapshot(m: CustomTextCLIP): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [n, t] of m.stateDict()) out.set(n, { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) });
  return out;
}

/**
 * Overwrites every parameter with values from `seed` alone (layer inits draw from a process-wide
 * counter, so a model's init otherwise depends on how many were built before it): norms' weights 1,
 * biases 0, the logit scale kept, other tensors uniform with std 1/√(last dim).
 */
export function reinit(m: CustomTextCLIP, seed: number): void {
  const sd = new Map<string, HostTensor>();
  let k = 0;
  for (const [n, t] of m.stateDict()) {
    const shape = [...t.shape];
    const size = t.size;
    let data: Float32Array;
    const leaf = n.split('.').pop() as string;
    const isNorm = /(^|\.)(norm\d?|ln_\w+|LayerNorm)\./.test(n);
    if (n === 'logit_scale' || n === 'logit_bias' || n.endsWith('posemb')) continue;
    if (isNorm && leaf === 'weight') data = new Float32Array(size).fill(1);
    else if (leaf === 'bias' || leaf.endsWith('_bias')) data = new Float32Array(size);
    else {
      const a = Math.sqrt(3) / Math.sqrt(shape[shape.length - 1] ?? 1);
      data = Float32Array.from(randomData(size, seed * 1000 + k, -a, a));
    }
    k++;
    sd.set(n, { shape, data });
  }
  m.loadStateDict(sd, { strict: false });
}
