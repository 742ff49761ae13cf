/*
 * The verification pool: a queue under one mutex, worker threads, and a
 * completion list handed to the event loop with event_active().
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rsa.h>

#include "verify.h"

/* Most worker threads. */
#define VERIFY_THREADS_MAX 16

struct verify {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct verify_job *qhead, *qtail;
	struct verify_job *dhead, *dtail;
	struct event *done_ev;
	pthread_t threads[VERIFY_THREADS_MAX];
	unsigned nthreads;
	int stopping;
};

int
verify_now(EVP_PKEY *pk, int rsa_pss, const uint8_t digest[32],
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md = NULL;
	int ok = 0;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		if ((md = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1)
			ok = EVP_DigestVerify(md, sig, siglen, digest, 32) == 1;
	} else if ((pctx = EVP_PKEY_CTX_new(pk, NULL)) != NULL &&
	    EVP_PKEY_verify_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1) {
		if (!rsa_pss ||
		    (EVP_PKEY_CTX_set_rsa_padding(
			 pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1))
			ok =
			    EVP_PKEY_verify(pctx, sig, siglen, digest, 32) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	return ok ? KT_OK : KT_EVERIFY;
}

void
verify_job_clear(struct verify_job *job)
{
	EVP_PKEY_free(job->pk);
	job->pk = NULL;
}

static void
verify_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct verify *v = arg;
	struct verify_job *j, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&v->mu);
	j = v->dhead;
	v->dhead = v->dtail = NULL;
	pthread_mutex_unlock(&v->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		j->done(j, j->arg);
	}
}

static void
verify_post(struct verify *v, struct verify_job *j)
{
	pthread_mutex_lock(&v->mu);
	j->next = NULL;
	if (v->dtail != NULL)
		v->dtail->next = j;
	else
		v->dhead = j;
	v->dtail = j;
	pthread_mutex_unlock(&v->mu);
	event_active(v->done_ev, EV_READ, 0);
}

static void *
verify_main(void *arg)
{
	struct verify *v = arg;

	for (;;) {
		struct verify_job *j;

		pthread_mutex_lock(&v->mu);
		while (v->qhead == NULL && !v->stopping)
			pthread_cond_wait(&v->cv, &v->mu);
		if (v->qhead == NULL) {
			pthread_mutex_unlock(&v->mu);
			return NULL;
		}
		j = v->qhead;
		v->qhead = j->next;
		if (v->qhead == NULL)
			v->qtail = NULL;
		pthread_mutex_unlock(&v->mu);
		j->result =
		    verify_now(j->pk, j->rsa_pss, j->digest, j->sig, j->siglen);
		verify_post(v, j);
	}
}

int
verify_new(struct event_base *base, unsigned nthreads, struct verify **out)
{
	struct verify *v;

	if (nthreads > VERIFY_THREADS_MAX)
		nthreads = VERIFY_THREADS_MAX;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return KT_ENOMEM;
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	if ((v->done_ev = event_new(base, -1, 0, verify_deliver, v)) == NULL) {
		verify_free(v);
		return KT_ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&v->threads[i], NULL, verify_main, v) != 0) {
			verify_free(v);
			return KT_EINTERNAL;
		}
		v->nthreads++;
	}
	*out = v;
	return KT_OK;
}

void
verify_submit(struct verify *v, struct verify_job *job)
{
	job->next = NULL;
	if (v->nthreads == 0) {
		job->result = verify_now(
		    job->pk, job->rsa_pss, job->digest, job->sig, job->siglen);
		verify_post(v, job);
		return;
	}
	pthread_mutex_lock(&v->mu);
	if (v->qtail != NULL)
		v->qtail->next = job;
	else
		v->qhead = job;
	v->qtail = job;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

void
verify_free(struct verify *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&v->mu);
	v->stopping = 1;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	for (unsigned i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	/* Deliver what finished, so every job's done runs exactly once. */
	verify_deliver(-1, 0, v);
	if (v->done_ev != NULL)
		event_free(v->done_ev);
	pthread_mutex_destroy(&v->mu);
	pthread_cond_destroy(&v->cv);
	free(v);
}
