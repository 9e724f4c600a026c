// A CustomTextCLIP from an open_clip model config (`hlip/model_configs/<name>.json`, the `model_cfg`
// of open_clip_config.json, or a golden sidecar's `open_clip_model_config`): HLIP image tower by timm
// name (or trunk kwargs), BERT text tower (HF text_cfg) or open_clip's built-in TextTransformer.
import { HlipError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { BERT_BASE, BertTextEncoder, type BertConfig } from './bert.js';
import { CustomTextCLIP } from './clip.js';
import { visualConfig, type HlipVisualConfig } from './configs.js';
import { TextTransformer } from './text-transformer.js';
import { HlipVisualEncoder } from './visual.js';

type Json = Record<string, unknown>;

/**
 * The open_clip model config fields used here. Beyond open_clip's own keys, two optional extensions
 * describe small models that no registry knows: `vision_cfg.hlip_trunk` (HLIP trunk kwargs, as
 * visualConfigFromJson reads them) and `text_cfg.hf_model_config` (the BERT `config.json` fields).
 */
export interface OpenClipModelConfig {
  embed_dim: number;
  vision_cfg?: Json;
  text_cfg?: Json;
  init_logit_scale?: number;
  init_logit_bias?: number | null;
  custom_text?: boolean;
  [key: string]: unknown;
}

export interface OpenClipBuildOptions {
  /** Image tower override: a reference name or trunk kwargs (replaces vision_cfg's timm model). */
  visual?: string | object;
  /** Shapes of the checkpoint's tensors: the BERT dimensions are read from them (vocab, layers, width…). */
  shapes?: ReadonlyMap<string, readonly number[]>;
  /** Build without an image tower (text only). */
  noVisual?: boolean;
}

export interface OpenClipModel {
  model: CustomTextCLIP;
  visual: HlipVisualEncoder | null;
  text: BertTextEncoder | TextTransformer;
  /** Tokenizer context length (text_cfg.context_length). */
  contextLength: number;
  /** text_cfg.hf_tokenizer_name (or hf_model_name) when the text tower is a Hugging Face model. */
  tokenizerName: string | null;
}

const record = (o: unknown): Json => (typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Json) : {});

function num(o: Json, k: string, what: string, dflt?: number): number {
  const v = o[k];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new HlipError('config', `${what}: missing '${k}'`);
    return dflt;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HlipError('config', `${what}: '${k}' must be a number`);
  return v;
}

export function parseOpenClipConfig(json: unknown, source = 'model config'): OpenClipModelConfig {
  const o = record(json);
  num(o, 'embed_dim', source);
  return o as OpenClipModelConfig;
}

/** The HLIP visual config vision_cfg describes (timm name or `hlip_trunk`), with open_clip's overrides. */
export function openClipVisualConfig(cfg: OpenClipModelConfig, override?: string | object): HlipVisualConfig {
  const v = record(cfg.vision_cfg);
  const proj = v['timm_proj'] ?? 'linear';
  if (proj !== 'linear') throw new HlipError('config', `vision_cfg.timm_proj '${String(proj)}' is not supported (HLIP uses 'linear')`);
  if (v['timm_proj_bias'] === true) throw new HlipError('config', 'vision_cfg.timm_proj_bias is not supported (HLIP projections have no bias)');
  const src = override ?? (v['hlip_trunk'] as object | undefined) ?? v['timm_model_name'];
  if (src === undefined || src === null) throw new HlipError('config', 'vision_cfg names no timm_model_name (and has no hlip_trunk kwargs)');
  if (typeof src !== 'string' && typeof src !== 'object') throw new HlipError('config', 'vision_cfg.timm_model_name must be a string');
  const base = visualConfig(src);
  const out: HlipVisualConfig = { ...base, outDim: cfg.embed_dim };
  if (typeof v['timm_drop_path'] === 'number') out.dropPathRate = v['timm_drop_path'];
  if (typeof v['patch_dropout'] === 'number' && v['patch_dropout'] > 0) out.patchDropRate = v['patch_dropout'];
  return out;
}

/** True when text_cfg describes a Hugging Face text model (open_clip HFTextEncoder). */
export const isHfText = (cfg: OpenClipModelConfig): boolean => typeof record(cfg.text_cfg)['hf_model_name'] === 'string';

const BERT_KEYS: [keyof BertConfig, string][] = [
  ['vocabSize', 'vocab_size'], ['hidden', 'hidden_size'], ['layers', 'num_hidden_layers'], ['heads', 'num_attention_heads'],
  ['intermediate', 'intermediate_size'], ['maxPositions', 'max_position_embeddings'], ['typeVocabSize', 'type_vocab_size'],
  ['eps', 'layer_norm_eps'], ['padId', 'pad_token_id'],
];

/**
 * BERT dimensions: BERT-base (BiomedBERT, CXR-BERT) unless the checkpoint's shapes say otherwise
 * (vocabulary, width, depth, MLP width, positions and token types are all visible in them), then
 * `text_cfg.hf_model_config`. Heads are not visible in shapes: the config's, else width / 64.
 */
export function bertConfigFor(cfg: OpenClipModelConfig, shapes?: ReadonlyMap<string, readonly number[]>, prefix = 'text.transformer.'): BertConfig {
  const t = record(cfg.text_cfg);
  const hf = record(t['hf_model_config']);
  const out: BertConfig = { ...BERT_BASE };
  let headsGiven = false;
  if (shapes) {
    const dim = (name: string, axis: number) => shapes.get(prefix + name)?.[axis];
    const set = (k: keyof BertConfig, v: number | undefined) => {
      if (v !== undefined) out[k] = v;
    };
    set('vocabSize', dim('embeddings.word_embeddings.weight', 0));
    set('hidden', dim('embeddings.word_embeddings.weight', 1));
    set('maxPositions', dim('embeddings.position_embeddings.weight', 0));
    set('typeVocabSize', dim('embeddings.token_type_embeddings.weight', 0));
    set('intermediate', dim('encoder.layer.0.intermediate.dense.weight', 0));
    let layers = 0;
    const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}encoder\\.layer\\.(\\d+)\\.`);
    for (const k of shapes.keys()) {
      const m = re.exec(k);
      if (m) layers = Math.max(layers, Number(m[1]) + 1);
    }
    if (layers > 0) out.layers = layers;
  }
  for (const [k, j] of BERT_KEYS) {
    if (hf[j] === undefined) continue;
    out[k] = num(hf, j, 'text_cfg.hf_model_config');
    if (k === 'heads') headsGiven = true;
  }
  if (hf['hidden_act'] !== undefined && hf['hidden_act'] !== 'gelu') throw new HlipError('config', `BERT hidden_act '${String(hf['hidden_act'])}' is not supported (exact gelu only)`);
  if (!headsGiven) {
    if (out.hidden % 64 !== 0) throw new HlipError('config', `BERT width ${out.hidden} is not a multiple of 64: give text_cfg.hf_model_config.num_attention_heads`);
    out.heads = out.hidden / 64;
  }
  if (out.hidden % out.heads !== 0) throw new HlipError('config', `BERT width ${out.hidden} is not divisible by ${out.heads} heads`);
  return out;
}

/**
 * Builds the model open_clip's `create_model` would build for `cfg` (random weights; load a state
 * dict afterwards). HF text towers must use the `cls_last_hidden_state_pooler` and `linear`
 * projection HLIP configures; anything else is refused rather than approximated.
 */
export function buildOpenClip(dev: Device, cfg: OpenClipModelConfig, opts: OpenClipBuildOptions = {}): OpenClipModel {
  const t = record(cfg.text_cfg);
  const E = cfg.embed_dim;
  let text: BertTextEncoder | TextTransformer;
  let contextLength: number;
  let tokenizerName: string | null = null;
  if (isHfText(cfg)) {
    const pooler = t['hf_pooler_type'] ?? 'cls_last_hidden_state_pooler';
    if (pooler !== 'cls_last_hidden_state_pooler' && pooler !== 'mean_pooler') throw new HlipError('config', `text_cfg.hf_pooler_type '${String(pooler)}' is not supported (HLIP uses cls_last_hidden_state_pooler; mean_pooler is also available)`);
    const proj = t['hf_proj_type'] ?? 'linear';
    if (proj !== 'linear') throw new HlipError('config', `text_cfg.hf_proj_type '${String(proj)}' is not supported (HLIP uses linear)`);
    const bert = bertConfigFor(cfg, opts.shapes);
    contextLength = Math.min(num(t, 'context_length', 'text_cfg', 77), bert.maxPositions);
    text = new BertTextEncoder(dev, bert, E, contextLength, 0, pooler);
    tokenizerName = String(t['hf_tokenizer_name'] ?? t['hf_model_name']);
  } else {
    contextLength = num(t, 'context_length', 'text_cfg', 77);
    text = new TextTransformer(dev, {
      contextLength,
      vocabSize: num(t, 'vocab_size', 'text_cfg', 49408),
      width: num(t, 'width', 'text_cfg', 512),
      heads: num(t, 'heads', 'text_cfg', 8),
      layers: num(t, 'layers', 'text_cfg', 12),
      mlpRatio: num(t, 'mlp_ratio', 'text_cfg', 4),
      outputDim: E,
    });
  }
  let visual: HlipVisualEncoder | null = null;
  try {
    visual = opts.noVisual ? null : new HlipVisualEncoder(dev, openClipVisualConfig(cfg, opts.visual));
  } catch (e) {
    text.dispose();
    throw e;
  }
  const bias = cfg.init_logit_bias;
  const model = new CustomTextCLIP(dev, visual, text, {
    ...(typeof cfg.init_logit_scale === 'number' ? { initLogitScale: cfg.init_logit_scale } : {}),
    initLogitBias: typeof bias === 'number' ? bias : null,
  });
  return { model, visual, text, contextLength, tokenizerName };
}

/**
 * Why a checkpoint's tensor shapes cannot belong to `cfg`, or null when they can. Only what shapes
 * reveal is compared (widths, patch, depth, position grid, prefix tokens, projections); block levels
 * and head counts leave no trace in them.
 */
export function openClipShapeMismatch(cfg: OpenClipModelConfig, shapes: ReadonlyMap<string, readonly number[]>, override?: string | object): string | null {
  const same = (name: string, want: readonly number[]): string | null => {
    const got = shapes.get(name);
    if (!got) return null;
    return got.length === want.length && got.every((d, i) => d === want[i]) ? null : `${name} is [${got.join(', ')}], the config needs [${want.join(', ')}]`;
  };
  const has = (p: string) => [...shapes.keys()].some((k) => k.startsWith(p));
  const E = cfg.embed_dim;
  if (has('visual.')) {
    let v: HlipVisualConfig;
    try {
      v = openClipVisualConfig(cfg, override);
    } catch (e) {
      return (e as Error).message;
    }
    const C = v.embedDim;
    let depth = 0;
    for (const k of shapes.keys()) {
      const m = /^visual\.trunk\.blocks\.(\d+)\./.exec(k);
      if (m) depth = Math.max(depth, Number(m[1]) + 1);
    }
    if (depth && depth !== v.depth) return `the checkpoint has ${depth} visual blocks, the config ${v.depth}`;
    const grid = v.imgSize.map((s, i) => Math.floor(s / (v.patchSize[i] as number)));
    const pooled = v.pool === 'dinotxt' ? 2 * C : C;
    const checks = [
      same('visual.trunk.patch_embed.proj.weight', [C, v.inChans, ...v.patchSize]),
      same('visual.trunk.spatial_posemb', [1, ...grid, C]),
      same('visual.trunk.cls_token', [1, 1, C]),
      same('visual.trunk.blocks.0.mlp.fc1.weight', [Math.round(C * v.mlpRatio), C]),
      same('visual.head.proj.weight', [E, pooled]),
    ];
    if (v.regTokens > 0) checks.push(shapes.has('visual.trunk.reg_token') ? same('visual.trunk.reg_token', [1, v.regTokens, C]) : 'the config has register tokens, the checkpoint no visual.trunk.reg_token');
    else if (shapes.has('visual.trunk.reg_token')) checks.push('the checkpoint has visual.trunk.reg_token, the config no register tokens');
    if (v.maxNumScans > 1) checks.push(same('visual.trunk.sequential_posemb', [1, v.maxNumScans, C]));
    else if (shapes.has('visual.trunk.sequential_posemb')) checks.push('the checkpoint has visual.trunk.sequential_posemb, the config no scan-order table');
    const bad = checks.find((c) => c !== null);
    if (bad) return bad;
  }
  if (isHfText(cfg)) {
    const w = shapes.get('text.transformer.embeddings.word_embeddings.weight');
    if (has('text.') && !w) return 'text_cfg names a Hugging Face model, the checkpoint has no text.transformer.embeddings';
    if (w) return same('text.proj.weight', [E, w[1] as number]);
  } else if (has('text.transformer.embeddings.')) return 'the checkpoint holds a BERT text tower, text_cfg describes open_clip\'s TextTransformer';
  else {
    const t = record(cfg.text_cfg);
    return same('text.text_projection', [num(t, 'width', 'text_cfg', 512), E]);
  }
  return null;
}
