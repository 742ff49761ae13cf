/*
 * The worker pool: a job queue under one mutex, worker threads, and a
 * completion list handed to the event loop with event_active().
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "pool.h"

/* Most worker threads. */
#define POOL_THREADS_MAX 16

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_job *qhead, *qtail;
	struct pool_job *dhead, *dtail;
	struct event *done_ev;
	pthread_t threads[POOL_THREADS_MAX];
	unsigned nthreads;
	int nice;
	int stopping;
	atomic_uint busy; /* jobs queued or running */
};

static void
pool_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_job *j, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	j = p->dhead;
	p->dhead = p->dtail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		j->done(j->arg);
	}
}

static void
pool_post(struct pool *p, struct pool_job *j)
{
	pthread_mutex_lock(&p->mu);
	j->next = NULL;
	if (p->dtail != NULL)
		p->dtail->next = j;
	else
		p->dhead = j;
	p->dtail = j;
	pthread_mutex_unlock(&p->mu);
	event_active(p->done_ev, EV_READ, 0);
}

static void *
pool_main(void *arg)
{
	struct pool *p = arg;

	(void)pthread_setname_np(pthread_self(), "keytrail-work");
	/*
	 * Linux keeps a nice value per thread.  Lowering one's own priority
	 * needs no privilege; if it fails the worker just runs at the
	 * process's priority.
	 */
	if (p->nice > 0)
		(void)setpriority(
		    PRIO_PROCESS, (id_t)syscall(SYS_gettid), p->nice);

	for (;;) {
		struct pool_job *j;

		pthread_mutex_lock(&p->mu);
		while (p->qhead == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->qhead == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		j = p->qhead;
		p->qhead = j->next;
		if (p->qhead == NULL)
			p->qtail = NULL;
		pthread_mutex_unlock(&p->mu);
		if (j->run(j->arg) == POOL_COMPLETE)
			pool_post(p, j);
		atomic_fetch_sub(&p->busy, 1);
	}
}

int
pool_new(
    struct event_base *base, unsigned nthreads, int nice, struct pool **out)
{
	struct pool *p;

	if (nthreads > POOL_THREADS_MAX)
		nthreads = POOL_THREADS_MAX;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return KT_ENOMEM;
	p->nice = nice;
	atomic_init(&p->busy, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->done_ev = event_new(base, -1, 0, pool_deliver, p)) == NULL) {
		pool_free(p);
		return KT_ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
			pool_free(p);
			return KT_EINTERNAL;
		}
		p->nthreads++;
	}
	*out = p;
	return KT_OK;
}

void
pool_submit(struct pool *p, struct pool_job *job)
{
	job->next = NULL;
	if (p->nthreads == 0) {
		if (job->run(job->arg) == POOL_COMPLETE)
			pool_post(p, job);
		return;
	}
	atomic_fetch_add(&p->busy, 1);
	pthread_mutex_lock(&p->mu);
	if (p->qtail != NULL)
		p->qtail->next = job;
	else
		p->qhead = job;
	p->qtail = job;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

unsigned
pool_busy(struct pool *p)
{
	return atomic_load(&p->busy);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* Complete what finished, so every job's done runs exactly once. */
	if (p->done_ev != NULL) {
		pool_deliver(-1, 0, p);
		event_free(p->done_ev);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
