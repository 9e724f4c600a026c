// `hlip export --to pt`: our model or training checkpoint as the reference PyTorch training checkpoint.
import { basename, resolve } from 'node:path';
import { HlipError } from '../errors.js';
import { openFileSource, writeFileAtomic } from '../io/node-files.js';
import { planPt, ptChunks } from '../io/pt-write.js';
import { sniffFormat } from '../io/pt.js';
import { openSafetensors } from '../io/safetensors.js';
import { readRange } from '../io/source.js';
import { referenceCheckpoint } from '../train/pt-export.js';
import { numberArg, parseArgs } from './args.js';

export const EXPORT_USAGE = `usage: hlip export --to pt <in.safetensors> <out.pt> [--epoch N] [--name NAME] [--no-optimizer]

Writes the checkpoint layout of the reference open_clip / HLIP training script (the bytes torch.save
would write for it), so a run can go on with torchrun and the reference code (--resume out.pt):
  {"epoch": int, "name": str, "state_dict": OrderedDict (keys 'module.<reference name>'), "optimizer": AdamW state}
torch.load(out.pt, weights_only=True) reads it in PyTorch 2.x; PyTorch 1.13's weights_only reader
has no Python floats, so there it reads only files without "optimizer" (the reference's own resume
calls torch.load without weights_only, which 1.13 reads either way).

input:
  a training checkpoint (runs/<name>/checkpoints/latest.safetensors): model, AdamW moments and step
      counts; "optimizer" is written with the reference's parameter numbering (groups: no weight
      decay, then decay), so --resume continues the optimizer where it stopped. epoch = completed
      epochs (a mid-epoch checkpoint resumes at the start of its epoch in the reference).
  a model (runs/<name>/model.safetensors), or any safetensors state dict in reference names (with or
      without 'module.'; e.g. the released Hugging Face model.safetensors): epoch, name and state_dict
      only. The reference's --resume needs "optimizer": load such a file with HLIP's --finetune (or
      open_clip's --pretrained) instead.
Not written: the GradScaler state ("scaler", AMP only; the reference starts a fresh one), the
state_dict's _metadata (module versions; loading does not need them).
hlip convert <out.pt> <x.safetensors> reads the result back.

options:
  --epoch N        epoch to write (default: the checkpoint's completed epochs, else 0)
  --name NAME      run name to write (default: metadata 'name', else the input file name)
  --no-optimizer   leave the optimizer state of a training checkpoint out`;

export async function exportCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(EXPORT_USAGE);
    return 0;
  }
  const a = parseArgs(args, ['to', 'epoch', 'name'], ['no-optimizer'], EXPORT_USAGE);
  const to = a.values['to'];
  if (to === undefined) throw new HlipError('config', `--to is required (only 'pt' is supported)\n${EXPORT_USAGE}`);
  if (to !== 'pt') throw new HlipError('config', `--to ${to}: only 'pt' (PyTorch checkpoint) is supported`);
  if (a.positional.length !== 2) throw new HlipError('config', `expected <in.safetensors> <out.pt>, got ${a.positional.length} path(s)\n${EXPORT_USAGE}`);
  const [input, output] = a.positional as [string, string];
  if (resolve(input) === resolve(output)) throw new HlipError('config', 'the output would overwrite the input', { source: output });
  let epoch: number | undefined;
  if (a.values['epoch'] !== undefined) {
    epoch = numberArg('epoch', a.values['epoch']);
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new HlipError('config', `--epoch must be a non-negative integer, got ${a.values['epoch']}`);
  }
  const t0 = performance.now();
  const src = await openFileSource(input);
  try {
    const kind = sniffFormat(await readRange(src, 0, Math.min(8, src.size), 'file magic'));
    if (kind !== 'safetensors') throw new HlipError('format', 'is already a PyTorch checkpoint; export reads safetensors (hlip convert goes the other way)', { source: input });
    const file = await openSafetensors(src);
    const stem = basename(output).replace(/\.[^.]*$/, '');
    const ex = referenceCheckpoint(file, {
      ...(epoch !== undefined ? { epoch } : {}),
      ...(a.values['name'] !== undefined ? { name: a.values['name'] } : {}),
      fallbackName: basename(input).replace(/\.[^.]*$/, ''),
      optimizer: !a.flags.has('no-optimizer'),
    });
    // torch names the archive's top folder after the file; any plain name loads.
    const plan = planPt(ex.root, { archiveName: /^[A-Za-z0-9_.-]+$/.test(stem) && stem !== '.' && stem !== '..' ? stem : 'archive' }, output);
    await writeFileAtomic(output, ptChunks(plan, input));
    const what = ex.kind === 'training-checkpoint' ? `training checkpoint: ${ex.stateDictKeys} state_dict tensors, ${ex.optimizerStates ?? 0} optimizer states` : `${ex.stateDictKeys} state_dict tensors, no optimizer`;
    console.log(`wrote ${output} (${what}; epoch ${ex.epoch}, name '${ex.name}'; ${plan.totalBytes} bytes) in ${Math.round(performance.now() - t0)} ms`);
    for (const s of ex.skipped) console.log(`  skipped ${s}`);
    for (const n of ex.notes) console.log(`  note: ${n}`);
    return 0;
  } finally {
    await src.close?.();
  }
}
