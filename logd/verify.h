/*
 * Signature verification off the event loop.  Verifying a submitted
 * signature costs tens of microseconds of CPU; a small pool of threads
 * does it so the HTTP thread only parses and replies.  Jobs come back, as
 * sequencer completions do, on the event loop thread.
 */
#ifndef LOGD_VERIFY_H
#define LOGD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keytrail/common.h"

struct event_base;
struct verify;

/* Largest signature a job carries (RSA-4096: 512 bytes). */
#define VERIFY_SIG_MAX 1024

/*
 * One verification: sig over the 32-byte SHA-256 digest with pk
 * (pre-hashed ECDSA or RSA-PSS with salt 32, or Ed25519 over the digest
 * bytes).  The submitter fills everything above result; the pool sets
 * result (KT_OK or KT_EVERIFY) and calls done on the loop thread.  The job
 * holds its own reference to pk, released by verify_job_clear().
 */
struct verify_job {
	EVP_PKEY *pk;
	int rsa_pss;
	uint8_t digest[32];
	uint8_t sig[VERIFY_SIG_MAX];
	size_t siglen;
	void (*done)(struct verify_job *job, void *arg);
	void *arg;
	int result;
	struct verify_job *next;
};

/*
 * Verifies now, in the calling thread (also what the pool runs).  Returns
 * KT_OK or KT_EVERIFY.
 */
int verify_now(EVP_PKEY *pk, int rsa_pss, const uint8_t digest[32],
    const uint8_t *sig, size_t siglen);

/*
 * Starts nthreads workers (0: verify inline in verify_submit, calling done
 * from the loop).  base must have been created after
 * evthread_use_pthreads().
 */
int verify_new(struct event_base *base, unsigned nthreads,
    struct verify **out) KT_MUST_CHECK;
/* Queues job; done will be called exactly once. */
void verify_submit(struct verify *v, struct verify_job *job);
/* Drops the job's key reference. */
void verify_job_clear(struct verify_job *job);
/* Stops the workers after the queue drains, and frees v. */
void verify_free(struct verify *v);

#endif
