/*
 * keytrail-logd: signing with the HSM's keys (DESIGN.md sections 3 and 7):
 * POST /v1/sign, and the approvals of requests that need them
 * (GET /v1/requests/<id>, POST /v1/requests/<id>/approve|deny).
 *
 * A signature leaves the service only once its entry is durably in the
 * log: the HSM signs (on a worker thread; hsm_sign checks the signature
 * against the public key), the entry goes to the sequencer, and only its
 * completion releases the signature with its proof.  If the log cannot
 * commit, the answer is 503 and the signature bytes are wiped.
 */
#ifndef LOGD_SIGN_H
#define LOGD_SIGN_H

#include <stddef.h>

#include "api.h"

/*
 * Finds, in the keys token h, every key the policy names, and registers
 * in the log (a `key` entry with action "create", through the store,
 * before the sequencer runs) those the log does not know yet.  Then loads
 * every other key the registry marks as held in the HSM ("hsm": true, as
 * for keys created through POST /v1/keys), so a policy that names one
 * later needs no restart.  Keys the token lacks are reported and
 * skipped.  Returns KT_OK or the store's error, with a message in err.
 */
int sign_init(struct api *a, struct hsm *h, store_sign_fn sign, void *ctx,
    char *err, size_t errlen) KT_MUST_CHECK;

/* Releases the signing keys. */
void sign_free(struct api *a);

/*
 * The signing key whose label or key ID is name, or NULL.  Borrowed from
 * a; it stays put until sign_free().  Event loop thread only.
 */
struct api_signkey *sign_key_find(struct api *a, const char *name);

/*
 * Adds hk, a key of a->keys_hsm that the log has registered, to the
 * signing keys, taking it over on success.  Whether it may sign is still
 * the policy's decision.  Returns KT_OK, KT_EEXIST (its label or key ID is
 * there already) or KT_ETOOBIG (API_SIGNKEYS_MAX keys); hk stays the
 * caller's on failure.  Event loop thread only.
 */
int sign_key_add(struct api *a, struct hsm_key *hk) KT_MUST_CHECK;

/* Handlers. */
void sign_post(struct http_req *r, void *arg);
void sign_requests(struct http_req *r, void *arg);

#endif
