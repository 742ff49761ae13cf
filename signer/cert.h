/*
 * keytrail signer: X.509 for the signing keys (DESIGN.md section 4, the
 * "certificate" key action): reading a certificate issued for a key, and
 * building a PKCS#10 certification request (RFC 2986) whose signature the
 * HSM makes.
 *
 * This module is pure: it parses and encodes with OpenSSL, but never
 * touches the HSM, the network or a file, never logs and keeps no global
 * state.  The HSM step sits between cert_csr_new() and cert_csr_finish():
 * the caller signs cert_csr_message() with the key (hsm_sign()) and hands
 * the signature back.
 *
 * Subjects are written as a simple comma-separated list of attributes,
 * most significant first as they are encoded: "C=DE,O=Example,CN=build".
 * The attribute types are C, ST, L, O, OU and CN; a value is 1 to 64
 * printable ASCII bytes without , = + \ " < > ; # and without leading or
 * trailing space; C is two capital letters.  There is no escaping: a name
 * that needs it is refused rather than guessed at.
 *
 * Errors.  Functions return KT_OK or a negative KT_E* code; those that
 * take err/errlen write a one-line reason there on failure (NUL-terminated,
 * truncated to errlen; err may be NULL).  Outputs are written only on
 * success.
 */
#ifndef KT_SIGNER_CERT_H
#define KT_SIGNER_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"
#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest DER certificate accepted, in bytes. */
#define CERT_DER_MAX (16 * 1024)
/* Longest subject text cert_csr_new() accepts, in bytes. */
#define CERT_SUBJECT_MAX 512
/* Most attributes in a subject cert_csr_new() accepts. */
#define CERT_RDNS_MAX 16
/* Longest attribute value in a subject, in bytes (RFC 5280 ub-name). */
#define CERT_VALUE_MAX 64
/* Room for a certificate's subject as text (struct cert_info). */
#define CERT_SUBJECT_TEXT_MAX 1024
/* Largest to-be-signed part of a request (hsm_sign()'s Ed25519 limit). */
#define CERT_TBS_MAX HSM_MSG_MAX
/* Largest PEM request cert_csr_finish() writes. */
#define CERT_PEM_MAX (16 * 1024)
/*
 * Times a certificate's notAfter may take: 1970-01-01T00:00:01Z to
 * 9999-12-31T23:59:59Z in Unix seconds, the range the policy engine takes.
 */
#define CERT_TIME_MIN INT64_C(1)
#define CERT_TIME_MAX INT64_C(253402300799)

/* What the log records about a certificate. */
struct cert_info {
	int64_t not_before; /* Unix seconds; may be before 1970 */
	int64_t not_after;  /* Unix seconds, CERT_TIME_MIN..CERT_TIME_MAX */
	/*
	 * The subject as "K=V,K=V" in encoding order, with RFC 4514 escapes
	 * (bytes above 0x7f as \XX): plain ASCII whatever the certificate
	 * holds.
	 */
	char subject[CERT_SUBJECT_TEXT_MAX + 1];
};

/*
 * Parses der[0..len), which must be one X.509 certificate in canonical DER
 * (decoding and encoding again gives exactly these bytes), and checks that
 * its public key is spki[0..spkilen) (DER compared byte for byte).  Neither
 * the issuer's signature nor the validity is checked: the certificate is
 * recorded as a fact about the key, and an expired one stops the key
 * signing.
 *
 * Returns KT_OK and fills *out; KT_ETOOBIG if len > CERT_DER_MAX or the
 * subject is longer than CERT_SUBJECT_TEXT_MAX as text; KT_EPARSE if the
 * bytes are not a canonical DER certificate or a time cannot be read;
 * KT_EPOLICY if notAfter is outside CERT_TIME_MIN..CERT_TIME_MAX; KT_EVERIFY
 * if the certificate is for another key; KT_ENOMEM.
 */
int cert_parse(const uint8_t *der, size_t len, const uint8_t *spki,
    size_t spkilen, struct cert_info *out, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * Checks subject text s[0..len) against the syntax described at the top of
 * this file.  Returns KT_OK, KT_ETOOBIG (len > CERT_SUBJECT_MAX or more than
 * CERT_RDNS_MAX attributes) or KT_EPARSE, with the reason in err.
 */
int cert_subject_check(
    const char *s, size_t len, char *err, size_t errlen) KT_MUST_CHECK;

/* A certification request being built; opaque. */
struct cert_csr;

/*
 * Starts a PKCS#10 request (version 1, no attributes) for the key whose
 * DER SubjectPublicKeyInfo is spki[0..spkilen) and whose algorithm is alg,
 * with subject s[0..len) (checked as cert_subject_check() does).  On
 * success *out owns the request; free it with cert_csr_free().
 *
 * Returns KT_OK; KT_EPARSE or KT_ETOOBIG for a bad subject; KT_EINVAL if
 * spki is not a public key of alg or alg is unknown; KT_ENOMEM.
 */
int cert_csr_new(const uint8_t *spki, size_t spkilen, enum hsm_alg alg,
    const char *s, size_t len, struct cert_csr **out, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * What the key must sign for csr, as hsm_sign() takes it: the SHA-256
 * digest of the request's to-be-signed part for ECDSA and RSA-PSS keys,
 * the to-be-signed part itself (at most CERT_TBS_MAX bytes) for Ed25519.
 * Borrowed from csr.
 */
struct kt_bytes cert_csr_message(const struct cert_csr *csr);

/*
 * Completes csr with sig[0..siglen), as hsm_sign() returns it (a DER
 * ECDSA-Sig-Value, a raw RSA-PSS value, or a raw Ed25519 signature), under
 * the signature algorithm of the key: ecdsa-with-SHA256, RSASSA-PSS with
 * SHA-256, MGF1-SHA-256 and a 32-byte salt, or Ed25519.  The request is
 * then verified with its own public key, and only a request that verifies
 * is appended to pem as PEM ("-----BEGIN CERTIFICATE REQUEST-----").
 *
 * Returns KT_OK; KT_EVERIFY if the request does not verify; KT_ETOOBIG if
 * pem cannot take it; KT_EINVAL if csr was finished before; KT_ENOMEM.
 * pem is unchanged on failure, and a failed csr may be finished again
 * with another signature.
 */
int cert_csr_finish(struct cert_csr *csr, const uint8_t *sig, size_t siglen,
    struct kt_buf *pem) KT_MUST_CHECK;

/* Frees csr.  cert_csr_free(NULL) is a no-op. */
void cert_csr_free(struct cert_csr *csr);

#ifdef __cplusplus
}
#endif
#endif
