// What loading a model will take, from the safetensors header alone (no tensor is read): weight bytes at
// the chosen precision, the largest single tensor against the adapter's buffer limits, and a rough bound
// on the working memory of one inference with a relevance map.
import type { DeviceCaps } from '../../src/gpu/device.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { openClipVisualConfig, parseOpenClipConfig } from '../../src/models/openclip.js';
import { nativeGrid, prefixTokens } from '../../src/models/configs.js';
import type { MemoryEstimate, WeightDType } from './protocol.js';

const MiB = 2 ** 20;

/**
 * Working memory ≈ live activations of the widest block and their gradients: tokens × width × (mlp ratio +
 * a few residual/attention buffers) × 4 bytes × 2 (the relevance map back-propagates), times the scans.
 */
function workBytes(metadata: Readonly<Record<string, string>> | null): number | null {
  const text = metadata?.['hlip.model_config'];
  if (!text) return null;
  try {
    const v = openClipVisualConfig(parseOpenClipConfig(JSON.parse(text)));
    const data = metadata?.['hlip.data'] ? (JSON.parse(metadata['hlip.data']) as { num_scans?: number }) : {};
    const scans = data.num_scans ?? 1;
    const tokens = scans * (nativeGrid(v).reduce((a, b) => a * b, 1) + prefixTokens(v));
    return tokens * v.embedDim * (v.mlpRatio + 6) * 4 * 2 * v.depth;
  } catch {
    return null;
  }
}

export async function estimateMemory(blob: Blob, name: string, dtype: WeightDType, caps: DeviceCaps): Promise<MemoryEstimate> {
  const st = await openSafetensors(blob, name);
  const bytesPer = dtype === 'f16' ? 2 : 4;
  let parameters = 0;
  let largest = 0;
  for (const e of st.tensors.values()) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    parameters += n;
    largest = Math.max(largest, n * bytesPer);
  }
  const blockers: string[] = [];
  const limit = Math.min(caps.maxBufferSize, caps.maxStorageBinding);
  if (largest > limit) blockers.push(`its largest tensor (${(largest / MiB).toFixed(0)} MiB) exceeds this adapter's ${(limit / MiB).toFixed(0)} MiB buffer limit`);
  return { source: name, parameters, weightBytes: parameters * bytesPer, largestTensorBytes: largest, workBytes: workBytes(st.metadata), dtype, blockers };
}
