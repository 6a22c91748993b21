// Runs before `npm pack` / `npm publish`: a clean build of what the package ships (compiled ESM
// and declarations for `.`, `/protocol` and `/node`, and the browser bundle), so a fresh clone
// packs a working package and nothing stale from an earlier build slips in. Its output goes to
// stderr: stdout is `npm pack --json`'s.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(`${root}dist`, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-b', `${root}tsconfig.node.json`], { stdio: ['ignore', 2, 2], cwd: root });
execFileSync(process.execPath, [`${root}scripts/bundle.mjs`], { stdio: ['ignore', 2, 2], cwd: root });
