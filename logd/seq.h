/*
 * The sequencer: one thread that owns every write to the log.
 *
 * Request handlers hand it entries through one narrow message interface
 * (seq_submit) and are called back on the event loop thread when the
 * entry is durably committed and covered by a signed checkpoint
 * (DESIGN.md section 3).  Nothing else reaches the store's write side or
 * the log key, so the sequencer and the signer could move into a separate
 * privileged process without changing this interface.
 */
#ifndef LOGD_SEQ_H
#define LOGD_SEQ_H

#include <stdint.h>

#include "keytrail/common.h"
#include "store.h"

struct event_base;
struct seq;

/*
 * A checkpoint handed to requests: shared by every request of a batch and
 * released by each (seq_cp_release) on the event loop thread.
 */
struct seq_cp {
	unsigned refs;
	uint64_t size;
	struct kt_buf note; /* the signed checkpoint note */
};

/*
 * One submission.  The caller owns it and everything item points to until
 * done is called; done runs on the event loop thread, exactly once.
 */
struct seq_req {
	/*
	 * The entry to append, or, when write_only is set, only the
	 * auxiliary writes item.puts (pending requests): no entry, no new
	 * checkpoint, and cp stays NULL.
	 */
	struct store_item item;
	int write_only;
	void (*done)(struct seq_req *req, void *arg);
	void *arg;
	double submitted; /* kt_monotonic_seconds(), set by seq_submit */
	/* Results, valid in done: */
	int rc;		   /* KT_OK, or why nothing was logged */
	struct seq_cp *cp; /* on KT_OK: the checkpoint covering the entry */
	char err[160];	   /* on failure: a readable reason */
	struct seq_req *next;
};

/* Counters for /metrics; read without locks, so approximate. */
struct seq_stats {
	uint64_t batches;
	uint64_t entries;
	uint64_t duplicates;
	uint64_t failures;
	uint64_t queued;
	uint64_t batch_hist[8];	  /* batch sizes: 1, 2-7, 8-63, ..., >= 2^18 */
	double commit_seconds;	  /* total time in store_append */
	struct store_times steps; /* the same, by step (summed) */
};

/*
 * Starts the sequencer thread over store st.  sign/sign_ctx sign each new
 * checkpoint (the log key in the HSM).  Batches take at most batch_max
 * entries and wait at most interval_us for more once one is queued
 * (less with seq_set_feed).
 * Completions are delivered on base, which must have been created after
 * evthread_use_pthreads().  Returns KT_OK, KT_ENOMEM or KT_EINTERNAL.
 */
int seq_new(struct event_base *base, struct store *st, store_sign_fn sign,
    void *sign_ctx, unsigned batch_max, unsigned interval_us,
    struct seq **out) KT_MUST_CHECK;

/*
 * Queues r.  Returns KT_OK (done will be called), or KT_EUNAVAIL when the
 * sequencer is stopping or the queue is full (done will not be called).
 */
int seq_submit(struct seq *s, struct seq_req *r) KT_MUST_CHECK;

/* Releases one reference to cp; frees it with the last. */
void seq_cp_release(struct seq_cp *cp);

/* Copies the counters. */
void seq_get_stats(struct seq *s, struct seq_stats *out);
/*
 * Changes the batching (config reload); batches started from now on use
 * it.  batch_max 0 is ignored.
 */
void seq_set_batch(struct seq *s, unsigned batch_max, unsigned interval_us);

/*
 * Tells the sequencer how to see whether more submissions are on their
 * way: busy(ctx) > 0 while some are still being prepared (the worker
 * pool, pool_busy).  A batch then waits for more only while busy says so,
 * up to interval_us, and is cut as soon as nothing more is coming.
 * Without it a batch always waits interval_us.  Call before the first
 * submission.
 */
void seq_set_feed(struct seq *s, unsigned (*busy)(void *ctx), void *ctx);

/*
 * Stops taking submissions, lets the thread finish what is queued, and
 * joins it; completions still pending are delivered by the event loop.
 */
void seq_stop(struct seq *s);

/* Frees the sequencer (after seq_stop and after the loop has drained). */
void seq_free(struct seq *s);

#endif
