import { BYTES, f16BitsToF32, f32ToF16Bits, type DType, type HostArray } from '../dtype.js';
import { DTypeError, HlipError, ShapeError } from '../errors.js';
import type { Device } from '../gpu/device.js';
import type { View } from '../kernels/view.js';
import { contiguousStrides, isContiguous, sizeOf } from './shape.js';
import { currentScope, gradEnabled, withoutScope } from './scope.js';

/**
 * Reference-counted GPU memory. Every tensor handle that shares it holds one reference; the buffer goes
 * back to the pool when the last handle is disposed.
 */
export class Storage {
  refs = 1;
  constructor(readonly device: Device, readonly buffer: GPUBuffer, readonly bytes: number) {}
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) this.device.pool.release(this.buffer);
  }
}

/**
 * A node of the autograd tape: the op's backward, the input handles it keeps for it, and how many
 * live things (its output handles and downstream nodes) still point at it. Released deterministically
 * when that count reaches zero or when backward() consumes it.
 */
export interface TapeNode {
  readonly name: string;
  inputs: Tensor[];
  /** A plain view of the output (no node reference, so no cycle), kept only when the rule needs it. */
  output: Tensor | null;
  refs: number;
  /** Computes input gradients from the output gradient; inputs that need none may get null. */
  backward: BackwardRule | null;
}

export type BackwardRule = (grad: Tensor, inputs: readonly Tensor[], output: Tensor | null) => readonly (Tensor | null)[];

function releaseNode(node: TapeNode): void {
  if (--node.refs > 0) return;
  freeNode(node);
}

function freeNode(node: TapeNode): void {
  const inputs = node.inputs;
  node.inputs = [];
  node.backward = null;
  for (const t of inputs) t.dispose();
  node.output?.dispose();
  node.output = null;
}

let nextTensorId = 1;

/**
 * A strided view of GPU memory with optional gradient tracking. Lifetime: handles are disposed
 * explicitly (`dispose()`) or by the enclosing `scope()`; see docs/memory.md.
 */
export class Tensor implements View {
  readonly id = nextTensorId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Offset into the storage, in elements. */
  readonly offset: number;
  readonly dtype: DType;
  readonly storage: Storage;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** The tape node that produced this tensor (null for leaves and under noGrad). */
  node: TapeNode | null = null;
  private disposed = false;

  constructor(storage: Storage, shape: readonly number[], dtype: DType, strides?: readonly number[], offset = 0, requiresGrad = false) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    this.requiresGrad = requiresGrad;
    currentScope()?.track(this);
  }

  get device(): Device {
    return this.storage.device;
  }
  get buffer(): GPUBuffer {
    this.assertAlive();
    return this.storage.buffer;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  assertAlive(): void {
    if (this.disposed) throw new HlipError('disposed', `tensor #${this.id} [${this.shape.join(', ')}] was used after dispose()`);
  }

  /** Allocates an uninitialised contiguous tensor. */
  static empty(device: Device, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape [${shape.join(', ')}]`);
    if (dtype === 'f16' && !device.caps.f16) throw new DTypeError('f16 tensors need the shader-f16 feature, which this adapter lacks');
    const bytes = Math.max(4, Math.ceil((sizeOf(shape) * BYTES[dtype]) / 4) * 4);
    const buffer = device.pool.acquire(bytes);
    return new Tensor(new Storage(device, buffer, bytes), shape, dtype);
  }

  /** Uploads host data. Numbers are converted to the dtype (f16 rounds to nearest even). */
  static from(device: Device, data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = sizeOf(shape);
    if (data.length !== n) throw new ShapeError(`data has ${data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
    const t = Tensor.empty(device, shape, dtype);
    let bytes: ArrayBufferView;
    if (dtype === 'f32') bytes = data instanceof Float32Array ? data : Float32Array.from(data);
    else if (dtype === 'i32') bytes = data instanceof Int32Array ? data : Int32Array.from(data);
    else {
      const h = new Uint16Array(n + (n & 1));
      for (let i = 0; i < n; i++) h[i] = f32ToF16Bits(data[i] as number);
      bytes = h;
    }
    if (bytes.byteLength > 0) device.write(t.storage.buffer, 0, bytes);
    return t;
  }

  /** A new handle to the same memory with another shape/stride (no copy). */
  view(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    this.assertAlive();
    return new Tensor(this.storage.retain(), shape, this.dtype, strides, offset);
  }

  /** Another handle to the same tensor: shares memory and tape node; disposed independently. */
  retainHandle(): Tensor {
    this.assertAlive();
    const t = new Tensor(this.storage.retain(), this.shape, this.dtype, this.strides, this.offset, this.requiresGrad);
    if (this.node) {
      t.node = this.node;
      this.node.refs++;
    } else {
      leafOrigin.set(t, leafOf(this));
    }
    return t;
  }

  /** The same memory cut off from the tape: no gradient flows through the result. */
  detach(): Tensor {
    return this.view(this.shape, this.strides, this.offset);
  }

  /** Reads the values back (contiguous, row-major). f16 is widened to f32. */
  async data<D extends DType = DType>(): Promise<HostArray<D>> {
    this.assertAlive();
    const src = this.isContiguous ? this : await this.contiguousCopy();
    const bytes = src.size * BYTES[src.dtype];
    const raw = bytes === 0 ? new ArrayBuffer(0) : await this.device.read(src.buffer, src.offset * BYTES[src.dtype], bytes);
    if (src !== this) src.dispose();
    if (this.dtype === 'i32') return new Int32Array(raw) as HostArray<D>;
    if (this.dtype === 'f32') return new Float32Array(raw) as HostArray<D>;
    const h = new Uint16Array(raw);
    const out = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i] as number);
    return out as HostArray<D>;
  }

  /** Reads a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item() needs one element, tensor has shape [${this.shape.join(', ')}]`);
    return (await this.data())[0] as number;
  }

  private async contiguousCopy(): Promise<Tensor> {
    if (!copyImpl) throw new HlipError('autograd', 'tensor helpers not installed (import the library entry point)');
    const copy = copyImpl;
    return withoutScope(() => copy(this));
  }

  /** Releases this handle: its memory reference and its tape node reference. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this.node) {
      const n = this.node;
      this.node = null;
      releaseNode(n);
    }
  }

  /** Backpropagates from this tensor (a scalar, or with `grad` of the same shape). */
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    backwardImpl(this, grad, opts.retainGraph ?? false);
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}, [${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}


/** Attaches a tape node to an op's output if gradients are enabled and some input needs them. */
export function record(name: string, inputs: readonly Tensor[], output: Tensor, backward: BackwardRule, saveOutput = false): Tensor {
  if (!gradEnabled() || !inputs.some((t) => t.requiresGrad)) return output;
  const saved = saveOutput ? withoutScope(() => output.view(output.shape, output.strides, output.offset)) : null;
  const node: TapeNode = { name, inputs: inputs.map((t) => withoutScope(() => t.retainHandle())), output: saved, refs: 1, backward };
  output.node = node;
  output.requiresGrad = true;
  return output;
}

type Accumulate = (target: Tensor, grad: Tensor) => Tensor;
let accumulateImpl: Accumulate | null = null;
let onesLikeImpl: ((t: Tensor) => Tensor) | null = null;
let noGradImpl: (<T>(fn: () => T) => T) | null = null;
let keepImpl: ((t: Tensor) => void) | null = null;
let copyImpl: ((t: Tensor) => Tensor) | null = null;

/** Wired by the ops layer (which sits above this file) to avoid an import cycle. */
export function installAutogradHelpers(h: { accumulate: Accumulate; onesLike: (t: Tensor) => Tensor; noGrad: <T>(fn: () => T) => T; keep: (t: Tensor) => void; copy: (t: Tensor) => Tensor }): void {
  copyImpl = h.copy;
  accumulateImpl = h.accumulate;
  onesLikeImpl = h.onesLike;
  noGradImpl = h.noGrad;
  keepImpl = h.keep;
}

function backwardImpl(root: Tensor, seed: Tensor | undefined, retainGraph: boolean): void {
  root.assertAlive();
  if (!root.requiresGrad) throw new HlipError('autograd', `backward() on ${root} which does not require grad`);
  if (!seed && root.size !== 1) throw new HlipError('autograd', `backward() without a gradient needs a scalar, got shape [${root.shape.join(', ')}]`);
  if (seed && seed.shape.join() !== root.shape.join()) throw new ShapeError(`backward() gradient shape [${seed.shape.join(', ')}] does not match [${root.shape.join(', ')}]`);
  if (!accumulateImpl || !onesLikeImpl || !noGradImpl || !keepImpl) throw new HlipError('autograd', 'autograd helpers not installed (import the library entry point)');
  const accumulate = accumulateImpl;
  const onesLike = onesLikeImpl;
  const keep = keepImpl;
  noGradImpl(() => {
    // Topological order over tape nodes, keyed by node (handles of one tensor share a node).
    const order: TapeNode[] = [];
    const seen = new Set<TapeNode>();
    const visit = (n: TapeNode) => {
      const stack: [TapeNode, number][] = [[n, 0]];
      seen.add(n);
      while (stack.length) {
        const top = stack[stack.length - 1] as [TapeNode, number];
        const [node, i] = top;
        if (i < node.inputs.length) {
          top[1]++;
          const child = (node.inputs[i] as Tensor).node;
          if (child && !seen.has(child)) {
            seen.add(child);
            stack.push([child, 0]);
          }
        } else {
          stack.pop();
          order.push(node);
        }
      }
    };
    const grads = new Map<TapeNode, Tensor>();
    const g0 = seed ? seed.retainHandle() : onesLike(root);
    if (!root.node) {
      // A leaf: the gradient is the seed itself.
      root.grad = root.grad ? accumulate(root.grad, g0) : g0;
      keep(root.grad);
      return;
    }
    visit(root.node);
    // Hold every node until it is processed: freeing one node's inputs must not free a node that is
    // still waiting for its gradient.
    for (const n of order) n.refs++;
    grads.set(root.node, g0);
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k] as TapeNode;
      const g = grads.get(node);
      grads.delete(node);
      if (!g) continue;
      if (!node.backward) {
        g.dispose();
        for (let j = k; j >= 0; j--) releaseNode(order[j] as TapeNode);
        for (const t of grads.values()) t.dispose();
        throw new HlipError('autograd', `backward through ${node.name} whose graph was already freed (use retainGraph)`);
      }
      // A rule may pass g straight through; give it its own handle so disposing g is safe.
      const inGrads = node.backward(g, node.inputs, node.output).map((t) => (t === g ? g.retainHandle() : t));
      g.dispose();
      node.inputs.forEach((inp, i) => {
        const gi = inGrads[i];
        if (!gi) return;
        if (!inp.requiresGrad) {
          gi.dispose();
          return;
        }
        if (inp.node) {
          const prev = grads.get(inp.node);
          grads.set(inp.node, prev ? accumulate(prev, gi) : gi);
        } else {
          // Leaf: accumulate into .grad of the handle the user holds (the original tensor shares storage;
          // leaves are found through their tape handle's origin).
          const leaf = leafOf(inp);
          leaf.grad = leaf.grad ? accumulate(leaf.grad, gi) : gi;
          keep(leaf.grad);
        }
      });
      if (!retainGraph) freeNode(node);
      releaseNode(node);
    }
  });
}

// Tape handles of a leaf point back at the leaf so its .grad is the one the user sees.
const leafOrigin = new WeakMap<Tensor, Tensor>();
function leafOf(t: Tensor): Tensor {
  return leafOrigin.get(t) ?? t;
}
