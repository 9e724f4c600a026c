// Weights I/O (browser-safe): safetensors, PyTorch .pt checkpoints through a restricted unpickler, ZIP.
// Node file access lives in ./node-files.ts (not exported here, so the browser bundle stays free of node:fs).
export { UnsafePickleError } from './errors.js';
export { type StDType, ST_DTYPE_BYTES, isStDType, decodeFloat32, decodeFloat64, decodeInt32, encodeTensor, convertBytes, f32ToBf16Bits, type HostData } from './dtypes.js';
export { type ByteSource, type ByteInput, bytesSource, blobSource, toSource } from './source.js';
export { setAllocationObserver, MAX_BUFFER_BYTES } from './limits.js';
export {
  SafetensorsFile, openSafetensors, parseSafetensors, parseSafetensorsHeader, writeSafetensors, safetensorsChunks, planSafetensors,
  MAX_SAFETENSORS_HEADER, type SafetensorsEntry, type SafetensorsHeader, type SafetensorsPlan, type TensorToWrite, type TensorsToWrite,
} from './safetensors.js';
export { unpickle, PyDict, PyGlobal, PyOpaque, TruncatedPickleError, TORCH_ALLOWED_GLOBALS, TORCH_STORAGE_TYPES, isTuple, isList, type PyValue, type PyTuple, type UnpickleOptions, type UnpickleResult } from './pickle.js';
export { ZipArchive, crc32, type ZipEntry } from './zip.js';
export { readPt, PtTensor, PtStorage, collectTensors, stripModulePrefix, openClipStateDict, sniffFormat, pyToJson, type JsonValue, type PtCheckpoint, type PtReadOptions } from './pt.js';
export { writePt, planPt, ptChunks, picklePt, PyFloat, SaveTensor, pyTuple, pyDict, type PtWriteOptions, type PtPlan, type PlannedStorage, type TensorBytes } from './pt-write.js';
export { convertToSafetensors, prepareConversion, type ConvertOptions, type Conversion } from './convert.js';
// Medical volumes (browser-safe): NIfTI-1/-2 reading and NIfTI-1 writing, DICOM series, orientation.
// Node path helpers (file or DICOM folder → Volume) live in ./node-volume.ts, not exported here.
export { type Volume, type Vec3, volumeShape, reorient, orientVolume, axcodes, affineSpacing, isUsableAffine } from './volume.js';
export { readNifti, writeNifti, parseNiftiHeader, niftiAffine, qformAffine, affineToQuaternion, NIFTI_DATATYPES, type NiftiHeader, type NiftiReadOptions, type NiftiWriteOptions } from './nifti.js';
export {
  readDicomImage, readDicomSeries, assembleDicomSeries, groupDicomSeries, summarizeDicomSeries, pickSeries, hasDicomPreamble, UnsupportedTransferSyntaxError, REFUSED_TRANSFER_SYNTAXES,
  type DicomImage, type DicomInput, type DicomReadOptions, type DicomSeriesSummary,
} from './dicom.js';
