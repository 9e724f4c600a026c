import { createNodeDevice } from '../node/gpu.js';
import * as ops from '../ops/index.js';

/** `hlip doctor`: what the adapter offers, and a one-kernel smoke test. */
export async function doctor(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const t0 = performance.now();
  const dev = await createNodeDevice();
  const initMs = performance.now() - t0;
  const a = ops.tensor(dev, [1, 2, 3, 4], [4]);
  const b = ops.gelu(a);
  const got = Array.from(await b.data());
  const ok = Math.abs((got[1] as number) - 1.9544997) < 1e-5;
  const report = {
    adapter: dev.adapter,
    caps: dev.caps,
    env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? null, node: process.version },
    initMs: Math.round(initMs),
    smokeTest: ok ? 'ok' : `FAILED (gelu(2) = ${got[1]})`,
  };
  if (json) console.log(JSON.stringify(report));
  else {
    const A = dev.adapter;
    console.log(`adapter      ${A.vendor} ${A.architecture} ${A.device} ${A.description}`.trimEnd());
    console.log(`features     ${A.features.join(', ')}`);
    console.log('limits');
    for (const [k, v] of Object.entries(A.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
    console.log(`kernels use  f16=${dev.caps.f16} subgroups=${dev.caps.subgroups} timestamp-query=${dev.caps.timestampQuery}`);
    console.log(`device init  ${report.initMs} ms`);
    console.log(`smoke test   ${report.smokeTest}`);
  }
  a.dispose();
  b.dispose();
  dev.destroy();
  return ok ? 0 : 1;
}
