// Seeded fuzzing of the safetensors, pickle and .pt parsers: every failure must be a typed HlipError,
// no case may hang, and no allocation may exceed what the input could justify. Both runtimes run
// 10,000 mutated inputs per format (safetensors, raw pickles, .pt files).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HlipError } from '../src/errors.js';
import { ST_DTYPE_BYTES } from '../src/io/dtypes.js';
import { setAllocationObserver } from '../src/io/limits.js';
import { unpickle } from '../src/io/pickle.js';
import { collectTensors, readPt } from '../src/io/pt.js';
import { openSafetensors, parseSafetensors, writeSafetensors, type SafetensorsFile, type TensorToWrite } from '../src/io/safetensors.js';
import { buildLegacyPt, buildZip, buildZipPt, bytesOf, concat, pickle, rng, type PSpec } from './helpers/io_builders.js';

const N = 10_000;
const RUNTIME = `${N} cases`;
/** Generous: a real hang is unbounded; shared CI cores make single cases slow now and then. */
const CASE_MS = 2_000;

let maxAlloc = 0;
beforeAll(() => setAllocationObserver((n) => { if (n > maxAlloc) maxAlloc = n; }));
afterAll(() => setAllocationObserver(null));

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

interface Stats { ok: number; rejected: number; maxMs: number; maxRatio: number; kinds: Map<string, number> }
const newStats = (): Stats => ({ ok: 0, rejected: 0, maxMs: 0, maxRatio: 0, kinds: new Map() });

/** Run one case: success or a typed error; bounded time; allocations at most 4x the input (+4 KiB). */
async function runCase(stats: Stats, input: Uint8Array, fn: () => unknown | Promise<unknown>, label: string): Promise<void> {
  maxAlloc = 0;
  const t0 = performance.now();
  try {
    await fn();
    stats.ok++;
  } catch (e) {
    if (!(e instanceof HlipError)) throw new Error(`${label}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    stats.rejected++;
    stats.kinds.set(e.kind, (stats.kinds.get(e.kind) ?? 0) + 1);
  }
  const ms = performance.now() - t0;
  stats.maxMs = Math.max(stats.maxMs, ms);
  if (ms > CASE_MS) throw new Error(`${label}: took ${ms.toFixed(0)} ms`);
  const bound = 4 * input.byteLength + 4096;
  stats.maxRatio = Math.max(stats.maxRatio, maxAlloc / Math.max(input.byteLength, 1));
  if (maxAlloc > bound) throw new Error(`${label}: allocated ${maxAlloc} bytes for a ${input.byteLength}-byte input`);
}

// ---------------------------------------------------------------- generic byte mutators

function mutateBytes(r: Rand, src: Uint8Array): Uint8Array {
  const b = src.slice();
  switch (int(r, 6)) {
    case 0: { // bit flips
      const k = 1 + int(r, 4);
      for (let i = 0; i < k && b.length; i++) b[int(r, b.length)]! ^= 1 << int(r, 8);
      return b;
    }
    case 1: { // random bytes
      const k = 1 + int(r, 8);
      for (let i = 0; i < k && b.length; i++) b[int(r, b.length)] = pick(r, [0, 0xff, 0x7f, 0x80, int(r, 256)]);
      return b;
    }
    case 2: { // insert
      const at = int(r, b.length + 1);
      const ins = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
      return concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 3: { // delete
      const at = int(r, b.length);
      return concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 16)))]);
    }
    case 4: return b.subarray(0, int(r, b.length)); // truncate
    default: { // 32/64-bit field lies at a random spot
      if (b.length < 8) return b;
      const at = int(r, b.length - 7);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const v = pick(r, [0xffffffff, 0x7fffffff, 0x80000000, b.length, b.length + 1, 0, 2 ** 31 + 7]);
      if (r() < 0.5) dv.setUint32(at, v, true);
      else dv.setBigUint64(at, pick(r, [2n ** 63n, 2n ** 53n + 1n, BigInt(v), 2n ** 64n - 1n]), true);
      return b;
    }
  }
}

// ---------------------------------------------------------------- safetensors

function safetensorsSeeds(): Uint8Array[] {
  const r = rng(11);
  const f = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
  const mk = (t: Record<string, TensorToWrite>, m?: Record<string, string>) => writeSafetensors(t, m);
  return [
    mk({ a: { dtype: 'F32', shape: [2, 3], data: f(6) }, b: { dtype: 'F16', shape: [4], data: f(4) } }, { format: 'pt' }),
    mk({ x: { dtype: 'BF16', shape: [3, 1], data: f(3) }, y: { dtype: 'F64', shape: [2], data: new Float64Array([1, 2]) }, z: { dtype: 'I64', shape: [3], data: BigInt64Array.from([1n, -2n, 3n]) } }),
    mk({ s: { dtype: 'F32', shape: [], data: f(1) }, e: { dtype: 'F32', shape: [0, 4], data: f(0) }, u: { dtype: 'U8', shape: [5], data: Uint8Array.from([1, 2, 3, 4, 5]) }, i: { dtype: 'I8', shape: [3], data: Int8Array.from([-1, 0, 1]) } }, { k: 'v' }),
    mk({ bool: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) }, i32: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([1, 2, 3, 4]) }, u64: { dtype: 'U64', shape: [1], data: BigUint64Array.from([7n]) } }),
  ];
}

function headerOf(file: Uint8Array): { json: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))), data: file.subarray(8 + n) };
}

const HUGE = [2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, -1, 1.5, 0, '3', null, 2 ** 26];

function mutateSafetensorsJson(r: Rand, file: Uint8Array): Uint8Array {
  const { json, data } = headerOf(file);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const name = pick(r, names);
  const t = json[name] as { dtype: unknown; shape: unknown[]; data_offsets: unknown[] };
  const [b, e] = t.data_offsets as [number, number];
  const edits = 1 + int(r, 2);
  let text: string | null = null;
  for (let k = 0; k < edits; k++) {
    switch (int(r, 12)) {
      case 0: t.dtype = pick(r, ['F32', 'F16', 'BF16', 'F64', 'I64', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'U64', 'X', 5, null]); break;
      case 1: t.shape = [pick(r, HUGE), pick(r, HUGE)]; break; // huge dims
      case 2: t.shape = [...(Array.isArray(t.shape) ? t.shape : []), pick(r, HUGE)]; break;
      case 3: t.shape = pick(r, [[], [0], 'abc', {}, [[2]], Array(70).fill(2)]) as unknown[]; break;
      case 4: t.data_offsets = pick(r, [[e, b], [0, 2 ** 53], [-8, 0], [e, e + 8], [b + 1, e + 1], ['0', e], [b], [b, e, e], [b, 2 ** 64], null]) as unknown[]; break;
      case 5: delete (t as Record<string, unknown>)[pick(r, ['dtype', 'shape', 'data_offsets'])]; break;
      case 6: json[pick(r, ['__proto__', '', 'constructor', `${name}2`])] = { ...t }; break; // duplicates / overlap
      case 7: json.__metadata__ = pick(r, [{ a: 1 }, [], 'x', { a: 'b', c: null }, null]); break;
      case 8: json[name] = pick(r, [1, 'x', [], null]); break;
      case 9: text = JSON.stringify(pick(r, [[], 'str', 1, null])); break;
      case 10: text = '['.repeat(1 + int(r, 50_000)); break; // deep nesting / unterminated
      default: text = JSON.stringify(json).replace(/\d+/, () => String(pick(r, ['1e999', '-0', '99999999999999999999', '0x10']))); break;
    }
  }
  const j = new TextEncoder().encode(text ?? JSON.stringify(json));
  const h = new Uint8Array(8);
  const lie = r() < 0.2;
  new DataView(h.buffer).setBigUint64(0, lie ? pick(r, [0n, 1n, BigInt(j.length + 1), BigInt(j.length - 1), 2n ** 40n, 2n ** 63n]) : BigInt(j.length), true);
  return concat([h, j, data]);
}

function decodeAll(f: SafetensorsFile): number {
  let n = 0;
  for (const name of f.names()) {
    const dt = f.entry(name).dtype;
    const bytes = f.bytesSync(name);
    if (bytes.byteLength !== f.entry(name).byteLength) throw new Error('length');
    if (dt === 'F8_E4M3' || dt === 'F8_E5M2') continue;
    n += f.float32Sync(name).length;
    if (ST_DTYPE_BYTES[dt] && !['F16', 'BF16', 'F32', 'F64'].includes(dt)) n += f.int32Sync(name).length;
  }
  return n;
}

describe('fuzz: safetensors', () => {
  it(`mutated safetensors files (sync, in memory): ${RUNTIME}, only typed errors, bounded time and allocation`, async () => {
    const seeds = safetensorsSeeds();
    for (const s of seeds) expect(decodeAll(parseSafetensors(s))).toBeGreaterThan(0);
    const r = rng(20240601);
    const stats = newStats();
    for (let i = 0; i < N; i++) {
      const seed = pick(r, seeds);
      const input = r() < 0.5 ? mutateBytes(r, seed) : mutateSafetensorsJson(r, seed);
      await runCase(stats, input, () => decodeAll(parseSafetensors(input, 'fuzz.safetensors')), `safetensors case ${i}`);
    }
    expect(stats.ok + stats.rejected).toBe(N);
    expect(stats.rejected).toBeGreaterThan(N * 0.5);
    expect(stats.ok).toBeGreaterThan(0);
    console.log(`safetensors fuzz: ${N} cases, ${stats.ok} accepted, ${stats.rejected} rejected ${JSON.stringify([...stats.kinds])}, max ${stats.maxMs.toFixed(1)} ms/case, max alloc ${stats.maxRatio.toFixed(2)}x input`);
  });

  it(`mutated safetensors through a Blob source (async reads): ${N / 10} cases`, async () => {
    const seeds = safetensorsSeeds();
    const r = rng(77);
    const stats = newStats();
    for (let i = 0; i < N / 10; i++) {
      const input = r() < 0.5 ? mutateBytes(r, pick(r, seeds)) : mutateSafetensorsJson(r, pick(r, seeds));
      await runCase(stats, input, async () => {
        const f = await openSafetensors(new Blob([input as Uint8Array<ArrayBuffer>]), 'fuzz.safetensors');
        for (const n of f.names()) if (!f.entry(n).dtype.startsWith('F8')) await f.float32(n);
      }, `blob case ${i}`);
    }
    expect(stats.ok + stats.rejected).toBe(N / 10);
    expect(stats.rejected).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------- pickle and .pt

const t = (key: string, storage: string, numel: number, size: number[], offset = 0, stride?: number[]): PSpec => ({ $tensor: { key, storage, numel, size, offset, ...(stride ? { stride } : {}) } });
const PT_ROOT: PSpec = {
  $dict: [
    ['epoch', 1], ['name', 'fuzz'],
    ['state_dict', { $ordered: true, $attrs: [['_metadata', { $dict: [['', { $dict: [['version', 1]] }]] }]], $dict: [
      ['module.a', t('0', 'FloatStorage', 6, [2, 3])],
      ['module.at', t('0', 'FloatStorage', 6, [3, 2], 0, [1, 3])],
      ['module.b', t('1', 'HalfStorage', 4, [4])],
      ['module.c', t('2', 'LongStorage', 2, [2])],
      ['module.d', t('3', 'FloatStorage', 3, [2, 3], 0, [0, 1])],
    ] }],
    ['optimizer', { $dict: [['state', { $dict: [[0, { $dict: [['step', t('4', 'FloatStorage', 1, [])]] }]] }], ['param_groups', [{ $dict: [['lr', { $float: 0.1 }], ['betas', { $tuple: [{ $float: 0.9 }, { $float: 0.98 }] }], ['x', null], ['y', true]] }]]] }],
  ],
};
const PT_STORAGES = [
  { key: '0', bytes: bytesOf(new Float32Array([1, 2, 3, 4, 5, 6])), elemSize: 4 },
  { key: '1', bytes: new Uint8Array(8).fill(0x3c), elemSize: 2 },
  { key: '2', bytes: bytesOf(BigInt64Array.from([3n, -4n])), elemSize: 8 },
  { key: '3', bytes: bytesOf(new Float32Array([7, 8, 9])), elemSize: 4 },
  { key: '4', bytes: bytesOf(new Float32Array([2])), elemSize: 4 },
];
// data.pkl of malicious_global_zip.pt (GLOBAL 'posix system' + REDUCE), from malicious_pickles.json.
const MALICIOUS_P2 = Uint8Array.from(
  '80027d28580500000065706f63684b01580a00000073746174655f6469637463706f7369780a73797374656d0a58510000006563686f20484c49502d474f4c44454e2d464958545552453a2074686973207069636b6c6520657865637574656420636f64652c20612073616665206c6f61646572206d7573742072656a6563742069748552752e'
    .match(/../g)!.map((h) => parseInt(h, 16)),
);

/** Structure-aware pickle mutations: opcode substitution, length lies, splices. */
function mutatePickle(r: Rand, src: Uint8Array, other: Uint8Array): Uint8Array {
  const k = int(r, 5);
  if (k === 0) { // replace a byte with a random opcode
    const b = src.slice();
    b[int(r, b.length)] = pick(r, [0x28, 0x29, 0x2e, 0x30, 0x31, 0x32, 0x4b, 0x4a, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x65, 0x68, 0x6a, 0x71, 0x72, 0x73, 0x74, 0x75, 0x7d, 0x80, 0x81, 0x85, 0x86, 0x87, 0x8a, 0x8b, 0x8c, 0x8d, 0x93, 0x94, 0x95]);
    return b;
  }
  if (k === 1) { // lie in a BINUNICODE / LONG_BINPUT / BININT length or value
    const b = src.slice();
    const at = [...b.keys()].filter((i) => b[i] === 0x58 || b[i] === 0x72 || b[i] === 0x6a || b[i] === 0x4a);
    if (!at.length) return b;
    const p = pick(r, at);
    if (p + 5 <= b.length) new DataView(b.buffer).setUint32(p + 1, pick(r, [0xffffffff, 0x7fffffff, b.length, b.length - p, int(r, 4096)]), true);
    return b;
  }
  if (k === 2) { // splice a segment of another pickle in
    const a = int(r, src.length);
    const s = int(r, other.length);
    return concat([src.subarray(0, a), other.subarray(s, s + 1 + int(r, 64)), src.subarray(a + int(r, 16))]);
  }
  if (k === 3) { // duplicate a segment (repeated MARK/APPENDS/SETITEMS structures)
    const a = int(r, src.length);
    const seg = src.subarray(a, a + 1 + int(r, 32));
    return concat([src.subarray(0, a), seg, seg, seg, src.subarray(a)]);
  }
  return mutateBytes(r, src);
}

describe('fuzz: pickle and .pt', () => {
  it(`mutated pickles through the restricted unpickler: ${RUNTIME}`, async () => {
    const seeds = [pickle(PT_ROOT, 2), pickle(PT_ROOT, 4), pickle(PT_ROOT, 2, true), MALICIOUS_P2, pickle({ $dict: [['a', [1, 2, { $tuple: ['x', { $float: 1.5 }] }]]] }, 4)];
    for (const s of seeds.slice(0, 1)) expect(() => unpickle(s)).toThrow(HlipError); // persistent ids need a loader
    const r = rng(99);
    const stats = newStats();
    for (let i = 0; i < N; i++) {
      const input = mutatePickle(r, pick(r, seeds), pick(r, seeds));
      await runCase(stats, input, () => {
        const { value } = unpickle(input, { source: 'fuzz.pkl', persistentLoad: (pid) => pid });
        return collectTensors(value, 'fuzz.pkl');
      }, `pickle case ${i}`);
    }
    expect(stats.ok + stats.rejected).toBe(N);
    expect(stats.rejected).toBeGreaterThan(N * 0.5);
    expect(stats.kinds.get('unsafe-pickle') ?? 0).toBeGreaterThan(0);
    console.log(`pickle fuzz: ${N} cases, ${stats.ok} accepted, ${stats.rejected} rejected ${JSON.stringify([...stats.kinds])}, max ${stats.maxMs.toFixed(1)} ms/case`);
  });

  it(`mutated .pt checkpoints (zip and legacy, container and pickle mutations, all tensors materialised): ${RUNTIME}`, async () => {
    const zipStorages = PT_STORAGES.map(({ key, bytes }) => ({ key, bytes }));
    const zipSeed = buildZipPt(PT_ROOT, zipStorages);
    const legacySeed = buildLegacyPt(PT_ROOT, PT_STORAGES);
    const pkl = pickle(PT_ROOT, 2);
    const legacyPkl = pickle(PT_ROOT, 2, true);
    const seedsOk = await readPt(zipSeed);
    expect(seedsOk.tensors.size).toBe(6);
    expect((await readPt(legacySeed)).tensors.size).toBe(6);
    // A deflated data.pkl (where CompressionStream exists) so the inflate path is fuzzed too.
    let deflatedSeed: Uint8Array | null = null;
    if (typeof CompressionStream !== 'undefined') {
      const def = new Uint8Array(await new Response(new Blob([pkl]).stream().pipeThrough(new CompressionStream('deflate-raw'))).arrayBuffer());
      deflatedSeed = buildZip([{ name: 'a/data.pkl', data: pkl, deflated: def }, ...zipStorages.map((s) => ({ name: `a/data/${s.key}`, data: s.bytes }))]);
      expect((await readPt(deflatedSeed)).tensors.size).toBe(6);
    }
    const zipFiles = (data: Uint8Array) => [{ name: 'a/data.pkl', data }, ...zipStorages.map((s) => ({ name: `a/data/${s.key}`, data: s.bytes }))];
    const r = rng(4242);
    const stats = newStats();
    for (let i = 0; i < N; i++) {
      let input: Uint8Array;
      switch (int(r, 6)) {
        case 0: input = mutateBytes(r, zipSeed); break; // container bytes (CRC catches most data changes)
        case 5: input = mutateBytes(r, deflatedSeed ?? zipSeed); break;
        case 1: input = buildZip(zipFiles(mutatePickle(r, pkl, legacyPkl))); break; // pickle mutations inside a valid zip
        case 2: input = mutateBytes(r, legacySeed); break;
        case 3: input = buildLegacyPt(PT_ROOT, PT_STORAGES, mutatePickle(r, legacyPkl, pkl)); break; // legacy with a mutated object pickle
        default: input = buildZip(zipFiles(pickle(PT_ROOT, 2)).map((f) => (r() < 0.3 ? { ...f, data: mutateBytes(r, f.data) } : f)), r() < 0.3); // storage-size lies with valid CRCs, ZIP64
      }
      await runCase(stats, input, async () => {
        const ck = await readPt(input, { name: 'fuzz.pt', maxExpandedBytes: input.byteLength });
        for (const tt of ck.tensors.values()) await tt.float32();
      }, `pt case ${i}`);
    }
    expect(stats.ok + stats.rejected).toBe(N);
    expect(stats.rejected).toBeGreaterThan(N * 0.3);
    expect(stats.ok).toBeGreaterThan(0);
    console.log(`.pt fuzz: ${N} cases, ${stats.ok} accepted, ${stats.rejected} rejected ${JSON.stringify([...stats.kinds])}, max ${stats.maxMs.toFixed(1)} ms/case, max alloc ${stats.maxRatio.toFixed(2)}x input`);
  });
});
