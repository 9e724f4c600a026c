import { convertFile } from '../io/node-files.js';
import { convertHfDir, isDirectory } from '../io/node-hf.js';

/**
 * `hlip convert <in.pt|in.safetensors|hf-dir> <out.safetensors> [--all] [--dtype f16|bf16|f32] [--model NAME]`
 * (a directory is a Hugging Face snapshot: model.safetensors + model config; --model picks MODEL_NAME).
 */
export async function convert(args: string[]): Promise<number> {
  // Positional arguments: neither flags nor the values of the flags that take one.
  const pos = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--dtype' && args[i - 1] !== '--model');
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (pos.length < 2) {
    console.error('usage: hlip convert <in.pt|in.safetensors|hf-dir> <out.safetensors> [--all] [--dtype f32|f16|bf16] [--model MODEL_NAME]');
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
  if (await isDirectory(input)) {
    const model = flag('--model');
    const res = await convertHfDir(input, output, { ...(model ? { modelName: model } : {}), ...(floatDType ? { floatDType } : {}) });
    console.log(`wrote ${output} (${res.tensors} tensors, ${res.bytes} bytes; model ${res.modelName} from ${res.configPath}) in ${Math.round(performance.now() - t0)} ms`);
    return 0;
  }
  const res = await convertFile(input, output, { all: args.includes('--all'), ...(floatDType ? { floatDType } : {}) });
  console.log(`wrote ${output} (${JSON.stringify(res)}) in ${Math.round(performance.now() - t0)} ms`);
  return 0;
}
