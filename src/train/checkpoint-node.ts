// Node-only: training checkpoints on disk. Writes go through src/io's atomic writer (temporary file,
// fsync, rename), so a run killed mid-write leaves the previous file whole. Not exported from the
// browser entry point.
import { openFileSource, writeFileAtomic } from '../io/node-files.js';
import { checkpointChunks, decodeCheckpoint, type TrainingCheckpoint } from './checkpoint.js';

/** Writes `c` to `path` atomically (the old file, if any, stays intact until the new one is complete). */
export async function saveCheckpointFile(path: string, c: TrainingCheckpoint): Promise<void> {
  await writeFileAtomic(path, checkpointChunks(c));
}

/** Reads and validates a checkpoint file; errors name the file. */
export async function loadCheckpointFile(path: string): Promise<TrainingCheckpoint> {
  const src = await openFileSource(path);
  try {
    return await decodeCheckpoint(src);
  } finally {
    await src.close?.();
  }
}
