/*
 * Canonical entries: the encoder's output is the one accepted spelling;
 * reordered keys, spaces, floats, booleans, escapes and duplicates are
 * refused.
 */
#include <string.h>

#include "keytrail/entry.h"
#include "testutil.h"

static void
test_entry_encode_sorted_compact(void **state)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:I}, s:[s,s]}", "kind",
	    "signature", "digest", "ab", "artifact", "size", "x", "name", 7,
	    "approvers", "bob", "alice");
	struct kt_buf b;
	json_t *back = NULL;
	const char *want = "{\"approvers\":[\"bob\",\"alice\"],\"artifact\":"
			   "{\"name\":7,\"size\":\"x\"},\"digest\":\"ab\","
			   "\"kind\":\"signature\"}";

	(void)state;
	kt_buf_init(&b, KT_ENTRY_MAX);
	assert_int_equal(kt_entry_encode(o, &b), KT_OK);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	assert_int_equal(kt_entry_parse(b.p, b.len, &back), KT_OK);
	assert_true(json_equal(o, back));
	json_decref(back);
	json_decref(o);
	kt_buf_free(&b);
}

static void
test_entry_parse_rejects_noncanonical(void **state)
{
	static const char *bad[] = {
		"{\"b\":\"1\",\"kind\":\"x\"}x",   /* trailing garbage */
		"{\"kind\":\"x\",\"b\":\"1\"}",	   /* unsorted */
		"{\"kind\": \"x\"}",		   /* space */
		" {\"kind\":\"x\"}",		   /* leading space */
		"{\"kind\":\"x\"}\n",		   /* trailing newline */
		"{\"a\":1.5,\"kind\":\"x\"}",	   /* float */
		"{\"a\":true,\"kind\":\"x\"}",	   /* boolean */
		"{\"a\":null,\"kind\":\"x\"}",	   /* null */
		"{\"kind\":\"x\",\"kind\":\"x\"}", /* duplicate key */
		"{\"kind\":\"\\u0078\"}",	   /* needless escape */
		"{\"kind\":\"\\/\"}",		   /* escaped slash */
		"{\"a\":\"1\"}",		   /* no kind */
		"{\"kind\":1}",			   /* kind not a string */
		"[\"kind\"]",			   /* not an object */
		"{\"a\":{\"b\":{\"c\":{\"d\":\"e\"}}},\"kind\":\"x\"}", /* deep
									 */
		"{\"a\":01,\"kind\":\"x\"}", /* leading zero */
		"",			     /* empty */
		"{\"kind\":\"x\"",	     /* truncated */
	};

	(void)state;
	assert_int_equal(
	    kt_entry_parse((const uint8_t *)"{\"kind\":\"x\"}", 12, NULL),
	    KT_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *o = NULL;

		if (kt_entry_parse(
			(const uint8_t *)bad[i], strlen(bad[i]), &o) == KT_OK)
			fail_msg(
			    "accepted non-canonical entry %zu: %s", i, bad[i]);
		assert_null(o);
	}
}

static void
test_entry_size_limit(void **state)
{
	struct kt_buf b;
	char *big = malloc(KT_ENTRY_MAX + 1);
	json_t *o;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', KT_ENTRY_MAX);
	big[KT_ENTRY_MAX - 30] = 0;
	o = json_pack("{s:s, s:s}", "kind", "x", "pad", big);
	kt_buf_init(&b, 1 << 20);
	assert_int_equal(kt_entry_encode(o, &b), KT_OK);
	json_decref(o);
	big[KT_ENTRY_MAX - 30] = 'a';
	big[KT_ENTRY_MAX] = 0;
	o = json_pack("{s:s, s:s}", "kind", "x", "pad", big);
	assert_int_equal(kt_entry_encode(o, &b), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	json_decref(o);
	assert_int_equal(
	    kt_entry_parse((const uint8_t *)big, KT_ENTRY_MAX + 1, NULL),
	    KT_ETOOBIG);
	o = json_pack("{s:s, s:b}", "kind", "x", "flag", 1);
	assert_int_equal(kt_entry_encode(o, &b), KT_EINVAL);
	json_decref(o);
	kt_buf_free(&b);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_encode_sorted_compact),
		cmocka_unit_test(test_entry_parse_rejects_noncanonical),
		cmocka_unit_test(test_entry_size_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
