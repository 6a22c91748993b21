import { FileKeyStore } from '@backchannel/client-sdk/node';

/**
 * Opens the encrypted key store at `path` under a passphrase, first encrypting in place a store
 * an older SDK left unencrypted. Resolves with the store (pass it to `join`, `convene`, `reopen`).
 */
export async function openKeyStore(path: string, passphrase: string): Promise<FileKeyStore> {
  // A no-op (false) when the file is missing or already encrypted, so it is safe on every start.
  if (await FileKeyStore.migrate(path, { passphrase })) console.log('key store encrypted in place');
  try {
    return await FileKeyStore.open(path, { passphrase });
  } catch (err) {
    // `keystore_wrong_key`: ask again; the file was not touched.
    if (err instanceof Error && 'code' in err && err.code === 'keystore_wrong_key') console.error('wrong passphrase');
    throw err;
  }
}
