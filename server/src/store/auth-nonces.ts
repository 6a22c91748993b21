import type pg from 'pg';

/**
 * Uses up an authentication nonce for every node at once: true when this call is the first to
 * use it, false when it was used before (on any node). The same statement deletes nonces that
 * expired before `now` (ms), so the table holds about a minute of logins.
 */
export async function useNonce(pool: pg.Pool, nonce: Uint8Array, expiresAt: number, now: number): Promise<boolean> {
  const result = await pool.query(
    `with expired as (delete from auth_nonces where expires_at < $3)
     insert into auth_nonces (nonce, expires_at) values ($1, $2) on conflict (nonce) do nothing`,
    [Buffer.from(nonce), expiresAt, now],
  );
  return result.rowCount === 1;
}
