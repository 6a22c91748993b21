import sodiumModule from 'libsodium-wrappers';

/** The libsodium API, once {@link sodiumReady} has resolved. */
export type Sodium = typeof sodiumModule;

let readyPromise: Promise<Sodium> | undefined;

/**
 * Resolves when libsodium's WebAssembly is loaded. Every crypto entry point awaits this once;
 * afterwards {@link sodium} may be used synchronously.
 */
export function sodiumReady(): Promise<Sodium> {
  readyPromise ??= sodiumModule.ready.then(() => sodiumModule);
  return readyPromise;
}

/** The loaded libsodium; only valid after {@link sodiumReady} has resolved. */
export const sodium: Sodium = sodiumModule;
