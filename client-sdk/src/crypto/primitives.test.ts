import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromBase64Url, toBase64Url, utf8 } from '../protocol/index.js';
import { sodium, sodiumReady } from '../sodium.js';
import { frankingCommitment, verifyOpening } from './franking.js';
import { hkdf, kdfExpand, kdfExtract } from './kdf.js';
import { generateMemberKeys, parseMemberKeys, serializeMemberKeys } from './member-keys.js';
import { pad, paddedLength, unpad } from './padding.js';
import {
  addOneTimePrekeys,
  createPrekeyState,
  currentSignedPrekey,
  rotateSignedPrekey,
  unusedOneTimePrekeys,
  verifySignedPrekey,
} from './prekeys.js';
import { RECEIPT_CHAIN_GENESIS, nextReceiptChain } from './receipt-chain.js';
import { safetyNumber } from './safety-number.js';
import { signConsent, signGroupChange, signGrant, signRedeem, verifyConsent, verifyGrant, verifyGroupChange, verifyRedeem, type ConsentStatement } from './signatures.js';
import { SignedPrekey, OneTimePrekey } from '../protocol/index.js';

const channel = new Uint8Array(16).fill(5);

beforeAll(async () => {
  await sodiumReady();
});

describe('member keys', () => {
  it('serialise and parse back, and refuse a key pair that does not match', async () => {
    const keys = await generateMemberKeys();
    expect(await parseMemberKeys(serializeMemberKeys(keys))).toEqual(keys);
    const other = await generateMemberKeys();
    await expect(parseMemberKeys({ ...keys, dhPublic: other.dhPublic })).rejects.toThrow();
  });
});

describe('kdf', () => {
  it('separates outputs by purpose and by input', () => {
    const ikm = new Uint8Array(32).fill(1);
    const a = hkdf(ikm, new Uint8Array(0), 'backchannel/a/v1', 32);
    const b = hkdf(ikm, new Uint8Array(0), 'backchannel/b/v1', 32);
    expect(toBase64Url(a)).not.toBe(toBase64Url(b));
    expect(toBase64Url(hkdf(ikm, new Uint8Array(0), 'backchannel/a/v1', 32))).toBe(toBase64Url(a));
    const long = kdfExpand(kdfExtract(new Uint8Array(32), ikm), 'x', 200);
    expect(long.length).toBe(200);
    expect(toBase64Url(long.subarray(0, 64))).toBe(toBase64Url(kdfExpand(kdfExtract(new Uint8Array(32), ikm), 'x', 64)));
  });
});

describe('prekeys', () => {
  it('produce protocol-shaped prekeys whose signature binds channel, member and id', async () => {
    const keys = await generateMemberKeys();
    const r = await rotateSignedPrekey(createPrekeyState(), keys, channel, Date.now());
    const o = await addOneTimePrekeys(r.state, 3);
    expect(SignedPrekey.safeParse(r.published).success).toBe(true);
    for (const p of o.published) expect(OneTimePrekey.safeParse(p).success).toBe(true);
    expect(currentSignedPrekey(o.state)).toEqual(r.published);
    expect(unusedOneTimePrekeys(o.state)).toEqual(o.published);
    expect(await verifySignedPrekey(keys.signPublic, channel, keys.dhPublic, r.published)).toBe(true);
    expect(await verifySignedPrekey(keys.signPublic, new Uint8Array(16), keys.dhPublic, r.published)).toBe(false);
    expect(await verifySignedPrekey(keys.signPublic, channel, keys.dhPublic, { ...r.published, id: 2 })).toBe(false);
    const other = await generateMemberKeys();
    expect(await verifySignedPrekey(keys.signPublic, channel, other.dhPublic, r.published)).toBe(false);
    expect(await verifySignedPrekey(keys.signPublic, channel, keys.dhPublic, { ...r.published, sig: 'AAAA' })).toBe(false);
  });
});

describe('signatures', () => {
  it('verify group changes, invitations, redemptions and consents, and fail on any change or on another kind', async () => {
    const keys = await generateMemberKeys();
    const change = { channel, epoch: 4, prev: new Uint8Array(32).fill(1), change: utf8('{"kind":"dissolve"}') };
    const sig = await signGroupChange(change, keys.signSecret);
    expect(await verifyGroupChange(change, sig, keys.signPublic)).toBe(true);
    expect(await verifyGroupChange({ ...change, epoch: 5 }, sig, keys.signPublic)).toBe(false);
    expect(await verifyGroupChange({ ...change, prev: new Uint8Array(32).fill(2) }, sig, keys.signPublic)).toBe(false);
    expect(await verifyGroupChange({ ...change, channel: new Uint8Array(16).fill(9) }, sig, keys.signPublic)).toBe(false);
    const grant = { channel, inviteKey: new Uint8Array(32).fill(5), role: 'party', expiresAt: 7 };
    const gsig = await signGrant(grant, keys.signSecret);
    expect(await verifyGrant(grant, gsig, keys.signPublic)).toBe(true);
    expect(await verifyGrant({ ...grant, role: 'observer' }, gsig, keys.signPublic)).toBe(false);
    const redeem = { channel, inviteKey: keys.signPublic, memberKey: new Uint8Array(32).fill(6), memberSignKey: new Uint8Array(32).fill(7) };
    const rsig = await signRedeem(redeem, keys.signSecret);
    expect(await verifyRedeem(redeem, rsig, keys.signPublic)).toBe(true);
    expect(await verifyRedeem({ ...redeem, memberSignKey: new Uint8Array(32).fill(8) }, rsig, keys.signPublic)).toBe(false);
    expect(await verifyGrant(grant, sig, keys.signPublic)).toBe(false);
    const consent: ConsentStatement = {
      channel,
      proposalId: new Uint8Array(16).fill(3),
      contentHash: new Uint8Array(32).fill(4),
      kind: 'excerpt',
      rangeFrom: 3,
      rangeTo: 9,
      releaseAt: 0,
      epoch: 3,
      stateHash: new Uint8Array(32).fill(5),
    };
    const csig = await signConsent(consent, toBase64Url(fromBase64Url(keys.signSecret)!));
    expect(await verifyConsent(consent, csig, keys.signPublic)).toBe(true);
    expect(await verifyConsent({ ...consent, kind: 'communique' }, csig, keys.signPublic)).toBe(false);
    expect(await verifyConsent({ ...consent, releaseAt: 1 }, csig, keys.signPublic)).toBe(false);
    expect(await verifyConsent({ ...consent, epoch: 4 }, csig, keys.signPublic)).toBe(false);
    expect(await verifyConsent({ ...consent, stateHash: new Uint8Array(32).fill(6) }, csig, keys.signPublic)).toBe(false);
    expect(await verifyGroupChange(change, csig, keys.signPublic)).toBe(false);
  });
});

describe('franking', () => {
  it('opens only with the right key and plaintext', () => {
    const kf = sodium.randombytes_buf(32);
    const c = frankingCommitment(kf, utf8('said'));
    expect(verifyOpening(c, kf, utf8('said'))).toBe(true);
    expect(verifyOpening(c, kf, utf8('sad'))).toBe(false);
    expect(verifyOpening(c, sodium.randombytes_buf(32), utf8('said'))).toBe(false);
  });
});

describe('padding', () => {
  it('round-trips any plaintext and only reveals its bucket', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), (bytes) => {
        const padded = pad(bytes);
        expect(padded.length).toBe(paddedLength(bytes.length));
        expect(toBase64Url(unpad(padded))).toBe(toBase64Url(bytes));
      }),
      { numRuns: 200 },
    );
    expect([0, 255, 256, 1023, 4000, 16383, 16384, 30000].map(paddedLength)).toEqual([256, 256, 1024, 1024, 4096, 16384, 32768, 32768]);
  });
});

describe('receipt chain', () => {
  it('is BLAKE2b-256 over prev ‖ seq (8 BE) ‖ commitment ‖ receivedAt (8 BE)', () => {
    const c = new Uint8Array(32).fill(0xab);
    const seqBytes = new Uint8Array(8);
    new DataView(seqBytes.buffer).setBigUint64(0, 1n);
    const at = new Uint8Array(8);
    new DataView(at.buffer).setBigUint64(0, 1_700_000_000_000n);
    const expected = sodium.crypto_generichash(32, new Uint8Array([...RECEIPT_CHAIN_GENESIS, ...seqBytes, ...c, ...at]), null);
    expect(toBase64Url(nextReceiptChain(RECEIPT_CHAIN_GENESIS, 1, c, 1_700_000_000_000))).toBe(toBase64Url(expected));
  });
});

describe('safety numbers', () => {
  it('are 60 digits in groups of five, the same from both sides, different per key', async () => {
    const [a, b, c] = [await generateMemberKeys(), await generateMemberKeys(), await generateMemberKeys()];
    const ab = await safetyNumber({ key: a.dhPublic, signKey: a.signPublic }, { key: b.dhPublic, signKey: b.signPublic });
    expect(ab).toMatch(/^\d{5}( \d{5}){11}$/);
    expect(await safetyNumber({ key: b.dhPublic, signKey: b.signPublic }, { key: a.dhPublic, signKey: a.signPublic })).toBe(ab);
    expect(await safetyNumber({ key: a.dhPublic, signKey: a.signPublic }, { key: c.dhPublic, signKey: b.signPublic })).not.toBe(ab);
  });
});
