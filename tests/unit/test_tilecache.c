/*
 * The tile cache: hits and misses, LRU eviction under the byte budget,
 * and deletion that keeps every probe chain of the hash table intact.
 */
#include <string.h>

#include "testutil.h"
#include "tilecache.h"

static struct tilecache_key
key(int level, uint64_t index, unsigned width, int gzip)
{
	struct tilecache_key k;

	memset(&k, 0, sizeof(k));
	k.level = level;
	k.index = index;
	k.width = width;
	k.gzip = gzip;
	return k;
}

static void
test_tilecache_get_put(void **state)
{
	struct tilecache *c;
	struct tilecache_key k = key(0, 7, 256, 0), g = key(0, 7, 256, 1);
	struct blob *b = blob_new((const uint8_t *)"abc", 3), *got;
	struct tilecache_stats st;

	(void)state;
	assert_int_equal(tilecache_new(1 << 20, &c), KT_OK);
	assert_null(tilecache_get(c, &k));
	tilecache_put(c, &k, b);
	blob_release(b);
	assert_non_null(got = tilecache_get(c, &k));
	assert_int_equal(got->len, 3);
	assert_memory_equal(got->data, "abc", 3);
	blob_release(got);
	/* The gzip variant is a different entry. */
	assert_null(tilecache_get(c, &g));
	tilecache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 3);
	tilecache_free(c);
}

static void
test_tilecache_evicts_least_recent(void **state)
{
	enum {
		N = 3000
	};
	static uint8_t data[1000];
	struct tilecache *c;
	struct tilecache_stats st;

	(void)state;
	/* Room for about 100 blobs of 1000 bytes. */
	assert_int_equal(tilecache_new(100 * 1000, &c), KT_OK);
	for (uint64_t i = 0; i < N; i++) {
		struct tilecache_key k = key((int)(i % 3) - 1, i, 256, 0);
		struct blob *b = blob_new(data, sizeof(data));

		assert_non_null(b);
		tilecache_put(c, &k, b);
		blob_release(b);
		/* Keep entry 0 hot: it must survive every eviction. */
		k = key(-1, 0, 256, 0);
		b = tilecache_get(c, &k);
		assert_non_null(b);
		blob_release(b);
		tilecache_stats(c, &st);
		assert_true(st.bytes <= 100 * 1000);
	}
	/* The most recent ones are there, the old ones gone. */
	for (uint64_t i = N - 50; i < N; i++) {
		struct tilecache_key k = key((int)(i % 3) - 1, i, 256, 0);
		struct blob *b = tilecache_get(c, &k);

		assert_non_null(b);
		blob_release(b);
	}
	for (uint64_t i = 1; i < N - 200; i++) {
		struct tilecache_key k = key((int)(i % 3) - 1, i, 256, 0);

		assert_null(tilecache_get(c, &k));
	}
	tilecache_free(c);
}

static void
test_tilecache_disabled_and_oversized(void **state)
{
	struct tilecache *c;
	struct tilecache_key k = key(0, 1, 256, 0);
	static uint8_t big[4096];
	struct blob *b = blob_new(big, sizeof(big));

	(void)state;
	assert_int_equal(tilecache_new(0, &c), KT_OK);
	tilecache_put(c, &k, b);
	assert_null(tilecache_get(c, &k));
	tilecache_free(c);
	/* A blob over a quarter of the budget is not cached. */
	assert_int_equal(tilecache_new(8192, &c), KT_OK);
	tilecache_put(c, &k, b);
	assert_null(tilecache_get(c, &k));
	tilecache_free(c);
	blob_release(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tilecache_get_put),
		cmocka_unit_test(test_tilecache_evicts_least_recent),
		cmocka_unit_test(test_tilecache_disabled_and_oversized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
