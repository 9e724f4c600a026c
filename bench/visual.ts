// One forward pass of a reference-size HLIP visual tower with random weights (Node, Dawn).
// Build and run:
//   npx esbuild bench/visual.ts --bundle --platform=node --format=esm --loader:.wgsl=text \
//     --external:webgpu --outfile=dist/bench/visual.js && node dist/bench/visual.js [name] [D H W] [N]
// Default: vit_base_singlescan_h2_token2744 on a [1, 1, 1, 112, 336, 336] input.
import { createNodeDevice } from '../src/node/gpu.js';
import { HlipVisualEncoder } from '../src/models/visual.js';
import { randn } from '../src/ops/creation.js';
import { noGrad, scopeAsync } from '../src/tensor/scope.js';
import '../src/ops/index.js';

const args = process.argv.slice(2);
const name = args[0] ?? 'vit_base_singlescan_h2_token2744';
const [D, H, W] = args.length >= 4 ? args.slice(1, 4).map(Number) : [112, 336, 336];
const N = Number(args[4] ?? 1);

const dev = await createNodeDevice();
console.log(`adapter: ${JSON.stringify(dev.adapter)}`);
const enc = HlipVisualEncoder.fromConfig(dev, name);
enc.eval();
let params = 0;
for (const [, t] of enc.namedParameters()) params += t.size;
console.log(`${name}: ${params.toLocaleString()} parameters; input [1, ${N}, 1, ${D}, ${H}, ${W}]`);
// Weight creation is queued GPU work; settle it before timing.
await dev.sync();
dev.pool.resetPeak();
const base = dev.pool.liveBytes;

{
  const round = 'forward';
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const feat = await scopeAsync(async () => {
    const x = randn(dev, [1, N, 1, D as number, H as number, W as number], 7);
    const out = noGrad(() => enc.forward(x, { tokens: false }));
    return out.features.data();
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  let norm = 0;
  for (const v of feat as Float32Array) norm += v * v;
  console.log(
    `${round}: wall ${wall.toFixed(1)} s, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, ` +
      `peak GPU ${(dev.pool.peakBytes / 2 ** 20).toFixed(0)} MiB (weights ${(base / 2 ** 20).toFixed(0)} MiB), ` +
      `features [${feat.length}] |f| ${Math.sqrt(norm).toFixed(4)}`,
  );
}
enc.dispose();
dev.destroy();
