// open_clip's mean_pooler on the BERT tower: masked mean of last_hidden_state over the real tokens.
import { describe, expect, it } from 'vitest';
import { getDevice } from './helpers/device.js';
import { BertTextEncoder, type BertConfig } from '../src/models/bert.js';
import { tokenBatch } from '../src/models/text-transformer.js';
import { buildOpenClip } from '../src/models/openclip.js';
import { scopeAsync } from '../src/tensor/scope.js';

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
});
