/*
 * The log storage (logd/store.c) against an in-memory tree holding the
 * same entries: roots and checkpoint texts, every C2SP tile and entry
 * bundle, inclusion and consistency proofs read from storage; dedup,
 * auxiliary writes, search pagination, reopening, refusals (origin,
 * schema version), a full map and a failing signer, each leaving the log
 * intact at its last committed size.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/merkle.h"
#include "keytrail/tile.h"
#include "store.h"
#include "testutil.h"

#define ORIGIN "example.com/test-log"
#define ENTRY_CAP 80200

/* The fake signer: "— test <hex of the leaf hash of the text>". */
struct signer {
	int calls;
	int fail;
};

static int
fake_sign(void *ctx, const uint8_t *text, size_t len, struct kt_buf *out)
{
	struct signer *sg = ctx;
	size_t orig = out->len;
	struct kt_hash h;
	char hex[2 * KT_HASH_SIZE + 1];

	if (sg != NULL) {
		sg->calls++;
		if (sg->fail)
			return KT_EIO;
	}
	kt_leaf_hash(text, len, &h);
	kt_hex_encode(h.b, sizeof(h.b), hex);
	if (kt_buf_append(out, text, len) != KT_OK ||
	    kt_buf_append_str(out, "\n\xe2\x80\x94 test ") != KT_OK ||
	    kt_buf_append_str(out, hex) != KT_OK ||
	    kt_buf_append_byte(out, '\n') != KT_OK) {
		out->len = orig;
		return KT_ENOMEM;
	}
	return KT_OK;
}

/* A log under test, the same entries in a memtree, and what was signed. */
struct fx {
	char dir[64];
	struct store *s;
	struct kt_memtree *mt;
	struct signer sg;
	uint64_t signed_sizes[512];
	size_t nsigned;
	uint8_t *ebuf; /* scratch for one entry */
};

/*
 * Entry seed: deterministic bytes of varying length.  big > 0 pads the
 * entry to about that many bytes.
 */
static size_t
gen_entry(uint64_t seed, size_t big, uint8_t *buf)
{
	size_t pad = big > 0 ? big : (size_t)(seed * 7 % 61);
	int n = snprintf((char *)buf, 64, "{\"i\":%llu,\"pad\":\"",
	    (unsigned long long)seed);

	assert_true(n > 0 && (size_t)n + pad + 2 < ENTRY_CAP);
	memset(buf + n, 'a' + (int)(seed % 26), pad);
	memcpy(buf + n + pad, "\"}", 2);
	return (size_t)n + pad + 2;
}

static void
fx_open(struct fx *f, uint64_t map_size)
{
	char err[256] = "";
	int rc = store_open(f->dir, ORIGIN, map_size, &f->s, err, sizeof(err));

	if (rc != KT_OK)
		fail_msg("store_open: %s: %s", kt_strerror(rc), err);
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kt-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(f->mt = kt_memtree_new());
	assert_non_null(f->ebuf = malloc(ENTRY_CAP));
	fx_open(f, 0);
	*state = f;
	return 0;
}

static void
rm_dir(const char *path)
{
	char p[512];
	struct dirent *de;
	DIR *d = opendir(path);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	rmdir(path);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	kt_memtree_free(f->mt);
	rm_dir(f->dir);
	free(f->ebuf);
	free(f);
	return 0;
}

/* The signed note the fake signer makes for the memtree at size. */
static void
expected_note(struct fx *f, uint64_t size, struct kt_buf *out)
{
	struct kt_checkpoint c = { 0 };
	struct kt_buf text;

	kt_buf_init(&text, KT_CHECKPOINT_MAX);
	c.origin.p = (const uint8_t *)ORIGIN;
	c.origin.len = strlen(ORIGIN);
	c.size = size;
	assert_int_equal(kt_memtree_root(f->mt, size, &c.root), KT_OK);
	assert_int_equal(kt_checkpoint_format(&c, &text), KT_OK);
	assert_int_equal(fake_sign(NULL, text.p, text.len, out), KT_OK);
	kt_buf_free(&text);
}

static void
assert_buf_equal(const struct kt_buf *a, const struct kt_buf *b)
{
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->p, b->p, a->len);
}

/* The dedup key append_range gives the submission of seed. */
static void
dedup_key(uint64_t seed, struct kt_hash *out)
{
	uint8_t b[8];

	kt_put_u64be(b, seed);
	kt_leaf_hash(b, sizeof(b), out);
}

/*
 * Appends entries with seeds first..first+count-1 in one batch, each
 * indexed under key "k<seed % 5>", digest "d<seed>", and (even seeds)
 * artifact "a<seed % 3>", with one auxiliary write "e<seed>" -> entry.
 * Expects them all to be new.  Returns store_append's code; on success
 * mirrors them in the memtree and checks the indexes and the note.
 */
static int
append_range(struct fx *f, uint64_t first, size_t count, size_t big, char *err,
    size_t errlen)
{
	struct store_item *items = calloc(count, sizeof(*items));
	struct store_put *puts = calloc(count, sizeof(*puts));
	char(*names)[4][24] = calloc(count, sizeof(*names));
	uint8_t *bufs = malloc(count * (big + 128));
	uint64_t size0 = kt_memtree_size(f->mt), size = 0;
	struct kt_buf note, want;
	int rc;

	assert_true(items && puts && names && bufs);
	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&want, KT_NOTE_MAX);
	for (size_t i = 0; i < count; i++) {
		uint64_t seed = first + i;
		uint8_t *e = bufs + i * (big + 128);
		struct store_item *it = &items[i];

		it->entry.p = e;
		it->entry.len = gen_entry(seed, big, e);
		kt_leaf_hash(it->entry.p, it->entry.len, &it->leaf);
		snprintf(
		    names[i][0], 24, "k%llu", (unsigned long long)(seed % 5));
		snprintf(names[i][1], 24, "d%llu", (unsigned long long)seed);
		snprintf(
		    names[i][2], 24, "a%llu", (unsigned long long)(seed % 3));
		snprintf(names[i][3], 24, "e%llu", (unsigned long long)seed);
		it->by_key.p = (const uint8_t *)names[i][0];
		it->by_key.len = strlen(names[i][0]);
		it->by_digest.p = (const uint8_t *)names[i][1];
		it->by_digest.len = strlen(names[i][1]);
		if (seed % 2 == 0) {
			it->by_artifact.p = (const uint8_t *)names[i][2];
			it->by_artifact.len = strlen(names[i][2]);
		}
		if (seed % 4 == 1) {
			/* A submission: found again by digest and dedup key. */
			dedup_key(seed, &it->dedup);
			it->has_dedup = 1;
		}
		puts[i].db = STORE_DB_REQUESTS;
		puts[i].key.p = (const uint8_t *)names[i][3];
		puts[i].key.len = strlen(names[i][3]);
		puts[i].val = it->entry;
		it->puts = &puts[i];
		it->nputs = 1;
	}
	rc = store_append(
	    f->s, items, count, fake_sign, &f->sg, &note, &size, err, errlen);
	if (rc == KT_OK) {
		for (size_t i = 0; i < count; i++) {
			assert_int_equal(items[i].duplicate, 0);
			assert_int_equal(items[i].index, size0 + i);
			assert_int_equal(
			    kt_memtree_append(
				f->mt, items[i].entry.p, items[i].entry.len),
			    KT_OK);
		}
		assert_int_equal(size, size0 + count);
		expected_note(f, size, &want);
		assert_buf_equal(&note, &want);
		assert_true(f->nsigned < 512);
		f->signed_sizes[f->nsigned++] = size;
	} else {
		assert_int_equal(note.len, 0);
		assert_int_equal(size, 0);
	}
	kt_buf_free(&note);
	kt_buf_free(&want);
	free(items);
	free(puts);
	free(names);
	free(bufs);
	return rc;
}

static void
append_ok(struct fx *f, uint64_t first, size_t count, size_t big)
{
	char err[256] = "";
	int rc = append_range(f, first, count, big, err, sizeof(err));

	if (rc != KT_OK)
		fail_msg("store_append: %s: %s", kt_strerror(rc), err);
}

/* A kt_tile_read_fn over a read session, for kt_tiles_verify. */
static int
rd_tile_read(void *ctx, const struct kt_tile *t, struct kt_buf *data)
{
	if (t->level == KT_TILE_ENTRIES)
		return store_rd_bundle(ctx, t->index, t->width, data);
	return store_rd_tile(ctx, t->level, t->index, t->width, data);
}

/* Compares the tile t of the tree of size from storage and memtree. */
static void
check_tile(
    struct fx *f, struct store_rd *rd, uint64_t size, const struct kt_tile *t)
{
	struct kt_buf got, want;

	kt_buf_init(&got, KT_ENTRY_BUNDLE_MAX);
	kt_buf_init(&want, KT_ENTRY_BUNDLE_MAX);
	if (t->level == KT_TILE_ENTRIES) {
		assert_int_equal(
		    store_rd_bundle(rd, t->index, t->width, &got), KT_OK);
		for (unsigned i = 0; i < t->width; i++) {
			size_t len = gen_entry(t->index * 256 + i, 0, f->ebuf);

			assert_int_equal(
			    kt_entry_bundle_append(&want, f->ebuf, len), KT_OK);
		}
	} else {
		assert_int_equal(
		    store_rd_tile(rd, t->level, t->index, t->width, &got),
		    KT_OK);
		assert_int_equal(
		    kt_tile_read_data(size, t, kt_memtree_read, f->mt, &want),
		    KT_OK);
	}
	assert_buf_equal(&got, &want);
	kt_buf_free(&got);
	kt_buf_free(&want);
}

/* Every tile and bundle of the tree of size (entries made with big 0). */
static void
check_all_tiles(struct fx *f, struct store_rd *rd, uint64_t size)
{
	for (int l = -1; l < (int)kt_tile_levels(size); l++) {
		uint64_t full = kt_tile_full_count(size, l);
		unsigned pw = kt_tile_partial_width(size, l);
		struct kt_tile t = { l, 0, KT_TILE_WIDTH };

		for (t.index = 0; t.index < full; t.index++)
			check_tile(f, rd, size, &t);
		if (pw > 0) {
			t.width = pw;
			check_tile(f, rd, size, &t);
			/* One hash (or entry) more is not in the tree. */
			if (pw < KT_TILE_WIDTH) {
				struct kt_buf b;

				kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
				t.width = pw + 1;
				assert_int_equal(
				    rd_tile_read(rd, &t, &b), KT_ENOTFOUND);
				assert_int_equal(b.len, 0);
				kt_buf_free(&b);
			}
		}
	}
}

/* Proofs from storage equal the memtree's for (index, size) and (old, size). */
static void
check_proofs(struct fx *f, struct store_rd *rd, uint64_t size, uint64_t old)
{
	struct kt_hash p1[KT_PROOF_MAX], p2[KT_PROOF_MAX], r1, r2;
	uint64_t idx[4] = { 0, size / 3, size / 2, size - 1 };
	size_t n1, n2;

	assert_int_equal(
	    kt_tree_hash(size, store_rd_read_hashes, rd, &r1), KT_OK);
	assert_int_equal(kt_memtree_root(f->mt, size, &r2), KT_OK);
	assert_memory_equal(r1.b, r2.b, KT_HASH_SIZE);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(kt_prove_inclusion(size, idx[i],
				     store_rd_read_hashes, rd, p1, &n1),
		    KT_OK);
		assert_int_equal(kt_prove_inclusion(size, idx[i],
				     kt_memtree_read, f->mt, p2, &n2),
		    KT_OK);
		assert_int_equal(n1, n2);
		assert_memory_equal(p1, p2, n1 * sizeof(p1[0]));
	}
	if (old == 0)
		return;
	assert_int_equal(
	    kt_prove_consistency(size, old, store_rd_read_hashes, rd, p1, &n1),
	    KT_OK);
	assert_int_equal(
	    kt_prove_consistency(size, old, kt_memtree_read, f->mt, p2, &n2),
	    KT_OK);
	assert_int_equal(n1, n2);
	assert_memory_equal(p1, p2, n1 * sizeof(p1[0]));
}

/* The whole log against the memtree (entries made with big 0). */
static void
check_log(struct fx *f)
{
	uint64_t size = kt_memtree_size(f->mt);
	struct kt_buf got, want;
	struct store_rd *rd;
	struct kt_hash root;

	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(store_rd_size(rd), size);
	kt_buf_init(&got, KT_NOTE_MAX);
	kt_buf_init(&want, KT_NOTE_MAX);
	assert_int_equal(store_rd_checkpoint(rd, &got), KT_OK);
	expected_note(f, size, &want);
	assert_buf_equal(&got, &want);
	for (size_t i = 0; i < f->nsigned; i++) {
		uint64_t s = f->signed_sizes[i];

		kt_buf_reset(&got);
		kt_buf_reset(&want);
		assert_int_equal(store_rd_checkpoint_at(rd, s, &got), KT_OK);
		expected_note(f, s, &want);
		assert_buf_equal(&got, &want);
		if (s > 0)
			check_proofs(
			    f, rd, s, i > 0 ? f->signed_sizes[i - 1] : 0);
		if (s > 0 && i > 0 && f->signed_sizes[i - 1] > 0)
			check_proofs(f, rd, size, f->signed_sizes[i - 1]);
	}
	check_all_tiles(f, rd, size);
	assert_int_equal(kt_memtree_root(f->mt, size, &root), KT_OK);
	assert_int_equal(kt_tiles_verify(size, &root, rd_tile_read, rd), KT_OK);
	kt_buf_free(&got);
	kt_buf_free(&want);
	store_rd_end(rd);
}

static void
test_store_append_matches_memtree(void **state)
{
	static const size_t batches[] = { 1, 255, 256, 257, 1000, 3, 511, 1,
		1717 };
	struct fx *f = *state;
	struct kt_buf note, want;
	char err[256];
	uint64_t seed = 0;

	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&want, KT_NOTE_MAX);
	assert_int_equal(store_init_checkpoint(
			     f->s, fake_sign, &f->sg, &note, err, sizeof(err)),
	    KT_OK);
	expected_note(f, 0, &want);
	assert_buf_equal(&note, &want);
	f->signed_sizes[f->nsigned++] = 0;
	/* A second call signs nothing and returns the same note. */
	kt_buf_reset(&note);
	assert_int_equal(store_init_checkpoint(
			     f->s, fake_sign, &f->sg, &note, err, sizeof(err)),
	    KT_OK);
	assert_int_equal(f->sg.calls, 1);
	assert_buf_equal(&note, &want);
	check_log(f);
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		append_ok(f, seed, batches[b], 0);
		seed += batches[b];
		check_log(f);
	}
	assert_int_equal(f->sg.calls, 10);
	/* Partial tiles of older sizes are prefixes of the stored ones. */
	{
		struct store_rd *rd;
		struct kt_tile t = { 0, 3, 17 };

		assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
		check_tile(f, rd, 1000, &t);
		t.level = KT_TILE_ENTRIES;
		check_tile(f, rd, 1000, &t);
		t.level = 1;
		t.index = 0;
		t.width = 3;
		check_tile(f, rd, 800, &t);
		store_rd_end(rd);
	}
	kt_buf_free(&note);
	kt_buf_free(&want);
}

/* An item for entry seed, without indexes or puts. */
static void
plain_item(uint64_t seed, uint8_t *buf, struct store_item *it)
{
	memset(it, 0, sizeof(*it));
	it->entry.p = buf;
	it->entry.len = gen_entry(seed, 0, buf);
	kt_leaf_hash(it->entry.p, it->entry.len, &it->leaf);
}

static void
test_store_append_dedups(void **state)
{
	struct fx *f = *state;
	uint8_t b[4][128];
	struct store_item it[5];
	struct store_put pa = { STORE_DB_KEYS, { (const uint8_t *)"pa", 2 },
		{ (const uint8_t *)"A", 1 }, 0, 0 };
	/* A record and, written by the store, the index its entry gets. */
	struct store_put pc[2] = {
		{ STORE_DB_KEYS, { (const uint8_t *)"pc", 2 },
		    { (const uint8_t *)"C", 1 }, 0, 0 },
		{ STORE_DB_KEYS, { (const uint8_t *)"pi", 2 }, { NULL, 0 }, 0,
		    1 },
	};
	struct kt_buf note, latest, v;
	struct store_times tm;
	struct store_rd *rd;
	uint64_t size = 99;
	char err[256];

	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&latest, KT_NOTE_MAX);
	kt_buf_init(&v, 64);
	/* No checkpoint yet: nothing new to sign and nothing to return. */
	assert_int_equal(store_append(f->s, it, 0, fake_sign, &f->sg, &note,
			     &size, err, sizeof(err)),
	    KT_ENOTFOUND);
	assert_int_equal(size, 99);
	append_ok(f, 0, 2, 0); /* A = seed 0, B = seed 1 */
	plain_item(0, b[0], &it[0]);
	plain_item(2, b[1], &it[1]);
	it[2] = it[1];
	plain_item(1, b[2], &it[3]);
	it[0].puts = &pa;
	it[0].nputs = 1;
	it[1].puts = pc;
	it[1].nputs = 2;
	it[2].puts = &pa; /* a duplicate in the batch: not written */
	it[2].nputs = 1;
	assert_int_equal(store_append(f->s, it, 4, fake_sign, &f->sg, &note,
			     &size, err, sizeof(err)),
	    KT_OK);
	assert_int_equal(size, 3);
	assert_int_equal(it[0].duplicate, 1);
	assert_int_equal(it[0].index, 0);
	assert_int_equal(it[1].duplicate, 0);
	assert_int_equal(it[1].index, 2);
	assert_int_equal(it[2].duplicate, 1);
	assert_int_equal(it[2].index, 2);
	assert_int_equal(it[3].duplicate, 1);
	assert_int_equal(it[3].index, 1);
	assert_int_equal(
	    kt_memtree_append(f->mt, it[1].entry.p, it[1].entry.len), KT_OK);
	f->signed_sizes[f->nsigned++] = 3;
	assert_int_equal(f->sg.calls, 2);
	/* A batch that wrote and signed spent time in every step. */
	store_last_times(f->s, &tm);
	assert_true(tm.add > 0 && tm.sign > 0 && tm.commit > 0);
	assert_true(tm.add + tm.sign + tm.commit < 60);

	/* All duplicates: no signature, the latest note comes back. */
	kt_buf_reset(&note);
	it[1].index = 77;
	assert_int_equal(store_append(f->s, &it[1], 1, fake_sign, &f->sg, &note,
			     &size, err, sizeof(err)),
	    KT_OK);
	assert_int_equal(f->sg.calls, 2);
	store_last_times(f->s, &tm);
	assert_true(tm.add > 0);
	assert_true(tm.sign == 0 && tm.commit == 0);
	assert_int_equal(it[1].duplicate, 1);
	assert_int_equal(it[1].index, 2);
	assert_int_equal(size, 3);
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(store_rd_checkpoint(rd, &latest), KT_OK);
	assert_buf_equal(&note, &latest);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_KEYS, (const uint8_t *)"pc", 2, &v),
	    KT_OK);
	assert_int_equal(v.len, 1);
	assert_int_equal(v.p[0], 'C');
	kt_buf_reset(&v);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_KEYS, (const uint8_t *)"pi", 2, &v),
	    KT_OK);
	assert_int_equal(v.len, 8);
	assert_int_equal(kt_get_u64be(v.p), 2);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_KEYS, (const uint8_t *)"pa", 2, &v),
	    KT_ENOTFOUND);
	assert_int_equal(store_rd_find_leaf(rd, &it[3].leaf, &size), KT_OK);
	assert_int_equal(size, 1);
	/* The puts of append_range are there too, one per new entry. */
	kt_buf_reset(&v);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)"e1", 2, &v),
	    KT_OK);
	assert_int_equal(v.len, it[3].entry.len);
	store_rd_end(rd);
	check_log(f);
	kt_buf_free(&note);
	kt_buf_free(&latest);
	kt_buf_free(&v);
}

/* Pages through a search with page size page; returns the total found. */
static size_t
search_all(struct store_rd *rd, enum store_index which, const char *value,
    size_t page, uint64_t *all, size_t allcap)
{
	uint64_t after = UINT64_MAX, out[128];
	size_t total = 0, n;
	int more = 1;

	assert_true(page <= 128);
	while (more) {
		assert_int_equal(
		    store_rd_search(rd, which, (const uint8_t *)value,
			strlen(value), after, out, page, &n, &more),
		    KT_OK);
		assert_true(n == page || !more);
		assert_true(total + n <= allcap);
		memcpy(all + total, out, n * sizeof(out[0]));
		total += n;
		if (n > 0)
			after = out[n - 1];
	}
	for (size_t i = 1; i < total; i++)
		assert_true(all[i - 1] < all[i]);
	return total;
}

static void
test_store_search_paginates(void **state)
{
	struct fx *f = *state;
	uint64_t all[3100], out[4];
	struct store_rd *rd;
	size_t n;
	int more;

	/* 3000 entries: seed % 5 == 0 gives 600 under "k0". */
	append_ok(f, 0, 1000, 0);
	append_ok(f, 1000, 2000, 0);
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(
	    search_all(rd, STORE_BY_KEY, "k0", 100, all, 3100), 600);
	for (size_t i = 0; i < 600; i++)
		assert_int_equal(all[i], 5 * i);
	assert_int_equal(search_all(rd, STORE_BY_KEY, "k4", 7, all, 3100), 600);
	assert_int_equal(all[599], 2999);
	/* "a1": even seeds with seed % 3 == 1: 4, 10, 16, ... */
	assert_int_equal(
	    search_all(rd, STORE_BY_ARTIFACT, "a1", 128, all, 3100), 500);
	assert_int_equal(all[0], 4);
	/* Exact values only: "d1" is not a prefix search for "d10". */
	assert_int_equal(
	    search_all(rd, STORE_BY_DIGEST, "d1", 10, all, 3100), 1);
	assert_int_equal(all[0], 1);
	assert_int_equal(
	    search_all(rd, STORE_BY_DIGEST, "d", 10, all, 3100), 0);
	assert_int_equal(search_all(rd, STORE_BY_KEY, "k5", 10, all, 3100), 0);
	/* A page that ends exactly at the last match says so. */
	assert_int_equal(store_rd_search(rd, STORE_BY_KEY,
			     (const uint8_t *)"k0", 2, 2984, out, 3, &n, &more),
	    KT_OK);
	assert_int_equal(n, 3);
	assert_int_equal(out[2], 2995);
	assert_int_equal(more, 0);
	assert_int_equal(store_rd_search(rd, STORE_BY_KEY,
			     (const uint8_t *)"k0", 2, 2995, out, 3, &n, &more),
	    KT_OK);
	assert_int_equal(n, 0);
	assert_int_equal(more, 0);
	assert_int_equal(store_rd_search(rd, STORE_BY_KEY,
			     (const uint8_t *)"k0", 2, 5, out, 4, &n, &more),
	    KT_OK);
	assert_int_equal(n, 4);
	assert_int_equal(out[0], 10);
	assert_int_equal(more, 1);
	/* Bad arguments. */
	assert_int_equal(
	    store_rd_search(rd, STORE_BY_KEY, (const uint8_t *)"k0", 0,
		UINT64_MAX, out, 4, &n, &more),
	    KT_EINVAL);
	assert_int_equal(
	    store_rd_search(rd, STORE_BY_KEY, (const uint8_t *)"k0", 2,
		UINT64_MAX, out, 0, &n, &more),
	    KT_EINVAL);
	assert_int_equal(store_rd_search(rd, STORE_BY_KEY, f->ebuf, 256,
			     UINT64_MAX, out, 4, &n, &more),
	    KT_ETOOBIG);
	store_rd_end(rd);
}

static void check_indexes(struct fx *f);

static void
test_store_reopen_keeps_log(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	char err[256];

	append_ok(f, 0, 300, 0);
	append_ok(f, 300, 45, 0);
	store_close(f->s);
	f->s = NULL;
	fx_open(f, 0);
	check_log(f);
	append_ok(f, 345, 500, 0);
	check_log(f);
	store_close(f->s);
	f->s = NULL;

	/* Another origin is refused, with the stored one named. */
	err[0] = '\0';
	assert_int_equal(
	    store_open(f->dir, "example.com/other", 0, &s2, err, sizeof(err)),
	    KT_EINVAL);
	assert_null(s2);
	assert_non_null(strstr(err, ORIGIN));
	/* So are invalid origins and map sizes. */
	assert_int_equal(
	    store_open(f->dir, "", 0, &s2, err, sizeof(err)), KT_EINVAL);
	assert_int_equal(
	    store_open(f->dir, "bad origin", 0, &s2, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(
	    store_open(f->dir, ORIGIN, 4096, &s2, err, sizeof(err)), KT_EINVAL);

	/*
	 * Schema 1 (every index row in its B-tree) and schema 2 (full runs
	 * merged into the B-trees) are refused, with the way out named,
	 * until upgraded; an upgrade of a current log changes nothing.
	 */
	for (int v = 1; v <= 2; v++) {
		char want[64];

		fx_open(f, 0);
		assert_int_equal(
		    store_debug_set_schema(f->s, (uint64_t)v), KT_OK);
		store_close(f->s);
		f->s = NULL;
		assert_int_equal(
		    store_open(f->dir, ORIGIN, 0, &s2, err, sizeof(err)),
		    KT_EPARSE);
		assert_null(s2);
		assert_non_null(strstr(err, "--upgrade-storage"));
		snprintf(want, sizeof(want),
		    "schema version %d must be upgraded", v);
		assert_non_null(strstr(err, want));
		for (int twice = 0; twice < 2; twice++)
			assert_int_equal(
			    store_upgrade(f->dir, ORIGIN, 0, err, sizeof(err)),
			    KT_OK);
		fx_open(f, 0);
		check_log(f);
		check_indexes(f);
		store_close(f->s);
		f->s = NULL;
	}

	/* An unknown schema version is refused. */
	fx_open(f, 0);
	assert_int_equal(store_debug_set_schema(f->s, 4), KT_OK);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(
	    store_open(f->dir, ORIGIN, 0, &s2, err, sizeof(err)), KT_EPARSE);
	assert_null(s2);
	assert_non_null(strstr(err, "schema version 4"));
}

/*
 * Every entry of the log is found by its leaf hash and by each search
 * index, wherever its rows are: in the buffered run, in a run being
 * written out, in an index table, or in the B-trees (append_range's
 * names: key k<seed % 5>, digest d<seed>, artifact a<seed % 3> for even
 * seeds).
 */
static void
check_indexes(struct fx *f)
{
	uint64_t size = kt_memtree_size(f->mt), *all, idx;
	struct store_rd *rd;
	size_t n, want;
	char v[24];

	assert_non_null(all = malloc((size + 1) * sizeof(*all)));
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	for (uint64_t i = 0; i < size; i++) {
		struct kt_hash leaf;
		int more;

		kt_leaf_hash(f->ebuf, gen_entry(i, 0, f->ebuf), &leaf);
		assert_int_equal(store_rd_find_leaf(rd, &leaf, &idx), KT_OK);
		assert_int_equal(idx, i);
		snprintf(v, sizeof(v), "d%llu", (unsigned long long)i);
		assert_int_equal(
		    store_rd_search(rd, STORE_BY_DIGEST, (const uint8_t *)v,
			strlen(v), UINT64_MAX, all, 4, &n, &more),
		    KT_OK);
		assert_int_equal(n, 1);
		assert_int_equal(all[0], i);
		assert_int_equal(more, 0);
	}
	for (int m = 0; m < 5; m++) {
		snprintf(v, sizeof(v), "k%d", m);
		want = (size_t)(size / 5 + ((uint64_t)m < size % 5));
		n = search_all(rd, STORE_BY_KEY, v, 7, all, size + 1);
		assert_int_equal(n, want);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(all[i] % 5, m);
	}
	for (int m = 0; m < 3; m++) {
		snprintf(v, sizeof(v), "a%d", m);
		want = 0;
		for (uint64_t i = 0; i < size; i++)
			want += i % 2 == 0 && i % 3 == (uint64_t)m;
		assert_int_equal(
		    search_all(rd, STORE_BY_ARTIFACT, v, 13, all, size + 1),
		    want);
	}
	store_rd_end(rd);
	free(all);
}

/*
 * A small index buffer: runs fill, freeze and are written to index tables
 * a slice per batch, and tables merge level by level, across restarts at
 * every stage; nothing is ever missing, doubled or found at the wrong
 * index; entries already in the log (and submissions, by their dedup
 * key) stay duplicates wherever their rows are; and the tables' filters
 * spare most lookups.
 */
static void
test_store_index_buffer_runs(void **state)
{
	static const size_t batches[] = { 1, 7, 13, 50, 3, 90, 2, 31, 64, 5, 17,
		120, 1, 1, 40, 9, 77, 3, 26, 60 };
	struct fx *f = *state;
	struct store_stats st;
	uint64_t first = 0;
	int merging_seen = 0, settled_seen = 0, tab_merges_seen = 0;
	unsigned levels_seen = 0;

	store_set_ixbuf_entries(f->s, 16);
	for (size_t r = 0; r < 20 * sizeof(batches) / sizeof(batches[0]); r++) {
		size_t n = batches[r % (sizeof(batches) / sizeof(batches[0]))];

		append_ok(f, first, n, 0);
		first += n;
		assert_int_equal(store_stats(f->s, &st), KT_OK);
		assert_int_equal(st.entries, first);
		merging_seen |= st.ixbuf_merging;
		settled_seen |= !st.ixbuf_merging && st.ixbuf_entries < first;
		/* At most a run being merged, and the run filling. */
		assert_true(st.ixbuf_entries <= 2 * (16 + 120));
		/*
		 * Index tables: a level holds fewer than 8 tables at rest,
		 * and up to 8 merging and some waiting.
		 */
		tab_merges_seen |= st.ixmerges > 0;
		if (st.ixlevels > levels_seen)
			levels_seen = st.ixlevels;
		assert_true(st.ixtables <= 16 * st.ixlevels);
		if (r % 4 == 3) {
			/* A restart: the runs come back from the tables. */
			store_close(f->s);
			f->s = NULL;
			fx_open(f, 0);
			store_set_ixbuf_entries(f->s, 16);
		}
		if (r % 10 == 0 ||
		    r + 1 == 20 * sizeof(batches) / sizeof(batches[0]))
			check_indexes(f);
		/* Old entries again: duplicates, at their own indexes. */
		{
			uint8_t b[3][128];
			struct store_item it[3];
			uint64_t size;
			char err[256];

			plain_item(0, b[0], &it[0]);
			plain_item(first / 2, b[1], &it[1]);
			plain_item(first - 1, b[2], &it[2]);
			assert_int_equal(
			    store_append(f->s, it, 3, fake_sign, &f->sg, NULL,
				&size, err, sizeof(err)),
			    KT_OK);
			assert_int_equal(size, first);
			assert_int_equal(it[0].index, 0);
			assert_int_equal(it[1].index, first / 2);
			assert_int_equal(it[2].index, first - 1);
			for (int i = 0; i < 3; i++)
				assert_int_equal(it[i].duplicate, 1);
		}
		/*
		 * A submission again, with a new entry (a new time), as
		 * POST /v1/entries sees it: found by digest and dedup key.
		 */
		for (int q = 0; q < 3 && first > 2; q++) {
			/* Submissions' seeds are 1 mod 4: old, middle, new. */
			uint64_t seed = q == 0
			    ? 1
			    : (((first - 2) * (uint64_t)q / 2) & ~UINT64_C(3)) |
				1;
			uint8_t b[128];
			struct store_item it;
			uint64_t size;
			char err[256], d[24];

			plain_item(seed + 1000000, b, &it);
			snprintf(
			    d, sizeof(d), "d%llu", (unsigned long long)seed);
			it.by_digest.p = (const uint8_t *)d;
			it.by_digest.len = strlen(d);
			dedup_key(seed, &it.dedup);
			it.has_dedup = 1;
			assert_int_equal(
			    store_append(f->s, &it, 1, fake_sign, &f->sg, NULL,
				&size, err, sizeof(err)),
			    KT_OK);
			assert_int_equal(size, first);
			assert_int_equal(it.duplicate, 1);
			assert_int_equal(it.index, seed);
		}
	}
	assert_true(merging_seen);
	assert_true(settled_seen);
	/* Runs of 16 to 136 entries, 12,400 entries: levels 0, 1 and 2. */
	assert_true(tab_merges_seen);
	assert_int_equal(levels_seen, 3);
	/*
	 * New entries' leaf hashes are in no table: the filters spare
	 * almost every lookup of them (a restart loses the filters of the
	 * tables being written, so some tables have none).
	 */
	assert_int_equal(store_stats(f->s, &st), KT_OK);
	print_message("table lookups: %llu read, %llu skipped\n",
	    (unsigned long long)st.probes_read,
	    (unsigned long long)st.probes_skipped);
	assert_true(st.probes_skipped > 2 * st.probes_read);
	check_log(f);
}

/*
 * Merges keep up when the entries they move had more index rows than
 * today's: after runs of entries with three or four rows each, entries
 * with one row (their leaf hash) come in, and a merge paced on today's
 * rows alone would let the level below pile up tables.  The pace then
 * quickens, so no level ever holds many more tables than a merge takes,
 * and every entry is still found where it is.
 */
static void
test_store_index_merges_keep_pace(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	unsigned most = 0, merges_seen = 0;
	uint64_t first = 0;
	char err[256];

	store_set_ixbuf_entries(f->s, 64);
	for (int r = 0; r < 32; r++, first += 16)
		append_ok(f, first, 16, 0);
	for (int r = 0; r < 160; r++) {
		uint8_t b[8][128];
		struct store_item it[8];
		uint64_t size;

		for (int i = 0; i < 8; i++)
			plain_item(1000000 + first + (uint64_t)i, b[i], &it[i]);
		assert_int_equal(store_append(f->s, it, 8, fake_sign, &f->sg,
				     NULL, &size, err, sizeof(err)),
		    KT_OK);
		for (int i = 0; i < 8; i++)
			assert_int_equal(it[i].duplicate, 0);
		first += 8;
		assert_int_equal(size, first);
		assert_int_equal(store_stats(f->s, &st), KT_OK);
		merges_seen += st.ixmerges > 0;
		if (st.ixlevel_max > most)
			most = st.ixlevel_max;
	}
	print_message("most live tables at one level: %u\n", most);
	assert_true(merges_seen > 0);
	/*
	 * The 8 being merged and at most 7 that came meanwhile: paced on
	 * today's rows alone, the first merge would still be running when
	 * the 8th came (16 here).
	 */
	assert_true(most <= 15);
	/* Old and new entries again: duplicates at their own indexes. */
	for (uint64_t e = 0; e < first; e += 37) {
		uint8_t b[128];
		struct store_item it;
		uint64_t size;

		plain_item(e < 512 ? e : 1000000 + e, b, &it);
		assert_int_equal(store_append(f->s, &it, 1, fake_sign, &f->sg,
				     NULL, &size, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(it.duplicate, 1);
		assert_int_equal(it.index, e);
	}
}

/*
 * A merge ends early in the time the level below takes to gather its
 * next 8 tables (STORE_MERGE_PACE): its sources stay live, probed by
 * every lookup, until it does.  Counted over many runs, in batches of
 * the same size: the share of batches during which a merge is under way
 * (131 of 384 at 4x, 300 at the former 1.25x) and the live tables a
 * lookup probes on average (10.1 against 14.9).
 */
static void
test_store_merges_end_early(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	unsigned batches = 0, merging = 0, tables = 0;
	uint64_t first = 0;

	store_set_ixbuf_entries(f->s, 64);
	for (int r = 0; r < 448; r++, first += 16) {
		append_ok(f, first, 16, 0);
		if (r < 64)
			continue; /* until merges are due */
		assert_int_equal(store_stats(f->s, &st), KT_OK);
		batches++;
		merging += st.ixmerges > 0;
		tables += st.ixtables;
	}
	print_message("merging during %u of %u batches, %.1f live tables on "
		      "average\n",
	    merging, batches, (double)tables / batches);
	assert_true(merging > 0);
	assert_true(merging * 2 < batches);
	assert_true(tables < batches * 12);
}

/*
 * A batch's share of a flush or merge that is below the smallest slice
 * (STORE_SLICE_MIN, or half the table's entries) is carried to a later
 * batch, so tables are written in slices of hundreds or thousands of
 * rows, not in the few dozen a batch of 16 entries brings; and the
 * pace still lets merges finish, with every entry found where it is.
 */
static void
test_store_slices_are_not_tiny(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	uint64_t first = 0;
	unsigned levels = 0;

	/* Runs of 1,024 entries: flush slices of 512 rows, merges 2,048. */
	store_set_ixbuf_entries(f->s, 1024);
	for (int r = 0; r < 480; r++, first += 32) {
		append_ok(f, first, 32, 0);
		assert_int_equal(store_stats(f->s, &st), KT_OK);
		if (st.ixlevels > levels)
			levels = st.ixlevels;
	}
	print_message("%llu slices, %llu rows, %u levels\n",
	    (unsigned long long)st.slices, (unsigned long long)st.slice_rows,
	    levels);
	assert_true(levels >= 2);
	assert_true(st.slices > 10);
	/* Paced per batch alone, a slice would be 150-300 rows. */
	assert_true(st.slice_rows / st.slices >= 400);
	check_indexes(f);
	check_log(f);
}

static void
test_store_map_full_is_clean(void **state)
{
	struct fx *f = *state;
	struct kt_buf note, before;
	struct store_rd *rd;
	char err[256] = "";
	uint64_t seed = 0, size;
	int rc = KT_OK;

	store_close(f->s);
	f->s = NULL;
	rm_dir(f->dir);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	fx_open(f, STORE_MAP_SIZE_MIN);
	/* Large entries (about 40 KB) until the 1 MiB map fills. */
	while (rc == KT_OK) {
		rc = append_range(f, seed, 4, 40000, err, sizeof(err));
		if (rc == KT_OK)
			seed += 4;
		assert_true(seed < 400);
	}
	assert_int_equal(rc, KT_EUNAVAIL);
	assert_non_null(strstr(err, "log storage is full (map size"));
	assert_non_null(strstr(err, "raise map_size"));
	assert_true(seed > 0);
	size = kt_memtree_size(f->mt);
	assert_int_equal(size, seed);
	/* Still readable at the last committed size. */
	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&before, KT_NOTE_MAX);
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(store_rd_size(rd), size);
	assert_int_equal(store_rd_checkpoint(rd, &before), KT_OK);
	store_rd_end(rd);
	expected_note(f, size, &note);
	assert_buf_equal(&note, &before);
	/* A small append can still fail the same way without harm. */
	rc = append_range(f, seed, 4, 40000, err, sizeof(err));
	assert_int_equal(rc, KT_EUNAVAIL);
	store_close(f->s);
	f->s = NULL;
	/* Reopened with room, it goes on where it stopped. */
	fx_open(f, 64 << 20);
	append_ok(f, seed, 4, 40000);
	assert_int_equal(kt_memtree_size(f->mt), size + 4);
	{
		struct kt_hash root;

		assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
		assert_int_equal(
		    kt_memtree_root(f->mt, size + 4, &root), KT_OK);
		assert_int_equal(
		    kt_tiles_verify(size + 4, &root, rd_tile_read, rd), KT_OK);
		check_proofs(f, rd, size + 4, size);
		store_rd_end(rd);
	}
	kt_buf_free(&note);
	kt_buf_free(&before);
}

static int
count_cb(void *ctx, struct kt_bytes key, struct kt_bytes val)
{
	int *n = ctx;

	(void)val;
	assert_true(key.len > 0);
	(*n)++;
	return KT_OK;
}

static int
stop_cb(void *ctx, struct kt_bytes key, struct kt_bytes val)
{
	(void)ctx;
	(void)key;
	(void)val;
	return KT_EEXIST;
}

static void
test_store_signer_failure_commits_nothing(void **state)
{
	struct fx *f = *state;
	struct store_rd *rd;
	struct kt_buf v;
	struct kt_hash leaf;
	uint64_t index;
	char err[256] = "";
	int n = 0;

	append_ok(f, 0, 10, 0);
	f->sg.fail = 1;
	assert_int_equal(append_range(f, 10, 20, 0, err, sizeof(err)), KT_EIO);
	assert_non_null(strstr(err, "sign"));
	f->sg.fail = 0;
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(store_rd_size(rd), 10);
	kt_buf_init(&v, KT_ENTRY_BUNDLE_MAX);
	assert_int_equal(store_rd_entry(rd, 10, &v), KT_ENOTFOUND);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)"e10", 3, &v),
	    KT_ENOTFOUND);
	assert_int_equal(store_rd_checkpoint_at(rd, 30, &v), KT_ENOTFOUND);
	assert_int_equal(store_rd_bundle(rd, 0, 11, &v), KT_ENOTFOUND);
	assert_int_equal(store_rd_tile(rd, 0, 0, 11, &v), KT_ENOTFOUND);
	kt_leaf_hash(f->ebuf, gen_entry(10, 0, f->ebuf), &leaf);
	assert_int_equal(store_rd_find_leaf(rd, &leaf, &index), KT_ENOTFOUND);
	assert_int_equal(
	    store_rd_iter(rd, STORE_DB_REQUESTS, count_cb, &n), KT_OK);
	assert_int_equal(n, 10);
	assert_int_equal(v.len, 0);
	store_rd_end(rd);
	/* The same batch goes through afterwards, at the same indexes. */
	append_ok(f, 10, 20, 0);
	check_log(f);
	kt_buf_free(&v);
}

static void
test_store_rejects_bad_input(void **state)
{
	struct fx *f = *state;
	struct store_item it;
	struct store_put p = { STORE_DB_POLICIES, { (const uint8_t *)"x", 1 },
		{ NULL, 0 }, 0, 0 };
	struct store_rd *rd;
	struct kt_buf b;
	char err[256];

	kt_buf_init(&b, 64);
	plain_item(1, f->ebuf, &it);
	it.leaf.b[0] ^= 1;
	assert_int_equal(store_append(f->s, &it, 1, fake_sign, NULL, NULL, NULL,
			     err, sizeof(err)),
	    KT_EINVAL);
	assert_non_null(strstr(err, "leaf hash"));
	it.entry.len = STORE_ENTRY_MAX + 1;
	assert_int_equal(store_append(f->s, &it, 1, fake_sign, NULL, NULL, NULL,
			     err, sizeof(err)),
	    KT_ETOOBIG);
	plain_item(1, f->ebuf, &it);
	it.by_key.p = f->ebuf;
	it.by_key.len = STORE_INDEX_VALUE_MAX + 1;
	assert_int_equal(store_append(f->s, &it, 1, fake_sign, NULL, NULL, NULL,
			     err, sizeof(err)),
	    KT_ETOOBIG);
	it.by_key.len = 0;
	p.db = (enum store_aux)7;
	it.puts = &p;
	it.nputs = 1;
	assert_int_equal(store_append(f->s, &it, 1, fake_sign, NULL, NULL, NULL,
			     err, sizeof(err)),
	    KT_EINVAL);
	p.db = STORE_DB_POLICIES;
	p.key.len = 0;
	assert_int_equal(store_write(f->s, &p, 1, err, sizeof(err)), KT_EINVAL);
	/* Only an appended entry has an index to write. */
	p.key.len = 1;
	p.index_value = 1;
	assert_int_equal(store_write(f->s, &p, 1, err, sizeof(err)), KT_EINVAL);
	p.index_value = 0;
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(store_rd_size(rd), 0);
	assert_int_equal(store_rd_checkpoint(rd, &b), KT_ENOTFOUND);
	assert_int_equal(store_rd_tile(rd, 0, 0, 0, &b), KT_EINVAL);
	assert_int_equal(store_rd_tile(rd, 0, 0, 257, &b), KT_EINVAL);
	assert_int_equal(store_rd_tile(rd, 64, 0, 1, &b), KT_EINVAL);
	assert_int_equal(store_rd_tile(rd, 9, 0, 1, &b), KT_ENOTFOUND);
	assert_int_equal(store_rd_tile(rd, 0, 0, 1, &b), KT_ENOTFOUND);
	assert_int_equal(
	    store_rd_bundle(rd, KT_TILE_INDEX_MAX + 1, 1, &b), KT_EINVAL);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_KEYS, NULL, 0, &b), KT_EINVAL);
	store_rd_end(rd);
	kt_buf_free(&b);
}

static void
test_store_write_aux(void **state)
{
	struct fx *f = *state;
	struct store_put p[3] = {
		{ STORE_DB_REQUESTS, { (const uint8_t *)"r2", 2 },
		    { (const uint8_t *)"two", 3 }, 0, 0 },
		{ STORE_DB_REQUESTS, { (const uint8_t *)"r1", 2 },
		    { (const uint8_t *)"one", 3 }, 0, 0 },
		{ STORE_DB_REQUESTS, { (const uint8_t *)"r3", 2 },
		    { (const uint8_t *)"", 0 }, 0, 0 },
	};
	struct store_rd *rd;
	struct kt_buf b;
	char err[256];
	int n = 0;

	kt_buf_init(&b, 2);
	assert_int_equal(store_write(f->s, p, 3, err, sizeof(err)), KT_OK);
	p[0].del = 1;
	assert_int_equal(store_write(f->s, p, 1, err, sizeof(err)), KT_OK);
	/* Deleting what is not there is fine. */
	assert_int_equal(store_write(f->s, p, 1, err, sizeof(err)), KT_OK);
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)"r2", 2, &b),
	    KT_ENOTFOUND);
	/* A value past the buffer's maximum leaves it unchanged. */
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)"r1", 2, &b),
	    KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(
	    store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)"r3", 2, &b),
	    KT_OK);
	assert_int_equal(b.len, 0);
	assert_int_equal(
	    store_rd_iter(rd, STORE_DB_REQUESTS, count_cb, &n), KT_OK);
	assert_int_equal(n, 2);
	assert_int_equal(store_rd_iter(rd, STORE_DB_KEYS, count_cb, &n), KT_OK);
	assert_int_equal(n, 2);
	assert_int_equal(
	    store_rd_iter(rd, STORE_DB_REQUESTS, stop_cb, NULL), KT_EEXIST);
	store_rd_end(rd);
	{
		struct store_stats st;

		assert_int_equal(store_stats(f->s, &st), KT_OK);
		assert_int_equal(st.map_size, STORE_MAP_SIZE_DEFAULT);
		assert_true(st.used_bytes > 0 && st.used_bytes < st.map_size);
		assert_int_equal(st.entries, 0);
	}
	kt_buf_free(&b);
}

struct reader {
	struct store *s;
	atomic_int stop;
	int sessions, misses;
};

/*
 * Reads while the writer appends: in every session, each entry of the
 * snapshot is found by its leaf hash at its index, wherever its rows are.
 */
static void *
reader_run(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = malloc(ENTRY_CAP);

	while (buf != NULL && !atomic_load(&r->stop)) {
		struct store_rd *rd;
		uint64_t size, idx;

		if (store_rd_begin(r->s, &rd) != KT_OK) {
			r->misses++;
			break;
		}
		size = store_rd_size(rd);
		/* The newest entries, and a stride through the older ones. */
		for (uint64_t i = 0; i < size; i += i + 64 < size ? 7 : 1) {
			struct kt_hash leaf;

			kt_leaf_hash(buf, gen_entry(i, 0, buf), &leaf);
			if (store_rd_find_leaf(rd, &leaf, &idx) != KT_OK ||
			    idx != i)
				r->misses++;
		}
		store_rd_end(rd);
		r->sessions++;
	}
	free(buf);
	return NULL;
}

/*
 * Runs freeze and merge while another thread reads: a session never
 * misses an entry of its snapshot (the runs it holds outlive a merge, and
 * a run begun since it took them is taken too).
 */
static void
test_store_index_buffer_concurrent_reads(void **state)
{
	struct fx *f = *state;
	struct reader r = { f->s, 0, 0, 0 };
	pthread_t t;
	uint64_t first = 0;

	store_set_ixbuf_entries(f->s, 25);
	append_ok(f, first, 10, 0);
	first += 10;
	assert_int_equal(pthread_create(&t, NULL, reader_run, &r), 0);
	for (int b = 0; b < 50; b++) {
		size_t n = 1 + (size_t)(b * 7 % 23);

		append_ok(f, first, n, 0);
		first += n;
	}
	atomic_store(&r.stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.misses, 0);
	assert_true(r.sessions > 0);
}

struct freeze_hook {
	struct fx *f;
	uint64_t first;
	int fired;
};

/* Inside store_rd_begin: a batch that freezes the run, then one more. */
static void
freeze_hook_run(void *arg)
{
	struct freeze_hook *h = arg;

	store_debug_set_rd_hook(h->f->s, NULL, NULL);
	append_ok(h->f, h->first, 15, 0);
	append_ok(h->f, h->first + 15, 5, 0);
	h->first += 20;
	h->fired = 1;
}

/*
 * A session that took the runs just before a run was frozen and a newer
 * batch committed: its snapshot holds that batch, whose rows are only in
 * the new run, so it must take the runs again.  Every entry of its
 * snapshot is found.
 */
static void
test_store_index_buffer_session_retakes_runs(void **state)
{
	struct fx *f = *state;
	struct freeze_hook h = { f, 10, 0 };
	struct store_rd *rd;
	uint64_t size, idx;

	store_set_ixbuf_entries(f->s, 20);
	append_ok(f, 0, 10, 0);
	store_debug_set_rd_hook(f->s, freeze_hook_run, &h);
	assert_int_equal(store_rd_begin(f->s, &rd), KT_OK);
	assert_true(h.fired);
	size = store_rd_size(rd);
	assert_int_equal(size, 30);
	for (uint64_t i = 0; i < size; i++) {
		struct kt_hash leaf;

		kt_leaf_hash(f->ebuf, gen_entry(i, 0, f->ebuf), &leaf);
		assert_int_equal(store_rd_find_leaf(rd, &leaf, &idx), KT_OK);
		assert_int_equal(idx, i);
	}
	store_rd_end(rd);
	check_indexes(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_store_append_matches_memtree, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_append_dedups, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_search_paginates, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_reopen_keeps_log, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_index_buffer_runs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_index_buffer_concurrent_reads, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_index_buffer_session_retakes_runs, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_index_merges_keep_pace, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_merges_end_early, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_slices_are_not_tiny, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_map_full_is_clean, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_signer_failure_commits_nothing, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_rejects_bad_input, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_write_aux, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
