// The SDK as an integrator gets it: `npm pack` in client-sdk/ (whose prepack builds), the
// tarball installed into a fresh app outside the repository, type-checked by a default strict
// `tsc` (no skipLibCheck), and a two-party conversation run under plain `node` against a real relay.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelay, type TestRelay } from '../support/relay.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const sdkDir = path.join(repo, 'client-sdk');
const tsc = path.join(repo, 'node_modules/typescript/bin/tsc');

/** npm, without the variables an enclosing `npm test` would leak into it. */
function npm(args: string[], cwd: string, timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return run('npm', args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 });
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** The consumer: plain TypeScript against the installed package, as the README shows it. */
const APP = `import WebSocket from 'ws';
import { BackchannelError, MemoryKeyStore, convene, join, type ChannelClient } from '@backchannel/client-sdk';
import { FileKeyStore, nodePlatform } from '@backchannel/client-sdk/node';
import { ERROR_CODES, type ErrorCode } from '@backchannel/client-sdk/protocol';

const relay = process.argv[2];
if (relay === undefined) throw new Error('usage: node app.js <relay-url>');
// ws without casts: found by nodePlatform() itself, or handed to it.
const platform = nodePlatform();
const withClass = nodePlatform(WebSocket);

const host = await convene({ relay, store: new MemoryKeyStore(), platform, charter: { purpose: 'Packaging check' } });
const alice: ChannelClient = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform: withClass });
// @ts-expect-error: event names are checked at compile time
alice.on('bogus', () => undefined);
const bob = await join({ invite: await host.invite(), store: new MemoryKeyStore(), platform });
await alice.approve(bob.memberKey, { fingerprint: await bob.myFingerprint() });
await bob.approve(alice.memberKey, { fingerprint: await alice.myFingerprint() });
await Promise.all([alice.whenActive(), bob.whenActive()]);

const heard = new Promise<string>((resolve) => {
  bob.on('message', (m) => resolve(m.content.kind === 'text' ? m.content.text : '?'));
});
await alice.sendText('hello from an installed package');
const text = await heard;
await Promise.all([alice.close(), bob.close(), host.close()]);

const code: ErrorCode = 'unavailable';
console.log(JSON.stringify({ text, codes: ERROR_CODES.includes(code), errorClass: typeof BackchannelError, fileStore: typeof FileKeyStore.open }));
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    rootDir: 'src',
    outDir: 'out',
  },
  include: ['src'],
};

describe('@backchannel/client-sdk as a package', () => {
  let listed: PackResult;
  let app: string;
  let relay: TestRelay;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings[name] = Math.round(performance.now() - t0);
    }
  };

  beforeAll(async () => {
    relay = await startTestRelay();
    // The dry run runs prepack (the clean build); the real pack then only archives that build.
    const dry = await timed('pack --dry-run (prepack build)', () => npm(['pack', '--dry-run', '--json'], sdkDir));
    listed = (JSON.parse(dry.stdout) as PackResult[])[0]!;
    app = await mkdtemp(path.join(tmpdir(), 'bc-sdk-consumer-'));
    const packed = await timed('pack', () => npm(['pack', '--ignore-scripts', '--json', '--pack-destination', app], sdkDir));
    const tarball = (JSON.parse(packed.stdout) as PackResult[])[0]!.filename;
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await timed('npm install', () =>
      npm(['install', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`, 'ws@^8.18.0', '@types/ws@^8.18.2', '@types/node@~20.19.0'], app),
    );
    await mkdir(path.join(app, 'src'));
    await writeFile(path.join(app, 'src/app.ts'), APP);
    await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  }, 240_000);

  afterAll(async () => {
    console.info('package test timings (ms):', JSON.stringify(timings));
    await relay?.close();
    if (app !== undefined) await rm(app, { recursive: true, force: true });
  });

  it('packs compiled ESM, declarations, sources, README and LICENSE; no tests, no build info', () => {
    const files = listed.files.map((f) => f.path).sort();
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/node.js',
      'dist/node.d.ts',
      'dist/protocol/index.js',
      'dist/protocol/index.d.ts',
      'dist/backchannel.browser.js',
      'src/index.ts',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /\.test\.|tsbuildinfo/.test(f))).toEqual([]);
    expect(files.filter((f) => !/^(dist|src)\//.test(f)).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
  });

  it('ships what its manifest and source maps point at', async () => {
    const root = path.join(app, 'node_modules/@backchannel/client-sdk');
    const files = new Set(listed.files.map((f) => f.path));
    const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      license: string;
      exports: Record<string, string | Record<string, string>>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(manifest.license).toBe('Apache-2.0');
    expect(await readFile(path.join(root, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
    expect(manifest.peerDependencies?.ws).toBeDefined();
    expect(manifest.peerDependenciesMeta?.ws?.optional).toBe(true);
    expect(Object.keys(manifest.exports)).toEqual(expect.arrayContaining(['.', './node', './protocol', './browser']));
    // Every export target, under every condition (`source` included), is in the tarball.
    for (const target of Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)))) {
      expect(files, target).toContain(path.posix.normalize(target));
    }
    // Every source map names only files the package ships (or carries their text).
    const maps = [...files].filter((f) => f.endsWith('.js.map') && f !== 'dist/backchannel.browser.js.map');
    expect(maps.length).toBeGreaterThan(20);
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(path.join(root, map), 'utf8')) as { sources: string[] };
      for (const s of sources) expect(files, `${map} → ${s}`).toContain(path.posix.join(path.posix.dirname(map), s));
    }
    const browserMap = JSON.parse(await readFile(path.join(root, 'dist/backchannel.browser.js.map'), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
    expect(browserMap.sourcesContent?.length).toBe(browserMap.sources.length);
  });

  it('type-checks a consumer under tsc --strict without skipLibCheck', async () => {
    const out = await timed('tsc --strict', () => run(process.execPath, [tsc, '-p', app], { cwd: app, timeout: 90_000 }).catch((e: { stdout: string }) => e));
    expect(out.stdout).toBe('');
  });

  it('bundles with esbuild, also under the `source` condition', async () => {
    for (const conditions of [[], ['source']]) {
      const result = await build({ entryPoints: [path.join(app, 'src/app.ts')], absWorkingDir: app, bundle: true, platform: 'node', format: 'esm', conditions, write: false, logLevel: 'silent', external: ['ws'] });
      expect(result.errors).toEqual([]);
    }
  });

  it('runs a two-party conversation under plain node against a real relay, then exits by itself', async () => {
    const { stdout } = await timed('node app.js', () => run(process.execPath, [path.join(app, 'out/app.js'), relay.url], { cwd: app, timeout: 60_000 }));
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ text: 'hello from an installed package', codes: true, errorClass: 'function', fileStore: 'function' });
  });
});
