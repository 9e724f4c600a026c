// Finding and reading scan files under a data root (browser-safe, through a DataTree).
import { FormatError } from '../../errors.js';
import { assembleDicomSeries, hasDicomPreamble, pickSeries, readDicomImage, type DicomImage } from '../../io/dicom.js';
import { readNifti } from '../../io/nifti.js';
import type { Vec3, Volume } from '../../io/volume.js';
import { readNpzVolume } from './npz.js';
import { joinPath, listFilesDeep, type DataTree } from './tree.js';
import type { ScanRef } from './types.js';

export const isNiftiName = (n: string): boolean => /\.nii(\.gz)?$/i.test(n);
export const isNpzName = (n: string): boolean => /\.npz$/i.test(n);
/** Files that are certainly not image slices (documentation, tables, pictures, tensors we do not read). */
const NOT_DICOM = /\.(txt|md|json|csv|tsv|xml|html?|pdf|png|jpe?g|gif|bmp|zip|gz|tar|pt|pth|npy|mat|bval|bvec|log)$/i;
/**
 * Label images that sit beside the scans in public releases (BraTS `*-seg.nii.gz`, masks, lesion labels):
 * never scans.
 */
const NOT_A_SCAN = /(^|[-_.])(seg|segmentation|mask|msk|label|labels|lesion)([-_.]|$)/i;

export function scanName(name: string): string {
  return name.replace(/\.(nii\.gz|nii|npz)$/i, '');
}

export interface ScanSearch {
  /** Look into sub-folders (default true). */
  deep?: boolean;
  /** Folder names not entered (default: BIDS 'derivatives'). */
  skipDirs?: RegExp;
}

/**
 * The scans in a folder: every NIfTI (or .npz) file, except segmentation/mask images, and every folder
 * holding other files, read as one DICOM series; sub-folders searched as well (unless `deep` is false).
 * Sorted by path (the reference lists folders unsorted; a fixed order makes runs repeatable).
 */
export async function findScans(tree: DataTree, dir: string, opts: ScanSearch = {}): Promise<ScanRef[]> {
  const skip = opts.skipDirs ?? /^derivatives$/i;
  const out: ScanRef[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    const entries = (await tree.list(d)) ?? [];
    let dicom = false;
    for (const e of entries) {
      const p = joinPath(d, e.name);
      if (e.kind === 'dir') continue;
      if (isNiftiName(e.name) || isNpzName(e.name)) {
        if (!NOT_A_SCAN.test(scanName(e.name))) out.push({ name: scanName(e.name), format: isNiftiName(e.name) ? 'nifti' : 'npz', path: p });
      } else if (!NOT_DICOM.test(e.name) && !e.name.toUpperCase().startsWith('DICOMDIR')) dicom = true;
    }
    if (dicom) out.push({ name: d.split('/').pop() ?? d, format: 'dicom', path: d });
    if (opts.deep === false && depth > 0) return;
    for (const e of entries) if (e.kind === 'dir' && !skip.test(e.name) && depth < 8) await walk(joinPath(d, e.name), depth + 1);
  };
  await walk(dir, 0);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The first of `paths` that exists as a file, or null. */
export async function firstFile(tree: DataTree, paths: readonly string[]): Promise<string | null> {
  for (const p of paths) if ((await tree.stat(p))?.kind === 'file') return p;
  return null;
}

/** The first of `paths` that exists as a folder, or null. */
export async function firstDir(tree: DataTree, paths: readonly string[]): Promise<string | null> {
  for (const p of paths) if ((await tree.stat(p))?.kind === 'dir') return p;
  return null;
}

export function fileScan(path: string): ScanRef {
  const name = path.split('/').pop() ?? path;
  return { name: scanName(name), format: isNiftiName(name) ? 'nifti' : isNpzName(name) ? 'npz' : 'dicom', path };
}

export interface ScanReadSettings {
  /** 'native' keeps the storage order; otherwise a target orientation code (default 'RPI'). */
  orientation?: string;
  nonFinite?: 'error' | 'zero';
  /** .npz volumes: voxel spacing (d, h, w) in mm (Rad-ChestCT: 0.8 isotropic). */
  npzSpacing?: Vec3;
}

/** Reads one scan as a Volume. */
export async function readScan(tree: DataTree, ref: ScanRef, s: ScanReadSettings = {}): Promise<Volume> {
  const label = `${tree.name}/${ref.path}`;
  if (ref.format === 'nifti') {
    return readNifti(await tree.readBytes(ref.path), { name: label, ...(s.orientation ? { orientation: s.orientation } : {}), ...(s.nonFinite ? { nonFinite: s.nonFinite } : {}) });
  }
  if (ref.format === 'npz') {
    return readNpzVolume(await tree.readBytes(ref.path), { name: label, ...(s.npzSpacing ? { spacing: s.npzSpacing } : {}), orientation: s.orientation ?? 'native' });
  }
  const files = ref.files ?? (await listFilesDeep(tree, ref.path));
  const images: DicomImage[] = [];
  for (const f of files) {
    if ((f.split('/').pop() ?? '').toUpperCase().startsWith('DICOMDIR')) continue;
    const bytes = await tree.readBytes(f);
    if (!hasDicomPreamble(bytes)) continue;
    const im = await readDicomImage(bytes, `${tree.name}/${f}`);
    if (im) images.push(im);
  }
  if (images.length === 0) throw new FormatError(label, `no DICOM image (file with the DICM preamble and pixel data) in ${ref.files ? `the ${files.length} listed file(s)` : 'this folder'}`);
  const opts = { orientation: s.orientation ?? 'RPI', name: label };
  return assembleDicomSeries(pickSeries(images, opts, label), opts);
}
