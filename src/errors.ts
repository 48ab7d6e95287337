/**
 * Every error the engine raises on purpose is a `DynamoError` with a stable `code` (documented in
 * docs/api/errors.md, one heading each). Programmer mistakes (r > n, a key of the wrong type) throw
 * `TypeError` / `RangeError` at once instead.
 */
export type DynamoErrorCode =
  | 'DYNAMO_QUORUM'
  | 'DYNAMO_TIMEOUT'
  | 'DYNAMO_NOT_RUNNING'
  | 'DYNAMO_LIMIT'
  | 'DYNAMO_TRANSPORT'
  | 'DYNAMO_STORAGE'
  | 'DYNAMO_AUTH'
  | 'DYNAMO_INVALID_CONTEXT'
  | 'DYNAMO_TYPE_MISMATCH'
  | 'DYNAMO_CORRUPT_VALUE'
  | 'DYNAMO_ID_IN_USE';

/** Every error the engine raises on purpose: `code` is stable (docs/api/errors.md), `cause` optional. */
export class DynamoError extends Error {
  /** Stable machine-readable code, one per error class. */
  readonly code: DynamoErrorCode;

  constructor(code: DynamoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One replica's reason for not counting towards a quorum. */
export interface ReplicaFailure {
  /** Node id (or address when the id is not known). */
  node: string;
  /** Error code (`DYNAMO_TIMEOUT`, `DYNAMO_TRANSPORT`, ...) or the remote error's message. */
  reason: string;
}

/**
 * Fewer than R (get) or W (put/delete) replicas answered in time. A failed put may still have
 * reached some replicas: it is neither guaranteed written nor guaranteed absent. `reason`, when
 * the request could not succeed at all (fewer nodes own partitions than it needs), goes into the
 * message; nothing was sent then.
 */
export class QuorumError extends DynamoError {
  /** Replies (get) or acknowledgements (put, delete) the operation needed. */
  readonly required: number;
  /** How many it got. */
  readonly acks: number;
  /** The replicas that did not count, and why. */
  readonly failures: ReplicaFailure[];
  /** A put with `minZones` above 1: the zones it needed acknowledgements from (else undefined). */
  readonly requiredZones: number | undefined;
  /** With `requiredZones`: the distinct zones of the replicas that acknowledged (`''`: no zone). */
  readonly zones: string[] | undefined;

  constructor(
    operation: 'get' | 'put' | 'delete' | 'keys' | 'export' | 'import',
    required: number,
    acks: number,
    failures: ReplicaFailure[],
    options?: { cause?: unknown; reason?: string; requiredZones?: number; zones?: string[] },
  ) {
    const detail = failures.map((f) => `${f.node}: ${f.reason}`).join('; ');
    const z = options?.requiredZones;
    const zones = options?.zones ?? [];
    const inZones =
      z === undefined
        ? ''
        : ` in ${z} zones, got ${acks} in ${zones.length} zone${zones.length === 1 ? '' : 's'}${zones.length ? ` (${zones.map((x) => x || '(none)').join(', ')})` : ''}`;
    super(
      'DYNAMO_QUORUM',
      `${operation} needed ${required} replica${required === 1 ? '' : 's'}${inZones || `, got ${acks}`}${detail ? ` (${detail})` : ''}${options?.reason ? `: ${options.reason}` : ''}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.required = required;
    this.acks = acks;
    this.failures = failures;
    this.requiredZones = z;
    this.zones = z === undefined ? undefined : zones;
  }
}

/** A request to one peer did not complete within its `timeoutMs`. */
export class TimeoutError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_TIMEOUT', message, options);
  }
}

/** The node is starting, stopping or stopped and cannot serve the call. */
export class NotRunningError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_NOT_RUNNING', message, options);
  }
}

/** A key, value, sibling set or frame exceeds a configured limit; nothing was written. */
export class LimitError extends DynamoError {
  /** The limit's name (`maxValueBytes`, `maxSiblings`, `maxFrameBytes`, ...). */
  readonly limit: string;
  /** The size found. */
  readonly actual: number;
  /** The limit's value. */
  readonly max: number;

  constructor(limit: string, actual: number, max: number, message?: string) {
    super('DYNAMO_LIMIT', message ?? `${limit} exceeded: ${actual} > ${max}`);
    this.limit = limit;
    this.actual = actual;
    this.max = max;
  }
}

/** A peer could not be reached, the connection broke, or the peer answered with an error. */
export class TransportError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_TRANSPORT', message, options);
  }
}

/** The storage engine failed (open, read, write). */
export class StorageError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_STORAGE', message, options);
  }
}

/** A peer failed authentication (wrong shared secret, bad certificate). */
export class AuthError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_AUTH', message, options);
  }
}

/** A context string is not one this engine produced (corrupt, truncated, or from elsewhere). */
export class InvalidContextError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_INVALID_CONTEXT', message, options);
  }
}

/**
 * A data-type operation met a value of another kind: a plain value (written with `put`) on a key
 * used as a data type, a data type read with plain `get`, or a counter read as a set. Nothing written.
 */
export class TypeMismatchError extends DynamoError {
  /** What the caller asked for (`counter`, `set`, ..., or `plain` for get/put/update). */
  readonly expected: string;
  /** What the key holds (`counter`, ..., or `plain`). */
  readonly actual: string;
  /**
   * From a plain `get`: the key's context, so that a `put` or `delete` with it replaces whatever
   * the key holds (how to recover a typed key that a plain `put` without a context wrote to).
   */
  readonly context: string | undefined;

  constructor(expected: string, actual: string, message?: string, context?: string) {
    super('DYNAMO_TYPE_MISMATCH', message ?? `expected ${expected}, the key holds ${actual}`);
    this.expected = expected;
    this.actual = actual;
    this.context = context;
  }
}

/** A stored data-type state does not decode (corrupt bytes, unknown format version). Nothing written. */
export class CorruptValueError extends DynamoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DYNAMO_CORRUPT_VALUE', message, options);
  }
}

/**
 * A node tried to start under an id that a live member of the cluster holds with another
 * incarnation (another process, or the same id given to a second machine). The start is refused
 * and the running member is left alone. A restart of the same node (same id and storage, the same
 * incarnation) is never refused, whatever its address.
 */
export class IdInUseError extends DynamoError {
  /** The id asked for. */
  readonly id: string;
  /** Where the member holding it answers. */
  readonly address: string;

  constructor(id: string, address: string, message?: string) {
    super(
      'DYNAMO_ID_IN_USE',
      message ??
        `id ${id} is held by a live member at ${address} (another incarnation): choose another id, or stop that node first`,
    );
    this.id = id;
    this.address = address;
  }
}
