/*
 * keytrail: the public keys that sign artifacts, and checking their
 * signatures (DESIGN.md section 4, "What a signature covers").
 *
 * ECDSA and RSA-PSS keys sign the SHA-256 digest of the artifact
 * (pre-hashed), so `openssl dgst -sha256 -verify pub.pem -signature f.sig f`
 * verifies them; Ed25519 keys sign the 32 digest bytes.  Supported keys,
 * with the names log entries use in "alg": ed25519, ecdsa-p256-sha256,
 * ecdsa-p384-sha256, rsa3072-pss-sha256, rsa4096-pss-sha256 (PSS with
 * MGF1-SHA-256 and a 32-byte salt).  Anything weaker is refused.
 */
#ifndef KEYTRAIL_SIG_H
#define KEYTRAIL_SIG_H

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest DER SubjectPublicKeyInfo accepted (RSA-4096 is about 550). */
#define KT_SPKI_MAX 2048
/* Largest signature (RSA-4096: 512 bytes). */
#define KT_SIG_MAX 1024
/* Longest algorithm name, NUL included. */
#define KT_ALG_NAME_MAX 32

/* A parsed public key; immutable, so it may be shared between threads. */
struct kt_pubkey;

/*
 * Parses a DER SubjectPublicKeyInfo, which must be in canonical DER (the
 * key ID hashes these bytes) and of a supported algorithm.  Returns KT_OK
 * and *out (free with kt_pubkey_free), KT_EPARSE (not canonical DER),
 * KT_EPOLICY (unsupported or weak: P-224, RSA-2048, ...), KT_ETOOBIG or
 * KT_ENOMEM.
 */
int kt_pubkey_parse(
    const uint8_t *spki, size_t len, struct kt_pubkey **out) KT_MUST_CHECK;
/* Takes one more reference; kt_pubkey_free drops one. */
struct kt_pubkey *kt_pubkey_ref(struct kt_pubkey *k);
void kt_pubkey_free(struct kt_pubkey *k);
/* The algorithm name ("ecdsa-p256-sha256", ...); owned by k. */
const char *kt_pubkey_alg(const struct kt_pubkey *k);
/* The key ID: lowercase hex SHA-256 of the DER (65 bytes with NUL). */
const char *kt_pubkey_id(const struct kt_pubkey *k);

/*
 * Checks sig over the 32-byte SHA-256 digest with k.  Returns KT_OK or
 * KT_EVERIFY (also for a signature of the wrong size).
 */
int kt_pubkey_verify(const struct kt_pubkey *k, const uint8_t digest[32],
    const uint8_t *sig, size_t siglen) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
