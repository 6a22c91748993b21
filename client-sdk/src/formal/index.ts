export { disclosureContentHash, contentRange } from './content-hash.js';
export { Checkpoint, FormalLog, FormalRecord, RecordItem, RelayKeyLink, recordHash, type UnsignedRecord } from './record.js';
export { HANDOVER_GRACE_MS, verifyLog, verifyRecord, type ProvenRecord, type HeadCosigned, type Verification, type VerifyOptions } from './verify.js';
