/*
 * Open-addressing hash table (linear probing, backward-shift deletion)
 * plus a doubly linked LRU list over its slots' entries.
 */
#include <stdlib.h>
#include <string.h>

#include "tilecache.h"

/* Slots per cached entry at most (load factor 1/2). */
#define TILECACHE_SLOTS_PER_ENTRY 2
/* Most entries, whatever the byte budget. */
#define TILECACHE_ENTRIES_MAX 65536

struct tc_entry {
	struct tilecache_key key;
	struct blob *blob;
	struct tc_entry *prev, *next; /* LRU: head is most recent */
};

struct tilecache {
	size_t max_bytes;
	size_t bytes;
	size_t n;
	size_t nslots;
	struct tc_entry **slots;
	struct tc_entry *head, *tail;
	uint64_t hits, misses;
};

struct blob *
blob_new(const uint8_t *p, size_t len)
{
	struct blob *b = malloc(sizeof(*b) + (len ? len : 1));

	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->len = len;
	b->seg = NULL;
	b->seg_free = NULL;
	if (len > 0)
		memcpy(b->data, p, len);
	return b;
}

void
blob_ref(struct blob *b)
{
	b->refs++;
}

void
blob_release(struct blob *b)
{
	if (b != NULL && --b->refs == 0) {
		if (b->seg_free != NULL)
			b->seg_free(b->seg);
		free(b);
	}
}

static size_t
tc_hash(const struct tilecache *c, const struct tilecache_key *k)
{
	uint64_t h = k->index * 0x9e3779b97f4a7c15ull;

	h ^= (uint64_t)(k->level + 2) << 56 ^ (uint64_t)k->width << 40 ^
	    (uint64_t)k->gzip << 39;
	h ^= h >> 29;
	return (size_t)(h % c->nslots);
}

static int
tc_eq(const struct tilecache_key *a, const struct tilecache_key *b)
{
	return a->level == b->level && a->index == b->index &&
	    a->width == b->width && a->gzip == b->gzip;
}

int
tilecache_new(size_t max_bytes, struct tilecache **out)
{
	struct tilecache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return KT_ENOMEM;
	c->max_bytes = max_bytes;
	c->nslots = TILECACHE_ENTRIES_MAX * TILECACHE_SLOTS_PER_ENTRY + 1;
	if ((c->slots = calloc(c->nslots, sizeof(*c->slots))) == NULL) {
		free(c);
		return KT_ENOMEM;
	}
	*out = c;
	return KT_OK;
}

static void
tc_unlink(struct tilecache *c, struct tc_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
tc_push_front(struct tilecache *c, struct tc_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static size_t
tc_find(const struct tilecache *c, const struct tilecache_key *k)
{
	size_t i = tc_hash(c, k);

	while (c->slots[i] != NULL && !tc_eq(&c->slots[i]->key, k))
		i = (i + 1) % c->nslots;
	return i;
}

/* Removes the entry in slot i, keeping every probe chain intact. */
static void
tc_remove_slot(struct tilecache *c, size_t i)
{
	struct tc_entry *e = c->slots[i];
	size_t j = i;

	c->slots[i] = NULL;
	for (;;) {
		size_t h;

		j = (j + 1) % c->nslots;
		if (c->slots[j] == NULL)
			break;
		h = tc_hash(c, &c->slots[j]->key);
		/* Move it back if its home is not within (i, j]. */
		if ((i < j) ? (h <= i || h > j) : (h <= i && h > j)) {
			c->slots[i] = c->slots[j];
			c->slots[j] = NULL;
			i = j;
		}
	}
	tc_unlink(c, e);
	c->bytes -= e->blob->len;
	c->n--;
	blob_release(e->blob);
	free(e);
}

void
tilecache_free(struct tilecache *c)
{
	struct tc_entry *e, *next;

	if (c == NULL)
		return;
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		blob_release(e->blob);
		free(e);
	}
	free(c->slots);
	free(c);
}

struct blob *
tilecache_get(struct tilecache *c, const struct tilecache_key *k)
{
	struct tc_entry *e;

	if (c == NULL || c->max_bytes == 0)
		return NULL;
	e = c->slots[tc_find(c, k)];
	if (e == NULL) {
		c->misses++;
		return NULL;
	}
	c->hits++;
	tc_unlink(c, e);
	tc_push_front(c, e);
	blob_ref(e->blob);
	return e->blob;
}

void
tilecache_put(
    struct tilecache *c, const struct tilecache_key *k, struct blob *b)
{
	struct tc_entry *e;
	size_t i;

	if (c == NULL || b->len > c->max_bytes / 4)
		return;
	if (c->slots[tc_find(c, k)] != NULL)
		return;
	while (c->tail != NULL &&
	    (c->bytes + b->len > c->max_bytes || c->n >= TILECACHE_ENTRIES_MAX))
		tc_remove_slot(c, tc_find(c, &c->tail->key));
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;
	e->key = *k;
	e->blob = b;
	blob_ref(b);
	i = tc_find(c, k);
	c->slots[i] = e;
	tc_push_front(c, e);
	c->bytes += b->len;
	c->n++;
}

void
tilecache_stats(const struct tilecache *c, struct tilecache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	out->hits = c->hits;
	out->misses = c->misses;
	out->bytes = c->bytes;
	out->entries = c->n;
}
