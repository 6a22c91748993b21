// Builds the browser bundle of the SDK: one ES module, libsodium's WebAssembly inlined, no Node
// built-ins (the SDK compiles without Node types, so none can sneak in).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/backchannel.browser.js`;
const result = await build({
  entryPoints: [`${root}src/index.ts`],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['source'],
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined)?.bytes ?? 0;
console.log(`${out} (${Math.round(bytes / 1024)} KiB)`);
