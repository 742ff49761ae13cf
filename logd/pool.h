/*
 * A pool of worker threads for the CPU-bound steps of a request
 * (checking a submitted signature, signing in the HSM), so the HTTP thread
 * only parses and replies.  A job runs on a worker and then either
 * completes, as sequencer submissions do, on the event loop thread, or is
 * handed on by its run (to the sequencer, which completes it instead).
 */
#ifndef LOGD_POOL_H
#define LOGD_POOL_H

#include "keytrail/common.h"

struct event_base;
struct pool;

/* What run did with its job. */
enum pool_next {
	POOL_COMPLETE, /* done follows on the loop thread */
	POOL_PASSED    /* run handed the job on (to the sequencer): no done */
};

/*
 * One job, owned by the submitter until done is called.  run is called on
 * a worker thread, then, unless it returns POOL_PASSED, done on the loop
 * thread, each exactly once, both with arg.  After POOL_PASSED the pool
 * never touches the job again: its new owner may already have freed it.
 */
struct pool_job {
	enum pool_next (*run)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct pool_job *next;
};

/*
 * Starts nthreads workers (0: run jobs inline in pool_submit, still
 * completing them from the loop), each lowered to nice value nice when it
 * is above 0.  base must have been created after evthread_use_pthreads().
 * Returns KT_OK, KT_ENOMEM or KT_EINTERNAL.
 */
int pool_new(struct event_base *base, unsigned nthreads, int nice,
    struct pool **out) KT_MUST_CHECK;
/* Queues job. */
void pool_submit(struct pool *p, struct pool_job *job);

/*
 * Jobs queued or running at this moment (any thread may ask; 0 with no
 * workers).  A job that hands an entry to the sequencer does so before it
 * stops counting, so 0 means no such entry is on its way.
 */
unsigned pool_busy(struct pool *p);
/*
 * Lets the workers finish the queue, joins them, completes what finished,
 * and frees p.  NULL is a no-op.
 */
void pool_free(struct pool *p);

#endif
