// CustomTextCLIP pieces not covered by the golden fixtures: logit-scale clamp, SigLIP init bias,
// zero-shot classifier from prompts and HLIP's prompt-pair scores.
import { describe, expect, it } from 'vitest';
import { getDevice } from './helpers/device.js';
import { CustomTextCLIP, type TextTokenizer } from '../src/models/clip.js';
import { TextTransformer, tokenBatch, type TokenBatch } from '../src/models/text-transformer.js';
import { clampLogitScale, MAX_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE } from '../src/train/losses.js';
import { Tensor } from '../src/tensor/tensor.js';
import { scopeAsync } from '../src/tensor/scope.js';

/** Characters → ids 1..60, SOT 62, EOT 63, zero padding (the clip_wrapper layout). */
const charTokenizer: TextTokenizer = {
  encodeBatch(texts: readonly string[]): TokenBatch {
    const ctx = 12;
    const ids = new Int32Array(texts.length * ctx);
    texts.forEach((t, i) => {
      const row = [62, ...[...t].slice(0, ctx - 2).map((c) => 1 + ((c.codePointAt(0) as number) % 60)), 63];
      ids.set(row, i * ctx);
    });
    return tokenBatch(ids, [texts.length, ctx]);
  },
};

describe('CustomTextCLIP', () => {
  it('clamps the log-scale to [0, ln 100] in place; SigLIP init has scale ln 10 and bias −10', async () => {
    const dev = await getDevice();
    for (const [v, want] of [[5, MAX_LOGIT_SCALE], [-1, 0], [2, 2]] as const) {
      const p = Tensor.from(dev, [v], []);
      clampLogitScale(p);
      expect(await p.item()).toBeCloseTo(want, 6);
      p.dispose();
    }
    const text = new TextTransformer(dev, { contextLength: 12, vocabSize: 64, width: 32, heads: 4, layers: 1, outputDim: 16 });
    const m = new CustomTextCLIP(dev, null, text, { initLogitScale: SIGLIP_INIT_LOGIT_SCALE, initLogitBias: SIGLIP_INIT_LOGIT_BIAS });
    expect(await m.logitScaleParam.item()).toBeCloseTo(Math.log(10), 6);
    expect(await (m.logitBiasParam as Tensor).item()).toBe(-10);
    expect([...m.stateDict().keys()].filter((k) => !k.startsWith('text.'))).toEqual(['logit_scale', 'logit_bias']);
    m.dispose();
  });

  it('zero-shot classifier: averaged, renormalised template embeddings; prompt-pair scores = softmax over (neg, pos)', async () => {
    const dev = await getDevice();
    const text = new TextTransformer(dev, { contextLength: 12, vocabSize: 64, width: 32, heads: 4, layers: 2, outputDim: 16, seed: 7 });
    const m = new CustomTextCLIP(dev, null, text);
    await scopeAsync(async () => {
      const templates = [(c: string) => `a ${c}`, (c: string) => `the ${c}.`];
      const w = m.zeroShotClassifier(charTokenizer, ['cat', 'dog', 'eel'], templates);
      expect(w.shape).toEqual([16, 3]);
      const wd = (await w.data()) as Float32Array;
      // Host reference for class 1: mean of the two normalised template embeddings, renormalised.
      const e = (await m.encodeText(charTokenizer.encodeBatch(['a dog', 'the dog.']), { normalize: true }).data()) as Float32Array;
      const avg = Array.from({ length: 16 }, (_, k) => ((e[k] as number) + (e[16 + k] as number)) / 2);
      const n = Math.hypot(...avg);
      for (let k = 0; k < 16; k++) expect(wd[k * 3 + 1]).toBeCloseTo((avg[k] as number) / n, 5);
      // Prompt pairs on two fake image features.
      const img = Tensor.from(dev, Array.from({ length: 32 }, (_, i) => Math.sin(i)), [2, 16]);
      const pairs = [['Not emphysema', 'Emphysema'], ['Not nodule', 'Nodule']] as const;
      const p = (await m.promptPairScores(charTokenizer, img, pairs).data()) as Float32Array;
      const t = (await m.encodeText(charTokenizer.encodeBatch(pairs.flat()), { normalize: true }).data()) as Float32Array;
      const s = Math.exp(await m.logitScaleParam.item());
      const imgH = (await img.data()) as Float32Array;
      for (let b = 0; b < 2; b++) {
        for (let c = 0; c < 2; c++) {
          const l = [0, 1].map((j) => s * Array.from({ length: 16 }, (_, k) => (imgH[b * 16 + k] as number) * (t[(2 * c + j) * 16 + k] as number)).reduce((a, x) => a + x, 0));
          const want = 1 / (1 + Math.exp((l[0] as number) - (l[1] as number)));
          expect(p[b * 2 + c]).toBeCloseTo(want, 4);
        }
      }
    });
    m.dispose();
  });
});
