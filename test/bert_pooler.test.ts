// open_clip's mean_pooler on the BERT tower: masked mean of last_hidden_state over the real tokens.
import { describe, expect, it } from 'vitest';
import { getDevice } from './helpers/device.js';
import { BertTextEncoder, trimPadding, type BertConfig } from '../src/models/bert.js';
import { tokenBatch } from '../src/models/text-transformer.js';
import { buildOpenClip } from '../src/models/openclip.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { sum } from '../src/ops/reduce.js';

const CFG: BertConfig = { vocabSize: 50, hidden: 16, layers: 1, heads: 2, intermediate: 32, maxPositions: 12, typeVocabSize: 2, eps: 1e-12, padId: 0 };

describe('BERT mean_pooler', () => {
  it('equals the masked mean of the last hidden state (padding excluded), then the projection', async () => {
    const dev = await getDevice();
    const enc = new BertTextEncoder(dev, CFG, 8, 12, 3, 'mean_pooler');
    const ids = Int32Array.from([2, 7, 9, 4, 0, 0, 0, 2, 11, 13, 17, 19, 23, 4]);
    const tok = tokenBatch(ids, [2, 7]);
    await scopeAsync(async () => {
      const last = (await enc.transformer.forward(tok).data()) as Float32Array;
      const pooled = (await enc.pooled(tok).data()) as Float32Array;
      for (let b = 0; b < 2; b++) {
        const real = [...ids.subarray(b * 7, b * 7 + 7)].map((v) => (v !== 0 ? 1 : 0));
        const n = real.reduce((a: number, x) => a + x, 0);
        for (let k = 0; k < 16; k++) {
          let s = 0;
          for (let t = 0; t < 7; t++) s += real[t]! * last[(b * 7 + t) * 16 + k]!;
          expect(pooled[b * 16 + k]).toBeCloseTo(s / n, 5);
        }
      }
      expect(enc.encode(tok).shape).toEqual([2, 8]);
    });
    enc.dispose();
  });

  it('open_clip config: hf_pooler_type mean_pooler is built, unknown poolers are refused', async () => {
    const dev = await getDevice();
    const text_cfg = { hf_model_name: 'x', context_length: 12, hf_model_config: { vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 12 } };
    const m = buildOpenClip(dev, { embed_dim: 8, text_cfg: { ...text_cfg, hf_pooler_type: 'mean_pooler' } }, { noVisual: true });
    expect((m.text as BertTextEncoder).pooler).toBe('mean_pooler');
    m.model.dispose();
    expect(() => buildOpenClip(dev, { embed_dim: 8, text_cfg: { ...text_cfg, hf_pooler_type: 'max_pooler' } }, { noVisual: true })).toThrow(/max_pooler.*not supported/);
  });

  it('cuts padding columns every row masks; pooled features and gradients equal the full-width run', async () => {
    const dev = await getDevice();
    // 3 rows of 12 positions, the longest real row has 5 tokens: 7 columns are padding everywhere.
    const ids = Int32Array.from([2, 7, 9, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, 11, 13, 17, 4, 0, 0, 0, 0, 0, 0, 0, 2, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const tok = tokenBatch(ids, [3, 12]);
    const cut = trimPadding(tok, {}, 0);
    expect(cut.tokens.shape).toEqual([3, 5]);
    expect([...cut.tokens.ids.subarray(5, 10)]).toEqual([2, 11, 13, 17, 4]);
    // An explicit mask decides what is padding, and token types are cut with it.
    const m = trimPadding(tok, { attentionMask: Int32Array.from(ids, (v, i) => (v !== 0 || i % 12 < 7 ? 1 : 0)), tokenTypeIds: new Int32Array(36).fill(1) }, 0);
    expect(m.tokens.shape).toEqual([3, 7]);
    expect(m.opts.tokenTypeIds?.length).toBe(21);
    expect(trimPadding(tokenBatch(ids.subarray(12, 24), [1, 12]), {}, 0).tokens.shape).toEqual([1, 5]);
    for (const pooler of ['cls_last_hidden_state_pooler', 'mean_pooler'] as const) {
      const enc = new BertTextEncoder(dev, CFG, 8, 12, 5, pooler);
      await scopeAsync(async () => {
        const run = async (full: boolean) => {
          // hiddenStates turns trimming off: the reference full-width forward.
          const f = full ? enc.pooled(tok, { hiddenStates: [] }) : enc.pooled(tok);
          sum(enc.project(f)).backward();
          const grads = await Promise.all([...enc.parameters()].map(async (p) => (p.grad ? ((await p.grad.data()) as Float32Array) : new Float32Array(0))));
          for (const p of enc.parameters()) {
            p.grad?.dispose();
            p.grad = null;
          }
          return { out: (await f.data()) as Float32Array, grads };
        };
        const a = await run(true);
        const b = await run(false);
        const scale = Math.max(...a.out.map(Math.abs));
        for (let i = 0; i < a.out.length; i++) expect(Math.abs(a.out[i]! - b.out[i]!) / scale).toBeLessThan(1e-5);
        a.grads.forEach((g, k) => {
          const gs = Math.max(1e-12, ...g.map(Math.abs));
          for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - b.grads[k]![i]!) / gs).toBeLessThan(1e-5);
        });
      });
      enc.dispose();
    }
  });
});
