// Trilinear resizing against PyTorch itself: the golden fixture stores HLIP's spatial position
// embedding [1, 4, 6, 6, 96] and its F.interpolate(..., mode='trilinear', align_corners=False)
// resampling to [1, 3, 5, 4, 96] (PyTorch 1.13.1, CPU, float32). Node only: reads ../shared/golden.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resizeTrilinear } from '../src/data/resample.js';
import { parseSafetensors } from '../src/io/safetensors.js';

const golden = fileURLToPath(new URL('../../shared/golden/vit2025_slice_study.safetensors', import.meta.url));

describe('trilinear resize vs PyTorch (golden)', () => {
  it('spatial_posemb [4, 6, 6] → [3, 5, 4] per channel matches F.interpolate to float32 rounding', async () => {
    const st = parseSafetensors(new Uint8Array(await readFile(golden)), golden);
    expect(st.entry('visual.trunk.spatial_posemb').shape).toEqual([1, 4, 6, 6, 96]);
    expect(st.entry('resampled.spatial_posemb_resampled').shape).toEqual([1, 3, 5, 4, 96]);
    const src = st.float32Sync('visual.trunk.spatial_posemb');
    const ref = st.float32Sync('resampled.spatial_posemb_resampled');
    const C = 96;
    let maxErr = 0, maxRef = 0;
    for (let c = 0; c < C; c++) {
      const g = new Float32Array(4 * 6 * 6);
      for (let i = 0; i < g.length; i++) g[i] = src[i * C + c]!;
      const out = resizeTrilinear({ data: g, shape: [4, 6, 6] }, [3, 5, 4]);
      for (let i = 0; i < out.data.length; i++) {
        const r = ref[i * C + c]!;
        maxErr = Math.max(maxErr, Math.abs(out.data[i]! - r));
        maxRef = Math.max(maxRef, Math.abs(r));
      }
    }
    expect(maxRef).toBeGreaterThan(0.1);
    expect(maxErr / maxRef).toBeLessThan(1e-6);
  });
});
