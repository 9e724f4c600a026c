// The reference relevance map (hlip-spec §7.2 `--interpret`, Chefer-style, last block only):
// cam = mean_heads(clamp(∂target/∂A ⊙ A, min 0)) on the class-token query row of the last block's
// attention A, reshaped to the token grid [N, d, h, w] and upsampled trilinearly (align_corners=False)
// to the input grid [N, D, H, W]. Our attention is flash (A is never stored), so the forward asks the
// last block to compute its prefix-query rows explicitly (AttentionProbe in src/models/visual.ts) and
// the tape differentiates only from those probabilities on (every weight is frozen for the pass).
import { HlipError, ShapeError } from '../errors.js';
import { resizeTrilinear } from '../data/resample.js';
import { windowsOf } from '../models/hierarchy.js';
import type { AttentionProbe } from '../models/visual.js';
import { l2Normalize } from '../ops/normalize.js';
import { cast } from '../ops/cast.js';
import { softmax } from '../ops/softmax.js';
import { slice } from '../ops/view.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { FindingPrompt, LoadedModel } from './infer.js';
import { promptClassifier } from './infer.js';
import { pairProbability } from './zeroshot.js';

export interface RelevanceOptions {
  template?: (p: string) => string;
  /**
   * What is differentiated: 'logit' (default; the reference's `logits_per_image[0, target]`, here the
   * finding's positive-prompt scaled logit) or 'probability' (the pair-softmax probability).
   */
  target?: 'logit' | 'probability';
}

export interface RelevanceResult {
  /** [S, D, H, W] relevance at the input grid. */
  map: Float32Array;
  /** [S, d, h, w] relevance per patch token (before upsampling). */
  tokens: Float32Array;
  tokenGrid: [number, number, number, number];
  /** The finding's pair probability from the same forward pass. */
  probability: number;
}

/** The relevance map of one finding for one study [S, D, H, W]: see relevanceDetails. */
export async function relevanceMap(m: LoadedModel, study: Float32Array, shape: readonly number[], prompt: FindingPrompt, opts: RelevanceOptions = {}): Promise<Float32Array> {
  return (await relevanceDetails(m, study, shape, prompt, opts)).map;
}

/** Relevance of every patch token for `prompt`, with the token-grid values and the probability. */
export async function relevanceDetails(m: LoadedModel, study: Float32Array, shape: readonly number[], prompt: FindingPrompt, opts: RelevanceOptions = {}): Promise<RelevanceResult> {
  const visual = m.built.visual;
  if (!visual) throw new HlipError('config', `${m.source}: the model has no image tower`);
  if (shape.length !== 4 || !shape.every((n) => Number.isInteger(n) && n > 0)) throw new ShapeError(`study shape must be [S, D, H, W], got [${shape.join(', ')}]`);
  const [S, D, H, W] = shape as [number, number, number, number];
  if (study.length !== S * D * H * W) throw new ShapeError(`study has ${study.length} values, shape [${shape.join(', ')}] needs ${S * D * H * W}`);
  const classifier = promptClassifier(m, [prompt], opts.template);
  const model = m.model;
  model.eval();
  const params = model.parameters();
  const was = params.map((p) => p.requiresGrad);
  const probe: AttentionProbe = { block: -1, track: true };
  let logits: Tensor | null = null;
  try {
    // Frozen weights: the tape records only what depends on the probe's zero leaf.
    for (const p of params) p.requiresGrad = false;
    logits = scope(() => {
      let x = Tensor.from(model.device, study, [1, S, 1, D, H, W]);
      if (m.dtype === 'f16') x = cast(x, 'f16');
      const o = visual.forward(x, { tokens: false, probe });
      if (o.features.ndim !== 2) throw new HlipError('config', `${m.source}: this image tower gives several embeddings per study; relevance needs one`);
      const l = model.zeroShotLogits(l2Normalize(o.features, -1), classifier); // [1, 2]: (negative, positive)
      const target = (opts.target ?? 'logit') === 'logit' ? slice(l, 1, 1, 2) : slice(softmax(l, -1), 1, 1, 2);
      target.backward();
      return l.detach();
    });
    const [a, g, l] = await Promise.all([probe.probs!.data(), probe.shift!.grad ? probe.shift!.grad.data() : Promise.resolve(null), logits.data()]);
    if (!g) throw new HlipError('autograd', 'relevance: no gradient reached the last block\'s attention');
    const grid = probe.grid!;
    const { count, len } = windowsOf(probe.level!, grid);
    const [Wn, heads, P, K] = probe.probs!.shape as [number, number, number, number];
    if (Wn !== count || K !== P + len) throw new ShapeError(`relevance: probe shape [${probe.probs!.shape.join(', ')}] does not match ${count} windows of ${len} tokens`);
    // Class-token query row (prefix 0) of every window; its patch-key columns, in flat token order.
    const tokens = new Float32Array(count * len);
    for (let w = 0; w < count; w++) {
      for (let j = 0; j < len; j++) {
        let s = 0;
        for (let h = 0; h < heads; h++) {
          const i = ((w * heads + h) * P + 0) * K + P + j;
          s += Math.max(0, (a[i] as number) * (g[i] as number));
        }
        tokens[w * len + j] = s / heads;
      }
    }
    const { d, h, w } = grid;
    const map = new Float32Array(S * D * H * W);
    for (let n = 0; n < S; n++) {
      const up = resizeTrilinear({ data: tokens.subarray(n * d * h * w, (n + 1) * d * h * w), shape: [d, h, w] }, [D, H, W]);
      map.set(up.data, n * D * H * W);
    }
    return { map, tokens, tokenGrid: [S, d, h, w], probability: pairProbability(l[0] as number, l[1] as number) };
  } finally {
    params.forEach((p, i) => {
      p.requiresGrad = was[i] as boolean;
    });
    logits?.dispose();
    probe.probs?.dispose();
    probe.shift?.dispose();
  }
}
