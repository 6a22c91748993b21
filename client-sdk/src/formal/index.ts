export { disclosureContentHash, contentRange } from './content-hash.js';
export { FormalLog, FormalRecord, RecordItem, recordHash, type UnsignedRecord } from './record.js';
export { verifyLog, verifyRecord, type ProvenRecord, type Verification, type VerifyOptions } from './verify.js';
