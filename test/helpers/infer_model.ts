// Tiny model files for the inference tests: an open_clip config with a small HLIP trunk and a tiny
// BERT, random (seeded) weights, written as our model.safetensors with metadata.
import type { Device } from '../../src/gpu/device.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { buildOpenClip, type OpenClipModelConfig } from '../../src/models/openclip.js';
import { WordPieceTokenizer } from '../../src/models/tokenizer.js';
import { reinit } from './tiny_clip.js';

export const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'this', 'mri', 'ct', 'study', 'shows', ':', 'no', 'a', 'mass', 'lesion', 'is', 'present', '.', 'edema', 'bleed', 'normal', 'brain'];

export const tinyTokenizer = async (_spec: unknown, contextLength: number) => new WordPieceTokenizer(VOCAB, { contextLength });

export function inferConfig(trunk: Record<string, unknown>): OpenClipModelConfig {
  return {
    embed_dim: 8,
    vision_cfg: { hlip_trunk: { img_size: [6, 12, 12], patch_size: [2, 4, 4], embed_dim: 12, depth: 2, num_heads: 2, max_num_scans: 4, ...trunk } },
    text_cfg: {
      hf_model_name: 'tiny-bert', hf_tokenizer_name: 'tiny', context_length: 16,
      hf_model_config: { vocab_size: VOCAB.length, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16, type_vocab_size: 2 },
    },
  };
}

/** Levels slice → study (last block: one study window). */
export const CONFIG_STUDY = inferConfig({ slice_attn_indexes: [0], study_attn_indexes: [1] });
/** Levels study → scan with a register token (last block: one window per scan, P = 2). */
export const CONFIG_SCAN = inferConfig({ num_heads: 3, reg_tokens: 1, study_attn_indexes: [0], scan_attn_indexes: [1] });

/** A model.safetensors (bytes) as src/cli/train-run.ts writes it, with seeded random weights. */
export async function tinyModelFile(dev: Device, cfg: OpenClipModelConfig, seed: number, meta: Record<string, unknown> = {}): Promise<Uint8Array> {
  const built = buildOpenClip(dev, cfg);
  try {
    reinit(built.model, seed);
    const tensors: [string, { dtype: 'F32'; shape: number[]; data: Float32Array }][] = [];
    for (const [name, t] of built.model.stateDict()) tensors.push([name, { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array }]);
    const metadata: Record<string, string> = {
      format: 'pt',
      'hlip.model_config': JSON.stringify(cfg),
      'hlip.tokenizer': JSON.stringify({ vocab: 'vocab.txt' }),
      'hlip.data': JSON.stringify({ kind: 'mri', shape: [7, 10, 10], num_scans: 2, report_prefix: null }),
    };
    for (const [k, v] of Object.entries(meta)) metadata[k] = JSON.stringify(v);
    return writeSafetensors(tensors, metadata);
  } finally {
    built.model.dispose();
  }
}
