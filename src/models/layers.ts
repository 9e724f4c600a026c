import type { Device } from '../gpu/device.js';
import { Module } from '../nn/module.js';
import { full, randn, zeros } from '../ops/creation.js';
import { layerNorm } from '../ops/layernorm.js';
import { linear, type LinearOptions } from '../ops/matmul.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * Small named layers with torch's parameter names (`weight`, `bias`) so reference state dicts load
 * by name. Random init is for building untrained models only (checkpoints overwrite it).
 */

let seedCounter = 0x5eed;
/** Distinct Philox seeds for successive random inits (deterministic for a given build order). */
export function nextSeed(): number {
  return (seedCounter = (seedCounter * 1103515245 + 12345) >>> 0);
}

/** torch.nn.Linear: y = x·Wᵀ + b, W [out, in]; init N(0, std²), bias 0. */
export class Linear extends Module {
  readonly weight: () => Tensor;
  readonly bias: (() => Tensor) | null;
  constructor(dev: Device, readonly inF: number, readonly outF: number, opts: { bias?: boolean; std?: number } = {}) {
    super(dev);
    const std = opts.std ?? 0.02;
    this.param('weight', () => randn(dev, [outF, inF], nextSeed(), { std }));
    if (opts.bias ?? true) this.param('bias', () => zeros(dev, [outF]));
    this.weight = () => this.get('weight');
    this.bias = (opts.bias ?? true) ? () => this.get('bias') : null;
  }
  forward(x: Tensor, opts: LinearOptions = {}): Tensor {
    return linear(x, this.weight(), this.bias ? this.bias() : null, opts);
  }
}

/** torch.nn.LayerNorm over the last axis (weight 1, bias 0 at init). */
export class LayerNorm extends Module {
  constructor(dev: Device, readonly dim: number, readonly eps: number) {
    super(dev);
    this.param('weight', () => full(dev, [dim], 1));
    this.param('bias', () => zeros(dev, [dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.get('weight'), this.get('bias'), this.eps);
  }
}
