import { HlipError } from '../errors.js';

/**
 * A pickle referenced a global (callable or class) outside the allow-list. Raised when the GLOBAL /
 * STACK_GLOBAL / INST opcode is read, before anything could call it; nothing is ever executed anyway.
 */
export class UnsafePickleError extends HlipError {
  /** `module.name` of the refused global, e.g. `posix.system`. */
  readonly global: string;
  /** Byte offset of the opcode that referenced it, inside the pickle. */
  readonly offset: number;
  constructor(source: string, global: string, offset: number) {
    super('unsafe-pickle', `pickle references the global '${global}' at byte ${offset}, which is not on the allow-list of tensor-rebuilding globals; refusing to load (nothing was executed)`, { source });
    this.name = 'UnsafePickleError';
    this.global = global;
    this.offset = offset;
  }
}
