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

/* A small deterministic generator, so a failure names its seed. */
static uint32_t
gen_next(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/* A random valid UTF-8 string of up to 12 pieces into buf (cap >= 64). */
static const char *
gen_string(uint32_t *st, char *buf)
{
	static const char *const multi[] = { "\xc3\xa9", "\xe2\x80\xa8",
		"\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xc2\x80",
		"\xf4\x8f\xbf\xbf" };
	size_t n = gen_next(st) % 13, len = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t r = gen_next(st);

		if (r % 4 == 0) {
			const char *m = multi[(r >> 8) % 6];

			memcpy(buf + len, m, strlen(m));
			len += strlen(m);
		} else {
			buf[len++] = (char)(1 + (r >> 8) % 127); /* 0x01-0x7f */
		}
	}
	buf[len] = 0;
	return buf;
}

/* The direct writer agrees with kt_entry_encode byte for byte. */
static void
test_entry_sig_matches_encode(void **state)
{
	static const char *const names[] = { "alg", "digest", "key", "policy",
		"principal", "request", "sig", "time" };
	struct kt_buf want, got;

	(void)state;
	kt_buf_init(&want, KT_ENTRY_MAX);
	kt_buf_init(&got, KT_ENTRY_MAX);
	for (uint32_t seed = 1; seed <= 3000; seed++) {
		uint32_t st = seed * 2654435761u;
		char strs[8][64], kind[64], appr[3][64], an[64];
		const char *ap[3];
		const char **slot[8];
		struct kt_entry_sig e;
		json_t *o = json_object();

		memset(&e, 0, sizeof(e));
		slot[0] = &e.alg;
		slot[1] = &e.digest;
		slot[2] = &e.key;
		slot[3] = &e.policy;
		slot[4] = &e.principal;
		slot[5] = &e.request;
		slot[6] = &e.sig;
		slot[7] = &e.time;
		e.kind = seed % 2 ? "signature" : gen_string(&st, kind);
		json_object_set_new(o, "kind", json_string(e.kind));
		for (size_t i = 0; i < 8; i++) {
			if (gen_next(&st) % 3 == 0)
				continue;
			*slot[i] = gen_string(&st, strs[i]);
			json_object_set_new(o, names[i], json_string(*slot[i]));
		}
		if (gen_next(&st) % 2) {
			json_t *a = json_array();

			e.napprovers = gen_next(&st) % 4;
			for (size_t i = 0; i < e.napprovers; i++) {
				ap[i] = gen_string(&st, appr[i]);
				json_array_append_new(a, json_string(ap[i]));
			}
			e.approvers = ap;
			json_object_set_new(o, "approvers", a);
		}
		if (gen_next(&st) % 2) {
			json_t *a = json_object();

			e.has_artifact = 1;
			if (gen_next(&st) % 2) {
				e.artifact_name = gen_string(&st, an);
				json_object_set_new(
				    a, "name", json_string(e.artifact_name));
			}
			if (gen_next(&st) % 2) {
				e.has_artifact_size = 1;
				e.artifact_size = (int64_t)gen_next(&st) << 31;
				e.artifact_size += gen_next(&st);
				json_object_set_new(
				    a, "size", json_integer(e.artifact_size));
			}
			json_object_set_new(o, "artifact", a);
		}
		assert_int_equal(kt_entry_encode(o, &want), KT_OK);
		assert_int_equal(kt_entry_sig_encode(&e, &got), KT_OK);
		if (got.len != want.len || memcmp(got.p, want.p, got.len) != 0)
			fail_msg("seed %u: %.*s\nwant %.*s", seed, (int)got.len,
			    (const char *)got.p, (int)want.len,
			    (const char *)want.p);
		json_decref(o);
	}
	kt_buf_free(&want);
	kt_buf_free(&got);
}

/* Bad input: no entry, and the same refusals as jansson's strings. */
static void
test_entry_sig_refuses(void **state)
{
	static const char *const bad[] = { "\x80", "\xc0\xaf", "\xc3",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80\x80", "a\xffz",
		"\xf8\x88\x80\x80\x80" };
	struct kt_entry_sig e;
	struct kt_buf b;
	const char *none[1] = { NULL };
	char *big;

	(void)state;
	kt_buf_init(&b, KT_ENTRY_MAX);
	memset(&e, 0, sizeof(e));
	assert_int_equal(kt_entry_sig_encode(&e, &b), KT_EINVAL);
	e.kind = "signature";
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(json_string(bad[i]));
		e.principal = bad[i];
		assert_int_equal(kt_entry_sig_encode(&e, &b), KT_EINVAL);
		assert_int_equal(b.len, 0);
	}
	e.principal = "ci";
	e.approvers = none;
	e.napprovers = 1;
	assert_int_equal(kt_entry_sig_encode(&e, &b), KT_EINVAL);
	e.approvers = NULL;
	assert_non_null(big = malloc(KT_ENTRY_MAX + 1));
	memset(big, 'a', KT_ENTRY_MAX);
	big[KT_ENTRY_MAX] = 0;
	e.sig = big;
	assert_int_equal(kt_entry_sig_encode(&e, &b), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	free(big);
	kt_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_encode_sorted_compact),
		cmocka_unit_test(test_entry_sig_matches_encode),
		cmocka_unit_test(test_entry_sig_refuses),
		cmocka_unit_test(test_entry_parse_rejects_noncanonical),
		cmocka_unit_test(test_entry_size_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
