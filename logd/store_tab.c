/*
 * The index tables' list and the lookups in them (store_int.h; the
 * layout is in docs/storage.md, "Index tables").  The writer that fills
 * and merges the tables is in store.c; this file only reads, in whatever
 * transaction it is given, so the list and the tables it names always
 * come from the same snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int
store_tabs_read(const struct store *s, MDB_txn *txn, struct store_tabs *out)
{
	MDB_val k = store_val(META_IXTABLES, strlen(META_IXTABLES)), v;
	uint64_t used = 0;
	const uint8_t *p;
	int mrc;

	out->n = 0;
	out->bf_loaded = 0;
	if ((mrc = mdb_get(txn, s->dbi[DB_META], &k, &v)) == MDB_NOTFOUND)
		return KT_OK; /* no table yet */
	if (mrc != 0)
		return store_rd_error(mrc);
	if (v.mv_size % STORE_TAB_RECORD != 0 ||
	    v.mv_size / STORE_TAB_RECORD > STORE_TABLES)
		return KT_EPARSE;
	p = v.mv_data;
	for (size_t i = 0; i < v.mv_size / STORE_TAB_RECORD;
	     i++, p += STORE_TAB_RECORD) {
		struct store_tab *t = &out->t[out->n];
		unsigned f = p[2];

		t->slot = p[0];
		t->level = p[1];
		t->flags = p[2];
		t->first = kt_get_u64be(p + 3);
		t->end = kt_get_u64be(p + 11);
		/* Live or being written, never both; only live ones merge. */
		if (t->slot >= STORE_TABLES || (used >> t->slot & 1) != 0 ||
		    (f != TAB_LIVE && f != (TAB_LIVE | TAB_SOURCE) &&
			f != TAB_TARGET) ||
		    t->first > t->end || t->level >= STORE_TABLE_LEVELS)
			return KT_EPARSE;
		used |= UINT64_C(1) << t->slot;
		out->n++;
	}
	return KT_OK;
}

void
store_tabs_encode(const struct store_tabs *t, uint8_t *out, size_t *len)
{
	uint8_t *p = out;

	for (unsigned i = 0; i < t->n; i++, p += STORE_TAB_RECORD) {
		p[0] = t->t[i].slot;
		p[1] = t->t[i].level;
		p[2] = t->t[i].flags;
		kt_put_u64be(p + 3, t->t[i].first);
		kt_put_u64be(p + 11, t->t[i].end);
	}
	*len = (size_t)(p - out);
}

/* Points t->bf at the filters of t's live tables, once per transaction. */
static void
store_tabs_filters(const struct store *s, MDB_txn *txn, struct store_tabs *t)
{
	if (t->bf_loaded)
		return;
	memset(t->bf, 0, sizeof(t->bf));
	for (unsigned i = 0; i < t->n; i++) {
		uint8_t k = t->t[i].slot;
		MDB_val key = store_val(&k, 1), v;

		if (!(t->t[i].flags & TAB_LIVE) ||
		    mdb_get(txn, s->dbi[DB_BLOOMS], &key, &v) != 0)
			continue; /* no filter: look in the table */
		t->bf[k] = v.mv_data;
		t->bflen[k] = v.mv_size;
	}
	t->bf_loaded = 1;
}

/*
 * Finds, and starts fetching, the filter block of each of t's live tables
 * for the probe (blk[i] NULL: no filter, or not live).
 */
static void
store_tabs_blocks(const struct store *s, MDB_txn *txn, struct store_tabs *t,
    const struct bloom_probe *pr, const uint8_t *blk[STORE_TABLES])
{
	store_tabs_filters(s, txn, t);
	for (unsigned i = 0; i < t->n; i++) {
		unsigned slot = t->t[i].slot;

		blk[i] = NULL;
		if ((t->t[i].flags & TAB_LIVE) && t->bf[slot] != NULL &&
		    (blk[i] = bloom_block(t->bf[slot], t->bflen[slot], pr)))
			__builtin_prefetch(blk[i]);
	}
}

void
store_tabs_prefetch(const struct store *s, MDB_txn *txn, struct store_tabs *t,
    uint8_t kind, const uint8_t *p, size_t len)
{
	const uint8_t *blk[STORE_TABLES];
	struct bloom_probe pr;

	bloom_probe_init(&pr, kind, p, len);
	store_tabs_blocks(s, txn, t, &pr, blk);
}

uint64_t
store_tabs_candidates(struct store *s, MDB_txn *txn, struct store_tabs *t,
    uint8_t kind, const uint8_t *p, size_t len)
{
	const uint8_t *blk[STORE_TABLES];
	struct bloom_probe pr;
	uint64_t maybe = 0, skipped = 0;

	bloom_probe_init(&pr, kind, p, len);
	/* Every filter's block first, so the memory reads overlap. */
	store_tabs_blocks(s, txn, t, &pr, blk);
	for (unsigned i = 0; i < t->n; i++) {
		if (!(t->t[i].flags & TAB_LIVE))
			continue;
		if (blk[i] == NULL || bloom_block_maybe(blk[i], &pr))
			maybe |= UINT64_C(1) << i;
		else
			skipped++;
	}
	atomic_fetch_add_explicit(&s->probes_read,
	    (uint64_t)__builtin_popcountll(maybe), memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &s->probes_skipped, skipped, memory_order_relaxed);
	return maybe;
}

int
store_tabs_leaf(struct store *s, MDB_txn *txn, struct store_tabs *t,
    const uint8_t *leaf, uint64_t *index)
{
	uint8_t k[1 + KT_HASH_SIZE];
	MDB_val key, v;
	uint64_t cand;
	int mrc;

	k[0] = DB_BYHASH;
	memcpy(k + 1, leaf, KT_HASH_SIZE);
	key = store_val(k, sizeof(k));
	cand = store_tabs_candidates(s, txn, t, DB_BYHASH, leaf, KT_HASH_SIZE);
	/* Newest first: a duplicate is most often of a recent entry. */
	for (unsigned i = t->n; i-- > 0;) {
		if (!(cand >> i & 1))
			continue;
		mrc = mdb_get(txn, s->dbi[DB_TABLE0 + t->t[i].slot], &key, &v);
		if (mrc == MDB_NOTFOUND)
			continue;
		if (mrc != 0)
			return store_rd_error(mrc);
		if (v.mv_size != 8)
			return KT_EIO;
		*index = kt_get_u64be(v.mv_data);
		return KT_OK;
	}
	return KT_ENOTFOUND;
}

int
store_scan_index(MDB_txn *txn, MDB_dbi dbi, const uint8_t *start, size_t slen,
    size_t plen, uint64_t *out, size_t max, size_t *n)
{
	MDB_cursor *cur = NULL;
	MDB_val k = store_val(start, slen), v;
	int mrc;

	*n = 0;
	if (max == 0)
		return KT_OK;
	if ((mrc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return store_rd_error(mrc);
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != plen + 8 || memcmp(k.mv_data, start, plen))
			break;
		out[(*n)++] = kt_get_u64be((const uint8_t *)k.mv_data + plen);
		if (*n == max)
			break;
	}
	mdb_cursor_close(cur);
	return mrc == 0 || mrc == MDB_NOTFOUND ? KT_OK : store_rd_error(mrc);
}

int
store_tabs_search(const struct store *s, MDB_txn *txn,
    const struct store_tabs *t, enum store_dbi db, const uint8_t *prefix,
    size_t plen, uint64_t after, uint64_t *out, size_t max, size_t *nout)
{
	uint8_t start[STORE_TABLE_KEY_MAX];
	uint64_t *part = NULL, *tmp = NULL;
	size_t n, np;
	int rc = KT_OK;

	STORE_ASSERT(plen + 9 <= sizeof(start));
	start[0] = (uint8_t)db;
	memcpy(start + 1, prefix, plen);
	/* UINT64_MAX + 1 wraps to 0: from the start. */
	kt_put_u64be(start + 1 + plen, after + 1);
	n = 0;
	for (unsigned i = 0; i < t->n; i++) {
		if (!(t->t[i].flags & TAB_LIVE) ||
		    (after != UINT64_MAX && t->t[i].end <= after + 1))
			continue;
		if (part == NULL &&
		    ((part = malloc(max * sizeof(*part))) == NULL ||
			(tmp = malloc(max * sizeof(*tmp))) == NULL)) {
			rc = KT_ENOMEM;
			break;
		}
		if ((rc = store_scan_index(txn,
			 s->dbi[DB_TABLE0 + t->t[i].slot], start, plen + 9,
			 plen + 1, part, max, &np)) != KT_OK)
			break;
		n = store_ix_union(out, n, part, np, tmp, max);
		memcpy(out, tmp, n * sizeof(*out));
	}
	free(part);
	free(tmp);
	*nout = rc == KT_OK ? n : 0;
	return rc;
}
