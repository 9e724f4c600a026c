import { convertFile } from '../io/node-files.js';

/** `hlip convert <in.pt|in.safetensors> <out.safetensors> [--all] [--dtype f16|bf16|f32]` */
export async function convert(args: string[]): Promise<number> {
  const pos = args.filter((a) => !a.startsWith('--'));
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (pos.length < 2) {
    console.error('usage: hlip convert <in.pt|in.safetensors> <out.safetensors> [--all] [--dtype f32|f16|bf16]');
    return 2;
  }
  const dtype = flag('--dtype');
  const floatDType = dtype === 'f16' ? 'F16' : dtype === 'bf16' ? 'BF16' : dtype === 'f32' || dtype === undefined ? undefined : null;
  if (floatDType === null) {
    console.error(`hlip convert: unknown --dtype ${dtype} (f32, f16 or bf16)`);
    return 2;
  }
  const [input, output] = pos as [string, string];
  const t0 = performance.now();
  const res = await convertFile(input, output, { all: args.includes('--all'), ...(floatDType ? { floatDType } : {}) });
  console.log(`wrote ${output} (${JSON.stringify(res)}) in ${Math.round(performance.now() - t0)} ms`);
  return 0;
}
