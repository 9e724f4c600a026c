// The demo's data, model and schedule: shared by `npm run demo` (Node) and the browser app's
// train-in-a-tab, so it lives below the CLI and imports nothing Node-specific.
/** The demo's data, model and schedule (tuned to finish in minutes on a 2-core software adapter). */
export const DEMO = {
  studies: 480,
  heldOut: 120,
  scans: 3,
  shape: [16, 32, 32] as [number, number, number],
  /** Synthetic difficulty preset (docs/synth.md): larger lesions and less noise than 'medium'. */
  difficulty: 'easy' as const,
  steps: 200,
  batch: 16,
  lr: 2e-3,
  warmup: 20,
  weightDecay: 0.2,
  betas: [0.9, 0.98] as [number, number],
  eps: 1e-6,
  /** N(0, 1/fan_in) weights (src/train/init.ts): escapes the collapsed start sooner than timm's N(0, 0.02). */
  init: 'fan-in' as const,
  model: {
    embed_dim: 64,
    vision_cfg: {
      hlip_trunk: {
        img_size: [16, 32, 32], patch_size: [4, 8, 8], embed_dim: 72, depth: 4, num_heads: 3, mlp_ratio: 4,
        slice_attn_indexes: [0, 2], scan_attn_indexes: [1], study_attn_indexes: [3], max_num_scans: 4,
        // CLS token and mean of the patch tokens (the 2026 'dinotxt' pooling): patch tokens get a direct
        // gradient path, so the image tower starts learning lesions sooner than through CLS attention alone.
        pool: 'dinotxt',
      },
      timm_proj: 'linear',
    },
    text_cfg: {
      hf_model_name: 'demo-bert-tiny', hf_tokenizer_name: 'bert-base-uncased', context_length: 128,
      hf_pooler_type: 'cls_last_hidden_state_pooler', hf_proj_type: 'linear',
      hf_model_config: { vocab_size: 30522, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 256, max_position_embeddings: 128, type_vocab_size: 2, layer_norm_eps: 1e-12, pad_token_id: 0 },
    },
  },
};

/** The demo's open_clip model config (JSON, as `hlip train --config` takes it). */
export const demoModelConfig = (): typeof DEMO.model => JSON.parse(JSON.stringify(DEMO.model)) as typeof DEMO.model;
