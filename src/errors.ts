/** Typed errors: every failure the library reports is one of these, so callers can branch on `kind`. */
export type HlipErrorKind =
  | 'gpu' | 'device-lost' | 'out-of-memory' | 'limit' | 'shape' | 'dtype' | 'disposed' | 'autograd'
  | 'format' | 'unsafe-pickle' | 'io' | 'config';

export class HlipError extends Error {
  readonly kind: HlipErrorKind;
  /** File (or other source) the error is about, when there is one. */
  readonly source?: string;
  constructor(kind: HlipErrorKind, message: string, options?: { source?: string; cause?: unknown }) {
    super(options?.source ? `${options.source}: ${message}` : message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'HlipError';
    this.kind = kind;
    if (options?.source !== undefined) this.source = options.source;
  }
}

export class GpuError extends HlipError {
  constructor(message: string, kind: 'gpu' | 'device-lost' | 'out-of-memory' | 'limit' = 'gpu', cause?: unknown) {
    super(kind, message, { cause });
    this.name = 'GpuError';
  }
}

export class ShapeError extends HlipError {
  constructor(message: string) {
    super('shape', message);
    this.name = 'ShapeError';
  }
}

export class DTypeError extends HlipError {
  constructor(message: string) {
    super('dtype', message);
    this.name = 'DTypeError';
  }
}

export class FormatError extends HlipError {
  constructor(source: string, message: string, cause?: unknown) {
    super('format', message, { source, cause });
    this.name = 'FormatError';
  }
}
