/*
 * Strict base64 (RFC 4648 section 4) and hex.  The decoder accepts exactly
 * the encoder's output, so every value has one spelling: padding is
 * required, padding bits must be zero (RFC 4648 section 3.5), and there is
 * no whitespace.  Signed notes and checkpoints depend on this (C2SP
 * signed-note and tlog-checkpoint both use standard padded base64).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "keytrail/encoding.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 character, or -1 (also for '='). */
static int
b64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Encodes into out, which has room for KT_B64_ENCLEN(n) bytes. */
static void
b64_encode_raw(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) |
		    ((uint32_t)in[i + 1] << 8) | in[i + 2];

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v =
		    ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
}

long
kt_b64_encode(const uint8_t *in, size_t n, char *out, size_t outcap)
{
	size_t need;

	if (n > (SIZE_MAX / 4) * 3 - 3)
		return KT_ETOOBIG;
	need = KT_B64_ENCLEN(n);
	if (need >= outcap || need > (size_t)LONG_MAX)
		return KT_ETOOBIG;
	b64_encode_raw(in, n, out);
	out[need] = 0;
	return (long)need;
}

int
kt_b64_append(struct kt_buf *b, const uint8_t *in, size_t n)
{
	uint8_t *dst;
	int rc;

	if (n > (SIZE_MAX / 4) * 3 - 3)
		return KT_ETOOBIG;
	if ((rc = kt_buf_extend(b, KT_B64_ENCLEN(n), &dst)) != KT_OK)
		return rc;
	b64_encode_raw(in, n, (char *)dst);
	return KT_OK;
}

int
kt_b64_decode(
    const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0, npad = 0;

	if (n % 4 != 0)
		return KT_EPARSE;
	if (n > 0 && s[n - 1] == '=')
		npad = (n > 1 && s[n - 2] == '=') ? 2 : 1;
	if (KT_B64_DECMAX(n) - npad > outcap)
		return KT_ETOOBIG;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int last = (i + 4 == n);
		size_t valid = last ? 4 - npad : 4;

		for (size_t j = 0; j < 4; j++) {
			if (j < valid) {
				v[j] = b64_value(s[i + j]);
				if (v[j] < 0)
					return KT_EPARSE;
			} else {
				v[j] = 0;
			}
		}
		uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
		    ((uint32_t)v[2] << 6) | (uint32_t)v[3];
		out[o++] = (uint8_t)(w >> 16);
		if (valid >= 3)
			out[o++] = (uint8_t)(w >> 8);
		if (valid == 4)
			out[o++] = (uint8_t)w;
		/* Canonical: the bits the padding hides must be zero. */
		if (valid == 2 && (v[1] & 0x0f) != 0)
			return KT_EPARSE;
		if (valid == 3 && (v[2] & 0x03) != 0)
			return KT_EPARSE;
	}
	*outlen = o;
	return KT_OK;
}

int
kt_b64_decode_exact(const char *in, size_t n, uint8_t *out, size_t want)
{
	uint8_t tmp[512];
	size_t got;
	int rc;

	/* Decode into a scratch area so out is written only on success. */
	if (want > sizeof(tmp)) {
		if (KT_B64_ENCLEN(want) != n)
			return KT_EPARSE;
		rc = kt_b64_decode(in, n, out, want, &got);
		return rc == KT_OK && got == want ? KT_OK : KT_EPARSE;
	}
	if (KT_B64_ENCLEN(want) != n)
		return KT_EPARSE;
	rc = kt_b64_decode(in, n, tmp, sizeof(tmp), &got);
	if (rc != KT_OK || got != want) {
		kt_wipe(tmp, sizeof(tmp));
		return KT_EPARSE;
	}
	memcpy(out, tmp, want);
	kt_wipe(tmp, want);
	return KT_OK;
}

void
kt_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int
hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
kt_hex_decode_exact(const char *in, size_t n, uint8_t *out, size_t want)
{
	const uint8_t *s = (const uint8_t *)in;

	if (want > SIZE_MAX / 2 || n != 2 * want)
		return KT_EPARSE;
	for (size_t i = 0; i < n; i++) {
		if (hex_value(s[i]) < 0)
			return KT_EPARSE;
	}
	for (size_t i = 0; i < want; i++)
		out[i] = (uint8_t)(hex_value(s[2 * i]) << 4 |
		    hex_value(s[2 * i + 1]));
	return KT_OK;
}

/*
 * JSON strings, escaped exactly as jansson escapes them (the canonical
 * entry encoding, DESIGN.md section 4).
 */

/* Length of the UTF-8 sequence at p (n bytes left), or 0 if invalid. */
static size_t
json_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * 1 when none of the 8 bytes in w needs a second look: none below 0x20,
 * none a quote or a backslash, none from 0x80 (UTF-8 to check).  Each
 * test is the exact "some byte is below k" word trick: (w - k*ones) &
 * ~w has a byte's high bit set for some byte only if one is below k.
 */
static int
json_word_plain(uint64_t w)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	uint64_t bad = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
	    ((bs - ones) & ~bs) | w;

	return (bad & (ones << 7)) == 0;
}

int
kt_json_quote(struct kt_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	/* The bytes with a two-character escape, and their letters. */
	static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
	const unsigned char *p = (const unsigned char *)s;
	size_t old = b->len, run = 0, i = 0;
	int rc;

	if ((rc = kt_buf_append_byte(b, '"')) != KT_OK)
		return rc;
	while (i < n) {
		char esc[6] = { '\\', 0, 0, 0, 0, 0 };
		size_t elen = 2, u;
		const char *f;
		uint64_t w;

		/* Long plain runs (base64, hex) eight bytes at a time. */
		while (n - i >= 8 && (memcpy(&w, p + i, 8), json_word_plain(w)))
			i += 8;
		if (i == n)
			break;
		if (p[i] >= 0x80) {
			if ((u = json_utf8_len(p + i, n - i)) == 0) {
				rc = KT_EINVAL;
				goto fail;
			}
			i += u;
			continue;
		}
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\') {
			i++;
			continue;
		}
		if ((f = memchr(from, p[i], sizeof(from) - 1)) != NULL) {
			esc[1] = to[f - from];
		} else {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 15];
			elen = 6;
		}
		if ((rc = kt_buf_append(b, s + run, i - run)) != KT_OK ||
		    (rc = kt_buf_append(b, esc, elen)) != KT_OK)
			goto fail;
		run = ++i;
	}
	if ((rc = kt_buf_append(b, s + run, n - run)) != KT_OK ||
	    (rc = kt_buf_append_byte(b, '"')) != KT_OK)
		goto fail;
	return KT_OK;
fail:
	kt_buf_truncate(b, old);
	return rc;
}
