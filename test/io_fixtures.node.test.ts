// Golden checkpoints and safetensors from the PyTorch reference (Node only: reads ../shared/golden).
import { createHash } from 'node:crypto';
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { HlipError } from '../src/errors.js';
import { UnsafePickleError } from '../src/io/errors.js';
import { convertFile, openFileSource, readPtFile, readSafetensorsFile, writeSafetensorsFile } from '../src/io/node-files.js';
import { PyDict, isTuple, unpickle } from '../src/io/pickle.js';
import { openClipStateDict, readPt, type PtCheckpoint } from '../src/io/pt.js';
import { openSafetensors, type SafetensorsFile } from '../src/io/safetensors.js';

const golden = fileURLToPath(new URL('../../shared/golden/', import.meta.url));
const srcIo = fileURLToPath(new URL('../src/io/', import.meta.url));
const json = async (f: string) => JSON.parse(await readFile(join(golden, f), 'utf8'));
const DT: Record<string, string> = { float32: 'F32', float64: 'F64', int64: 'I64' };

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Every module.* and optimizer.state.* tensor of the twin matches the checkpoint bit for bit. */
async function compareWithTwin(ck: PtCheckpoint, twin: SafetensorsFile): Promise<number> {
  let compared = 0;
  const expectedNames = twin.names().filter((n) => !n.startsWith('check.'));
  const sd = ck.stateDict!;
  expect(sd).not.toBeNull();
  const ckNames = [...sd.keys(), ...[...ck.tensors.keys()].filter((k) => k.startsWith('optimizer.state.'))];
  expect(new Set(ckNames)).toEqual(new Set(expectedNames));
  for (const name of expectedNames) {
    const t = name.startsWith('module.') ? sd.get(name) : ck.tensors.get(name);
    expect(t, name).toBeDefined();
    const e = twin.entry(name);
    expect(t!.dtype, name).toBe(e.dtype);
    expect(t!.shape, name).toEqual(e.shape);
    expect(equalBytes(await t!.bytes(), await twin.bytes(name)), name).toBe(true);
    compared++;
  }
  return compared;
}

describe('golden safetensors', () => {
  it('every golden .safetensors opens through a file handle and matches its sidecar (names, dtypes, shapes, sha256)', async () => {
    const files = (await readdir(golden)).filter((f) => f.endsWith('.safetensors'));
    expect(files.length).toBeGreaterThanOrEqual(9);
    for (const f of files) {
      const side = await json(f.replace('.safetensors', '.json'));
      const bytes = await readFile(join(golden, f));
      expect(createHash('sha256').update(bytes).digest('hex'), f).toBe(side.sha256);
      const st = await readSafetensorsFile(join(golden, f));
      try {
        expect(st.metadata?.format, f).toBe('hlip-golden-1');
        const index = side.tensor_index as Record<string, { dtype: string; shape: number[] }>;
        expect(new Set(st.names()), f).toEqual(new Set(Object.keys(index)));
        for (const [n, info] of Object.entries(index)) {
          const e = st.entry(n);
          expect(e.dtype, `${f}:${n}`).toBe(DT[info.dtype]);
          expect(e.shape, `${f}:${n}`).toEqual(info.shape);
          expect(e.byteOffset % 8 === 0 || e.byteOffset % (e.dtype === 'F64' || e.dtype === 'I64' ? 8 : 4) === 0).toBe(true);
        }
      } finally {
        await st.close();
      }
    }
  });

  it('decodes I64 token ids (clip_wrapper input.text) to int32 and float64, and F64 references', async () => {
    const st = await readSafetensorsFile(join(golden, 'clip_wrapper.safetensors'));
    try {
      const ids = await st.int32('input.text');
      expect(st.entry('input.text').dtype).toBe('I64');
      expect(ids.length).toBe(36);
      expect(Math.max(...ids)).toBe(63); // EOT, the largest id
      expect(ids[0]).toBe(62); // SOT
      expect(Array.from(await st.float64('input.text'))).toEqual(Array.from(ids));
    } finally {
      await st.close();
    }
    const g = await readSafetensorsFile(join(golden, 'vit2025_slice_study.safetensors'));
    try {
      const f64 = await g.float64('main.f64.pooled');
      const f32 = await g.float32('main.pooled');
      let m = 0;
      for (let i = 0; i < f32.length; i++) m = Math.max(m, Math.abs((f64[i] as number) - (f32[i] as number)));
      expect(m).toBeGreaterThan(0);
      expect(m).toBeLessThan(1e-4);
    } finally {
      await g.close();
    }
  });
});

describe('golden .pt checkpoints', () => {
  it('zip checkpoint (file handle) loads to tensors bit-identical to checkpoint_openclip.safetensors', async () => {
    const ck = await readPtFile(join(golden, 'checkpoint_openclip_zip.pt'));
    const twin = await readSafetensorsFile(join(golden, 'checkpoint_openclip.safetensors'));
    try {
      expect(ck.format).toBe('zip');
      expect(await compareWithTwin(ck, twin)).toBe(twin.names().length - 3);
    } finally {
      await ck.close();
      await twin.close();
    }
  });

  it('legacy checkpoint (in memory and as a Blob) loads to tensors bit-identical to the twin', async () => {
    const bytes = new Uint8Array(await readFile(join(golden, 'checkpoint_openclip_legacy.pt')));
    const twin = await openSafetensors(new Uint8Array(await readFile(join(golden, 'checkpoint_openclip.safetensors'))));
    const ck = await readPt(bytes, { name: 'legacy.pt' });
    expect(ck.format).toBe('legacy');
    expect(await compareWithTwin(ck, twin)).toBe(385);
    const viaBlob = await readPt(new Blob([bytes]));
    expect(await compareWithTwin(viaBlob, twin)).toBe(385);
  });

  it('checkpoint metadata: epoch, name, scaler, param_groups, optimizer indices, state_dict _metadata', async () => {
    const side = await json('checkpoint_openclip.json');
    for (const f of ['checkpoint_openclip_zip.pt', 'checkpoint_openclip_legacy.pt']) {
      const ck = await readPtFile(join(golden, f));
      try {
        expect(ck.epoch).toBe(side.checkpoint.epoch);
        expect(ck.runName).toBe(side.checkpoint.name);
        const root = ck.root as PyDict;
        expect([...root.keys()]).toEqual(['epoch', 'name', 'state_dict', 'optimizer', 'scaler']);
        const meta = ck.meta as { scaler: unknown; optimizer: { param_groups: unknown } };
        expect(meta.scaler).toEqual(side.checkpoint.scaler);
        expect(meta.optimizer.param_groups).toEqual(side.checkpoint.optimizer_param_groups);
        const scaler = root.get('scaler') as PyDict;
        expect(Object.fromEntries(scaler)).toEqual(side.checkpoint.scaler);
        const groups = (root.get('optimizer') as PyDict).get('param_groups') as PyDict[];
        expect(groups.length).toBe(2);
        const betas = groups[0]!.get('betas')!;
        expect(isTuple(betas)).toBe(true);
        expect(betas).toEqual(side.checkpoint.optimizer_param_groups[0].betas);
        expect(groups[1]!.get('params')).toEqual(side.checkpoint.optimizer_param_groups[1].params);
        expect(groups[0]!.get('foreach')).toBeNull();
        const state = (root.get('optimizer') as PyDict).get('state') as PyDict;
        expect([...state.keys()].every((k) => typeof k === 'number')).toBe(true);
        const sd = root.get('state_dict') as PyDict;
        expect(sd.ordered).toBe(true);
        expect((sd.attrs?.get('_metadata') as PyDict).get('module.visual')).toBeInstanceOf(PyDict);
        const oc = openClipStateDict(ck);
        expect([...oc.keys()]).toEqual([...ck.stateDict!.keys()].map((k) => k.slice('module.'.length)));
        expect(oc.has('visual.trunk.cls_token') && oc.has('logit_scale') && oc.has('visual.head.proj.weight')).toBe(true);
      } finally {
        await ck.close();
      }
    }
  });

  it('convertFile writes an atomic, prefix-stripped safetensors file equal to the twin (zip and legacy)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hlip-io-'));
    tmpDirs.push(dir);
    const twin = await readSafetensorsFile(join(golden, 'checkpoint_openclip.safetensors'));
    try {
      for (const f of ['checkpoint_openclip_zip.pt', 'checkpoint_openclip_legacy.pt']) {
        const out = join(dir, `${f}.safetensors`);
        const r = await convertFile(join(golden, f), out);
        expect(r.tensors).toBe(twin.names().filter((n) => n.startsWith('module.')).length);
        const st = await readSafetensorsFile(out);
        try {
          expect(st.metadata).toMatchObject({ format: 'pt', epoch: '1' });
          for (const n of twin.names().filter((x) => x.startsWith('module.'))) {
            const s = n.slice('module.'.length);
            expect(st.entry(s).shape).toEqual(twin.entry(n).shape);
            expect(equalBytes(await st.bytes(s), await twin.bytes(n)), s).toBe(true);
          }
        } finally {
          await st.close();
        }
      }
      expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      // safetensors -> safetensors with a cast to F16
      const half = join(dir, 'half.safetensors');
      await convertFile(join(golden, 'checkpoint_openclip.safetensors'), half, { floatDType: 'F16' });
      const h = await readSafetensorsFile(half);
      try {
        expect(h.entry('logit_scale').dtype).toBe('F16');
        const a = await h.float32('visual.trunk.cls_token');
        const b = await twin.float32('module.visual.trunk.cls_token');
        for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThanOrEqual(Math.abs(b[i] as number) * 2 ** -11 + 1e-7);
      } finally {
        await h.close();
      }
    } finally {
      await twin.close();
    }
  });

  it('writeSafetensorsFile round-trips through the atomic writer and a failed write leaves no file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hlip-io-'));
    tmpDirs.push(dir);
    const p = join(dir, 'w.safetensors');
    await writeSafetensorsFile(p, { a: { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) } }, { k: 'v' });
    const st = await readSafetensorsFile(p);
    expect(Array.from(await st.float32('a'))).toEqual([1, 2, 3]);
    await st.close();
    await expect(writeSafetensorsFile(join(dir, 'bad.safetensors'), { a: { dtype: 'F32', shape: [4], data: () => new Float32Array(3) } })).rejects.toBeInstanceOf(HlipError);
    expect((await readdir(dir)).sort()).toEqual(['w.safetensors']);
    const src = await openFileSource(p);
    expect(src.size).toBe((await readFile(p)).length);
    await src.close?.();
  });
});

describe('malicious pickles', () => {
  it('every malicious_*.pt is refused with UnsafePickleError naming the global; REDUCE never runs, no process is spawned', async () => {
    const spec = await json('malicious_pickles.json');
    const names = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;
    const spies = names.map((n) => vi.spyOn(childProcess, n));
    syncBuiltinESMExports();
    const evalSpy = vi.spyOn(globalThis, 'eval');
    try {
      const files = Object.keys(spec.files);
      expect(files.length).toBe(3);
      for (const f of files) {
        const info = spec.files[f];
        const ops: number[] = [];
        const err = await readPtFile(join(golden, f), { onOpcode: (op) => ops.push(op) }).catch((e: unknown) => e);
        expect(err, f).toBeInstanceOf(UnsafePickleError);
        const u = err as UnsafePickleError;
        expect(u.kind).toBe('unsafe-pickle');
        expect(u.global).toBe(info.callables_referenced[0]);
        expect(u.message).toContain(info.callables_referenced[0]);
        expect(u.message).toContain(f);
        expect(ops.length).toBeGreaterThan(0);
        expect(ops.includes(0x52), `${f}: REDUCE executed`).toBe(false);
        // The pickle bytes from the sidecar, unpickled on their own, fail the same way at the GLOBAL opcode.
        const pkl = Uint8Array.from(Buffer.from(info.data_pkl_hex, 'hex'));
        const e2 = (() => { try { unpickle(pkl); return null; } catch (e) { return e; } })();
        expect(e2).toBeInstanceOf(UnsafePickleError);
        const op = pkl[(e2 as UnsafePickleError).offset];
        expect(op === 0x63 || op === 0x93).toBe(true); // GLOBAL or STACK_GLOBAL, before the REDUCE
        expect(pkl.indexOf(0x52, (e2 as UnsafePickleError).offset)).toBeGreaterThan((e2 as UnsafePickleError).offset);
      }
      for (const s of spies) expect(s).not.toHaveBeenCalled();
      expect(evalSpy).not.toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
      evalSpy.mockRestore();
      syncBuiltinESMExports();
    }
  });

  it('src/io never imports process or code-execution facilities', async () => {
    const files = (await readdir(srcIo)).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('pickle.ts');
    for (const f of files) {
      const text = await readFile(join(srcIo, f), 'utf8');
      expect(text, f).not.toMatch(/child_process|(?<![.\w])eval\s*\(|new Function|\bimport\s*\(|vm'|worker_threads/); // a method named eval (model.eval()) is not the global
      if (!f.startsWith('node')) expect(text, f).not.toMatch(/from 'node:/);
    }
  });
});
