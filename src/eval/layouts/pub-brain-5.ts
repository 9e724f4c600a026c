// Pub-Brain-5: the label file's `study` is a path such as /data/pub_brain_5/nyu_mets/<study>; the study is
// a folder whose files are its scans (the reference's process.py output: one file per sequence). Here the
// folder is <root>/<source>/<study> (the path below 'pub_brain_5/', or its last two components), or the
// path itself when relative; the scans are its NIfTI files (or DICOM series folders), found recursively,
// segmentation masks and BIDS derivatives left out.
import { findScans, firstDir } from './scans.js';
import type { LayoutReader } from './reader.js';

/** Folders a Pub-Brain-5 study path may be found at, most specific first. */
export function pubBrain5Candidates(key: string): string[] {
  const parts = key.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  const out: string[] = [];
  const at = parts.lastIndexOf('pub_brain_5');
  if (!key.startsWith('/')) out.push(parts.join('/'));
  if (at >= 0 && at < parts.length - 1) out.push(parts.slice(at + 1).join('/'));
  if (parts.length >= 2) out.push(parts.slice(-2).join('/'));
  out.push(parts[parts.length - 1] ?? '');
  return [...new Set(out.filter((p) => p !== ''))];
}

export function pubBrain5Reader(): LayoutReader {
  return {
    name: 'pub-brain-5',
    async resolve({ tree, labels }, row) {
      const key = labels.keys[row]!;
      const cands = pubBrain5Candidates(key);
      const dir = await firstDir(tree, cands);
      if (!dir) return { missing: `no study folder; tried ${cands.join(', ')}` };
      const scans = await findScans(tree, dir);
      if (!scans.length) return { missing: `no NIfTI file or DICOM series in ${dir}` };
      return { cases: [{ id: labels.ids[row]!, key, scans }] };
    },
  };
}
