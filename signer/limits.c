/*
 * keytrail signer: the stateful limits that go with the policy, apart
 * from the pure policy engine (policy.c): the per-principal, per-key
 * signing rate (token buckets) and the per-host throttle of failed
 * authentications.  Both are bounded in memory and guarded by a mutex.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* Hard invariant checks: a broken invariant aborts even in release builds. */
#define POL_ASSERT(c) \
	do { \
		if (!(c)) \
			abort(); \
	} while (0)

#define POL_HOUR 3600

/* FNV-1a over a NUL-terminated string, continuing from h. */
static uint64_t
pol_fnv(uint64_t h, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i] != '\0'; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#define POL_FNV_OFFSET UINT64_C(0xcbf29ce484222325)

/*
 * A token bucket in units of 1/3600 token: it holds per_hour * 3600
 * units, refills per_hour units a second, and a request costs 3600.
 * Integers, no rounding: a full bucket allows exactly per_hour requests.
 */
struct pol_bucket {
	uint64_t hash; /* of principal and key, to skip most compares */
	char principal[POLICY_NAME_MAX + 1];
	char key[POLICY_LABEL_MAX + 1];
	int64_t level; /* units */
	int64_t last;  /* when level was computed */
	int64_t full;  /* when the bucket is full again */
};

struct policy_rate {
	pthread_mutex_t mu;
	struct pol_bucket *b;
	size_t n;
	size_t max;
};

int
policy_rate_new(size_t max_pairs, struct policy_rate **out)
{
	struct policy_rate *r;

	if (max_pairs == 0)
		max_pairs = POLICY_RATE_PAIRS_DEFAULT;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return KT_ENOMEM;
	if ((r->b = calloc(max_pairs, sizeof(*r->b))) == NULL) {
		free(r);
		return KT_ENOMEM;
	}
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r->b);
		free(r);
		return KT_ENOMEM;
	}
	r->max = max_pairs;
	*out = r;
	return KT_OK;
}

void
policy_rate_free(struct policy_rate *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->b);
	free(r);
}

/* Finds the bucket of (principal, key), or makes one (full). */
static struct pol_bucket *
pol_bucket_get(
    struct policy_rate *r, const char *principal, const char *key, int64_t now)
{
	uint64_t h =
	    pol_fnv(pol_fnv(POL_FNV_OFFSET, principal, POLICY_NAME_MAX), key,
		POLICY_LABEL_MAX);
	struct pol_bucket *b = NULL;

	for (size_t i = 0; i < r->n; i++) {
		if (r->b[i].hash == h &&
		    strcmp(r->b[i].principal, principal) == 0 &&
		    strcmp(r->b[i].key, key) == 0)
			return &r->b[i];
	}
	if (r->n < r->max) {
		b = &r->b[r->n++];
	} else {
		/*
		 * Replace the bucket that is full soonest: if it is full
		 * already, forgetting it changes nothing.
		 */
		b = &r->b[0];
		for (size_t i = 1; i < r->n; i++) {
			if (r->b[i].full < b->full)
				b = &r->b[i];
		}
	}
	memset(b, 0, sizeof(*b));
	b->hash = h;
	memcpy(b->principal, principal, strlen(principal) + 1);
	memcpy(b->key, key, strlen(key) + 1);
	b->level = INT64_MAX; /* clamped to the capacity on use */
	b->last = now;
	b->full = now;
	return b;
}

int
policy_rate_take(struct policy_rate *r, const struct policy *p,
    const char *principal, const char *key, int64_t now, int64_t *retry_after)
{
	struct pol_bucket *b;
	const char *label;
	uint32_t per_hour;
	int64_t cap, cost = POL_HOUR, rate;
	int rc;

	POL_ASSERT(r != NULL && p != NULL);
	if (principal == NULL || key == NULL || now < 0 ||
	    now > POLICY_TIME_MAX || strlen(principal) > POLICY_NAME_MAX)
		return KT_EINVAL;
	if ((rc = policy_key_rate(p, key, &label, &per_hour)) != KT_OK)
		return rc;
	if (per_hour == 0)
		return KT_OK;
	rate = per_hour;
	cap = rate * POL_HOUR;

	POL_ASSERT(pthread_mutex_lock(&r->mu) == 0);
	b = pol_bucket_get(r, principal, label, now);
	/*
	 * Refill for the time since the last look.  A clock that went back
	 * refills nothing; more than an hour fills the bucket whatever the
	 * rate, so the product stays small.
	 */
	if (now > b->last) {
		int64_t dt =
		    now - b->last < POL_HOUR ? now - b->last : POL_HOUR;

		b->level =
		    b->level > cap - dt * rate ? cap : b->level + dt * rate;
		b->last = now;
	}
	if (b->level > cap)
		b->level = cap;
	if (b->level >= cost) {
		b->level -= cost;
		rc = KT_OK;
	} else {
		if (retry_after != NULL)
			*retry_after = (cost - b->level + rate - 1) / rate;
		rc = KT_EPOLICY;
	}
	b->full = b->last + (cap - b->level + rate - 1) / rate;
	POL_ASSERT(pthread_mutex_unlock(&r->mu) == 0);
	return rc;
}

struct pol_peer {
	uint64_t hash;
	char peer[POLICY_PEER_MAX + 1];
	unsigned count;	   /* failures not yet drained */
	int64_t drained;   /* count was last drained at this time */
	int64_t last_fail; /* latest failure */
	int64_t until;	   /* refused before this time */
};

struct policy_throttle {
	pthread_mutex_t mu;
	struct pol_peer *e;
	size_t n;
	size_t max;
};

int
policy_throttle_new(size_t max_peers, struct policy_throttle **out)
{
	struct policy_throttle *t;

	if (max_peers == 0)
		max_peers = POLICY_THROTTLE_PEERS_DEFAULT;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return KT_ENOMEM;
	if ((t->e = calloc(max_peers, sizeof(*t->e))) == NULL) {
		free(t);
		return KT_ENOMEM;
	}
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t->e);
		free(t);
		return KT_ENOMEM;
	}
	t->max = max_peers;
	*out = t;
	return KT_OK;
}

void
policy_throttle_free(struct policy_throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->e);
	free(t);
}

/* The entry of peer, or NULL; with create, a new one when missing. */
static struct pol_peer *
pol_peer_get(struct policy_throttle *t, const char *peer, int create)
{
	uint64_t h = pol_fnv(POL_FNV_OFFSET, peer, POLICY_PEER_MAX);
	size_t len = strnlen(peer, POLICY_PEER_MAX);
	struct pol_peer *e;

	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].hash == h && strlen(t->e[i].peer) == len &&
		    memcmp(t->e[i].peer, peer, len) == 0)
			return &t->e[i];
	}
	if (!create)
		return NULL;
	if (t->n < t->max) {
		e = &t->e[t->n++];
	} else {
		/* Forget the peer whose latest failure is oldest. */
		e = &t->e[0];
		for (size_t i = 1; i < t->n; i++) {
			if (t->e[i].last_fail < e->last_fail)
				e = &t->e[i];
		}
	}
	memset(e, 0, sizeof(*e));
	e->hash = h;
	memcpy(e->peer, peer, len);
	e->peer[len] = '\0';
	return e;
}

int64_t
policy_throttle_wait(struct policy_throttle *t, const char *peer, int64_t now)
{
	struct pol_peer *e;
	int64_t wait = 0;

	POL_ASSERT(t != NULL && peer != NULL);
	POL_ASSERT(pthread_mutex_lock(&t->mu) == 0);
	if ((e = pol_peer_get(t, peer, 0)) != NULL && e->until > now)
		wait = e->until - now;
	POL_ASSERT(pthread_mutex_unlock(&t->mu) == 0);
	return wait;
}

void
policy_throttle_fail(struct policy_throttle *t, const char *peer, int64_t now)
{
	struct pol_peer *e;

	POL_ASSERT(t != NULL && peer != NULL);
	POL_ASSERT(pthread_mutex_lock(&t->mu) == 0);
	e = pol_peer_get(t, peer, 1);
	if (e->count == 0 || now < e->drained) {
		e->drained = now;
	} else {
		int64_t d = (now - e->drained) / POLICY_THROTTLE_DRAIN;

		if (d >= (int64_t)e->count) {
			e->count = 0;
			e->drained = now;
		} else {
			e->count -= (unsigned)d;
			e->drained += d * POLICY_THROTTLE_DRAIN;
		}
	}
	/* The cap only keeps the count from growing without bound. */
	if (e->count < 64)
		e->count++;
	e->last_fail = now;
	if (e->count >= POLICY_THROTTLE_FREE) {
		unsigned shift = e->count - POLICY_THROTTLE_FREE;
		int64_t wait = shift >= 10 ? POLICY_THROTTLE_WAIT_MAX
					   : INT64_C(1) << shift;

		if (wait > POLICY_THROTTLE_WAIT_MAX)
			wait = POLICY_THROTTLE_WAIT_MAX;
		e->until = now + wait;
	}
	POL_ASSERT(pthread_mutex_unlock(&t->mu) == 0);
}
