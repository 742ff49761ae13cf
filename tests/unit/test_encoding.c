/*
 * Strict base64 and hex, the bounded buffer, the reader and the decimal
 * parser: RFC 4648 test vectors plus tables of non-canonical, truncated
 * and oversized inputs that must be refused.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keytrail/encoding.h"
#include "testutil.h"

/* RFC 4648 section 10. */
static const struct {
	const char *raw;
	const char *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_b64_encode_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char out[32];
		uint8_t dec[32];
		size_t n = strlen(rfc4648[i].raw), got;
		long len = kt_b64_encode(
		    (const uint8_t *)rfc4648[i].raw, n, out, sizeof(out));
		struct kt_buf b;

		assert_int_equal(len, (long)strlen(rfc4648[i].b64));
		assert_string_equal(out, rfc4648[i].b64);
		assert_int_equal(
		    kt_b64_decode(out, (size_t)len, dec, sizeof(dec), &got),
		    KT_OK);
		assert_int_equal(got, n);
		assert_memory_equal(dec, rfc4648[i].raw, n);
		kt_buf_init(&b, 100);
		assert_int_equal(
		    kt_b64_append(&b, (const uint8_t *)rfc4648[i].raw, n),
		    KT_OK);
		assert_int_equal(b.len, (size_t)len);
		if (len > 0)
			assert_memory_equal(b.p, out, (size_t)len);
		kt_buf_free(&b);
	}
}

static void
test_b64_decode_rejects_noncanonical(void **state)
{
	static const char *bad[] = {
		"Zg=",	    /* short padding */
		"Zg",	    /* no padding */
		"Zh==",	    /* non-zero padding bits */
		"Zm9=",	    /* non-zero padding bits */
		"Zm8",	    /* length not a multiple of 4 */
		"Z===",	    /* too much padding */
		"====",	    /* only padding */
		"Zm9v\n",   /* whitespace */
		" Zm9v",    /* whitespace */
		"Zm 9v",    /* whitespace */
		"Zm9v-_==", /* URL-safe alphabet */
		"Zg==Zg==", /* padding in the middle */
		"Zm9\0",    /* NUL */
		"Zm=v",	    /* padding before data */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t out[16];
		size_t n = 99;
		size_t len = strlen(bad[i]);

		if (i == 12)
			len = 4;
		assert_int_equal(
		    kt_b64_decode(bad[i], len, out, sizeof(out), &n),
		    KT_EPARSE);
		assert_int_equal(n, 99);
	}
}

static void
test_b64_decode_exact_sizes(void **state)
{
	uint8_t h[33], out[32];
	char enc[64];
	long n;

	(void)state;
	for (int i = 0; i < 33; i++)
		h[i] = (uint8_t)(i * 37);
	n = kt_b64_encode(h, 32, enc, sizeof(enc));
	assert_int_equal(n, 44);
	assert_int_equal(kt_b64_decode_exact(enc, 44, out, 32), KT_OK);
	assert_memory_equal(out, h, 32);
	/* 31 and 33 bytes are refused when 32 are wanted. */
	n = kt_b64_encode(h, 31, enc, sizeof(enc));
	assert_int_equal(
	    kt_b64_decode_exact(enc, (size_t)n, out, 32), KT_EPARSE);
	n = kt_b64_encode(h, 33, enc, sizeof(enc));
	assert_int_equal(
	    kt_b64_decode_exact(enc, (size_t)n, out, 32), KT_EPARSE);
	/* Output too small. */
	assert_int_equal(kt_b64_encode(h, 32, enc, 44), KT_ETOOBIG);
	assert_int_equal(
	    kt_b64_decode(enc, 44, out, 10, &(size_t){ 0 }), KT_ETOOBIG);
}

static void
test_hex_roundtrip_and_rejects(void **state)
{
	static const char *bad[] = { "0", "0g", "AB", "ab ", " ab", "abc" };
	uint8_t raw[4] = { 0x00, 0xab, 0x7f, 0xff }, out[4];
	char hex[9];

	(void)state;
	kt_hex_encode(raw, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(kt_hex_decode_exact(hex, 8, out, 4), KT_OK);
	assert_memory_equal(out, raw, 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    kt_hex_decode_exact(bad[i], strlen(bad[i]), out, 1),
		    KT_EPARSE);
	assert_int_equal(kt_hex_decode_exact("abcd", 4, out, 1), KT_EPARSE);
}

static void
test_buf_append_respects_max(void **state)
{
	struct kt_buf b;

	(void)state;
	kt_buf_init(&b, 10);
	assert_int_equal(kt_buf_append(&b, "0123456789", 10), KT_OK);
	assert_int_equal(kt_buf_append(&b, "x", 1), KT_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.p, "0123456789", 10);
	assert_int_equal(kt_buf_terminate(&b), KT_OK);
	assert_string_equal((char *)b.p, "0123456789");
	kt_buf_reset(&b);
	assert_int_equal(kt_buf_append_u64(&b, UINT64_MAX), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(kt_buf_append_u64(&b, 1234567890), KT_OK);
	assert_memory_equal(b.p, "1234567890", 10);
	kt_buf_truncate(&b, 11);
	assert_int_equal(b.len, 10);
	kt_buf_truncate(&b, 4);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "1234", 4);
	kt_buf_wipe(&b);
	assert_null(b.p);
	kt_buf_free(NULL);
	kt_buf_wipe(NULL);
	/* b64 append past the maximum leaves the buffer unchanged. */
	kt_buf_init(&b, 6);
	assert_int_equal(kt_buf_append(&b, "ab", 2), KT_OK);
	assert_int_equal(kt_b64_append(&b, (const uint8_t *)"foo", 3), KT_OK);
	assert_int_equal(
	    kt_b64_append(&b, (const uint8_t *)"f", 1), KT_ETOOBIG);
	assert_int_equal(b.len, 6);
	kt_buf_free(&b);
}

static void
test_reader_sticky_bad(void **state)
{
	const uint8_t data[] = { 0x01, 0x02, 0x03, 'a', '\n', 'b' };
	struct kt_reader r;
	struct kt_bytes line;

	(void)state;
	kt_reader_init(&r, data, sizeof(data));
	assert_int_equal(kt_reader_u16be(&r), 0x0102);
	assert_int_equal(kt_reader_u8(&r), 3);
	line = kt_reader_line(&r);
	assert_int_equal(r.bad, 0);
	assert_int_equal(line.len, 1);
	assert_int_equal(line.p[0], 'a');
	/* An unterminated last line is an error, and errors stick. */
	line = kt_reader_line(&r);
	assert_int_equal(r.bad, 1);
	assert_null(line.p);
	assert_int_equal(kt_reader_u8(&r), 0);
	assert_int_equal(kt_reader_left(&r), 0);
	kt_reader_init(&r, data, 3);
	assert_int_equal(kt_reader_u32be(&r), 0);
	assert_int_equal(r.bad, 1);
	kt_reader_init(&r, data, 8 > sizeof(data) ? sizeof(data) : 8);
	(void)kt_reader_u64be(&r);
	assert_int_equal(r.bad, 1);
}

static void
test_parse_u64_table(void **state)
{
	static const struct {
		const char *s;
		uint64_t max;
		int rc;
		uint64_t v;
	} cases[] = {
		{ "0", UINT64_MAX, KT_OK, 0 },
		{ "1", UINT64_MAX, KT_OK, 1 },
		{ "18446744073709551615", UINT64_MAX, KT_OK, UINT64_MAX },
		{ "18446744073709551616", UINT64_MAX, KT_ETOOBIG, 0 },
		{ "99999999999999999999999", UINT64_MAX, KT_ETOOBIG, 0 },
		{ "9223372036854775808", INT64_MAX, KT_ETOOBIG, 0 },
		{ "", UINT64_MAX, KT_EPARSE, 0 },
		{ "01", UINT64_MAX, KT_EPARSE, 0 },
		{ "00", UINT64_MAX, KT_EPARSE, 0 },
		{ "+1", UINT64_MAX, KT_EPARSE, 0 },
		{ "-1", UINT64_MAX, KT_EPARSE, 0 },
		{ " 1", UINT64_MAX, KT_EPARSE, 0 },
		{ "1 ", UINT64_MAX, KT_EPARSE, 0 },
		{ "0x10", UINT64_MAX, KT_EPARSE, 0 },
		{ "1e3", UINT64_MAX, KT_EPARSE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 42;
		int rc = kt_parse_u64((const uint8_t *)cases[i].s,
		    strlen(cases[i].s), cases[i].max, &v);

		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(v, rc == KT_OK ? cases[i].v : 42);
	}
}

static void
test_strerror_names_every_code(void **state)
{
	(void)state;
	for (int e = KT_EINTERNAL; e <= KT_OK; e++)
		assert_string_not_equal(kt_strerror(e), "unknown error");
	assert_string_equal(kt_strerror(-1000), "unknown error");
	assert_true(kt_memeq_ct("abc", "abc", 3));
	assert_false(kt_memeq_ct("abc", "abd", 3));
}

/* The monotonic clock moves forward, in seconds. */
static void
test_monotonic_seconds(void **state)
{
	double a, b;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)state;
	a = kt_monotonic_seconds();
	nanosleep(&ts, NULL);
	b = kt_monotonic_seconds();
	assert_true(a > 0);
	assert_true(b - a >= 0.019 && b - a < 10);
}

/* JSON strings: jansson's escapes, UTF-8 as is, and nothing on bad input. */
static void
test_json_quote(void **state)
{
	static const char in[] = "a\"\\\b\f\n\r\t\x01\x1f\x7f/\xc3\xa9";
	static const char want[] =
	    "\"x\"\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\x7f/\xc3\xa9\"";
	struct kt_buf b;

	(void)state;
	kt_buf_init(&b, 256);
	assert_int_equal(kt_json_quote(&b, "x", 1), KT_OK);
	assert_int_equal(kt_json_quote(&b, in, sizeof(in) - 1), KT_OK);
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(b.p, want, b.len);
	/* A NUL inside the length is a control byte like any other. */
	kt_buf_reset(&b);
	assert_int_equal(kt_json_quote(&b, "a\0b", 3), KT_OK);
	assert_memory_equal(b.p, "\"a\\u0000b\"", b.len);
	/* Not UTF-8, or too big: an error, and b as it was. */
	kt_buf_reset(&b);
	assert_int_equal(kt_json_quote(&b, "ok", 2), KT_OK);
	assert_int_equal(kt_json_quote(&b, "ab\"\xc3", 4), KT_EINVAL);
	assert_int_equal(kt_json_quote(&b, "\xed\xa0\x80", 3), KT_EINVAL);
	assert_int_equal(b.len, 4);
	kt_buf_free(&b);
	kt_buf_init(&b, 8);
	assert_int_equal(kt_json_quote(&b, "\n\n\n\n", 4), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	kt_buf_free(&b);
}

/*
 * The same escapes as jansson's for random strings of every ASCII byte
 * and some UTF-8, in runs long and short around the eight-byte steps;
 * and the same refusals when a byte breaks the UTF-8.
 */
static void
test_json_quote_matches_jansson(void **state)
{
	static const char *const pieces[] = { "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "ABCDEFGH", "abcdefghijklmnop", "\\", "\"",
		"\n" };
	uint64_t r = UINT64_C(0x853c49e6748fea9b);
	struct kt_buf b;
	char in[160];

	(void)state;
	kt_buf_init(&b, 1024);
	for (int t = 0; t < 20000; t++) {
		size_t n = 0, want = (size_t)(t % 120);
		json_t *j;
		char *d;
		int rc;

		while (n < want) {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			if (r % 4 == 0) {
				const char *pc = pieces[(r >> 8) % 8];
				size_t pl = strlen(pc);

				if (n + pl > sizeof(in))
					break;
				memcpy(in + n, pc, pl);
				n += pl;
			} else {
				in[n++] = (char)((r >> 8) % 128);
			}
		}
		/* One in eight strings gets a stray continuation byte. */
		if (t % 8 == 7 && n > 0)
			in[(r >> 20) % n] = (char)0x80;
		kt_buf_reset(&b);
		rc = kt_json_quote(&b, in, n);
		j = json_stringn(in, n);
		if (j == NULL) {
			assert_int_equal(rc, KT_EINVAL);
			assert_int_equal(b.len, 0);
			continue;
		}
		assert_int_equal(rc, KT_OK);
		assert_non_null(d = json_dumps(j, JSON_ENCODE_ANY));
		assert_int_equal(b.len, strlen(d));
		assert_memory_equal(b.p, d, b.len);
		free(d);
		json_decref(j);
	}
	kt_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_encode_rfc4648),
		cmocka_unit_test(test_b64_decode_rejects_noncanonical),
		cmocka_unit_test(test_b64_decode_exact_sizes),
		cmocka_unit_test(test_hex_roundtrip_and_rejects),
		cmocka_unit_test(test_buf_append_respects_max),
		cmocka_unit_test(test_reader_sticky_bad),
		cmocka_unit_test(test_parse_u64_table),
		cmocka_unit_test(test_strerror_names_every_code),
		cmocka_unit_test(test_monotonic_seconds),
		cmocka_unit_test(test_json_quote),
		cmocka_unit_test(test_json_quote_matches_jansson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
