/**
 * The behaviour every `Transport` must have, as a test suite with an injected runner (the way
 * Level's abstract test suite works): call it from any test framework.
 *
 * ```ts
 * import { test } from 'vitest';
 * transportComplianceSuite({ test, factory: () => myHarness() });
 * ```
 *
 * The suite never reads the wall clock: it moves time only through `harness.wait`, so the same
 * tests run on a `VirtualClock` (instantly, deterministically) and on real sockets.
 */
import assert from 'node:assert/strict';
import type { Transport } from '../transport/types.js';

/**
 * What the transport suite's `factory` returns: one per test, it makes the endpoints the test
 * needs, moves their time, and releases them.
 */
export interface TransportHarness {
  /**
   * A new, not yet started endpoint. Names are distinct per call within one harness, except that
   * the name of an endpoint already stopped may be given again, to create its replacement (a
   * restarted node).
   */
  create(name: string): Promise<Transport> | Transport;
  /** Waits `ms` of this transport's time: a VirtualClock advance for MemoryNetwork, a real wait for sockets. */
  wait(ms: number): Promise<void>;
  /** Releases everything the harness made (stops endpoints still running). */
  close(): Promise<void>;
}

/** How `transportComplianceSuite` registers its tests and gets its harnesses. */
export interface TransportComplianceOptions {
  /** Registers one test, e.g. vitest's or node:test's `test`. */
  test: (name: string, fn: () => Promise<void>) => void;
  /** A fresh `TransportHarness` for each test (not a transport: the harness makes those). */
  factory: () => Promise<TransportHarness> | TransportHarness;
}

/** Request timeout for tests that expect an answer: long enough never to fire on a loaded machine. */
const ANSWER_TIMEOUT_MS = 10_000;
/** How long the suite waits (transport time) for something that should happen promptly. */
const PROMPT_MS = 5_000;
/** Polling step of `harness.wait` while waiting for a condition. */
const STEP_MS = 5;

type Outcome<T> =
  | { readonly state: 'pending' }
  | { readonly state: 'resolved'; readonly value: T }
  | { readonly state: 'rejected'; readonly error: unknown };

/** A promise's outcome, read through a method so type narrowing never outlives a wait. */
interface Observed<T> {
  outcome(): Outcome<T>;
  pending(): boolean;
}

/** Attaches handlers at once (no unhandled rejection while time moves) and exposes the outcome. */
function observe<T>(promise: Promise<T>): Observed<T> {
  let outcome: Outcome<T> = { state: 'pending' };
  promise.then(
    (value) => {
      outcome = { state: 'resolved', value };
    },
    (error: unknown) => {
      outcome = { state: 'rejected', error };
    },
  );
  return { outcome: () => outcome, pending: () => outcome.state === 'pending' };
}

/** The error `box` rejected with; fails if it has not rejected. */
function rejectionOf(box: Observed<unknown>, what: string): unknown {
  const outcome = box.outcome();
  if (outcome.state !== 'rejected') assert.fail(`${what} should have rejected, but it is ${outcome.state}`);
  return outcome.error;
}

/** Moves the harness's time in small steps until `condition` holds, failing after `maxMs`. */
async function waitUntil(h: TransportHarness, condition: () => boolean, what: string, maxMs = PROMPT_MS) {
  for (let waited = 0; !condition(); waited += STEP_MS) {
    if (waited >= maxMs) assert.fail(`still waiting after ${maxMs} ms for ${what}`);
    await h.wait(STEP_MS);
  }
}

/** The settled outcome of `promise`, moving the harness's time until it settles. */
async function settle<T>(h: TransportHarness, promise: Promise<T>, what: string, maxMs = PROMPT_MS) {
  const box = observe(promise);
  await waitUntil(h, () => !box.pending(), what, maxMs);
  return box.outcome() as Exclude<Outcome<T>, { state: 'pending' }>;
}

async function resolved<T>(h: TransportHarness, promise: Promise<T>, what: string): Promise<T> {
  const outcome = await settle(h, promise, what);
  if (outcome.state === 'rejected') {
    assert.fail(
      `${what} rejected: ${outcome.error instanceof Error ? outcome.error.stack : String(outcome.error)}`,
    );
  }
  return outcome.value;
}

async function rejected(h: TransportHarness, promise: Promise<unknown>, what: string, maxMs = PROMPT_MS) {
  const outcome = await settle(h, promise, what, maxMs);
  if (outcome.state !== 'rejected') assert.fail(`${what} should reject, but it resolved`);
  return outcome.error;
}

// By code, not instanceof: a transport from another copy of the package (ESM vs CJS build) must pass too.
function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function assertCode(err: unknown, codes: string[], what: string): void {
  assert.ok(
    codes.includes(String(errorCode(err))),
    `${what}: expected an error with code ${codes.join(' or ')}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
  );
}

function assertBytes(actual: unknown, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: expected a Uint8Array`);
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  assert.ok(a.equals(b), `${what}: bytes differ`);
}

/** The response every echo-style handler gives: the request reversed, each byte inverted. */
function derive(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength);
  for (let i = 0; i < payload.byteLength; i++) out[i] = ~payload[payload.byteLength - 1 - i]! & 0xff;
  return out;
}

/** Deterministic bytes covering every value (the suite takes no randomness from anywhere). */
function pattern(length: number, salt = 0): Uint8Array {
  const out = new Uint8Array(length);
  let x = (salt * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const text = new TextEncoder();
const untext = new TextDecoder();
const never = () => new Promise<Uint8Array>(() => {});

/**
 * Registers the Transport contract's tests with `options.test`; every transport implementation
 * runs it. `factory` returns a `TransportHarness` (create / wait / close), not a transport:
 *
 * ```ts
 * import { test } from 'vitest';
 * import { transportComplianceSuite } from 'dynamo-engine/testing';
 * transportComplianceSuite({ test, factory: () => myHarness() });
 * ```
 */
export function transportComplianceSuite(options: TransportComplianceOptions): void {
  const { test, factory } = options;

  const withHarness = (fn: (h: TransportHarness) => Promise<void>) => async () => {
    const h = await factory();
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  };

  const started = async (h: TransportHarness, name: string, handler: Parameters<Transport['start']>[0]) => {
    const t = await h.create(name);
    await t.start(handler);
    return t;
  };

  test(
    'transport: request/response roundtrip with binary payloads (empty, every byte value, 1 MiB)',
    withHarness(async (h) => {
      const received: Uint8Array[] = [];
      const server = await started(h, 'server', async (_from, payload) => {
        received.push(payload.slice());
        return derive(payload);
      });
      const client = await started(h, 'client', never);
      const every = new Uint8Array(256).map((_, i) => i);
      const payloads = [new Uint8Array(0), every, pattern(1 << 20, 1)];
      for (const [i, payload] of payloads.entries()) {
        const what = `request ${i} (${payload.byteLength} bytes)`;
        const response = await resolved(
          h,
          client.request(server.address, payload, { timeoutMs: ANSWER_TIMEOUT_MS }),
          what,
        );
        assertBytes(received[i], payload, `${what}: payload seen by the handler`);
        assertBytes(response, derive(payload), `${what}: response`);
      }
    }),
  );

  test(
    'transport: the handler sees the sender address as `from`',
    withHarness(async (h) => {
      const froms: string[] = [];
      const server = await started(h, 'server', async (from) => {
        froms.push(from);
        return text.encode(from);
      });
      const alice = await started(h, 'alice', never);
      const bob = await started(h, 'bob', never);
      for (const client of [alice, bob]) {
        const response = await resolved(
          h,
          client.request(server.address, new Uint8Array([1]), { timeoutMs: ANSWER_TIMEOUT_MS }),
          `request from ${client.address}`,
        );
        assert.equal(untext.decode(response), client.address, 'response names the sender');
      }
      assert.deepEqual(froms, [alice.address, bob.address]);
    }),
  );

  test(
    'transport: concurrent requests answered out of order are correlated correctly',
    withHarness(async (h) => {
      const perClient = 100;
      const waiting: { payload: Uint8Array; answer: (r: Uint8Array) => void }[] = [];
      let handled = 0;
      const server = await started(
        h,
        'server',
        (_from, payload) =>
          new Promise<Uint8Array>((resolve) => {
            waiting.push({ payload, answer: resolve });
          }),
      );
      const clients = [await started(h, 'c1', never), await started(h, 'c2', never)];
      const requests: { payload: Uint8Array; box: Observed<Uint8Array> }[] = [];
      for (let i = 0; i < perClient; i++) {
        for (const [c, client] of clients.entries()) {
          // Distinct content and length per request, so a mix-up cannot go unnoticed.
          const payload = pattern(8 + ((i * 7 + c) % 61), i * 2 + c + 100);
          requests.push({
            payload,
            box: observe(client.request(server.address, payload, { timeoutMs: ANSWER_TIMEOUT_MS })),
          });
        }
      }
      // Answer whatever has arrived, newest first; a transport that bounds concurrent handlers still progresses.
      await waitUntil(
        h,
        () => {
          for (const w of waiting.splice(0).reverse()) {
            w.answer(derive(w.payload));
            handled++;
          }
          return requests.every((r) => !r.box.pending());
        },
        'every concurrent request to settle',
      );
      assert.equal(handled, requests.length, 'each request reached the handler once');
      for (const [i, r] of requests.entries()) {
        const outcome = r.box.outcome();
        assert.equal(outcome.state, 'resolved', `request ${i} resolved`);
        if (outcome.state === 'resolved')
          assertBytes(outcome.value, derive(r.payload), `request ${i}: response`);
      }
    }),
  );

  test(
    'transport: a handler rejection reaches the caller as TransportError with the remote message',
    withHarness(async (h) => {
      const server = await started(h, 'server', async (_from, payload) => {
        if (payload[0] === 1) throw new Error('handler refused this one: xyzzy');
        return derive(payload);
      });
      const client = await started(h, 'client', never);
      const err = await rejected(
        h,
        client.request(server.address, new Uint8Array([1]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request to a failing handler',
      );
      assertCode(err, ['DYNAMO_TRANSPORT'], 'handler rejection');
      assert.match((err as Error).message, /xyzzy/, 'the remote message is kept');
      const response = await resolved(
        h,
        client.request(server.address, new Uint8Array([2, 3]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request after a failure',
      );
      assertBytes(
        response,
        derive(new Uint8Array([2, 3])),
        'the endpoint still serves after a handler failure',
      );
    }),
  );

  test(
    'transport: a request to a stopped peer rejects with TransportError or TimeoutError',
    withHarness(async (h) => {
      const server = await started(h, 'server', async (_from, payload) => derive(payload));
      const client = await started(h, 'client', never);
      const address = server.address;
      await resolved(h, server.stop(), 'server.stop()');
      const timeoutMs = 500;
      const err = await rejected(
        h,
        client.request(address, new Uint8Array([1]), { timeoutMs }),
        'request to a stopped peer',
        timeoutMs + PROMPT_MS,
      );
      assertCode(err, ['DYNAMO_TRANSPORT', 'DYNAMO_TIMEOUT'], 'unreachable peer');
    }),
  );

  test(
    'transport: a request the handler never answers rejects with TimeoutError after about timeoutMs',
    withHarness(async (h) => {
      let arrived = 0;
      const server = await started(h, 'server', () => {
        arrived++;
        return never();
      });
      const client = await started(h, 'client', never);
      const timeoutMs = 200;
      const box = observe(client.request(server.address, new Uint8Array([1]), { timeoutMs }));
      await h.wait(timeoutMs / 2);
      assert.ok(box.pending(), 'no answer and not yet timed out at timeoutMs / 2');
      await waitUntil(h, () => !box.pending(), 'the timeout', timeoutMs / 2 + PROMPT_MS);
      assertCode(rejectionOf(box, 'unanswered request'), ['DYNAMO_TIMEOUT'], 'unanswered request');
      assert.equal(arrived, 1, 'the request reached the handler');
    }),
  );

  test(
    'transport: aborting the signal rejects with signal.reason',
    withHarness(async (h) => {
      let arrived = 0;
      const server = await started(h, 'server', () => {
        arrived++;
        return never();
      });
      const client = await started(h, 'client', never);

      const already = new AbortController();
      const earlyReason = new Error('aborted before the call');
      already.abort(earlyReason);
      const early = await rejected(
        h,
        client.request(server.address, new Uint8Array([1]), {
          timeoutMs: ANSWER_TIMEOUT_MS,
          signal: already.signal,
        }),
        'request with an aborted signal',
      );
      assert.equal(early, earlyReason, 'an already-aborted signal rejects with its reason');

      const controller = new AbortController();
      const box = observe(
        client.request(server.address, new Uint8Array([2]), {
          timeoutMs: ANSWER_TIMEOUT_MS,
          signal: controller.signal,
        }),
      );
      await waitUntil(h, () => arrived >= 1, 'the request to reach the handler');
      assert.ok(box.pending());
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await waitUntil(h, () => !box.pending(), 'the abort to reject the request', 1_000);
      assert.equal(rejectionOf(box, 'aborted request'), reason, 'rejects with signal.reason');
    }),
  );

  test(
    'transport: stop() rejects in-flight requests with TransportError; requests after stop reject; the name can be reused',
    withHarness(async (h) => {
      let arrived = 0;
      const server = await started(h, 'server', async (_from, payload) => {
        if (payload[0] === 0) {
          arrived++;
          return never();
        }
        return derive(payload);
      });
      const client = await started(h, 'client', async (_from, payload) => derive(payload));
      const box = observe(
        client.request(server.address, new Uint8Array([0]), { timeoutMs: ANSWER_TIMEOUT_MS }),
      );
      await waitUntil(h, () => arrived >= 1, 'the request to reach the handler');
      await resolved(h, client.stop(), 'client.stop() with a request in flight');
      await waitUntil(h, () => !box.pending(), 'stop() to reject the in-flight request', 1_000);
      assertCode(
        rejectionOf(box, 'request in flight at stop()'),
        ['DYNAMO_TRANSPORT'],
        'request in flight at stop()',
      );

      const after = await rejected(
        h,
        client.request(server.address, new Uint8Array([1]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request after stop()',
      );
      assertCode(after, ['DYNAMO_TRANSPORT'], 'request after stop()');

      const replacement = await started(h, 'client', async (_from, payload) => derive(payload));
      const response = await resolved(
        h,
        server.request(replacement.address, new Uint8Array([7, 8, 9]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request to the replacement endpoint',
      );
      assertBytes(response, derive(new Uint8Array([7, 8, 9])), 'the replacement answers');
      const back = await resolved(
        h,
        replacement.request(server.address, new Uint8Array([4]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request from the replacement endpoint',
      );
      assertBytes(back, derive(new Uint8Array([4])), 'the replacement can send');
    }),
  );

  test(
    'transport: a peer that stops while handling a request fails the caller; its replacement serves',
    withHarness(async (h) => {
      let arrived = 0;
      const server = await started(h, 'server', () => {
        arrived++;
        return never();
      });
      const client = await started(h, 'client', never);
      const timeoutMs = 1_000;
      const box = observe(client.request(server.address, new Uint8Array([1]), { timeoutMs }));
      await waitUntil(h, () => arrived >= 1, 'the request to reach the handler');
      // stop() must not wait for handlers that never finish.
      await resolved(h, server.stop(), 'server.stop() with a handler still running');
      await waitUntil(h, () => !box.pending(), 'the caller to fail', timeoutMs + PROMPT_MS);
      assertCode(
        rejectionOf(box, 'request to a peer stopped mid-request'),
        ['DYNAMO_TRANSPORT', 'DYNAMO_TIMEOUT'],
        'peer stopped mid-request',
      );

      const replacement = await started(h, 'server', async (_from, payload) => derive(payload));
      const response = await resolved(
        h,
        client.request(replacement.address, new Uint8Array([5, 6]), { timeoutMs: ANSWER_TIMEOUT_MS }),
        'request to the restarted peer',
      );
      assertBytes(response, derive(new Uint8Array([5, 6])), 'the restarted peer answers');
    }),
  );
}
