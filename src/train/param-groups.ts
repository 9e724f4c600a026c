// Which parameters train and with what weight decay: the reference's AdamW groups (hlip-spec §4.3,
// delta §2.3) and open_clip's lock-text freezing (hlip-spec §3.4).
import { HlipError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { AdamW, type ParamGroupSpec } from '../optim/adamw.js';
import type { Tensor } from '../tensor/tensor.js';

/** Reference defaults (`get_default_params` for ViTs; `--wd` 0.2). */
export const OPTIMIZER_DEFAULTS = { lr: 5e-4, betas: [0.9, 0.98] as [number, number], eps: 1e-6, weightDecay: 0.2 } as const;

/**
 * main.py's `exclude`: no weight decay for tensors of rank < 2 and names containing "bn", "ln",
 * "bias" or "logit_scale" (case-sensitive substrings of the full dotted name).
 */
export function excludedFromDecay(name: string, p: Tensor): boolean {
  return p.ndim < 2 || name.includes('bn') || name.includes('ln') || name.includes('bias') || name.includes('logit_scale');
}

export interface OptimizerOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** The two groups as the reference orders them: no-decay first, then decayed; with the names of each. */
export interface ParamGroups {
  specs: ParamGroupSpec[];
  noDecay: string[];
  decay: string[];
  /** Every trainable parameter in optimizer order (group 0 then group 1), as AdamW numbers them. */
  names: string[];
}

/** AdamW groups over the trainable (requiresGrad) parameters of a model. */
export function paramGroups(model: Module, opts: OptimizerOptions = {}): ParamGroups {
  const wd = opts.weightDecay ?? OPTIMIZER_DEFAULTS.weightDecay;
  const noDecay: [string, Tensor][] = [];
  const decay: [string, Tensor][] = [];
  for (const [n, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    (excludedFromDecay(n, p) ? noDecay : decay).push([n, p]);
  }
  const specs: ParamGroupSpec[] = [
    { params: noDecay.map(([, p]) => p), weightDecay: 0 },
    { params: decay.map(([, p]) => p), weightDecay: wd },
  ];
  const noDecayNames = noDecay.map(([n]) => n);
  const decayNames = decay.map(([n]) => n);
  return { specs, noDecay: noDecayNames, decay: decayNames, names: [...noDecayNames, ...decayNames] };
}

/** AdamW over `paramGroups(model)` with the reference defaults (lr 5e-4, β 0.9/0.98, eps 1e-6, wd 0.2). */
export function createOptimizer(model: Module, opts: OptimizerOptions = {}): { optimizer: AdamW; groups: ParamGroups } {
  const groups = paramGroups(model, opts);
  const optimizer = new AdamW(groups.specs, {
    lr: opts.lr ?? OPTIMIZER_DEFAULTS.lr,
    betas: [opts.beta1 ?? OPTIMIZER_DEFAULTS.betas[0], opts.beta2 ?? OPTIMIZER_DEFAULTS.betas[1]],
    eps: opts.eps ?? OPTIMIZER_DEFAULTS.eps,
  });
  return { optimizer, groups };
}

export interface LockTextOptions {
  /** `--lock-text-unlocked-layers` (default 0: the whole body is locked). */
  unlockedLayers?: number;
  /** `--lock-text-freeze-layer-norm` (default false: LayerNorms of locked layers stay trainable). */
  freezeLayerNorm?: boolean;
}

const isLayerNorm = (relName: string) => relName.split('.').includes('LayerNorm');

/**
 * `model.lock_text_tower(unlocked_layers, freeze_layer_norm)` on the text tower whose parameters are
 * named `<prefix>*` (default `text.`); sets requiresGrad and returns the names now frozen.
 *
 * - Hugging Face BERT (open_clip `HFTextEncoder.lock`): the modules [embeddings, layer 0 … layer L−1]
 *   minus the last `unlockedLayers` are locked; inside them a parameter whose dotted name has a
 *   `LayerNorm` component stays trainable unless `freezeLayerNorm`. `proj` is never locked.
 * - open_clip's built-in TextTransformer: layer groups [embeddings (token and position tables),
 *   resblock 0 … resblock L−1 (the last with ln_final), projection], the last `unlockedLayers` groups
 *   left trainable; open_clip refuses trainable norms there, so freezeLayerNorm must stay true.
 */
export function lockTextTower(model: Module, opts: LockTextOptions = {}, prefix = 'text.'): string[] {
  const unlocked = opts.unlockedLayers ?? 0;
  if (!Number.isInteger(unlocked) || unlocked < 0) throw new HlipError('config', `lock-text unlocked layers must be a non-negative integer, got ${unlocked}`);
  const freezeLN = opts.freezeLayerNorm ?? false;
  const text = [...model.namedParameters()].filter(([n]) => n.startsWith(prefix)).map(([n, p]) => [n.slice(prefix.length), p, n] as const);
  if (!text.length) throw new HlipError('config', `lock-text: the model has no parameters under '${prefix}'`);
  const frozen: string[] = [];
  const freeze = (p: Tensor, full: string) => {
    p.requiresGrad = false;
    frozen.push(full);
  };
  if (text.some(([n]) => n.startsWith('transformer.embeddings.'))) {
    // Module index: 0 = embeddings, i + 1 = encoder.layer.i.
    const moduleOf = (n: string): number | null => {
      if (n.startsWith('transformer.embeddings.')) return 0;
      const m = /^transformer\.encoder\.layer\.(\d+)\./.exec(n);
      return m ? Number(m[1]) + 1 : null;
    };
    const count = 1 + Math.max(0, ...text.map(([n]) => (moduleOf(n) ?? 0)));
    const lockedModules = unlocked === 0 ? count : Math.max(0, count - unlocked);
    for (const [n, p, full] of text) {
      if (!n.startsWith('transformer.')) continue;
      const m = moduleOf(n);
      // Full locking covers every transformer parameter; partial locking only the listed modules.
      const locked = unlocked === 0 || (m !== null && m < lockedModules);
      if (!locked) continue;
      if (isLayerNorm(n) && !freezeLN) p.requiresGrad = true;
      else freeze(p, full);
    }
    return frozen;
  }
  if (text.some(([n]) => n === 'token_embedding.weight')) {
    if (!freezeLN) throw new HlipError('config', "lock-text: open_clip's TextTransformer cannot keep its norms trainable (set freezeLayerNorm)");
    const groupOf = (n: string, layers: number): number => {
      if (n === 'token_embedding.weight' || n === 'positional_embedding') return 0;
      const m = /^transformer\.resblocks\.(\d+)\./.exec(n);
      if (m) return Number(m[1]) + 1;
      if (n.startsWith('ln_final.')) return layers;
      return layers + 1; // text_projection
    };
    const layers = 1 + Math.max(-1, ...text.map(([n]) => Number(/^transformer\.resblocks\.(\d+)\./.exec(n)?.[1] ?? -1)));
    const groups = layers + 2;
    for (const [n, p, full] of text) if (groupOf(n, layers) < groups - unlocked) freeze(p, full);
    return frozen;
  }
  throw new HlipError('config', `lock-text: unknown text tower under '${prefix}' (expected a BERT or open_clip TextTransformer)`);
}
