/*
 * Private to the HSM module, shared by hsm.c and hsm_key.c only: the
 * handle, key and per-call error structs, and the helpers one file lends
 * the other.  Not installed, and included nowhere outside signer/hsm*.c;
 * the public contract is hsm.h.
 */
#ifndef KT_SIGNER_HSM_INT_H
#define KT_SIGNER_HSM_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "hsm.h"

/*
 * p11-kit's header in its native spelling (struct ck_attribute, member
 * value_len, ...).  The default "compat" spelling defines macros such as
 * `value` and `count` that would rewrite ordinary identifiers.
 */
#define CRYPTOKI_GNU
#include <p11-kit/pkcs11.h>

/* Hard invariant checks: a broken invariant aborts even in release builds. */
#define HSM_ASSERT(c) \
	do { \
		if (!(c)) \
			abort(); \
	} while (0)

/* Longest CKA_ID we keep (ours are 32 bytes). */
#define HSM_CKID_MAX 64

/* A loaded PKCS#11 module; hsm.c alone looks inside. */
struct hsm_module;

/* A handle (hsm.h): one token, its PIN, and its pool of sessions. */
struct hsm {
	struct hsm_module *mod;
	struct hsm *mod_next;	    /* guarded by hsm_modules_mu */
	struct ck_function_list *f; /* mod->f */
	char token_label[HSM_TOKEN_LABEL_MAX + 1];
	uint8_t pin[HSM_PIN_MAX];
	size_t pinlen;
	/* Serialises hsm_generate()'s "label is free" check and creation. */
	pthread_mutex_t genmu;
	/* Guards everything below, and the handle fields of every key. */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a session comes back */
	ck_slot_id_t slot;
	ck_session_handle_t idle[HSM_SESSIONS_MAX];
	unsigned nidle;
	unsigned nopen; /* idle plus borrowed */
	unsigned maxopen;
	uint64_t gen; /* moves on at every reconnect */
	uint64_t signs;
	uint64_t sign_failures;
	uint64_t reconnects;
	int copies;	    /* make session copies of private keys */
	int copies_refused; /* the token refused one: stop asking */
	uint64_t ncopies;
	/*
	 * Not under mu, read and set with atomics: P-256 and Ed25519 checks
	 * go through a key's tables (struct hsm_fast; 1, except when a
	 * benchmark turns it off).
	 */
	int fast_check;
};

/*
 * A key's fast check, as tables for its public key: ecverify.h for
 * P-256, edverify.h (libkeytrail's) for Ed25519.  One of the two is set.
 */
struct hsm_fast {
	struct ecv *ecv;
	struct edv *edv;
};

void hsm_fast_free(struct hsm_fast *f);

/* A key found or made through the handle h (hsm.h). */
struct hsm_key {
	struct hsm *h;
	enum hsm_alg alg;
	char label[HSM_KEY_LABEL_MAX + 1];
	uint8_t ckid[HSM_CKID_MAX];
	size_t ckidlen;
	char id[HSM_KEY_ID_LEN + 1];
	uint8_t *spki; /* OPENSSL_malloc'd by i2d_PUBKEY */
	size_t spkilen;
	EVP_PKEY *pub;
	/*
	 * The fast verifier for pub (P-256 or Ed25519), built on the first
	 * check and then immutable; read and set with atomics
	 * (hsm_key_fast()).  fast_failed: it could not be built, the checks
	 * go through EVP.
	 */
	struct hsm_fast *fast;
	int fast_failed;
	struct hsm_attrs attrs;
	/* Guarded by h->mu. */
	ck_object_handle_t priv;
	uint64_t gen; /* h->gen when priv was looked up */
	int handle_ok;
};

/*
 * One call's error reporting: where the message goes, and the PKCS#11
 * return value behind the failure (CKR_OK when the failure was not the
 * token's), which decides whether reconnecting could help.
 */
struct hsm_op {
	char *err;
	size_t errlen;
	ck_rv_t rv;
};

/*
 * In hsm.c: error reporting, locks, labels and the session pool.  Each
 * definition says more.
 */

/* Starts a call's error reporting into err (which may be NULL). */
void hsm_op_init(struct hsm_op *op, char *err, size_t errlen);
/* Records a failure that is not the token's and returns code. */
int hsm_error(struct hsm_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a failed PKCS#11 call and returns its KT_* code. */
int hsm_fail(struct hsm_op *op, ck_rv_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Rebuilding the pool and logging in again may cure the failure. */
int hsm_rv_reconnect(ck_rv_t rv);
/* Lock and unlock; a failure is a broken invariant and aborts. */
void hsm_lock(pthread_mutex_t *mu);
void hsm_unlock(pthread_mutex_t *mu);
/* A label of 1 to max bytes without control characters. */
int hsm_label_ok(const char *label, size_t max);
/* Borrows a logged-in session; give it back with hsm_pool_put(). */
int hsm_pool_get(struct hsm *h, ck_session_handle_t *out, struct hsm_op *op);
/* Gives back a session; rv is the last result seen on it. */
void hsm_pool_put(struct hsm *h, ck_session_handle_t s, ck_rv_t rv);
/* The current generation: it moves on at every reconnect. */
uint64_t hsm_generation(struct hsm *h);
/* Rebuilds the pool; seen is the generation the failing call began in. */
int hsm_reconnect(struct hsm *h, uint64_t seen, struct hsm_op *op);

/*
 * In hsm_key.c: the private key handle behind a key.
 */

/*
 * The handle of k's private key to use on session s, looked up again when
 * the cached one is from an older generation.
 */
int hsm_key_handle(struct hsm *h, struct hsm_key *k, ck_session_handle_t s,
    ck_object_handle_t *out, struct hsm_op *op);
/* Forgets k's cached handle, so the next use looks it up again. */
void hsm_key_stale(struct hsm *h, struct hsm_key *k);

#endif
