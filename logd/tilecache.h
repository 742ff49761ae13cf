/*
 * An in-memory cache of served tiles and entry bundles.  A tile of a
 * given level, index and width never changes (C2SP tlog-tiles: the hashes
 * and entries it covers are fixed once appended), so every answer can be
 * cached without invalidation; an LRU bound keeps memory fixed.  Cached
 * bytes are reference-counted blobs handed to the HTTP layer without a
 * copy.  Used from the event loop thread only.
 */
#ifndef LOGD_TILECACHE_H
#define LOGD_TILECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

/*
 * Immutable bytes shared between the cache and replies in flight.  The
 * HTTP layer may attach a kernel-side copy (seg, freed with seg_free when
 * the blob goes) so large answers are sent without copying them through
 * user space.
 */
struct blob {
	unsigned refs;
	size_t len;
	void *seg;
	void (*seg_free)(void *seg);
	uint8_t data[];
};

/* A new blob holding a copy of p[0..len) with one reference, or NULL. */
struct blob *blob_new(const uint8_t *p, size_t len);
void blob_ref(struct blob *b);
void blob_release(struct blob *b);

struct tilecache;

/* Cache keys: level (KT_TILE_ENTRIES for bundles), index, width, gzip. */
struct tilecache_key {
	int level;
	uint64_t index;
	unsigned width;
	int gzip;
};

/* A cache of at most max_bytes of blobs (0 disables it). */
int tilecache_new(size_t max_bytes, struct tilecache **out) KT_MUST_CHECK;
void tilecache_free(struct tilecache *c);
/* The cached blob for k with a new reference, or NULL. */
struct blob *tilecache_get(struct tilecache *c, const struct tilecache_key *k);
/* Caches b under k (taking a reference), evicting least recently used. */
void tilecache_put(
    struct tilecache *c, const struct tilecache_key *k, struct blob *b);

struct tilecache_stats {
	uint64_t hits, misses, bytes, entries;
};
void tilecache_stats(const struct tilecache *c, struct tilecache_stats *out);

#endif
