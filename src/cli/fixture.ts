import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HlipError } from '../errors.js';
import { fixtureOutputNames, parseSidecar, runFixture, type FixtureFiles } from '../eval/fixtures.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../io/node-files.js';
import type { SafetensorsFile } from '../io/safetensors.js';
import { createNodeDevice } from '../node/gpu.js';

const USAGE = 'usage: hlip fixture <fixture.safetensors> --out <out.safetensors> [--sidecar <fixture.json>]';

/**
 * `hlip fixture <fixture.safetensors> --out <out.safetensors>`: runs a golden fixture (../shared/golden
 * format) from its parameters and inputs and writes, in float32, every tensor its sidecar's
 * tensor_index lists that is not an input (float64 references excepted), under the same names.
 * Expected outputs in the file are ignored; the sidecar's sha256 is not needed.
 */
export async function fixture(args: string[]): Promise<number> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const flagged = new Set(['--out', '--sidecar'].flatMap((f) => (args.includes(f) ? [args.indexOf(f), args.indexOf(f) + 1] : [])));
  const pos = args.filter((a, i) => !flagged.has(i) && !a.startsWith('--'));
  const out = flag('--out');
  if (args.includes('--help') || pos.length !== 1 || !out) {
    console.error(USAGE);
    return args.includes('--help') ? 0 : 2;
  }
  const input = pos[0] as string;
  const sidecarPath = flag('--sidecar') ?? input.replace(/\.safetensors$/, '') + '.json';
  let json: unknown;
  try {
    json = JSON.parse(await readFile(sidecarPath, 'utf8'));
  } catch (e) {
    throw new HlipError('io', `cannot read the fixture sidecar ${sidecarPath}: ${(e as Error).message}`);
  }
  const sidecar = parseSidecar(json, sidecarPath);
  const opened: SafetensorsFile[] = [];
  const t0 = performance.now();
  const dev = await createNodeDevice();
  try {
    const file = await readSafetensorsFile(input);
    opened.push(file);
    const files: FixtureFiles = { sidecar, file };
    if (sidecar.model_parameters_from) {
      const pPath = join(dirname(sidecarPath), sidecar.model_parameters_from);
      const p = await readSafetensorsFile(pPath);
      opened.push(p);
      files.params = p;
      const pSide = pPath.replace(/\.safetensors$/, '') + '.json';
      files.paramsSidecar = parseSidecar(JSON.parse(await readFile(pSide, 'utf8')), pSide);
    }
    const outputs = await runFixture(dev, files);
    const names = fixtureOutputNames(sidecar);
    await writeSafetensorsFile(out, names.map((n) => {
      const t = outputs.get(n) as { shape: readonly number[]; data: Float32Array };
      return [n, { dtype: 'F32' as const, shape: t.shape, data: t.data }] as const;
    }), { format: 'hlip-fixture-run', fixture: sidecar.fixture });
    console.log(`${sidecar.fixture}: wrote ${names.length} tensors to ${out} in ${Math.round(performance.now() - t0)} ms`);
    return 0;
  } finally {
    for (const f of opened) await f.close();
    dev.destroy();
  }
}
