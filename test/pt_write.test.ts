// PyTorch checkpoint writer (src/io/pt-write.ts) and the reference checkpoint layout (src/train/pt-export.ts),
// in Node and Chromium: CPython-identical pickles, torch-identical archives (the golden checkpoint is
// reproduced byte for byte), write → readPt round trips, ZIP64 fields, the reference parameter order.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, FormatError, HlipError } from '../src/errors.js';
import type { Device } from '../src/gpu/device.js';
import { ST_DTYPE_BYTES, type StDType } from '../src/io/dtypes.js';
import { PyDict, isTuple, unpickle, type PyValue } from '../src/io/pickle.js';
import { PtTensor, readPt } from '../src/io/pt.js';
import { PyFloat, SaveTensor, picklePt, planPt, ptChunks, pyDict, pyTuple, writePt } from '../src/io/pt-write.js';
import { parseSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { ZipArchive } from '../src/io/zip.js';
import { bytesSource } from '../src/io/source.js';
import { buildOpenClip, parseOpenClipConfig } from '../src/models/openclip.js';
import { visualConfigFromJson } from '../src/models/configs.js';
import { HlipVisualEncoder } from '../src/models/visual.js';
import { paramGroups } from '../src/train/param-groups.js';
import { referenceCheckpoint, referenceOrder } from '../src/train/pt-export.js';
import { getDevice } from './helpers/device.js';
import { GOLDEN_DIR, readProjectFile } from './helpers/golden.js';
import { tinyClip } from './helpers/tiny_clip.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const equalBytes = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

/** Deterministic bytes (a fixed LCG), so every element pattern, NaN payloads included, round-trips. */
function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

async function golden(name: string): Promise<Uint8Array> {
  const b = await readProjectFile(`${GOLDEN_DIR}/${name}`);
  if (!b) throw new Error(`golden file ${name} not found under ${GOLDEN_DIR}`);
  return b;
}

async function goldenJson(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(new TextDecoder().decode(await golden(name))) as Record<string, unknown>;
}

/**
 * Structural equality of two unpickled trees: dict key order, OrderedDict-ness and attributes
 * (BUILD state), tuple vs list, scalars, and tensors by dtype, shape, requires_grad and bytes.
 */
async function sameTree(a: PyValue, b: PyValue, path = 'root'): Promise<void> {
  if (a instanceof PtTensor || b instanceof PtTensor) {
    expect(a, path).toBeInstanceOf(PtTensor);
    expect(b, path).toBeInstanceOf(PtTensor);
    const [x, y] = [a as PtTensor, b as PtTensor];
    expect([x.dtype, x.shape, x.requiresGrad], path).toEqual([y.dtype, y.shape, y.requiresGrad]);
    expect(equalBytes(await x.bytes(), await y.bytes()), path).toBe(true);
    return;
  }
  if (a instanceof PyDict || b instanceof PyDict) {
    expect(a, path).toBeInstanceOf(PyDict);
    expect(b, path).toBeInstanceOf(PyDict);
    const [x, y] = [a as PyDict, b as PyDict];
    expect(x.ordered, path).toBe(y.ordered);
    expect([...x.keys()], path).toEqual([...y.keys()]);
    for (const [k, v] of x) await sameTree(v, y.get(k) as PyValue, `${path}.${String(k)}`);
    expect(x.attrs?.size ?? 0, `${path} attributes`).toBe(y.attrs?.size ?? 0);
    for (const [k, v] of x.attrs ?? []) await sameTree(v, y.attrs!.get(k) as PyValue, `${path}@${k}`);
    return;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    expect(Array.isArray(a) && Array.isArray(b), path).toBe(true);
    expect(isTuple(a), path).toBe(isTuple(b));
    const [x, y] = [a as PyValue[], b as PyValue[]];
    expect(x.length, path).toBe(y.length);
    for (let i = 0; i < x.length; i++) await sameTree(x[i] as PyValue, y[i] as PyValue, `${path}[${i}]`);
    return;
  }
  expect(a, path).toEqual(b);
}

describe('pickler', () => {
  it('writes the bytes CPython pickle.dumps(protocol=2) writes', () => {
    // {'a': [1, 2.5, None, True, False, 'x', (1, 2), (), (1, 2, 3, 4), 2**70, -5, 70000, -(2**40), 'é€'],
    //  'n': {3: 'three'}, 'od': OrderedDict([('k', 1)])} (the same object as test/pickle.test.ts)
    const cpython = '80027d71002858010000006171015d7102284b014740040000000000004e888958010000007871034b014b0286710429284b014b024b034b04747105' +
      '8a090000000000000000404afbffffff4a701101008a060000000000ff5805000000c3a9e282ac71066558010000006e71077d71084b035805000000746872656571097358020000006f64710a' +
      '63636f6c6c656374696f6e730a4f726465726564446963740a710b2952710c58010000006b710d4b0173752e';
    const a: PyValue[] = [1, 2.5, null, true, false, 'x', pyTuple(1, 2), pyTuple(), pyTuple(1, 2, 3, 4), 2n ** 70n, -5, 70000, -(2 ** 40), 'é€'];
    const obj = pyDict([['a', a], ['n', pyDict([[3, 'three']])], ['od', pyDict([['k', 1]], true)]]);
    const { pickle, storages } = picklePt(obj);
    expect(toHex(pickle)).toBe(cpython);
    expect(storages).toEqual([]);
  });

  it('ints and floats as CPython encodes them; batches of 1000; shared objects memoised', () => {
    const big = Array.from({ length: 2500 }, (_, i) => i * 37 - 40000);
    const dict = pyDict(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i] as const));
    const shared = pyTuple('s', 1);
    const ints = [0, 255, 256, 65535, 65536, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 63), 2n ** 64n, -(2n ** 64n)];
    const obj = pyDict([['big', big], ['dict', dict], ['ints', ints], ['floats', [new PyFloat(2), 0.1, -0, Infinity, -Infinity, new PyFloat(0)]], ['a', shared], ['b', shared], ['empty', [[], pyDict([]), pyTuple()]]]);
    const back = unpickle(picklePt(obj).pickle).value as PyDict;
    expect(back.get('big')).toEqual(big);
    expect([...(back.get('dict') as PyDict)]).toEqual([...dict]);
    expect(back.get('ints')).toEqual([0, 255, 256, 65535, 65536, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2n ** 63n), 2n ** 64n, -(2n ** 64n)]);
    const f = back.get('floats') as number[];
    expect(f.slice(0, 2)).toEqual([2, 0.1]);
    expect(Object.is(f[2], -0)).toBe(true);
    expect(f.slice(3)).toEqual([Infinity, -Infinity, 0]);
    expect(back.get('a')).toBe(back.get('b'));
    expect(isTuple(back.get('a') as PyValue)).toBe(true);
    // Opcodes: a 1000-item batch then the rest, floats as BINFLOAT even when integral.
    const ops: number[] = [];
    unpickle(picklePt(pyDict([['l', Array.from({ length: 1001 }, () => 7)], ['f', new PyFloat(3)]])).pickle, { onOpcode: (op) => ops.push(op) });
    expect(ops.filter((o) => o === 0x65).length).toBe(1); // APPENDS (1000 items)
    expect(ops.filter((o) => o === 0x61).length).toBe(1); // APPEND (the 1001st)
    expect(ops.filter((o) => o === 0x47).length).toBe(1); // BINFLOAT
  });

  it('refuses what weights_only cannot load, naming where it is', () => {
    expect(() => picklePt(pyDict([['x', new Uint8Array(2)]]))).toThrow(/x: bytes/);
    const d = pyDict([['a', 1]]);
    d.attrs = new Map([['m', 1]]);
    expect(() => picklePt(pyDict([['plain', d]]))).toThrow(FormatError);
    expect(() => picklePt(pyDict([['t', new SaveTensor('U16', [2], new Uint8Array(4))]]))).toThrow(DTypeError);
    expect(() => picklePt(pyDict([[pyDict([]) as PyValue, 1]]))).toThrow(/hashable/);
    expect(() => planPt(pyDict([]), { archiveName: '../x' })).toThrow(HlipError);
  });
});

describe('write → readPt round trip', () => {
  const cases: [string, StDType, number[]][] = [
    ['f32 odd', 'F32', [7, 33]],
    ['f32 0-dim', 'F32', []],
    ['f32 129', 'F32', [1, 1, 129]],
    ['f32 empty', 'F32', [3, 0, 5]],
    ['f16', 'F16', [5, 3, 1]],
    ['bf16', 'BF16', [9]],
    ['f64', 'F64', [2, 2]],
    ['i64', 'I64', [1, 512]],
    ['i32', 'I32', [1000]],
    ['i16', 'I16', [3]],
    ['i8', 'I8', [4]],
    ['u8', 'U8', [5, 5]],
    ['bool', 'BOOL', [6]],
  ];

  it('every dtype, odd shapes, 0-dim and empty tensors, bitwise', async () => {
    const data = new Map(cases.map(([n, dt, shape], i) => [n, bytesOf(numel(shape) * ST_DTYPE_BYTES[dt], i + 1)] as const));
    const sd = pyDict(cases.map(([n, dt, shape]) => [n, new SaveTensor(dt, shape, data.get(n)!)] as const), true);
    const file = await writePt(pyDict([['epoch', 3], ['state_dict', sd]]));
    const ck = await readPt(file, { name: 'roundtrip.pt' });
    expect(ck.format).toBe('zip');
    expect(ck.epoch).toBe(3);
    expect([...ck.stateDict!.keys()]).toEqual(cases.map(([n]) => n));
    for (const [n, dt, shape] of cases) {
      const t = ck.stateDict!.get(n)!;
      expect([t.dtype, t.shape, t.storageOffset, t.isContiguous(), t.requiresGrad], n).toEqual([dt, shape, 0, true, false]);
      expect(equalBytes(await t.bytes(), data.get(n)!), n).toBe(true);
    }
  });

  it('a big tensor delivered in pieces (sync and async), shared tensors stored once, requires_grad kept', async () => {
    const n = 3 * 2 ** 20 + 5; // f32 elements: 12 MiB, in pieces of odd sizes
    const all = bytesOf(n * 4, 99);
    const cuts = [0, 1_000_003 * 4, 2_500_001 * 4, n * 4];
    const piecesOf = () => cuts.slice(1).map((e, i) => all.subarray(cuts[i], e));
    const asyncPieces = async function* () {
      for (const p of piecesOf()) yield p;
    };
    const f16 = bytesOf(2 * 1001, 5);
    const shared = new SaveTensor('F16', [7, 11, 13], f16, true);
    const root = pyDict([
      ['sync', new SaveTensor('F32', [n], () => piecesOf())],
      ['async', new SaveTensor('F32', [1, n], asyncPieces)],
      ['a', shared],
      ['b', shared],
    ]);
    const plan = planPt(root, { storageOrder: 'pickle' });
    expect(plan.storages.map((s) => s.key)).toEqual(['0', '1', '2']);
    // Streaming: no chunk larger than the largest piece.
    let largest = 0;
    const chunks: Uint8Array[] = [];
    for await (const c of ptChunks(plan)) {
      largest = Math.max(largest, c.byteLength);
      chunks.push(c);
    }
    expect(largest).toBe(Math.max(...piecesOf().map((p) => p.byteLength)));
    const file = new Uint8Array(plan.totalBytes);
    let o = 0;
    for (const c of chunks) {
      file.set(c, o);
      o += c.byteLength;
    }
    expect(o).toBe(plan.totalBytes);
    const ck = await readPt(file);
    const root2 = ck.root as PyDict;
    expect(root2.get('a')).toBe(root2.get('b'));
    const a = root2.get('a') as PtTensor;
    expect([a.shape, a.requiresGrad]).toEqual([[7, 11, 13], true]);
    expect(equalBytes(await a.bytes(), f16)).toBe(true);
    for (const k of ['sync', 'async']) expect(equalBytes(await (root2.get(k) as PtTensor).bytes(), all), k).toBe(true);
  });

  it('data of the wrong size is an error naming the tensor', async () => {
    await expect(writePt(pyDict([['state_dict', pyDict([['w', new SaveTensor('F32', [3], new Uint8Array(8))]])]]))).rejects.toThrow(/state_dict\.w: F32 tensor needs 12 bytes, its data gives 8/);
    await expect(writePt(pyDict([['w', new SaveTensor('F32', [1], () => [new Uint8Array(4), new Uint8Array(4)])]]))).rejects.toThrow(/w: F32 tensor needs 4 bytes, its data gives more/);
  });

  it('ZIP64 fields (offsets saturated in the 32-bit fields) are read back', async () => {
    const data = bytesOf(4 * 300, 3);
    const root = pyDict([['x', new SaveTensor('F32', [300], data)], ['y', new SaveTensor('F32', [0], new Uint8Array(0))]]);
    const file = await writePt(root, { zip64Threshold: 100 });
    const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
    // End of central directory: size and offset saturated, so readers must use the ZIP64 records.
    expect(dv.getUint32(file.byteLength - 22, true)).toBe(0x06054b50);
    expect(dv.getUint32(file.byteLength - 10, true)).toBe(0xffffffff);
    expect(dv.getUint32(file.byteLength - 6, true)).toBe(0xffffffff);
    const zip = await ZipArchive.open(bytesSource(file));
    expect([...zip.entries.keys()]).toEqual(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/version']);
    for (const e of zip.entries.values()) expect((await zip.dataOffset(e)) % 64, e.name).toBe(0);
    const ck = await readPt(file);
    expect(equalBytes(await ((ck.root as PyDict).get('x') as PtTensor).bytes(), data)).toBe(true);
    expect(((ck.root as PyDict).get('y') as PtTensor).shape).toEqual([0]);
    expect(new TextDecoder().decode(await zip.read(zip.get('archive/byteorder')!))).toBe('little');
    expect(new TextDecoder().decode(await zip.read(zip.get('archive/version')!))).toBe('3\n');
  });
});

describe('the golden checkpoint (torch 1.13, protocol 2)', () => {
  /** The reader keeps no int/float distinction; these values are Python floats in the golden file. */
  function markFloats(root: PyDict): void {
    const f = (d: PyDict, k: string) => d.set(k, new PyFloat(d.get(k) as number));
    for (const g of (root.get('optimizer') as PyDict).get('param_groups') as PyDict[]) f(g, 'weight_decay');
    const scaler = root.get('scaler') as PyDict;
    for (const k of ['scale', 'growth_factor', 'backoff_factor']) f(scaler, k);
  }

  it('is reproduced byte for byte from its unpickled tree', async () => {
    const bytes = await golden('checkpoint_openclip_zip.pt');
    const ck = await readPt(bytes, { name: 'checkpoint_openclip_zip.pt' });
    markFloats(ck.root as PyDict);
    const out = await writePt(ck.root, { archiveName: 'checkpoint_openclip_zip', byteorder: false });
    expect(out.byteLength).toBe(bytes.byteLength);
    expect(equalBytes(out, bytes)).toBe(true);
  });

  it('rewritten with our defaults (byteorder entry) re-reads to the same tree, tensors and metadata', async () => {
    const bytes = await golden('checkpoint_openclip_zip.pt');
    const ck = await readPt(bytes, { name: 'checkpoint_openclip_zip.pt' });
    const out = await writePt(ck.root);
    const back = await readPt(out, { name: 'rewritten.pt' });
    await sameTree(back.root, ck.root);
    expect(back.meta).toEqual(ck.meta);
    expect(back.tensors.size).toBe(385);
    // The legacy-format golden (same content) rewritten in the zip format.
    const legacy = await readPt(await golden('checkpoint_openclip_legacy.pt'));
    await sameTree((await readPt(await writePt(legacy.root))).root, ck.root);
  });
});

describe('reference checkpoint layout (src/train/pt-export.ts)', () => {
  let dev: Device;
  beforeAll(async () => {
    dev = await getDevice();
  });

  const byIndex = (m: Record<string, string>) => Object.entries(m).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, n]) => n.slice('module.'.length));

  it('state_dict and optimizer order of the golden checkpoint model', async () => {
    const side = await goldenJson('checkpoint_openclip.json');
    const m = side['model'] as { open_clip_model_config: unknown; vision: object };
    const { model } = buildOpenClip(dev, parseOpenClipConfig(m.open_clip_model_config), { visual: m.vision });
    try {
      const order = referenceOrder([...model.stateDict().keys()]);
      const index = side['tensor_index'] as Record<string, unknown>;
      expect(order).toEqual(Object.keys(index).filter((k) => k.startsWith('module.')).map((k) => k.slice('module.'.length)));
      // Our optimizer numbers parameters differently (open_clip's TextTransformer registers
      // positional_embedding after token_embedding in our model); the reference numbering:
      const g = paramGroups(model);
      const refNames = [...order.filter((n) => g.noDecay.includes(n)), ...order.filter((n) => g.decay.includes(n))];
      expect(refNames).toEqual(byIndex((side['checkpoint'] as { optimizer_state_indices_to_names: Record<string, string> }).optimizer_state_indices_to_names));
      expect(g.names).not.toEqual(refNames);
    } finally {
      model.dispose();
    }
  });

  it('state_dict order of the CLIP wrapper, the 2025 and 2026 encoders and the BERT text tower', async () => {
    const cw = await goldenJson('clip_wrapper.json');
    const b = buildOpenClip(dev, parseOpenClipConfig(cw['open_clip_model_config']), { visual: cw['image_tower'] as object });
    expect(referenceOrder([...b.model.stateDict().keys()])).toEqual(cw['state_dict_keys']);
    b.model.dispose();
    for (const f of ['vit2025_scan_study', 'vit2025_slice_scan_study', 'vit2026_slice_scan_study_dualdinotxt']) {
      const s = await goldenJson(`${f}.json`);
      const arch = s['architecture'] as { constructor_kwargs: object; out_dim?: number };
      const v = new HlipVisualEncoder(dev, visualConfigFromJson({ ...arch.constructor_kwargs, ...(arch.out_dim ? { out_dim: arch.out_dim } : {}) }));
      expect(referenceOrder([...v.stateDict('visual.').keys()]), f).toEqual(s['state_dict_keys']);
      v.dispose();
    }
    // BERT: HFTextEncoder registers `transformer` before `proj`; BertModel's own order as the fixture lists it.
    const bert = await goldenJson('bert_text.json');
    const bertKeys = Object.keys(bert['tensor_index'] as object).filter((k) => k.startsWith('text.'));
    const layer0 = (k: string) => !/\.layer\.[1-9]\d*\./.test(k);
    const tb = tinyClip(dev, { text: 'bert' });
    const ours = referenceOrder([...tb.stateDict().keys()]).filter((k) => k.startsWith('text.'));
    expect(ours.filter(layer0)).toEqual(bertKeys.filter(layer0));
    expect(ours.at(-1)).toBe('text.proj.weight');
    tb.dispose();
  });

  it('a state dict in reference names: module. prefix, HF non-persistent buffers dropped, epoch/name from metadata', async () => {
    const st = parseSafetensors(writeSafetensors({
      'text.transformer.embeddings.position_ids': { dtype: 'I64', shape: [1, 4], data: new BigInt64Array([0n, 1n, 2n, 3n]) },
      'visual.trunk.blocks.0.norm1.weight': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      'logit_scale': { dtype: 'F32', shape: [], data: new Float32Array([2.5]) },
      'visual.trunk.cls_token': { dtype: 'F16', shape: [1, 1, 2], data: new Uint8Array([0, 60, 0, 64]) },
    }, { epoch: '7', name: 'run' }), 'sd.safetensors');
    const ex = referenceCheckpoint(st, { pieceBytes: 3 });
    expect([ex.kind, ex.epoch, ex.name, ex.stateDictKeys]).toEqual(['state-dict', 7, 'run', 3]);
    expect(ex.skipped.join()).toMatch(/position_ids/);
    const ck = await readPt(await writePt(ex.root));
    expect([...(ck.root as PyDict).keys()]).toEqual(['epoch', 'name', 'state_dict']);
    expect([...ck.stateDict!.keys()]).toEqual(['module.logit_scale', 'module.visual.trunk.cls_token', 'module.visual.trunk.blocks.0.norm1.weight']);
    expect(ck.stateDict!.get('module.visual.trunk.cls_token')!.dtype).toBe('F16');
    expect(Array.from(await ck.stateDict!.get('module.visual.trunk.blocks.0.norm1.weight')!.float32())).toEqual([1, 2]);
    expect(() => referenceCheckpoint(parseSafetensors(writeSafetensors({ 'module.a': { dtype: 'F32', shape: [1], data: new Float32Array(1) }, 'a': { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), 'x.safetensors'), { epoch: -1 })).toThrow(/epoch/);
  });
});
