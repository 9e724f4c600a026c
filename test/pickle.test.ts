// Restricted unpickler and .pt reading from in-memory inputs (runs in Node and Chromium).
import { describe, expect, it } from 'vitest';
import { DTypeError, FormatError, HlipError } from '../src/errors.js';
import { convertToSafetensors } from '../src/io/convert.js';
import { encodeTensor, decodeFloat32, decodeFloat64, type StDType } from '../src/io/dtypes.js';
import { UnsafePickleError } from '../src/io/errors.js';
import { PyDict, PyGlobal, TruncatedPickleError, isTuple, unpickle, type PyValue } from '../src/io/pickle.js';
import { PtTensor, collectTensors, openClipStateDict, readPt, stripModulePrefix } from '../src/io/pt.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { crc32 } from '../src/io/zip.js';
import { buildLegacyPt, buildZip, buildZipPt, bytesOf, concat, pickle, rng, type PSpec, type StorageBytes } from './helpers/io_builders.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));

// CPython 3 pickle.dumps of
// {'a': [1, 2.5, None, True, False, 'x', (1, 2), (), (1, 2, 3, 4), 2**70, -5, 70000, -(2**40), 'é€'], 'n': {3: 'three'}, 'od': OrderedDict([('k', 1)])}
const CPYTHON: Record<number, string> = {
  1: '7d71002858010000006171015d7102284b014740040000000000004e4930310a4930300a5801000000787103284b014b0274710429284b014b024b034b047471054c313138303539313632303731373431313330333432344c0a4afbffffff4a701101004c2d313039393531313632373737364c0a5805000000c3a9e282ac71066558010000006e71077d71084b035805000000746872656571097358020000006f64710a63636f6c6c656374696f6e730a4f726465726564446963740a710b2952710c58010000006b710d4b0173752e',
  2: '80027d71002858010000006171015d7102284b014740040000000000004e888958010000007871034b014b0286710429284b014b024b034b047471058a090000000000000000404afbffffff4a701101008a060000000000ff5805000000c3a9e282ac71066558010000006e71077d71084b035805000000746872656571097358020000006f64710a63636f6c6c656374696f6e730a4f726465726564446963740a710b2952710c58010000006b710d4b0173752e',
  4: '80049599000000000000007d94288c0161945d94284b014740040000000000004e88898c0178944b014b02869429284b014b024b034b04749443026279948a090000000000000000404afbffffff4a701101008a060000000000ff8c05c3a9e282ac94658c016e947d944b038c05746872656594738c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b0173752e',
  5: '80059599000000000000007d94288c0161945d94284b014740040000000000004e88898c0178944b014b02869429284b014b024b034b04749443026279948a090000000000000000404afbffffff4a701101008a060000000000ff8c05c3a9e282ac94658c016e947d944b038c05746872656594738c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b0173752e',
};

describe('restricted unpickler', () => {
  for (const p of [1, 2, 4, 5]) {
    it(`decodes a CPython protocol-${p} pickle`, () => {
      const { value, protocol } = unpickle(hex(CPYTHON[p]!));
      expect(protocol).toBe(p === 1 ? 0 : p);
      const d = value as PyDict;
      expect([...d.keys()]).toEqual(['a', 'n', 'od']);
      const a = d.get('a') as PyValue[];
      const bytesItem = p >= 3 ? [bytesOf(new TextEncoder().encode('by'))] : [];
      expect(a).toEqual([1, 2.5, null, true, false, 'x', [1, 2], [], [1, 2, 3, 4], ...bytesItem, 2n ** 70n, -5, 70000, -(2 ** 40), 'é€']);
      expect(isTuple(a[6]!)).toBe(true);
      expect(isTuple(a)).toBe(false);
      expect((d.get('n') as PyDict).get(3)).toBe('three');
      const od = d.get('od') as PyDict;
      expect(od.ordered).toBe(true);
      expect(od.get('k')).toBe(1);
    });
  }

  it('decodes protocol-0 text opcodes and self-referencing lists', () => {
    // pickle.dumps([1, 2**70, True, 1.5], protocol=0)
    expect(unpickle(hex('286c70300a49310a614c313138303539313632303731373431313330333432344c0a614930310a6146312e350a612e')).value).toEqual([1, 2n ** 70n, true, 1.5]);
    const rec = unpickle(hex('80025d7100284b016800652e')).value as PyValue[]; // s = [1]; s.append(s)
    expect(rec[0]).toBe(1);
    expect(rec[1]).toBe(rec);
    expect(collectTensors(rec).size).toBe(0);
  });

  const unsafe: [string, Uint8Array, string][] = [
    ['GLOBAL os.system', concat([hex('8002'), new TextEncoder().encode('cos\nsystem\n'), hex('5802000000696485522e')]), 'os.system'],
    ['STACK_GLOBAL builtins.eval', concat([hex('80048c086275696c74696e738c046576616c93'), hex('8c013185522e')]), 'builtins.eval'],
    ['INST subprocess.Popen', concat([hex('28'), new TextEncoder().encode('isubprocess\nPopen\n'), hex('2e')]), 'subprocess.Popen'],
    ['protocol-3 bytes via _codecs.encode (p2)', concat([hex('8002'), new TextEncoder().encode('c_codecs\nencode\n'), hex('2e')]), '_codecs.encode'],
    ['a torch global off the list', concat([hex('8002'), new TextEncoder().encode('ctorch.serialization\nload\n'), hex('2e')]), 'torch.serialization.load'],
    ['torch storage type off the list', concat([hex('8002'), new TextEncoder().encode('ctorch\nComplexFloatStorage\n'), hex('2e')]), 'torch.ComplexFloatStorage'],
    ['EXT1 extension registry', hex('8002820129522e'), 'copyreg extension #1'],
  ];
  for (const [what, bytes, global] of unsafe) {
    it(`refuses ${what} with UnsafePickleError naming it`, () => {
      const ops: number[] = [];
      let err: unknown = null;
      try {
        unpickle(bytes, { source: 'evil.pkl', onOpcode: (op) => ops.push(op) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsafePickleError);
      expect(err).toBeInstanceOf(HlipError);
      expect((err as UnsafePickleError).kind).toBe('unsafe-pickle');
      expect((err as UnsafePickleError).global).toBe(global);
      expect((err as Error).message).toContain(global);
      expect((err as Error).message).toContain('evil.pkl');
      expect(ops.includes(0x52)).toBe(false); // REDUCE never reached
    });
  }

  it('a custom allow-list admits only what it names', () => {
    const p = concat([hex('8002'), new TextEncoder().encode('cos\nsystem\n'), hex('2e')]);
    const v = unpickle(p, { allowedGlobals: new Set(['os.system']) }).value;
    expect(v).toBeInstanceOf(PyGlobal); // allowed names are only ever references, never resolved to code
    expect(unpickle(hex('80027d2e'), { allowedGlobals: new Set() }).value).toBeInstanceOf(PyDict);
  });

  const malformed: [string, Uint8Array][] = [
    ['empty input', new Uint8Array(0)],
    ['no STOP', hex('80024b01')],
    ['unknown opcode', hex('8002ff2e')],
    ['protocol 6', hex('80062e')],
    ['stack underflow', hex('80022e')],
    ['pop below a mark', hex('80024b01284b02862e')],
    ['POP_MARK without MARK', hex('8002312e')],
    ['undefined memo key', hex('800268052e')],
    ['APPEND to a dict', hex('80027d4b01612e')],
    ['SETITEM on a list', hex('80025d4b014b02732e')],
    ['odd SETITEMS', hex('80027d284b01752e')],
    ['REDUCE on a non-callable', hex('80024b0129522e')],
    ['calling a storage class', concat([hex('8002'), new TextEncoder().encode('ctorch\nFloatStorage\n'), hex('29522e')])],
    ['string length lie', hex('800258ffffff7f41412e')],
    ['BINUNICODE8 length beyond 2^53', hex('80048dffffffffffffffff2e')],
    ['LONG4 of 2^31-1 bytes', hex('80028bffffff7f2e')],
    ['invalid UTF-8', hex('80028c02c3282e')],
    ['GLOBAL line without newline', concat([hex('8002'), new TextEncoder().encode('cos')])],
    ['persistent id without loader', hex('80024b01512e')],
  ];
  for (const [what, bytes] of malformed) {
    it(`rejects malformed input: ${what}`, () => {
      expect(() => unpickle(bytes)).toThrow(FormatError);
    });
  }

  it('truncation is reported as TruncatedPickleError (a FormatError)', () => {
    const full = hex(CPYTHON[2]!);
    for (let n = 0; n < full.length - 1; n += 7) expect(() => unpickle(full.subarray(0, n))).toThrow(TruncatedPickleError);
  });
});

// ---------------------------------------------------------------- .pt checkpoints built in memory

const r = rng(7);
const f32 = (n: number) => Float32Array.from({ length: n }, () => Math.round((r() - 0.5) * 2000) / 64);
const W = f32(6); // storage '0': [2, 3]
const OFF = f32(10); // storage '1'
const EXP = f32(3); // storage '2'
const H = f32(4); // storage '3' F16
const B = f32(4); // storage '4' BF16
const D = Float64Array.from(f32(3), (x) => x / 3); // '5' F64
const L = BigInt64Array.from([5n, -3n, 2n ** 40n]); // '6' I64
const Q = Uint8Array.from([1, 0, 1]); // '7' BOOL
const STEP = new Float32Array([2]); // '8'

const storages: [string, StDType, Uint8Array][] = [
  ['0', 'F32', bytesOf(W)], ['1', 'F32', bytesOf(OFF)], ['2', 'F32', bytesOf(EXP)], ['3', 'F16', encodeTensor(H, 'F16')],
  ['4', 'BF16', encodeTensor(B, 'BF16')], ['5', 'F64', bytesOf(D)], ['6', 'I64', bytesOf(L)], ['7', 'BOOL', Q], ['8', 'F32', bytesOf(STEP)],
];
const TYPE: Record<string, string> = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage', I64: 'LongStorage', BOOL: 'BoolStorage' };
const tensor = (key: string, size: number[], extra: { offset?: number; stride?: number[] } = {}, param = false): PSpec => {
  const st = storages.find((s) => s[0] === key)!;
  const numel = st[2].length / { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, BOOL: 1 }[st[1] as 'F32']!;
  return { $tensor: { key, storage: TYPE[st[1]]!, numel, size, ...extra }, ...(param ? { $param: true } : {}) };
};

const ROOT: PSpec = {
  $dict: [
    ['epoch', 3],
    ['name', 'run-1'],
    ['state_dict', {
      $ordered: true,
      $attrs: [['_metadata', { $dict: [['', { $dict: [['version', 1]] }]], $ordered: true }]],
      $dict: [
        ['module.w', tensor('0', [2, 3])],
        ['module.wt', tensor('0', [3, 2], { stride: [1, 3] })],
        ['module.off', tensor('1', [2, 2], { offset: 4, stride: [3, 1] })],
        ['module.exp', tensor('2', [2, 3], { stride: [0, 1] })],
        ['module.h', tensor('3', [2, 2])],
        ['module.b', tensor('4', [4])],
        ['module.d', tensor('5', [3])],
        ['module.ids', tensor('6', [3])],
        ['module.mask', tensor('7', [3])],
        ['module.p', tensor('1', [3], { offset: 1, stride: [2] }, true)],
      ],
    }],
    ['optimizer', { $dict: [['state', { $dict: [[0, { $dict: [['step', tensor('8', [])], ['exp_avg', tensor('0', [2, 3])]] }]] }], ['param_groups', [{ $dict: [['lr', { $float: 5e-4 }], ['betas', { $tuple: [{ $float: 0.9 }, { $float: 0.98 }] }], ['foreach', null]] }]]] }],
  ],
};

const expected: Record<string, { dtype: StDType; shape: number[]; values: number[] }> = {
  'module.w': { dtype: 'F32', shape: [2, 3], values: Array.from(W) },
  'module.wt': { dtype: 'F32', shape: [3, 2], values: [0, 3, 1, 4, 2, 5].map((i) => W[i]!) },
  'module.off': { dtype: 'F32', shape: [2, 2], values: [4, 5, 7, 8].map((i) => OFF[i]!) },
  'module.exp': { dtype: 'F32', shape: [2, 3], values: [...EXP, ...EXP] },
  'module.h': { dtype: 'F16', shape: [2, 2], values: Array.from(decodeFloat32(encodeTensor(H, 'F16'), 'F16')) },
  'module.b': { dtype: 'BF16', shape: [4], values: Array.from(decodeFloat32(encodeTensor(B, 'BF16'), 'BF16')) },
  'module.d': { dtype: 'F64', shape: [3], values: Array.from(D) },
  'module.ids': { dtype: 'I64', shape: [3], values: [5, -3, 2 ** 40] },
  'module.mask': { dtype: 'BOOL', shape: [3], values: [1, 0, 1] },
  'module.p': { dtype: 'F32', shape: [3], values: [1, 3, 5].map((i) => OFF[i]!) },
};

async function checkCheckpoint(ck: Awaited<ReturnType<typeof readPt>>) {
  expect(ck.epoch).toBe(3);
  expect(ck.runName).toBe('run-1');
  const sd = ck.stateDict!;
  expect([...sd.keys()]).toEqual(Object.keys(expected));
  for (const [name, e] of Object.entries(expected)) {
    const t = sd.get(name)!;
    expect(t.dtype, name).toBe(e.dtype);
    expect(t.shape, name).toEqual(e.shape);
    const v = e.dtype === 'F64' || e.dtype === 'I64' ? Array.from(await t.float64()) : Array.from(await t.float32());
    expect(v, name).toEqual(e.dtype === 'F64' ? e.values : e.values.map(Math.fround));
  }
  expect(sd.get('module.p')!.isParameter).toBe(true);
  expect(sd.get('module.wt')!.isContiguous()).toBe(false);
  expect(sd.get('module.wt')!.storage).toBe(sd.get('module.w')!.storage); // shared storage
  expect(Array.from(await ck.tensors.get('optimizer.state.0.step')!.float32())).toEqual([2]);
  expect(ck.tensors.get('optimizer.state.0.step')!.shape).toEqual([]);
  expect(ck.tensors.has('state_dict.module.w')).toBe(true);
  expect(await ck.tensors.get('optimizer.state.0.exp_avg')!.bytes()).toEqual(bytesOf(W));
  const groups = (ck.root as PyDict).get('optimizer') as PyDict;
  expect(((groups.get('param_groups') as PyDict[])[0]!).get('betas')).toEqual([0.9, 0.98]);
  expect([...openClipStateDict(ck).keys()]).toEqual(Object.keys(expected).map((k) => k.slice(7)));
  const meta = ck.meta as { epoch: number; state_dict: Record<string, unknown>; optimizer: { param_groups: Record<string, unknown>[] } };
  expect(meta.epoch).toBe(3);
  expect(meta.state_dict['module.wt']).toEqual({ tensor: 'F32', shape: [3, 2] });
  expect(meta.optimizer.param_groups[0]).toEqual({ lr: 5e-4, betas: [0.9, 0.98], foreach: null });
}

const zipStorages: StorageBytes[] = storages.map(([key, , bytes]) => ({ key, bytes }));
const legacyStorages = storages.map(([key, dt, bytes]) => ({ key, bytes, elemSize: { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, BOOL: 1 }[dt as 'F32'] }));

describe('.pt checkpoints in memory', () => {
  it('zip format: dtypes, strides, offsets, stride-0 views, shared storages, parameters, metadata', async () => {
    await checkCheckpoint(await readPt(buildZipPt(ROOT, zipStorages, { rootName: 'my_ckpt', byteorder: 'little' })));
  });

  it('zip variants: protocol 4 strings, ZIP64 records, Blob source, deflated data.pkl', async () => {
    await checkCheckpoint(await readPt(buildZipPt(ROOT, zipStorages, { protocol: 4 })));
    await checkCheckpoint(await readPt(buildZipPt(ROOT, zipStorages, { zip64: true })));
    await checkCheckpoint(await readPt(new Blob([buildZipPt(ROOT, zipStorages)])));
    if (typeof CompressionStream === 'undefined') return;
    const pkl = pickle(ROOT);
    const deflated = new Uint8Array(await new Response(new Blob([pkl as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer());
    const zip = buildZip([{ name: 'a/data.pkl', data: pkl, deflated }, ...zipStorages.map((s) => ({ name: `a/data/${s.key}`, data: s.bytes }))]);
    await checkCheckpoint(await readPt(zip));
    const bad = deflated.slice();
    bad[3] = (bad[3] as number) ^ 0xff;
    const zipBad = buildZip([{ name: 'a/data.pkl', data: pkl, deflated: bad }]);
    await expect(readPt(zipBad)).rejects.toBeInstanceOf(FormatError);
  });

  it('legacy format, including old storage views', async () => {
    await checkCheckpoint(await readPt(buildLegacyPt(ROOT, legacyStorages)));
    const view: PSpec = { $dict: [['v', { $tensor: { key: '1', storage: 'FloatStorage', numel: 10, size: [3], view: ['v1', 2, 5] } }]] };
    const ck = await readPt(buildLegacyPt(view, legacyStorages.filter((s) => s.key === '1')));
    expect(Array.from(await ck.tensors.get('v')!.float32())).toEqual([2, 3, 4].map((i) => OFF[i]!));
  });

  it('convertToSafetensors: state_dict with the prefix stripped, or every tensor; F16 cast', async () => {
    const pt = buildZipPt(ROOT, zipStorages);
    const st = parseSafetensors(await convertToSafetensors(pt));
    expect(st.names().sort()).toEqual(Object.keys(expected).map((k) => k.slice(7)).sort());
    expect(st.metadata).toMatchObject({ format: 'pt', epoch: '3', name: 'run-1' });
    expect(Array.from(st.float32Sync('wt'))).toEqual(expected['module.wt']!.values);
    expect(Array.from(decodeFloat64(st.bytesSync('ids'), 'I64'))).toEqual([5, -3, 2 ** 40]);
    expect(() => st.int32Sync('ids')).toThrow(DTypeError);
    const all = parseSafetensors(await convertToSafetensors(buildLegacyPt(ROOT, legacyStorages), { all: true, stripPrefix: false }));
    expect(all.names()).toContain('optimizer.state.0.exp_avg');
    expect(all.names()).toContain('state_dict.module.w');
    const half = parseSafetensors(await convertToSafetensors(pt, { floatDType: 'F16' }));
    expect(half.entry('w').dtype).toBe('F16');
    expect(half.entry('ids').dtype).toBe('I64');
    expect(Array.from(half.float32Sync('h'))).toEqual(expected['module.h']!.values);
  });

  it('crc32 matches zlib on aligned and unaligned data', () => {
    const b = new Uint8Array(800);
    for (let i = 0; i < 768; i++) b[i] = i & 255;
    b.set(new TextEncoder().encode('abc'), 768);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(b.subarray(0, 771))).toBe(0x9d3a9924); // zlib.crc32 values
    expect(crc32(b.subarray(1, 772))).toBe(0x3aa8172f);
  });

  it('stripModulePrefix refuses clashes', () => {
    expect([...stripModulePrefix(new Map([['module.a', 1], ['b', 2]])).keys()]).toEqual(['a', 'b']);
    expect(() => stripModulePrefix(new Map([['module.a', 1], ['a', 2]]))).toThrow(FormatError);
  });

  const bad: [string, () => Uint8Array][] = [
    ['view beyond its storage', () => buildZipPt({ $dict: [['x', tensor('0', [3, 3])]] }, zipStorages)],
    ['offset beyond its storage', () => buildZipPt({ $dict: [['x', tensor('0', [2], { offset: 5 })]] }, zipStorages)],
    ['missing storage entry', () => buildZipPt({ $dict: [['x', tensor('0', [2])]] }, [])],
    ['storage entry too small', () => buildZipPt({ $dict: [['x', tensor('0', [2])]] }, [{ key: '0', bytes: new Uint8Array(8) }])],
    ['no data.pkl', () => buildZip([{ name: 'x/other', data: new Uint8Array(3) }])],
    ['big-endian byteorder', () => buildZipPt({ $dict: [] }, [], { byteorder: 'big' })],
    ['legacy count mismatch', () => buildLegacyPt({ $dict: [['x', tensor('0', [2])]] }, [{ key: '0', bytes: new Uint8Array(12), elemSize: 4 }])],
    ['legacy storage missing from the list', () => buildLegacyPt({ $dict: [['x', tensor('0', [2])]] }, [])],
    ['legacy storage past the end', () => buildLegacyPt({ $dict: [['x', tensor('0', [2, 3])]] }, legacyStorages.filter((s) => s.key === '0')).subarray(0, -4)],
    ['not a checkpoint', () => new TextEncoder().encode('hello world')],
    ['bad persistent id', () => buildZip([{ name: 'a/data.pkl', data: concat([hex('80024b01'), hex('512e')]) }])],
  ];
  for (const [what, make] of bad) {
    it(`rejects: ${what}`, async () => {
      await expect(readPt(make())).rejects.toBeInstanceOf(FormatError);
    });
  }

  it('exponential sharing through the memo (each list holds the previous twice, 64 levels) is refused quickly', async () => {
    const ops: number[] = [0x80, 2, 0x5d, 0x71, 0];
    for (let i = 0; i < 64; i++) ops.push(0x5d, 0x28, 0x68, i, 0x68, i, 0x65, 0x71, i + 1);
    ops.push(0x2e);
    const t0 = performance.now();
    const err = await readPt(buildZip([{ name: 'a/data.pkl', data: Uint8Array.from(ops) }])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain('sharing');
    expect(performance.now() - t0).toBeLessThan(2000);
    // the same at 12 levels is accepted, and shared containers are converted once
    const small = [0x80, 2, 0x5d, 0x71, 0];
    for (let i = 0; i < 12; i++) small.push(0x5d, 0x28, 0x68, i, 0x68, i, 0x65, 0x71, i + 1);
    small.push(0x2e);
    const ck = await readPt(buildZip([{ name: 'a/data.pkl', data: Uint8Array.from(small) }]));
    const m = ck.meta as unknown[];
    expect(m.length).toBe(2);
    expect(m[0]).toBe(m[1]);
  });

  it('nesting deeper than 100 levels is a FormatError, not a stack overflow', async () => {
    const deep = (n: number) => Uint8Array.from([0x80, 2, ...Array(n).fill(0x5d), ...Array(n - 1).fill(0x61), 0x2e]);
    expect(unpickle(deep(100_000)).end).toBe(2 + 100_000 + 99_999 + 1); // the unpickler itself has no recursion
    await expect(readPt(buildZip([{ name: 'a/data.pkl', data: deep(100_000) }]))).rejects.toBeInstanceOf(FormatError);
    expect((await readPt(buildZip([{ name: 'a/data.pkl', data: deep(50) }]))).tensors.size).toBe(0);
  });

  it('a tensor expanded (stride 0) far beyond its storage is refused above the limit', async () => {
    const ck = await readPt(buildZipPt({ $dict: [['x', tensor('2', [1000, 3], { stride: [0, 1] })]] }, zipStorages), { maxExpandedBytes: 1024 });
    const t = ck.tensors.get('x') as PtTensor;
    await expect(t.bytes()).rejects.toMatchObject({ kind: 'limit' });
  });
});
