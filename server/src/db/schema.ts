import type { ColumnType, Generated, Selectable } from 'kysely';

/** bigint columns come back from pg as strings; we write numbers. */
type BigIntColumn = ColumnType<string, number | bigint, number | bigint>;
type CreatedAt = ColumnType<Date, never, never>;

/** Row types of every table, in one place (kysely's `Database` interface). */
export interface Database {
  relay_keys: {
    id: Generated<number>;
    kind: 'auth' | 'record';
    public_key: Uint8Array;
    secret_key: Uint8Array;
    created_at: CreatedAt;
    retired_at: ColumnType<Date | null, never, Date | null>;
    /** For a record key: the retiring key's signature handing over to it (`RelayKeyHandover`). */
    handover: ColumnType<unknown, string | null | undefined, never>;
  };
  channels: {
    id: Uint8Array;
    status: 'forming' | 'open' | 'dissolved';
    charter: ColumnType<unknown, string, string>;
    roster_version: number;
    head_seq: BigIntColumn;
    chain: Uint8Array;
    /** The verified group state (`GroupLogState`); null for a channel made before the group log. */
    group_state: ColumnType<unknown, string | undefined, string>;
    created_at: CreatedAt;
  };
  members: {
    channel_id: Uint8Array;
    member_key: Uint8Array;
    sign_key: Uint8Array;
    role: 'host' | 'party' | 'observer';
    status: 'pending' | 'active' | 'left' | 'removed';
    since_version: number;
    /** A pending member's redeemed invitation (`Seat`). */
    seat: ColumnType<unknown, string | null | undefined, string | null>;
    cursor_seq: ColumnType<string, number | undefined, number>;
    joined_at: CreatedAt;
  };
  group_log: {
    channel_id: Uint8Array;
    epoch: number;
    entry: ColumnType<unknown, string, never>;
    state_hash: Uint8Array;
  };
  group_signatures: {
    channel_id: Uint8Array;
    proposal_hash: Uint8Array;
    proposal: ColumnType<unknown, string, string>;
    signer_key: Uint8Array;
    sig: Uint8Array;
  };
  invites: {
    invite_key: Uint8Array;
    grant: ColumnType<unknown, string, never>;
    channel_id: Uint8Array;
    role: 'party' | 'observer';
    expires_at: BigIntColumn;
    redeemed_by: Uint8Array | null;
  };
  signed_prekeys: {
    member_key: Uint8Array;
    channel_id: Uint8Array;
    prekey_id: BigIntColumn;
    prekey: Uint8Array;
    sig: Uint8Array;
  };
  one_time_prekeys: {
    member_key: Uint8Array;
    channel_id: Uint8Array;
    prekey_id: BigIntColumn;
    prekey: Uint8Array;
  };
  messages: {
    channel_id: Uint8Array;
    seq: BigIntColumn;
    sender_key: Uint8Array;
    client_msg_id: string;
    headers: ColumnType<Record<string, string>, string, never>;
    body: string;
    commitment: Uint8Array;
    received_at: BigIntColumn;
    chain: Uint8Array;
  };
  expiry_notices: {
    channel_id: Uint8Array;
    sender_key: Uint8Array;
    client_msg_id: string;
  };
  disclosures: {
    channel_id: Uint8Array;
    proposal_id: Uint8Array;
    kind: 'communique' | 'excerpt';
    content_hash: Uint8Array;
    range_from: BigIntColumn;
    range_to: BigIntColumn;
    release_at: BigIntColumn;
    proposer_key: Uint8Array;
    stage: 'proposed' | 'consented' | 'scheduled' | 'published' | 'vetoed' | 'withdrawn';
    content: ColumnType<unknown, string | null, string | null>;
    record_index: number | null;
    created_at: CreatedAt;
  };
  disclosure_consents: {
    channel_id: Uint8Array;
    proposal_id: Uint8Array;
    signer_key: Uint8Array;
    sig: Uint8Array;
  };
  formal_records: {
    channel_id: Uint8Array;
    idx: number;
    record: ColumnType<unknown, string, never>;
    hash: Uint8Array;
    published_at: BigIntColumn;
  };
  formal_checkpoints: {
    channel_id: Uint8Array;
    idx: number;
    signer_key: Uint8Array;
    checkpoint: ColumnType<unknown, string, never>;
  };
  receipts: {
    channel_id: Uint8Array;
    seq: BigIntColumn;
    commitment: Uint8Array;
    received_at: BigIntColumn;
    chain: Uint8Array;
  };
}

/** A member row as read. */
export type MemberRow = Selectable<Database['members']>;
/** A channel row as read. */
export type ChannelRow = Selectable<Database['channels']>;
