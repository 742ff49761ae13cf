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
 * before the sequencer runs) those the log does not know yet.  Keys the
 * token lacks are reported and skipped.  Returns KT_OK or the store's
 * error, with a message in err.
 */
int sign_init(struct api *a, struct hsm *h, store_sign_fn sign, void *ctx,
    char *err, size_t errlen) KT_MUST_CHECK;

/* Releases the signing keys. */
void sign_free(struct api *a);

/* Handlers. */
void sign_post(struct http_req *r, void *arg);
void sign_requests(struct http_req *r, void *arg);

#endif
