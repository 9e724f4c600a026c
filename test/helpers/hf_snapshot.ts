// Hugging Face snapshot layouts (hlip-2026-delta §5) assembled from the golden fixtures, as path → bytes.
import { writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { loadGolden, type Golden } from './golden.js';

export const LN_INV_007 = Math.log(1 / 0.07);

const enc = (o: unknown) => new TextEncoder().encode(typeof o === 'string' ? o : JSON.stringify(o, null, 2));

/** BERT vocabulary of the bert_text fixture's size: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then words. */
export function tinyVocab(size = 1000): string[] {
  const words = ['no', 'lung', 'nodule', 'the', 'volume', 'shows', ':', '.', ',', 'mild', 'emphysema', 'effusion', 'pleural', 'not', '##s', '##ing'];
  const v = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words];
  for (let i = v.length; i < size; i++) v.push(`tok${i}`);
  return v;
}

/** A BERT tokenizer.json for a vocabulary (WordPiece model, BERT normalizer and post-processor). */
export function bertTokenizerJson(vocab: string[]): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => ({ id: vocab.indexOf(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocab.indexOf('[SEP]')], cls: ['[CLS]', vocab.indexOf('[CLS]')] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  };
}

async function tensorsOf(g: Golden, prefix: string, rename: (n: string) => string = (n) => n): Promise<[string, TensorToWrite][]> {
  const out: [string, TensorToWrite][] = [];
  for (const n of g.file.names()) {
    if (!n.startsWith(prefix)) continue;
    const e = g.file.entry(n);
    out.push([rename(n), { dtype: 'F32', shape: e.shape, data: await g.file.float32(n) }]);
  }
  return out;
}

export interface DualSnapshot {
  files: Map<string, Uint8Array>;
  vit: Golden;
  bert: Golden;
  /** The open_clip config of the tiny model (hlip/model_configs/tiny_dual.json). */
  config: Record<string, unknown>;
}

/**
 * 2026 layout: a dual dinotxt image tower (vit2026 fixture) + BERT text tower (bert_text fixture),
 * joint width 64. model.safetensors lacks `logit_bias` and carries a stray `position_ids` buffer
 * (missing / unexpected under strict=False). hlip/model_configs holds the model's config, an alias
 * with identical content and a ViT-B config that does not fit; config.json is only a date.
 */
export async function dualSnapshot(): Promise<DualSnapshot> {
  const vit = await loadGolden('vit2026_slice_scan_study_dualdinotxt');
  const bert = await loadGolden('bert_text');
  const arch = vit.sidecar['architecture'] as { constructor_kwargs: Record<string, unknown>; out_dim: number };
  const config = {
    embed_dim: arch.out_dim,
    custom_text: true,
    init_logit_bias: LN_INV_007,
    vision_cfg: { timm_model_name: 'tiny_slice_scan_study_dualdinotxt', timm_model_pretrained: false, timm_drop_path: 0.0, timm_pool: 'token', timm_proj: 'linear', hlip_trunk: arch.constructor_kwargs },
    text_cfg: {
      hf_model_name: 'tiny/bert', hf_tokenizer_name: 'tiny/bert', hf_pooler_type: 'cls_last_hidden_state_pooler', hf_proj_type: 'linear', context_length: 16,
      hf_model_config: { num_attention_heads: 4, layer_norm_eps: 1e-12 },
    },
  };
  const vitb = {
    embed_dim: 768, custom_text: true, init_logit_bias: LN_INV_007,
    vision_cfg: { timm_model_name: 'vit_base_scan_study_dualdinotxt1568', timm_model_pretrained: true, timm_drop_path: 0.2, timm_pool: 'token', timm_proj: 'linear' },
    text_cfg: { hf_model_name: 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext', hf_tokenizer_name: 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext', hf_pooler_type: 'cls_last_hidden_state_pooler', hf_proj_type: 'linear', context_length: 256 },
  };
  const tensors: [string, TensorToWrite][] = [
    ['logit_scale', { dtype: 'F32', shape: [], data: Float32Array.of(LN_INV_007) }],
    ...(await tensorsOf(vit, 'visual.')),
    ...(await tensorsOf(bert, 'text.')),
    ['text.transformer.embeddings.position_ids', { dtype: 'I64', shape: [1, 64], data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i)) }],
  ];
  const vocab = tinyVocab();
  const files = new Map<string, Uint8Array>([
    ['model.safetensors', writeSafetensors(tensors)],
    ['config.json', enc({ date: '2026-02-24' })],
    ['hlip/__init__.py', enc('')],
    ['hlip/model_configs/tiny_dual.json', enc(config)],
    ['hlip/model_configs/tiny_dual_alias.json', enc(config)],
    ['hlip/model_configs/clip_vit_base_scan_study_dualdinotxt1568.json', enc(vitb)],
    ['vocab.txt', enc(`${vocab.join('\n')}\n`)],
    ['tokenizer_config.json', enc({ do_lower_case: true, model_max_length: 64 })],
  ]);
  return { files, vit, bert, config };
}

/**
 * 2025_10_08 layout: open_clip_config.json {model_cfg, preprocess_cfg} and a root model_configs/
 * copy, weights = the training checkpoint's state_dict without `module.` (checkpoint_openclip fixture).
 */
export async function openClipConfigSnapshot(): Promise<{ files: Map<string, Uint8Array>; ckpt: Golden }> {
  const ckpt = await loadGolden('checkpoint_openclip');
  const m = ckpt.sidecar['model'] as { open_clip_model_config: Record<string, unknown>; vision: Record<string, unknown> };
  const oc = m.open_clip_model_config;
  const modelCfg = { ...oc, vision_cfg: { ...(oc['vision_cfg'] as object), hlip_trunk: m.vision } };
  const files = new Map<string, Uint8Array>([
    ['model.safetensors', writeSafetensors(await tensorsOf(ckpt, 'module.', (n) => n.slice('module.'.length)))],
    ['open_clip_config.json', enc({ model_cfg: modelCfg, preprocess_cfg: { mean: [0], std: [1] } })],
    ['model_configs/hlip_tiny_ckpt.json', enc(modelCfg)],
    ['model_configs/other_model.json', enc({ ...modelCfg, embed_dim: 16 })],
  ]);
  return { files, ckpt };
}
