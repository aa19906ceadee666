// Writes .br and .gz next to every compressible file of the build (the server sends them by
// Accept-Encoding) and prints the bundle's total gzip size.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dir = process.argv[2] ?? 'dist';
const compressible = /\.(html|js|mjs|css|json|svg|txt|webmanifest|map)$/;
let raw = 0;
let gz = 0;
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const full = join(d, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (compressible.test(name)) {
      const body = readFileSync(full);
      const g = gzipSync(body, { level: 9 });
      const b = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
      writeFileSync(full + '.gz', g);
      writeFileSync(full + '.br', b);
      raw += body.length;
      gz += g.length;
    } else if (!/\.(br|gz)$/.test(name)) {
      const n = statSync(full).size;
      raw += n;
      gz += n;
    }
  }
};
walk(dir);
console.log(`dashboard bundle: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip`);
