/*
 * Bounded buffers, readers and small byte helpers (STYLE.md section 5).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "keytrail/common.h"

const char *
kt_strerror(int err)
{
	switch (err) {
	case KT_OK:
		return "success";
	case KT_ENOMEM:
		return "out of memory";
	case KT_EINVAL:
		return "invalid argument";
	case KT_EPARSE:
		return "malformed input";
	case KT_ETOOBIG:
		return "too large";
	case KT_EVERIFY:
		return "verification failed";
	case KT_ENOTFOUND:
		return "not found";
	case KT_EIO:
		return "I/O error";
	case KT_EPOLICY:
		return "refused by policy";
	case KT_EAUTH:
		return "not authenticated";
	case KT_EEXIST:
		return "already exists";
	case KT_EUNAVAIL:
		return "unavailable";
	case KT_EINTERNAL:
		return "internal error";
	default:
		return "unknown error";
	}
}

int
kt_hash_equal(const struct kt_hash *a, const struct kt_hash *b)
{
	return kt_memeq_ct(a->b, b->b, sizeof(a->b));
}

int
kt_memeq_ct(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

double
kt_monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
kt_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void
kt_buf_init(struct kt_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Makes room for n more bytes plus a spare one for a terminating NUL. */
static int
buf_reserve(struct kt_buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *np;

	if (n > b->max || b->len > b->max - n)
		return KT_ETOOBIG;
	need = b->len + n + 1;
	if (need <= b->cap)
		return KT_OK;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if (ncap > b->max + 1 && need <= b->max + 1)
		ncap = b->max + 1;
	if ((np = realloc(b->p, ncap)) == NULL)
		return KT_ENOMEM;
	b->p = np;
	b->cap = ncap;
	return KT_OK;
}

int
kt_buf_append(struct kt_buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return KT_OK;
	if ((rc = buf_reserve(b, n)) != KT_OK)
		return rc;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return KT_OK;
}

int
kt_buf_extend(struct kt_buf *b, size_t n, uint8_t **p)
{
	int rc;

	if ((rc = buf_reserve(b, n)) != KT_OK)
		return rc;
	*p = b->p + b->len;
	b->len += n;
	return KT_OK;
}

int
kt_buf_append_str(struct kt_buf *b, const char *s)
{
	return kt_buf_append(b, s, strlen(s));
}

int
kt_buf_append_byte(struct kt_buf *b, uint8_t c)
{
	return kt_buf_append(b, &c, 1);
}

int
kt_buf_append_u64(struct kt_buf *b, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return kt_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int
kt_buf_terminate(struct kt_buf *b)
{
	int rc;

	/* buf_reserve always keeps one spare byte beyond len. */
	if ((rc = buf_reserve(b, 0)) != KT_OK)
		return rc;
	b->p[b->len] = 0;
	return KT_OK;
}

void
kt_buf_reset(struct kt_buf *b)
{
	b->len = 0;
}

void
kt_buf_truncate(struct kt_buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
}

void
kt_buf_free(struct kt_buf *b)
{
	if (b == NULL)
		return;
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void
kt_buf_wipe(struct kt_buf *b)
{
	if (b == NULL)
		return;
	kt_wipe(b->p, b->cap);
	kt_buf_free(b);
}

void
kt_reader_init(struct kt_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = 0;
}

size_t
kt_reader_left(const struct kt_reader *r)
{
	return r->bad ? 0 : r->len - r->off;
}

/* Returns a pointer to the next n bytes and advances, or NULL (sets bad). */
static const uint8_t *
reader_take(struct kt_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t
kt_reader_u8(struct kt_reader *r)
{
	const uint8_t *p = reader_take(r, 1);

	return p ? p[0] : 0;
}

uint16_t
kt_reader_u16be(struct kt_reader *r)
{
	const uint8_t *p = reader_take(r, 2);

	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t
kt_reader_u32be(struct kt_reader *r)
{
	const uint8_t *p = reader_take(r, 4);

	return p ? kt_get_u32be(p) : 0;
}

uint64_t
kt_reader_u64be(struct kt_reader *r)
{
	const uint8_t *p = reader_take(r, 8);

	return p ? kt_get_u64be(p) : 0;
}

struct kt_bytes
kt_reader_bytes(struct kt_reader *r, size_t n)
{
	struct kt_bytes v = { NULL, 0 };
	const uint8_t *p = reader_take(r, n);

	if (p != NULL) {
		v.p = p;
		v.len = n;
	}
	return v;
}

struct kt_bytes
kt_reader_line(struct kt_reader *r)
{
	struct kt_bytes v = { NULL, 0 };
	const uint8_t *start, *nl;
	size_t left;

	if (r->bad)
		return v;
	start = r->p + r->off;
	left = r->len - r->off;
	nl = left ? memchr(start, '\n', left) : NULL;
	if (nl == NULL) {
		r->bad = 1;
		return v;
	}
	v.p = start;
	v.len = (size_t)(nl - start);
	r->off += v.len + 1;
	return v;
}

void
kt_put_u64be(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

void
kt_put_u32be(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

void
kt_put_u16be(uint8_t out[2], uint16_t v)
{
	out[0] = (uint8_t)(v >> 8);
	out[1] = (uint8_t)v;
}

uint64_t
kt_get_u64be(const uint8_t in[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

uint32_t
kt_get_u32be(const uint8_t in[4])
{
	return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) |
	    ((uint32_t)in[2] << 8) | in[3];
}

int
kt_parse_u64(const uint8_t *p, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return KT_EPARSE;
	if (p[0] == '0' && len > 1)
		return KT_EPARSE;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return KT_EPARSE;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return KT_ETOOBIG;
		v = v * 10 + d;
	}
	if (v > max)
		return KT_ETOOBIG;
	*out = v;
	return KT_OK;
}
