/*
 * keytrail: C2SP signed notes (c2sp.org/signed-note), verifier keys, and
 * cosignature/v1 witness signatures (c2sp.org/tlog-cosignature).
 *
 * A signed note is a text ending in a newline, a blank line, and one or
 * more signature lines "— <key name> <base64(key ID || signature)>".  Two
 * signature types are supported, both over Ed25519 keys:
 *
 *   KT_NOTE_ED25519 (0x01)  Ed25519 over the note text;
 *   KT_NOTE_COSIG_V1 (0x04) an 8-byte big-endian timestamp, then Ed25519
 *                           over "cosignature/v1\ntime <t>\n" || text.
 *
 * Parsing never trusts the text: a note means something only after
 * kt_note_verify() accepts it with keys the caller trusts.  Parsed notes
 * borrow from the caller's bytes, which must outlive them.
 *
 * Signing goes through a callback (kt_note_sign_fn) so that a key can live
 * in an HSM; kt_note_ed25519_new() makes an in-memory key for tests and
 * development.
 */
#ifndef KEYTRAIL_NOTE_H
#define KEYTRAIL_NOTE_H

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Largest signed note accepted or produced, in bytes.  C2SP requires
 * accepting 16 signatures and warns that post-quantum ones approach 5 kB:
 * 16 lines of ML-DSA-44 cosignatures (about 3.3 kB each in base64) plus a
 * checkpoint still fit.
 */
#define KT_NOTE_MAX (64 * 1024)

/*
 * Most signature lines in one note.  C2SP requires at least 16; 100 is
 * the cap of Go's golang.org/x/mod/sumdb/note, so every note the
 * reference implementation accepts is accepted here too.
 */
#define KT_NOTE_SIGS_MAX 100

/*
 * Longest decoded signature (key ID included) on any line, known key or
 * not: room for a post-quantum signature of "nearly 5 kB".
 */
#define KT_NOTE_SIGLEN_MAX 8192

/* Longest key name of a verifier key, in bytes (without a NUL). */
#define KT_NOTE_NAME_MAX 255

/* Signature types (C2SP signed-note "Signature types"). */
#define KT_NOTE_ED25519 0x01
#define KT_NOTE_COSIG_V1 0x04

/* Ed25519 key, seed and signature sizes (RFC 8032). */
#define KT_ED25519_PUB_SIZE 32
#define KT_ED25519_SEED_SIZE 32
#define KT_ED25519_SIG_SIZE 64

/* Largest cosignature/v1 timestamp (C2SP tlog-cosignature: 2^63 - 1). */
#define KT_COSIG_TIME_MAX ((uint64_t)INT64_MAX)

/*
 * A verifier key: a key name, its 32-bit key ID, a signature type and an
 * Ed25519 public key.  Plain data; nothing to free.  name is
 * NUL-terminated and namelen bytes long.
 */
struct kt_note_vkey {
	char name[KT_NOTE_NAME_MAX + 1];
	size_t namelen;
	uint32_t id;
	uint8_t type;
	uint8_t pub[KT_ED25519_PUB_SIZE];
};

/* One signature line of a parsed note; both views borrow from the note. */
struct kt_note_sig {
	struct kt_bytes name; /* the key name */
	struct kt_bytes b64;  /* base64 of key ID || signature, canonical */
	uint32_t id;	      /* the key ID (first four decoded bytes) */
};

/*
 * A parsed signed note.  text is the signed text, including its final
 * newline but not the blank line.  Everything borrows from the message
 * given to kt_note_parse().
 */
struct kt_note {
	struct kt_bytes text;
	size_t nsigs;
	struct kt_note_sig sigs[KT_NOTE_SIGS_MAX];
};

/*
 * What verification found for one trusted key: verified is 1 when a
 * signature line of this key verified; timestamp is the cosignature/v1
 * time (the latest, if the key signed more than once) and 0 for type 0x01.
 */
struct kt_note_keyresult {
	int verified;
	uint64_t timestamp;
};

/*
 * Checks that p[0..len) is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates) with no ASCII control character other than '\n', as C2SP
 * signed-note requires of the whole note.  Returns KT_OK or KT_EPARSE.
 */
int kt_note_text_check(const uint8_t *p, size_t len) KT_MUST_CHECK;

/*
 * Checks that name is a valid key name: non-empty, valid UTF-8, no
 * control characters, no Unicode space and no '+'.  Returns KT_OK or
 * KT_EPARSE.
 */
int kt_note_name_check(const uint8_t *name, size_t len) KT_MUST_CHECK;

/*
 * Computes the key ID SHA-256(name || 0x0A || type || pub)[:4] as a
 * big-endian integer.  Returns KT_OK, KT_EINVAL if namelen exceeds
 * KT_NOTE_NAME_MAX, or KT_EINTERNAL if hashing fails.  Writes *id only on
 * success.
 */
int kt_note_key_id(const char *name, size_t namelen, uint8_t type,
    const uint8_t pub[KT_ED25519_PUB_SIZE], uint32_t *id) KT_MUST_CHECK;

/*
 * Fills *out with the verifier key for name, type (KT_NOTE_ED25519 or
 * KT_NOTE_COSIG_V1) and Ed25519 public key pub, computing the key ID.
 * Returns KT_OK, or KT_EINVAL for a bad name or type.  Writes *out only
 * on success.
 */
int kt_note_vkey_init(const char *name, size_t namelen, uint8_t type,
    const uint8_t pub[KT_ED25519_PUB_SIZE],
    struct kt_note_vkey *out) KT_MUST_CHECK;

/*
 * Parses a verifier key string "<name>+<key ID, 8 lowercase hex>+<base64
 * (type || public key)>".  The type must be 0x01 or 0x04 with a 32-byte
 * key, the base64 canonical, and the key ID must match the key.  Returns
 * KT_OK, KT_EPARSE, KT_ETOOBIG (name longer than KT_NOTE_NAME_MAX) or
 * KT_EINTERNAL.  Writes *out only on success.
 */
int kt_note_vkey_parse(
    const char *s, size_t len, struct kt_note_vkey *out) KT_MUST_CHECK;

/*
 * Appends the verifier key string of k to out.  Returns KT_OK, KT_EINVAL
 * for a key that kt_note_vkey_parse() would refuse, KT_EINTERNAL, or out's
 * errors; out's contents are unchanged on failure.
 */
int kt_note_vkey_format(
    const struct kt_note_vkey *k, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Parses Go's signer key string (golang.org/x/mod/sumdb/note NewSigner)
 * "PRIVATE+KEY+<name>+<key ID>+<base64(type || 32-byte seed)>".  Type
 * 0x01 is Go's; 0x04 is accepted for cosigner keys.  The key ID must
 * match the public key derived from the seed.  On success writes the
 * verifier key to *vkey and the seed to seed, which the caller must wipe
 * (kt_wipe) when done.  Returns KT_OK, KT_EPARSE, KT_ETOOBIG, KT_ENOMEM or
 * KT_EINTERNAL.  Writes nothing on failure, and wipes its own copies of
 * the secret on every path.
 */
int kt_note_skey_parse(const char *s, size_t len, struct kt_note_vkey *vkey,
    uint8_t seed[KT_ED25519_SEED_SIZE]) KT_MUST_CHECK;

/*
 * Parses a signed note of len bytes.  Enforces: at most KT_NOTE_MAX bytes
 * (else KT_ETOOBIG), valid UTF-8 without control characters other than
 * '\n', a blank line (the last one splits text from signatures), one or
 * more signature lines of exactly "— <name> <base64>\n" with a valid key
 * name and canonical base64 of more than 4 and at most KT_NOTE_SIGLEN_MAX
 * bytes, and at most KT_NOTE_SIGS_MAX lines (else KT_ETOOBIG).  Returns
 * KT_OK, KT_EPARSE or KT_ETOOBIG.  Writes *out only on success; *out then
 * borrows from msg.  Checks no signature: see kt_note_verify().
 */
int kt_note_parse(
    const uint8_t *msg, size_t len, struct kt_note *out) KT_MUST_CHECK;

/*
 * Appends the note n in its wire form (text, blank line, signature lines)
 * to out.  For a note from kt_note_parse() this reproduces the parsed
 * message exactly.  Returns KT_OK, KT_EINVAL (no signatures, or more than
 * KT_NOTE_SIGS_MAX), or out's errors; out's contents are unchanged on
 * failure.
 */
int kt_note_format(const struct kt_note *n, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Checks every signature line of n whose (name, key ID) matches a key in
 * keys[0..nkeys); lines of other keys are ignored (C2SP signed-note).
 * Every matching line must verify, even a repeated one: a known key whose
 * signature fails makes the whole note fail.  Unlike kt_note_verify(), it
 * succeeds when no known key signed.  On KT_OK, stores the number of keys
 * that verified in *nverified and, if results is not NULL, one result per
 * key in results[0..nkeys).  Returns KT_OK, KT_EVERIFY, KT_ENOMEM,
 * KT_EINTERNAL, or KT_EINVAL for a note kt_note_parse() could not have
 * produced (bad text, too many signatures).
 */
int kt_note_check(const struct kt_note *n, const struct kt_note_vkey *keys,
    size_t nkeys, struct kt_note_keyresult *results,
    size_t *nverified) KT_MUST_CHECK;

/*
 * Verifies n as C2SP signed-note requires: kt_note_check() must pass and
 * at least one key of keys must have verified.  results is as for
 * kt_note_check() and may be NULL.  Returns KT_OK, KT_EVERIFY (also when
 * no key of keys signed), or the other errors of kt_note_check().
 */
int kt_note_verify(const struct kt_note *n, const struct kt_note_vkey *keys,
    size_t nkeys, struct kt_note_keyresult *results) KT_MUST_CHECK;

/*
 * Parses and verifies a signed note in one step (Go's note.Open).  Returns
 * the errors of kt_note_parse() and kt_note_verify().  Writes *out (which
 * borrows from msg) and results only on success; out may be NULL.
 */
int kt_note_open(const uint8_t *msg, size_t len,
    const struct kt_note_vkey *keys, size_t nkeys,
    struct kt_note_keyresult *results, struct kt_note *out) KT_MUST_CHECK;

/*
 * Signs msg[0..len) with Ed25519, writing the 64-byte signature to sig.
 * Returns KT_OK or a negative KT_E* code.  ctx is the signer's own state
 * (an HSM session, or a struct kt_note_ed25519).
 */
typedef int (*kt_note_sign_fn)(void *ctx, const uint8_t *msg, size_t len,
    uint8_t sig[KT_ED25519_SIG_SIZE]);

/*
 * A key that can sign: its verifier key (name, ID, type, public key) and
 * the callback that produces signatures.  The caller owns ctx.
 */
struct kt_note_signer {
	struct kt_note_vkey key;
	kt_note_sign_fn sign;
	void *ctx;
};

/*
 * Appends one signature line "— <name> <base64>\n" for text[0..len) made
 * by s.  For a KT_NOTE_COSIG_V1 key the line is a cosignature/v1 with the
 * given timestamp (at most KT_COSIG_TIME_MAX); for KT_NOTE_ED25519
 * timestamp must be 0.  The text must be non-empty, end in '\n' and pass
 * kt_note_text_check().  Each signature is verified with s->key.pub
 * before it is written, so a faulty signer never yields a bad line.
 * Returns KT_OK, KT_EINVAL, KT_EVERIFY (the signer's signature does not
 * verify), the callback's error (KT_EINTERNAL if it returned a positive
 * value), KT_ENOMEM, or out's errors; out's contents are unchanged on
 * failure.
 */
int kt_note_sign_line(const uint8_t *text, size_t len,
    const struct kt_note_signer *s, uint64_t timestamp,
    struct kt_buf *out) KT_MUST_CHECK;

/*
 * Appends a complete signed note: text[0..len), a blank line and one
 * signature line per signer in signers[0..nsigners) (1 to
 * KT_NOTE_SIGS_MAX), as kt_note_sign_line() makes them with timestamp.
 * A note larger than KT_NOTE_MAX is KT_ETOOBIG.  A witness adds its
 * cosignature to an existing note by appending the line from
 * kt_note_sign_line() to it.  Same errors as kt_note_sign_line(); out's
 * contents are unchanged on failure.
 */
int kt_note_sign(const uint8_t *text, size_t len,
    const struct kt_note_signer *signers, size_t nsigners, uint64_t timestamp,
    struct kt_buf *out) KT_MUST_CHECK;

/*
 * An Ed25519 private key held in memory, for tests and development (the
 * log's production key lives in an HSM).  Opaque; owned by the caller.
 */
struct kt_note_ed25519;

/*
 * Makes an Ed25519 key from a 32-byte RFC 8032 seed.  The caller keeps
 * (and wipes) seed; the key keeps its own copy, wiped by
 * kt_note_ed25519_free().  Returns KT_OK, KT_ENOMEM or KT_EINTERNAL.
 * Writes *out only on success.
 */
int kt_note_ed25519_new(const uint8_t seed[KT_ED25519_SEED_SIZE],
    struct kt_note_ed25519 **out) KT_MUST_CHECK;

/* Frees k and wipes its secret.  kt_note_ed25519_free(NULL) is a no-op. */
void kt_note_ed25519_free(struct kt_note_ed25519 *k);

/* Copies k's public key to pub. */
void kt_note_ed25519_public(
    const struct kt_note_ed25519 *k, uint8_t pub[KT_ED25519_PUB_SIZE]);

/*
 * A kt_note_sign_fn for a struct kt_note_ed25519 passed as ctx.  Returns
 * KT_OK, KT_ENOMEM or KT_EINTERNAL.
 */
int kt_note_ed25519_sign(void *ctx, const uint8_t *msg, size_t len,
    uint8_t sig[KT_ED25519_SIG_SIZE]);

#ifdef __cplusplus
}
#endif
#endif
