import { randomBytes } from 'node:crypto';

/** Source of randomness. `src/` outside `src/util/` never calls `Math.random`. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** 32 random bits as an unsigned integer. */
  uint32(): number;
  /** An independent stream derived from this one's seed and `label` (not from its position). */
  fork(label: string): Random;
}

// FNV-1a over a string: spreads seed material before it enters the generator.
function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** sfc32: small, fast, passes PractRand to 2^40+; 128 bits of state. */
class Sfc32 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(private readonly seedText: string) {
    this.a = hashString(seedText, 0x9e3779b9);
    this.b = hashString(seedText, 0x243f6a88);
    this.c = hashString(seedText, 0xb7e15162);
    for (let i = 0; i < 15; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.uint32() / 4294967296;
  }

  int(maxExclusive: number): number {
    if (!(maxExclusive > 0)) throw new RangeError(`int(maxExclusive): must be > 0, got ${maxExclusive}`);
    return Math.floor(this.next() * maxExclusive);
  }

  fork(label: string): Random {
    return new Sfc32(`${this.seedText}/${label}`);
  }
}

/** A deterministic generator: the same seed gives the same sequence on every machine. */
export function seededRandom(seed: number | string): Random {
  return new Sfc32(String(seed));
}

/** A generator seeded from the OS's entropy (the default when no `random` option is given). */
export function cryptoSeededRandom(): Random {
  return new Sfc32(randomBytes(16).toString('hex'));
}
