/*
 * The log's storage: one LMDB environment, owned by this file and its
 * read side, store_rd.c (read sessions).  This file opens and closes the
 * environment, creates and checks the schema and meta, and does every
 * write.
 *
 * The schema is in docs/storage.md.  In short: entries by leaf index,
 * every stored hash of the tree in "level tiles" (256 hashes of one tree
 * level per value, so the C2SP tile L/N is the level tile (8L, N) and a
 * partial tile of an older tree is a prefix of the stored one), a leaf
 * hash index for dedup, three search indexes (value || leaf index keys, so
 * a search is one cursor walk), the signed checkpoints, and meta.  New
 * index rows wait in the index buffer (ixbuf.h), then go to sorted index
 * tables merged level by level (below; store_tab.c reads them).
 *
 * A write is one transaction that carries a sticky error (knot's LMDB
 * wrapper does the same): each step is skipped once one has failed, and
 * the end either commits everything or aborts everything.  A batch keeps
 * the growing tile of each tree level in memory (struct store_level) and
 * writes each tile it touches once, so appending n entries costs O(n).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keytrail/checkpoint.h"
#include "keytrail/merkle.h"
#include "keytrail/note.h"
#include "keytrail/tile.h"
#include "store_int.h"

/* Named databases the environment may hold (78 used, room to grow). */
#define STORE_MAXDBS 96

/* The names on disk of the databases of enum store_dbi. */
#define TN(a, b) "ixtable" #a #b
#define TN10(a) \
	TN(a, 0), TN(a, 1), TN(a, 2), TN(a, 3), TN(a, 4), TN(a, 5), TN(a, 6), \
	    TN(a, 7), TN(a, 8), TN(a, 9)
static const char *const store_db_names[DB_COUNT] = { "meta", "entries",
	"tiles", "byhash", "bykey", "bydigest", "byartifact", "checkpoints",
	"keys", "policies", "requests", "pending0", "pending1", "ixblooms",
	TN10(0), TN10(1), TN10(2), TN10(3), TN10(4), TN10(5), TN(6, 0),
	TN(6, 1), TN(6, 2), TN(6, 3) };
#undef TN10
#undef TN
_Static_assert(STORE_TABLES == 64, "store_db_names names 64 index tables");

/*
 * The tile of one tree level that a write batch is filling: tile index
 * tile, its first count hashes valid.  Loaded from the database the first
 * time the batch touches the level.
 */
struct store_level {
	uint64_t tile;
	unsigned count;
	int loaded;
	int dirty;
	uint8_t h[KT_TILE_DATA_MAX];
};

/* What store_append reports per item, kept until the commit succeeds. */
struct store_result {
	uint64_t index;
	int duplicate;
};

/* A write transaction with a sticky error. */
struct store_wtx {
	struct store *s;
	MDB_txn *txn;
	uint64_t size0; /* tree size when the transaction began */
	uint64_t size;	/* tree size with the entries added so far */
	int has_cp;	/* a checkpoint has been signed */
	uint64_t signed_size;
	struct kt_hash signed_root;
	int rc;
	char *err;
	size_t errlen;
	/* The index buffer as the transaction began, to undo an abort. */
	size_t ixrows0;
	uint32_t ixpos0;
	int ixmerged;	     /* the frozen run's last slice is in */
	struct ixbuf *ixnew; /* the next run, when this batch freezes one */
	/* The index tables, as meta lists them (and this batch changes). */
	struct store_tabs tabs;
	int tabs_dirty;
	uint64_t bbdone; /* slots whose filter this batch stored */
};

/* Pending records name their tables by these numbers (docs/storage.md). */
_Static_assert(
    DB_BYHASH == 3 && DB_BYKEY == 4 && DB_BYDIGEST == 5 && DB_BYARTIFACT == 6,
    "the pending records' table numbers are part of the schema");

/* One entry's record in a pending table: its index rows, encoded. */
struct store_ixrec {
	uint8_t b[4 * (4 + STORE_INDEX_KEY_MAX + KT_HASH_SIZE)];
	size_t len;
};

static void store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	/* Truncation is fine: the message is for a log line. */
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Seconds since *t; moves *t to now. */
static double
store_lap(double *t)
{
	double now = kt_monotonic_seconds();
	double d = now - *t;

	*t = now;
	return d;
}

/*
 * Maps an LMDB (or errno) code to a KT_E* code and explains it in err.
 * A full map is an operational alarm, not a crash (STYLE.md section 8).
 */
static int
store_mdb_error(
    const struct store *s, int mrc, const char *what, char *err, size_t errlen)
{
	switch (mrc) {
	case MDB_MAP_FULL:
		store_seterr(err, errlen,
		    "log storage is full (map size %llu bytes): raise map_size",
		    (unsigned long long)s->map_size);
		return KT_EUNAVAIL;
	case MDB_TXN_FULL:
		store_seterr(err, errlen,
		    "%s: batch too large for one storage transaction", what);
		return KT_ETOOBIG;
	case MDB_READERS_FULL:
		store_seterr(
		    err, errlen, "%s: too many concurrent readers", what);
		return KT_EUNAVAIL;
	case MDB_KEYEXIST:
		store_seterr(err, errlen, "%s: key already stored", what);
		return KT_EINTERNAL;
	case ENOSPC:
		store_seterr(err, errlen, "%s: no space left on device", what);
		return KT_EUNAVAIL;
	case ENOMEM:
		store_seterr(err, errlen, "%s: out of memory", what);
		return KT_ENOMEM;
	default:
		store_seterr(err, errlen, "%s: %s", what, mdb_strerror(mrc));
		return KT_EIO;
	}
}

/* An MDB_val over borrowed bytes; LMDB never writes through it. */
MDB_val
store_val(const void *p, size_t len)
{
	MDB_val v;

	v.mv_data = (void *)(uintptr_t)(p != NULL ? p : "");
	v.mv_size = len;
	return v;
}

void
store_tile_key(uint8_t k[STORE_TILE_KEY], int level, uint64_t tile)
{
	STORE_ASSERT(level >= 0 && level < STORE_LEVELS);
	k[0] = (uint8_t)level;
	kt_put_u64be(k + 1, tile);
}

/* Builds len || value || index into k; returns the key length. */
size_t
store_index_key(uint8_t k[STORE_INDEX_KEY_MAX], const uint8_t *value,
    size_t len, uint64_t index)
{
	STORE_ASSERT(len <= STORE_INDEX_VALUE_MAX);
	k[0] = (uint8_t)len;
	if (len > 0)
		memcpy(k + 1, value, len);
	kt_put_u64be(k + 1 + len, index);
	return 1 + len + 8;
}

/* The table behind each auxiliary table. */
static const enum store_dbi store_aux_dbis[] = { DB_KEYS, DB_POLICIES,
	DB_REQUESTS };

int
store_aux_dbi(enum store_aux db, enum store_dbi *out)
{
	if ((unsigned)db >= sizeof(store_aux_dbis) / sizeof(store_aux_dbis[0]))
		return KT_EINVAL;
	*out = store_aux_dbis[db];
	return KT_OK;
}

/*
 * Reads an 8-byte big-endian number from meta.  Returns KT_OK,
 * KT_ENOTFOUND, KT_EPARSE (wrong length) or KT_EIO.
 */
int
store_meta_u64(
    const struct store *s, MDB_txn *txn, const char *name, uint64_t *out)
{
	MDB_val k = store_val(name, strlen(name)), v;
	int mrc;

	if ((mrc = mdb_get(txn, s->dbi[DB_META], &k, &v)) != 0)
		return store_rd_error(mrc);
	if (v.mv_size != 8)
		return KT_EPARSE;
	*out = kt_get_u64be(v.mv_data);
	return KT_OK;
}

/*
 * Reads the signed tree state from meta: *has_cp and, if set, the signed
 * size and root.  Returns KT_OK, KT_EPARSE or KT_EIO.
 */
int
store_meta_signed(const struct store *s, MDB_txn *txn, int *has_cp,
    uint64_t *size, struct kt_hash *root)
{
	MDB_val k = store_val(META_SIGNED_ROOT, strlen(META_SIGNED_ROOT)), v;
	int rc, mrc;

	rc = store_meta_u64(s, txn, META_SIGNED_SIZE, size);
	if (rc == KT_ENOTFOUND) {
		*has_cp = 0;
		return KT_OK;
	}
	if (rc != KT_OK)
		return rc;
	if ((mrc = mdb_get(txn, s->dbi[DB_META], &k, &v)) != 0)
		return mrc == MDB_NOTFOUND ? KT_EPARSE : store_rd_error(mrc);
	if (v.mv_size != KT_HASH_SIZE)
		return KT_EPARSE;
	memcpy(root->b, v.mv_data, KT_HASH_SIZE);
	*has_cp = 1;
	return KT_OK;
}

/*
 * Write transactions.  Every wtx_* step does nothing once w->rc is set;
 * the first failure's code and message are the ones reported.
 */

static void wtx_fail(struct store_wtx *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
wtx_fail(struct store_wtx *w, int rc, const char *fmt, ...)
{
	va_list ap;

	STORE_ASSERT(rc != KT_OK);
	if (w->rc != KT_OK)
		return;
	w->rc = rc;
	if (w->err != NULL && w->errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(w->err, w->errlen, fmt, ap);
		va_end(ap);
	}
}

static void
wtx_mdb(struct store_wtx *w, int mrc, const char *what)
{
	if (w->rc != KT_OK)
		return;
	w->rc = store_mdb_error(w->s, mrc, what, w->err, w->errlen);
}

/* Begins a write transaction and reads the tree state from meta. */
static int
wtx_begin(struct store *s, struct store_wtx *w, char *err, size_t errlen)
{
	int mrc, rc;

	memset(w, 0, sizeof(*w));
	w->s = s;
	w->err = err;
	w->errlen = errlen;
	w->ixrows0 = s->ixact != NULL ? ixbuf_rows(s->ixact) : 0;
	w->ixpos0 = s->ixpos;
	if ((mrc = mdb_txn_begin(s->env, NULL, 0, &w->txn)) != 0) {
		w->txn = NULL;
		wtx_mdb(w, mrc, "beginning a write transaction");
		return w->rc;
	}
	if ((rc = store_meta_u64(s, w->txn, META_SIZE, &w->size0)) != KT_OK ||
	    (rc = store_meta_signed(s, w->txn, &w->has_cp, &w->signed_size,
		 &w->signed_root)) != KT_OK ||
	    (rc = store_tabs_read(s, w->txn, &w->tabs)) != KT_OK)
		wtx_fail(w, rc == KT_EIO ? KT_EIO : KT_EINTERNAL,
		    "log storage meta is unreadable: %s", kt_strerror(rc));
	w->size = w->size0;
	for (int l = 0; l < STORE_LEVELS; l++)
		s->levels[l].loaded = 0;
	return w->rc;
}

/* Commits (if commit and nothing failed) or aborts.  Returns w->rc. */
static int
wtx_end(struct store_wtx *w, int commit)
{
	int mrc;

	if (w->txn == NULL)
		return w->rc;
	if (commit && w->rc == KT_OK) {
		/* Commit frees the transaction whatever it returns. */
		if ((mrc = mdb_txn_commit(w->txn)) != 0)
			wtx_mdb(w, mrc, "committing");
	} else {
		mdb_txn_abort(w->txn);
	}
	w->txn = NULL;
	return w->rc;
}

static void
wtx_put(struct store_wtx *w, enum store_dbi db, const void *k, size_t klen,
    const void *v, size_t vlen, unsigned flags)
{
	MDB_val key = store_val(k, klen), val = store_val(v, vlen);
	int mrc;

	if (w->rc != KT_OK)
		return;
	if ((mrc = mdb_put(w->txn, w->s->dbi[db], &key, &val, flags)) != 0)
		wtx_mdb(w, mrc, store_db_names[db]);
}

static void
wtx_put_meta_u64(struct store_wtx *w, const char *name, uint64_t v)
{
	uint8_t b[8];

	kt_put_u64be(b, v);
	wtx_put(w, DB_META, name, strlen(name), b, sizeof(b), 0);
}

/*
 * Looks key up.  Returns 1 and *v (valid until the next write) when
 * found, 0 when not found or after a failure.
 */
static int
wtx_get(struct store_wtx *w, enum store_dbi db, const void *k, size_t klen,
    MDB_val *v)
{
	MDB_val key = store_val(k, klen);
	int mrc;

	if (w->rc != KT_OK)
		return 0;
	mrc = mdb_get(w->txn, w->s->dbi[db], &key, v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc != 0) {
		wtx_mdb(w, mrc, store_db_names[db]);
		return 0;
	}
	return 1;
}

static void
wtx_aux(struct store_wtx *w, const struct store_put *p, uint64_t idx)
{
	MDB_val key = store_val(p->key.p, p->key.len);
	enum store_dbi db;
	int mrc;

	if (w->rc != KT_OK)
		return;
	STORE_ASSERT(store_aux_dbi(p->db, &db) == KT_OK);
	if (!p->del && p->index_value) {
		uint8_t v[8];

		STORE_ASSERT(idx != UINT64_MAX);
		kt_put_u64be(v, idx);
		wtx_put(w, db, p->key.p, p->key.len, v, sizeof(v), 0);
		return;
	}
	if (!p->del) {
		wtx_put(w, db, p->key.p, p->key.len, p->val.p, p->val.len, 0);
		return;
	}
	mrc = mdb_del(w->txn, w->s->dbi[db], &key, NULL);
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		wtx_mdb(w, mrc, store_db_names[db]);
}

/*
 * Makes sure the batch holds level l's last tile: the tree of size0 has
 * size0 >> l hashes at level l, the last (size0 >> l) % 256 of them in
 * a partial tile.  A batch loads a level before it adds to it, so the
 * stored tile still has exactly that many.
 */
static struct store_level *
wtx_level(struct store_wtx *w, int l)
{
	struct store_level *lv = &w->s->levels[l];
	uint64_t n = w->size0 >> l;
	uint8_t k[STORE_TILE_KEY];
	MDB_val v;

	STORE_ASSERT(l >= 0 && l < STORE_LEVELS);
	if (lv->loaded || w->rc != KT_OK)
		return lv;
	lv->tile = n / KT_TILE_WIDTH;
	lv->count = (unsigned)(n % KT_TILE_WIDTH);
	lv->dirty = 0;
	if (lv->count > 0) {
		store_tile_key(k, l, lv->tile);
		if (!wtx_get(w, DB_TILES, k, sizeof(k), &v) ||
		    v.mv_size != (size_t)lv->count * KT_HASH_SIZE) {
			wtx_fail(w, KT_EINTERNAL,
			    "level tile %d/%llu is missing or has the wrong "
			    "length for tree size %llu",
			    l, (unsigned long long)lv->tile,
			    (unsigned long long)w->size0);
			return lv;
		}
		memcpy(lv->h, v.mv_data, v.mv_size);
	}
	lv->loaded = 1;
	return lv;
}

static void
wtx_level_flush(struct store_wtx *w, int l)
{
	struct store_level *lv = &w->s->levels[l];
	uint8_t k[STORE_TILE_KEY];

	store_tile_key(k, l, lv->tile);
	wtx_put(w, DB_TILES, k, sizeof(k), lv->h,
	    (size_t)lv->count * KT_HASH_SIZE, 0);
	lv->dirty = 0;
}

/*
 * Adds the hash at (level l, position pos), which must be the next one of
 * its level.  A full tile is written when the next hash needs its place,
 * so the last hash of every level stays in memory for the next record.
 */
static void
wtx_level_push(
    struct store_wtx *w, int l, uint64_t pos, const struct kt_hash *h)
{
	struct store_level *lv = wtx_level(w, l);

	if (w->rc != KT_OK)
		return;
	if (lv->count == KT_TILE_WIDTH) {
		wtx_level_flush(w, l);
		lv->tile++;
		lv->count = 0;
	}
	STORE_ASSERT(pos == lv->tile * KT_TILE_WIDTH + lv->count);
	memcpy(lv->h + (size_t)lv->count * KT_HASH_SIZE, h->b, KT_HASH_SIZE);
	lv->count++;
	lv->dirty = 1;
}

/* Reads the stored hash at (level l, position pos) within the batch. */
static int
wtx_hash(struct store_wtx *w, int l, uint64_t pos, struct kt_hash *out)
{
	struct store_level *lv = wtx_level(w, l);
	uint64_t tile = pos / KT_TILE_WIDTH;
	size_t off = (size_t)(pos % KT_TILE_WIDTH) * KT_HASH_SIZE;
	uint8_t k[STORE_TILE_KEY];
	MDB_val v;

	if (w->rc != KT_OK)
		return w->rc;
	if (tile == lv->tile) {
		if (off >= (size_t)lv->count * KT_HASH_SIZE)
			return KT_ENOTFOUND;
		memcpy(out->b, lv->h + off, KT_HASH_SIZE);
		return KT_OK;
	}
	store_tile_key(k, l, tile);
	if (!wtx_get(w, DB_TILES, k, sizeof(k), &v))
		return w->rc != KT_OK ? w->rc : KT_ENOTFOUND;
	if (v.mv_size < off + KT_HASH_SIZE)
		return KT_ENOTFOUND;
	memcpy(out->b, (const uint8_t *)v.mv_data + off, KT_HASH_SIZE);
	return KT_OK;
}

/* The kt_hash_reader_fn of a write batch; ctx is the struct store_wtx. */
static int
wtx_read_hashes(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	struct store_wtx *w = ctx;
	struct kt_hash tmp[KT_READ_MAX];
	uint64_t pos;
	int l, rc;

	if (n > KT_READ_MAX)
		return KT_EINVAL;
	for (size_t i = 0; i < n; i++) {
		kt_split_stored_hash_index(indexes[i], &l, &pos);
		if (l >= STORE_LEVELS)
			return KT_ENOTFOUND;
		if ((rc = wtx_hash(w, l, pos, &tmp[i])) != KT_OK)
			return rc;
	}
	memcpy(out, tmp, n * sizeof(tmp[0]));
	return KT_OK;
}

/*
 * How much of a row's key goes into a filter, a run's or a table's
 * (store_bloom_row): what exact lookups ask for (store_ix_leaf, the dedup
 * of submissions).  A leaf hash whole; a digest row's key without the
 * leaf index that ends it; nothing of the others.
 */
static size_t
store_ix_filed(enum store_dbi db, size_t klen)
{
	if (db == DB_BYHASH)
		return klen;
	if (db == DB_BYDIGEST && klen > 8)
		return klen - 8;
	return 0;
}

/*
 * Defers one index row to the index buffer and the entry's pending record
 * (ixbuf.h): it reaches an index table when its run is written out.
 */
static void
wtx_defer(struct store_wtx *w, struct store_ixrec *rec, enum store_dbi db,
    const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
    uint64_t index)
{
	int rc;

	if (w->rc != KT_OK)
		return;
	STORE_ASSERT(rec->len + 4 + klen + vlen <= sizeof(rec->b) &&
	    klen <= STORE_INDEX_KEY_MAX && vlen <= KT_HASH_SIZE);
	if ((rc = ixbuf_add(w->s->ixact, (uint8_t)db, k, klen,
		 store_ix_filed(db, klen), v, vlen, index)) != KT_OK) {
		wtx_fail(w, rc, "buffering an index row: %s", kt_strerror(rc));
		return;
	}
	rec->b[rec->len++] = (uint8_t)db;
	rec->b[rec->len++] = (uint8_t)(klen >> 8);
	rec->b[rec->len++] = (uint8_t)klen;
	memcpy(rec->b + rec->len, k, klen);
	rec->len += klen;
	rec->b[rec->len++] = (uint8_t)vlen;
	if (vlen > 0)
		memcpy(rec->b + rec->len, v, vlen);
	rec->len += vlen;
}

/* Defers a search index row: value, then the leaf index (docs/storage.md). */
static void
wtx_defer_index(struct store_wtx *w, struct store_ixrec *rec, enum store_dbi db,
    struct kt_bytes value, const uint8_t *v, size_t vlen, uint64_t index)
{
	uint8_t k[STORE_INDEX_KEY_MAX];

	if (value.len == 0)
		return;
	wtx_defer(w, rec, db, k, store_index_key(k, value.p, value.len, index),
	    v, vlen, index);
}

struct store_ix_dedup {
	const uint8_t *prefix;
	size_t plen;
	const struct kt_hash *d;
	uint64_t index;
	int found;
};

static int
store_ix_dedup_cb(void *ctx, const struct ixbuf_row *r)
{
	struct store_ix_dedup *q = ctx;

	if (r->klen != q->plen + 8 || memcmp(r->key, q->prefix, q->plen) != 0)
		return 1;
	if (r->vlen == KT_HASH_SIZE &&
	    memcmp(r->val, q->d->b, KT_HASH_SIZE) == 0) {
		q->index = r->index;
		q->found = 1;
		return 1;
	}
	return 0;
}

/*
 * Looks for a row of dbi whose key is start's first plen bytes then a
 * leaf index and whose value is d.  Returns 1 and *index if found.
 */
static int
wtx_dedup_in(struct store_wtx *w, MDB_dbi dbi, const uint8_t *start,
    size_t plen, const struct kt_hash *d, uint64_t *index)
{
	MDB_cursor *cur = NULL;
	MDB_val key = store_val(start, plen + 8), val;
	int mrc, found = 0;

	if (w->rc != KT_OK)
		return 0;
	if ((mrc = mdb_cursor_open(w->txn, dbi, &cur)) != 0) {
		wtx_fail(w, KT_EIO, "opening a cursor: %s", mdb_strerror(mrc));
		return 0;
	}
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != plen + 8 ||
		    memcmp(key.mv_data, start, plen) != 0)
			break;
		if (val.mv_size == KT_HASH_SIZE &&
		    memcmp(val.mv_data, d->b, KT_HASH_SIZE) == 0) {
			*index =
			    kt_get_u64be((const uint8_t *)key.mv_data + plen);
			found = 1;
			break;
		}
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		wtx_fail(w, KT_EIO, "reading an index: %s", mdb_strerror(mrc));
	mdb_cursor_close(cur);
	return found;
}

/*
 * Finds an earlier submission with dedup key d among the entries indexed
 * under digest: the bydigest rows of submissions carry their dedup key as
 * their value, so the same submission is found without an index of its
 * own (one random B-tree fewer per entry).  Returns 1 and *index if found.
 */
static int
wtx_find_dedup(struct store_wtx *w, struct kt_bytes digest,
    const struct kt_hash *d, uint64_t *index)
{
	uint8_t t[STORE_TABLE_KEY_MAX], *k = t + 1;
	size_t plen = 1 + digest.len;
	uint64_t cand;
	int found;

	(void)store_index_key(k, digest.p, digest.len, 0);
	found = wtx_dedup_in(w, w->s->dbi[DB_BYDIGEST], k, plen, d, index);
	/* Then the index tables, as the B-tree's rows prefixed with 5. */
	t[0] = DB_BYDIGEST;
	cand = found || w->rc != KT_OK ? 0
				       : store_tabs_candidates(w->s, w->txn,
					     &w->tabs, DB_BYDIGEST, k, plen);
	for (unsigned i = w->tabs.n; i-- > 0 && !found && w->rc == KT_OK;)
		if (cand >> i & 1)
			found = wtx_dedup_in(w,
			    w->s->dbi[DB_TABLE0 + w->tabs.t[i].slot], t,
			    plen + 1, d, index);
	/* Not in the B-tree: perhaps among the buffered rows. */
	for (int b = 0; b < 2 && !found && w->rc == KT_OK; b++) {
		struct ixbuf *ix = b == 0 ? w->s->ixact : w->s->ixfrz;
		struct store_ix_dedup q = { k, plen, d, 0, 0 };

		if (ix == NULL || !ixbuf_maybe(ix, DB_BYDIGEST, k, plen))
			continue;
		(void)ixbuf_scan(
		    ix, DB_BYDIGEST, k, plen + 8, store_ix_dedup_cb, &q);
		if ((found = q.found))
			*index = q.index;
	}
	return found;
}

/*
 * Starts fetching the filter blocks wtx_add will test for the item, so
 * that a large log's dozens of them arrive while the item before is
 * added instead of one after the other.
 */
static void
wtx_prefetch(struct store_wtx *w, const struct store_item *it)
{
	uint8_t k[STORE_INDEX_KEY_MAX];

	if (w->tabs.n == 0)
		return;
	if (!it->has_dedup)
		store_tabs_prefetch(w->s, w->txn, &w->tabs, DB_BYHASH,
		    it->leaf.b, KT_HASH_SIZE);
	else if (it->by_digest.len > 0) {
		(void)store_index_key(k, it->by_digest.p, it->by_digest.len, 0);
		store_tabs_prefetch(w->s, w->txn, &w->tabs, DB_BYDIGEST, k,
		    1 + it->by_digest.len);
	}
}

/*
 * Adds one item: a duplicate only reports the existing index; a new entry
 * gets the next index, its rows, and the stored hashes it completes
 * (tlog StoredHashesForRecordHash: the leaf at level 0, then one hash per
 * trailing one bit of the index, out[i] at level i, position index >> i).
 */
static void
wtx_add(
    struct store_wtx *w, const struct store_item *it, struct store_result *r)
{
	struct ixbuf *const ix[2] = { w->s->ixact, w->s->ixfrz };
	struct store_ixrec rec;
	struct kt_hash hs[64];
	uint8_t k[8];
	uint64_t idx = w->size, found;
	size_t nh;
	MDB_val v;
	int rc;

	/*
	 * An item with a dedup key is a duplicate when an earlier submission
	 * had the same key (the same request again, though its entry would
	 * carry a new time); any other item when its leaf hash is in the log.
	 */
	if (it->has_dedup) {
		if (it->by_digest.len == 0) {
			wtx_fail(w, KT_EINVAL,
			    "an item with a dedup key needs a digest");
			return;
		}
		if (wtx_find_dedup(w, it->by_digest, &it->dedup, &found)) {
			r->index = found;
			r->duplicate = 1;
			return;
		}
	} else if (wtx_get(w, DB_BYHASH, it->leaf.b, KT_HASH_SIZE, &v)) {
		if (v.mv_size != 8) {
			wtx_fail(w, KT_EINTERNAL, "byhash value of length %zu",
			    v.mv_size);
			return;
		}
		r->index = kt_get_u64be(v.mv_data);
		r->duplicate = 1;
		return;
	} else if (w->rc == KT_OK &&
	    (rc = store_tabs_leaf(
		 w->s, w->txn, &w->tabs, it->leaf.b, &found)) != KT_ENOTFOUND) {
		if (rc != KT_OK) {
			wtx_fail(w, rc, "reading an index table: %s",
			    kt_strerror(rc));
			return;
		}
		r->index = found;
		r->duplicate = 1;
		return;
	} else if (store_ix_leaf(ix, it->leaf.b, UINT64_MAX, &found)) {
		r->index = found;
		r->duplicate = 1;
		return;
	}
	if (w->rc != KT_OK)
		return;
	if (idx >= KT_SIZE_MAX - 1) {
		wtx_fail(w, KT_ETOOBIG, "the log is full");
		return;
	}
	kt_put_u64be(k, idx);
	/* Entries arrive in key order, which MDB_APPEND exploits. */
	wtx_put(w, DB_ENTRIES, k, sizeof(k), it->entry.p, it->entry.len,
	    MDB_APPEND);
	/*
	 * The index rows wait in the index buffer and in this entry's
	 * pending record (sequential, like the entry) until their run is
	 * written out.  A submission's digest row carries its dedup key.
	 */
	rec.len = 0;
	wtx_defer(
	    w, &rec, DB_BYHASH, it->leaf.b, KT_HASH_SIZE, k, sizeof(k), idx);
	wtx_defer_index(w, &rec, DB_BYKEY, it->by_key, NULL, 0, idx);
	wtx_defer_index(w, &rec, DB_BYDIGEST, it->by_digest,
	    it->has_dedup ? it->dedup.b : NULL,
	    it->has_dedup ? KT_HASH_SIZE : 0, idx);
	wtx_defer_index(w, &rec, DB_BYARTIFACT, it->by_artifact, NULL, 0, idx);
	wtx_put(w, DB_PENDING0 + w->s->ixrun, k, sizeof(k), rec.b, rec.len,
	    MDB_APPEND);
	for (size_t i = 0; i < it->nputs; i++)
		wtx_aux(w, &it->puts[i], idx);
	if (w->rc != KT_OK)
		return;
	rc = kt_stored_hashes(idx, &it->leaf, wtx_read_hashes, w, hs, &nh);
	if (rc != KT_OK) {
		wtx_fail(w, KT_EINTERNAL,
		    "computing the stored hashes of entry %llu: %s",
		    (unsigned long long)idx, kt_strerror(rc));
		return;
	}
	for (size_t i = 0; i < nh; i++)
		wtx_level_push(w, (int)i, idx >> i, &hs[i]);
	w->size = idx + 1;
	r->index = idx;
	r->duplicate = 0;
}

/* Appends the latest signed note to out (if not NULL). */
static void
wtx_latest(struct store_wtx *w, struct kt_buf *out)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	if (w->rc != KT_OK)
		return;
	if (!w->has_cp) {
		wtx_fail(w, KT_ENOTFOUND, "the log has no checkpoint yet");
		return;
	}
	kt_put_u64be(k, w->signed_size);
	if (!wtx_get(w, DB_CHECKPOINTS, k, sizeof(k), &v)) {
		wtx_fail(w, KT_EINTERNAL, "checkpoint %llu is missing",
		    (unsigned long long)w->signed_size);
		return;
	}
	if (out != NULL && (rc = kt_buf_append(out, v.mv_data, v.mv_size)))
		wtx_fail(
		    w, rc, "returning the checkpoint: %s", kt_strerror(rc));
}

/*
 * Checks that the tree of w->size with root root extends the last signed
 * tree (DESIGN.md section 4: the log never signs a checkpoint that is
 * inconsistent with one it signed before).  The proof comes from the
 * stored hashes, the old root from meta, so a corrupted tile or a bug in
 * the batch shows up here instead of in a signature.
 */
static void
wtx_check_extends(struct store_wtx *w, const struct kt_hash *root)
{
	struct kt_hash proof[KT_PROOF_MAX];
	size_t np;
	int rc;

	if (w->rc != KT_OK || !w->has_cp || w->signed_size == 0)
		return;
	if (w->size < w->signed_size) {
		wtx_fail(w, KT_EINTERNAL,
		    "tree size %llu is below the signed size %llu",
		    (unsigned long long)w->size,
		    (unsigned long long)w->signed_size);
		return;
	}
	rc = kt_prove_consistency(
	    w->size, w->signed_size, wtx_read_hashes, w, proof, &np);
	if (rc == KT_OK)
		rc = kt_consistency_check(
		    proof, np, w->signed_size, &w->signed_root, w->size, root);
	if (rc != KT_OK)
		wtx_fail(w, KT_EINTERNAL,
		    "the tree of size %llu does not extend the signed tree of "
		    "size %llu (%s); refusing to sign",
		    (unsigned long long)w->size,
		    (unsigned long long)w->signed_size, kt_strerror(rc));
}

/*
 * Signs the checkpoint of the tree of w->size with root root and stores
 * it, with the new size, in checkpoints and meta; appends the signed note
 * to note_out (if not NULL), whose caller undoes that if the commit fails.
 */
static void
wtx_sign(struct store_wtx *w, const struct kt_hash *root, store_sign_fn sign,
    void *ctx, struct kt_buf *note_out)
{
	struct store *s = w->s;
	struct kt_checkpoint c;
	uint8_t k[8];
	int rc;

	wtx_check_extends(w, root);
	if (w->rc != KT_OK)
		return;
	memset(&c, 0, sizeof(c));
	c.origin.p = (const uint8_t *)s->origin;
	c.origin.len = s->originlen;
	c.size = w->size;
	c.root = *root;
	kt_buf_reset(&s->text);
	kt_buf_reset(&s->note);
	if ((rc = kt_checkpoint_format(&c, &s->text)) != KT_OK) {
		wtx_fail(w, KT_EINTERNAL, "formatting checkpoint %llu: %s",
		    (unsigned long long)w->size, kt_strerror(rc));
		return;
	}
	if ((rc = sign(ctx, s->text.p, s->text.len, &s->note)) != KT_OK) {
		wtx_fail(w, rc < 0 ? rc : KT_EINTERNAL,
		    "signing checkpoint %llu failed: %s",
		    (unsigned long long)w->size, kt_strerror(rc));
		return;
	}
	/* A signed note is the text, a blank line, then signature lines. */
	if (s->note.len <= s->text.len ||
	    memcmp(s->note.p, s->text.p, s->text.len) != 0 ||
	    s->note.p[s->text.len] != '\n') {
		wtx_fail(w, KT_EINTERNAL,
		    "the signer returned a note without the checkpoint text");
		return;
	}
	kt_put_u64be(k, w->size);
	wtx_put(w, DB_CHECKPOINTS, k, sizeof(k), s->note.p, s->note.len, 0);
	wtx_put_meta_u64(w, META_SIZE, w->size);
	wtx_put_meta_u64(w, META_SIGNED_SIZE, w->size);
	wtx_put(w, DB_META, META_SIGNED_ROOT, strlen(META_SIGNED_ROOT), root->b,
	    KT_HASH_SIZE, 0);
	if (w->rc == KT_OK && note_out != NULL &&
	    (rc = kt_buf_append(note_out, s->note.p, s->note.len)) != KT_OK)
		wtx_fail(
		    w, rc, "returning the checkpoint: %s", kt_strerror(rc));
}

/*
 * Index tables.  A batch that adds entries also moves index rows forward
 * a slice at a time, each slice in key order and appended (MDB_APPEND),
 * so every page of a table is written once, full: the frozen run goes to
 * a new table of level 0, and each level's oldest STORE_TABLE_FANOUT
 * live tables, once there are that many, are merged into one table of
 * the next level.  The frozen run's slice is twice as many rows as the
 * batch buffered (at least 64), so the run is out well before the next
 * one fills.  A merge's slice is STORE_MERGE_PACE / 4 times as many (at
 * least 16): a merge into level L moves the rows of 8^L runs and must
 * end before the level below has its next STORE_TABLE_FANOUT tables, 8^L
 * runs later.  At 4x it ends after about a quarter of that time: its 8
 * sources stay live, and are probed by every lookup, until it ends, so
 * an early end leaves a lookup about 5.5 tables to probe per level on
 * average instead of about 10 at 1.25x (the pace until 2026-12-08), for
 * the same rows moved in all.  Should a merge fall behind anyway (the
 * entries it moves had more rows than today's), its pace doubles with
 * each table the level below has beyond the 6 it can gather in time.
 * docs/storage.md, "Index tables".
 */

/* Rows the frozen run's job moves in this batch. */
static size_t
wtx_budget(const struct store_wtx *w)
{
	return 2 * (ixbuf_rows(w->s->ixact) - w->ixrows0) + 64;
}

/*
 * How far the merge into level is behind: live tables of the level
 * below that the next merge will take, past 6 (0 when on time).
 */
static unsigned
wtx_merge_behind(const struct store_wtx *w, uint8_t level)
{
	unsigned waiting = 0;

	for (unsigned i = 0; i < w->tabs.n; i++)
		waiting += w->tabs.t[i].flags == TAB_LIVE &&
		    (unsigned)w->tabs.t[i].level + 1 == level;
	return waiting + 2 > STORE_TABLE_FANOUT
	    ? waiting + 2 - STORE_TABLE_FANOUT
	    : 0;
}

/*
 * Rows a merge moves in this batch, behind tables past its time
 * (wtx_merge_behind).
 */
static size_t
wtx_merge_budget(const struct store_wtx *w, unsigned behind)
{
	size_t rows = ixbuf_rows(w->s->ixact) - w->ixrows0;

	rows = rows * STORE_MERGE_PACE / 4 + 16;
	/* Behind: twice the pace for each table past its time, up to 64x. */
	return rows << (behind < 6 ? behind : 6);
}

/* Counts a slice of moved rows for store_stats. */
static void
store_count_slice(struct store *s, size_t moved)
{
	atomic_fetch_add_explicit(&s->slices, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &s->slice_rows, (uint_fast64_t)moved, memory_order_relaxed);
}

/*
 * The smallest slice worth writing into a table of entries entries
 * (STORE_SLICE_MIN, or half the entries for a small one).
 */
static size_t
wtx_slice_min(uint64_t entries)
{
	return entries / 2 < STORE_SLICE_MIN ? (size_t)(entries / 2)
					     : STORE_SLICE_MIN;
}

/*
 * Starts the filter of the table being written in slot (tables above
 * STORE_BLOOM_LEVEL_MAX, or without memory for one, get none), and
 * removes the filter a table of that slot had.
 */
static void
wtx_bloom_start(struct store_wtx *w, unsigned slot, const struct store_tab *t)
{
	struct store *s = w->s;
	uint8_t k = (uint8_t)slot;
	MDB_val key = store_val(&k, 1);
	int mrc;

	bloom_free(&s->bb[slot]);
	s->bbok[slot] = t->level <= STORE_BLOOM_LEVEL_MAX &&
	    bloom_init(&s->bb[slot], t->end - t->first) == KT_OK;
	if (w->rc == KT_OK &&
	    (mrc = mdb_del(w->txn, s->dbi[DB_BLOOMS], &key, NULL)) != 0 &&
	    mrc != MDB_NOTFOUND)
		wtx_mdb(w, mrc, "ixblooms");
	w->tabs.bf_loaded = 0;
}

/* Adds a row (as an index table holds it) to slot's filter. */
static void
store_bloom_row(struct store *s, unsigned slot, const MDB_val *k)
{
	const uint8_t *p = k->mv_data;
	size_t flen;

	if (!s->bbok[slot] || k->mv_size < 2)
		return;
	/* A table row's key is its index's number, then the row's key. */
	if ((flen = store_ix_filed(p[0], k->mv_size - 1)) > 0)
		bloom_add_soon(&s->bb[slot], p[0], p + 1, flen);
}

/*
 * A table is complete: stores its filter if it has a whole one.  The
 * filter's memory is freed after the commit (store_ix_committed); a batch
 * that aborts will complete the table again.
 */
static void
wtx_bloom_done(struct store_wtx *w, unsigned slot)
{
	struct store *s = w->s;
	uint8_t k = (uint8_t)slot;

	bloom_settle(&s->bb[slot]);
	if (s->bbok[slot] && w->rc == KT_OK)
		wtx_put(
		    w, DB_BLOOMS, &k, 1, s->bb[slot].bits, s->bb[slot].len, 0);
	w->tabs.bf_loaded = 0;
	w->bbdone |= UINT64_C(1) << slot;
}

/*
 * Adds a table being written at level, for entries [first, end), in a
 * free slot, emptied.  Returns it, or NULL when every slot is taken (the
 * job waits for a later batch).
 */
static struct store_tab *
wtx_tab_new(struct store_wtx *w, uint8_t level, uint64_t first, uint64_t end)
{
	uint64_t used = 0;
	struct store_tab *t;
	unsigned slot;
	int mrc;

	for (unsigned i = 0; i < w->tabs.n; i++)
		used |= UINT64_C(1) << w->tabs.t[i].slot;
	for (slot = 0; slot < STORE_TABLES && (used >> slot & 1); slot++)
		;
	if (slot == STORE_TABLES || w->rc != KT_OK)
		return NULL;
	/* A slot's table was emptied when it was freed; make sure. */
	if ((mrc = mdb_drop(w->txn, w->s->dbi[DB_TABLE0 + slot], 0)) != 0) {
		wtx_mdb(w, mrc, "emptying an index table");
		return NULL;
	}
	t = &w->tabs.t[w->tabs.n++];
	*t = (struct store_tab){ (uint8_t)slot, level, TAB_TARGET, first, end };
	w->tabs_dirty = 1;
	wtx_bloom_start(w, slot, t);
	return t;
}

/* Removes table i from the list and empties it. */
static void
wtx_tab_free(struct store_wtx *w, unsigned i)
{
	int mrc;

	uint8_t k = w->tabs.t[i].slot;
	MDB_val key = store_val(&k, 1);

	if ((mrc = mdb_drop(w->txn, w->s->dbi[DB_TABLE0 + k], 0)) != 0)
		wtx_mdb(w, mrc, "emptying an index table");
	if (w->rc == KT_OK &&
	    (mrc = mdb_del(w->txn, w->s->dbi[DB_BLOOMS], &key, NULL)) != 0 &&
	    mrc != MDB_NOTFOUND)
		wtx_mdb(w, mrc, "ixblooms");
	w->tabs.bf_loaded = 0;
	memmove(&w->tabs.t[i], &w->tabs.t[i + 1],
	    (w->tabs.n - i - 1) * sizeof(w->tabs.t[0]));
	w->tabs.n--;
	w->tabs_dirty = 1;
}

static struct store_tab *
wtx_tab_target(struct store_wtx *w, uint8_t level)
{
	for (unsigned i = 0; i < w->tabs.n; i++)
		if ((w->tabs.t[i].flags & TAB_TARGET) &&
		    w->tabs.t[i].level == level)
			return &w->tabs.t[i];
	return NULL;
}

/*
 * Writes the next slice of the frozen run to its table of level 0.  A
 * restart begins the table again (the run's position is not stored).
 * The last slice makes the table live and empties the run's pending
 * table.
 */
static void
wtx_ix_flush(struct store_wtx *w)
{
	struct store *s = w->s;
	uint8_t k[STORE_TABLE_KEY_MAX];
	struct store_tab *t;
	struct ixbuf_row r;
	MDB_cursor *cur = NULL;
	size_t budget = wtx_budget(w) + s->flushdebt, moved = 0;
	uint32_t peek;
	int mrc;

	if (s->ixfrz == NULL || w->rc != KT_OK)
		return;
	if (budget < wtx_slice_min(ixbuf_entries(s->ixfrz))) {
		s->flushdebt = budget;
		return;
	}
	s->flushdebt = 0;
	if ((t = wtx_tab_target(w, 0)) == NULL) {
		/* A new table comes emptied, with a fresh filter. */
		if ((t = wtx_tab_new(w, 0, ixbuf_first(s->ixfrz),
			 ixbuf_first(s->ixfrz) + ixbuf_entries(s->ixfrz))) ==
		    NULL)
			return;
	} else if (s->ixpos == 0) {
		/* The table of a run begun before a restart: again. */
		if ((mrc = mdb_drop(w->txn, s->dbi[DB_TABLE0 + t->slot], 0))) {
			wtx_mdb(w, mrc, "emptying an index table");
			return;
		}
		wtx_bloom_start(w, t->slot, t);
	}
	if ((mrc = mdb_cursor_open(
		 w->txn, s->dbi[DB_TABLE0 + t->slot], &cur)) != 0) {
		wtx_mdb(w, mrc, "opening an index table");
		return;
	}
	for (; budget > 0 && w->rc == KT_OK; budget--) {
		MDB_val key, val;

		if (!ixbuf_next(s->ixfrz, &s->ixpos, &r))
			break;
		STORE_ASSERT(r.klen < sizeof(k));
		k[0] = r.db;
		memcpy(k + 1, r.key, r.klen);
		key = store_val(k, 1 + r.klen);
		val = store_val(r.val, r.vlen);
		if ((mrc = mdb_cursor_put(cur, &key, &val, MDB_APPEND)) != 0)
			wtx_mdb(w, mrc, "writing an index table");
		store_bloom_row(s, t->slot, &key);
		moved++;
	}
	mdb_cursor_close(cur);
	store_count_slice(s, moved);
	peek = s->ixpos;
	if (w->rc != KT_OK || ixbuf_next(s->ixfrz, &peek, &r))
		return;
	t->flags = TAB_LIVE;
	w->tabs_dirty = 1;
	wtx_bloom_done(w, t->slot);
	if ((mrc = mdb_drop(w->txn, s->dbi[DB_PENDING0 + (1 - s->ixrun)], 0)))
		wtx_mdb(w, mrc, "emptying a pending table");
	wtx_put_meta_u64(w, META_IXFROZEN, 0);
	w->ixmerged = 1;
}

/* LMDB's default key order. */
static int
store_key_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t m = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int c = m > 0 ? memcmp(a->mv_data, b->mv_data, m) : 0;

	if (c != 0)
		return c;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/*
 * Moves the next slice of the merge into table t (of level t->level)
 * from its sources (the level below, flagged TAB_SOURCE): the rows after
 * t's last key, in key order, which is where a merge stopped, whatever
 * happened since.  The last slice makes t live and frees the sources.
 */
static void
wtx_tab_merge_slice(struct store_wtx *w, struct store_tab *t)
{
	MDB_cursor *src[STORE_TABLE_MERGE_MAX], *dst = NULL;
	MDB_val sk[STORE_TABLE_MERGE_MAX], sv[STORE_TABLE_MERGE_MAX], k, v;
	uint8_t last[STORE_TABLE_KEY_MAX], level = t->level, slot = t->slot;
	uint8_t kb[STORE_TABLE_KEY_MAX], vb[IXBUF_VAL_MAX];
	int live[STORE_TABLE_MERGE_MAX], mrc, any = 0;
	unsigned behind = wtx_merge_behind(w, level);
	size_t budget = wtx_merge_budget(w, behind), lastlen = 0, ns = 0;
	size_t moved = 0;

	/* Behind (the budget doubled): no deferring then. */
	budget += w->s->mergedebt[level];
	if (budget < wtx_slice_min(t->end - t->first) && behind == 0) {
		w->s->mergedebt[level] = budget;
		return;
	}
	w->s->mergedebt[level] = 0;
	for (unsigned i = 0; i < w->tabs.n && w->rc == KT_OK; i++) {
		if (!(w->tabs.t[i].flags & TAB_SOURCE) ||
		    w->tabs.t[i].level + 1 != level)
			continue;
		if (ns == STORE_TABLE_MERGE_MAX) {
			wtx_fail(w, KT_EPARSE,
			    "an index table merge has more than %d sources",
			    STORE_TABLE_MERGE_MAX);
			break;
		}
		if ((mrc = mdb_cursor_open(w->txn,
			 w->s->dbi[DB_TABLE0 + w->tabs.t[i].slot], &src[ns])) !=
		    0) {
			wtx_mdb(w, mrc, "opening an index table");
			break;
		}
		live[ns] = 0;
		ns++;
	}
	if (w->rc == KT_OK && ns == 0)
		wtx_fail(w, KT_EPARSE, "an index table merge has no sources");
	if (w->rc == KT_OK &&
	    (mrc = mdb_cursor_open(
		 w->txn, w->s->dbi[DB_TABLE0 + slot], &dst)) != 0)
		wtx_mdb(w, mrc, "opening an index table");
	if (w->rc != KT_OK)
		goto out;
	/* Where the merge stopped: the target's last key. */
	mrc = mdb_cursor_get(dst, &k, &v, MDB_LAST);
	if (mrc == 0) {
		STORE_ASSERT(k.mv_size <= sizeof(last));
		memcpy(last, k.mv_data, k.mv_size);
		lastlen = k.mv_size;
		any = 1;
	} else if (mrc != MDB_NOTFOUND) {
		wtx_mdb(w, mrc, "reading an index table");
		goto out;
	}
	for (size_t i = 0; i < ns; i++) {
		if (!any) {
			mrc = mdb_cursor_get(src[i], &sk[i], &sv[i], MDB_FIRST);
		} else {
			MDB_val from = store_val(last, lastlen);

			sk[i] = from;
			mrc = mdb_cursor_get(
			    src[i], &sk[i], &sv[i], MDB_SET_RANGE);
			if (mrc == 0 && store_key_cmp(&sk[i], &from) == 0)
				mrc = mdb_cursor_get(
				    src[i], &sk[i], &sv[i], MDB_NEXT);
		}
		if (mrc != 0 && mrc != MDB_NOTFOUND) {
			wtx_mdb(w, mrc, "reading an index table");
			goto out;
		}
		live[i] = mrc == 0;
	}
	for (; budget > 0 && w->rc == KT_OK; budget--) {
		size_t m = ns;

		for (size_t i = 0; i < ns; i++)
			if (live[i] &&
			    (m == ns || store_key_cmp(&sk[i], &sk[m]) < 0))
				m = i;
		if (m == ns)
			break;
		/* Copied: the put must not read from a page it may move. */
		STORE_ASSERT(
		    sk[m].mv_size <= sizeof(kb) && sv[m].mv_size <= sizeof(vb));
		memcpy(kb, sk[m].mv_data, sk[m].mv_size);
		if (sv[m].mv_size > 0)
			memcpy(vb, sv[m].mv_data, sv[m].mv_size);
		k = store_val(kb, sk[m].mv_size);
		v = store_val(vb, sv[m].mv_size);
		if ((mrc = mdb_cursor_put(dst, &k, &v, MDB_APPEND)) != 0) {
			wtx_mdb(w, mrc, "writing an index table");
			break;
		}
		store_bloom_row(w->s, slot, &k);
		moved++;
		/* Move past this key in every source (a row counts once). */
		for (size_t i = 0; i < ns; i++) {
			if (!live[i] || (i != m && store_key_cmp(&sk[i], &k)))
				continue;
			mrc = mdb_cursor_get(src[i], &sk[i], &sv[i], MDB_NEXT);
			if (mrc != 0 && mrc != MDB_NOTFOUND)
				wtx_mdb(w, mrc, "reading an index table");
			live[i] = mrc == 0;
		}
	}
	store_count_slice(w->s, moved);
	for (size_t i = 0; i < ns; i++)
		if (live[i])
			goto out; /* more in a later batch */
	if (w->rc != KT_OK)
		goto out;
	for (unsigned i = w->tabs.n; i-- > 0;)
		if ((w->tabs.t[i].flags & TAB_SOURCE) &&
		    w->tabs.t[i].level + 1 == level)
			wtx_tab_free(w, i);
	/* The list moved: find the target again by its slot. */
	for (unsigned i = 0; i < w->tabs.n; i++)
		if (w->tabs.t[i].slot == slot)
			w->tabs.t[i].flags = TAB_LIVE;
	w->tabs_dirty = 1;
	wtx_bloom_done(w, slot);
out:
	for (size_t i = 0; i < ns; i++)
		mdb_cursor_close(src[i]);
	if (dst != NULL)
		mdb_cursor_close(dst);
}

/*
 * Starts the merges that are due (a level with STORE_TABLE_FANOUT live
 * tables not yet merging) and moves a slice of every merge under way.
 */
static void
wtx_tab_merges(struct store_wtx *w)
{
	for (unsigned level = 1; level < STORE_TABLE_LEVELS && w->rc == KT_OK;
	     level++) {
		struct store_tab *t = wtx_tab_target(w, (uint8_t)level);
		unsigned pick[STORE_TABLE_FANOUT], np = 0, below = 0;

		for (unsigned i = 0; i < w->tabs.n; i++)
			below += (unsigned)w->tabs.t[i].level + 1 >= level;
		if (below == 0)
			break; /* no table at this level or above */
		if (t == NULL) {
			uint64_t first = UINT64_MAX, end = 0;

			/* The oldest live tables of the level below. */
			for (unsigned i = 0;
			     i < w->tabs.n && np < STORE_TABLE_FANOUT; i++)
				if (w->tabs.t[i].flags == TAB_LIVE &&
				    (unsigned)w->tabs.t[i].level + 1 == level)
					pick[np++] = i;
			if (np < STORE_TABLE_FANOUT)
				continue;
			for (unsigned j = 0; j < np; j++) {
				const struct store_tab *p = &w->tabs.t[pick[j]];

				first = p->first < first ? p->first : first;
				end = p->end > end ? p->end : end;
			}
			if ((t = wtx_tab_new(w, (uint8_t)level, first, end)) ==
			    NULL)
				continue;
			for (unsigned j = 0; j < np; j++)
				w->tabs.t[pick[j]].flags |= TAB_SOURCE;
		}
		wtx_tab_merge_slice(w, t);
	}
}

/* Stores the list of index tables if the batch changed it. */
static void
wtx_tabs_save(struct store_wtx *w)
{
	uint8_t b[STORE_TABLES * STORE_TAB_RECORD];
	size_t len;

	if (!w->tabs_dirty || w->rc != KT_OK)
		return;
	store_tabs_encode(&w->tabs, b, &len);
	wtx_put(w, DB_META, META_IXTABLES, strlen(META_IXTABLES), b, len, 0);
}

/*
 * Freezes the buffered run once it holds ixcap entries (and no other run
 * is being merged): new rows go to a new run and the other pending table
 * from the next batch on.
 */
static void
wtx_ix_freeze(struct store_wtx *w)
{
	struct store *s = w->s;

	if (w->rc != KT_OK || s->ixfrz != NULL ||
	    ixbuf_entries(s->ixact) < s->ixcap)
		return;
	if (ixbuf_new(s->ixcap, &w->ixnew) != KT_OK)
		return; /* no memory now: the next batch tries again */
	wtx_put_meta_u64(w, META_IXRUN, (uint64_t)(1 - s->ixrun));
	wtx_put_meta_u64(w, META_IXFROZEN, 1);
}

/* After a commit: readers see the runs the committed meta describes. */
static void
store_ix_committed(struct store *s, struct store_wtx *w)
{
	struct ixbuf *old = NULL;

	if (w->ixmerged) {
		(void)pthread_mutex_lock(&s->ixmu);
		old = s->ixfrz;
		s->ixfrz = NULL;
		(void)pthread_mutex_unlock(&s->ixmu);
		s->ixpos = 0;
	}
	if (w->ixnew != NULL) {
		(void)pthread_mutex_lock(&s->ixmu);
		s->ixfrz = s->ixact;
		s->ixact = w->ixnew;
		(void)pthread_mutex_unlock(&s->ixmu);
		w->ixnew = NULL;
		s->ixrun = 1 - s->ixrun;
		s->ixpos = 0;
	}
	ixbuf_free(old);
	/* Stored filters are in the map now; their builders go. */
	for (unsigned slot = 0; slot < STORE_TABLES; slot++)
		if (w->bbdone >> slot & 1) {
			bloom_free(&s->bb[slot]);
			s->bbok[slot] = 0;
		}
}

/* After an abort: the buffer forgets the batch's rows. */
static void
store_ix_aborted(struct store *s, struct store_wtx *w)
{
	if (s->ixact != NULL)
		ixbuf_truncate(s->ixact, w->ixrows0);
	s->ixpos = w->ixpos0;
	ixbuf_free(w->ixnew);
	w->ixnew = NULL;
}

struct store_ix_find {
	const uint8_t *prefix;
	size_t plen;	/* the key is prefix, then 8 bytes of index */
	uint64_t limit; /* only rows of entries below this index */
	uint64_t *out;
	size_t max, n;
};

static int
store_ix_leaf_cb(void *ctx, const struct ixbuf_row *r)
{
	struct store_ix_find *q = ctx;

	if (r->klen == KT_HASH_SIZE &&
	    memcmp(r->key, q->prefix, KT_HASH_SIZE) == 0 && r->index < q->limit)
		q->out[q->n++] = r->index;
	return 1;
}

int
store_ix_leaf(struct ixbuf *const ix[2], const uint8_t *leaf, uint64_t limit,
    uint64_t *index)
{
	for (int b = 0; b < 2; b++) {
		struct store_ix_find q = { leaf, KT_HASH_SIZE, limit, index, 1,
			0 };

		if (ix[b] == NULL ||
		    !ixbuf_maybe(ix[b], DB_BYHASH, leaf, KT_HASH_SIZE))
			continue;
		(void)ixbuf_scan(
		    ix[b], DB_BYHASH, leaf, KT_HASH_SIZE, store_ix_leaf_cb, &q);
		if (q.n > 0)
			return 1;
	}
	return 0;
}

static int
store_ix_search_cb(void *ctx, const struct ixbuf_row *r)
{
	struct store_ix_find *q = ctx;

	if (r->klen != q->plen + 8 || memcmp(r->key, q->prefix, q->plen) != 0 ||
	    r->index >= q->limit || q->n == q->max)
		return 1;
	q->out[q->n++] = r->index;
	return 0;
}

size_t
store_ix_union(const uint64_t *a, size_t na, const uint64_t *b, size_t nb,
    uint64_t *out, size_t max)
{
	size_t i = 0, j = 0, n = 0;

	while (n < max && (i < na || j < nb)) {
		uint64_t v;

		if (j == nb || (i < na && a[i] <= b[j]))
			v = a[i++];
		else
			v = b[j++];
		if (n == 0 || out[n - 1] != v)
			out[n++] = v;
	}
	return n;
}

int
store_ix_search(struct ixbuf *const ix[2], enum store_dbi db,
    const uint8_t *prefix, size_t plen, uint64_t after, uint64_t limit,
    uint64_t *out, size_t max, size_t *nout)
{
	uint8_t from[STORE_INDEX_KEY_MAX];
	uint64_t *part[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 };
	int rc = KT_OK;

	memcpy(from, prefix, plen);
	kt_put_u64be(from + plen, after + 1);
	for (int b = 0; b < 2; b++) {
		struct store_ix_find q;

		if (ix[b] == NULL)
			continue;
		if ((part[b] = malloc(max * sizeof(uint64_t))) == NULL) {
			rc = KT_ENOMEM;
			goto out;
		}
		q = (struct store_ix_find){ prefix, plen, limit, part[b], max,
			0 };
		(void)ixbuf_scan(
		    ix[b], (uint8_t)db, from, plen + 8, store_ix_search_cb, &q);
		n[b] = q.n;
	}
	*nout = store_ix_union(part[0], n[0], part[1], n[1], out, max);
out:
	free(part[0]);
	free(part[1]);
	return rc;
}

static int
store_put_check(const struct store_put *p)
{
	enum store_dbi db;

	if (store_aux_dbi(p->db, &db) != KT_OK || p->key.p == NULL ||
	    p->key.len == 0)
		return KT_EINVAL;
	if (p->key.len > STORE_AUX_KEY_MAX)
		return KT_ETOOBIG;
	if (p->del)
		return KT_OK;
	if (p->val.len > 0 && p->val.p == NULL)
		return KT_EINVAL;
	return p->val.len > STORE_AUX_VALUE_MAX ? KT_ETOOBIG : KT_OK;
}

static int
store_index_value_check(struct kt_bytes v)
{
	if (v.len > 0 && v.p == NULL)
		return KT_EINVAL;
	return v.len > STORE_INDEX_VALUE_MAX ? KT_ETOOBIG : KT_OK;
}

/* Checks one item's inputs before anything is written. */
static int
store_item_check(
    const struct store_item *it, size_t i, char *err, size_t errlen)
{
	struct kt_hash leaf;
	int rc = KT_OK;

	if ((it->entry.len > 0 && it->entry.p == NULL) ||
	    it->nputs > STORE_PUTS_MAX || (it->nputs > 0 && it->puts == NULL))
		rc = KT_EINVAL;
	else if (it->entry.len > STORE_ENTRY_MAX)
		rc = KT_ETOOBIG;
	if (rc == KT_OK)
		rc = store_index_value_check(it->by_key);
	if (rc == KT_OK)
		rc = store_index_value_check(it->by_digest);
	if (rc == KT_OK)
		rc = store_index_value_check(it->by_artifact);
	for (size_t j = 0; rc == KT_OK && j < it->nputs; j++)
		rc = store_put_check(&it->puts[j]);
	if (rc != KT_OK) {
		store_seterr(err, errlen, "item %zu: %s", i, kt_strerror(rc));
		return rc;
	}
	/* A wrong leaf hash would corrupt the tree for good: recompute it. */
	kt_leaf_hash(it->entry.len > 0 ? it->entry.p : (const uint8_t *)"",
	    it->entry.len, &leaf);
	if (memcmp(leaf.b, it->leaf.b, KT_HASH_SIZE) != 0) {
		store_seterr(err, errlen,
		    "item %zu: leaf hash does not match the entry", i);
		return KT_EINVAL;
	}
	return KT_OK;
}

int
store_append(struct store *s, struct store_item *items, size_t n,
    store_sign_fn sign, void *ctx, struct kt_buf *note_out, uint64_t *size_out,
    char *err, size_t errlen)
{
	size_t orig = note_out != NULL ? note_out->len : 0;
	struct store_wtx w;
	struct kt_hash root = { { 0 } };
	double t;
	int rc;

	if (s == NULL || sign == NULL || (n > 0 && items == NULL) ||
	    n > STORE_BATCH_MAX) {
		store_seterr(err, errlen, "store_append: invalid arguments");
		return KT_EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = store_item_check(&items[i], i, err, errlen)) != KT_OK)
			return rc;
	if (n > s->rescap) {
		struct store_result *r = realloc(s->res, n * sizeof(*r));

		if (r == NULL) {
			store_seterr(err, errlen, "out of memory");
			return KT_ENOMEM;
		}
		s->res = r;
		s->rescap = n;
	}
	memset(&s->last, 0, sizeof(s->last));
	t = kt_monotonic_seconds();
	if (wtx_begin(s, &w, err, errlen) != KT_OK) {
		store_ix_aborted(s, &w);
		return wtx_end(&w, 0);
	}
	for (size_t i = 0; i < n && w.rc == KT_OK; i++) {
		if (i + 1 < n)
			wtx_prefetch(&w, &items[i + 1]);
		wtx_add(&w, &items[i], &s->res[i]);
	}
	s->last.add = store_lap(&t);
	if (w.size != w.size0) {
		wtx_ix_flush(&w);
		wtx_tab_merges(&w);
		wtx_tabs_save(&w);
		wtx_ix_freeze(&w);
		s->last.index = store_lap(&t);
	}
	if (w.rc == KT_OK && w.size == w.size0) {
		/* Nothing new: nothing to write or sign. */
		wtx_latest(&w, note_out);
		s->last.add += store_lap(&t);
		if ((rc = wtx_end(&w, 0)) != KT_OK)
			goto fail;
	} else {
		for (int l = 0; l < STORE_LEVELS; l++)
			if (s->levels[l].loaded && s->levels[l].dirty)
				wtx_level_flush(&w, l);
		s->last.add += store_lap(&t);
		if (w.rc == KT_OK &&
		    (rc = kt_tree_hash(w.size, wtx_read_hashes, &w, &root)))
			wtx_fail(&w, KT_EINTERNAL, "computing root %llu: %s",
			    (unsigned long long)w.size, kt_strerror(rc));
		wtx_sign(&w, &root, sign, ctx, note_out);
		s->last.sign = store_lap(&t);
		rc = wtx_end(&w, 1);
		s->last.commit = store_lap(&t);
		if (rc != KT_OK)
			goto fail;
	}
	store_ix_committed(s, &w);
	for (size_t i = 0; i < n; i++) {
		items[i].index = s->res[i].index;
		items[i].duplicate = s->res[i].duplicate;
	}
	if (size_out != NULL)
		*size_out = w.size;
	return KT_OK;
fail:
	store_ix_aborted(s, &w);
	if (note_out != NULL)
		kt_buf_truncate(note_out, orig);
	return rc;
}

void
store_last_times(const struct store *s, struct store_times *out)
{
	*out = s->last;
}

int
store_init_checkpoint(struct store *s, store_sign_fn sign, void *ctx,
    struct kt_buf *note_out, char *err, size_t errlen)
{
	size_t orig = note_out != NULL ? note_out->len : 0;
	struct store_wtx w;
	struct kt_hash root;
	int rc;

	if (s == NULL || sign == NULL) {
		store_seterr(err, errlen, "store_init_checkpoint: no signer");
		return KT_EINVAL;
	}
	if (wtx_begin(s, &w, err, errlen) != KT_OK)
		return wtx_end(&w, 0);
	if (w.has_cp) {
		wtx_latest(&w, note_out);
		rc = wtx_end(&w, 0);
	} else {
		if (w.size0 != 0)
			wtx_fail(&w, KT_EINTERNAL,
			    "tree size %llu has no signed checkpoint",
			    (unsigned long long)w.size0);
		kt_empty_root(&root);
		wtx_sign(&w, &root, sign, ctx, note_out);
		rc = wtx_end(&w, 1);
	}
	if (rc != KT_OK && note_out != NULL)
		kt_buf_truncate(note_out, orig);
	return rc;
}

int
store_write(struct store *s, const struct store_put *puts, size_t n, char *err,
    size_t errlen)
{
	struct store_wtx w;
	int rc;

	if (s == NULL || (n > 0 && puts == NULL) || n > STORE_PUTS_MAX) {
		store_seterr(err, errlen, "store_write: invalid arguments");
		return KT_EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = puts[i].index_value
			    ? KT_EINVAL
			    : store_put_check(&puts[i])) != KT_OK) {
			store_seterr(
			    err, errlen, "write %zu: %s", i, kt_strerror(rc));
			return rc;
		}
	if (wtx_begin(s, &w, err, errlen) == KT_OK)
		for (size_t i = 0; i < n; i++)
			wtx_aux(&w, &puts[i], UINT64_MAX);
	return wtx_end(&w, 1);
}

int
store_debug_set_schema(struct store *s, uint64_t version)
{
	struct store_wtx w;

	if (wtx_begin(s, &w, NULL, 0) == KT_OK)
		wtx_put_meta_u64(&w, META_VERSION, version);
	return wtx_end(&w, 1);
}

/*
 * Opening.
 */

/*
 * Checks that the stored tree state is coherent: the entries end at the
 * tree size, a tree with entries has a checkpoint of that size, and the
 * stored hashes give the signed root.
 */
static int
store_check_tree(struct store *s, char *err, size_t errlen)
{
	struct store_rd *rd = NULL;
	MDB_cursor *cur = NULL;
	struct kt_hash root;
	MDB_val k, v;
	int mrc, rc;

	if ((rc = store_rd_begin(s, &rd)) != KT_OK) {
		store_seterr(err, errlen, "cannot read log storage: %s",
		    kt_strerror(rc));
		return rc;
	}
	rc = KT_EPARSE;
	if (rd->has_cp ? rd->signed_size != rd->size : rd->size != 0) {
		store_seterr(err, errlen,
		    "log storage is inconsistent: tree size %llu, no "
		    "checkpoint of that size",
		    (unsigned long long)rd->size);
		goto out;
	}
	if ((mrc = mdb_cursor_open(rd->txn, s->dbi[DB_ENTRIES], &cur)) != 0) {
		rc = store_mdb_error(s, mrc, "entries", err, errlen);
		goto out;
	}
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rd->size == 0 ? mrc != MDB_NOTFOUND
			  : (mrc != 0 || k.mv_size != 8 ||
				kt_get_u64be(k.mv_data) != rd->size - 1)) {
		store_seterr(err, errlen,
		    "log storage is inconsistent: the entries do not end at "
		    "tree size %llu",
		    (unsigned long long)rd->size);
		goto out;
	}
	if (rd->size > 0 &&
	    (kt_tree_hash(rd->size, store_rd_read_hashes, rd, &root) != KT_OK ||
		!kt_hash_equal(&root, &rd->signed_root))) {
		store_seterr(err, errlen,
		    "log storage is inconsistent: the stored hashes do not "
		    "give the signed root of size %llu",
		    (unsigned long long)rd->size);
		goto out;
	}
	rc = KT_OK;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	store_rd_end(rd);
	return rc;
}

/* Opens the named databases and creates or checks meta. */
static int
store_schema(struct store *s, int upgrade, char *err, size_t errlen)
{
	struct store_wtx w;
	uint64_t version, size;
	MDB_val v;
	MDB_stat st;
	int mrc, rc;

	memset(&w, 0, sizeof(w));
	w.s = s;
	w.err = err;
	w.errlen = errlen;
	if ((mrc = mdb_txn_begin(s->env, NULL, 0, &w.txn)) != 0) {
		w.txn = NULL;
		wtx_mdb(&w, mrc, "opening log storage");
		return w.rc;
	}
	for (int i = 0; i < DB_COUNT && w.rc == KT_OK; i++)
		if ((mrc = mdb_dbi_open(w.txn, store_db_names[i], MDB_CREATE,
			 &s->dbi[i])) != 0)
			wtx_mdb(&w, mrc, store_db_names[i]);
	if (w.rc != KT_OK)
		return wtx_end(&w, 0);
	rc = store_meta_u64(s, w.txn, META_VERSION, &version);
	if (rc == KT_ENOTFOUND) {
		/* A new log, unless something is there without a version. */
		if ((mrc = mdb_stat(w.txn, s->dbi[DB_META], &st)) != 0)
			wtx_mdb(&w, mrc, "meta");
		else if (st.ms_entries != 0)
			wtx_fail(
			    &w, KT_EPARSE, "log storage has no schema version");
		wtx_put_meta_u64(&w, META_VERSION, STORE_SCHEMA_VERSION);
		wtx_put(&w, DB_META, META_ORIGIN, strlen(META_ORIGIN),
		    s->origin, s->originlen, 0);
		wtx_put_meta_u64(&w, META_SIZE, 0);
		wtx_put_meta_u64(&w, META_IXRUN, 0);
		wtx_put_meta_u64(&w, META_IXFROZEN, 0);
		return wtx_end(&w, 1);
	}
	if (rc == KT_OK && (version == 1 || version == 2) && upgrade) {
		/*
		 * Schema 1 wrote every index row straight to its B-tree: it
		 * gains the pending tables, empty.  Schema 2 merged full runs
		 * into the B-trees; from 3 on they go to index tables (all
		 * empty, just opened), and the B-trees keep what they hold.
		 * A run schema 2 was merging is written to a table, and the
		 * rows it had merged are then in both (lookups count a row
		 * once).
		 */
		if (version == 1) {
			wtx_put_meta_u64(&w, META_IXRUN, 0);
			wtx_put_meta_u64(&w, META_IXFROZEN, 0);
		}
		wtx_put_meta_u64(&w, META_VERSION, STORE_SCHEMA_VERSION);
		version = STORE_SCHEMA_VERSION;
	}
	if (rc != KT_OK) {
		wtx_fail(&w, rc == KT_EIO ? KT_EIO : KT_EPARSE,
		    "log storage schema version is unreadable");
	} else if (version == 1 || version == 2) {
		wtx_fail(&w, KT_EPARSE,
		    "log storage schema version %llu must be upgraded to %d "
		    "first (keytrail-logd --upgrade-storage; older programs "
		    "cannot read it afterwards)",
		    (unsigned long long)version, STORE_SCHEMA_VERSION);
	} else if (version != STORE_SCHEMA_VERSION) {
		wtx_fail(&w, KT_EPARSE,
		    "log storage schema version %llu is not supported (this "
		    "program reads version %d)",
		    (unsigned long long)version, STORE_SCHEMA_VERSION);
	} else if (!wtx_get(
		       &w, DB_META, META_ORIGIN, strlen(META_ORIGIN), &v)) {
		wtx_fail(&w, KT_EPARSE, "log storage has no origin");
	} else if (v.mv_size != s->originlen ||
	    memcmp(v.mv_data, s->origin, s->originlen) != 0) {
		wtx_fail(&w, KT_EINVAL,
		    "log storage belongs to origin \"%.*s\", not \"%s\"",
		    (int)(v.mv_size > STORE_ORIGIN_MAX ? STORE_ORIGIN_MAX
						       : v.mv_size),
		    (const char *)v.mv_data, s->origin);
	} else if (store_meta_u64(s, w.txn, META_SIZE, &size) != KT_OK ||
	    size >= KT_SIZE_MAX) {
		wtx_fail(&w, KT_EPARSE, "log storage has no valid tree size");
	}
	/* Only the DBI handles are new; committing keeps them open. */
	return wtx_end(&w, 1);
}

/* Rebuilds run b from pending table db.  Returns KT_OK or an error. */
static int
store_ix_load(struct store *s, MDB_txn *txn, enum store_dbi db, struct ixbuf *b,
    char *err, size_t errlen)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int mrc, rc = KT_OK;

	if ((mrc = mdb_cursor_open(txn, s->dbi[db], &cur)) != 0)
		return store_mdb_error(s, mrc, store_db_names[db], err, errlen);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = v.mv_data, *e = p + v.mv_size;
		uint64_t idx;

		if (k.mv_size != 8) {
			rc = KT_EPARSE;
			break;
		}
		idx = kt_get_u64be(k.mv_data);
		while (rc == KT_OK && p < e) {
			size_t klen, vlen;
			uint8_t t = p[0];

			if (e - p < 4 ||
			    (klen = (size_t)p[1] << 8 | p[2]) == 0 ||
			    (size_t)(e - p) < 4 + klen ||
			    (size_t)(e - p) < 4 + klen + (vlen = p[3 + klen]) ||
			    (t != DB_BYHASH && t != DB_BYKEY &&
				t != DB_BYDIGEST && t != DB_BYARTIFACT)) {
				rc = KT_EPARSE;
				break;
			}
			rc = ixbuf_add(b, t, p + 3, klen,
			    store_ix_filed(t, klen), p + 4 + klen, vlen, idx);
			p += 4 + klen + vlen;
		}
		if (rc != KT_OK)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == KT_OK && mrc != MDB_NOTFOUND)
		return store_mdb_error(s, mrc, store_db_names[db], err, errlen);
	if (rc != KT_OK)
		store_seterr(err, errlen, "the index rows in %s are %s",
		    store_db_names[db],
		    rc == KT_ENOMEM ? "too many for memory" : "damaged");
	return rc;
}

/*
 * Rebuilds the filters of the merges under way (up to the levels that
 * get one) from the rows their tables hold so far: the merge goes on
 * from there, and its table gets a whole filter.  This reads those rows
 * once, at open.  (A run being written to level 0 starts again anyway.)
 */
static int
store_bloom_reload(struct store *s, MDB_txn *txn, char *err, size_t errlen)
{
	struct store_tabs tabs;
	int rc;

	if ((rc = store_tabs_read(s, txn, &tabs)) != KT_OK) {
		store_seterr(err, errlen, "log storage meta has no valid %s",
		    META_IXTABLES);
		return rc == KT_EIO ? KT_EIO : KT_EPARSE;
	}
	for (unsigned i = 0; i < tabs.n; i++) {
		const struct store_tab *t = &tabs.t[i];
		static const uint8_t kinds[] = { DB_BYHASH, DB_BYDIGEST };
		MDB_cursor *cur = NULL;
		int mrc = 0;

		if (!(t->flags & TAB_TARGET) || t->level == 0 ||
		    t->level > STORE_BLOOM_LEVEL_MAX)
			continue;
		bloom_free(&s->bb[t->slot]);
		s->bbok[t->slot] = 0;
		if (bloom_init(&s->bb[t->slot], t->end - t->first) != KT_OK)
			continue; /* no memory: that table goes without */
		if ((mrc = mdb_cursor_open(
			 txn, s->dbi[DB_TABLE0 + t->slot], &cur)) != 0)
			return store_mdb_error(s, mrc,
			    store_db_names[DB_TABLE0 + t->slot], err, errlen);
		for (size_t j = 0; j < sizeof(kinds) && mrc == 0; j++) {
			MDB_val k = store_val(&kinds[j], 1), v;

			for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			     mrc == 0 &&
			     *(const uint8_t *)k.mv_data == kinds[j];
			     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
				s->bbok[t->slot] = 1;
				store_bloom_row(s, t->slot, &k);
			}
			if (mrc == MDB_NOTFOUND)
				mrc = 0;
		}
		mdb_cursor_close(cur);
		bloom_settle(&s->bb[t->slot]);
		if (mrc != 0)
			return store_mdb_error(s, mrc,
			    store_db_names[DB_TABLE0 + t->slot], err, errlen);
		s->bbok[t->slot] = 1;
	}
	return KT_OK;
}

/*
 * Rebuilds the index buffer from the pending tables: the run that takes
 * new rows, and the run being merged if there is one (its merge starts
 * over; rewriting rows already merged changes nothing).
 */
static int
store_ix_open(struct store *s, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	uint64_t run, frozen;
	int mrc, rc;

	if (pthread_mutex_init(&s->ixmu, NULL) != 0) {
		store_seterr(err, errlen, "out of memory");
		return KT_ENOMEM;
	}
	s->ixmu_ok = 1;
	if ((rc = ixbuf_new(s->ixcap, &s->ixact)) != KT_OK) {
		store_seterr(err, errlen, "out of memory");
		return rc;
	}
	if ((mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_mdb_error(
		    s, mrc, "opening log storage", err, errlen);
	if (store_meta_u64(s, txn, META_IXRUN, &run) != KT_OK || run > 1 ||
	    store_meta_u64(s, txn, META_IXFROZEN, &frozen) != KT_OK ||
	    frozen > 1) {
		store_seterr(err, errlen,
		    "log storage meta has no valid "
		    "index buffer state");
		rc = KT_EPARSE;
		goto out;
	}
	s->ixrun = (int)run;
	if ((rc = store_ix_load(s, txn, DB_PENDING0 + s->ixrun, s->ixact, err,
		 errlen)) != KT_OK)
		goto out;
	if (frozen) {
		if ((rc = ixbuf_new(s->ixcap, &s->ixfrz)) != KT_OK) {
			store_seterr(err, errlen, "out of memory");
			goto out;
		}
		rc = store_ix_load(s, txn, DB_PENDING0 + (1 - s->ixrun),
		    s->ixfrz, err, errlen);
	}
	if (rc == KT_OK)
		rc = store_bloom_reload(s, txn, err, errlen);
out:
	mdb_txn_abort(txn);
	return rc;
}

void
store_debug_set_rd_hook(struct store *s, void (*fn)(void *ctx), void *ctx)
{
	s->rd_hook = fn;
	s->rd_hook_ctx = ctx;
}

void
store_set_ixbuf_entries(struct store *s, uint64_t entries)
{
	s->ixcap = entries > 0 ? entries : 1;
}

static int
store_origin_check(const char *origin, char *err, size_t errlen)
{
	size_t len;

	if (origin == NULL || (len = strlen(origin)) == 0 ||
	    len > STORE_ORIGIN_MAX ||
	    kt_note_name_check((const uint8_t *)origin, len) != KT_OK) {
		store_seterr(err, errlen,
		    "the log origin must be a valid key name of 1 to %d "
		    "bytes",
		    STORE_ORIGIN_MAX);
		return KT_EINVAL;
	}
	return KT_OK;
}

/* Creates <datadir>/log with mode 0700, or checks it is a directory. */
static int
store_mkdir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return KT_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return KT_OK;
	store_seterr(err, errlen, "cannot create log storage directory %s: %s",
	    path, strerror(errno));
	return KT_EIO;
}

static int
store_open_as(const char *datadir, const char *origin, uint64_t map_size,
    int upgrade, struct store **out, char *err, size_t errlen)
{
	struct store *s = NULL;
	char path[PATH_MAX];
	MDB_envinfo info;
	int n, mrc, rc, dead;

	if (datadir == NULL || out == NULL) {
		store_seterr(err, errlen, "store_open: invalid arguments");
		return KT_EINVAL;
	}
	if ((rc = store_origin_check(origin, err, errlen)) != KT_OK)
		return rc;
	if (map_size == 0)
		map_size = STORE_MAP_SIZE_DEFAULT;
	if (map_size < STORE_MAP_SIZE_MIN || map_size > SIZE_MAX) {
		store_seterr(err, errlen,
		    "map size %llu is outside %llu..%zu bytes",
		    (unsigned long long)map_size,
		    (unsigned long long)STORE_MAP_SIZE_MIN, (size_t)SIZE_MAX);
		return KT_EINVAL;
	}
	n = snprintf(path, sizeof(path), "%s/log", datadir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		store_seterr(err, errlen, "data directory path too long");
		return KT_EINVAL;
	}
	rc = KT_ENOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->levels = calloc(STORE_LEVELS, sizeof(*s->levels))) == NULL) {
		store_seterr(err, errlen, "out of memory");
		goto out;
	}
	atomic_init(&s->probes_read, 0);
	atomic_init(&s->probes_skipped, 0);
	atomic_init(&s->slices, 0);
	atomic_init(&s->slice_rows, 0);
	kt_buf_init(&s->text, KT_CHECKPOINT_MAX);
	kt_buf_init(&s->note, KT_NOTE_MAX);
	s->originlen = strlen(origin);
	memcpy(s->origin, origin, s->originlen + 1);
	s->map_size = map_size;
	if ((rc = store_mkdir(path, err, errlen)) != KT_OK)
		goto out;
	if ((mrc = mdb_env_create(&s->env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(s->env, STORE_MAXDBS)) != 0 ||
	    (mrc = mdb_env_set_mapsize(s->env, (size_t)map_size)) != 0 ||
	    (mrc = mdb_env_open(s->env, path, MDB_NOTLS, 0600)) != 0) {
		rc = store_mdb_error(s, mrc, path, err, errlen);
		goto out;
	}
	/* LMDB raises the map to the file's size if that is larger. */
	if ((mrc = mdb_env_info(s->env, &info)) != 0) {
		rc = store_mdb_error(s, mrc, path, err, errlen);
		goto out;
	}
	s->map_size = info.me_mapsize;
	/* Free the reader slots of processes that died mid-read. */
	if ((mrc = mdb_reader_check(s->env, &dead)) != 0) {
		rc = store_mdb_error(s, mrc, path, err, errlen);
		goto out;
	}
	s->ixcap = STORE_IXBUF_ENTRIES_DEFAULT;
	/*
	 * What was owed before a restart is not known: the first batch
	 * moves a full slice of each merge under way, so restarts never
	 * slow the merges down.
	 */
	s->flushdebt = STORE_SLICE_MIN;
	for (size_t i = 0; i < STORE_TABLE_LEVELS; i++)
		s->mergedebt[i] = STORE_SLICE_MIN;
	if ((rc = store_schema(s, upgrade, err, errlen)) != KT_OK ||
	    (rc = store_check_tree(s, err, errlen)) != KT_OK ||
	    (rc = store_ix_open(s, err, errlen)) != KT_OK)
		goto out;
	*out = s;
	s = NULL;
	rc = KT_OK;
out:
	store_close(s);
	return rc;
}

int
store_open(const char *datadir, const char *origin, uint64_t map_size,
    struct store **out, char *err, size_t errlen)
{
	return store_open_as(datadir, origin, map_size, 0, out, err, errlen);
}

int
store_upgrade(const char *datadir, const char *origin, uint64_t map_size,
    char *err, size_t errlen)
{
	struct store *s = NULL;
	int rc;

	rc = store_open_as(datadir, origin, map_size, 1, &s, err, errlen);
	store_close(s);
	return rc;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	/* mdb_env_close also releases a handle whose open failed. */
	if (s->env != NULL)
		mdb_env_close(s->env);
	ixbuf_free(s->ixact);
	ixbuf_free(s->ixfrz);
	for (unsigned slot = 0; slot < STORE_TABLES; slot++)
		bloom_free(&s->bb[slot]);
	if (s->ixmu_ok)
		(void)pthread_mutex_destroy(&s->ixmu);
	free(s->levels);
	free(s->res);
	kt_buf_free(&s->text);
	kt_buf_free(&s->note);
	free(s);
}

int
store_stats(struct store *s, struct store_stats *st)
{
	unsigned at_level[STORE_TABLE_LEVELS] = { 0 };
	struct store_tabs tabs;
	struct store_rd *rd;
	MDB_envinfo info;
	MDB_stat es;
	int rc;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &es) != 0)
		return KT_EIO;
	if ((rc = store_rd_begin(s, &rd)) != KT_OK)
		return rc;
	st->map_size = info.me_mapsize;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
	st->entries = rd->size;
	/* The runs this session holds: the newest rows, and one merging. */
	st->ixbuf_merging = rd->ix[1] != NULL;
	st->ixbuf_entries = 0;
	for (int b = 0; b < 2; b++)
		if (rd->ix[b] != NULL)
			st->ixbuf_entries += ixbuf_entries(rd->ix[b]);
	if ((rc = store_tabs_read(s, rd->txn, &tabs)) != KT_OK) {
		store_rd_end(rd);
		return KT_EIO;
	}
	st->ixtables = st->ixmerges = st->ixlevels = st->ixlevel_max = 0;
	st->probes_read = atomic_load(&s->probes_read);
	st->probes_skipped = atomic_load(&s->probes_skipped);
	st->slices = atomic_load(&s->slices);
	st->slice_rows = atomic_load(&s->slice_rows);
	for (unsigned i = 0; i < tabs.n; i++) {
		const struct store_tab *t = &tabs.t[i];

		if (t->flags & TAB_LIVE) {
			st->ixtables++;
			if ((unsigned)t->level + 1 > st->ixlevels)
				st->ixlevels = (unsigned)t->level + 1;
			/* Levels are below 64 (store_tabs_read). */
			if (++at_level[t->level] > st->ixlevel_max)
				st->ixlevel_max = at_level[t->level];
		} else if (t->level > 0) {
			st->ixmerges++;
		}
	}
	store_rd_end(rd);
	return KT_OK;
}
