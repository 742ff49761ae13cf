/*
 * keytrail: fast Ed25519 verification for one public key (internal to
 * libkeytrail; not installed).
 *
 * Every submission to the log carries a signature that the log checks
 * before it accepts the entry, and with Ed25519 keys that check was the
 * largest single cost of an append (docs/performance.md).  Verification
 * computes [S]B - [k]A and compares its encoding with R (RFC 8032 section
 * 5.1.7, the equation without the cofactor, as OpenSSL checks it).  B is
 * fixed, and so is A for a registered key: this module keeps a table of
 * multiples for each (32 rows of 8 points, 30 KiB), so a check is about
 * 128 point additions and one inversion, no doublings worth counting.
 *
 * It accepts exactly the signatures OpenSSL's Ed25519 accepts for the same
 * key and message: S must be below the group order L, R is compared as
 * bytes with the canonical encoding of the result, and the key must have
 * decoded to a point.  A key whose encoding is not canonical (y >= p, or
 * x = 0 with the sign bit set) gets no table, and the caller keeps
 * OpenSSL for it.  test_edverify and fuzz_edverify hold it to OpenSSL's
 * answers.  Verification needs no secret, so nothing here is
 * constant-time.
 *
 * An edv is immutable once built and reference-counted: any number of
 * threads may verify with it at once.
 */
#ifndef KT_VERIFIER_EDVERIFY_H
#define KT_VERIFIER_EDVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

struct edv;

/*
 * Builds a verifier for the 32-byte Ed25519 public key pub.  Returns
 * KT_OK and *out; KT_EINVAL when pub is not the canonical encoding of a
 * curve point (the caller then verifies through OpenSSL); KT_ENOMEM or
 * KT_EINTERNAL.  About 0.1 ms of CPU.
 */
int edv_new(const uint8_t pub[32], struct edv **out);

/* The same for an OpenSSL key, which must be Ed25519 (else KT_EINVAL). */
int edv_new_pkey(EVP_PKEY *pk, struct edv **out);

/* Takes one more reference; edv_free drops one. */
struct edv *edv_ref(struct edv *v);
void edv_free(struct edv *v);

/*
 * 1 when sig (64 bytes: R, S) is a valid Ed25519 signature of msg, 0 when
 * it is not (a wrong length included), -1 when the check could not be
 * made (out of memory): the caller then cannot tell and must refuse.
 */
int edv_verify(const struct edv *v, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen);

/*
 * For tests: the encoding of [s]B for a 32-byte little-endian scalar s
 * below L, computed through the base point's table.  KT_OK, KT_EINVAL
 * when s is not below L, KT_EINTERNAL.
 */
int edv_base_mul(const uint8_t s[32], uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
