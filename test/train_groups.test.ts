// AdamW parameter groups (which names get no weight decay) and lock-text freezing.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { createOptimizer, excludedFromDecay, lockTextTower, paramGroups } from '../src/train/param-groups.js';
import { Trainer } from '../src/train/trainer.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { tinyBatch, tinyClip } from './helpers/tiny_clip.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

describe('parameter groups', () => {
  it('no decay for rank < 2 and names with bn / ln / bias / logit_scale; only trainable params', () => {
    const m = tinyClip(dev, { initLogitBias: -10 });
    const g = paramGroups(m, { weightDecay: 0.2 });
    const all = [...m.namedParameters()].map(([n]) => n);
    expect(new Set(g.names)).toEqual(new Set(all));
    expect(g.names).toEqual([...g.noDecay, ...g.decay]);
    for (const n of ['logit_scale', 'logit_bias', 'visual.trunk.patch_embed.proj.bias', 'visual.trunk.blocks.0.norm1.weight', 'visual.trunk.blocks.1.attn.qkv.bias', 'text.ln_final.weight', 'text.transformer.resblocks.0.ln_1.bias', 'text.transformer.resblocks.0.attn.in_proj_bias']) {
      expect(g.noDecay, n).toContain(n);
    }
    // cls_token [1,1,C] and the Conv3d weight are decayed, as in the reference.
    for (const n of ['visual.trunk.cls_token', 'visual.trunk.patch_embed.proj.weight', 'visual.head.proj.weight', 'text.token_embedding.weight', 'text.positional_embedding', 'text.text_projection', 'text.transformer.resblocks.0.attn.in_proj_weight']) {
      expect(g.decay, n).toContain(n);
    }
    // Frozen sin-cos tables are buffers, never optimised.
    expect(g.names.some((n) => n.includes('posemb'))).toBe(false);
    expect(g.specs.map((s) => s.weightDecay)).toEqual([0, 0.2]);
    // The substring rule is literal: a 2-D tensor whose name contains "ln" is not decayed.
    const t = Tensor.from(dev, [1, 2, 3, 4], [2, 2]);
    expect(excludedFromDecay('kiln.weight', t)).toBe(true);
    expect(excludedFromDecay('head.weight', t)).toBe(false);
    t.dispose();
    const { optimizer } = createOptimizer(m);
    expect(optimizer.paramGroups.map((x) => [x.lr, x.betas, x.eps, x.weightDecay])).toEqual([[5e-4, [0.9, 0.98], 1e-6, 0], [5e-4, [0.9, 0.98], 1e-6, 0.2]]);
    optimizer.dispose();
    m.dispose();
  });

  it('lock-text on BERT: body frozen, LayerNorms trainable unless frozen, unlocked layers, proj always trainable', () => {
    const trainable = (m: ReturnType<typeof tinyClip>) => [...m.namedParameters()].filter(([n, p]) => n.startsWith('text.') && p.requiresGrad).map(([n]) => n);
    const m = tinyClip(dev, { text: 'bert' });
    const frozen = lockTextTower(m);
    const t = trainable(m);
    // embeddings.LayerNorm + 2 per layer (attention.output and output), weight and bias; and proj.
    expect(t.sort()).toEqual([
      'text.proj.weight',
      'text.transformer.embeddings.LayerNorm.bias', 'text.transformer.embeddings.LayerNorm.weight',
      ...[0, 1].flatMap((i) => [`text.transformer.encoder.layer.${i}.attention.output.LayerNorm.bias`, `text.transformer.encoder.layer.${i}.attention.output.LayerNorm.weight`, `text.transformer.encoder.layer.${i}.output.LayerNorm.bias`, `text.transformer.encoder.layer.${i}.output.LayerNorm.weight`]),
    ].sort());
    expect(frozen).toContain('text.transformer.embeddings.word_embeddings.weight');
    expect(paramGroups(m).names.filter((n) => n.startsWith('text.')).sort()).toEqual(t.sort());
    m.dispose();

    const m2 = tinyClip(dev, { text: 'bert' });
    lockTextTower(m2, { freezeLayerNorm: true });
    expect(trainable(m2)).toEqual(['text.proj.weight']);
    m2.dispose();

    // unlocked_layers = 1: embeddings and layer 0 locked (norms trainable), layer 1 fully trainable.
    const m3 = tinyClip(dev, { text: 'bert' });
    lockTextTower(m3, { unlockedLayers: 1 });
    const t3 = trainable(m3);
    expect(t3).toContain('text.transformer.encoder.layer.1.attention.self.query.weight');
    expect(t3).toContain('text.transformer.encoder.layer.0.output.LayerNorm.weight');
    expect(t3).not.toContain('text.transformer.encoder.layer.0.attention.self.query.weight');
    expect(t3).not.toContain('text.transformer.embeddings.position_embeddings.weight');
    m3.dispose();

    // open_clip's TextTransformer: norms cannot stay trainable; full lock freezes the whole tower.
    const m4 = tinyClip(dev);
    expect(() => lockTextTower(m4)).toThrow(/freezeLayerNorm/);
    lockTextTower(m4, { freezeLayerNorm: true });
    expect(trainable(m4)).toEqual([]);
    m4.dispose();
  });

  it('a locked text body does not move in a training step; its LayerNorms and the image tower do', async () => {
    const m = tinyClip(dev, { text: 'bert' });
    const tr = new Trainer(m, { lr: 1e-2, lockText: {}, seed: 3 });
    const read = async (n: string) => Float32Array.from((await [...m.namedParameters()].find(([k]) => k === n)![1].data()) as Float32Array);
    const names = ['text.transformer.encoder.layer.0.attention.self.query.weight', 'text.transformer.encoder.layer.1.output.LayerNorm.weight', 'text.proj.weight', 'visual.trunk.blocks.0.attn.qkv.weight'];
    const before = await Promise.all(names.map(read));
    await tr.step([tinyBatch(0)]);
    const after = await Promise.all(names.map(read));
    expect(after[0]).toEqual(before[0]);
    for (let i = 1; i < names.length; i++) expect(after[i], names[i]).not.toEqual(before[i]);
    tr.dispose();
    m.dispose();
  });
});
