/*
 * C2SP tlog-tiles: tile paths against tiles.json, tile arithmetic, entry
 * bundles, and the two static logs of the vectors (tiles/ with 70000
 * entries, tiles-varlen/ with 300), read from disk, verified against their
 * roots, tampered with, and rebuilt byte for byte from their entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keytrail/encoding.h"
#include "keytrail/merkle.h"
#include "keytrail/tile.h"
#include "testutil.h"

#define NLOGS 2
#define ENTRY_BUF (KT_ENTRY_MAX + 1)
#define MAX_TAMPER 2

/* One static log of the vectors, rebuilt in memory from its entries. */
struct vlog {
	const char *dir;
	const json_t *j; /* its element of tiles.json "logs" */
	int varlen;	 /* entries follow the tiles-varlen rule */
	const char *prefix;
	uint64_t size;
	struct kt_hash root;
	struct kt_memtree *tree;
};

struct fixture {
	json_t *json;
	struct vlog log[NLOGS];
	uint8_t *entry; /* ENTRY_BUF bytes of scratch */
};

/*
 * Writes entry i of the log into buf (ENTRY_BUF bytes) and returns its
 * length, following the rules in tiles.json "entries".
 */
static size_t
log_entry(const struct vlog *l, uint64_t i, uint8_t *buf)
{
	size_t len;
	int n;

	if (!l->varlen) {
		n = snprintf((char *)buf, ENTRY_BUF, "%s%llu", l->prefix,
		    (unsigned long long)i);
		assert_true(n > 0 && n < ENTRY_BUF);
		return (size_t)n;
	}
	len = i == 7 ? KT_ENTRY_MAX : (size_t)((211 * i) % 1024);
	for (size_t j = 0; j < len; j++)
		buf[j] = (uint8_t)((i + j) % 256);
	return len;
}

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	json_t *logs, *v;
	size_t i;

	assert_non_null(f);
	f->entry = malloc(ENTRY_BUF);
	assert_non_null(f->entry);
	f->json = tu_load_json("tiles.json");
	logs = json_object_get(f->json, "logs");
	assert_int_equal(json_array_size(logs), NLOGS);
	json_array_foreach(logs, i, v)
	{
		struct vlog *l = &f->log[i];
		const json_t *e = json_object_get(v, "entries");

		l->j = v;
		l->dir = tu_str(v, "dir");
		l->size = tu_u64(v, "size");
		tu_hash_hex(tu_str(v, "root_hex"), &l->root);
		l->varlen = strcmp(tu_str(e, "kind"), "varlen") == 0;
		if (!l->varlen) {
			assert_string_equal(tu_str(e, "kind"), "ascii");
			l->prefix = tu_str(e, "prefix");
		}
		l->tree = kt_memtree_new();
		assert_non_null(l->tree);
		for (uint64_t k = 0; k < l->size; k++) {
			size_t n = log_entry(l, k, f->entry);

			assert_int_equal(
			    kt_memtree_append(l->tree, f->entry, n), KT_OK);
		}
	}
	assert_string_equal(f->log[0].dir, "tiles");
	assert_int_equal(f->log[0].size, 70000);
	assert_string_equal(f->log[1].dir, "tiles-varlen");
	assert_int_equal(f->log[1].size, 300);
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL)
		return 0;
	for (int i = 0; i < NLOGS; i++)
		kt_memtree_free(f->log[i].tree);
	json_decref(f->json);
	free(f->entry);
	free(f);
	return 0;
}

/* Formats t's path into buf, failing the test on error. */
static const char *
path_of(const struct kt_tile *t, char buf[KT_TILE_PATH_MAX])
{
	size_t len;

	assert_int_equal(kt_tile_format(t, buf, KT_TILE_PATH_MAX, &len), KT_OK);
	assert_int_equal(strlen(buf), len);
	return buf;
}

/* Reads <vectors>/<dir>/<rel>; NULL when missing. */
static uint8_t *
read_log_file(const char *dir, const char *rel, size_t *len)
{
	char path[4096];
	int n;

	n = snprintf(
	    path, sizeof(path), "%s/%s/%s", tu_vectors_dir(), dir, rel);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	return tu_read_file(path, len);
}

/* How a disk source alters one tile before handing it over. */
enum tamper_mode {
	TAMPER_FLIP,	 /* xor byte off with 0x01 */
	TAMPER_TRUNCATE, /* drop the last byte */
	TAMPER_EXTEND,	 /* append one zero byte */
	TAMPER_SWAP,	 /* serve the file other instead */
	TAMPER_MISSING	 /* pretend the file does not exist */
};

struct tamper {
	const char *path;
	enum tamper_mode mode;
	size_t off;
	const char *other;
};

/* A kt_tile_read_fn over a log folder of the vectors. */
struct disk_src {
	const char *dir;
	struct tamper tamper[MAX_TAMPER];
	size_t ntamper;
	struct kt_tile seen[KT_TILE_PLAN_MAX];
	size_t nseen;
	unsigned long nread;
};

static int
disk_read(void *ctx, const struct kt_tile *t, struct kt_buf *data)
{
	struct disk_src *src = ctx;
	const struct tamper *tp = NULL;
	char buf[KT_TILE_PATH_MAX];
	const char *path = path_of(t, buf);
	uint8_t *p;
	size_t len;
	int rc;

	src->nread++;
	if (src->nseen < KT_TILE_PLAN_MAX)
		src->seen[src->nseen++] = *t;
	for (size_t i = 0; i < src->ntamper; i++) {
		if (strcmp(src->tamper[i].path, path) == 0)
			tp = &src->tamper[i];
	}
	if (tp != NULL && tp->mode == TAMPER_MISSING)
		return KT_ENOTFOUND;
	if (tp != NULL && tp->mode == TAMPER_SWAP)
		path = tp->other;
	if ((p = read_log_file(src->dir, path, &len)) == NULL)
		return KT_ENOTFOUND;
	if (tp != NULL && tp->mode == TAMPER_FLIP) {
		assert_true(tp->off < len);
		p[tp->off] ^= 0x01;
	}
	if (tp != NULL && tp->mode == TAMPER_TRUNCATE) {
		assert_true(len > 0);
		len--;
	}
	rc = kt_buf_append(data, p, len);
	if (rc == KT_OK && tp != NULL && tp->mode == TAMPER_EXTEND)
		rc = kt_buf_append_byte(data, 0);
	free(p);
	return rc;
}

/* A kt_tile_read_fn that makes the tiles of a rebuilt log at any size. */
struct mem_src {
	const struct vlog *log;
	uint64_t size;
	uint8_t *entry;
	unsigned long nread;
};

static int
mem_read(void *ctx, const struct kt_tile *t, struct kt_buf *data)
{
	struct mem_src *src = ctx;
	int rc;

	src->nread++;
	if (t->level != KT_TILE_ENTRIES)
		return kt_tile_read_data(
		    src->size, t, kt_memtree_read, src->log->tree, data);
	if (!kt_tile_in_tree(t, src->size))
		return KT_ENOTFOUND;
	for (unsigned i = 0; i < t->width; i++) {
		uint64_t k = t->index * KT_TILE_WIDTH + i;
		size_t n = log_entry(src->log, k, src->entry);

		if ((rc = kt_entry_bundle_append(data, src->entry, n)) != KT_OK)
			return rc;
	}
	return KT_OK;
}

static void
sha256_hex(const uint8_t *p, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;

	assert_int_equal(EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(mdlen, 32);
	kt_hex_encode(md, 32, out);
}

/*
 * Reads the size (line 2) and root (line 3, base64) of a signed
 * checkpoint file of the vectors; the signature is another module's job.
 */
static void
checkpoint_body(const char *rel, uint64_t *size, struct kt_hash *root)
{
	struct kt_reader r;
	struct kt_bytes origin, sz, rt;
	size_t len;
	uint8_t *p = tu_read_vector_file(rel, &len);

	kt_reader_init(&r, p, len);
	origin = kt_reader_line(&r);
	sz = kt_reader_line(&r);
	rt = kt_reader_line(&r);
	assert_false(r.bad);
	assert_true(origin.len > 0);
	assert_int_equal(
	    kt_parse_u64(sz.p, sz.len, KT_SIZE_MAX - 1, size), KT_OK);
	assert_int_equal(kt_b64_decode_exact(
			     (const char *)rt.p, rt.len, root->b, KT_HASH_SIZE),
	    KT_OK);
	free(p);
}

/* Decodes a JSON array of hex hashes into out; returns the count. */
static size_t
hex_hashes(const json_t *arr, struct kt_hash *out, size_t max)
{
	size_t n = json_array_size(arr);

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		tu_hash_hex(json_string_value(json_array_get(arr, i)), &out[i]);
	return n;
}

/* ------------------------------------------------------------------ */
/* Paths */

static void
test_tile_format_vectors(void **state)
{
	struct fixture *f = *state;
	json_t *v;
	size_t i, count = 0;

	json_array_foreach(
	    json_object_get(json_object_get(f->json, "tile_paths"), "valid"), i,
	    v)
	{
		json_int_t level =
		    json_integer_value(json_object_get(v, "level"));
		struct kt_tile t = { (int)level, tu_u64(v, "index"),
			(unsigned)tu_u64(v, "width") };
		char out[KT_TILE_PATH_MAX];
		size_t len = 0;

		assert_int_equal(
		    kt_tile_format(&t, out, sizeof(out), &len), KT_OK);
		assert_string_equal(out, tu_str(v, "path"));
		assert_int_equal(len, strlen(out));
		count++;
	}
	assert_true(count >= 20);
}

static void
test_tile_parse_vectors(void **state)
{
	struct fixture *f = *state;
	json_t *v;
	size_t i, count = 0;

	json_array_foreach(
	    json_object_get(json_object_get(f->json, "tile_paths"), "valid"), i,
	    v)
	{
		const char *path = tu_str(v, "path");
		struct kt_tile t = { 99, 99, 99 };

		assert_int_equal(kt_tile_parse(path, strlen(path), &t), KT_OK);
		assert_int_equal(t.level,
		    (int)json_integer_value(json_object_get(v, "level")));
		assert_int_equal(t.index, tu_u64(v, "index"));
		assert_int_equal(t.width, tu_u64(v, "width"));
		count++;
	}
	assert_true(count >= 20);
}

static void
test_tile_parse_rejects_invalid_vectors(void **state)
{
	struct fixture *f = *state;
	json_t *v;
	size_t i, count = 0;

	json_array_foreach(
	    json_object_get(json_object_get(f->json, "tile_paths"), "invalid"),
	    i, v)
	{
		const char *path = tu_str(v, "path");
		const char *expect = tu_str(v, "expect");
		struct kt_tile t = { 7, 7, 7 };

		/* "either" cases take the stricter, preferred choice. */
		if (strcmp(expect, "either") == 0)
			expect = tu_str(v, "preferred");
		assert_string_equal(expect, "reject");
		assert_int_equal(
		    kt_tile_parse(path, strlen(path), &t), KT_EPARSE);
		assert_int_equal(t.level, 7);
		assert_int_equal(t.index, 7);
		assert_int_equal(t.width, 7);
		count++;
	}
	assert_true(count >= 20);
}

static void
test_tile_parse_rejects_own_table(void **state)
{
	static const struct {
		const char *path;
		size_t len; /* 0: strlen(path) */
	} bad[] = {
		{ "", 0 },
		{ "tile", 0 },
		{ "tile/", 0 },
		{ "tile/0", 0 },
		{ "tile/0/", 0 },
		{ "/tile/0/000", 0 },
		{ "tiles/0/000", 0 },
		{ "Tile/0/000", 0 },
		{ "tile//000", 0 },
		{ "tile/0//000", 0 },
		{ "tile/0/000.p/1/", 0 },
		{ "tile/0/000.p/1x", 0 },
		{ "tile/0/000.P/1", 0 },
		{ "tile/0/000.p/+1", 0 },
		{ "tile/0/000.p/ 1", 0 },
		{ "tile/0/000.p/1000", 0 },
		{ "tile/0/000.p/18446744073709551617", 0 },
		{ "tile/0/ 000", 0 },
		{ "tile/0/000 ", 0 },
		{ "tile/0/000\n", 0 },
		{ "tile/0/00a", 0 },
		{ "tile/0/x1/000", 0 },
		{ "tile/0/x0001/000", 0 },
		{ "tile/0/xx001/000", 0 },
		{ "tile/0/x001x000", 0 },
		{ "tile/0/x001/000/", 0 },
		{ "tile/0/x001/", 0 },
		{ "tile/0/x000/x001/000", 0 },
		{ "tile/00/000", 0 },
		{ "tile/1 /000", 0 },
		{ "tile/100/000", 0 },
		{ "tile/18446744073709551616/000", 0 },
		{ "tile/entries/", 0 },
		{ "tile/entries/000.p/0", 0 },
		{ "tile/Entries/000", 0 },
		{ "tile/entry/000", 0 },
		{ "tile/entries/x001", 0 },
		{ "tile/8/entries/000", 0 },
		/* 2^55: one past KT_TILE_INDEX_MAX. */
		{ "tile/0/x036/x028/x797/x018/x963/968", 0 },
		{ "tile/entries/x036/x028/x797/x018/x963/968", 0 },
		/* 2^64 and beyond. */
		{ "tile/0/x018/x446/x744/x073/x709/x551/616", 0 },
		{ "tile/0/x999/x999/x999/x999/x999/x999/x999/999", 0 },
		/* An embedded NUL: "tile/0/000" then garbage. */
		{ "tile/0/000\0.p/1", 15 },
		{ "tile/0/0\00000", 11 },
		/* Longer than any path: refused before parsing. */
		{ "tile/0/x000/x000/x000/x000/x000/x000/x000/x000/x000/x000/"
		  "x000/000",
		    0 },
	};
	struct kt_tile t = { 5, 5, 5 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].path);

		assert_int_equal(
		    kt_tile_parse(bad[i].path, len, &t), KT_EPARSE);
	}
	/*
	 * A valid path cut short at every length: only the cuts that are
	 * themselves paths (tile/0/x001/000 and tile/0/x001/000.p/1) parse.
	 */
	for (size_t len = 0; len < strlen("tile/0/x001/000.p/17"); len++) {
		struct kt_tile cut;

		assert_int_equal(
		    kt_tile_parse("tile/0/x001/000.p/17", len, &cut),
		    len == 15 || len == 19 ? KT_OK : KT_EPARSE);
	}
	assert_int_equal(kt_tile_parse(NULL, 10, &t), KT_EPARSE);
	assert_int_equal(t.level, 5);
	assert_int_equal(t.index, 5);
	assert_int_equal(t.width, 5);
}

static void
test_tile_parse_round_trips_limits(void **state)
{
	static const struct {
		struct kt_tile t;
		const char *path;
	} ok[] = {
		{ { 0, KT_TILE_INDEX_MAX, 255 },
		    "tile/0/x036/x028/x797/x018/x963/967.p/255" },
		{ { KT_TILE_ENTRIES, KT_TILE_INDEX_MAX, 255 },
		    "tile/entries/x036/x028/x797/x018/x963/967.p/255" },
		{ { KT_TILE_LEVEL_MAX, KT_TILE_INDEX_MAX, 256 },
		    "tile/63/x036/x028/x797/x018/x963/967" },
		{ { 7, 0, 127 }, "tile/7/000.p/127" },
		{ { 10, 1, 256 }, "tile/10/001" },
		{ { 0, 999, 1 }, "tile/0/999.p/1" },
		{ { 0, 1000000, 256 }, "tile/0/x001/x000/000" },
		{ { 0, 1001001, 256 }, "tile/0/x001/x001/001" },
		{ { KT_TILE_ENTRIES, 12, 99 }, "tile/entries/012.p/99" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char buf[KT_TILE_PATH_MAX];
		struct kt_tile t;

		assert_string_equal(path_of(&ok[i].t, buf), ok[i].path);
		assert_true(strlen(buf) < KT_TILE_PATH_MAX);
		assert_int_equal(kt_tile_parse(buf, strlen(buf), &t), KT_OK);
		assert_int_equal(t.level, ok[i].t.level);
		assert_int_equal(t.index, ok[i].t.index);
		assert_int_equal(t.width, ok[i].t.width);
	}
	/* Every index below 2000 and every width survive a round trip. */
	for (uint64_t idx = 0; idx < 2000; idx++) {
		for (unsigned w = 1; w <= KT_TILE_WIDTH; w += 85) {
			struct kt_tile in = { (int)(idx % 3) - 1, idx, w }, t;
			char buf[KT_TILE_PATH_MAX];

			path_of(&in, buf);
			assert_int_equal(
			    kt_tile_parse(buf, strlen(buf), &t), KT_OK);
			assert_int_equal(t.level, in.level);
			assert_int_equal(t.index, in.index);
			assert_int_equal(t.width, in.width);
		}
	}
}

static void
test_tile_format_rejects_bad_tiles(void **state)
{
	static const struct kt_tile bad[] = {
		{ 0, 0, 0 },
		{ 0, 0, 257 },
		{ KT_TILE_ENTRIES, 0, 0 },
		{ KT_TILE_ENTRIES, 0, 257 },
		{ -2, 0, 1 },
		{ 64, 0, 1 },
		{ 0, KT_TILE_INDEX_MAX + 1, 256 },
		{ 0, UINT64_MAX, 256 },
	};
	char out[KT_TILE_PATH_MAX];
	size_t len = 42;
	struct kt_tile ok = { 0, 1000, 17 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'Z', sizeof(out));
		assert_int_equal(kt_tile_check(&bad[i]), KT_EINVAL);
		assert_int_equal(
		    kt_tile_format(&bad[i], out, sizeof(out), &len), KT_EINVAL);
		assert_int_equal(out[0], 'Z');
		assert_int_equal(len, 42);
	}
	assert_int_equal(kt_tile_check(NULL), KT_EINVAL);
	assert_int_equal(kt_tile_check(&ok), KT_OK);
	/* "tile/0/x001/000.p/17" is 20 bytes: 21 with the NUL. */
	memset(out, 'Z', sizeof(out));
	assert_int_equal(kt_tile_format(&ok, out, 20, &len), KT_ETOOBIG);
	assert_int_equal(kt_tile_format(&ok, NULL, 0, &len), KT_ETOOBIG);
	assert_int_equal(out[0], 'Z');
	assert_int_equal(len, 42);
	assert_int_equal(kt_tile_format(&ok, out, 21, &len), KT_OK);
	assert_string_equal(out, "tile/0/x001/000.p/17");
	assert_int_equal(len, 20);
}

/* ------------------------------------------------------------------ */
/* Tile arithmetic */

static void
test_tile_levels_table(void **state)
{
	static const struct {
		uint64_t size;
		unsigned levels;
		/* full tiles and partial width of levels 0..3 */
		uint64_t full[4];
		unsigned partial[4];
	} cases[] = {
		{ 0, 0, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } },
		{ 1, 1, { 0, 0, 0, 0 }, { 1, 0, 0, 0 } },
		{ 255, 1, { 0, 0, 0, 0 }, { 255, 0, 0, 0 } },
		{ 256, 2, { 1, 0, 0, 0 }, { 0, 1, 0, 0 } },
		{ 257, 2, { 1, 0, 0, 0 }, { 1, 1, 0, 0 } },
		{ 300, 2, { 1, 0, 0, 0 }, { 44, 1, 0, 0 } },
		{ 512, 2, { 2, 0, 0, 0 }, { 0, 2, 0, 0 } },
		{ 65535, 2, { 255, 0, 0, 0 }, { 255, 255, 0, 0 } },
		{ 65536, 3, { 256, 1, 0, 0 }, { 0, 0, 1, 0 } },
		{ 65537, 3, { 256, 1, 0, 0 }, { 1, 0, 1, 0 } },
		{ 70000, 3, { 273, 1, 0, 0 }, { 112, 17, 1, 0 } },
		{ 16777216, 4, { 65536, 256, 1, 0 }, { 0, 0, 0, 1 } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t size = cases[i].size;

		assert_int_equal(kt_tile_levels(size), cases[i].levels);
		for (int l = 0; l < 4; l++) {
			assert_int_equal(
			    kt_tile_full_count(size, l), cases[i].full[l]);
			assert_int_equal(kt_tile_partial_width(size, l),
			    cases[i].partial[l]);
		}
		assert_int_equal(kt_tile_full_count(size, KT_TILE_ENTRIES),
		    cases[i].full[0]);
		assert_int_equal(kt_tile_partial_width(size, KT_TILE_ENTRIES),
		    cases[i].partial[0]);
	}
	/* The largest tree has 8 levels; level 7 holds 127 hashes. */
	assert_int_equal(kt_tile_levels(KT_SIZE_MAX - 1), KT_TILE_LEVELS_MAX);
	assert_int_equal(kt_tile_full_count(KT_SIZE_MAX - 1, 7), 0);
	assert_int_equal(kt_tile_partial_width(KT_SIZE_MAX - 1, 7), 127);
	assert_int_equal(kt_tile_partial_width(KT_SIZE_MAX - 1, 8), 0);
	assert_int_equal(kt_tile_full_count(KT_SIZE_MAX - 1, 63), 0);
	assert_int_equal(
	    kt_tile_full_count(KT_SIZE_MAX - 1, 0), KT_TILE_INDEX_MAX);
	assert_int_equal(kt_tile_partial_width(KT_SIZE_MAX - 1, 0), 255);
}

static void
test_tile_levels_vector_logs(void **state)
{
	struct fixture *f = *state;

	for (int li = 0; li < NLOGS; li++) {
		const struct vlog *l = &f->log[li];
		const json_t *eb = json_object_get(l->j, "entry_bundles");
		json_t *v;
		size_t i;

		assert_int_equal(
		    json_array_size(json_object_get(l->j, "levels")),
		    kt_tile_levels(l->size));
		json_array_foreach(json_object_get(l->j, "levels"), i, v)
		{
			int level = (int)tu_u64(v, "level");

			assert_int_equal(level, (int)i);
			assert_int_equal(kt_tile_full_count(l->size, level),
			    tu_u64(v, "full_tiles"));
			assert_int_equal(kt_tile_partial_width(l->size, level),
			    tu_u64(v, "partial_width"));
		}
		assert_int_equal(kt_tile_full_count(l->size, KT_TILE_ENTRIES),
		    tu_u64(eb, "full_tiles"));
		assert_int_equal(
		    kt_tile_partial_width(l->size, KT_TILE_ENTRIES),
		    tu_u64(eb, "partial_width"));
	}
}

static void
test_tile_in_tree_table(void **state)
{
	static const struct {
		struct kt_tile t;
		uint64_t size;
		int in;
	} cases[] = {
		{ { 0, 0, 1 }, 0, 0 },
		{ { 0, 0, 1 }, 1, 1 },
		{ { 0, 0, 2 }, 1, 0 },
		{ { 0, 0, 256 }, 255, 0 },
		{ { 0, 0, 256 }, 256, 1 },
		{ { 0, 0, 255 }, 256, 1 }, /* an older partial tile */
		{ { 1, 0, 1 }, 255, 0 },
		{ { 1, 0, 1 }, 256, 1 },
		{ { 1, 0, 2 }, 511, 0 },
		{ { 0, 273, 112 }, 70000, 1 },
		{ { 0, 273, 113 }, 70000, 0 },
		{ { 0, 273, 256 }, 70000, 0 },
		{ { 0, 274, 1 }, 70000, 0 },
		{ { KT_TILE_ENTRIES, 273, 112 }, 70000, 1 },
		{ { KT_TILE_ENTRIES, 273, 113 }, 70000, 0 },
		{ { 1, 1, 17 }, 70000, 1 },
		{ { 1, 1, 18 }, 70000, 0 },
		{ { 2, 0, 1 }, 70000, 1 },
		{ { 2, 0, 2 }, 70000, 0 },
		{ { 3, 0, 1 }, 70000, 0 },
		{ { 7, 0, 127 }, KT_SIZE_MAX - 1, 1 },
		{ { 7, 0, 128 }, KT_SIZE_MAX - 1, 0 },
		{ { 8, 0, 1 }, KT_SIZE_MAX - 1, 0 },
		{ { 63, 0, 1 }, KT_SIZE_MAX - 1, 0 },
		{ { 0, KT_TILE_INDEX_MAX, 255 }, KT_SIZE_MAX - 1, 1 },
		{ { 0, KT_TILE_INDEX_MAX, 256 }, KT_SIZE_MAX - 1, 0 },
		{ { 0, 0, 0 }, 70000, 0 },
		{ { 0, 0, 257 }, 70000, 0 },
		{ { 0, KT_TILE_INDEX_MAX + 1, 1 }, UINT64_MAX, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		    kt_tile_in_tree(&cases[i].t, cases[i].size), cases[i].in);
	assert_int_equal(kt_tile_in_tree(NULL, 1), 0);
}

static void
test_tile_for_leaf_table(void **state)
{
	static const struct {
		uint64_t size, leaf;
		int rc;
		struct kt_tile want;
	} cases[] = {
		{ 1, 0, KT_OK, { 0, 0, 1 } },
		{ 256, 255, KT_OK, { 0, 0, 256 } },
		{ 257, 256, KT_OK, { 0, 1, 1 } },
		{ 70000, 0, KT_OK, { 0, 0, 256 } },
		{ 70000, 69887, KT_OK, { 0, 272, 256 } },
		{ 70000, 69888, KT_OK, { 0, 273, 112 } },
		{ 70000, 69999, KT_OK, { 0, 273, 112 } },
		{ 70000, 70000, KT_EINVAL, { 0, 0, 0 } },
		{ 0, 0, KT_EINVAL, { 0, 0, 0 } },
		{ KT_SIZE_MAX, 0, KT_EINVAL, { 0, 0, 0 } },
		{ KT_SIZE_MAX - 1, KT_SIZE_MAX - 2, KT_OK,
		    { 0, KT_TILE_INDEX_MAX, 255 } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kt_tile t = { 9, 9, 9 };

		assert_int_equal(
		    kt_tile_for_leaf(cases[i].size, cases[i].leaf, &t),
		    cases[i].rc);
		if (cases[i].rc != KT_OK) {
			assert_int_equal(t.level, 9);
			continue;
		}
		assert_int_equal(t.level, cases[i].want.level);
		assert_int_equal(t.index, cases[i].want.index);
		assert_int_equal(t.width, cases[i].want.width);
	}
}

static void
test_tile_for_stored_hash_table(void **state)
{
	static const struct {
		uint64_t size;
		int level; /* tree level of the hash */
		uint64_t n;
		int rc;
		struct kt_tile want;
	} cases[] = {
		{ 70000, 0, 0, KT_OK, { 0, 0, 256 } },
		{ 70000, 0, 69999, KT_OK, { 0, 273, 112 } },
		{ 70000, 3, 5, KT_OK, { 0, 0, 256 } },
		{ 70000, 7, 545, KT_OK, { 0, 272, 256 } },
		{ 70000, 6, 1092, KT_OK, { 0, 273, 112 } },
		{ 70000, 8, 0, KT_OK, { 1, 0, 256 } },
		{ 70000, 8, 272, KT_OK, { 1, 1, 17 } },
		{ 70000, 10, 67, KT_OK, { 1, 1, 17 } },
		{ 70000, 15, 1, KT_OK, { 1, 0, 256 } },
		{ 70000, 16, 0, KT_OK, { 2, 0, 1 } },
		{ 70000, 0, 70000, KT_EINVAL, { 0, 0, 0 } },
		{ 70000, 6, 1093, KT_EINVAL, { 0, 0, 0 } },
		{ 70000, 17, 0, KT_EINVAL, { 0, 0, 0 } },
		{ 256, 8, 0, KT_OK, { 1, 0, 1 } },
		{ 255, 7, 0, KT_OK, { 0, 0, 255 } },
		{ 255, 8, 0, KT_EINVAL, { 0, 0, 0 } },
		{ 0, 0, 0, KT_EINVAL, { 0, 0, 0 } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kt_tile t = { 9, 9, 9 };
		uint64_t idx = kt_stored_hash_index(cases[i].level, cases[i].n);

		assert_int_equal(
		    kt_tile_for_stored_hash(cases[i].size, idx, &t),
		    cases[i].rc);
		if (cases[i].rc != KT_OK) {
			assert_int_equal(t.level, 9);
			continue;
		}
		assert_int_equal(t.level, cases[i].want.level);
		assert_int_equal(t.index, cases[i].want.index);
		assert_int_equal(t.width, cases[i].want.width);
	}
	/* Indexes at and past the stored-hash count are not in the tree. */
	for (uint64_t size = 1; size < 600; size++) {
		struct kt_tile t;
		uint64_t count = kt_stored_hash_count(size);

		assert_int_equal(
		    kt_tile_for_stored_hash(size, count - 1, &t), KT_OK);
		assert_int_equal(
		    kt_tile_for_stored_hash(size, count, &t), KT_EINVAL);
	}
	{
		struct kt_tile t;

		assert_int_equal(
		    kt_tile_for_stored_hash(70000, KT_SIZE_MAX, &t), KT_EINVAL);
		assert_int_equal(
		    kt_tile_for_stored_hash(70000, UINT64_MAX, &t), KT_EINVAL);
		assert_int_equal(
		    kt_tile_for_stored_hash(KT_SIZE_MAX, 0, &t), KT_EINVAL);
	}
}

/* Index of t in list[0..n), or n. */
static size_t
find_tile(const struct kt_tile *list, size_t n, const struct kt_tile *t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (list[i].level == t->level && list[i].index == t->index &&
		    list[i].width == t->width)
			break;
	}
	return i;
}

/* Checks two tile lists hold the same tiles, each once. */
static void
assert_same_tiles(
    const struct kt_tile *a, size_t na, const struct kt_tile *b, size_t nb)
{
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_true(find_tile(b, nb, &a[i]) < nb);
		assert_int_equal(find_tile(a, na, &a[i]), i);
	}
}

static void
test_tiles_for_inclusion_lists_tiles(void **state)
{
	static const struct kt_tile want[] = {
		{ 2, 0, 1 },
		{ 1, 1, 17 },
		{ 0, 273, 112 },
		{ 1, 0, 256 },
		{ 0, 5, 256 },
	};
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct kt_tile got[KT_TILE_PLAN_MAX];
	size_t n = 0, n2;
	struct disk_src src = { .dir = l->dir };
	struct kt_tile_hash_reader hr = { l->size, l->root, disk_read, &src };
	struct kt_hash proof[KT_PROOF_MAX];
	size_t np;

	/* Leaf 1300 of 70000: its tile, its parent, the three partials. */
	assert_int_equal(
	    kt_tiles_for_inclusion(l->size, 1300, got, KT_TILE_PLAN_MAX, &n),
	    KT_OK);
	assert_same_tiles(got, n, want, sizeof(want) / sizeof(want[0]));
	/* Parents come before their children. */
	assert_true(find_tile(got, n, &want[3]) < find_tile(got, n, &want[4]));
	/* The hash reader fetches exactly the tiles listed. */
	assert_int_equal(kt_prove_inclusion(
			     l->size, 1300, kt_tile_hash_read, &hr, proof, &np),
	    KT_OK);
	assert_same_tiles(src.seen, src.nseen, got, n);

	/* Too small an output: nothing written. */
	n2 = 77;
	assert_int_equal(
	    kt_tiles_for_inclusion(l->size, 1300, got, 4, &n2), KT_ETOOBIG);
	assert_int_equal(n2, 77);
	assert_int_equal(kt_tiles_for_inclusion(
			     l->size, l->size, got, KT_TILE_PLAN_MAX, &n2),
	    KT_EINVAL);
	assert_int_equal(
	    kt_tiles_for_inclusion(KT_SIZE_MAX, 0, got, KT_TILE_PLAN_MAX, &n2),
	    KT_EINVAL);
	assert_int_equal(n2, 77);

	/* Every leaf of a one-tile tree needs just that tile. */
	for (uint64_t leaf = 0; leaf < 300; leaf++) {
		const struct kt_tile one[] = { { 1, 0, 1 }, { 0, 1, 44 },
			{ 0, 0, 256 } };

		assert_int_equal(kt_tiles_for_inclusion(
				     300, leaf, got, KT_TILE_PLAN_MAX, &n),
		    KT_OK);
		assert_same_tiles(got, n, one, leaf < 256 ? 3 : 2);
	}
}

static void
test_tiles_for_consistency_lists_tiles(void **state)
{
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct kt_tile got[KT_TILE_PLAN_MAX];
	size_t n = 0, n2 = 77;
	json_t *h;
	size_t i;

	json_array_foreach(json_object_get(l->j, "history"), i, h)
	{
		uint64_t old = tu_u64(h, "size");
		struct disk_src src = { .dir = l->dir };
		struct kt_tile_hash_reader hr = { l->size, l->root, disk_read,
			&src };
		struct kt_hash proof[KT_PROOF_MAX];
		size_t np;

		if (old == 0)
			continue;
		assert_int_equal(kt_tiles_for_consistency(
				     l->size, old, got, KT_TILE_PLAN_MAX, &n),
		    KT_OK);
		assert_true(n >= 1 && n <= 3 * KT_TILE_LEVELS_MAX);
		assert_int_equal(kt_prove_consistency(l->size, old,
				     kt_tile_hash_read, &hr, proof, &np),
		    KT_OK);
		if (np > 0)
			assert_same_tiles(src.seen, src.nseen, got, n);
	}
	assert_int_equal(
	    kt_tiles_for_consistency(l->size, 0, got, KT_TILE_PLAN_MAX, &n2),
	    KT_EINVAL);
	assert_int_equal(kt_tiles_for_consistency(
			     l->size, l->size + 1, got, KT_TILE_PLAN_MAX, &n2),
	    KT_EINVAL);
	assert_int_equal(n2, 77);
}

static void
test_tiles_for_hashes_errors(void **state)
{
	uint64_t idx[KT_READ_MAX + 1];
	struct kt_tile got[KT_TILE_PLAN_MAX];
	size_t n = 77;

	(void)state;
	for (size_t i = 0; i <= KT_READ_MAX; i++)
		idx[i] = kt_stored_hash_index(0, i * 500);
	assert_int_equal(kt_tiles_for_hashes(70000, idx, KT_READ_MAX + 1, got,
			     KT_TILE_PLAN_MAX, &n),
	    KT_EINVAL);
	/* 128 leaves in different tiles: every tile listed once. */
	assert_int_equal(kt_tiles_for_hashes(70000, idx, KT_READ_MAX, got,
			     KT_TILE_PLAN_MAX, &n),
	    KT_OK);
	assert_int_equal(n, 3 + 1 + 128);
	n = 77;
	assert_int_equal(
	    kt_tiles_for_hashes(70000, idx, KT_READ_MAX, got, 100, &n),
	    KT_ETOOBIG);
	assert_int_equal(n, 77);
	idx[0] = kt_stored_hash_index(0, 70000);
	assert_int_equal(
	    kt_tiles_for_hashes(70000, idx, 1, got, KT_TILE_PLAN_MAX, &n),
	    KT_EINVAL);
	assert_int_equal(
	    kt_tiles_for_hashes(70000, NULL, 1, got, KT_TILE_PLAN_MAX, &n),
	    KT_EINVAL);
	assert_int_equal(n, 77);
	/* No hashes: just the partial tiles that give the root. */
	assert_int_equal(
	    kt_tiles_for_hashes(70000, NULL, 0, got, KT_TILE_PLAN_MAX, &n),
	    KT_OK);
	assert_int_equal(n, 3);
	assert_int_equal(
	    kt_tiles_for_hashes(0, NULL, 0, got, KT_TILE_PLAN_MAX, &n), KT_OK);
	assert_int_equal(n, 0);
}

/* ------------------------------------------------------------------ */
/* The vector logs */

static void
test_tiles_verify_vector_logs(void **state)
{
	struct fixture *f = *state;

	for (int li = 0; li < NLOGS; li++) {
		const struct vlog *l = &f->log[li];
		struct disk_src src = { .dir = l->dir };
		struct kt_hash croot;
		uint64_t csize;

		/* The published checkpoint names the same size and root. */
		{
			char rel[256];

			snprintf(rel, sizeof(rel), "%s/checkpoint", l->dir);
			checkpoint_body(rel, &csize, &croot);
		}
		assert_int_equal(csize, l->size);
		assert_memory_equal(croot.b, l->root.b, KT_HASH_SIZE);

		assert_int_equal(
		    kt_tiles_verify(l->size, &l->root, disk_read, &src), KT_OK);
		/* Every tile and bundle file read exactly once. */
		assert_int_equal(src.nread,
		    json_array_size(json_object_get(l->j, "files")) - 1);
	}
}

static void
test_tiles_verify_detects_tampering(void **state)
{
	static const struct {
		int log;
		struct tamper tp[MAX_TAMPER];
		int rc;
	} cases[] = {
		/* Full level-0 tiles, checked only against their parent. */
		{ 0, { { "tile/0/000", TAMPER_FLIP, 0, NULL } }, KT_EVERIFY },
		{ 0, { { "tile/0/123", TAMPER_FLIP, 4000, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/0/272", TAMPER_FLIP, 8191, NULL } },
		    KT_EVERIFY },
		/* The full level-1 tile. */
		{ 0, { { "tile/1/000", TAMPER_FLIP, 100, NULL } }, KT_EVERIFY },
		{ 0, { { "tile/1/000", TAMPER_FLIP, 8191, NULL } },
		    KT_EVERIFY },
		/* The partial tiles, checked through the root. */
		{ 0, { { "tile/0/273.p/112", TAMPER_FLIP, 3583, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/1/001.p/17", TAMPER_FLIP, 0, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/2/000.p/1", TAMPER_FLIP, 31, NULL } },
		    KT_EVERIFY },
		/* Entry bundles: data bytes and length prefixes. */
		{ 0, { { "tile/entries/000", TAMPER_FLIP, 2, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/entries/200", TAMPER_FLIP, 100, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/entries/273.p/112", TAMPER_FLIP, 7, NULL } },
		    KT_EVERIFY },
		{ 0, { { "tile/entries/005", TAMPER_FLIP, 0, NULL } },
		    KT_EPARSE },
		{ 0, { { "tile/entries/005", TAMPER_TRUNCATE, 0, NULL } },
		    KT_EPARSE },
		{ 0, { { "tile/entries/005", TAMPER_EXTEND, 0, NULL } },
		    KT_EPARSE },
		/* Wrong lengths. */
		{ 0, { { "tile/0/005", TAMPER_TRUNCATE, 0, NULL } },
		    KT_EPARSE },
		{ 0, { { "tile/0/273.p/112", TAMPER_TRUNCATE, 0, NULL } },
		    KT_EPARSE },
		/* One byte more than the tile can hold fails the append. */
		{ 0, { { "tile/0/005", TAMPER_EXTEND, 0, NULL } }, KT_ETOOBIG },
		/* Another genuine tile in its place. */
		{ 0, { { "tile/0/001", TAMPER_SWAP, 0, "tile/0/002" } },
		    KT_EVERIFY },
		{ 0,
		    { { "tile/entries/001", TAMPER_SWAP, 0,
			"tile/entries/002" } },
		    KT_EVERIFY },
		/* A tile and its bundle swapped together still fail. */
		{ 0,
		    { { "tile/0/001", TAMPER_SWAP, 0, "tile/0/002" },
			{ "tile/entries/001", TAMPER_SWAP, 0,
			    "tile/entries/002" } },
		    KT_EVERIFY },
		/* A missing tile: the callback's error comes back. */
		{ 0, { { "tile/entries/100", TAMPER_MISSING, 0, NULL } },
		    KT_ENOTFOUND },
		{ 0, { { "tile/1/000", TAMPER_MISSING, 0, NULL } },
		    KT_ENOTFOUND },
		/* tiles-varlen: inside the 65535-byte entry 7, and others. */
		{ 1, { { "tile/entries/000", TAMPER_FLIP, 30000, NULL } },
		    KT_EVERIFY },
		{ 1, { { "tile/entries/001.p/44", TAMPER_FLIP, 500, NULL } },
		    KT_EVERIFY },
		{ 1, { { "tile/0/000", TAMPER_FLIP, 5000, NULL } },
		    KT_EVERIFY },
		{ 1, { { "tile/0/001.p/44", TAMPER_FLIP, 0, NULL } },
		    KT_EVERIFY },
		{ 1, { { "tile/1/000.p/1", TAMPER_FLIP, 16, NULL } },
		    KT_EVERIFY },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vlog *l = &f->log[cases[i].log];
		struct disk_src src = { .dir = l->dir };

		for (int k = 0; k < MAX_TAMPER; k++) {
			if (cases[i].tp[k].path != NULL)
				src.tamper[src.ntamper++] = cases[i].tp[k];
		}
		assert_int_equal(
		    kt_tiles_verify(l->size, &l->root, disk_read, &src),
		    cases[i].rc);
	}
}

static void
test_tiles_verify_rejects_wrong_root_and_size(void **state)
{
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct disk_src src = { .dir = l->dir };
	struct kt_hash empty, other;

	kt_empty_root(&empty);
	/* Size 0 reads nothing and needs the empty-tree root. */
	assert_int_equal(kt_tiles_verify(0, &empty, disk_read, &src), KT_OK);
	assert_int_equal(src.nread, 0);
	assert_int_equal(
	    kt_tiles_verify(0, &l->root, disk_read, &src), KT_EVERIFY);
	/* The right tiles with somebody else's root. */
	other = l->root;
	other.b[31] ^= 0x80;
	assert_int_equal(
	    kt_tiles_verify(l->size, &other, disk_read, &src), KT_EVERIFY);
	assert_int_equal(
	    kt_tiles_verify(l->size, &f->log[1].root, disk_read, &src),
	    KT_EVERIFY);
	/* A size the tiles do not describe: its partial tiles are absent. */
	assert_int_equal(
	    kt_tiles_verify(l->size - 1, &l->root, disk_read, &src),
	    KT_ENOTFOUND);
	assert_int_equal(
	    kt_tiles_verify(KT_SIZE_MAX, &l->root, disk_read, &src), KT_EINVAL);
	assert_int_equal(
	    kt_tiles_verify(l->size, NULL, disk_read, &src), KT_EINVAL);
	assert_int_equal(
	    kt_tiles_verify(l->size, &l->root, NULL, &src), KT_EINVAL);
}

static void
test_tiles_verify_synthetic_sizes(void **state)
{
	static const uint64_t big[] = { 1023, 1024, 1025, 4096, 65535, 65536,
		65537, 65791, 65792, 69999 };
	struct fixture *f = *state;
	struct mem_src src = { &f->log[0], 0, f->entry, 0 };
	struct kt_hash root;

	for (uint64_t size = 0; size < 600 + sizeof(big) / sizeof(big[0]);
	     size++) {
		src.size = size < 600 ? size : big[size - 600];
		assert_int_equal(
		    kt_memtree_root(f->log[0].tree, src.size, &root), KT_OK);
		assert_int_equal(
		    kt_tiles_verify(src.size, &root, mem_read, &src), KT_OK);
		/* The root of a neighbouring size never fits. */
		if (src.size > 0) {
			assert_int_equal(kt_memtree_root(f->log[0].tree,
					     src.size - 1, &root),
			    KT_OK);
			assert_int_equal(
			    kt_tiles_verify(src.size, &root, mem_read, &src),
			    KT_EVERIFY);
		}
	}
}

static void
test_tile_read_data_rebuilds_vector_files(void **state)
{
	struct fixture *f = *state;
	uint8_t *entry = f->entry;

	for (int li = 0; li < NLOGS; li++) {
		const struct vlog *l = &f->log[li];
		json_t *v;
		size_t i, ntiles = 0, nbundles = 0;
		uint64_t want_tiles = 0;

		json_array_foreach(json_object_get(l->j, "files"), i, v)
		{
			const char *kind = tu_str(v, "kind");
			const char *path = tu_str(v, "path");
			struct kt_tile t, parsed;
			struct kt_buf b;
			uint8_t *disk;
			size_t len;
			char hex[65], buf[KT_TILE_PATH_MAX];

			if (strcmp(kind, "checkpoint") == 0)
				continue;
			/* Entry bundles have no "level" in the list. */
			if (strcmp(kind, "entries") == 0)
				t.level = KT_TILE_ENTRIES;
			else
				t.level = (int)tu_u64(v, "level");
			t.index = tu_u64(v, "index");
			t.width = (unsigned)tu_u64(v, "width");
			/* The listed path is the one we would write. */
			assert_string_equal(path_of(&t, buf), path);
			assert_int_equal(
			    kt_tile_parse(path, strlen(path), &parsed), KT_OK);
			assert_int_equal(parsed.level, t.level);
			assert_int_equal(parsed.index, t.index);
			assert_int_equal(parsed.width, t.width);
			/* Each listed tile is one the tree publishes. */
			assert_true(kt_tile_in_tree(&t, l->size));
			assert_true(t.width == KT_TILE_WIDTH ||
			    t.index == kt_tile_full_count(l->size, t.level));

			kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
			if (strcmp(kind, "tile") == 0) {
				assert_true(t.level >= 0);
				assert_int_equal(
				    kt_tile_read_data(l->size, &t,
					kt_memtree_read, l->tree, &b),
				    KT_OK);
				ntiles++;
			} else {
				assert_string_equal(kind, "entries");
				assert_int_equal(t.level, KT_TILE_ENTRIES);
				for (unsigned k = 0; k < t.width; k++) {
					size_t n = log_entry(l,
					    t.index * KT_TILE_WIDTH + k, entry);

					assert_int_equal(kt_entry_bundle_append(
							     &b, entry, n),
					    KT_OK);
				}
				nbundles++;
			}
			assert_int_equal(b.len, tu_u64(v, "bytes"));
			sha256_hex(b.p, b.len, hex);
			assert_string_equal(hex, tu_str(v, "sha256"));
			disk = read_log_file(l->dir, path, &len);
			assert_non_null(disk);
			assert_int_equal(len, b.len);
			assert_memory_equal(disk, b.p, len);
			free(disk);
			kt_buf_free(&b);
		}
		/* Nothing the tree publishes is missing from the list. */
		for (unsigned lv = 0; lv < kt_tile_levels(l->size); lv++)
			want_tiles += kt_tile_full_count(l->size, (int)lv) +
			    (kt_tile_partial_width(l->size, (int)lv) != 0);
		assert_int_equal(ntiles, want_tiles);
		assert_int_equal(nbundles,
		    kt_tile_full_count(l->size, KT_TILE_ENTRIES) +
			(kt_tile_partial_width(l->size, KT_TILE_ENTRIES) != 0));
	}
}

/* A kt_hash_reader_fn that always fails, to check errors pass through. */
static int
failing_reader(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	(void)ctx;
	(void)indexes;
	(void)n;
	(void)out;
	return KT_EIO;
}

static void
test_tile_read_data_errors(void **state)
{
	static const struct {
		struct kt_tile t;
		uint64_t size;
		int rc;
	} cases[] = {
		{ { KT_TILE_ENTRIES, 0, 256 }, 70000, KT_EINVAL },
		{ { 0, 0, 0 }, 70000, KT_EINVAL },
		{ { 0, 0, 257 }, 70000, KT_EINVAL },
		{ { 64, 0, 1 }, 70000, KT_EINVAL },
		{ { 0, 0, 1 }, KT_SIZE_MAX, KT_EINVAL },
		{ { 0, 273, 113 }, 70000, KT_ENOTFOUND },
		{ { 0, 273, 256 }, 70000, KT_ENOTFOUND },
		{ { 1, 1, 18 }, 70000, KT_ENOTFOUND },
		{ { 3, 0, 1 }, 70000, KT_ENOTFOUND },
		{ { 0, 0, 1 }, 0, KT_ENOTFOUND },
	};
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct kt_buf b, full;
	struct kt_tile t;

	kt_buf_init(&b, KT_TILE_DATA_MAX);
	assert_int_equal(kt_buf_append(&b, "abc", 3), KT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kt_tile_read_data(cases[i].size, &cases[i].t,
				     kt_memtree_read, l->tree, &b),
		    cases[i].rc);
		assert_int_equal(b.len, 3);
	}
	/* The reader's error comes back and out is left as it was. */
	t = (struct kt_tile){ 0, 0, 256 };
	assert_int_equal(
	    kt_tile_read_data(l->size, &t, failing_reader, NULL, &b), KT_EIO);
	assert_int_equal(b.len, 3);
	/* Past the buffer's maximum: nothing appended. */
	assert_int_equal(
	    kt_tile_read_data(l->size, &t, kt_memtree_read, l->tree, &b),
	    KT_ETOOBIG);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.p, "abc", 3);
	assert_int_equal(
	    kt_tile_read_data(l->size, &t, NULL, NULL, &b), KT_EINVAL);
	assert_int_equal(
	    kt_tile_read_data(l->size, NULL, kt_memtree_read, l->tree, &b),
	    KT_EINVAL);
	kt_buf_free(&b);

	/* Older partial tiles are prefixes of the full tile. */
	kt_buf_init(&full, KT_TILE_DATA_MAX);
	t = (struct kt_tile){ 1, 0, 256 };
	assert_int_equal(
	    kt_tile_read_data(l->size, &t, kt_memtree_read, l->tree, &full),
	    KT_OK);
	for (unsigned w = 1; w < KT_TILE_WIDTH; w += 17) {
		kt_buf_init(&b, KT_TILE_DATA_MAX);
		t.width = w;
		assert_int_equal(kt_tile_read_data(
				     l->size, &t, kt_memtree_read, l->tree, &b),
		    KT_OK);
		assert_int_equal(b.len, (size_t)w * KT_HASH_SIZE);
		assert_memory_equal(b.p, full.p, b.len);
		kt_buf_free(&b);
	}
	kt_buf_free(&full);
}

static void
test_consistency_check_history(void **state)
{
	struct fixture *f = *state;
	size_t total = 0;

	for (int li = 0; li < NLOGS; li++) {
		const struct vlog *l = &f->log[li];
		json_t *h;
		size_t i;

		json_array_foreach(json_object_get(l->j, "history"), i, h)
		{
			struct kt_hash want[KT_PROOF_MAX], got[KT_PROOF_MAX];
			struct kt_hash root, froot, treeroot;
			uint64_t old = tu_u64(h, "size"), fsize;
			size_t nw, ng;
			struct disk_src src = { .dir = l->dir };
			struct kt_tile_hash_reader hr = { l->size, l->root,
				disk_read, &src };

			tu_hash_hex(tu_str(h, "root_hex"), &root);
			checkpoint_body(tu_str(h, "file"), &fsize, &froot);
			assert_int_equal(fsize, old);
			assert_memory_equal(froot.b, root.b, KT_HASH_SIZE);
			assert_int_equal(
			    kt_memtree_root(l->tree, old, &treeroot), KT_OK);
			assert_memory_equal(treeroot.b, root.b, KT_HASH_SIZE);
			nw = hex_hashes(
			    json_object_get(h, "consistency_proof_to_current"),
			    want, KT_PROOF_MAX);
			if (old == 0) {
				/* No proof is defined from the empty tree. */
				assert_int_equal(nw, 0);
				continue;
			}
			assert_int_equal(kt_consistency_check(want, nw, old,
					     &root, l->size, &l->root),
			    KT_OK);
			/* The same unique proof from the rebuilt tree ... */
			assert_int_equal(
			    kt_prove_consistency(l->size, old, kt_memtree_read,
				l->tree, got, &ng),
			    KT_OK);
			assert_int_equal(ng, nw);
			if (nw > 0)
				assert_memory_equal(
				    got, want, nw * sizeof(want[0]));
			/* ... and from the untrusted tiles on disk. */
			assert_int_equal(kt_prove_consistency(l->size, old,
					     kt_tile_hash_read, &hr, got, &ng),
			    KT_OK);
			assert_int_equal(ng, nw);
			if (nw > 0)
				assert_memory_equal(
				    got, want, nw * sizeof(want[0]));
			total++;
		}
	}
	assert_true(total >= 14);
}

static void
test_inclusion_check_samples(void **state)
{
	struct fixture *f = *state;
	size_t total = 0;

	for (int li = 0; li < NLOGS; li++) {
		const struct vlog *l = &f->log[li];
		json_t *s;
		size_t i;

		json_array_foreach(
		    json_object_get(l->j, "inclusion_samples"), i, s)
		{
			struct kt_hash want[KT_PROOF_MAX], got[KT_PROOF_MAX];
			struct kt_hash root, leaf, mine;
			uint64_t index = tu_u64(s, "index");
			uint64_t size = tu_u64(s, "size");
			size_t nw, ng, n;
			struct disk_src src = { .dir = l->dir };
			struct kt_tile_hash_reader hr = { l->size, l->root,
				disk_read, &src };

			tu_hash_hex(tu_str(s, "root"), &root);
			tu_hash_hex(tu_str(s, "leaf_hash"), &leaf);
			assert_int_equal(size, l->size);
			assert_memory_equal(root.b, l->root.b, KT_HASH_SIZE);
			n = log_entry(l, index, f->entry);
			kt_leaf_hash(f->entry, n, &mine);
			assert_memory_equal(mine.b, leaf.b, KT_HASH_SIZE);
			nw = hex_hashes(
			    json_object_get(s, "proof"), want, KT_PROOF_MAX);
			assert_int_equal(kt_inclusion_check(want, nw, size,
					     &root, index, &leaf),
			    KT_OK);
			assert_int_equal(kt_prove_inclusion(size, index,
					     kt_tile_hash_read, &hr, got, &ng),
			    KT_OK);
			assert_int_equal(ng, nw);
			if (nw > 0)
				assert_memory_equal(
				    got, want, nw * sizeof(want[0]));
			/* The leaf hash itself, read through the tiles. */
			{
				uint64_t idx = kt_stored_hash_index(0, index);

				assert_int_equal(
				    kt_tile_hash_read(&hr, &idx, 1, &mine),
				    KT_OK);
				assert_memory_equal(
				    mine.b, leaf.b, KT_HASH_SIZE);
			}
			total++;
		}
	}
	assert_true(total >= 16);
}

static void
test_consistency_check_negative_history(void **state)
{
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct kt_hash proof[KT_PROOF_MAX], root, honest;
	uint64_t size;
	size_t np;
	json_t *v;
	size_t i, seen = 0;

	json_array_foreach(json_object_get(l->j, "negative_history"), i, v)
	{
		const char *file = tu_str(v, "file");

		checkpoint_body(file, &size, &root);
		if (strstr(file, "fork") != NULL) {
			/* A fork: the proof from the real tree fails. */
			assert_int_equal(size, 1000);
			assert_int_equal(
			    kt_memtree_root(l->tree, size, &honest), KT_OK);
			assert_memory_not_equal(root.b, honest.b, KT_HASH_SIZE);
			assert_int_equal(
			    kt_prove_consistency(l->size, size, kt_memtree_read,
				l->tree, proof, &np),
			    KT_OK);
			assert_int_equal(kt_consistency_check(proof, np, size,
					     &honest, l->size, &l->root),
			    KT_OK);
			assert_int_equal(kt_consistency_check(proof, np, size,
					     &root, l->size, &l->root),
			    KT_EVERIFY);
			seen++;
		} else if (strstr(file, "future") != NULL) {
			/* Newer than the published tree: a rollback. */
			assert_int_equal(size, 70001);
			assert_true(size > l->size);
			assert_int_equal(
			    kt_prove_consistency(l->size, size, kt_memtree_read,
				l->tree, proof, &np),
			    KT_EINVAL);
			seen++;
		} else {
			/*
			 * Other key, other origin: the content is honest,
			 * so only the signature and origin checks (another
			 * module) can refuse them.
			 */
			assert_int_equal(size, 1000);
			assert_int_equal(
			    kt_memtree_root(l->tree, size, &honest), KT_OK);
			assert_memory_equal(root.b, honest.b, KT_HASH_SIZE);
		}
	}
	assert_int_equal(seen, 2);
}

static void
test_tile_hash_read_matches_memtree(void **state)
{
	static const uint64_t sizes[] = { 1, 2, 3, 255, 256, 257, 300, 511, 512,
		513, 65535, 65536, 65537, 69999, 70000 };
	struct fixture *f = *state;
	struct kt_memtree *tree = f->log[0].tree;

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint64_t size = sizes[si];
		struct mem_src src = { &f->log[0], size, f->entry, 0 };
		struct kt_tile_hash_reader hr = { size, { { 0 } }, mem_read,
			&src };
		uint64_t picks[] = { 0, 1, size / 3, size / 2, size - 2,
			size - 1 };

		assert_int_equal(kt_memtree_root(tree, size, &hr.root), KT_OK);
		for (size_t k = 0; k < sizeof(picks) / sizeof(picks[0]); k++) {
			struct kt_hash a[KT_PROOF_MAX], b[KT_PROOF_MAX];
			size_t na, nb;
			uint64_t x = picks[k] < size ? picks[k] : 0;

			assert_int_equal(kt_prove_inclusion(size, x,
					     kt_memtree_read, tree, a, &na),
			    KT_OK);
			assert_int_equal(kt_prove_inclusion(size, x,
					     kt_tile_hash_read, &hr, b, &nb),
			    KT_OK);
			assert_int_equal(na, nb);
			if (na > 0)
				assert_memory_equal(a, b, na * sizeof(a[0]));
			if (x == 0)
				continue;
			assert_int_equal(kt_prove_consistency(size, x,
					     kt_memtree_read, tree, a, &na),
			    KT_OK);
			assert_int_equal(kt_prove_consistency(size, x,
					     kt_tile_hash_read, &hr, b, &nb),
			    KT_OK);
			assert_int_equal(na, nb);
			if (na > 0)
				assert_memory_equal(a, b, na * sizeof(a[0]));
		}
		/* The tree hash, too. */
		{
			struct kt_hash th;

			assert_int_equal(
			    kt_tree_hash(size, kt_tile_hash_read, &hr, &th),
			    KT_OK);
			assert_memory_equal(th.b, hr.root.b, KT_HASH_SIZE);
		}
	}
	/* Every stored hash of a small tree, read through its tiles. */
	{
		uint64_t size = 1100, count = kt_stored_hash_count(size);
		struct mem_src src = { &f->log[0], size, f->entry, 0 };
		struct kt_tile_hash_reader hr = { size, { { 0 } }, mem_read,
			&src };

		assert_int_equal(kt_memtree_root(tree, size, &hr.root), KT_OK);
		for (uint64_t x = 0; x < count; x += KT_READ_MAX) {
			uint64_t idx[KT_READ_MAX];
			struct kt_hash a[KT_READ_MAX], b[KT_READ_MAX];
			size_t n =
			    count - x < KT_READ_MAX ? count - x : KT_READ_MAX;

			for (size_t k = 0; k < n; k++)
				idx[k] = x + k;
			assert_int_equal(
			    kt_memtree_read(tree, idx, n, a), KT_OK);
			assert_int_equal(
			    kt_tile_hash_read(&hr, idx, n, b), KT_OK);
			assert_memory_equal(a, b, n * sizeof(a[0]));
		}
	}
}

static void
test_tile_hash_read_rejects_bad_tiles(void **state)
{
	static const struct {
		const char *path;
		enum tamper_mode mode;
		uint64_t leaf;
		int rc;
	} cases[] = {
		{ "tile/1/000", TAMPER_FLIP, 0, KT_EVERIFY },
		{ "tile/0/000", TAMPER_FLIP, 0, KT_EVERIFY },
		{ "tile/0/100", TAMPER_FLIP, 25603, KT_EVERIFY },
		/* Tiles the proof does not touch do not matter. */
		{ "tile/0/100", TAMPER_FLIP, 0, KT_OK },
		{ "tile/0/273.p/112", TAMPER_FLIP, 0, KT_EVERIFY },
		{ "tile/1/001.p/17", TAMPER_FLIP, 0, KT_EVERIFY },
		{ "tile/2/000.p/1", TAMPER_FLIP, 69999, KT_EVERIFY },
		{ "tile/0/000", TAMPER_TRUNCATE, 1, KT_EPARSE },
		{ "tile/0/001", TAMPER_SWAP, 300, KT_EVERIFY },
		{ "tile/1/000", TAMPER_MISSING, 0, KT_ENOTFOUND },
	};
	struct fixture *f = *state;
	const struct vlog *l = &f->log[0];
	struct kt_hash out[2], proof[KT_PROOF_MAX];
	uint64_t idx[KT_READ_MAX + 1] = { 0 };
	size_t np;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct disk_src src = { .dir = l->dir };
		struct kt_tile_hash_reader hr = { l->size, l->root, disk_read,
			&src };

		src.tamper[0] = (struct tamper){ cases[i].path, cases[i].mode,
			17, "tile/0/002" };
		src.ntamper = 1;
		assert_int_equal(kt_prove_inclusion(l->size, cases[i].leaf,
				     kt_tile_hash_read, &hr, proof, &np),
		    cases[i].rc);
	}
	{
		struct disk_src src = { .dir = l->dir };
		struct kt_tile_hash_reader hr = { l->size, l->root, disk_read,
			&src };

		/* Nothing is written on failure. */
		memset(out, 0xaa, sizeof(out));
		idx[0] = kt_stored_hash_index(0, 5);
		idx[1] = kt_stored_hash_index(0, l->size);
		assert_int_equal(
		    kt_tile_hash_read(&hr, idx, 2, out), KT_EINVAL);
		assert_int_equal(
		    kt_tile_hash_read(&hr, idx, KT_READ_MAX + 1, out),
		    KT_EINVAL);
		assert_int_equal(out[0].b[0], 0xaa);
		hr.root.b[0] ^= 1;
		assert_int_equal(
		    kt_tile_hash_read(&hr, idx, 1, out), KT_EVERIFY);
		assert_int_equal(out[0].b[0], 0xaa);
		/*
		 * The tiles of 70000 hold those of 65536 (no partial tiles
		 * but 2/000.p/1): fine with its root, not with another.
		 */
		hr.root = l->root;
		hr.size = 65536;
		assert_int_equal(
		    kt_tile_hash_read(&hr, idx, 1, out), KT_EVERIFY);
		assert_int_equal(out[0].b[0], 0xaa);
		assert_int_equal(
		    kt_memtree_root(l->tree, hr.size, &hr.root), KT_OK);
		assert_int_equal(kt_tile_hash_read(&hr, idx, 1, out), KT_OK);
		assert_int_equal(
		    kt_memtree_read(l->tree, idx, 1, &out[1]), KT_OK);
		assert_memory_equal(out[0].b, out[1].b, KT_HASH_SIZE);
		/* 69999 needs a partial tile the folder does not have. */
		hr.size = 69999;
		assert_int_equal(
		    kt_tile_hash_read(&hr, idx, 1, out), KT_ENOTFOUND);
		assert_int_equal(
		    kt_tile_hash_read(NULL, idx, 1, out), KT_EINVAL);
		/* Nothing asked, nothing read. */
		src.nread = 0;
		assert_int_equal(kt_tile_hash_read(&hr, idx, 0, out), KT_OK);
		assert_int_equal(src.nread, 0);
	}
}

/* ------------------------------------------------------------------ */
/* Entry bundles */

struct bundle_case {
	const char *desc;
	const char *bytes;
	size_t len;
	unsigned count;
	int rc;
};

static void
test_entry_bundle_parse_table(void **state)
{
	static const struct bundle_case cases[] = {
		{ "one empty entry", "\x00\x00", 2, 1, KT_OK },
		{ "two entries",
		    "\x00\x01"
		    "a\x00\x02"
		    "bc",
		    7, 2, KT_OK },
		{ "three empty entries", "\x00\x00\x00\x00\x00\x00", 6, 3,
		    KT_OK },
		{ "empty input", "", 0, 1, KT_EPARSE },
		{ "half a length", "\x00", 1, 1, KT_EPARSE },
		{ "truncated entry",
		    "\x00\x02"
		    "a",
		    3, 1, KT_EPARSE },
		{ "length past the end",
		    "\xff\xff"
		    "abc",
		    5, 1, KT_EPARSE },
		{ "trailing byte", "\x00\x00\x00", 3, 1, KT_EPARSE },
		{ "trailing entry",
		    "\x00\x01"
		    "a\x00\x01"
		    "b",
		    6, 1, KT_EPARSE },
		{ "too few entries",
		    "\x00\x01"
		    "a",
		    3, 2, KT_EPARSE },
		{ "second entry truncated",
		    "\x00\x01"
		    "a\x00\x05"
		    "bc",
		    7, 2, KT_EPARSE },
		{ "count 0", "\x00\x00", 2, 0, KT_EINVAL },
		{ "count 257", "\x00\x00", 2, 257, KT_EINVAL },
		{ "count UINT_MAX", "\x00\x00", 2, 0xffffffffu, KT_EINVAL },
	};
	struct kt_bytes e[KT_TILE_WIDTH];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < KT_TILE_WIDTH; k++)
			e[k] = (struct kt_bytes){ NULL, 12345 };
		if (kt_entry_bundle_parse((const uint8_t *)cases[i].bytes,
			cases[i].len, cases[i].count, e) != cases[i].rc)
			fail_msg("%s: wrong result", cases[i].desc);
		if (cases[i].rc != KT_OK) {
			assert_int_equal(e[0].len, 12345);
			continue;
		}
		/* Views into the input; re-encoding gives the input back. */
		{
			struct kt_buf b;

			kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
			for (unsigned k = 0; k < cases[i].count; k++) {
				assert_true(
				    e[k].p >= (const uint8_t *)cases[i].bytes &&
				    e[k].p + e[k].len <=
					(const uint8_t *)cases[i].bytes +
					    cases[i].len);
				assert_int_equal(kt_entry_bundle_append(
						     &b, e[k].p, e[k].len),
				    KT_OK);
			}
			assert_int_equal(b.len, cases[i].len);
			assert_memory_equal(b.p, cases[i].bytes, b.len);
			kt_buf_free(&b);
		}
	}
	assert_int_equal(kt_entry_bundle_parse(NULL, 0, 1, e), KT_EPARSE);
	assert_int_equal(
	    kt_entry_bundle_parse((const uint8_t *)"\0\0", 2, 1, NULL),
	    KT_EINVAL);
}

static void
test_entry_bundle_append_limits(void **state)
{
	struct fixture *f = *state;
	struct kt_buf b;
	struct kt_bytes e[KT_TILE_WIDTH];
	uint8_t *big = f->entry;

	memset(big, 0x5a, ENTRY_BUF);
	/* The largest bundle: 256 entries of 65535 bytes, exactly full. */
	kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
	for (unsigned k = 0; k < KT_TILE_WIDTH; k++)
		assert_int_equal(
		    kt_entry_bundle_append(&b, big, KT_ENTRY_MAX), KT_OK);
	assert_int_equal(b.len, KT_ENTRY_BUNDLE_MAX);
	assert_int_equal(kt_entry_bundle_append(&b, big, 0), KT_ETOOBIG);
	assert_int_equal(b.len, KT_ENTRY_BUNDLE_MAX);
	assert_int_equal(
	    kt_entry_bundle_parse(b.p, b.len, KT_TILE_WIDTH, e), KT_OK);
	assert_int_equal(e[255].len, KT_ENTRY_MAX);
	assert_int_equal(
	    kt_entry_bundle_parse(b.p, b.len, KT_TILE_WIDTH - 1, e), KT_EPARSE);
	assert_int_equal(
	    kt_entry_bundle_parse(b.p, b.len - 1, KT_TILE_WIDTH, e), KT_EPARSE);
	kt_buf_free(&b);

	/* An entry one byte too long is refused; the buffer is unchanged. */
	kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
	assert_int_equal(kt_entry_bundle_append(&b, big, 3), KT_OK);
	assert_int_equal(
	    kt_entry_bundle_append(&b, big, KT_ENTRY_MAX + 1), KT_ETOOBIG);
	assert_int_equal(kt_entry_bundle_append(&b, big, SIZE_MAX), KT_ETOOBIG);
	assert_int_equal(b.len, 5);
	assert_int_equal(kt_entry_bundle_append(NULL, big, 1), KT_EINVAL);
	assert_int_equal(kt_entry_bundle_append(&b, NULL, 1), KT_EINVAL);
	assert_int_equal(kt_entry_bundle_append(&b, NULL, 0), KT_OK);
	assert_int_equal(b.len, 7);
	kt_buf_free(&b);

	/* A buffer maximum that fits the prefix but not the bytes. */
	kt_buf_init(&b, 10);
	assert_int_equal(kt_entry_bundle_append(&b, big, 8), KT_OK);
	assert_int_equal(kt_entry_bundle_append(&b, big, 0), KT_ETOOBIG);
	assert_int_equal(b.len, 10);
	kt_buf_free(&b);
	kt_buf_init(&b, 9);
	assert_int_equal(kt_entry_bundle_append(&b, big, 8), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	kt_buf_free(&b);
}

static void
test_entry_bundle_check_table(void **state)
{
	struct fixture *f = *state;
	const struct vlog *l = &f->log[1];
	struct kt_tile t = { 0, 1, 44 };
	struct kt_buf tile, bundle;
	uint8_t *copy;

	kt_buf_init(&tile, KT_TILE_DATA_MAX);
	kt_buf_init(&bundle, KT_ENTRY_BUNDLE_MAX);
	assert_int_equal(
	    kt_tile_read_data(l->size, &t, kt_memtree_read, l->tree, &tile),
	    KT_OK);
	for (unsigned k = 0; k < t.width; k++) {
		size_t n = log_entry(l, KT_TILE_WIDTH + k, f->entry);

		assert_int_equal(
		    kt_entry_bundle_append(&bundle, f->entry, n), KT_OK);
	}
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len, tile.p, tile.len),
	    KT_OK);
	/* One entry fewer than the tile has hashes, or one more. */
	assert_int_equal(kt_entry_bundle_check(bundle.p, bundle.len, tile.p,
			     tile.len - KT_HASH_SIZE),
	    KT_EPARSE);
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len - 1, tile.p, tile.len),
	    KT_EPARSE);
	/* Bad tile lengths are the caller's mistake. */
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len, tile.p, tile.len - 1),
	    KT_EINVAL);
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len, tile.p, 0), KT_EINVAL);
	assert_int_equal(kt_entry_bundle_check(bundle.p, bundle.len, tile.p,
			     KT_TILE_DATA_MAX + KT_HASH_SIZE),
	    KT_EINVAL);
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len, NULL, tile.len),
	    KT_EINVAL);
	/* Any changed entry byte or hash byte is caught. */
	copy = malloc(bundle.len);
	assert_non_null(copy);
	for (size_t off = 2; off < bundle.len; off += 97) {
		memcpy(copy, bundle.p, bundle.len);
		copy[off] ^= 0x40;
		assert_int_not_equal(
		    kt_entry_bundle_check(copy, bundle.len, tile.p, tile.len),
		    KT_OK);
	}
	tile.p[tile.len - 1] ^= 1;
	assert_int_equal(
	    kt_entry_bundle_check(bundle.p, bundle.len, tile.p, tile.len),
	    KT_EVERIFY);
	free(copy);
	kt_buf_free(&tile);
	kt_buf_free(&bundle);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tile_format_vectors),
		cmocka_unit_test(test_tile_parse_vectors),
		cmocka_unit_test(test_tile_parse_rejects_invalid_vectors),
		cmocka_unit_test(test_tile_parse_rejects_own_table),
		cmocka_unit_test(test_tile_parse_round_trips_limits),
		cmocka_unit_test(test_tile_format_rejects_bad_tiles),
		cmocka_unit_test(test_tile_levels_table),
		cmocka_unit_test(test_tile_levels_vector_logs),
		cmocka_unit_test(test_tile_in_tree_table),
		cmocka_unit_test(test_tile_for_leaf_table),
		cmocka_unit_test(test_tile_for_stored_hash_table),
		cmocka_unit_test(test_tiles_for_inclusion_lists_tiles),
		cmocka_unit_test(test_tiles_for_consistency_lists_tiles),
		cmocka_unit_test(test_tiles_for_hashes_errors),
		cmocka_unit_test(test_tiles_verify_vector_logs),
		cmocka_unit_test(test_tiles_verify_detects_tampering),
		cmocka_unit_test(test_tiles_verify_rejects_wrong_root_and_size),
		cmocka_unit_test(test_tiles_verify_synthetic_sizes),
		cmocka_unit_test(test_tile_read_data_rebuilds_vector_files),
		cmocka_unit_test(test_tile_read_data_errors),
		cmocka_unit_test(test_consistency_check_history),
		cmocka_unit_test(test_inclusion_check_samples),
		cmocka_unit_test(test_consistency_check_negative_history),
		cmocka_unit_test(test_tile_hash_read_matches_memtree),
		cmocka_unit_test(test_tile_hash_read_rejects_bad_tiles),
		cmocka_unit_test(test_entry_bundle_parse_table),
		cmocka_unit_test(test_entry_bundle_append_limits),
		cmocka_unit_test(test_entry_bundle_check_table),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
