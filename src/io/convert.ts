import { FormatError } from '../errors.js';
import { convertBytes, isFloatDType, type StDType } from './dtypes.js';
import { readPt, sniffFormat, stripModulePrefix, type PtReadOptions } from './pt.js';
import { openSafetensors, planSafetensors, safetensorsChunks, type SafetensorsPlan, type TensorToWrite } from './safetensors.js';
import { readRange, toSource, type ByteInput } from './source.js';
import { allocBytes } from './limits.js';

export interface ConvertOptions extends PtReadOptions {
  /** Remove a leading `module.` from every name (default true), as the reference test scripts do. */
  stripPrefix?: boolean;
  /** .pt only: write every tensor of the checkpoint (dotted paths, e.g. `optimizer.state.0.exp_avg`) instead of just the state_dict. */
  all?: boolean;
  /** Cast floating tensors to this dtype (default: keep). */
  floatDType?: 'F32' | 'F16' | 'BF16';
  /** Extra `__metadata__` entries. */
  metadata?: Record<string, string>;
}

/** A conversion ready to stream: `chunks()` yields the file one tensor at a time. */
export interface Conversion {
  readonly plan: SafetensorsPlan;
  readonly totalBytes: number;
  chunks(): AsyncGenerator<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Plan converting a .pt checkpoint (zip or legacy) or a .safetensors file to safetensors. Tensors are
 * read and encoded one at a time while the chunks are consumed, so the model is never held twice.
 */
export async function prepareConversion(input: ByteInput, opts: ConvertOptions = {}): Promise<Conversion> {
  const src = toSource(input, opts.name);
  const kind = sniffFormat(await readRange(src, 0, Math.min(8, src.size), 'file magic'));
  const cast = (d: StDType): StDType => (opts.floatDType && isFloatDType(d) && d !== 'F8_E4M3' && d !== 'F8_E5M2' ? opts.floatDType : d);
  const items: [string, TensorToWrite][] = [];
  const metadata: Record<string, string> = { format: 'pt' };
  if (kind === 'safetensors') {
    const f = await openSafetensors(src);
    Object.assign(metadata, f.metadata ?? {});
    let names = new Map(f.names().map((n) => [n, n] as const));
    if (opts.stripPrefix ?? true) names = stripModulePrefix(names);
    for (const [out, n] of names) {
      const e = f.entry(n);
      items.push([out, { dtype: cast(e.dtype), shape: e.shape, data: async () => convertBytes(await f.bytes(n), e.dtype, cast(e.dtype), n) }]);
    }
  } else {
    const ck = await readPt(src, opts);
    let dict: ReadonlyMap<string, { dtype: StDType; shape: readonly number[]; bytes(): Promise<Uint8Array> }>;
    if (opts.all) dict = ck.tensors;
    else if (ck.stateDict) dict = ck.stateDict;
    else throw new FormatError(src.name, 'checkpoint has no state_dict; pass { all: true } to convert every tensor');
    if (opts.stripPrefix ?? true) dict = stripModulePrefix(dict);
    if (ck.epoch !== undefined) metadata.epoch = String(ck.epoch);
    if (ck.runName !== undefined) metadata.name = ck.runName;
    for (const [n, t] of dict) items.push([n, { dtype: cast(t.dtype), shape: t.shape, data: async () => convertBytes(await t.bytes(), t.dtype, cast(t.dtype), n) }]);
  }
  Object.assign(metadata, opts.metadata ?? {});
  const plan = planSafetensors(items, metadata);
  return { plan, totalBytes: plan.totalBytes, chunks: () => safetensorsChunks(plan), close: async () => { await src.close?.(); } };
}

/** Convert to an in-memory safetensors file (`npx hlip convert` uses the streaming form in node-files). */
export async function convertToSafetensors(input: ByteInput, opts: ConvertOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  const conv = await prepareConversion(input, opts);
  const out = allocBytes(conv.totalBytes, 'converted file', '<convert>');
  let o = 0;
  for await (const c of conv.chunks()) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
