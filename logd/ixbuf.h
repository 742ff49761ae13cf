/*
 * keytrail-logd: index rows held in memory before they are written to an
 * index table (docs/storage.md, "The index buffer").
 *
 * Every entry adds rows to four indexes (leaf hash, key, digest,
 * artifact), and the leaf-hash and digest rows are random: written to
 * B-trees, a batch of 64 entries dirtied well over a hundred index pages,
 * and the commit's fdatasync costs in proportion to the pages it writes.
 * So the store keeps a run of the newest entries' rows here, in the
 * indexes' own key order (skip lists), writes them to a sequential
 * table only (one record per entry, so a restart rebuilds the run), and
 * later writes a full run out in key order, a slice per batch, to an
 * index table of its own.
 *
 * One thread writes (ixbuf_add, ixbuf_truncate); any thread may read
 * (ixbuf_scan) at the same time: a read-write lock inside guards the
 * nodes.  A run is reference-counted so that a read session keeps the
 * runs it started with.
 */
#ifndef KEYTRAIL_LOGD_IXBUF_H
#define KEYTRAIL_LOGD_IXBUF_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

/* Longest key and value of a row (LMDB keys are at most 511 bytes). */
#define IXBUF_KEY_MAX 511
#define IXBUF_VAL_MAX 255
/* Rows' tables (db) are below this. */
#define IXBUF_DBS 8

struct ixbuf;

/* A row as ixbuf_scan and ixbuf_next show it; borrowed from the run. */
struct ixbuf_row {
	uint8_t db;
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
	uint64_t index; /* the leaf index of the entry that added the row */
};

/*
 * A new, empty run, with a Bloom filter (bloom.h) sized for
 * filter_entries entries over the keys that ixbuf_add is told to file
 * (none when filter_entries is 0).  More entries than that only make the
 * filter answer "maybe" more often.  Returns KT_OK or KT_ENOMEM.
 */
int ixbuf_new(uint64_t filter_entries, struct ixbuf **out) KT_MUST_CHECK;
struct ixbuf *ixbuf_ref(struct ixbuf *b);
void ixbuf_free(struct ixbuf *b);

/*
 * Adds a row for table db, of the entry at leaf index index.  Rows are
 * ordered by (db, key) as LMDB orders keys; a key already in the run is
 * added again (the store never adds one twice).  Entries come in index
 * order, each with at least one row, so a run holds a contiguous range of
 * entries.  The first flen bytes of the key (0 for none) go into the
 * run's filter, as the key ixbuf_maybe is later asked about.  Returns
 * KT_OK, KT_EINVAL (db, lengths, or an index below the last row's) or
 * KT_ENOMEM.
 */
int ixbuf_add(struct ixbuf *b, uint8_t db, const uint8_t *key, size_t klen,
    size_t flen, const uint8_t *val, size_t vlen, uint64_t index) KT_MUST_CHECK;

/*
 * 0 when no row of db filed key[0..len) (ixbuf_add's flen) into the
 * run's filter, so an exact lookup can skip the run; 1 when one may have,
 * or when the run has no filter.  A truncated row's key may still answer
 * 1.
 */
int ixbuf_maybe(struct ixbuf *b, uint8_t db, const uint8_t *key, size_t len);

/* Rows in the run. */
size_t ixbuf_rows(struct ixbuf *b);
/* Entries whose rows the run holds (the span of their leaf indexes). */
uint64_t ixbuf_entries(struct ixbuf *b);
/* The leaf index of the run's first entry (0 when the run is empty). */
uint64_t ixbuf_first(struct ixbuf *b);

/*
 * Removes every row added after the run held nrows (a batch that did not
 * commit).
 */
void ixbuf_truncate(struct ixbuf *b, size_t nrows);

/*
 * Calls cb on the rows of db whose key is >= from, in key order, until
 * cb returns non-zero (which ixbuf_scan then returns) or the rows of db
 * end (0).
 */
int ixbuf_scan(struct ixbuf *b, uint8_t db, const uint8_t *from, size_t flen,
    int (*cb)(void *ctx, const struct ixbuf_row *r), void *ctx);

/*
 * Walks the whole run in (db, key) order: *pos is 0 to start; returns 1
 * and *out while rows remain, 0 at the end.  For a run no one adds to
 * any more (writing it out).
 */
int ixbuf_next(struct ixbuf *b, uint32_t *pos, struct ixbuf_row *out);

#endif
