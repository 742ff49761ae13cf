/*
 * The index buffer (logd/ixbuf.c): rows come back in (db, key) order as
 * LMDB orders keys, equal keys in the order they were added, from any
 * starting key, across every first byte of a key, and after a batch is
 * truncated away.  Checked against a plain sorted copy of the same rows.
 */
#include <stdlib.h>
#include <string.h>

#include "ixbuf.h"
#include "keytrail/merkle.h"
#include "testutil.h"

struct row {
	uint8_t db;
	uint8_t key[48];
	size_t klen;
	uint8_t val[8];
	uint64_t index;
	size_t seq; /* the order of adding, for equal keys */
};

static int
row_keycmp(uint8_t db, const uint8_t *k, size_t klen, const struct row *r)
{
	size_t m = klen < r->klen ? klen : r->klen;
	int c;

	if (db != r->db)
		return db < r->db ? -1 : 1;
	if (m > 0 && (c = memcmp(k, r->key, m)) != 0)
		return c;
	return klen < r->klen ? -1 : klen > r->klen;
}

static int
row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = row_keycmp(x->db, x->key, x->klen, y);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint64_t rng = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * The rows of entry i, as the store adds them: a random leaf hash (db 3),
 * a key name from a few (db 4), a digest from many, some repeated (db 5),
 * an artifact name whose first byte is any byte (db 6); all but the leaf
 * hash end with the entry's index.  Returns how many.
 */
static size_t
rows_of(uint64_t i, size_t seq, struct row out[4])
{
	static const char *const names[] = { "default", "release", "d", "" };
	uint8_t b[8];
	struct kt_hash h;
	size_t n = 0, vl;

	kt_put_u64be(b, i);
	kt_leaf_hash(b, sizeof(b), &h);
	out[n] = (struct row){ .db = 3, .klen = 32, .index = i };
	memcpy(out[n].key, h.b, 32);
	memcpy(out[n].val, b, 8);
	n++;

	vl = strlen(names[i % 4]);
	if (vl > 0) {
		out[n] = (struct row){ .db = 4, .klen = vl + 8, .index = i };
		memcpy(out[n].key, names[i % 4], vl);
		kt_put_u64be(out[n].key + vl, i);
		n++;
	}

	vl = 1 + next_rand() % 24;
	out[n] = (struct row){ .db = 5, .klen = vl + 8, .index = i };
	for (size_t j = 0; j < vl; j++)
		out[n].key[j] =
		    (uint8_t)(next_rand() % 3 == 0 ? 'a' : next_rand());
	kt_put_u64be(out[n].key + vl, i);
	n++;

	out[n] = (struct row){ .db = 6, .klen = 9, .index = i };
	out[n].key[0] = (uint8_t)(i * 37);
	kt_put_u64be(out[n].key + 1, i);
	n++;
	for (size_t j = 0; j < n; j++)
		out[j].seq = seq + j;
	return n;
}

static void
add_rows(struct ixbuf *b, const struct row *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ixbuf_add(b, r[i].db, r[i].key, r[i].klen,
				     r[i].db == 3 ? r[i].klen : 0, r[i].val,
				     r[i].db == 3 ? 8 : 0, r[i].index),
		    KT_OK);
}

/* ixbuf_next walks exactly ref[0..n), sorted. */
static void
check_walk(struct ixbuf *b, const struct row *ref, size_t n)
{
	struct ixbuf_row r;
	uint32_t pos = 0;
	size_t i = 0;

	while (ixbuf_next(b, &pos, &r)) {
		assert_true(i < n);
		assert_int_equal(r.db, ref[i].db);
		assert_int_equal(r.klen, ref[i].klen);
		assert_memory_equal(r.key, ref[i].key, r.klen);
		assert_int_equal(r.index, ref[i].index);
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(ixbuf_rows(b), n);
}

struct scan_ctx {
	const struct row *ref;
	size_t at, n, stop_after, seen;
};

static int
scan_cb(void *ctx, const struct ixbuf_row *r)
{
	struct scan_ctx *q = ctx;

	assert_true(q->at < q->n);
	assert_int_equal(r->db, q->ref[q->at].db);
	assert_int_equal(r->klen, q->ref[q->at].klen);
	assert_memory_equal(r->key, q->ref[q->at].key, r->klen);
	assert_int_equal(r->index, q->ref[q->at].index);
	q->at++;
	return ++q->seen == q->stop_after ? 7 : 0;
}

/*
 * ixbuf_scan from (db, from) visits the sorted rows of db from there, and
 * stops after stop_after of them when the callback says so (0: never).
 */
static void
check_scan(struct ixbuf *b, const struct row *ref, size_t n, uint8_t db,
    const uint8_t *from, size_t flen, size_t stop_after)
{
	struct scan_ctx q = { ref, 0, n, stop_after, 0 };
	size_t start = 0, end, count;
	int rc;

	while (start < n && row_keycmp(db, from, flen, &ref[start]) > 0)
		start++;
	end = start;
	while (end < n && ref[end].db == db)
		end++;
	count = end - start;
	q.at = start;
	q.n = end;
	rc = ixbuf_scan(b, db, from, flen, scan_cb, &q);
	if (stop_after > 0 && stop_after <= count) {
		assert_int_equal(rc, 7);
		assert_int_equal(q.seen, stop_after);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(q.seen, count);
	}
}

static void
test_ixbuf_order_scans_truncate(void **state)
{
	const size_t entries = 6000, batch = 50;
	struct row *all = calloc(entries * 4, sizeof(*all));
	struct row *ref = calloc(entries * 4, sizeof(*ref));
	struct ixbuf *b = NULL;
	size_t n = 0, seq = 0;

	(void)state;
	assert_non_null(all);
	assert_non_null(ref);
	assert_int_equal(ixbuf_new(entries, &b), KT_OK);
	check_walk(b, ref, 0);
	for (size_t e = 0; e < entries; e += batch) {
		/* Every fifth batch fails once: its rows go, then come again.
		 */
		int fails = (e / batch) % 5 == 3;

		for (int attempt = 0; attempt <= fails; attempt++) {
			size_t start = n;

			for (size_t i = e; i < e + batch; i++) {
				size_t k = rows_of(i, seq, all + n);

				add_rows(b, all + n, k);
				n += k;
				seq += k;
			}
			if (attempt < fails) {
				ixbuf_truncate(b, start);
				n = start;
			}
		}
		if ((e / batch) % 40 == 0) {
			memcpy(ref, all, n * sizeof(*ref));
			qsort(ref, n, sizeof(*ref), row_cmp);
			check_walk(b, ref, n);
		}
	}
	memcpy(ref, all, n * sizeof(*ref));
	qsort(ref, n, sizeof(*ref), row_cmp);
	assert_int_equal(ixbuf_entries(b), entries);
	assert_int_equal(ixbuf_first(b), 0);

	/* Scans from rows' own keys, from keys between rows, from nothing. */
	for (size_t i = 0; i < n; i += 97) {
		uint8_t from[64];
		size_t flen = ref[i].klen;

		check_scan(b, ref, n, ref[i].db, ref[i].key, flen, 0);
		check_scan(b, ref, n, ref[i].db, ref[i].key, flen, 3);
		memcpy(from, ref[i].key, flen);
		from[flen] = 0;
		check_scan(b, ref, n, ref[i].db, from, flen + 1, 0);
		check_scan(b, ref, n, ref[i].db, from, 1, 0);
		from[0] = (uint8_t)(from[0] + 1);
		check_scan(b, ref, n, ref[i].db, from, 1, 5);
	}
	for (uint8_t db = 0; db < 9; db++) {
		check_scan(b, ref, n, db, (const uint8_t *)"", 0, 0);
		check_scan(b, ref, n, db, (const uint8_t *)"\xff\xff", 2, 0);
	}

	/* Truncating to nothing leaves an empty run that takes rows again. */
	ixbuf_truncate(b, 0);
	check_walk(b, ref, 0);
	add_rows(b, all, 4);
	memcpy(ref, all, 4 * sizeof(*ref));
	qsort(ref, 4, sizeof(*ref), row_cmp);
	check_walk(b, ref, 4);
	ixbuf_free(b);
	free(all);
	free(ref);
}

static void
test_ixbuf_refuses_bad_rows(void **state)
{
	struct ixbuf *b = NULL;
	uint8_t k[IXBUF_KEY_MAX + 1] = { 1 };

	(void)state;
	assert_int_equal(ixbuf_new(0, &b), KT_OK);
	assert_int_equal(ixbuf_add(b, 3, k, 0, 0, NULL, 0, 1), KT_EINVAL);
	assert_int_equal(
	    ixbuf_add(b, IXBUF_DBS, k, 4, 0, NULL, 0, 1), KT_EINVAL);
	assert_int_equal(
	    ixbuf_add(b, 3, k, IXBUF_KEY_MAX + 1, 0, NULL, 0, 1), KT_EINVAL);
	assert_int_equal(ixbuf_add(b, 3, k, 4, 5, NULL, 0, 1), KT_EINVAL);
	assert_int_equal(ixbuf_add(b, 3, k, 4, 0, NULL, 2, 1), KT_EINVAL);
	assert_int_equal(ixbuf_add(b, 3, k, 4, 0, NULL, 0, 9), KT_OK);
	/* Entries come in index order. */
	assert_int_equal(ixbuf_add(b, 3, k, 4, 0, NULL, 0, 8), KT_EINVAL);
	assert_int_equal(ixbuf_rows(b), 1);
	/* With no filter, every key "may" be there. */
	assert_int_equal(ixbuf_maybe(b, 3, k, 4), 1);
	ixbuf_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ixbuf_order_scans_truncate),
		cmocka_unit_test(test_ixbuf_refuses_bad_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
