/**
 * The Backchannel wire protocol v2: every frame as a zod schema, the error codes, the limits and
 * the byte encoding. The relay and the SDK both import this module; it depends on zod only.
 */
export * from './encoding.js';
export * from './errors.js';
export * from './fields.js';
export * from './charter.js';
export * from './frames.js';
export * from './group.js';
export * from './limits.js';
export * from './auth.js';
export * from './disclosure.js';
