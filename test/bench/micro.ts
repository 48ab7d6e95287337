/** `npm run bench:micro`: the pure-core and storage micro-benchmarks only. */
import { formatTable } from './lib.js';
import { benchRing } from './micro-ring.js';
import { benchStorage } from './micro-storage.js';
import { benchValues } from './micro-values.js';
import { benchVersioning } from './micro-versioning.js';

const rows = [
  ...(await benchRing()),
  ...(await benchVersioning()),
  ...(await benchValues()),
  ...(await benchStorage()),
];
console.log(formatTable(rows));
