import { DTypeError, HlipError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { withoutScope } from '../tensor/scope.js';

/** A host-side tensor as loaders produce it (float data, row-major). */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export class StateDictError extends HlipError {
  constructor(message: string, readonly missing: string[] = [], readonly unexpected: string[] = []) {
    super('config', message);
    this.name = 'StateDictError';
  }
}

/**
 * A tree of named parameters and buffers whose dotted names are the reference `state_dict` keys, so
 * checkpoints load by name. Parameters are trainable leaves; buffers (frozen position tables…) are
 * saved and loaded but get no gradient. Modules own their tensors: `dispose()` frees them.
 */
export abstract class Module {
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();
  training = false;

  constructor(readonly device: Device) {}

  /** Registers (or replaces) a trainable parameter. Tensors are created outside any scope. */
  protected param(name: string, make: () => Tensor): Tensor {
    const t = withoutScope(make);
    t.requiresGrad = true;
    this._params.get(name)?.dispose();
    this._params.set(name, t);
    return t;
  }

  protected buffer(name: string, make: () => Tensor): Tensor {
    const t = withoutScope(make);
    t.requiresGrad = false;
    this._buffers.get(name)?.dispose();
    this._buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** The registered tensor of a name local to this module (after loading it may be a new tensor). */
  protected get(name: string): Tensor {
    const t = this._params.get(name) ?? this._buffers.get(name);
    if (!t) throw new HlipError('config', `${this.constructor.name} has no parameter or buffer '${name}'`);
    return t;
  }

  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [k, t] of this._params) yield [prefix + k, t];
    for (const [k, m] of this._children) yield* m.namedParameters(`${prefix}${k}.`);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [k, t] of this._buffers) yield [prefix + k, t];
    for (const [k, m] of this._children) yield* m.namedBuffers(`${prefix}${k}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /** Every saved tensor (parameters and buffers) by reference name. */
  stateDict(prefix = ''): Map<string, Tensor> {
    return new Map([...this.namedParameters(prefix), ...this.namedBuffers(prefix)]);
  }

  /**
   * Loads tensors by name (shapes must match exactly). `strict` (default) rejects missing and
   * unexpected keys, naming them; `prefix` is prepended to this module's names when looking up.
   */
  loadStateDict(source: ReadonlyMap<string, HostTensor>, opts: { strict?: boolean; prefix?: string } = {}): void {
    const prefix = opts.prefix ?? '';
    const strict = opts.strict ?? true;
    const own = this.stateDict(prefix);
    const missing = [...own.keys()].filter((k) => !source.has(k));
    const unexpected = strict ? [...source.keys()].filter((k) => k.startsWith(prefix) && !own.has(k)) : [];
    if (strict && (missing.length || unexpected.length)) {
      throw new StateDictError(
        `state dict does not match the model: ${missing.length} missing (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}), ` +
          `${unexpected.length} unexpected (${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', …' : ''})`,
        missing,
        unexpected,
      );
    }
    for (const [name, t] of own) {
      const h = source.get(name);
      if (!h) continue;
      if (h.shape.length !== t.shape.length || h.shape.some((d, i) => d !== t.shape[i])) {
        throw new ShapeError(`${name}: checkpoint shape [${h.shape.join(', ')}] does not match the model's [${t.shape.join(', ')}]`);
      }
      if (t.dtype !== 'f32' || !t.isContiguous) throw new DTypeError(`${name}: loading needs a contiguous f32 parameter (cast after loading)`);
      this.device.write(t.buffer, t.offset * 4, h.data);
    }
  }

  /**
   * Replaces every floating parameter and buffer by `convert(tensor)` (e.g. a cast to f16 for
   * half-precision inference); requiresGrad is kept, the old tensors are freed.
   */
  mapTensors(convert: (t: Tensor) => Tensor): this {
    for (const table of [this._params, this._buffers]) {
      for (const [k, t] of table) {
        if (t.dtype === 'i32') continue;
        const n = withoutScope(() => convert(t));
        if (n === t) continue;
        n.requiresGrad = t.requiresGrad;
        t.dispose();
        table.set(k, n);
      }
    }
    for (const m of this._children.values()) m.mapTensors(convert);
    return this;
  }

  train(on = true): this {
    this.training = on;
    for (const m of this._children.values()) m.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const t of this._params.values()) t.dispose();
    for (const t of this._buffers.values()) t.dispose();
    for (const m of this._children.values()) m.dispose();
    this._params.clear();
    this._buffers.clear();
  }
}
