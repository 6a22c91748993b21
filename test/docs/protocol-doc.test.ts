import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ClientFrame, ERROR_CODES, RelayFrame } from '@backchannel/client-sdk/protocol';

const doc = await readFile(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The literal `type` of each member of a discriminated union. */
function frameTypes(union: { options: readonly { shape: { type: { value: unknown } } }[] }): string[] {
  return union.options.map((o) => String(o.shape.type.value));
}

describe('docs/protocol.md matches the protocol schemas', () => {
  it.each(frameTypes(ClientFrame))('documents the client frame %s', (type) => {
    expect(doc).toContain(`\`${type}\``);
  });
  it.each(frameTypes(RelayFrame))('documents the relay frame %s', (type) => {
    expect(doc).toContain(`\`${type}\``);
  });
  it.each([...ERROR_CODES])('lists the error code %s', (code) => {
    expect(doc).toContain(`\`${code}\``);
  });
});
