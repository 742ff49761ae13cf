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
	DB_COUNT
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
int store_ix_leaf(struct ixbuf *const ix[2], const uint8_t *leaf,
    uint64_t limit, uint64_t *index);
/* Merges two ascending lists into out (at most max), dropping repeats. */
size_t store_ix_union(const uint64_t *a, size_t na, const uint64_t *b,
    size_t nb, uint64_t *out, size_t max);
int store_ix_search(struct ixbuf *const ix[2], enum store_dbi db,
    const uint8_t *prefix, size_t plen, uint64_t after, uint64_t limit,
    uint64_t *out, size_t max, size_t *nout);

#endif
