/**
 * The handles `node.counter(key)`, `node.set(key)`, ... return: one key, one type. Every
 * operation reads the key, merges its siblings, applies the change as this node's actor and
 * writes the result back with the read's context; it resolves with the new value.
 */
import type { Key } from '../events.js';
import type {
  CounterOps,
  FlagOps,
  MapOps,
  MapValue,
  MvRegisterOps,
  RegisterOps,
  SetOps,
  TypeValues,
} from './ops.js';
import type { TypeName } from './state.js';
import type { TypedStore, TypeOperationOptions, TypeReadOptions, TypeResult } from './store.js';

abstract class TypeHandle<T extends TypeName, Ops> {
  /** @internal Handles come from the node: `node.counter(key)`, `node.set(key)`, ... */
  constructor(
    protected readonly store: TypedStore,
    /** The key this handle reads and writes. */
    readonly key: Key,
    /** The data type the key holds. */
    readonly type: T,
  ) {}

  /** The merged value and a context for later removals. */
  read(options?: TypeReadOptions): Promise<TypeResult<TypeValues[T]>> {
    return this.store.read(this.key, this.type, options);
  }

  /** The merged value alone (`read()` without the context). */
  async value(options?: TypeReadOptions): Promise<TypeValues[T]> {
    return (await this.read(options)).value;
  }

  protected apply(
    fn: (ops: Ops) => void,
    options?: TypeOperationOptions,
  ): Promise<TypeResult<TypeValues[T]>> {
    return this.store.update(this.key, this.type, (ops) => fn(ops as Ops), options);
  }
}

/** A PN-counter: increments and decrements from every node add up. */
export class CounterHandle extends TypeHandle<'counter', CounterOps> {
  /** Adds `by` (a safe integer; default 1) and resolves with the counter's value after the write. */
  increment(by = 1, options?: TypeOperationOptions): Promise<TypeResult<number>> {
    // A programmer mistake fails at once, before any read.
    if (!Number.isSafeInteger(by))
      return Promise.reject(new RangeError(`increment must be a safe integer, got ${by}`));
    return this.apply((c) => c.increment(by), options);
  }

  /** Subtracts `by` (a safe integer; default 1) and resolves with the counter's value after the write. */
  decrement(by = 1, options?: TypeOperationOptions): Promise<TypeResult<number>> {
    if (!Number.isSafeInteger(by))
      return Promise.reject(new RangeError(`decrement must be a safe integer, got ${by}`));
    return this.apply((c) => c.decrement(by), options);
  }
}

/** An observed-remove set of strings: concurrent add and remove of one element, the add wins. */
export class SetHandle extends TypeHandle<'set', SetOps> {
  /** Adds one element or several, and resolves with the set after the write. */
  add(elements: string | readonly string[], options?: TypeOperationOptions): Promise<TypeResult<string[]>> {
    return this.apply((s) => s.add(elements), options);
  }

  /** Removes what was observed (by `options.context`'s read, or this operation's own read). */
  remove(
    elements: string | readonly string[],
    options?: TypeOperationOptions,
  ): Promise<TypeResult<string[]>> {
    return this.apply((s) => s.remove(elements), options);
  }
}

/** A map of embedded counters, sets, registers, flags and maps. */
export class MapHandle extends TypeHandle<'map', MapOps> {
  /** Runs `fn` on the merged map (synchronously) and writes every change it made as one write. */
  update(fn: (map: MapOps) => void, options?: TypeOperationOptions): Promise<TypeResult<MapValue>> {
    return this.apply(fn, options);
  }
}

/** A last-writer-wins register (timestamps from the writing node's clock). */
export class RegisterHandle<V = unknown> extends TypeHandle<'register', RegisterOps> {
  /** Sets the register to `value`; the write with the latest timestamp wins. */
  assign(value: V, options?: TypeOperationOptions): Promise<TypeResult<unknown>> {
    return this.apply((r) => r.assign(value), options);
  }
}

/** A multi-value register: concurrent assignments are all kept until one write has seen them all. */
export class MvRegisterHandle<V = unknown> extends TypeHandle<'mvregister', MvRegisterOps> {
  /** Replaces every value the operation's read saw with `value` (concurrent ones stay). */
  assign(value: V, options?: TypeOperationOptions): Promise<TypeResult<unknown[]>> {
    return this.apply((r) => r.assign(value), options);
  }
}

/** An enable-wins flag. */
export class FlagHandle extends TypeHandle<'flag', FlagOps> {
  /** Sets the flag; a concurrent disable loses. */
  enable(options?: TypeOperationOptions): Promise<TypeResult<boolean>> {
    return this.apply((f) => f.enable(), options);
  }

  /** Clears the flag (the enables the operation's read saw). */
  disable(options?: TypeOperationOptions): Promise<TypeResult<boolean>> {
    return this.apply((f) => f.disable(), options);
  }
}
