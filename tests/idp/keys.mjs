// Signing keys for the test IdP: proves nothing by itself; generates fresh key pairs with node:crypto
// and exports them as private JWKs with a unique `kid`, the form oidc-provider's `jwks` option takes.
// Keys live only in memory for the life of the process: nothing is written to disk.

import { generateKeyPairSync, randomUUID } from 'node:crypto';

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
  let pair;
  if (alg === 'RS256') {
    // 2048 bits: the RFC 7518 §3.3 minimum, and quick to generate (a rotation must not stall the test).
    pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else {
    throw new Error(`unsupported signing alg ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
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
