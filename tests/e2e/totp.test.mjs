// The tests' own TOTP authenticator against the RFC 6238 (appendix B) SHA-1
// vectors, so a failing proof-up cannot be blamed on the test's arithmetic.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { base32Decode, totp } from './lib.mjs';

// base32 of the ASCII key "12345678901234567890".
const SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

test('base32 decoding', () => {
  assert.equal(base32Decode(SECRET).toString('ascii'), '12345678901234567890');
  assert.equal(base32Decode('mzxw6ytb oi======').toString('ascii'), 'foobar');
  assert.throws(() => base32Decode('A1'), /not base32/);
});

test('RFC 6238 SHA-1 vectors', () => {
  for (const [time, code] of [
    [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
    [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130'],
  ]) {
    assert.equal(totp(SECRET, time, { digits: 8 }), code, `T=${time}`);
    assert.equal(totp(SECRET, time), code.slice(2), `T=${time}, 6 digits`);
  }
});
