/*
 * keytrail-logd: what the two halves of the log's storage share.
 *
 * store.c opens the LMDB environment, owns the schema and meta and does
 * every write; store_rd.c runs the read sessions.  This private header
 * holds what both need: the store and read-session structures, the
 * database handles and the key layouts.  Only those two files include it
 * (and so lmdb.h); every other module uses store.h.
 */
#ifndef KEYTRAIL_LOGD_STORE_INT_H
#define KEYTRAIL_LOGD_STORE_INT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "bloom.h"
#include "ixbuf.h"
#include "keytrail/common.h"
#include "store.h"

/* Broken invariants abort, in every build (STYLE.md section 1.3). */
#define STORE_ASSERT(c) \
	do { \
		if (!(c)) \
			abort(); \
	} while (0)

/*
 * Tree levels that can hold stored hashes: kt_stored_hash_index takes
 * levels 0..62, and no tree below KT_SIZE_MAX reaches level 63.
 */
#define STORE_LEVELS 63
/* A level tile key: the tree level, then the tile index big-endian. */
#define STORE_TILE_KEY 9
/* A search index key: value length, value, leaf index big-endian. */
#define STORE_INDEX_KEY_MAX (1 + STORE_INDEX_VALUE_MAX + 8)

/* The named databases; store_db_names gives their names on disk. */
enum store_dbi {
	DB_META,
	DB_ENTRIES,
	DB_TILES,
	DB_BYHASH,
	DB_BYKEY,
	DB_BYDIGEST,
	DB_BYARTIFACT,
	DB_CHECKPOINTS,
	DB_KEYS,
	DB_POLICIES,
	DB_REQUESTS,
	DB_PENDING0, /* the index rows of entries not yet merged (two runs) */
	DB_PENDING1,
	DB_BLOOMS, /* the index tables' Bloom filters, by slot */
	DB_TABLE0, /* the index tables (STORE_TABLES of them) */
	DB_COUNT = DB_TABLE0 + 64
};

/*
 * Index tables (docs/storage.md, "Index tables"): sorted tables of index
 * rows, each written once, in key order, and merged STORE_TABLE_FANOUT at
 * a time into one of the next level.  A row's key in a table is its
 * table number (3 byhash .. 6 byartifact) then its key in that B-tree.
 */
#define STORE_TABLES (DB_COUNT - DB_TABLE0)
#define STORE_TABLE_FANOUT 8
/* Table levels are below this (meta.ixtables refuses others). */
#define STORE_TABLE_LEVELS 64
/* Sources a merge may have (more than the fanout: room to change it). */
#define STORE_TABLE_MERGE_MAX 16
/*
 * Rows a batch writes into a table at least (docs/storage.md, "Index
 * tables"): a batch's share of a merge or of the buffer's flush
 * that is smaller is owed to a later batch instead.  Each slice rewrites
 * the table's last leaf and branch pages and seeks every source again,
 * whatever its size; at about 240 rows a batch that was most of a
 * slice's cost.  A table of fewer than twice this many entries pays at
 * half its size, so small runs (tests) keep their pace.
 */
#define STORE_SLICE_MIN 2048
/*
 * A merge's slice in quarters of the rows the batch buffered: 16, 4x
 * (store.c, "Index tables").  Overridable at build time only to compare
 * paces in benchmarks.
 */
#ifndef STORE_MERGE_PACE
#define STORE_MERGE_PACE 16
#endif
#define STORE_TABLE_KEY_MAX (1 + STORE_INDEX_KEY_MAX)
/*
 * Tables up to this level get a Bloom filter (bloom.h), built while they
 * are written: its memory is bounded by the largest such table (about
 * 2.5 bytes per entry: 10.5 MB for a table of level 2 at the default
 * run), and above it there are few tables to probe.
 */
#define STORE_BLOOM_LEVEL_MAX 2
/* A table's state (struct store_tab flags). */
#define TAB_LIVE 1   /* complete: lookups read it */
#define TAB_SOURCE 2 /* live, and being merged into the next level */
#define TAB_TARGET 4 /* being written (by a merge, or at level 0 from */
		     /* the frozen run); lookups do not read it yet */

struct store_tab {
	uint8_t slot;  /* the table is DB_TABLE0 + slot */
	uint8_t level; /* 0: one run; each merge adds one */
	uint8_t flags;
	uint64_t first, end; /* the entries whose rows it holds */
};

/*
 * The list of tables, as meta's "ixtables" holds it, and the filters of
 * the live ones, read (lazily, in place) from the same transaction.
 */
struct store_tabs {
	unsigned n;
	struct store_tab t[STORE_TABLES];
	int bf_loaded;
	const uint8_t *bf[STORE_TABLES]; /* by slot; NULL: no filter */
	size_t bflen[STORE_TABLES];
};

/* Keys of the meta database. */
#define META_VERSION "version"
#define META_ORIGIN "origin"
#define META_SIZE "size"
#define META_SIGNED_SIZE "signed_size"
#define META_SIGNED_ROOT "signed_root"
/* Which pending table takes new rows (0 or 1), and whether the other */
/* holds a full run being merged into the indexes (0 or 1). */
#define META_IXRUN "ixrun"
#define META_IXFROZEN "ixfrozen"
/* The index tables: 19 bytes each (slot, level, flags, first, end). */
#define META_IXTABLES "ixtables"
#define STORE_TAB_RECORD 19

/* The writer's scratch, defined and used in store.c only. */
struct store_level;
struct store_result;

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	uint64_t map_size;
	char origin[STORE_ORIGIN_MAX + 1];
	size_t originlen;
	/*
	 * Writer scratch.  Used only inside a write transaction, so LMDB's
	 * writer lock serialises it.
	 */
	struct store_level *levels; /* [STORE_LEVELS] */
	struct store_result *res;
	size_t rescap;
	struct kt_buf text;
	struct kt_buf note;
	struct store_times last; /* of the last store_append */
	/*
	 * The index buffer (ixbuf.h): the newest entries' index rows, and a
	 * full run being merged.  The sequencer changes the pointers, under
	 * ixmu, only after a commit; read sessions take references under
	 * ixmu.  The rest is the writer's.
	 */
	pthread_mutex_t ixmu;
	int ixmu_ok;
	struct ixbuf *ixact;
	struct ixbuf *ixfrz;
	int ixrun;	/* the pending table of ixact */
	uint32_t ixpos; /* merge position in ixfrz */
	uint64_t ixcap; /* entries per run */
	/*
	 * Rows owed to the flush of ixfrz and to the merge into each level
	 * (STORE_SLICE_MIN), carried from batch to batch.  Pace only: an
	 * aborted batch's share is not taken back, and a restart starts
	 * each at STORE_SLICE_MIN.
	 */
	size_t flushdebt;
	size_t mergedebt[STORE_TABLE_LEVELS];
	/*
	 * The filters of the tables being written, by slot; bbok[slot] is
	 * set when the filter has seen every row (the table was begun by
	 * this process).  The writer's.
	 */
	struct bloom bb[STORE_TABLES];
	uint8_t bbok[STORE_TABLES];
	/* Table lookups: read, or skipped by a filter (any thread). */
	atomic_uint_fast64_t probes_read, probes_skipped;
	/* Slices written into index tables, and the rows they moved. */
	atomic_uint_fast64_t slices, slice_rows;
	/* store_debug_set_rd_hook: tests only. */
	void (*rd_hook)(void *ctx);
	void *rd_hook_ctx;
};

/* One tile per tree level, looked up by a read session. */
struct store_rd_tile {
	uint64_t tile;
	const uint8_t *p; /* borrowed from LMDB until the session ends */
	size_t len;
	int ok;
};

struct store_rd {
	struct store *s;
	MDB_txn *txn;
	uint64_t size;
	int has_cp;
	uint64_t signed_size;
	struct kt_hash signed_root;
	struct ixbuf *ix[2]; /* the buffered index runs of this snapshot */
	int tabs_ok;	     /* tabs read from this snapshot's meta */
	struct store_tabs tabs;
	struct store_rd_tile cache[STORE_LEVELS];
};

/*
 * Read-side mapping: no message, just the code.  Inline here rather than
 * exported from store.c: under -fPIC GCC does not look inside an exported
 * function, and unless it sees that this never returns KT_OK, -O3 warns
 * that store_rd.c's failed lookups may leave their outputs unset.
 */
static inline int
store_rd_error(int mrc)
{
	if (mrc == MDB_NOTFOUND)
		return KT_ENOTFOUND;
	if (mrc == ENOMEM)
		return KT_ENOMEM;
	return KT_EIO;
}

/* Helpers of store.c that store_rd.c uses too; see their definitions. */
MDB_val store_val(const void *p, size_t len);
void store_tile_key(uint8_t k[STORE_TILE_KEY], int level, uint64_t tile);
size_t store_index_key(uint8_t k[STORE_INDEX_KEY_MAX], const uint8_t *value,
    size_t len, uint64_t index);
int store_aux_dbi(enum store_aux db, enum store_dbi *out);
int store_meta_u64(
    const struct store *s, MDB_txn *txn, const char *name, uint64_t *out);
int store_meta_signed(const struct store *s, MDB_txn *txn, int *has_cp,
    uint64_t *size, struct kt_hash *root);
int store_tabs_read(
    const struct store *s, MDB_txn *txn, struct store_tabs *out);
void store_tabs_encode(const struct store_tabs *t, uint8_t *out, size_t *len);
/*
 * Lookups in the live index tables of t: a leaf hash (KT_OK and *index,
 * KT_ENOTFOUND, or an error), and the leaf indexes above after of a
 * search index's rows with key prefix (plen bytes, without the table
 * number), from every table, in order, at most max.
 */
int store_tabs_leaf(struct store *s, MDB_txn *txn, struct store_tabs *t,
    const uint8_t *leaf, uint64_t *index);
int store_tabs_search(const struct store *s, MDB_txn *txn,
    const struct store_tabs *t, enum store_dbi db, const uint8_t *prefix,
    size_t plen, uint64_t after, uint64_t *out, size_t max, size_t *nout);
/*
 * Starts fetching the filter blocks a later store_tabs_candidates for the
 * same key will test, so that the wait overlaps other work.
 */
void store_tabs_prefetch(const struct store *s, MDB_txn *txn,
    struct store_tabs *t, uint8_t kind, const uint8_t *p, size_t len);
/*
 * The live tables of t (bit i for t->t[i]) that may hold the key (kind,
 * p[0..len)) by their filters: the others certainly do not.  Reads the
 * filters on first use in the transaction.
 */
uint64_t store_tabs_candidates(struct store *s, MDB_txn *txn,
    struct store_tabs *t, uint8_t kind, const uint8_t *p, size_t len);
/*
 * Collects the leaf indexes of dbi's rows whose key is pre (plen bytes)
 * then a leaf index, from the key start (slen bytes) on, at most max, in
 * order.  Returns KT_OK and *n, or an error.
 */
int store_scan_index(MDB_txn *txn, MDB_dbi dbi, const uint8_t *start,
    size_t slen, size_t plen, uint64_t *out, size_t max, size_t *n);
int store_ix_leaf(struct ixbuf *const ix[2], const uint8_t *leaf,
    uint64_t limit, uint64_t *index);
/* Merges two ascending lists into out (at most max), dropping repeats. */
size_t store_ix_union(const uint64_t *a, size_t na, const uint64_t *b,
    size_t nb, uint64_t *out, size_t max);
int store_ix_search(struct ixbuf *const ix[2], enum store_dbi db,
    const uint8_t *prefix, size_t plen, uint64_t after, uint64_t limit,
    uint64_t *out, size_t max, size_t *nout);

#endif
