/*
 * keytrail signer: fast ECDSA P-256 verification for one public key.
 *
 * The signer checks every signature the HSM returns before it hands it out
 * (docs/hsm.md).  For P-256 that check is an ECDSA verification, the
 * signer's largest cost after the HSM's own: u1*G + u2*Q, where OpenSSL
 * multiplies G through a precomputed table but Q, the public key, point by
 * point.  A signing key's Q never changes, so this module builds a table
 * for Q once (an OpenSSL group whose generator is Q, with its
 * precomputation) and verifies with two table multiplications, about half
 * the time of EVP_PKEY_verify() on this machine's OpenSSL 3.0.
 *
 * It implements the verification equation of FIPS 186-5 section 6.4.2 on
 * OpenSSL's point and bignum arithmetic, and nothing else: it accepts
 * exactly the signatures EVP_PKEY_verify() accepts for the same key and
 * digest (DER that decodes to a pair and re-encodes to the same bytes,
 * 0 < r, s < n), which test_ecverify and the fuzz target check against
 * OpenSSL on valid, altered and malformed signatures.  Verification needs
 * no secret, so nothing here is constant-time.
 *
 * An ecv is immutable once built: any number of threads may verify with
 * it at once.  It holds about 150 KiB (the table).  Only P-256 keys are
 * taken; P-384 in OpenSSL 3.0 has no fast path for a table of its own
 * (measured slower than EVP), and the caller keeps EVP for it.
 */
#ifndef KT_SIGNER_ECVERIFY_H
#define KT_SIGNER_ECVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ecv;

/*
 * Builds a verifier for pub, which must be an EC key on P-256 (KT_EINVAL
 * otherwise, and KT_ENOMEM or KT_EINTERNAL when OpenSSL fails).  About
 * 20 ms of CPU: build it once per key, not per signature.
 */
int ecv_new(EVP_PKEY *pub, struct ecv **out);

/*
 * 1 when sig (DER ECDSA-Sig-Value) is a valid signature of the digest
 * (the hash's output; longer than 32 bytes it is truncated to its leftmost
 * 256 bits, as ECDSA does), 0 when it is not, -1 when OpenSSL failed
 * (out of memory): the caller then cannot tell and must not use sig.
 */
int ecv_verify(const struct ecv *v, const uint8_t *digest, size_t dlen,
    const uint8_t *sig, size_t siglen);

void ecv_free(struct ecv *v);

#ifdef __cplusplus
}
#endif

#endif
