import { type Kysely, sql } from 'kysely';

/**
 * `bc_commit_batch`: a group commit in one statement, so one round trip. The relay sends the
 * sequences and receipt chains it computed from the channel heads it last committed; the
 * function locks those channels (in id order, so two batches never deadlock), checks that every
 * head is still exactly what the relay assumed and the channel still open, and only then writes
 * the messages, their receipts, the new heads and the NOTIFY to other nodes. If a head moved
 * (another node committed, a channel closed) it raises SQLSTATE BC409 and nothing is written;
 * the relay then takes its locking path. A retried client message id fails the idempotency key
 * (23505) the same way.
 *
 * Also: formal records refuse TRUNCATE as they refuse UPDATE and DELETE.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function bc_commit_batch(
      m_channel bytea[], m_seq bigint[], m_sender bytea[], m_client_msg_id text[], m_headers jsonb[],
      m_body text[], m_commitment bytea[], m_received_at bigint[], m_chain bytea[],
      h_channel bytea[], h_prev_seq bigint[], h_prev_chain bytea[], h_seq bigint[], h_chain bytea[],
      notices text[]
    ) returns void language plpgsql as $$
    declare
      moved integer;
    begin
      perform 1 from channels where id = any(h_channel) order by id for update;
      update channels c set head_seq = v.seq, chain = v.chain
        from unnest(h_channel, h_prev_seq, h_prev_chain, h_seq, h_chain) as v(id, prev_seq, prev_chain, seq, chain)
       where c.id = v.id and c.status = 'open' and c.head_seq = v.prev_seq and c.chain = v.prev_chain;
      get diagnostics moved = row_count;
      if moved <> cardinality(h_channel) then
        raise exception 'channel heads moved' using errcode = 'BC409';
      end if;
      insert into messages (channel_id, seq, sender_key, client_msg_id, headers, body, commitment, received_at, chain)
        select * from unnest(m_channel, m_seq, m_sender, m_client_msg_id, m_headers, m_body, m_commitment, m_received_at, m_chain);
      insert into receipts (channel_id, seq, commitment, received_at, chain)
        select * from unnest(m_channel, m_seq, m_commitment, m_received_at, m_chain);
      perform pg_notify('bc_commit', p) from unnest(notices) as p;
    end $$`.execute(db);
  await sql`
    create trigger formal_records_no_truncate before truncate on formal_records
    for each statement execute function formal_records_append_only()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists formal_records_no_truncate on formal_records`.execute(db);
  await sql`drop function if exists bc_commit_batch(bytea[], bigint[], bytea[], text[], jsonb[], text[], bytea[], bigint[], bytea[], bytea[], bigint[], bytea[], bigint[], bytea[], text[])`.execute(db);
}
