import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toStoredJson, type KeyStore, type KeyStoreOp } from '../keystore/key-store.js';
import { StoreCipher, type StoreKey } from '../keystore/sealed-entries.js';
import { BackchannelError } from '../protocol/index.js';
import { newScryptHeader, passphraseKey, type ScryptHeader } from './passphrase-key.js';

/**
 * How a file store is encrypted: under a key derived from a passphrase by scrypt (`scryptN`
 * defaults to 2^17; lower it only for constrained devices), or under a key the application
 * supplies (32 bytes, or a non-extractable AES-GCM `CryptoKey`).
 */
export type FileKeyStoreProtection = { passphrase: string; scryptN?: number } | { key: StoreKey };

/** How the store's key was made, stored in clear beside the ciphertext and authenticated with it. */
type KdfHeader = ScryptHeader | { name: 'supplied' };

/** The file, version 2: everything but the KDF header is one AES-256-GCM ciphertext. */
interface EncryptedFile {
  version: 2;
  kdf: KdfHeader;
  iv: string;
  ciphertext: string;
}

/** The old, unencrypted file (version 1): only {@link FileKeyStore.migrate} reads it. */
interface PlaintextFile {
  version: 1;
  entries: Record<string, string>;
}

/**
 * A Node {@link KeyStore} kept in one file, encrypted at rest: every name and value is inside
 * one AES-256-GCM ciphertext (see `sealed-entries.ts`) under a key from a passphrase (scrypt) or
 * from the application. The file is created 0600 and missing folders 0700.
 *
 * Every change rewrites the file atomically — write a temporary file beside it, fsync it,
 * rename it over the old one, fsync the folder — so after a crash or kill -9 the file holds
 * either the old or the new state, never a torn one. Writes are serialised; one process should
 * own a file at a time.
 *
 * Errors at open: `keystore_wrong_key` (the passphrase or key does not open the file — nothing
 * is written), `keystore_plaintext` (an unencrypted store of an older SDK: see
 * {@link FileKeyStore.migrate}), `keystore_invalid` (not a Backchannel key store).
 */
export class FileKeyStore implements KeyStore {
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly kdf: KdfHeader,
    private readonly cipher: StoreCipher,
    private entries: Map<string, string>,
  ) {}

  /** Opens the encrypted store at `path`, creating missing folders (0700); a missing file is an empty store. */
  static async open(path: string, protection: FileKeyStoreProtection): Promise<FileKeyStore> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const file = await readStoreFile(path);
    if (file === undefined) {
      const kdf: KdfHeader = 'passphrase' in protection ? newScryptHeader(protection.scryptN) : { name: 'supplied' };
      return new FileKeyStore(path, kdf, await cipherFor(protection, kdf), new Map());
    }
    if (file.version === 1) {
      throw new BackchannelError('keystore_plaintext', `${path} is an unencrypted key store: migrate it with FileKeyStore.migrate`);
    }
    const cipher = await cipherFor(protection, file.kdf);
    const entries = await cipher.open({ iv: decode(file.iv), ciphertext: decode(file.ciphertext) }, kdfContext(file.kdf));
    return new FileKeyStore(path, file.kdf, cipher, entries);
  }

  /**
   * Encrypts an unencrypted (version 1) store in place under `protection`: resolves true when it
   * did, false when the file is missing or already encrypted (so it is safe to call on every
   * start, before {@link FileKeyStore.open}). The old file's bytes are overwritten with zeros
   * before the encrypted file replaces it; copies the file system or backups keep are beyond reach.
   */
  static async migrate(path: string, protection: FileKeyStoreProtection): Promise<boolean> {
    const file = await readStoreFile(path);
    if (file === undefined || file.version === 2) return false;
    const kdf: KdfHeader = 'passphrase' in protection ? newScryptHeader(protection.scryptN) : { name: 'supplied' };
    const store = new FileKeyStore(path, kdf, await cipherFor(protection, kdf), new Map(Object.entries(file.entries)));
    await overwriteWithZeros(path);
    await store.write(store.entries);
    await store.close();
    return true;
  }

  async get(key: string): Promise<unknown> {
    this.assertOpen();
    const text = this.entries.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  put(key: string, value: unknown): Promise<void> {
    return this.batch([{ type: 'put', key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ type: 'delete', key }]);
  }

  async list(prefix = ''): Promise<string[]> {
    this.assertOpen();
    return [...this.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  batch(ops: readonly KeyStoreOp[]): Promise<void> {
    this.assertOpen();
    const run = this.queue.then(async () => {
      const next = new Map(this.entries);
      for (const op of ops) {
        if (op.type === 'put') next.set(op.key, toStoredJson(op.value));
        else next.delete(op.key);
      }
      await this.write(next);
      // Only a durable write becomes visible to readers.
      this.entries = next;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('key store is closed');
  }

  private async write(entries: Map<string, string>): Promise<void> {
    const sealed = await this.cipher.seal(entries, kdfContext(this.kdf));
    const contents: EncryptedFile = {
      version: 2,
      kdf: this.kdf,
      iv: Buffer.from(sealed.iv).toString('base64url'),
      ciphertext: Buffer.from(sealed.ciphertext).toString('base64url'),
    };
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(JSON.stringify(contents), 'utf8');
      await file.sync();
    } catch (err) {
      await file.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await file.close();
    await rename(tmp, this.path);
    await fsyncDir(dirname(this.path));
  }
}

/** The key for `protection` under `kdf` (`keystore_wrong_key` when they differ in kind); raw bytes are zeroed once imported. */
async function cipherFor(protection: FileKeyStoreProtection, kdf: KdfHeader): Promise<StoreCipher> {
  const protectedBy = kdf.name === 'scrypt' ? 'a passphrase' : 'a supplied key';
  if (!('passphrase' in protection)) {
    if (kdf.name !== 'supplied') throw new BackchannelError('keystore_wrong_key', `the key store is protected by ${protectedBy}`);
    return StoreCipher.from(protection.key);
  }
  if (kdf.name !== 'scrypt') throw new BackchannelError('keystore_wrong_key', `the key store is protected by ${protectedBy}`);
  const raw = await passphraseKey(protection.passphrase, kdf);
  try {
    return await StoreCipher.from(raw);
  } finally {
    raw.fill(0);
  }
}

/** What the ciphertext is bound to: the KDF header, in one canonical text. */
function kdfContext(kdf: KdfHeader): string {
  return kdf.name === 'scrypt' ? `file/scrypt/${kdf.N}/${kdf.r}/${kdf.p}/${kdf.salt}` : 'file/supplied';
}

function decode(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(Buffer.from(text, 'base64url'));
}

/** The parsed file, or undefined when there is none; `keystore_invalid` when it is not a key store. */
async function readStoreFile(path: string): Promise<EncryptedFile | PlaintextFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new BackchannelError('keystore_invalid', `${path} is not a Backchannel key store`, { cause });
  }
  if (isEncrypted(parsed) || isPlaintext(parsed)) return parsed;
  throw new BackchannelError('keystore_invalid', `${path} is not a Backchannel key store`);
}

/** Best effort: zeros over the old plaintext before it is unlinked by the rename. */
async function overwriteWithZeros(path: string): Promise<void> {
  const { size } = await stat(path);
  const handle = await open(path, 'r+');
  try {
    await handle.write(new Uint8Array(size), 0, size, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename itself durable; some platforms cannot open folders, which is harmless.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // ignored: best effort on platforms without directory fsync
  }
}

function isPlaintext(value: unknown): value is PlaintextFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { version?: unknown; entries?: unknown };
  if (v.version !== 1 || typeof v.entries !== 'object' || v.entries === null) return false;
  return Object.values(v.entries).every((e) => typeof e === 'string');
}

function isEncrypted(value: unknown): value is EncryptedFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { version?: unknown; kdf?: unknown; iv?: unknown; ciphertext?: unknown };
  if (v.version !== 2 || typeof v.iv !== 'string' || typeof v.ciphertext !== 'string') return false;
  const kdf = v.kdf as { name?: unknown; N?: unknown; r?: unknown; p?: unknown; salt?: unknown } | null | undefined;
  if (typeof kdf !== 'object' || kdf === null) return false;
  if (kdf.name === 'supplied') return Object.keys(kdf).length === 1;
  return kdf.name === 'scrypt' && typeof kdf.N === 'number' && typeof kdf.r === 'number' && typeof kdf.p === 'number' && typeof kdf.salt === 'string';
}
