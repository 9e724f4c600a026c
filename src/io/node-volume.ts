// Node-only: read a volume from a path. A .nii / .nii.gz file (or any file with NIfTI or gzip magic)
// goes through readNifti; a folder is read as a DICOM series (files with the 'DICM' preamble, found
// recursively; DICOMDIR and other objects without pixel data are skipped); any other single file is
// tried as one DICOM image.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError, HlipError } from '../errors.js';
import { assembleDicomSeries, hasDicomPreamble, pickSeries, readDicomImage, type DicomImage, type DicomReadOptions } from './dicom.js';
import { isGzip } from './gunzip.js';
import { readNifti, type NiftiReadOptions } from './nifti.js';
import type { Volume } from './volume.js';

export type VolumeReadOptions = NiftiReadOptions & DicomReadOptions;

const MAX_FILES = 20_000;
const MAX_DEPTH = 8;

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new HlipError('io', `cannot read: ${(e as Error).message}`, { source: path, cause: e });
  }
}

function looksLikeNifti(path: string, b: Uint8Array): boolean {
  if (/\.nii(\.gz)?$/i.test(path) || isGzip(b)) return true;
  if (b.length < 348) return false;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return [true, false].some((le) => dv.getInt32(0, le) === 348 || dv.getInt32(0, le) === 540);
}

async function listFiles(dir: string, depth = 0, out: string[] = []): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new HlipError('io', `cannot list: ${(e as Error).message}`, { source: dir, cause: e });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (depth < MAX_DEPTH) await listFiles(p, depth + 1, out);
    } else if (e.isFile()) {
      out.push(p);
      if (out.length > MAX_FILES) throw new HlipError('limit', `more than ${MAX_FILES} files under this folder`, { source: dir });
    }
  }
  return out;
}

/** Read a NIfTI file, a single DICOM file, or a folder holding one DICOM series. */
export async function readVolume(path: string, opts: VolumeReadOptions = {}): Promise<Volume> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new HlipError('io', `cannot open: ${(e as Error).message}`, { source: path, cause: e });
  }
  if (st.isDirectory()) return readDicomFolder(path, opts);
  const bytes = await readBytes(path);
  if (looksLikeNifti(path, bytes)) return readNifti(bytes, { ...opts, name: opts.name ?? path });
  const im = await readDicomImage(bytes, path);
  if (!im) throw new FormatError(path, 'DICOM object without pixel data (e.g. a DICOMDIR or report)');
  return assembleDicomSeries([im], { ...opts, name: opts.name ?? path });
}

/** Every DICOM image under a folder (recursively), for callers that want to list series first. */
export async function readDicomFolderImages(dir: string): Promise<DicomImage[]> {
  const files = await listFiles(dir);
  const images: DicomImage[] = [];
  for (const f of files) {
    if (basename(f).toUpperCase().startsWith('DICOMDIR')) continue;
    const bytes = await readBytes(f);
    if (!hasDicomPreamble(bytes)) continue; // README, thumbnails and such
    const im = await readDicomImage(bytes, f);
    if (im) images.push(im);
  }
  return images;
}

export async function readDicomFolder(dir: string, opts: DicomReadOptions = {}): Promise<Volume> {
  const images = await readDicomFolderImages(dir);
  const label = opts.name ?? dir;
  if (images.length === 0) throw new FormatError(label, 'no DICOM image (file with the DICM preamble and pixel data) in this folder');
  return assembleDicomSeries(pickSeries(images, opts, label), { ...opts, name: label });
}
