/*
 * keytrail signer: the HSM, reached through PKCS#11.
 *
 * This is the only module that talks PKCS#11.  It loads a module (SoftHSMv2
 * by default) with dlopen(), logs in once as the token's user, keeps a pool
 * of sessions that any number of threads borrow one at a time, generates
 * and finds signing keys, and signs.  Every signature the token returns is
 * checked against the key's public key with OpenSSL before it is handed
 * out (DESIGN.md section 3); one that does not verify is wiped and
 * reported as KT_EVERIFY.
 *
 * Keys.  Private keys are made inside the token and never leave it:
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_SIGN true, CKA_EXTRACTABLE
 * false.  A private key is used only while the token reports it
 * CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE true and
 * CKA_EXTRACTABLE false; anything else is KT_EPOLICY.  A key's ID is the
 * lowercase hex SHA-256 of its DER SubjectPublicKeyInfo (DESIGN.md section
 * 4, "Key ID"); keys made here also carry those 32 bytes as their CKA_ID,
 * so other PKCS#11 tools show the same identity.  Keys are looked up by
 * CKA_LABEL, which must name exactly one private key.
 *
 * What a signature covers (DESIGN.md section 4): Ed25519 signs the message
 * itself (CKM_EDDSA, pure Ed25519): the 32 digest bytes of an artifact, or
 * the text of a checkpoint note.  ECDSA and RSA-PSS sign a SHA-256 digest
 * computed by the caller, so `openssl dgst -sha256 -verify pub.pem
 * -signature f.sig f` accepts the result.
 *
 * Errors.  Functions return KT_OK or a negative KT_E* code.  Those that can
 * fail take err/errlen: on failure a one-line, human-readable reason is
 * written there (NUL-terminated, truncated to errlen) for the caller to
 * log; err may be NULL.  Messages never contain the PIN.  Nothing here logs
 * or prints.
 *
 * Threads.  A struct hsm and the keys found through it may be used from any
 * number of threads at once, except hsm_close() and hsm_key_free(), which
 * must not race with other calls on the same object.  The PKCS#11 module
 * is process-wide state: the first hsm_open() (or hsm_softhsm_setup()) of a
 * module path initialises it, the last hsm_close() finalises it.  Handles
 * on different tokens may share one module (the log's token and the
 * signing token, say) provided they agree on softhsm_conf; one token is
 * open through at most one handle per process.
 */
#ifndef KT_SIGNER_HSM_H
#define KT_SIGNER_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The PKCS#11 module used when hsm_config.module is NULL. */
#define HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
/* Sessions in the pool when hsm_config.max_sessions is 0, and the cap. */
#define HSM_SESSIONS_DEFAULT 4
#define HSM_SESSIONS_MAX 64
/* Longest PIN accepted from a PIN file, in bytes. */
#define HSM_PIN_MAX 128
/* Longest token label (PKCS#11 CK_TOKEN_INFO) and key label, in bytes. */
#define HSM_TOKEN_LABEL_MAX 32
#define HSM_KEY_LABEL_MAX 128
/* Longest message hsm_sign() accepts for Ed25519, in bytes. */
#define HSM_MSG_MAX 65536
/* Largest signature of any supported algorithm (RSA-4096), in bytes. */
#define HSM_SIG_MAX 512
/* Length of a key ID in hex digits (SHA-256). */
#define HSM_KEY_ID_LEN 64
/* A good size for the err buffers. */
#define HSM_ERR_SIZE 256
/* Files hsm_softhsm_setup() creates inside its directory. */
#define HSM_SOFTHSM_CONF_FILE "softhsm2.conf"
#define HSM_SOFTHSM_PIN_FILE "pin"
#define HSM_SOFTHSM_TOKEN_DIR "tokens"

/*
 * Signing algorithms.  hsm_alg_name() gives the name that appears as "alg"
 * in log entries.
 */
enum hsm_alg {
	HSM_ED25519 = 1, /* "ed25519": pure Ed25519 over the message */
	HSM_ECDSA_P256,	 /* "ecdsa-p256-sha256": DER ECDSA-Sig-Value */
	HSM_ECDSA_P384,	 /* "ecdsa-p384-sha256": DER, SHA-256 digest */
	HSM_RSA3072_PSS, /* "rsa3072-pss-sha256": MGF1-SHA-256, salt 32 */
	HSM_RSA4096_PSS	 /* "rsa4096-pss-sha256": same, 4096-bit modulus */
};

struct hsm_config {
	const char *module;	  /* PKCS#11 module path; NULL: default */
	const char *token_label;  /* label of the token to use */
	const char *pin_file;	  /* user PIN; mode 0600 or stricter */
	const char *softhsm_conf; /* SOFTHSM2_CONF for SoftHSM; NULL: as is */
	unsigned max_sessions;	  /* pool size; 0: HSM_SESSIONS_DEFAULT */
	/*
	 * Sign with a session-object copy of each private key (C_CopyObject
	 * with CKA_TOKEN false, made inside the token, checked sensitive and
	 * never extractable like the original) instead of the token object.
	 * SoftHSM re-reads a token object's file at every C_SignInit; a
	 * session object lives in memory.  A token that refuses the copy is
	 * used through its token objects, as with 0.
	 */
	int session_copies;
};

/* The token's view of a private key, as C_GetAttributeValue reports it. */
struct hsm_attrs {
	int sensitive;
	int extractable;
	int always_sensitive;
	int never_extractable;
	int local; /* generated inside the token */
};

/* Counters for metrics; a snapshot. */
struct hsm_stats {
	unsigned sessions_open; /* open sessions, borrowed or idle */
	unsigned sessions_max;
	uint64_t signs;		/* signatures returned */
	uint64_t sign_failures; /* hsm_sign() calls that failed */
	uint64_t reconnects;	/* times the pool was rebuilt and re-logged */
	uint64_t copies;	/* session copies of private keys made */
	int copies_refused;	/* the token refused a copy: none are made */
};

struct hsm;
struct hsm_key;

/*
 * Returns the log-entry name of alg ("ed25519", "ecdsa-p256-sha256",
 * "ecdsa-p384-sha256", "rsa3072-pss-sha256", "rsa4096-pss-sha256"), or
 * NULL for a value outside the enum.
 */
const char *hsm_alg_name(enum hsm_alg alg);

/*
 * Parses one of the names hsm_alg_name() returns.  Returns KT_OK or
 * KT_EPARSE; writes *out only on success.
 */
int hsm_alg_parse(const char *name, enum hsm_alg *out) KT_MUST_CHECK;

/* Upper bound on the length of a signature made with alg, in bytes. */
size_t hsm_sig_max(enum hsm_alg alg);

/*
 * First-start setup of development SoftHSM tokens in the directory hsmdir
 * (created 0700 when missing): hsmdir/tokens/ (0700), hsmdir/softhsm2.conf
 * (token directory hsmdir/tokens as an absolute path, file backend), one
 * initialised token per label in labels[0..nlabels), all with the same
 * random user PIN, and that PIN in hsmdir/pin (mode 0600).  Each token's
 * security officer PIN is random and forgotten at once: tokens are
 * re-created, not administered.  The PIN file is written last, so its
 * presence means the setup finished.
 *
 * module is the SoftHSM library (NULL: HSM_DEFAULT_MODULE); it must not be
 * open in this process under another configuration.  To use the tokens,
 * pass hsmdir/softhsm2.conf as softhsm_conf and hsmdir/pin as pin_file to
 * hsm_open().
 *
 * Returns KT_OK; KT_EEXIST if hsmdir/pin exists (set up already: reuse it)
 * or hsmdir/tokens is not empty (an interrupted setup: remove hsmdir);
 * KT_EINVAL for a bad label (empty, longer than HSM_TOKEN_LABEL_MAX,
 * repeated) or nlabels 0; KT_EIO for file system or token failures.
 */
int hsm_softhsm_setup(const char *hsmdir, const char *const *labels,
    size_t nlabels, const char *module, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Loads cfg->module, finds the token labelled cfg->token_label, reads the
 * PIN from cfg->pin_file and logs in as the user.  The PIN is kept (for
 * logging in again after the token drops the sessions) and wiped by
 * hsm_close().  cfg is not referenced after the call.  On success *out owns
 * the handle; free it with hsm_close().  When it initialises the module
 * with softhsm_conf, it sets SOFTHSM2_CONF for the duration of
 * C_Initialize and then restores it; setenv() is not thread-safe, so open
 * handles before starting threads that read the environment.
 *
 * Returns KT_OK; KT_EINVAL for a missing field, or a module already open
 * in this process with another softhsm_conf; KT_EPOLICY if the PIN file
 * is not a regular file or is accessible by group or others, or if two
 * tokens carry the label; KT_EPARSE for an empty or too long PIN (or one
 * of several lines); KT_ENOTFOUND if no present token has that label (or
 * the module or PIN file is missing); KT_EEXIST if another handle of this
 * process has the token open (PKCS#11 logins belong to the process, so it
 * would get in whatever its PIN: share that handle instead); KT_EAUTH if
 * the token refuses the PIN; KT_EIO for other module or token failures.
 */
int hsm_open(const struct hsm_config *cfg, struct hsm **out, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * Closes the sessions, wipes the PIN and releases the module (finalising
 * it when h was its last user).  No call on h or on its keys may be in
 * progress; keys found through h cannot sign afterwards but must still be
 * freed with hsm_key_free().  hsm_close(NULL) is a no-op.
 */
void hsm_close(struct hsm *h);

/*
 * Generates a key pair of type alg inside the token, labelled label (both
 * halves), with the attributes described at the top of this file, and
 * returns it as if found by hsm_find().  On success *out owns the key;
 * free it with hsm_key_free().
 *
 * Returns KT_OK; KT_EINVAL for a bad alg or a label that is empty or
 * longer than HSM_KEY_LABEL_MAX; KT_EEXIST if an object with that label
 * exists; KT_EPOLICY if the token made a key without the required
 * attributes (it is destroyed); KT_EIO for token failures.
 */
int hsm_generate(struct hsm *h, enum hsm_alg alg, const char *label,
    struct hsm_key **out, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Finds the private key labelled label and its public key (the public key
 * object with the same CKA_ID, or failing an ID, the same label), checks
 * the private key's attributes and works out the algorithm.  On success
 * *out owns the key; free it with hsm_key_free().
 *
 * Returns KT_OK; KT_EINVAL for a bad label; KT_ENOTFOUND if there is no
 * such private key or no matching public key; KT_EPOLICY if the label is
 * ambiguous, the key may be extracted or was ever exposed, cannot sign,
 * or is of a type or size not supported (for example RSA below 3072 bits
 * or a curve other than P-256, P-384 and Ed25519); KT_EPARSE if the token
 * returns a malformed public key; KT_EIO for token failures.
 */
int hsm_find(struct hsm *h, const char *label, struct hsm_key **out, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * Destroys k's private and public objects in the token (k itself stays
 * to be freed).  Used for a key whose creation could not be logged: a key
 * the log does not know of must not stay in the HSM.  Returns KT_OK;
 * KT_ENOTFOUND if nothing with its label and ID is left; KT_EIO (or
 * KT_EUNAVAIL) for token failures.
 */
int hsm_destroy(
    struct hsm *h, struct hsm_key *k, char *err, size_t errlen) KT_MUST_CHECK;

/* Frees k.  hsm_key_free(NULL) is a no-op. */
void hsm_key_free(struct hsm_key *k);

/* The key's algorithm. */
enum hsm_alg hsm_key_alg(const struct hsm_key *k);

/* The key's CKA_LABEL; owned by k. */
const char *hsm_key_label(const struct hsm_key *k);

/* The key ID: HSM_KEY_ID_LEN lowercase hex digits; owned by k. */
const char *hsm_key_id(const struct hsm_key *k);

/* The DER SubjectPublicKeyInfo; borrowed from k until hsm_key_free(). */
struct kt_bytes hsm_key_spki(const struct hsm_key *k);

/* The private key's attributes as read when the key was found. */
void hsm_key_attrs(const struct hsm_key *k, struct hsm_attrs *out);

/*
 * Signs msg[0..len) with k, which must have been found through h, checks
 * the signature with the public key and copies it to sig[0..sigcap),
 * storing its length in *siglen.  For Ed25519 msg is the message itself
 * (1 to HSM_MSG_MAX bytes); for ECDSA and RSA-PSS it must be a 32-byte
 * SHA-256 digest.  The signature is raw (64 bytes) for Ed25519, a DER
 * ECDSA-Sig-Value for ECDSA and the raw modulus-sized value for RSA-PSS;
 * hsm_sig_max() bounds it.
 *
 * If the token reports the session or the login gone (for instance after
 * the device was removed), the pool is rebuilt, the user logged in again
 * and the signature tried once more.
 *
 * Returns KT_OK; KT_EINVAL for a wrong message length or a key of another
 * handle; KT_ETOOBIG if sigcap is too small; KT_EVERIFY if the token's
 * signature does not verify (nothing is returned); KT_EPOLICY if the key
 * was replaced by one that is no longer safe; KT_EAUTH if logging in again
 * fails; KT_EUNAVAIL if the token is gone (removed and not back) or out
 * of sessions; KT_EIO for other token failures.  sig and *siglen are
 * written only on success.
 */
int hsm_sign(struct hsm *h, struct hsm_key *k, const uint8_t *msg, size_t len,
    uint8_t *sig, size_t sigcap, size_t *siglen, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * For benchmarks only: one C_SignInit + C_Sign of msg with k on a pooled
 * session, the raw work of the token, without the signature check or the
 * encoding hsm_sign() adds.  The signature is discarded (wiped), never
 * returned.  Returns KT_OK, KT_EINVAL or the token's error.
 */
int hsm_bench_raw_sign(struct hsm *h, struct hsm_key *k, const uint8_t *msg,
    size_t len, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * For benchmarks only: turns session copies (struct hsm_config) on or off
 * for the keys' next lookup, so that one run can measure the token's raw
 * rate both ways.  Copies already made stay until their session closes.
 */
void hsm_bench_set_copies(struct hsm *h, int on);

/*
 * For benchmarks only: checks P-256 and Ed25519 signatures through EVP
 * (off) or through the key's precomputed tables (on, the default;
 * ecverify.h, edverify.h), so that one run can measure both.
 */
void hsm_bench_set_fast_check(struct hsm *h, int on);

/* Copies a snapshot of h's counters to *out. */
void hsm_stats(struct hsm *h, struct hsm_stats *out);

/*
 * Test hooks: they let tests prove properties of the token and exercise
 * recovery paths.  The daemon never calls them.
 */

/*
 * Asks the token for the private key's secret value (CKA_VALUE, or
 * CKA_PRIVATE_EXPONENT for RSA).  Stores 1 in *readable if the token hands
 * it out, 0 if it refuses.  Returns KT_OK or KT_EIO.
 */
int hsm_test_secret_readable(struct hsm *h, struct hsm_key *k, int *readable,
    char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Generates a P-256 key pair labelled label whose private key is
 * extractable and not sensitive, the kind hsm_find() must refuse.
 * Returns KT_OK, KT_EEXIST, KT_EINVAL or KT_EIO.
 */
int hsm_test_generate_unsafe(
    struct hsm *h, const char *label, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Makes k check its signatures against other's public key, as if the
 * token had paired k's private key with the wrong public key, so that
 * hsm_sign() must refuse what the token returns.  Returns KT_OK, or
 * KT_EINVAL if the algorithms differ.
 */
int hsm_test_key_mismatch(
    struct hsm_key *k, const struct hsm_key *other) KT_MUST_CHECK;

/*
 * Closes every session of the application on h's token behind the pool's
 * back (C_CloseAllSessions), which also ends the login, as a removed and
 * reinserted device would.  Returns KT_OK or KT_EIO.
 */
int hsm_test_drop_sessions(
    struct hsm *h, char *err, size_t errlen) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
