import { HlipError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Module, type HostTensor } from '../nn/module.js';
import { attention } from '../ops/attention.js';
import { concat } from '../ops/concat.js';
import { randn, zeros } from '../ops/creation.js';
import { add, mul, scale } from '../ops/elementwise.js';
import { gather } from '../ops/gather.js';
import { matmul } from '../ops/matmul.js';
import { patchEmbed3d } from '../ops/patchify.js';
import { mean } from '../ops/reduce.js';
import { softmax } from '../ops/softmax.js';
import { expand, permute, reshape, slice, transpose } from '../ops/view.js';
import { fmt } from '../tensor/shape.js';
import { checkpoint } from '../tensor/checkpoint.js';
import { scope, withoutScope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { nativeGrid, prefixTokens, visualConfig, type HlipVisualConfig, type Level } from './configs.js';
import { patchTokens, repartition, toRowLayout, windowsOf, windowTable, type TokenGrid } from './hierarchy.js';
import { LayerNorm, Linear, nextSeed } from './layers.js';
import { keptGrid, patchDropIndices, patchKeepCount } from './patch-dropout.js';
import { resampleSpatial, sequentialRows, sincos1d, sincos3d } from './posemb.js';

/** Options of one forward pass. */
export interface VisualForwardOptions {
  /** Also return every block's output in the reference row layout [rows, P + tokens, C]. */
  blocks?: boolean;
  /** Also return `patchEmbed` [B, N, d, h, w, C] and `posEmbed` (block 0's input, row layout; after patch dropout). */
  intermediates?: boolean;
  /** Return `tokens` (forward_features, [B, P + N·d·h·w, C]); default true. */
  tokens?: boolean;
  /** Scan-order rows to use (N distinct indexes < maxNumScans), overriding the automatic choice. */
  scanPositions?: readonly number[];
  /**
   * Reproduce the 2025 reference quirk: scan positions are drawn at random whenever the batch size is
   * not 1 (`is_train = B != 1`), whatever the mode. Default: drawn only in training mode (2026 rule).
   */
  batchSizeQuirk?: boolean;
  /** Uniform [0, 1) source for scan positions and drop path (default Math.random). */
  random?: () => number;
  /**
   * Training-mode behaviour (random scan positions, drop path, patch dropout) for this pass,
   * overriding the module's `training` flag; default: the flag.
   */
  train?: boolean;
  /**
   * Patch dropout rate p (hlip-spec §2.9; default the config's `patchDropRate`, else 0), training
   * only: every row of the initial partition keeps its prefix token(s) and max(1, ⌊L·(1−p)⌋) patch
   * tokens chosen by argsort of seeded Philox normals (see patch-dropout.ts). Later windows are
   * built over the kept tokens; dropped tokens get no gradient.
   */
  patchDropout?: number;
  /** Seed of the patch-dropout selection (default: drawn from `random`). */
  seed?: number;
  /** Explicit attention probabilities of one block's prefix queries (relevance maps); see AttentionProbe. */
  probe?: AttentionProbe;
}

/**
 * Asks the forward for the attention probabilities of one block's prefix-token queries (the class
 * token and registers), which the flash kernel never materialises. The block then computes those few
 * query rows explicitly (softmax(q·kᵀ/√d) then ·V, same values as the flash path), so gradients can
 * reach the probabilities: with `track`, a zero leaf `shift` (requiresGrad) is added to them before
 * they weight the values, and after `backward()` its `.grad` is ∂output/∂probabilities (the reference
 * relevance map's `attn_grad`). Patch-token queries still use the flash kernel.
 */
export interface AttentionProbe {
  /** Block index; negative counts from the end (-1: the last block). */
  block: number;
  /** Create `shift` so gradients with respect to the probabilities can be read. */
  track?: boolean;
  /**
   * Set by the forward (the caller's to dispose): [W, heads, P, P + L] probabilities, one row per
   * prefix query of each of the block's W windows, over that window's P prefix keys then its L patch
   * keys (the reference's row layout).
   */
  probs?: Tensor;
  /** Set by the forward with `track`: the zero leaf added to `probs` (caller disposes; read `.grad`). */
  shift?: Tensor;
  /** Set by the forward: the probed block's level and token grid. */
  level?: Level;
  grid?: TokenGrid;
}

/** Result of HlipVisualEncoder.forward; every tensor is the caller's to dispose. */
export interface VisualOutput {
  /** forward_features: after the final LayerNorm, study layout [B, P + N·d·h·w, C]. */
  tokens?: Tensor;
  /** forward_head: 'token' → [B, C]; 'dinotxt' → [B, P, 2C] (row p = concat(prefix p, mean of patch tokens)), [B, 2C] when P = 1. */
  pooled: Tensor;
  /** head.proj(pooled) (no bias): [B, out] or [B, P, out]; = pooled when the config has no head. */
  features: Tensor;
  blocks?: Tensor[];
  patchEmbed?: Tensor;
  posEmbed?: Tensor;
}

/** Conv3d with kernel = stride = patch (the `patch_embed.proj` weight [C, inC, pd, ph, pw] and bias). */
class PatchProj extends Module {
  constructor(dev: Device, c: HlipVisualConfig) {
    super(dev);
    const [pd, ph, pw] = c.patchSize;
    const fanIn = c.inChans * pd * ph * pw;
    this.param('weight', () => randn(dev, [c.embedDim, c.inChans, pd, ph, pw], nextSeed(), { std: 1 / Math.sqrt(fanIn) }));
    this.param('bias', () => zeros(dev, [c.embedDim]));
  }
  /** [S, inC, D, H, W] → [S, d·h·w, C]. */
  forward(x: Tensor): Tensor {
    return patchEmbed3d(x, this.get('weight'), this.get('bias'));
  }
}

class PatchEmbed3D extends Module {
  readonly proj: PatchProj;
  constructor(dev: Device, c: HlipVisualConfig) {
    super(dev);
    this.proj = this.child('proj', new PatchProj(dev, c));
  }
}

class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(dev: Device, readonly dim: number, readonly heads: number) {
    super(dev);
    this.qkv = this.child('qkv', new Linear(dev, dim, 3 * dim));
    this.proj = this.child('proj', new Linear(dev, dim, dim));
  }
  /** x [T + W·P, C] (flat stream) → [T + W·P, C]; attention within each window of the table. */
  forward(x: Tensor, windows: ReturnType<typeof windowTable>, probe?: AttentionProbe): Tensor {
    return scope(() => {
      const R = x.shape[0] as number;
      const T = windows.rows;
      const qkv = this.qkv.forward(x);
      const o = reshape(attention({ qkv: slice(qkv, 0, 0, T) }, { heads: this.heads, windows, ...(windows.prefix > 0 ? { prefix: { qkv: slice(qkv, 0, T, R) } } : {}) }), [R, this.dim]);
      if (!probe) return this.proj.forward(o);
      return this.proj.forward(concat([slice(o, 0, 0, T), this.prefixRows(qkv, windows, probe)], 0));
    });
  }

  /** The prefix rows' attention output computed explicitly, filling `probe` (see AttentionProbe). */
  private prefixRows(qkv: Tensor, windows: ReturnType<typeof windowTable>, probe: AttentionProbe): Tensor {
    const T = windows.rows;
    const P = windows.prefix;
    const W = windows.count;
    if (P === 0) throw new ShapeError('an attention probe needs prefix tokens (the class token)');
    const L = T / W;
    const H = this.heads;
    const C = this.dim;
    const Dh = C / H;
    // [rows, 3C] → q/k/v of the window's rows as [W, H, rows, Dh], keys ordered prefix then patches.
    const part = (rows: Tensor, n: number, i: number) => permute(reshape(slice(rows, 1, i * C, (i + 1) * C), [W, n, H, Dh]), [0, 2, 1, 3]);
    const pre = slice(qkv, 0, T, T + W * P);
    const pat = slice(qkv, 0, 0, T);
    const keys = (i: number) => concat([part(pre, P, i), part(pat, L, i)], 2);
    const scores = scale(matmul(part(pre, P, 0), transpose(keys(1))), 1 / Math.sqrt(Dh));
    let a = softmax(scores, -1);
    probe.probs = withoutScope(() => a.detach());
    if (probe.track) {
      const shift = withoutScope(() => zeros(this.device, a.shape, a.dtype));
      shift.requiresGrad = true;
      probe.shift = shift;
      a = add(a, shift);
    }
    // [W, H, P, Dh] → [W·P, C] (window-major prefix rows, heads concatenated as timm does).
    return reshape(permute(matmul(a, keys(2)), [0, 2, 1, 3]), [W * P, C]);
  }
}

class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dev: Device, dim: number, hidden: number) {
    super(dev);
    this.fc1 = this.child('fc1', new Linear(dev, dim, hidden));
    this.fc2 = this.child('fc2', new Linear(dev, hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(this.fc1.forward(x, { activation: 'gelu' })));
  }
}

/** timm `Block`: pre-norm attention and MLP residuals, LayerScale off, optional drop path. */
class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  constructor(dev: Device, c: HlipVisualConfig, readonly dropPath: number) {
    super(dev);
    this.norm1 = this.child('norm1', new LayerNorm(dev, c.embedDim, c.layerNormEps));
    this.attn = this.child('attn', new Attention(dev, c.embedDim, c.numHeads));
    this.norm2 = this.child('norm2', new LayerNorm(dev, c.embedDim, c.layerNormEps));
    this.mlp = this.child('mlp', new Mlp(dev, c.embedDim, Math.round(c.embedDim * c.mlpRatio)));
  }
  /**
   * `dropPath(branch)` gives [rows, 1] keep scales for residual branch 0 (attention) or 1 (MLP), or
   * null: timm's drop_path1 and drop_path2 draw independently.
   */
  forward(x: Tensor, windows: ReturnType<typeof windowTable>, dropPath: (branch: number) => Tensor | null, probe?: AttentionProbe): Tensor {
    return scope(() => {
      const branch = (y: Tensor, i: number) => {
        const k = dropPath(i);
        return k ? mul(y, k) : y;
      };
      const x1 = add(x, branch(this.attn.forward(this.norm1.forward(x), windows, probe), 0));
      return add(x1, branch(this.mlp.forward(this.norm2.forward(x1)), 1));
    });
  }
}

class Blocks extends Module {
  readonly list: Block[] = [];
  constructor(dev: Device, c: HlipVisualConfig) {
    super(dev);
    for (let i = 0; i < c.depth; i++) {
      const rate = c.depth > 1 ? (c.dropPathRate * i) / (c.depth - 1) : 0;
      this.list.push(this.child(String(i), new Block(dev, c, rate)));
    }
  }
}

/** What the trunk hands to the head: the normed stream in study layout and its grid. */
interface TrunkOutput {
  x: Tensor;
  grid: TokenGrid;
  blocks?: Tensor[];
  patchEmbed?: Tensor;
  posEmbed?: Tensor;
}

/**
 * HLIP's `HLIPVisualEncoder` (timm VisionTransformer subclass): parameter names as the reference
 * state dict without the `visual.trunk.` prefix (`cls_token`, `reg_token`, `spatial_posemb`,
 * `sequential_posemb`, `patch_embed.proj.*`, `blocks.{i}.*`, `norm.*`).
 */
export class HlipTrunk extends Module {
  readonly cfg: HlipVisualConfig;
  readonly P: number;
  readonly patch_embed: PatchEmbed3D;
  readonly blocks: Blocks;
  readonly norm: LayerNorm;
  /** Keep only each block's input and re-run the block in backward (open_clip `--grad-checkpointing`). */
  gradCheckpointing = false;

  constructor(dev: Device, cfg: HlipVisualConfig) {
    super(dev);
    this.cfg = cfg;
    this.P = prefixTokens(cfg);
    if (cfg.levels.length !== cfg.depth) throw new HlipError('config', `visual config: ${cfg.levels.length} block levels for depth ${cfg.depth}`);
    const C = cfg.embedDim;
    this.param('cls_token', () => randn(dev, [1, 1, C], nextSeed(), { std: 1e-6 }));
    if (cfg.regTokens > 0) this.param('reg_token', () => randn(dev, [1, cfg.regTokens, C], nextSeed(), { std: 1e-6 }));
    const grid = nativeGrid(cfg);
    // Frozen tables (requires_grad=False parameters in the reference): saved and loaded, never trained.
    this.buffer('spatial_posemb', () => Tensor.from(dev, sincos3d(grid, C), [1, ...grid, C]));
    if (cfg.maxNumScans > 1) this.buffer('sequential_posemb', () => Tensor.from(dev, sincos1d(C, Array.from({ length: cfg.maxNumScans }, (_, i) => i)), [1, cfg.maxNumScans, C]));
    this.patch_embed = this.child('patch_embed', new PatchEmbed3D(dev, cfg));
    this.blocks = this.child('blocks', new Blocks(dev, cfg));
    this.norm = this.child('norm', new LayerNorm(dev, C, cfg.layerNormEps));
  }

  /**
   * The reference sin-cos tables for any of `spatial_posemb` / `sequential_posemb` that `source` lacks
   * (older or converted checkpoints): they are frozen formula values, so they are recomputed.
   */
  withFormulaTables(source: ReadonlyMap<string, HostTensor>, prefix: string): ReadonlyMap<string, HostTensor> {
    const c = this.cfg;
    const add: [string, HostTensor][] = [];
    const grid = nativeGrid(c);
    if (!source.has(`${prefix}spatial_posemb`)) add.push([`${prefix}spatial_posemb`, { shape: [1, ...grid, c.embedDim], data: sincos3d(grid, c.embedDim) }]);
    if (c.maxNumScans > 1 && !source.has(`${prefix}sequential_posemb`)) {
      add.push([`${prefix}sequential_posemb`, { shape: [1, c.maxNumScans, c.embedDim], data: sincos1d(c.embedDim, Array.from({ length: c.maxNumScans }, (_, i) => i)) }]);
    }
    return add.length ? new Map([...source, ...add]) : source;
  }

  override loadStateDict(source: ReadonlyMap<string, HostTensor>, opts: { strict?: boolean; prefix?: string } = {}): void {
    super.loadStateDict(this.withFormulaTables(source, opts.prefix ?? ''), opts);
  }

  /** Scan positions to use: explicit, random distinct (training rule), or null for rows 0..N-1 / interpolation. */
  private scanPositions(B: number, N: number, opts: VisualForwardOptions): number[] | null {
    const M = this.cfg.maxNumScans;
    if (opts.scanPositions) return [...opts.scanPositions];
    const isTrain = opts.batchSizeQuirk ? B !== 1 : (opts.train ?? this.training);
    if (!isTrain) return null;
    if (N > M) throw new ShapeError(`${N} scans exceed the ${M} scan positions; the reference allows interpolation only at test time`);
    // randperm(M)[:N]: a partial Fisher-Yates shuffle.
    const rnd = opts.random ?? Math.random;
    const perm = Array.from({ length: M }, (_, i) => i);
    for (let i = 0; i < N; i++) {
      const j = i + Math.floor(rnd() * (M - i));
      [perm[i], perm[j]] = [perm[j] as number, perm[i] as number];
    }
    return perm.slice(0, N);
  }

  /**
   * Per-row drop-path scales of the stream at a level, or null: timm DropPath on the reference's
   * [rows, P + L, C] layout draws one keep/drop per row, i.e. per window here (hlip-spec §2.5, §11.7).
   */
  private dropPathScales(train: boolean, rate: number, level: Level, g: TokenGrid, rnd: () => number): Tensor | null {
    if (!train || rate <= 0) return null;
    const { count, len } = windowsOf(level, g);
    const T = count * len;
    const s = new Float32Array(T + count * this.P);
    for (let w = 0; w < count; w++) {
      const v = rnd() < rate ? 0 : 1 / (1 - rate);
      s.fill(v, w * len, (w + 1) * len);
      s.fill(v, T + w * this.P, T + (w + 1) * this.P);
    }
    return Tensor.from(this.device, s, [s.length, 1]);
  }

  /** image [B, N, inC, D, H, W] → the final-normed stream in study layout (see hierarchy.ts). */
  forwardStream(image: Tensor, opts: VisualForwardOptions = {}): TrunkOutput {
    const c = this.cfg;
    if (image.ndim !== 6 || image.shape[2] !== c.inChans) throw new ShapeError(`HLIP visual encoder expects [B, N, ${c.inChans}, D, H, W], got ${fmt(image.shape)}`);
    const [B, N, , D, H, W] = image.shape as [number, number, number, number, number, number];
    const [pd, ph, pw] = c.patchSize;
    let g: TokenGrid = { B, N, d: Math.floor(D / pd), h: Math.floor(H / ph), w: Math.floor(W / pw) };
    if (g.d * g.h * g.w === 0) throw new ShapeError(`input ${fmt(image.shape)} is smaller than one ${fmt(c.patchSize)} patch`);
    const L = g.d * g.h * g.w;
    const C = c.embedDim;
    const P = this.P;
    const T = patchTokens(g);
    const rnd = opts.random ?? Math.random;
    const train = opts.train ?? this.training;
    const dropRate = opts.patchDropout ?? c.patchDropRate ?? 0;
    if (!(dropRate >= 0 && dropRate < 1)) throw new ShapeError(`patch dropout rate must be in [0, 1), got ${dropRate}`);
    return scope(() => {
      const out: Partial<TrunkOutput> = {};
      // Patch embedding: tokens come out (b, n, d, h, w)-ordered, which is the flat stream order.
      const pe = this.patch_embed.proj.forward(reshape(image, [B * N, c.inChans, D, H, W]));
      if (opts.intermediates) out.patchEmbed = reshape(pe, [B, N, g.d, g.h, g.w, C]);
      // Position: spatial (resampled when the grid differs) + scan order; never on prefix tokens.
      let pos = reshape(resampleSpatial(this.get('spatial_posemb'), [g.d, g.h, g.w]), [1, L, C]);
      if (c.maxNumScans > 1) {
        const rows = sequentialRows(this.get('sequential_posemb'), N, this.scanPositions(B, N, opts) ?? undefined);
        pos = add(reshape(rows, [N, 1, C]), pos);
      }
      let patches = reshape(add(reshape(pe, [B, N, L, C]), pos), [T, C]);
      let level = c.levels[0] as Level;
      const W0 = windowsOf(level, g).count;
      if (train && dropRate > 0) {
        // Initial rows are contiguous runs of the flat patch rows; the gather's backward scatters
        // gradients to the kept rows only. From here on the grid describes the kept tokens.
        const len = windowsOf(level, g).len;
        const grid = keptGrid(g, c.levels, patchKeepCount(len, dropRate));
        patches = gather(patches, patchDropIndices(W0, len, dropRate, opts.seed ?? Math.floor(rnd() * 2 ** 32)));
        g = grid;
      }
      out.grid = g;
      const tok = c.regTokens > 0 ? concat([this.get('cls_token'), this.get('reg_token')], 1) : this.get('cls_token');
      const prefix = reshape(expand(tok, [W0, P, C]), [W0 * P, C]);
      let x = concat([patches, prefix], 0);
      if (opts.intermediates) out.posEmbed = toRowLayout(x, level, g, P);
      const blocks: Tensor[] = [];
      const probe = opts.probe;
      const probed = probe ? (probe.block < 0 ? c.depth + probe.block : probe.block) : -1;
      if (probe && !(probed >= 0 && probed < c.depth)) throw new ShapeError(`attention probe: block ${probe.block} of ${c.depth}`);
      // Each stream tensor is released as soon as the next exists (the tape keeps what backward needs),
      // so inference holds about one block's activations instead of the whole depth's.
      const step = (next: Tensor) => {
        x.dispose();
        x = next;
      };
      c.levels.forEach((lv, i) => {
        if (lv !== level) {
          step(repartition(x, level, lv, g, P));
          level = lv;
        }
        const blk = this.blocks.list[i] as Block;
        const lv0 = level;
        const pr = i === probed ? probe : undefined;
        if (pr) {
          pr.level = level;
          pr.grid = { ...g };
        }
        const windows = windowTable(lv0, g, P);
        const gl = g;
        const run = (inp: Tensor, draw: () => number) => blk.forward(inp, windows, () => this.dropPathScales(train, blk.dropPath, lv0, gl, draw), pr);
        // Gradient checkpointing (timm checkpoint(blk, x)): only the block input is kept and the block
        // re-runs in backward with the same drop-path draws. A probed block runs normally (its probe keeps tensors).
        step(this.gradCheckpointing && !pr ? checkpoint((xs, ctx) => run(xs[0] as Tensor, ctx.random), [x], { random: rnd, params: blk.parameters() }) : run(x, rnd));
        if (opts.blocks) blocks.push(toRowLayout(x, level, g, P));
      });
      if (level !== 'study') step(repartition(x, level, 'study', g, P));
      out.x = this.norm.forward(x);
      x.dispose();
      if (opts.blocks) out.blocks = blocks;
      return out as TrunkOutput;
    });
  }
}

/** open_clip `TimmModel` head: `proj = Linear(num_features → out, bias=False)`. */
class Head extends Module {
  readonly proj: Linear;
  constructor(dev: Device, inF: number, outF: number) {
    super(dev);
    this.proj = this.child('proj', new Linear(dev, inF, outF, { bias: false, std: 1 / Math.sqrt(inF) }));
  }
}

/**
 * The HLIP image tower as open_clip builds it (`TimmModel`): `trunk` (HlipTrunk) and, when the config
 * has an output dim, `head.proj`. State-dict names are the reference names without `visual.`; load a
 * checkpoint with `loadStateDict(map, { prefix: 'visual.' })` (or `trunk.loadStateDict(map, { prefix:
 * 'visual.trunk.' })` for a bare trunk).
 *
 * forward(image [B, N, 1, D, H, W], opts) → { tokens [B, P + N·d·h·w, C], pooled, features, … } (see
 * VisualOutput). Any D, H, W that are multiples of the patch work (the position table is resampled);
 * `features` is not L2-normalised (the CLIP wrapper does that).
 */
export class HlipVisualEncoder extends Module {
  readonly cfg: HlipVisualConfig;
  readonly trunk: HlipTrunk;
  readonly head: Head | null;

  constructor(dev: Device, cfg: HlipVisualConfig) {
    super(dev);
    this.cfg = cfg;
    this.trunk = this.child('trunk', new HlipTrunk(dev, cfg));
    const pooledDim = cfg.pool === 'dinotxt' ? 2 * cfg.embedDim : cfg.embedDim;
    this.head = cfg.outDim ? this.child('head', new Head(dev, pooledDim, cfg.outDim)) : null;
  }

  /** Per-block gradient checkpointing of the trunk (see HlipTrunk.gradCheckpointing). */
  get gradCheckpointing(): boolean {
    return this.trunk.gradCheckpointing;
  }
  set gradCheckpointing(on: boolean) {
    this.trunk.gradCheckpointing = on;
  }

  /** Strict by default; missing sin-cos tables are recomputed (see HlipTrunk.withFormulaTables). */
  override loadStateDict(source: ReadonlyMap<string, HostTensor>, opts: { strict?: boolean; prefix?: string } = {}): void {
    super.loadStateDict(this.trunk.withFormulaTables(source, `${opts.prefix ?? ''}trunk.`), opts);
  }

  /** Build by reference name (timm trunk or open_clip config, see configs.ts) or from a JSON config. Random weights. */
  static fromConfig(dev: Device, nameOrJson: string | object, overrides: Partial<HlipVisualConfig> = {}): HlipVisualEncoder {
    return new HlipVisualEncoder(dev, { ...visualConfig(nameOrJson), ...overrides });
  }

  /** Width of `pooled` (C, or 2C for dinotxt) and of `features`. */
  get pooledDim(): number {
    return this.cfg.pool === 'dinotxt' ? 2 * this.cfg.embedDim : this.cfg.embedDim;
  }
  get outDim(): number {
    return this.cfg.outDim ?? this.pooledDim;
  }

  forward(image: Tensor, opts: VisualForwardOptions = {}): VisualOutput {
    return scope(() => {
      const t = this.trunk.forwardStream(image, opts);
      const { B } = t.grid;
      const P = this.trunk.P;
      const C = this.cfg.embedDim;
      const T = patchTokens(t.grid);
      const prefix = reshape(slice(t.x, 0, T, T + B * P), [B, P, C]);
      const patch = reshape(slice(t.x, 0, 0, T), [B, T / B, C]);
      let pooled: Tensor;
      if (this.cfg.pool === 'dinotxt') {
        const avg = expand(mean(patch, 1, true), [B, P, C]);
        // One prefix token (no register): one embedding per study, [B, 2C], like 'token' pooling.
        pooled = P === 1 ? reshape(concat([prefix, avg], 2), [B, 2 * C]) : concat([prefix, avg], 2);
      } else pooled = reshape(slice(prefix, 1, 0, 1), [B, C]);
      const features = this.head ? this.head.proj.forward(pooled) : pooled.retainHandle();
      const out: VisualOutput = { pooled, features };
      if (opts.tokens ?? true) out.tokens = concat([prefix, patch], 1);
      if (t.blocks) out.blocks = t.blocks;
      if (t.patchEmbed) out.patchEmbed = t.patchEmbed;
      if (t.posEmbed) out.posEmbed = t.posEmbed;
      return out;
    });
  }
}

/** Factory for other towers/CLI: `createVisualEncoder(dev, 'vit_base_singlescan_h2_token2744')`. */
export function createVisualEncoder(dev: Device, nameOrJson: string | object, overrides: Partial<HlipVisualConfig> = {}): HlipVisualEncoder {
  return HlipVisualEncoder.fromConfig(dev, nameOrJson, overrides);
}
