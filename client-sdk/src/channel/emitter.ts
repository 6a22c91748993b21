/** A minimal typed event emitter (the SDK runs in browsers: no Node `events`). */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(value: never) => void>>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  /** @internal Calls every listener; a throwing listener does not stop the others. */
  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const l of this.#listeners.get(event) ?? []) {
      try {
        (l as (value: Events[K]) => void)(value);
      } catch {
        // The application's listener failed; the SDK's state is already saved.
      }
    }
  }
}
