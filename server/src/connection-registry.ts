import type { Connection } from './connection.js';

/** Open connections by member key, so roster changes can reach (or cut) a member everywhere. */
export class ConnectionRegistry {
  readonly #byMember = new Map<string, Set<Connection>>();

  /** Registers a connection; returns the function that unregisters it. */
  add(conn: Connection): () => void {
    let set = this.#byMember.get(conn.memberText);
    if (set === undefined) this.#byMember.set(conn.memberText, (set = new Set()));
    set.add(conn);
    return () => {
      set.delete(conn);
      if (set.size === 0) this.#byMember.delete(conn.memberText);
    };
  }

  /** This node's connections of a member. */
  of(memberText: string): ReadonlySet<Connection> {
    return this.#byMember.get(memberText) ?? new Set();
  }

  /** Every connection on this node. */
  *all(): Iterable<Connection> {
    for (const set of this.#byMember.values()) yield* set;
  }
}
