/*
 * The sequencer thread.  Its loop: wait for a submission, give others a
 * short interval to join the batch, then append the batch and sign its
 * checkpoint in one store transaction, and post the completions to the
 * event loop.  A failed batch fails every request in it and logs nothing
 * (the store aborts the transaction).
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "seq.h"

/* Most submissions waiting at once; past it clients get 503. */
#define SEQ_QUEUE_MAX 200000
/* How often a waiting batch asks whether more entries are on their way. */
#define SEQ_FEED_STEP_US 200

struct seq {
	struct store *st;
	store_sign_fn sign;
	void *sign_ctx;
	unsigned batch_max;
	unsigned interval_us;
	unsigned (*feed)(void *ctx); /* seq_set_feed; NULL: always wait */
	void *feed_ctx;

	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct seq_req *qhead, *qtail;
	size_t qlen;
	int stopping;

	/* Completed requests, handed to the event loop. */
	struct seq_req *dhead, *dtail;
	struct event *done_ev;

	struct seq_stats stats;
	/* Scratch items, only the sequencer thread's; items_cap >= a batch. */
	struct store_item *items;
	unsigned items_cap;
};

void
seq_cp_release(struct seq_cp *cp)
{
	if (cp == NULL || --cp->refs > 0)
		return;
	kt_buf_free(&cp->note);
	free(cp);
}

/* Event loop side: deliver every completion posted so far. */
static void
seq_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct seq *s = arg;
	struct seq_req *r, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->mu);
	r = s->dhead;
	s->dhead = s->dtail = NULL;
	pthread_mutex_unlock(&s->mu);
	for (; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		r->done(r, r->arg);
	}
}

static void
seq_post(struct seq *s, struct seq_req *head, struct seq_req *tail)
{
	pthread_mutex_lock(&s->mu);
	if (s->dtail != NULL)
		s->dtail->next = head;
	else
		s->dhead = head;
	s->dtail = tail;
	pthread_mutex_unlock(&s->mu);
	event_active(s->done_ev, EV_READ, 0);
}

static void
seq_hist(struct seq_stats *st, size_t n)
{
	int b = 0;

	for (size_t v = n; v > 1 && b < 7; v >>= 3)
		b++;
	st->batch_hist[b]++;
}

/* Appends one batch of n requests (linked from head). */
static void
seq_run_batch(struct seq *s, struct seq_req *head, size_t n)
{
	struct seq_req *r, *tail = NULL;
	struct store_times steps;
	struct seq_cp *cp;
	char err[160] = "";
	double t0;
	size_t i;
	int rc;

	if ((cp = calloc(1, sizeof(*cp))) == NULL) {
		rc = KT_ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
		goto done;
	}
	kt_buf_init(&cp->note, 64 * 1024);
	for (i = 0, r = head; r != NULL; r = r->next, i++)
		s->items[i] = r->item;
	t0 = kt_monotonic_seconds();
	rc = store_append(s->st, s->items, n, s->sign, s->sign_ctx, &cp->note,
	    &cp->size, err, sizeof(err));
	t0 = kt_monotonic_seconds() - t0;
	store_last_times(s->st, &steps);
	pthread_mutex_lock(&s->mu);
	s->stats.commit_seconds += t0;
	s->stats.steps.add += steps.add;
	s->stats.steps.index += steps.index;
	s->stats.steps.sign += steps.sign;
	s->stats.steps.commit += steps.commit;
	if (rc == KT_OK) {
		for (i = 0, r = head; r != NULL; r = r->next, i++) {
			r->item.index = s->items[i].index;
			r->item.duplicate = s->items[i].duplicate;
			s->stats.duplicates += (uint64_t)r->item.duplicate;
		}
		cp->refs = (unsigned)n;
		s->stats.batches++;
		s->stats.entries += n;
		seq_hist(&s->stats, n);
	} else {
		s->stats.failures += n;
	}
	pthread_mutex_unlock(&s->mu);
	if (rc != KT_OK) {
		log_err("sequencer: batch of %zu not logged: %s", n,
		    err[0] ? err : kt_strerror(rc));
		cp->refs = 1;
		seq_cp_release(cp);
		cp = NULL;
	}
done:
	for (r = head; r != NULL; r = r->next) {
		r->rc = rc;
		r->cp = rc == KT_OK ? cp : NULL;
		if (rc != KT_OK)
			snprintf(r->err, sizeof(r->err), "%s",
			    err[0] ? err : kt_strerror(rc));
		tail = r;
	}
	seq_post(s, head, tail);
}

/*
 * Runs what was taken from the queue: write-only requests one by one
 * (each its own transaction, in order), then the appends as one batch.
 */
static void
seq_run(struct seq *s, struct seq_req *head, size_t n)
{
	struct seq_req *r, *next, *ahead = NULL, *atail = NULL;
	size_t na = 0;

	(void)n;
	for (r = head; r != NULL; r = next) {
		next = r->next;
		r->next = NULL;
		if (!r->write_only) {
			if (atail != NULL)
				atail->next = r;
			else
				ahead = r;
			atail = r;
			na++;
			continue;
		}
		r->err[0] = 0;
		r->rc = store_write(
		    s->st, r->item.puts, r->item.nputs, r->err, sizeof(r->err));
		r->cp = NULL;
		if (r->rc != KT_OK)
			log_err("sequencer: write not done: %s", r->err);
		seq_post(s, r, r);
	}
	if (na > 0)
		seq_run_batch(s, ahead, na);
}

/* now + us, as a CLOCK_REALTIME deadline. */
static struct timespec
seq_after(unsigned us)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += (long)us * 1000;
	while (t.tv_nsec >= 1000000000L) {
		t.tv_nsec -= 1000000000L;
		t.tv_sec++;
	}
	return t;
}

static int
seq_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* With s->mu held and a submission queued: waits for more (above). */
static void
seq_wait_for_more(struct seq *s)
{
	struct timespec until, step;

	if (s->interval_us == 0)
		return;
	until = seq_after(s->interval_us);
	while (s->qlen < s->batch_max && !s->stopping) {
		if (s->feed != NULL && s->feed(s->feed_ctx) == 0)
			break; /* nothing more is on its way */
		step = until;
		if (s->feed != NULL) {
			struct timespec next = seq_after(SEQ_FEED_STEP_US);

			if (seq_before(&next, &until))
				step = next;
		}
		if (pthread_cond_timedwait(&s->cv, &s->mu, &step) != 0 &&
		    !seq_before(&step, &until))
			break; /* the whole interval has passed */
	}
}

static void *
seq_main(void *arg)
{
	struct seq *s = arg;

	(void)pthread_setname_np(pthread_self(), "keytrail-seq");

	for (;;) {
		struct seq_req *head, *r;
		size_t n;

		pthread_mutex_lock(&s->mu);
		while (s->qhead == NULL && !s->stopping)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->qhead == NULL && s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		/*
		 * Give concurrent requests a moment to join the batch: one
		 * fsync and one HSM signature then cover all of them.  While
		 * more are being prepared the batch waits for them, up to
		 * interval_us; once none is, waiting would only idle the
		 * workers, so the batch goes.
		 */
		seq_wait_for_more(s);
		/* A reload may have raised batch_max: make room first. */
		if (s->batch_max > s->items_cap) {
			struct store_item *more =
			    calloc(s->batch_max, sizeof(*more));

			if (more != NULL) {
				free(s->items);
				s->items = more;
				s->items_cap = s->batch_max;
			} else {
				s->batch_max = s->items_cap;
			}
		}
		head = s->qhead;
		n = 1;
		for (r = head; n < s->batch_max && r->next != NULL; r = r->next)
			n++;
		s->qhead = r->next;
		if (s->qhead == NULL)
			s->qtail = NULL;
		r->next = NULL;
		s->qlen -= n;
		s->stats.queued = s->qlen;
		pthread_mutex_unlock(&s->mu);
		seq_run(s, head, n);
	}
	return NULL;
}

int
seq_new(struct event_base *base, struct store *st, store_sign_fn sign,
    void *sign_ctx, unsigned batch_max, unsigned interval_us, struct seq **out)
{
	struct seq *s;

	if (batch_max == 0)
		return KT_EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return KT_ENOMEM;
	s->st = st;
	s->sign = sign;
	s->sign_ctx = sign_ctx;
	s->batch_max = batch_max;
	s->interval_us = interval_us;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->items = calloc(batch_max, sizeof(*s->items));
	s->items_cap = batch_max;
	s->done_ev = event_new(base, -1, 0, seq_deliver, s);
	if (s->items == NULL || s->done_ev == NULL) {
		seq_free(s);
		return KT_ENOMEM;
	}
	if (pthread_create(&s->thread, NULL, seq_main, s) != 0) {
		seq_free(s);
		return KT_EINTERNAL;
	}
	s->started = 1;
	*out = s;
	return KT_OK;
}

int
seq_submit(struct seq *s, struct seq_req *r)
{
	r->next = NULL;
	r->cp = NULL;
	r->rc = KT_EINTERNAL;
	r->err[0] = 0;
	r->submitted = kt_monotonic_seconds();
	pthread_mutex_lock(&s->mu);
	if (s->stopping || s->qlen >= SEQ_QUEUE_MAX) {
		pthread_mutex_unlock(&s->mu);
		return KT_EUNAVAIL;
	}
	if (s->qtail != NULL)
		s->qtail->next = r;
	else
		s->qhead = r;
	s->qtail = r;
	s->qlen++;
	s->stats.queued = s->qlen;
	if (s->qlen == 1 || s->qlen >= s->batch_max)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return KT_OK;
}

void
seq_set_feed(struct seq *s, unsigned (*busy)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->mu);
	s->feed = busy;
	s->feed_ctx = ctx;
	pthread_mutex_unlock(&s->mu);
}

void
seq_set_batch(struct seq *s, unsigned batch_max, unsigned interval_us)
{
	pthread_mutex_lock(&s->mu);
	if (batch_max > 0)
		s->batch_max = batch_max;
	s->interval_us = interval_us;
	pthread_mutex_unlock(&s->mu);
}

void
seq_get_stats(struct seq *s, struct seq_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	pthread_mutex_unlock(&s->mu);
}

void
seq_stop(struct seq *s)
{
	if (s == NULL || !s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->started = 0;
}

void
seq_free(struct seq *s)
{
	if (s == NULL)
		return;
	seq_stop(s);
	if (s->done_ev != NULL)
		event_free(s->done_ev);
	free(s->items);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}
