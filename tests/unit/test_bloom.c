/*
 * The index tables' Bloom filters: never a false "no", few false
 * "maybe"s, keys of one kind not confused with another's, and a filter
 * that is not well formed answers "maybe" (the table is read).
 */
#include <string.h>

#include "bloom.h"
#include "keytrail/merkle.h"
#include "testutil.h"

/* A 32-byte key like a leaf hash: SHA-256 of the number. */
static void
key_of(uint64_t i, uint8_t k[32])
{
	uint8_t b[8];
	struct kt_hash h;

	kt_put_u64be(b, i);
	kt_leaf_hash(b, sizeof(b), &h);
	memcpy(k, h.b, 32);
}

static void
test_bloom_no_false_negatives_few_false_positives(void **state)
{
	const uint64_t n = 50000;
	struct bloom b;
	uint8_t k[32];
	char d[32];
	uint64_t fp = 0, fpd = 0;

	(void)state;
	assert_int_equal(bloom_init(&b, n), KT_OK);
	for (uint64_t i = 0; i < n; i++) {
		key_of(i, k);
		bloom_add(&b, 3, k, sizeof(k));
		/* Short, similar keys, as digests in hex may be. */
		snprintf(d, sizeof(d), "d%llu", (unsigned long long)i);
		bloom_add(&b, 5, (const uint8_t *)d, strlen(d));
	}
	for (uint64_t i = 0; i < n; i++) {
		key_of(i, k);
		assert_int_equal(
		    bloom_maybe(b.bits, b.len, 3, k, sizeof(k)), 1);
		snprintf(d, sizeof(d), "d%llu", (unsigned long long)i);
		assert_int_equal(bloom_maybe(b.bits, b.len, 5,
				     (const uint8_t *)d, strlen(d)),
		    1);
	}
	for (uint64_t i = n; i < 3 * n; i++) {
		key_of(i, k);
		fp += (uint64_t)bloom_maybe(b.bits, b.len, 3, k, sizeof(k));
		snprintf(d, sizeof(d), "d%llu", (unsigned long long)i);
		fpd += (uint64_t)bloom_maybe(
		    b.bits, b.len, 5, (const uint8_t *)d, strlen(d));
	}
	/* About 0.012% expected with 48 bits an entry and two keys each. */
	print_message("false positives: %llu and %llu of %llu\n",
	    (unsigned long long)fp, (unsigned long long)fpd,
	    (unsigned long long)(2 * n));
	assert_true(fp < 2 * n / 2000);
	assert_true(fpd < 2 * n / 2000);
	/* A key of the other kind, with the same bytes: mostly "no". */
	fp = 0;
	for (uint64_t i = 0; i < n; i++) {
		key_of(i, k);
		fp += (uint64_t)bloom_maybe(b.bits, b.len, 5, k, sizeof(k));
	}
	assert_true(fp < n / 20);
	bloom_free(&b);
}

/*
 * Adds held back and settled leave exactly the filter that adds made at
 * once, whatever the count against the adds held back; before settling,
 * at most the last BLOOM_SOON adds are missing.
 */
static void
test_bloom_soon_is_add(void **state)
{
	static const uint64_t counts[] = { 0, 1, BLOOM_SOON - 1, BLOOM_SOON,
		BLOOM_SOON + 1, 3 * BLOOM_SOON + 5, 20000 };
	uint8_t k[32];

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		const uint64_t n = counts[c];
		struct bloom now, soon;
		uint64_t missing = 0;

		assert_int_equal(bloom_init(&now, n + 1), KT_OK);
		assert_int_equal(bloom_init(&soon, n + 1), KT_OK);
		for (uint64_t i = 0; i < n; i++) {
			key_of(i, k);
			bloom_add(&now, 3, k, sizeof(k));
			bloom_add_soon(&soon, 3, k, sizeof(k));
		}
		for (uint64_t i = 0; i < n; i++) {
			key_of(i, k);
			missing += (uint64_t)!bloom_maybe(
			    soon.bits, soon.len, 3, k, sizeof(k));
		}
		assert_true(missing <= BLOOM_SOON);
		bloom_settle(&soon);
		assert_int_equal(soon.len, now.len);
		assert_memory_equal(soon.bits, now.bits, now.len);
		/* Settling again, or adding on, changes nothing else. */
		bloom_settle(&soon);
		key_of(n, k);
		bloom_add(&now, 3, k, sizeof(k));
		bloom_add_soon(&soon, 3, k, sizeof(k));
		bloom_settle(&soon);
		assert_memory_equal(soon.bits, now.bits, now.len);
		bloom_free(&now);
		bloom_free(&soon);
	}
}

static void
test_bloom_malformed_means_maybe(void **state)
{
	struct bloom b;
	uint8_t k[32], copy[BLOOM_HEADER + 2 * BLOOM_BLOCK];
	uint64_t no = 0;

	(void)state;
	assert_int_equal(bloom_init(&b, 1), KT_OK);
	assert_int_equal(b.len, BLOOM_HEADER + BLOOM_BLOCK);
	/* An empty filter says "no" to (almost) everything... */
	for (uint64_t i = 0; i < 100; i++) {
		key_of(i, k);
		no += !bloom_maybe(b.bits, b.len, 3, k, sizeof(k));
	}
	assert_int_equal(no, 100);
	key_of(7, k);
	/* ...but one that is not well formed says "maybe". */
	assert_int_equal(bloom_maybe(NULL, 0, 3, k, 32), 1);
	assert_int_equal(bloom_maybe(b.bits, BLOOM_HEADER - 1, 3, k, 32), 1);
	assert_int_equal(bloom_maybe(b.bits, b.len - 1, 3, k, 32), 1);
	memcpy(copy, b.bits, b.len);
	copy[0] = 2; /* unknown format */
	assert_int_equal(bloom_maybe(copy, b.len, 3, k, 32), 1);
	copy[0] = b.bits[0];
	kt_put_u32be(copy + 4, 2); /* says two blocks, holds one */
	assert_int_equal(bloom_maybe(copy, b.len, 3, k, 32), 1);
	kt_put_u32be(copy + 4, 0);
	assert_int_equal(bloom_maybe(copy, b.len, 3, k, 32), 1);
	bloom_free(&b);
	/* Sizes that cannot be allocated are refused, not wrapped. */
	assert_int_equal(bloom_init(&b, UINT64_MAX / 4), KT_ENOMEM);
	assert_null(b.bits);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_bloom_no_false_negatives_few_false_positives),
		cmocka_unit_test(test_bloom_soon_is_add),
		cmocka_unit_test(test_bloom_malformed_means_maybe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
