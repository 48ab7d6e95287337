import { describe, expect, test } from 'vitest';
import { formatAddress, isLoopback, parseAddress } from '../../../src/tcp/address.js';
import {
  encodeFrame,
  encodeFrames,
  FrameDecoder,
  FrameType,
  HEADER_BYTES,
  ProtocolError,
} from '../../../src/tcp/frame.js';
import { decodeHello, encodeHello, newNonce } from '../../../src/tcp/handshake.js';
import { seededRandom } from '../../../src/util/random.js';

describe('FrameDecoder', () => {
  test('decodes frames split at every possible byte boundary', () => {
    const frames = [
      encodeFrame(FrameType.Request, 1, Buffer.from('hello')),
      encodeFrame(FrameType.Response, 0xffffffff, new Uint8Array(0)),
      encodeFrame(FrameType.Error, 7, Buffer.alloc(300, 9)),
    ];
    const wire = Buffer.concat(frames);
    for (let cut = 0; cut <= wire.length; cut++) {
      const d = new FrameDecoder(1024);
      d.push(wire.subarray(0, cut));
      const out = [];
      for (let f = d.next(); f; f = d.next()) out.push(f);
      d.push(wire.subarray(cut));
      for (let f = d.next(); f; f = d.next()) out.push(f);
      expect(out.map((f) => [f.type, f.id, f.payload.length])).toEqual([
        [FrameType.Request, 1, 5],
        [FrameType.Response, 0xffffffff, 0],
        [FrameType.Error, 7, 300],
      ]);
      expect(d.buffered).toBe(0);
    }
  });

  test('decodes byte by byte (length prefix straddling many chunks)', () => {
    const wire = encodeFrames(
      [
        { type: 1, id: 2, payload: Buffer.from('abc') },
        { type: 1, id: 3, payload: Buffer.from('defg') },
      ],
      2 * HEADER_BYTES + 7,
    );
    const d = new FrameDecoder(64);
    const ids: number[] = [];
    for (const byte of wire) {
      d.push(Buffer.from([byte]));
      for (let f = d.next(); f; f = d.next()) ids.push(f.id);
    }
    expect(ids).toEqual([2, 3]);
  });

  test('rejects an oversized length prefix as soon as the 4 prefix bytes are in (no buffering)', () => {
    const d = new FrameDecoder(1000);
    d.push(Buffer.from([0x00, 0x00]));
    expect(d.next()).toBeUndefined();
    d.push(Buffer.from([0x03, 0xe9])); // 1001
    expect(() => d.next()).toThrow(ProtocolError);
    const huge = new FrameDecoder(16 * 1024 * 1024);
    huge.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(() => huge.next()).toThrow(/exceeds maxFrameBytes/);
  });

  test('rejects lengths shorter than the header (including zero)', () => {
    for (const len of [0, 1, 4]) {
      const d = new FrameDecoder(1000);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(len);
      d.push(b);
      expect(() => d.next()).toThrow(/shorter than its header/);
    }
  });

  test('the header is big-endian on the wire; a frame within one chunk is a view of it, not a copy', () => {
    const wire = encodeFrames(
      [
        { type: 0x7e, id: 0x89abcdef, payload: Buffer.from('xy') },
        { type: 2, id: 0, payload: new Uint8Array(0) },
      ],
      2 * HEADER_BYTES + 2,
    );
    expect([...wire.subarray(0, HEADER_BYTES)]).toEqual([0, 0, 0, 7, 0x7e, 0x89, 0xab, 0xcd, 0xef]);
    const d = new FrameDecoder(64);
    d.push(wire);
    const f = d.next()!;
    expect([f.type, f.id, f.payload.toString()]).toEqual([0x7e, 0x89abcdef, 'xy']);
    expect(f.payload.buffer).toBe(wire.buffer);
    expect(f.payload.byteOffset).toBe(wire.byteOffset + HEADER_BYTES);
    expect(d.next()).toMatchObject({ type: 2, id: 0 });
    expect(d.buffered).toBe(0);
  });

  test('a frame of exactly maxFrameBytes is accepted', () => {
    const d = new FrameDecoder(5 + 100);
    d.push(encodeFrame(1, 1, Buffer.alloc(100)));
    expect(d.next()?.payload.length).toBe(100);
  });
});

describe('hello', () => {
  test('roundtrip', () => {
    const nonce = newNonce();
    const h = decodeHello(encodeHello(true, nonce, '127.0.0.1:4000'));
    expect(h).toMatchObject({ secret: true, address: '127.0.0.1:4000', version: 1 });
    expect(h.nonce.equals(nonce)).toBe(true);
  });

  test('rejects malformed hellos', () => {
    const good = encodeHello(false, newNonce(), 'a:1');
    expect(() => decodeHello(good.subarray(0, 10))).toThrow(ProtocolError);
    expect(() => decodeHello(Buffer.concat([good, Buffer.from([0])]))).toThrow(ProtocolError);
    const badVersion = Buffer.from(good);
    badVersion[0] = 9;
    expect(() => decodeHello(badVersion)).toThrow(/version/);
    expect(() => decodeHello(encodeHello(false, newNonce(), 'a\nb:1'))).toThrow(/address/);
    const badUtf8 = Buffer.from(encodeHello(false, newNonce(), 'ab'));
    badUtf8[badUtf8.length - 1] = 0xff;
    expect(() => decodeHello(badUtf8)).toThrow(/address/);
  });

  test('random bytes never crash the decoder (only ProtocolError)', () => {
    const rnd = seededRandom('hello-fuzz');
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(rnd.int(80));
      for (let j = 0; j < b.length; j++) b[j] = rnd.int(256);
      if (rnd.next() < 0.5 && b.length > 0) b[0] = 1;
      try {
        decodeHello(b);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });
});

describe('addresses', () => {
  test('format and parse', () => {
    expect(formatAddress('127.0.0.1', 80)).toBe('127.0.0.1:80');
    expect(formatAddress('::1', 80)).toBe('[::1]:80');
    expect(parseAddress('127.0.0.1:4000')).toEqual({ host: '127.0.0.1', port: 4000 });
    expect(parseAddress('[::1]:4000')).toEqual({ host: '::1', port: 4000 });
    expect(parseAddress('node.example:1')).toEqual({ host: 'node.example', port: 1 });
    for (const bad of [
      '',
      'x',
      ':80',
      '1.2.3.4',
      '1.2.3.4:',
      '1.2.3.4:0',
      '1.2.3.4:65536',
      '::1:80',
      '[x]:1',
      'a:1e3',
    ]) {
      expect(parseAddress(bad), bad).toBeUndefined();
    }
  });

  test('loopback detection', () => {
    for (const h of ['127.0.0.1', '127.9.8.7', 'localhost', '::1', '::ffff:127.0.0.1'])
      expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1']) {
      expect(isLoopback(h), h).toBe(false);
    }
  });
});
