// Released Hugging Face layout through in-memory buffers (the browser path): config choice, strict=False
// loading, tokenizer, and the loaded model's outputs against the golden fixtures.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../src/gpu/device.js';
import { hfFilesFrom, loadHfModel, loadHfTokenizer } from '../src/io/hf.js';
import { JsonTokenizer, WordPieceTokenizer } from '../src/models/tokenizer.js';
import { tokenBatch } from '../src/models/text-transformer.js';
import { scopeAsync } from '../src/tensor/scope.js';
import { Tensor } from '../src/tensor/tensor.js';
import { getDevice } from './helpers/device.js';
import { maxRel } from './helpers/golden.js';
import { bertTokenizerJson, dualSnapshot, LN_INV_007, tinyVocab } from './helpers/hf_snapshot.js';
import { OUT_TOL } from './helpers/visual_tolerances.js';

let dev: Device;
beforeAll(async () => {
  dev = await getDevice();
});

describe('Hugging Face snapshot from buffers', () => {
  it('2026 layout: picks the config by shapes, reports missing/unexpected keys, matches the golden image and text outputs', async () => {
    const snap = await dualSnapshot();
    // ArrayBuffers, as a browser hands them over (fetch / FileReader).
    const buffers: Record<string, ArrayBuffer> = {};
    for (const [p, b] of snap.files) buffers[p] = b.slice().buffer as ArrayBuffer;
    const hf = await loadHfModel(dev, hfFilesFrom(buffers, 'tiny-repo'));
    try {
      expect(hf.modelName).toBe('tiny_dual');
      expect(hf.configPath).toBe('hlip/model_configs/tiny_dual.json');
      expect(hf.configSource).toBe('shapes');
      expect(hf.equivalent).toEqual(['tiny_dual_alias']);
      expect(hf.missing).toEqual(['logit_bias']);
      expect(hf.unexpected).toEqual(['text.transformer.embeddings.position_ids']);
      expect(hf.tokenizerPath).toBe('vocab.txt');
      expect(hf.tokenizer).toBeInstanceOf(WordPieceTokenizer);
      expect(hf.contextLength).toBe(16);
      expect(hf.visual?.cfg.pool).toBe('dinotxt');
      await scopeAsync(async () => {
        // logit_bias was missing: it keeps its init (init_logit_bias), logit_scale comes from the file.
        expect((await hf.model.logitBiasParam!.data())[0]).toBeCloseTo(LN_INV_007, 6);
        expect((await hf.model.logitScaleParam.data())[0]).toBeCloseTo(LN_INV_007, 6);
        const xin = snap.vit.file.entry('main.input');
        const x = Tensor.from(dev, await snap.vit.file.float32('main.input'), xin.shape);
        const img = (await hf.model.encodeImage(x, { normalize: true }).data()) as Float32Array;
        const errImg = maxRel(img, await snap.vit.file.float32('main.image_features'));
        const ids = snap.bert.file.entry('input.ids');
        const txt = (await hf.model.encodeText(tokenBatch(await snap.bert.file.int32('input.ids'), ids.shape as [number, number])).data()) as Float32Array;
        const errTxt = maxRel(txt, await snap.bert.file.float32('output.projected'));
        console.log(`hf 2026 layout: image_features ${errImg.toExponential(2)}, text projected ${errTxt.toExponential(2)}`);
        expect(errImg).toBeLessThan(OUT_TOL);
        expect(errTxt).toBeLessThan(OUT_TOL);
      });
      // The snapshot's tokenizer: [CLS] … [SEP], padded to the context length with [PAD] = 0.
      const vocab = tinyVocab();
      const b = hf.tokenizer!.encodeBatch(['No lung nodules.']);
      expect(b.shape).toEqual([1, 16]);
      expect([...b.ids.slice(0, 7)]).toEqual([2, vocab.indexOf('no'), vocab.indexOf('lung'), vocab.indexOf('nodule'), vocab.indexOf('##s'), vocab.indexOf('.'), 3]);
      expect([...b.ids.slice(7)]).toEqual(new Array(9).fill(0));
    } finally {
      hf.dispose();
    }
  });

  it('prefers tokenizer.json (JsonTokenizer) over vocab.txt, with the same ids', async () => {
    const vocab = tinyVocab();
    const text = new TextEncoder().encode(`${vocab.join('\n')}\n`);
    const json = new TextEncoder().encode(JSON.stringify(bertTokenizerJson(vocab)));
    const both = await loadHfTokenizer(hfFilesFrom({ 'vocab.txt': text, 'tokenizer.json': new Blob([json]) }), 12);
    const wp = await loadHfTokenizer(hfFilesFrom({ 'vocab.txt': text }), 12);
    expect(both?.path).toBe('tokenizer.json');
    expect(both?.tokenizer).toBeInstanceOf(JsonTokenizer);
    expect(wp?.path).toBe('vocab.txt');
    const texts = ['The volume shows: mild emphysema, not pleural effusion.', 'no lung nodule'];
    expect([...both!.tokenizer.encodeBatch(texts).ids]).toEqual([...wp!.tokenizer.encodeBatch(texts).ids]);
    expect(await loadHfTokenizer(hfFilesFrom({ 'config.json': new Uint8Array(2) }), 12)).toBeNull();
  });
});
