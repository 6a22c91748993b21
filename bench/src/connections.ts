import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { authProof, sodium, sodiumReady } from '@backchannel/client-sdk';
import { SUBPROTOCOL, authSubprotocol, fromBase64Url, toBase64Url } from '@backchannel/client-sdk/protocol';
import { rssBytes } from './proc-sampler.js';
import { progress } from './progress.js';
import { REPO_ROOT, TSX_FLAGS, startRelayProcess, type BenchDatabase } from './relay-under-test.js';

/**
 * Mode 3: N idle authenticated connections to one relay, opened from several client processes
 * (each authenticates with its own fresh key through the DH challenge), and the relay's
 * resident memory per connection. Every socket is a file descriptor on both sides: the soft
 * limit of `ulimit -n` bounds N per process (the relay needs N plus its database pool).
 */

/** Mode 3's output. */
export interface ConnectionsReport {
  readonly requested: number;
  readonly established: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly clientProcesses: number;
  readonly connectSeconds: number;
  readonly relayRssBeforeMiB: number;
  readonly relayRssAfterMiB: number;
  readonly kibPerConnection: number;
  /** The relay process's open-file limit (soft). */
  readonly relayFdLimit: number;
}

const PER_PROCESS = 2_500;

type Reply = { type: 'opened'; ok: number; failed: number; firstError?: string };

function fdLimit(pid: number): number {
  try {
    // "Max open files  <soft>  <hard>  files".
    const text = readFileSync(`/proc/${pid}/limits`, 'utf8');
    const m = /Max open files\s+(\d+)/.exec(text);
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Runs mode 3 against a fresh relay process on `db`. */
export async function runConnections(db: BenchDatabase, requested: number): Promise<ConnectionsReport> {
  const relay = await startRelayProcess({ databaseUrl: db.url });
  const children: ChildProcess[] = [];
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    const before = rssBytes(relay.pid);
    const procs = Math.max(1, Math.ceil(requested / PER_PROCESS));
    progress(`connections: opening ${requested} authenticated idle connections from ${procs} processes`);
    const t0 = performance.now();
    const replies = await Promise.all(
      Array.from({ length: procs }, (_, i) => {
        const n = Math.min(PER_PROCESS, requested - i * PER_PROCESS);
        const child = fork(path.join(REPO_ROOT, 'bench/src/connections.ts'), [relay.url, String(n)], { cwd: REPO_ROOT, execArgv: TSX_FLAGS, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        return new Promise<Reply>((resolve, reject) => {
          child.once('message', (m: Reply) => resolve(m));
          child.once('exit', (code) => reject(new Error(`connection client exited (${code})`)));
        });
      }),
    );
    const connectSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2_000)); // let the relay settle
    const after = rssBytes(relay.pid);
    const established = replies.reduce((a, r) => a + r.ok, 0);
    const failed = replies.reduce((a, r) => a + r.failed, 0);
    progress(`connections: ${established} open, ${failed} failed, relay RSS ${(before / 1048576).toFixed(0)} → ${(after / 1048576).toFixed(0)} MiB`);
    return {
      requested,
      established,
      failed,
      firstError: replies.find((r) => r.firstError !== undefined)?.firstError,
      clientProcesses: procs,
      connectSeconds: Math.round(connectSeconds * 10) / 10,
      relayRssBeforeMiB: Math.round((before / 1048576) * 10) / 10,
      relayRssAfterMiB: Math.round((after / 1048576) * 10) / 10,
      kibPerConnection: established > 0 ? Math.round(((after - before) / 1024 / established) * 10) / 10 : Number.NaN,
      relayFdLimit: fdLimit(relay.pid),
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await relay.stop();
  }
}

async function openIdle(url: string, n: number): Promise<Reply> {
  await sodiumReady();
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const sockets: WebSocket[] = [];
  let next = 0;
  const one = async (): Promise<void> => {
    const kp = sodium.crypto_box_keypair();
    const res = await fetch(new URL('/v1/challenge', url));
    const ch = (await res.json()) as { relayKey: string; nonce: string };
    const relayKey = fromBase64Url(ch.relayKey)!;
    const proof = authProof(kp.privateKey, relayKey, kp.publicKey, relayKey, fromBase64Url(ch.nonce)!);
    const u = new URL('/v1/ws', url);
    u.protocol = 'ws:';
    const credentials = authSubprotocol({ key: toBase64Url(kp.publicKey), nonce: ch.nonce, proof: toBase64Url(proof) });
    const ws = new WebSocket(u, [SUBPROTOCOL, credentials], { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, r) => reject(new Error(`HTTP ${r.statusCode}`)));
    });
    ws.on('error', () => undefined);
    sockets.push(ws);
  };
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        next++;
        try {
          await one();
          ok++;
        } catch (err) {
          failed++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  return { type: 'opened', ok, failed, ...(firstError !== undefined ? { firstError } : {}) };
}

// Child entry: open N idle connections, report, then hold them until killed.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.send !== undefined) {
  const reply = await openIdle(process.argv[2]!, Number(process.argv[3]));
  process.send(reply);
  process.on('disconnect', () => process.exit(0));
  setInterval(() => undefined, 60_000);
}
