/*
 * keytrail: strict base64 (RFC 4648 section 4) and lowercase hex.
 *
 * Decoders accept only the canonical encoding: the standard alphabet,
 * '=' padding to a multiple of four, zero padding bits, no whitespace.
 * Anything else is KT_EPARSE, so every value has exactly one spelling.
 */
#ifndef KEYTRAIL_ENCODING_H
#define KEYTRAIL_ENCODING_H

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Length of the base64 encoding of n bytes (without a NUL). */
#define KT_B64_ENCLEN(n) ((((n) + 2) / 3) * 4)
/* Upper bound on the decoded length of n base64 characters. */
#define KT_B64_DECMAX(n) (((n) / 4) * 3)

/*
 * Encodes in[0..n) as base64 into out, which must hold KT_B64_ENCLEN(n) + 1
 * bytes (a NUL is written).  outcap is its size.  Returns the encoded length
 * or KT_ETOOBIG if outcap is too small (out then holds nothing useful).
 */
long kt_b64_encode(
    const uint8_t *in, size_t n, char *out, size_t outcap) KT_MUST_CHECK;

/* Appends the base64 of in[0..n) to b. */
int kt_b64_append(struct kt_buf *b, const uint8_t *in, size_t n) KT_MUST_CHECK;

/*
 * Decodes canonical base64 in[0..n) into out (capacity outcap).  Stores the
 * decoded length in *outlen.  Returns KT_OK, KT_EPARSE (non-canonical or
 * invalid), or KT_ETOOBIG (out too small).  Writes nothing to *outlen on
 * failure; out may have been scribbled on.
 */
int kt_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen) KT_MUST_CHECK;

/*
 * Decodes canonical base64 that must decode to exactly want bytes.
 * KT_EPARSE otherwise.
 */
int kt_b64_decode_exact(
    const char *in, size_t n, uint8_t *out, size_t want) KT_MUST_CHECK;

/*
 * Appends s[0..n) to b as a JSON string, escaped exactly as jansson
 * escapes it, which is the canonical entry encoding: \" \\ \b \f \n \r
 * \t, \u00XX (uppercase) for the other bytes below 0x20, and UTF-8 as
 * is.  Returns KT_OK, KT_EINVAL (s is not valid UTF-8), KT_ETOOBIG or
 * KT_ENOMEM; b is unchanged on failure.
 */
int kt_json_quote(struct kt_buf *b, const char *s, size_t n) KT_MUST_CHECK;

/* Encodes in[0..n) as lowercase hex into out (2n+1 bytes, NUL written). */
void kt_hex_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes hex in[0..2*want) that must be exactly 2*want lowercase hex
 * digits.  Returns KT_OK or KT_EPARSE; writes out only on success.
 */
int kt_hex_decode_exact(
    const char *in, size_t n, uint8_t *out, size_t want) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
