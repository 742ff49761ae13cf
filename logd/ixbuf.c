/*
 * Index rows held in memory (ixbuf.h): skip lists in one growing arena,
 * nodes linked by their offsets so the arena may move when it grows.
 * There is one list per (db, first byte of the key), a bucket, so that a
 * search starts among the rows that share both: the leaf-hash and digest
 * rows are random, and a search through one list of a whole run's rows
 * visited about twice as many nodes, each a cache miss.  The buckets'
 * heads come first in the arena, in (db, byte) order; no node links to a
 * head, and the first head is at offset 0, so a link of 0 ends a level.
 * Heights are drawn with probability 1/4 per level from a xorshift
 * generator: nothing here is secret.
 */
#define _GNU_SOURCE /* mremap */
#include "ixbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bloom.h"

#define IXBUF_HEIGHT 16
#define IXBUF_BUCKETS (IXBUF_DBS * 256)
#define IXBUF_ALIGN 8
/* Arena offsets are 32-bit: a run stays far below 4 GiB. */
#define IXBUF_ARENA_MAX (UINT32_MAX - 65536u)
/* Huge pages, where the system gives them on request. */
#define IXBUF_HUGE ((size_t)2 << 20)

struct ixnode {
	uint64_t index;
	uint16_t klen;
	uint8_t vlen;
	uint8_t db;
	uint8_t height;
	uint8_t pad[3];
	uint32_t next[]; /* height links, then the key, then the value */
};

struct ixbuf {
	atomic_int refs;
	pthread_rwlock_t lock;
	uint8_t *arena;
	size_t len, cap;
	uint32_t *order; /* node offsets in the order they were added */
	size_t nrows, ordcap;
	uint64_t rng;
	struct bloom filter; /* filter.bits NULL: no filter */
};

static struct ixnode *
ix_node(const struct ixbuf *b, uint32_t off)
{
	return (struct ixnode *)(void *)(b->arena + off);
}

static const uint8_t *
ix_key(const struct ixnode *n)
{
	return (const uint8_t *)&n->next[n->height];
}

static size_t
ix_size(int height, size_t klen, size_t vlen)
{
	size_t sz = sizeof(struct ixnode) + (size_t)height * sizeof(uint32_t) +
	    klen + vlen;

	return (sz + IXBUF_ALIGN - 1) & ~(size_t)(IXBUF_ALIGN - 1);
}

#define IXBUF_HEAD_SIZE ix_size(IXBUF_HEIGHT, 0, 0)

/* The bucket of (db, key): by key[0], or 0 for an empty key. */
static size_t
ix_bucket(uint8_t db, const uint8_t *key, size_t klen)
{
	return (size_t)db * 256 + (klen > 0 ? key[0] : 0);
}

/* The offset of bucket bk's head. */
static uint32_t
ix_head(size_t bk)
{
	return (uint32_t)(bk * IXBUF_HEAD_SIZE);
}

/*
 * The node after x at level 0, on into the next buckets' lists: x is a
 * head or a node.  0 at the end of the run.
 */
static uint32_t
ix_after(const struct ixbuf *b, uint32_t x)
{
	const struct ixnode *n = ix_node(b, x);
	size_t bk;

	if (n->next[0] != 0)
		return n->next[0];
	if (x < IXBUF_BUCKETS * IXBUF_HEAD_SIZE)
		bk = x / IXBUF_HEAD_SIZE;
	else
		bk = ix_bucket(n->db, ix_key(n), n->klen);
	while (++bk < IXBUF_BUCKETS) {
		uint32_t nx = ix_node(b, ix_head(bk))->next[0];

		if (nx != 0)
			return nx;
	}
	return 0;
}

/* Compares node n with (db, key) in LMDB's default key order. */
static int
ix_cmp(const struct ixnode *n, uint8_t db, const uint8_t *key, size_t klen)
{
	size_t m = n->klen < klen ? n->klen : klen;
	int c;

	if (n->db != db)
		return n->db < db ? -1 : 1;
	if (m > 0 && (c = memcmp(ix_key(n), key, m)) != 0)
		return c;
	return n->klen < klen ? -1 : n->klen > klen;
}

/*
 * The arena is mapped, not allocated: a search lands on random nodes of
 * tens of MiB, and in 4 KiB pages nearly every one is a TLB miss too, so
 * the arena asks for huge pages (a hint); and it grows by mremap, which
 * moves pages instead of copying them.  Fresh mappings read as zeros.
 */
static uint8_t *
ix_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

int
ixbuf_new(uint64_t filter_entries, struct ixbuf **out)
{
	struct ixbuf *b = calloc(1, sizeof(*b));
	size_t heads = IXBUF_BUCKETS * IXBUF_HEAD_SIZE;

	if (b == NULL)
		return KT_ENOMEM;
	b->cap = IXBUF_HUGE;
	if ((b->arena = ix_map(b->cap)) == NULL) {
		free(b);
		return KT_ENOMEM;
	}
	if (filter_entries > 0 &&
	    bloom_init(&b->filter, filter_entries) != KT_OK) {
		(void)munmap(b->arena, b->cap);
		free(b);
		return KT_ENOMEM;
	}
	for (size_t i = 0; i < IXBUF_BUCKETS; i++)
		ix_node(b, ix_head(i))->height = IXBUF_HEIGHT;
	b->len = heads;
	b->rng = UINT64_C(0x9e3779b97f4a7c15);
	atomic_init(&b->refs, 1);
	if (pthread_rwlock_init(&b->lock, NULL) != 0) {
		bloom_free(&b->filter);
		(void)munmap(b->arena, b->cap);
		free(b);
		return KT_ENOMEM;
	}
	*out = b;
	return KT_OK;
}

struct ixbuf *
ixbuf_ref(struct ixbuf *b)
{
	if (b != NULL)
		atomic_fetch_add(&b->refs, 1);
	return b;
}

void
ixbuf_free(struct ixbuf *b)
{
	if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	pthread_rwlock_destroy(&b->lock);
	bloom_free(&b->filter);
	(void)munmap(b->arena, b->cap);
	free(b->order);
	free(b);
}

static int
ix_height(struct ixbuf *b)
{
	int h = 1;

	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	for (uint64_t r = b->rng; h < IXBUF_HEIGHT && (r & 3) == 0; r >>= 2)
		h++;
	return h;
}

/*
 * Fills prev[l] with the last node at level l of the bucket of (db, key)
 * that sorts before (db, key) (the bucket's head if none).
 */
static void
ix_find(const struct ixbuf *b, uint8_t db, const uint8_t *key, size_t klen,
    uint32_t prev[IXBUF_HEIGHT])
{
	uint32_t x = ix_head(ix_bucket(db, key, klen));

	for (int l = IXBUF_HEIGHT - 1; l >= 0; l--) {
		uint32_t nx;

		while ((nx = ix_node(b, x)->next[l]) != 0 &&
		    ix_cmp(ix_node(b, nx), db, key, klen) < 0)
			x = nx;
		prev[l] = x;
	}
}

/* Makes room for need more bytes; KT_OK or KT_ENOMEM. */
static int
ix_reserve(struct ixbuf *b, size_t need)
{
	size_t cap = b->cap;
	uint8_t *p;

	if (b->len + need <= b->cap)
		return KT_OK;
	while (cap < b->len + need)
		cap *= 2;
	if (cap > IXBUF_ARENA_MAX) {
		if (b->len + need > IXBUF_ARENA_MAX)
			return KT_ENOMEM;
		cap = IXBUF_ARENA_MAX;
	}
	if ((p = mremap(b->arena, b->cap, cap, MREMAP_MAYMOVE)) == MAP_FAILED)
		return KT_ENOMEM;
	(void)madvise(p, cap, MADV_HUGEPAGE);
	b->arena = p;
	b->cap = cap;
	return KT_OK;
}

int
ixbuf_add(struct ixbuf *b, uint8_t db, const uint8_t *key, size_t klen,
    size_t flen, const uint8_t *val, size_t vlen, uint64_t index)
{
	uint32_t prev[IXBUF_HEIGHT], off;
	struct ixnode *n;
	int h, rc = KT_OK;
	size_t sz;

	if (db >= IXBUF_DBS || klen == 0 || klen > IXBUF_KEY_MAX ||
	    vlen > IXBUF_VAL_MAX || flen > klen || key == NULL ||
	    (vlen > 0 && val == NULL))
		return KT_EINVAL;
	h = ix_height(b);
	sz = ix_size(h, klen, vlen);
	(void)pthread_rwlock_wrlock(&b->lock);
	if (b->nrows > 0 && index < ix_node(b, b->order[b->nrows - 1])->index) {
		rc = KT_EINVAL; /* entries come in index order */
		goto out;
	}
	if (b->nrows == b->ordcap) {
		size_t nc = b->ordcap ? b->ordcap * 2 : 1024;
		uint32_t *o = realloc(b->order, nc * sizeof(*o));

		if (o == NULL) {
			rc = KT_ENOMEM;
			goto out;
		}
		b->order = o;
		b->ordcap = nc;
	}
	if ((rc = ix_reserve(b, sz)) != KT_OK)
		goto out;
	off = (uint32_t)b->len;
	n = ix_node(b, off);
	memset(n, 0, sz);
	n->index = index;
	n->klen = (uint16_t)klen;
	n->vlen = (uint8_t)vlen;
	n->db = db;
	n->height = (uint8_t)h;
	memcpy((uint8_t *)&n->next[h], key, klen);
	if (vlen > 0)
		memcpy((uint8_t *)&n->next[h] + klen, val, vlen);
	b->len += sz;
	ix_find(b, db, key, klen, prev);
	for (int l = 0; l < h; l++) {
		n->next[l] = ix_node(b, prev[l])->next[l];
		ix_node(b, prev[l])->next[l] = off;
	}
	b->order[b->nrows++] = off;
	if (flen > 0 && b->filter.bits != NULL)
		bloom_add(&b->filter, db, key, flen);
out:
	(void)pthread_rwlock_unlock(&b->lock);
	return rc;
}

size_t
ixbuf_rows(struct ixbuf *b)
{
	size_t n;

	(void)pthread_rwlock_rdlock(&b->lock);
	n = b->nrows;
	(void)pthread_rwlock_unlock(&b->lock);
	return n;
}

uint64_t
ixbuf_entries(struct ixbuf *b)
{
	uint64_t n = 0;

	(void)pthread_rwlock_rdlock(&b->lock);
	if (b->nrows > 0)
		n = ix_node(b, b->order[b->nrows - 1])->index -
		    ix_node(b, b->order[0])->index + 1;
	(void)pthread_rwlock_unlock(&b->lock);
	return n;
}

uint64_t
ixbuf_first(struct ixbuf *b)
{
	uint64_t i = 0;

	(void)pthread_rwlock_rdlock(&b->lock);
	if (b->nrows > 0)
		i = ix_node(b, b->order[0])->index;
	(void)pthread_rwlock_unlock(&b->lock);
	return i;
}

void
ixbuf_truncate(struct ixbuf *b, size_t nrows)
{
	(void)pthread_rwlock_wrlock(&b->lock);
	while (b->nrows > nrows) {
		uint32_t off = b->order[--b->nrows], prev[IXBUF_HEIGHT];
		struct ixnode *n = ix_node(b, off);

		/* Unlink n itself, not an equal key added before it. */
		ix_find(b, n->db, ix_key(n), n->klen, prev);
		for (int l = 0; l < n->height; l++) {
			uint32_t x = prev[l];

			while (ix_node(b, x)->next[l] != off)
				x = ix_node(b, x)->next[l];
			ix_node(b, x)->next[l] = n->next[l];
		}
		/* The newest node is the last in the arena. */
		b->len = off;
	}
	(void)pthread_rwlock_unlock(&b->lock);
}

int
ixbuf_maybe(struct ixbuf *b, uint8_t db, const uint8_t *key, size_t len)
{
	int maybe = 1;

	(void)pthread_rwlock_rdlock(&b->lock);
	if (b->filter.bits != NULL)
		maybe =
		    bloom_maybe(b->filter.bits, b->filter.len, db, key, len);
	(void)pthread_rwlock_unlock(&b->lock);
	return maybe;
}

static void
ix_row(const struct ixbuf *b, uint32_t off, struct ixbuf_row *r)
{
	const struct ixnode *n = ix_node(b, off);

	r->db = n->db;
	r->key = ix_key(n);
	r->klen = n->klen;
	r->val = ix_key(n) + n->klen;
	r->vlen = n->vlen;
	r->index = n->index;
}

int
ixbuf_scan(struct ixbuf *b, uint8_t db, const uint8_t *from, size_t flen,
    int (*cb)(void *ctx, const struct ixbuf_row *r), void *ctx)
{
	uint32_t prev[IXBUF_HEIGHT], x;
	struct ixbuf_row r;
	int rc = 0;

	(void)pthread_rwlock_rdlock(&b->lock);
	if (db >= IXBUF_DBS)
		goto out;
	ix_find(b, db, from, flen, prev);
	for (x = ix_after(b, prev[0]); x != 0 && rc == 0; x = ix_after(b, x)) {
		if (ix_node(b, x)->db != db)
			break;
		ix_row(b, x, &r);
		rc = cb(ctx, &r);
	}
out:
	(void)pthread_rwlock_unlock(&b->lock);
	return rc;
}

int
ixbuf_next(struct ixbuf *b, uint32_t *pos, struct ixbuf_row *out)
{
	uint32_t x;

	(void)pthread_rwlock_rdlock(&b->lock);
	x = ix_after(b, *pos);
	if (x != 0) {
		ix_row(b, x, out);
		*pos = x;
	}
	(void)pthread_rwlock_unlock(&b->lock);
	return x != 0;
}
