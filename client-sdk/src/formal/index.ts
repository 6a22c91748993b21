export { disclosureContentHash, contentRange } from './content-hash.js';
export { Checkpoint, FormalLog, FormalRecord, RecordItem, recordHash, type UnsignedRecord } from './record.js';
export { verifyLog, verifyRecord, type ProvenRecord, type HeadCosigned, type Verification, type VerifyOptions } from './verify.js';
