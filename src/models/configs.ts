import { HlipError } from '../errors.js';

/** Attention level of a block: one window per depth slab, per scan, or per study. */
export type Level = 'slice' | 'scan' | 'study';

/** Everything that shapes an HLIP visual tower (trunk + open_clip `TimmModel` head). */
export interface HlipVisualConfig {
  /** Reference name (timm or open_clip config) when built from the registry. */
  name?: string;
  /** Native input size (D, H, W); fixes the native position grid. */
  imgSize: [number, number, number];
  patchSize: [number, number, number];
  inChans: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  /** Attention level of every block (length = depth). */
  levels: Level[];
  /** Scan-order table rows; ≤ 1 means no sequential embedding (`sequential_posemb` absent). */
  maxNumScans: number;
  /** Register tokens after the class token (2026 dual models: 1). */
  regTokens: number;
  /** 'token': class token; 'dinotxt': per prefix token concat(token, mean of patch tokens). */
  pool: 'token' | 'dinotxt';
  /** Output width of `head.proj` (Linear without bias); null = no head (features = pooled). */
  outDim: number | null;
  /** Stochastic depth: block i drops with linspace(0, rate, depth)[i] per partition row (training). */
  dropPathRate: number;
  layerNormEps: number;
  /** Patch dropout rate used in training when a forward pass does not give one (open_clip `patch_dropout`). */
  patchDropRate?: number;
}

/** Number of prefix tokens (class token + registers). */
export const prefixTokens = (c: HlipVisualConfig): number => 1 + c.regTokens;

/** Native token grid (d, h, w). */
export const nativeGrid = (c: HlipVisualConfig): [number, number, number] =>
  c.imgSize.map((s, i) => Math.floor(s / (c.patchSize[i] as number))) as [number, number, number];

function levelsOf(depth: number, slice: readonly number[], scan: readonly number[], study: readonly number[], name: string): Level[] {
  const levels = new Array<Level | undefined>(depth).fill(undefined);
  for (const [lv, idx] of [['slice', slice], ['scan', scan], ['study', study]] as const) {
    for (const i of idx) {
      if (!Number.isInteger(i) || i < 0 || i >= depth) throw new HlipError('config', `${name}: block index ${i} outside 0..${depth - 1}`);
      if (levels[i]) throw new HlipError('config', `${name}: block ${i} is both ${levels[i]} and ${lv}`);
      levels[i] = lv;
    }
  }
  // A block in no list attends over the whole study.
  for (let i = 0; i < depth; i++) levels[i] ??= 'study';
  return levels as Level[];
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const except = (n: number, drop: readonly number[]) => range(0, n).filter((i) => !drop.includes(i));

const base = { inChans: 1, embedDim: 768, depth: 12, numHeads: 12, mlpRatio: 4, layerNormEps: 1e-6, dropPathRate: 0.2 } as const;
const large = { ...base, embedDim: 1024, depth: 24, numHeads: 16 } as const;
const study4 = [2, 5, 8, 11];

type Entry = Omit<HlipVisualConfig, 'name' | 'outDim'> & { outDim: number };

const TRUNKS: Record<string, Entry> = {
  // 2025 (hlip-spec §1.1); open_clip joint embed_dim 512.
  vit_base_singlescan_h2_token2744: { ...base, imgSize: [112, 336, 336], patchSize: [8, 24, 24], levels: levelsOf(12, except(12, study4), [], study4, 'h2'), maxNumScans: 1, regTokens: 0, pool: 'token', outDim: 512 },
  vit_base_multiscan_h2_token588: { ...base, imgSize: [48, 224, 224], patchSize: [16, 16, 16], levels: levelsOf(12, [], except(12, study4), study4, 'h2'), maxNumScans: 40, regTokens: 0, pool: 'token', outDim: 512 },
  vit_base_multiscan_h2_token1176: { ...base, imgSize: [48, 224, 224], patchSize: [8, 16, 16], levels: levelsOf(12, [], except(12, study4), study4, 'h2'), maxNumScans: 40, regTokens: 0, pool: 'token', outDim: 512 },
  vit_base_multiscan_h3_token1176: { ...base, imgSize: [48, 224, 224], patchSize: [8, 16, 16], levels: levelsOf(12, [0, 3, 6, 9], [1, 4, 7, 10], study4, 'h3'), maxNumScans: 40, regTokens: 0, pool: 'token', outDim: 512 },
  // 2026 non-dual configs kept for the 2025 checkpoints (delta §1.1; hlip-spec §1.1 note on issue #4).
  vit_base_slice_scan_token2744: { ...base, imgSize: [112, 336, 336], patchSize: [8, 24, 24], levels: levelsOf(12, except(12, study4), study4, [], 'slice_scan'), maxNumScans: 1, regTokens: 0, pool: 'token', outDim: 512 },
  vit_base_scan_study_token1176: { ...base, imgSize: [48, 224, 224], patchSize: [8, 16, 16], levels: levelsOf(12, [], except(12, study4), study4, 'scan_study'), maxNumScans: 40, regTokens: 0, pool: 'token', outDim: 512 },
  // 2026 dual "dualdinotxt" encoders (delta §1.2); open_clip joint embed_dim 768.
  vit_base_slice_scan_dualdinotxt2744: { ...base, imgSize: [112, 336, 336], patchSize: [8, 24, 24], levels: levelsOf(12, except(12, study4), study4, [], 'dual'), maxNumScans: 1, regTokens: 1, pool: 'dinotxt', outDim: 768 },
  vit_base_scan_study_dualdinotxt1568: { ...base, imgSize: [48, 224, 224], patchSize: [6, 16, 16], levels: levelsOf(12, [], except(12, study4), study4, 'dual'), maxNumScans: 0, regTokens: 1, pool: 'dinotxt', outDim: 768 },
  vit_base_slice_scan_study_dualdinotxt1568: { ...base, imgSize: [48, 224, 224], patchSize: [6, 16, 16], levels: levelsOf(12, [0, 3, 6, 9], [1, 4, 7, 10], study4, 'dual'), maxNumScans: 0, regTokens: 1, pool: 'dinotxt', outDim: 768 },
  vit_large_scan_study_dualdinotxt1568: { ...large, imgSize: [48, 224, 224], patchSize: [6, 16, 16], levels: levelsOf(24, [], except(24, [5, 11, 17, 23]), [5, 11, 17, 23], 'dual'), maxNumScans: 0, regTokens: 1, pool: 'dinotxt', outDim: 768 },
  vit_large_slice_scan_study_dualdinotxt1568: {
    ...large, imgSize: [48, 224, 224], patchSize: [6, 16, 16],
    levels: levelsOf(24, [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21], [4, 10, 16, 22], [5, 11, 17, 23], 'dual'),
    maxNumScans: 0, regTokens: 1, pool: 'dinotxt', outDim: 768,
  },
};
// hlip-ablation names: identical kwargs and keys (delta §1.2).
TRUNKS['ablate_seqposemb_vit_base_multiscan_h2_dualdinotxt1568'] = TRUNKS['vit_base_scan_study_dualdinotxt1568'] as Entry;
TRUNKS['ablate_seqposemb_vit_base_multiscan_h3_dualdinotxt1568'] = TRUNKS['vit_base_slice_scan_study_dualdinotxt1568'] as Entry;
TRUNKS['ablate_seqposemb_vit_large_multiscan_h2_dualdinotxt1568'] = TRUNKS['vit_large_scan_study_dualdinotxt1568'] as Entry;
TRUNKS['ablate_seqposemb_vit_large_multiscan_h3_dualdinotxt1568'] = TRUNKS['vit_large_slice_scan_study_dualdinotxt1568'] as Entry;

/** open_clip config name → timm trunk name (2025 configs share their trunk's name). */
const CLIP_CONFIGS: Record<string, string> = {
  clip_vit_base_slice_scan_token2744: 'vit_base_slice_scan_token2744',
  clip_vit_base_scan_study_token1176: 'vit_base_scan_study_token1176',
  clip_vit_base_slice_scan_dualdinotxt2744: 'vit_base_slice_scan_dualdinotxt2744',
  clip_vit_base_scan_study_dualdinotxt1568: 'vit_base_scan_study_dualdinotxt1568',
  clip_vit_base_slice_scan_study_dualdinotxt1568: 'vit_base_slice_scan_study_dualdinotxt1568',
  clip_vit_large_scan_study_dualdinotxt1568: 'vit_large_scan_study_dualdinotxt1568',
  clip_vit_large_slice_scan_study_dualdinotxt1568: 'vit_large_slice_scan_study_dualdinotxt1568',
  ablate_seqposemb_clip_vit_base_multiscan_h2_dualdinotxt1568: 'ablate_seqposemb_vit_base_multiscan_h2_dualdinotxt1568',
  ablate_seqposemb_clip_vit_base_multiscan_h3_dualdinotxt1568: 'ablate_seqposemb_vit_base_multiscan_h3_dualdinotxt1568',
  ablate_seqposemb_clip_vit_large_multiscan_h2_dualdinotxt1568: 'ablate_seqposemb_vit_large_multiscan_h2_dualdinotxt1568',
  ablate_seqposemb_clip_vit_large_multiscan_h3_dualdinotxt1568: 'ablate_seqposemb_vit_large_multiscan_h3_dualdinotxt1568',
};

/** Every name `visualConfig` accepts (timm trunk names and open_clip config names). */
export function visualConfigNames(): string[] {
  return [...Object.keys(TRUNKS), ...Object.keys(CLIP_CONFIGS)];
}

function fromName(name: string): HlipVisualConfig {
  const trunk = CLIP_CONFIGS[name] ?? name;
  const e = TRUNKS[trunk];
  if (!e) throw new HlipError('config', `unknown HLIP visual config '${name}' (known: ${visualConfigNames().join(', ')})`);
  return { ...e, levels: [...e.levels], imgSize: [...e.imgSize], patchSize: [...e.patchSize], name };
}

type Json = Record<string, unknown>;

function num(o: Json, keys: string[], dflt?: number): number {
  for (const k of keys) if (o[k] !== undefined) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HlipError('config', `visual config: '${k}' must be a number`);
    return v;
  }
  if (dflt === undefined) throw new HlipError('config', `visual config: missing '${keys[0]}'`);
  return dflt;
}

function triple(o: Json, keys: string[]): [number, number, number] {
  for (const k of keys) if (o[k] !== undefined) {
    const v = o[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => Number.isInteger(x) && x > 0)) throw new HlipError('config', `visual config: '${k}' must be three positive integers`);
    return v as [number, number, number];
  }
  throw new HlipError('config', `visual config: missing '${keys[0]}'`);
}

function ints(o: Json, k: string): number[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw new HlipError('config', `visual config: '${k}' must be a list of block indexes`);
  return v as number[];
}

/**
 * A config from JSON: either this interface's camelCase fields, or the reference constructor kwargs
 * (`img_size`, `patch_size`, `embed_dim`, `depth`, `num_heads`, `mlp_ratio`, `max_num_scans`,
 * `slice_attn_indexes` / `scan_attn_indexes` / `study_attn_indexes`, `reg_tokens`,
 * `global_pool_dinotxt`, `drop_path_rate`), optionally wrapped as a golden sidecar's
 * `{ constructor_kwargs, out_dim }`. `out_dim`/`outDim` sizes the head (absent: no head).
 */
export function visualConfigFromJson(json: unknown): HlipVisualConfig {
  if (typeof json !== 'object' || json === null) throw new HlipError('config', 'visual config must be a JSON object');
  let o = json as Json;
  const outer = o;
  if (typeof o['constructor_kwargs'] === 'object' && o['constructor_kwargs'] !== null) o = o['constructor_kwargs'] as Json;
  const depth = num(o, ['depth']);
  let levels: Level[];
  if (Array.isArray(o['levels'])) {
    levels = o['levels'] as Level[];
    if (levels.length !== depth || !levels.every((l) => l === 'slice' || l === 'scan' || l === 'study')) throw new HlipError('config', `visual config: 'levels' must list slice/scan/study for each of ${depth} blocks`);
  } else levels = levelsOf(depth, ints(o, 'slice_attn_indexes'), ints(o, 'scan_attn_indexes'), ints(o, 'study_attn_indexes'), 'visual config');
  const dinotxt = o['pool'] === 'dinotxt' || o['global_pool_dinotxt'] === true;
  const outRaw = outer['outDim'] ?? outer['out_dim'] ?? o['outDim'] ?? o['out_dim'] ?? null;
  if (outRaw !== null && (typeof outRaw !== 'number' || !Number.isInteger(outRaw) || outRaw < 1)) throw new HlipError('config', 'visual config: out_dim must be a positive integer');
  const cfg: HlipVisualConfig = {
    imgSize: triple(o, ['imgSize', 'img_size']),
    patchSize: triple(o, ['patchSize', 'patch_size']),
    inChans: num(o, ['inChans', 'in_chans'], 1),
    embedDim: num(o, ['embedDim', 'embed_dim']),
    depth,
    numHeads: num(o, ['numHeads', 'num_heads']),
    mlpRatio: num(o, ['mlpRatio', 'mlp_ratio'], 4),
    levels,
    maxNumScans: num(o, ['maxNumScans', 'max_num_scans'], 1),
    regTokens: num(o, ['regTokens', 'reg_tokens'], 0),
    pool: dinotxt ? 'dinotxt' : 'token',
    outDim: outRaw as number | null,
    dropPathRate: num(o, ['dropPathRate', 'drop_path_rate'], 0),
    layerNormEps: num(o, ['layerNormEps', 'layer_norm_eps'], 1e-6),
  };
  if (typeof o['name'] === 'string') cfg.name = o['name'];
  const pdr = num(o, ['patchDropRate', 'patch_drop_rate'], 0);
  if (pdr > 0) cfg.patchDropRate = pdr;
  if (cfg.embedDim % cfg.numHeads !== 0) throw new HlipError('config', `visual config: embed_dim ${cfg.embedDim} is not divisible by ${cfg.numHeads} heads`);
  return cfg;
}

/** A config by reference name (timm trunk or open_clip config) or from JSON (see visualConfigFromJson). */
export function visualConfig(nameOrJson: string | object): HlipVisualConfig {
  return typeof nameOrJson === 'string' ? fromName(nameOrJson) : visualConfigFromJson(nameOrJson);
}
