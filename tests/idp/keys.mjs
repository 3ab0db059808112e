// Signing keys for the test IdP: proves nothing by itself; generates fresh key pairs with node:crypto
// and exports them as private JWKs with a unique `kid`, the form oidc-provider's `jwks` option takes.
// Keys live only in memory for the life of the process: nothing is written to disk.

import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';

/** Algorithms the IdP can sign access tokens with (one key family each, RFC 7518 §3.1). */
export const SIGNING_ALGS = Object.freeze(['RS256', 'ES256']);

/**
 * Generates one private signing JWK.
 *
 * @param {'RS256'|'ES256'} alg the JWS algorithm the key is for
 * @param {string} [generation] a label folded into the kid so logs show which rotation made it
 * @returns {object} a private JWK with `kid`, `alg` and `use: "sig"`
 */
export function generateSigningJwk(alg, generation = '0') {
  // The pair comes back PEM-encoded and the JWK is exported from a key object of our own. Exporting
  // a JWK straight from the generated KeyObject can deadlock Node 20 (seen on 20.20.2: the export
  // holds the key's mutex while it allocates, the allocation runs a GC, and the GC destroys the
  // finished generation job, whose destructor takes the same mutex: the process hangs in
  // futex_wait forever). A key object the job never saw shares no mutex with it.
  const encoding = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } };
  let pem;
  if (alg === 'RS256') {
    // 2048 bits: the RFC 7518 §3.3 minimum, and quick to generate (a rotation must not stall the test).
    pem = generateKeyPairSync('rsa', { modulusLength: 2048, ...encoding }).privateKey;
  } else if (alg === 'ES256') {
    pem = generateKeyPairSync('ec', { namedCurve: 'P-256', ...encoding }).privateKey;
  } else {
    throw new Error(`unsupported signing alg ${alg}`);
  }
  const jwk = createPrivateKey(pem).export({ format: 'jwk' });
  // A random kid per key: a rotation must publish a kid the resource server has never seen, so
  // its unknown-kid refetch path is what makes the new token verifiable.
  const kid = `${alg.toLowerCase()}-g${generation}-${randomUUID().slice(0, 8)}`;
  return { ...jwk, kid, alg, use: 'sig' };
}

/**
 * One key per supported algorithm, all of the same generation.
 *
 * @param {string} generation label for the kids
 * @returns {object[]} private JWKs, RS256 first
 */
export function generateKeyGeneration(generation) {
  return SIGNING_ALGS.map((alg) => generateSigningJwk(alg, generation));
}
