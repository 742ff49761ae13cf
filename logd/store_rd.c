/*
 * The log's read side: read sessions over the LMDB environment that
 * store.c opens (store_int.h has what the two share).
 *
 * A session is one read-only transaction, so every store_rd_* call sees
 * the same snapshot.  Values are copied into caller buffers before they
 * leave, since LMDB's bytes are borrowed until the transaction ends; the
 * session itself keeps the last level tile of each tree level it looked
 * up, because proofs and tile requests come back to the same tiles.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/merkle.h"
#include "keytrail/tile.h"
#include "store_int.h"

/* The table behind each search index. */
static const enum store_dbi store_index_dbis[] = { DB_BYKEY, DB_BYDIGEST,
	DB_BYARTIFACT };

int
store_rd_begin(struct store *s, struct store_rd **out)
{
	struct store_rd *rd;
	int mrc, rc;

	if ((rd = calloc(1, sizeof(*rd))) == NULL)
		return KT_ENOMEM;
	rd->s = s;
	/*
	 * The index buffer's runs are taken before the snapshot, so a run
	 * merged since is still held; if a new run began in between (its
	 * rows may be in the snapshot), take them again.
	 */
	for (;;) {
		int same;

		(void)pthread_mutex_lock(&s->ixmu);
		rd->ix[0] = ixbuf_ref(s->ixact);
		rd->ix[1] = ixbuf_ref(s->ixfrz);
		(void)pthread_mutex_unlock(&s->ixmu);
		if (s->rd_hook != NULL)
			s->rd_hook(s->rd_hook_ctx);
		if ((mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rd->txn)) !=
		    0) {
			rd->txn = NULL;
			store_rd_end(rd);
			return mrc == MDB_READERS_FULL ? KT_EUNAVAIL
						       : store_rd_error(mrc);
		}
		(void)pthread_mutex_lock(&s->ixmu);
		same = rd->ix[0] == s->ixact;
		(void)pthread_mutex_unlock(&s->ixmu);
		if (same)
			break;
		mdb_txn_abort(rd->txn);
		ixbuf_free(rd->ix[0]);
		ixbuf_free(rd->ix[1]);
	}
	if ((rc = store_meta_u64(s, rd->txn, META_SIZE, &rd->size)) != KT_OK ||
	    (rc = store_meta_signed(s, rd->txn, &rd->has_cp, &rd->signed_size,
		 &rd->signed_root)) != KT_OK) {
		store_rd_end(rd);
		return KT_EIO;
	}
	*out = rd;
	return KT_OK;
}

void
store_rd_end(struct store_rd *rd)
{
	if (rd == NULL)
		return;
	if (rd->txn != NULL)
		mdb_txn_abort(rd->txn);
	ixbuf_free(rd->ix[0]);
	ixbuf_free(rd->ix[1]);
	free(rd);
}

uint64_t
store_rd_size(const struct store_rd *rd)
{
	return rd->size;
}

/* Looks key up in db and appends its value to out. */
static int
store_rd_copy(struct store_rd *rd, enum store_dbi db, const void *key,
    size_t klen, struct kt_buf *out)
{
	MDB_val k = store_val(key, klen), v;
	int mrc;

	if ((mrc = mdb_get(rd->txn, rd->s->dbi[db], &k, &v)) != 0)
		return store_rd_error(mrc);
	return kt_buf_append(out, v.mv_data, v.mv_size);
}

int
store_rd_checkpoint(struct store_rd *rd, struct kt_buf *note)
{
	if (!rd->has_cp)
		return KT_ENOTFOUND;
	return store_rd_checkpoint_at(rd, rd->signed_size, note);
}

int
store_rd_checkpoint_at(struct store_rd *rd, uint64_t size, struct kt_buf *note)
{
	uint8_t k[8];

	kt_put_u64be(k, size);
	return store_rd_copy(rd, DB_CHECKPOINTS, k, sizeof(k), note);
}

int
store_rd_entry(struct store_rd *rd, uint64_t index, struct kt_buf *out)
{
	uint8_t k[8];

	if (index >= rd->size)
		return KT_ENOTFOUND;
	kt_put_u64be(k, index);
	return store_rd_copy(rd, DB_ENTRIES, k, sizeof(k), out);
}

/*
 * Finds level tile (l, tile), remembering the last one of each level:
 * proofs and tile requests come back to the same tiles.  The bytes stay
 * valid until the session ends (LMDB read-only transactions).
 */
static int
store_rd_level_tile(
    struct store_rd *rd, int l, uint64_t tile, const uint8_t **p, size_t *len)
{
	struct store_rd_tile *c = &rd->cache[l];
	uint8_t key[STORE_TILE_KEY];
	MDB_val k, v;
	int mrc;

	STORE_ASSERT(l >= 0 && l < STORE_LEVELS);
	if (!c->ok || c->tile != tile) {
		store_tile_key(key, l, tile);
		k = store_val(key, sizeof(key));
		if ((mrc = mdb_get(rd->txn, rd->s->dbi[DB_TILES], &k, &v)) != 0)
			return store_rd_error(mrc);
		c->tile = tile;
		c->p = v.mv_data;
		c->len = v.mv_size;
		c->ok = 1;
	}
	*p = c->p;
	*len = c->len;
	return KT_OK;
}

static int
store_tile_args(int level, uint64_t index, unsigned width)
{
	if (level < 0 || level > KT_TILE_LEVEL_MAX ||
	    index > KT_TILE_INDEX_MAX || width == 0 || width > KT_TILE_WIDTH)
		return KT_EINVAL;
	return KT_OK;
}

int
store_rd_tile(struct store_rd *rd, int level, uint64_t index, unsigned width,
    struct kt_buf *out)
{
	size_t want = (size_t)width * KT_HASH_SIZE, len;
	const uint8_t *p;
	int rc;

	if ((rc = store_tile_args(level, index, width)) != KT_OK)
		return rc;
	/* C2SP tile L/N is level tile (8L, N); no tree reaches level 63. */
	if (level * KT_TILE_HEIGHT >= STORE_LEVELS)
		return KT_ENOTFOUND;
	rc = store_rd_level_tile(rd, level * KT_TILE_HEIGHT, index, &p, &len);
	if (rc != KT_OK)
		return rc;
	if (len < want)
		return KT_ENOTFOUND;
	return kt_buf_append(out, p, want);
}

int
store_rd_bundle(
    struct store_rd *rd, uint64_t index, unsigned width, struct kt_buf *out)
{
	size_t orig = out->len;
	uint64_t first = index * KT_TILE_WIDTH;
	MDB_cursor *cur = NULL;
	uint8_t key[8];
	MDB_val k, v;
	int mrc, rc;

	if ((rc = store_tile_args(0, index, width)) != KT_OK)
		return rc;
	if (first + width > rd->size)
		return KT_ENOTFOUND;
	if ((mrc = mdb_cursor_open(rd->txn, rd->s->dbi[DB_ENTRIES], &cur)))
		return store_rd_error(mrc);
	kt_put_u64be(key, first);
	k = store_val(key, sizeof(key));
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	for (unsigned i = 0; i < width; i++) {
		if (i > 0)
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (mrc != 0) {
			rc = mrc == MDB_NOTFOUND ? KT_EIO : store_rd_error(mrc);
			goto out;
		}
		/* The entries below the tree size are dense. */
		if (k.mv_size != 8 || kt_get_u64be(k.mv_data) != first + i) {
			rc = KT_EIO;
			goto out;
		}
		rc = kt_entry_bundle_append(out, v.mv_data, v.mv_size);
		if (rc != KT_OK)
			goto out;
	}
	rc = KT_OK;
out:
	mdb_cursor_close(cur);
	if (rc != KT_OK)
		kt_buf_truncate(out, orig);
	return rc;
}

int
store_rd_read_hashes(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	struct store_rd *rd = ctx;
	struct kt_hash tmp[KT_READ_MAX];
	const uint8_t *p;
	size_t len, off;
	uint64_t pos;
	int l, rc;

	if (n > KT_READ_MAX)
		return KT_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (indexes[i] >= KT_SIZE_MAX)
			return KT_ENOTFOUND;
		kt_split_stored_hash_index(indexes[i], &l, &pos);
		if (l >= STORE_LEVELS)
			return KT_ENOTFOUND;
		rc = store_rd_level_tile(rd, l, pos / KT_TILE_WIDTH, &p, &len);
		if (rc != KT_OK)
			return rc;
		off = (size_t)(pos % KT_TILE_WIDTH) * KT_HASH_SIZE;
		if (len < off + KT_HASH_SIZE)
			return KT_ENOTFOUND;
		memcpy(tmp[i].b, p + off, KT_HASH_SIZE);
	}
	memcpy(out, tmp, n * sizeof(tmp[0]));
	return KT_OK;
}

/* Reads the snapshot's list of index tables, once per session. */
static int
store_rd_tabs(struct store_rd *rd)
{
	int rc;

	if (rd->tabs_ok)
		return KT_OK;
	if ((rc = store_tabs_read(rd->s, rd->txn, &rd->tabs)) != KT_OK)
		return rc == KT_EPARSE ? KT_EIO : rc;
	rd->tabs_ok = 1;
	return KT_OK;
}

int
store_rd_find_leaf(
    struct store_rd *rd, const struct kt_hash *leaf, uint64_t *index)
{
	MDB_val k = store_val(leaf->b, KT_HASH_SIZE), v;
	int mrc, rc;

	if ((mrc = mdb_get(rd->txn, rd->s->dbi[DB_BYHASH], &k, &v)) != 0) {
		if (mrc != MDB_NOTFOUND)
			return store_rd_error(mrc);
		/* Newer entries' rows are in the index tables or buffer. */
		if ((rc = store_rd_tabs(rd)) != KT_OK ||
		    (rc = store_tabs_leaf(rd->s, rd->txn, &rd->tabs, leaf->b,
			 index)) != KT_ENOTFOUND)
			return rc;
		if (store_ix_leaf(rd->ix, leaf->b, rd->size, index))
			return KT_OK;
		return KT_ENOTFOUND;
	}
	if (v.mv_size != 8)
		return KT_EIO;
	*index = kt_get_u64be(v.mv_data);
	return KT_OK;
}

int
store_rd_search(struct store_rd *rd, enum store_index which,
    const uint8_t *value, size_t len, uint64_t after, uint64_t *out, size_t max,
    size_t *nout, int *more)
{
	uint8_t key[STORE_INDEX_KEY_MAX];
	size_t plen = 1 + len, cnt = 0, nbuf = 0, klen, n;
	uint64_t *tree = NULL, *buf = NULL, *u = NULL;
	enum store_dbi db;
	int rc = KT_OK;

	if ((unsigned)which >=
	    sizeof(store_index_dbis) / sizeof(store_index_dbis[0]))
		return KT_EINVAL;
	db = store_index_dbis[which];
	if (len == 0 || value == NULL || max == 0 || max > SIZE_MAX / 16)
		return KT_EINVAL;
	if (len > STORE_INDEX_VALUE_MAX)
		return KT_ETOOBIG;
	if (after >= KT_SIZE_MAX && after != UINT64_MAX) {
		*nout = 0;
		*more = 0;
		return KT_OK;
	}
	/*
	 * One more than asked from each source says whether more remain.
	 * The rows are in the B-tree (logs older than the index tables), the
	 * index tables and the index buffer; a row in two places (a run of
	 * a log upgraded while it was being merged) counts once.
	 */
	if ((tree = malloc((max + 1) * sizeof(*tree))) == NULL ||
	    (buf = malloc((max + 1) * sizeof(*buf))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	/* UINT64_MAX + 1 wraps to 0: from the start. */
	klen = store_index_key(key, value, len, after + 1);
	if ((rc = store_scan_index(rd->txn, rd->s->dbi[db], key, klen, plen,
		 tree, max + 1, &cnt)) != KT_OK ||
	    (rc = store_rd_tabs(rd)) != KT_OK ||
	    (rc = store_tabs_search(rd->s, rd->txn, &rd->tabs, db, key, plen,
		 after, buf, max + 1, &nbuf)) != KT_OK)
		goto out;
	if ((u = malloc((max + 1) * sizeof(*u))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	cnt = store_ix_union(tree, cnt, buf, nbuf, u, max + 1);
	memcpy(tree, u, cnt * sizeof(*tree));
	if ((rc = store_ix_search(rd->ix, db, key, plen, after, rd->size, buf,
		 max + 1, &nbuf)) != KT_OK)
		goto out;
	/* Keep max + 1 of the union: the last one only says "more". */
	n = store_ix_union(tree, cnt, buf, nbuf, u, max + 1);
	*more = n > max;
	*nout = n > max ? max : n;
	memcpy(out, u, *nout * sizeof(*out));
out:
	free(tree);
	free(buf);
	free(u);
	return rc;
}

int
store_rd_get(struct store_rd *rd, enum store_aux db, const uint8_t *key,
    size_t klen, struct kt_buf *val)
{
	enum store_dbi dbi;

	if (store_aux_dbi(db, &dbi) != KT_OK || key == NULL || klen == 0 ||
	    klen > STORE_AUX_KEY_MAX)
		return KT_EINVAL;
	return store_rd_copy(rd, dbi, key, klen, val);
}

int
store_rd_iter(struct store_rd *rd, enum store_aux db,
    int (*cb)(void *ctx, struct kt_bytes key, struct kt_bytes val), void *ctx)
{
	MDB_cursor *cur = NULL;
	struct kt_bytes kb, vb;
	enum store_dbi dbi;
	MDB_val k, v;
	int mrc, rc = KT_OK;

	if (store_aux_dbi(db, &dbi) != KT_OK || cb == NULL)
		return KT_EINVAL;
	if ((mrc = mdb_cursor_open(rd->txn, rd->s->dbi[dbi], &cur)) != 0)
		return store_rd_error(mrc);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		kb.p = k.mv_data;
		kb.len = k.mv_size;
		vb.p = v.mv_data;
		vb.len = v.mv_size;
		if ((rc = cb(ctx, kb, vb)) != KT_OK)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == KT_OK && mrc != MDB_NOTFOUND)
		rc = store_rd_error(mrc);
	return rc;
}
