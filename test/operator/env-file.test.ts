import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../server/src/config.js';
import { parseEnvFile } from '../../server/src/commands/env-file.js';

describe('.env parsing', () => {
  it('reads KEY=VALUE lines with export, comments and both kinds of quotes', () => {
    const text = [
      '# a comment',
      '',
      'BACKCHANNEL_PORT=9000',
      'export BACKCHANNEL_HOST = 0.0.0.0   # trailing comment',
      'DATABASE_URL="postgres://u:p#w@h/db"  # the # inside quotes stays',
      "BACKCHANNEL_ORIGINS='https://a.example, https://b.example'",
      'ESCAPED="line1\\nline2 \\"quoted\\""',
      'LITERAL=\'no \\n escapes\'',
      'HASH_IN_VALUE=a#b',
      'EMPTY=',
    ].join('\r\n');
    expect(parseEnvFile(text)).toEqual({
      BACKCHANNEL_PORT: '9000',
      BACKCHANNEL_HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u:p#w@h/db',
      BACKCHANNEL_ORIGINS: 'https://a.example, https://b.example',
      ESCAPED: 'line1\nline2 "quoted"',
      LITERAL: 'no \\n escapes',
      HASH_IN_VALUE: 'a#b',
      EMPTY: '',
    });
  });

  it('names the line of a malformed entry and never echoes its content', () => {
    const cases: [string, RegExp][] = [
      ['A=1\nno equals sign here', /^invalid \.env line 2: expected KEY=VALUE$/],
      ['=value', /^invalid \.env line 1: /],
      ['BAD-NAME=x', /^invalid \.env line 1: the name/],
      ['DATABASE_URL="postgres://u:hunter2@h/db', /^invalid \.env line 1: unterminated/],
      ["K='a' extra", /^invalid \.env line 1: unexpected text/],
    ];
    for (const [text, message] of cases) {
      let caught: unknown;
      try {
        parseEnvFile(text);
      } catch (err) {
        caught = err;
      }
      expect(caught, text).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).not.toContain('hunter2');
    }
  });
});
