import { HlipError } from '../errors.js';

/**
 * Every buffer whose size comes from parsed file content is allocated here, after the size was
 * checked against what the file can hold, so one place enforces (and tests can observe) that a lying
 * header never causes a large allocation.
 */

/** Largest single buffer the io layer will allocate (bytes); above this we refuse instead of crashing. */
export const MAX_BUFFER_BYTES = 2 ** 31 - 1;

type AllocationObserver = (bytes: number, what: string) => void;
let observer: AllocationObserver | null = null;

/** Test hook: called with the size of every data-dependent allocation (and of every byte-range read). */
export function setAllocationObserver(fn: AllocationObserver | null): void {
  observer = fn;
}

export function noteAllocation(bytes: number, what: string): void {
  if (observer) observer(bytes, what);
}

export function checkedLength(bytes: number, what: string, source: string): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new HlipError('format', `${what}: invalid size ${bytes}`, { source });
  if (bytes > MAX_BUFFER_BYTES) throw new HlipError('limit', `${what}: ${bytes} bytes exceed the ${MAX_BUFFER_BYTES}-byte buffer limit`, { source });
  return bytes;
}

export function allocBytes(bytes: number, what: string, source: string): Uint8Array<ArrayBuffer> {
  checkedLength(bytes, what, source);
  noteAllocation(bytes, what);
  return new Uint8Array(bytes);
}
