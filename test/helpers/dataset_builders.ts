// Small studies for the dataset tests: tiny RPI NIfTI volumes whose voxels say which series and slice
// they are (value = 10 · series + slice), and a toy tokenizer.
import { writeNifti } from '../../src/io/nifti.js';
import type { Volume } from '../../src/io/volume.js';
import type { TextTokenizerBase } from '../../src/models/tokenizer.js';
import { tokenBatch, type TokenBatch } from '../../src/models/text-transformer.js';

/** [D, H, W] volume in RPI storage (identity spacing), voxel (k, j, i) = f(k, j, i). */
export function rpiVolume(shape: [number, number, number], f: (k: number, j: number, i: number) => number, source = '<test>'): Volume {
  const [D, H, W] = shape;
  const data = new Float32Array(D * H * W);
  for (let k = 0; k < D; k++) for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) data[(k * H + j) * W + i] = f(k, j, i);
  return {
    data, dims: [W, H, D], spacing: [1, 1, 1], affine: [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1],
    orientation: 'RPI', source, frames: 1, frame: 0, affineSource: 'derived',
  };
}

/** NIfTI bytes of a volume whose voxels are 10 · series + slice. */
export async function taggedNifti(series: number, shape: [number, number, number], gzip = true): Promise<Uint8Array> {
  return writeNifti(rpiVolume(shape, (k) => 10 * series + k), { gzip, datatype: 'float32' });
}

/** Words → ids by a string hash; [CLS]=1 … [SEP]=2, pad 0. Enough to check padding and lengths. */
export class ToyTokenizer implements TextTokenizerBase {
  readonly padId = 0;
  constructor(readonly contextLength = 16) {}
  encode(text: string): number[] {
    const ids = [1];
    for (const w of text.split(/\s+/).filter(Boolean)) {
      let h = 7;
      for (let i = 0; i < w.length; i++) h = (h * 31 + w.charCodeAt(i)) % 997;
      ids.push(3 + h);
    }
    ids.push(2);
    return ids.slice(0, this.contextLength);
  }
  encodeBatch(texts: readonly string[]): TokenBatch {
    const ids = new Int32Array(texts.length * this.contextLength);
    texts.forEach((t, b) => ids.set(this.encode(t), b * this.contextLength));
    return tokenBatch(ids, [texts.length, this.contextLength]);
  }
}
