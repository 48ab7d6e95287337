import { afterAll, beforeAll, test } from 'vitest';
import type { TcpTransportOptions } from '../../src/tcp/index.js';
import { transportComplianceSuite } from '../../src/testing/transport-compliance.js';
import { makePki, type TestPki, tcpHarness } from '../unit/tcp/helpers.js';

const prefixed =
  (prefix: string) =>
  (name: string, fn: () => Promise<void>): void => {
    test(`${prefix} ${name}`, fn);
  };

// Short bounds: the suite's stopped-peer tests should not wait on production defaults.
const base: TcpTransportOptions = { connectTimeoutMs: 500, handshakeTimeoutMs: 500 };

transportComplianceSuite({ test: prefixed('[tcp]'), factory: () => tcpHarness(() => base) });

transportComplianceSuite({
  test: prefixed('[tcp, shared secret]'),
  factory: () => tcpHarness(() => ({ ...base, secret: 'compliance secret' })),
});

let pki: TestPki | undefined;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.cleanup());

transportComplianceSuite({
  test: prefixed('[tcp, mutual TLS]'),
  factory: () =>
    tcpHarness((name) => {
      // Alternate the two node certificates so both directions present different certificates.
      const pair = name.length % 2 === 0 ? pki!.nodeA : pki!.nodeB;
      return { ...base, tls: { ca: pki!.ca, key: pair.key, cert: pair.cert } };
    }),
});
