/*
 * keytrail-logd: Bloom filters over an index table's lookup keys
 * (docs/storage.md, "Index tables").
 *
 * A filter answers "certainly not in the table" for most keys that are
 * not, so a lookup skips the table without reading its B-tree.  It is
 * blocked: a key's bits all fall in one 64-byte block (one cache line),
 * 7 of them, with about 48 bits per entry (two keys an entry at most:
 * its leaf hash, and its digest for dedup), which answers "maybe" for
 * about 0.012% of absent keys.  The stored form is a 8-byte header (format
 * 1, then the block count as u32 big-endian) and the blocks; the filter
 * can be tested in place, in LMDB's map.  Nothing here is secret.
 */
#ifndef KEYTRAIL_LOGD_BLOOM_H
#define KEYTRAIL_LOGD_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

#define BLOOM_HEADER 8
#define BLOOM_BLOCK 64

/* Adds bloom_add_soon holds back, their blocks being fetched meanwhile. */
#define BLOOM_SOON 8

/* A filter being built (bits are BLOOM_HEADER + blocks * BLOOM_BLOCK). */
struct bloom {
	uint32_t blocks;
	uint8_t *bits;
	size_t len;
	uint8_t *soon_blk[BLOOM_SOON];
	uint64_t soon_g[BLOOM_SOON];
	unsigned soon_n, soon_next;
};

/* A filter sized for entries entries.  Returns KT_OK or KT_ENOMEM. */
int bloom_init(struct bloom *b, uint64_t entries) KT_MUST_CHECK;
void bloom_free(struct bloom *b);

/* Adds the key (kind, p[0..len)): kind keeps kinds of key apart. */
void bloom_add(struct bloom *b, uint8_t kind, const uint8_t *p, size_t len);

/*
 * The same add, for a filter nobody tests until bloom_settle: the key's
 * block is fetched from memory now and its bits set a few adds later, so
 * that a long run of adds to a large filter does not wait for each block
 * in turn.  bloom_settle makes every add so far take effect.
 */
void bloom_add_soon(
    struct bloom *b, uint8_t kind, const uint8_t *p, size_t len);
void bloom_settle(struct bloom *b);

/*
 * Tests a stored filter (f[0..flen), as bloom_init and bloom_add left
 * b->bits): 0 if the key is certainly not in it, 1 if it may be or if f
 * is not a well-formed filter.
 */
int bloom_maybe(
    const uint8_t *f, size_t flen, uint8_t kind, const uint8_t *p, size_t len);

/*
 * The same test in steps, for one key against many filters: hash the key
 * once (bloom_probe_init), find each filter's block (bloom_block, NULL if
 * the filter is not well formed: "maybe") so that all of them can be
 * fetched from memory at once, then test each (bloom_block_maybe).
 */
struct bloom_probe {
	uint64_t h, g;
};
void bloom_probe_init(
    struct bloom_probe *pr, uint8_t kind, const uint8_t *p, size_t len);
const uint8_t *bloom_block(
    const uint8_t *f, size_t flen, const struct bloom_probe *pr);
int bloom_block_maybe(const uint8_t *blk, const struct bloom_probe *pr);

#endif
