// Relevance mosaic (reference figure layout, jet overlay) and the PNG writer, in both runtimes.
import { describe, expect, it } from 'vitest';
import { jet, relevanceMosaic } from '../src/eval/relevance-render.js';
import { encodePng } from '../src/io/png.js';
import { crc32 } from '../src/io/zip.js';

describe('relevanceMosaic', () => {
  it('rows are depth-token centre slices, columns scans; gray below the threshold, jet blended above', () => {
    const [S, D, H, W] = [2, 6, 3, 4];
    const img = new Float32Array(S * D * H * W);
    const rel = new Float32Array(img.length);
    for (let i = 0; i < img.length; i++) img[i] = (i % (H * W)) / 10; // a ramp in every slice
    // Scan 1, slice 3 (centre of depth token 1 with pd = 2): relevance only at (h 2, w 3).
    rel[((1 * D + 3) * H + 2) * W + 3] = 5;
    const m = relevanceMosaic(img, rel, [S, D, H, W], { patchDepth: 2, scale: 1, gap: 1 });
    expect(m.slices).toEqual([1, 3, 5]);
    expect([m.rows, m.columns, m.width, m.height]).toEqual([3, 2, 2 * 4 + 1, 3 * 3 + 2]);
    const px = (x: number, y: number) => Array.from(m.rgb.subarray((y * m.width + x) * 3, (y * m.width + x) * 3 + 3));
    expect(px(0, 0)).toEqual([0, 0, 0]); // min of the ramp
    expect(px(3, 2)).toEqual([255, 255, 255]); // max, no overlay (relevance constant 0 → masked)
    expect(px(4, 0)).toEqual([255, 255, 255]); // the gap
    // Row 1 (y 4..6), column 1 (x 5..8): the hot voxel is jet(1) = (0.5, 0, 0) at 0.3 over white.
    const hot = jet(1);
    expect(px(5 + 3, 4 + 2)).toEqual([0, 1, 2].map((q) => Math.round((0.7 * 1 + 0.3 * hot[q]!) * 255)));
    expect(px(5 + 2, 4 + 2)).toEqual(px(2, 2)); // masked neighbour: plain gray as in scan 0
  });

  it('jet matches matplotlib at its breakpoints', () => {
    expect(jet(0)).toEqual([0, 0, 0.5]);
    expect(jet(1)).toEqual([0.5, 0, 0]);
    expect(jet(0.5).map((v) => +v.toFixed(4))).toEqual([0.4839, 1, 0.4839]);
  });
});

describe('encodePng', () => {
  it('writes signature, IHDR, IDAT, IEND with valid CRCs', async () => {
    const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
    const png = await encodePng(rgb, 5, 3);
    expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const types: string[] = [];
    for (let o = 8; o < png.length;) {
      const len = dv.getUint32(o);
      const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
      types.push(type);
      expect(dv.getUint32(o + 8 + len), type).toBe(crc32(png.subarray(o + 4, o + 8 + len)) >>> 0);
      if (type === 'IHDR') expect([dv.getUint32(o + 8), dv.getUint32(o + 12), png[o + 16], png[o + 17]]).toEqual([5, 3, 8, 2]);
      o += 12 + len;
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
    // The IDAT zlib stream inflates to the filtered rows.
    const idat = png.subarray(8 + 25 + 8, 8 + 25 + 8 + dv.getUint32(33));
    const ds = new DecompressionStream('deflate');
    const w = ds.writable.getWriter();
    void w.write(idat as Uint8Array<ArrayBuffer>).then(() => w.close());
    const raw = new Uint8Array(await new Response(ds.readable).arrayBuffer());
    expect(raw.length).toBe(3 * (5 * 3 + 1));
    expect(Array.from(raw.subarray(1, 16))).toEqual(Array.from(rgb.subarray(0, 15)));
    await expect(encodePng(rgb, 4, 3)).rejects.toThrow(/needs 36 bytes, got 45/);
  });
});
