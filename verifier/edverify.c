/*
 * Fast Ed25519 verification for one public key (edverify.h).
 *
 * Arithmetic modulo p = 2^255 - 19 in five 51-bit limbs, products in
 * 128 bits.  Points in extended twisted Edwards coordinates (X:Y:Z:T with
 * x = X/Z, y = Y/Z, xy = T/Z; Hisil, Wong, Carter and Dawson, 2008) and,
 * in the tables, in affine "Niels" form (y + x, y - x, 2dxy), which
 * adds to an extended point in seven multiplications.  The curve's
 * addition law is complete, so no case needs special handling.
 *
 * Each table holds, for i = 0..31 and j = 1..8, j * 256^i * P.  A scalar
 * in 64 signed base-16 digits in [-8, 8] is then the sum of its odd
 * digits' entries, times 16, plus its even digits' entries: 64 table
 * additions and 4 doublings, shared by the two scalars of a check.
 *
 * The constants d, sqrt(-1) and the base point are computed once from
 * their definitions in RFC 8032 section 5.1 (d = -121665/121666,
 * B = the point with y = 4/5 and even x).  The group order L and the
 * reduction of the 512-bit hash modulo L use OpenSSL's bignums.
 */
#include "edverify.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keytrail/common.h"

#define EDV_MASK ((UINT64_C(1) << 51) - 1)
#define EDV_ROWS 32
#define EDV_COLS 8
#define EDV_POINTS (EDV_ROWS * EDV_COLS)
#define EDV_DIGITS 64

__extension__ typedef unsigned __int128 edv_u128;

/* An element of GF(p), limbs of 51 bits (a little more between steps). */
struct fe {
	uint64_t v[5];
};

/* A point in extended coordinates. */
struct ext {
	struct fe x, y, z, t;
};

/* An affine point as y + x, y - x and 2dxy. */
struct niels {
	struct fe ypx, ymx, xy2d;
};

struct edv {
	atomic_int refs;
	uint8_t pub[32];
	struct niels tab[EDV_ROWS][EDV_COLS]; /* multiples of -A */
};

/* Built once by edv_init. */
static struct {
	struct fe d, d2, sqrtm1;
	struct niels base[EDV_ROWS][EDV_COLS];
	uint8_t l[32]; /* the group order, little-endian */
	BIGNUM *lbn;
	EVP_MD *sha512;
	int ok;
} edv_g;
static CRYPTO_ONCE edv_once = CRYPTO_ONCE_STATIC_INIT;

/* 4p, limb by limb: added before a subtraction so no limb goes negative. */
static const uint64_t edv_4p[5] = { 0x1fffffffffffb4, 0x1ffffffffffffc,
	0x1ffffffffffffc, 0x1ffffffffffffc, 0x1ffffffffffffc };

static void
fe_small(struct fe *h, uint64_t n)
{
	memset(h, 0, sizeof(*h));
	h->v[0] = n;
}

/* Brings every limb back to 51 bits (the first to a little more). */
static inline void
fe_carry(struct fe *h)
{
	uint64_t c;

	c = h->v[0] >> 51;
	h->v[0] &= EDV_MASK;
	h->v[1] += c;
	c = h->v[1] >> 51;
	h->v[1] &= EDV_MASK;
	h->v[2] += c;
	c = h->v[2] >> 51;
	h->v[2] &= EDV_MASK;
	h->v[3] += c;
	c = h->v[3] >> 51;
	h->v[3] &= EDV_MASK;
	h->v[4] += c;
	c = h->v[4] >> 51;
	h->v[4] &= EDV_MASK;
	h->v[0] += 19 * c;
}

static inline void
fe_add(struct fe *h, const struct fe *a, const struct fe *b)
{
	for (int i = 0; i < 5; i++)
		h->v[i] = a->v[i] + b->v[i];
	fe_carry(h);
}

static inline void
fe_sub(struct fe *h, const struct fe *a, const struct fe *b)
{
	for (int i = 0; i < 5; i++)
		h->v[i] = a->v[i] + edv_4p[i] - b->v[i];
	fe_carry(h);
}

static void
fe_neg(struct fe *h, const struct fe *a)
{
	struct fe z;

	fe_small(&z, 0);
	fe_sub(h, &z, a);
}

/* Carries five 128-bit column sums into h. */
static inline void
fe_reduce128(struct fe *h, edv_u128 r0, edv_u128 r1, edv_u128 r2, edv_u128 r3,
    edv_u128 r4)
{
	edv_u128 t;

	r1 += r0 >> 51;
	r2 += r1 >> 51;
	r3 += r2 >> 51;
	r4 += r3 >> 51;
	h->v[1] = (uint64_t)r1 & EDV_MASK;
	h->v[2] = (uint64_t)r2 & EDV_MASK;
	h->v[3] = (uint64_t)r3 & EDV_MASK;
	h->v[4] = (uint64_t)r4 & EDV_MASK;
	t = ((edv_u128)((uint64_t)r0 & EDV_MASK)) + (r4 >> 51) * 19;
	h->v[0] = (uint64_t)t & EDV_MASK;
	h->v[1] += (uint64_t)(t >> 51);
}

static inline void
fe_mul(struct fe *h, const struct fe *a, const struct fe *b)
{
	const uint64_t *x = a->v, *y = b->v;
	uint64_t y1 = 19 * y[1], y2 = 19 * y[2], y3 = 19 * y[3], y4 = 19 * y[4];
	edv_u128 r0, r1, r2, r3, r4;

	r0 = (edv_u128)x[0] * y[0] + (edv_u128)x[1] * y4 + (edv_u128)x[2] * y3 +
	    (edv_u128)x[3] * y2 + (edv_u128)x[4] * y1;
	r1 = (edv_u128)x[0] * y[1] + (edv_u128)x[1] * y[0] +
	    (edv_u128)x[2] * y4 + (edv_u128)x[3] * y3 + (edv_u128)x[4] * y2;
	r2 = (edv_u128)x[0] * y[2] + (edv_u128)x[1] * y[1] +
	    (edv_u128)x[2] * y[0] + (edv_u128)x[3] * y4 + (edv_u128)x[4] * y3;
	r3 = (edv_u128)x[0] * y[3] + (edv_u128)x[1] * y[2] +
	    (edv_u128)x[2] * y[1] + (edv_u128)x[3] * y[0] + (edv_u128)x[4] * y4;
	r4 = (edv_u128)x[0] * y[4] + (edv_u128)x[1] * y[3] +
	    (edv_u128)x[2] * y[2] + (edv_u128)x[3] * y[1] +
	    (edv_u128)x[4] * y[0];
	fe_reduce128(h, r0, r1, r2, r3, r4);
}

static inline void
fe_sq(struct fe *h, const struct fe *a)
{
	const uint64_t *x = a->v;
	uint64_t d0 = 2 * x[0], d1 = 2 * x[1], d2 = 2 * x[2], d3 = 2 * x[3];
	uint64_t x3 = 19 * x[3], x4 = 19 * x[4];
	edv_u128 r0, r1, r2, r3, r4;

	r0 = (edv_u128)x[0] * x[0] + (edv_u128)d1 * x4 + (edv_u128)d2 * x3;
	r1 = (edv_u128)d0 * x[1] + (edv_u128)d2 * x4 + (edv_u128)x[3] * x3;
	r2 = (edv_u128)d0 * x[2] + (edv_u128)x[1] * x[1] + (edv_u128)d3 * x4;
	r3 = (edv_u128)d0 * x[3] + (edv_u128)d1 * x[2] + (edv_u128)x[4] * x4;
	r4 = (edv_u128)d0 * x[4] + (edv_u128)d1 * x[3] + (edv_u128)x[2] * x[2];
	fe_reduce128(h, r0, r1, r2, r3, r4);
}

/* h = a^(2^k), k >= 1. */
static void
fe_sqn(struct fe *h, const struct fe *a, int k)
{
	fe_sq(h, a);
	while (--k > 0)
		fe_sq(h, h);
}

/* Reads 255 bits, little-endian; the top bit of s[31] is ignored. */
static void
fe_frombytes(struct fe *h, const uint8_t s[32])
{
	uint64_t w[4];

	for (int i = 0; i < 4; i++) {
		w[i] = 0;
		for (int j = 7; j >= 0; j--)
			w[i] = (w[i] << 8) | s[8 * i + j];
	}
	h->v[0] = w[0] & EDV_MASK;
	h->v[1] = ((w[0] >> 51) | (w[1] << 13)) & EDV_MASK;
	h->v[2] = ((w[1] >> 38) | (w[2] << 26)) & EDV_MASK;
	h->v[3] = ((w[2] >> 25) | (w[3] << 39)) & EDV_MASK;
	h->v[4] = (w[3] >> 12) & EDV_MASK;
}

/* The canonical encoding: the value fully reduced below p. */
static void
fe_tobytes(uint8_t s[32], const struct fe *a)
{
	struct fe t = *a;
	uint64_t q, w[4];

	fe_carry(&t);
	fe_carry(&t);
	/* Now t < 2p; q is 1 exactly when t >= p. */
	q = (t.v[0] + 19) >> 51;
	q = (t.v[1] + q) >> 51;
	q = (t.v[2] + q) >> 51;
	q = (t.v[3] + q) >> 51;
	q = (t.v[4] + q) >> 51;
	t.v[0] += 19 * q;
	t.v[1] += t.v[0] >> 51;
	t.v[0] &= EDV_MASK;
	t.v[2] += t.v[1] >> 51;
	t.v[1] &= EDV_MASK;
	t.v[3] += t.v[2] >> 51;
	t.v[2] &= EDV_MASK;
	t.v[4] += t.v[3] >> 51;
	t.v[3] &= EDV_MASK;
	t.v[4] &= EDV_MASK;
	w[0] = t.v[0] | (t.v[1] << 51);
	w[1] = (t.v[1] >> 13) | (t.v[2] << 38);
	w[2] = (t.v[2] >> 26) | (t.v[3] << 25);
	w[3] = (t.v[3] >> 39) | (t.v[4] << 12);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			s[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
}

static int
fe_iszero(const struct fe *a)
{
	uint8_t s[32];
	uint8_t acc = 0;

	fe_tobytes(s, a);
	for (int i = 0; i < 32; i++)
		acc |= s[i];
	return acc == 0;
}

static int
fe_equal(const struct fe *a, const struct fe *b)
{
	struct fe d;

	fe_sub(&d, a, b);
	return fe_iszero(&d);
}

/* The "sign" of RFC 8032: the low bit of the reduced value. */
static int
fe_isodd(const struct fe *a)
{
	uint8_t s[32];

	fe_tobytes(s, a);
	return s[0] & 1;
}

/*
 * Sets *t250 = z^(2^250 - 1) and *z11 = z^11, the common start of an
 * inversion and of the square root's power.
 */
static void
fe_pow250(struct fe *t250, struct fe *z11, const struct fe *z)
{
	struct fe z2, z9, t, z5, z10, z20, z50, z100;

	fe_sq(&z2, z);		 /* 2 */
	fe_sqn(&t, &z2, 2);	 /* 8 */
	fe_mul(&z9, &t, z);	 /* 9 */
	fe_mul(z11, &z9, &z2);	 /* 11 */
	fe_sq(&t, z11);		 /* 22 */
	fe_mul(&z5, &t, &z9);	 /* 2^5 - 1 */
	fe_sqn(&t, &z5, 5);	 /* 2^10 - 2^5 */
	fe_mul(&z10, &t, &z5);	 /* 2^10 - 1 */
	fe_sqn(&t, &z10, 10);	 /* 2^20 - 2^10 */
	fe_mul(&z20, &t, &z10);	 /* 2^20 - 1 */
	fe_sqn(&t, &z20, 20);	 /* 2^40 - 2^20 */
	fe_mul(&t, &t, &z20);	 /* 2^40 - 1 */
	fe_sqn(&t, &t, 10);	 /* 2^50 - 2^10 */
	fe_mul(&z50, &t, &z10);	 /* 2^50 - 1 */
	fe_sqn(&t, &z50, 50);	 /* 2^100 - 2^50 */
	fe_mul(&z100, &t, &z50); /* 2^100 - 1 */
	fe_sqn(&t, &z100, 100);	 /* 2^200 - 2^100 */
	fe_mul(&t, &t, &z100);	 /* 2^200 - 1 */
	fe_sqn(&t, &t, 50);	 /* 2^250 - 2^50 */
	fe_mul(t250, &t, &z50);	 /* 2^250 - 1 */
}

/* h = z^(p - 2) = 1/z (0 for 0). */
static void
fe_invert(struct fe *h, const struct fe *z)
{
	struct fe t, z11;

	fe_pow250(&t, &z11, z);
	fe_sqn(&t, &t, 5);   /* 2^255 - 2^5 */
	fe_mul(h, &t, &z11); /* 2^255 - 21 */
}

/* h = z^((p - 5) / 8) = z^(2^252 - 3). */
static void
fe_pow22523(struct fe *h, const struct fe *z)
{
	struct fe t, z11;

	fe_pow250(&t, &z11, z);
	fe_sqn(&t, &t, 2); /* 2^252 - 4 */
	fe_mul(h, &t, z);  /* 2^252 - 3 */
}

static void
ge_identity(struct ext *p)
{
	fe_small(&p->x, 0);
	fe_small(&p->y, 1);
	fe_small(&p->z, 1);
	fe_small(&p->t, 0);
}

/*
 * The last step shared by the addition and doubling formulas below:
 * X3 = EF, Y3 = GH, T3 = EH, Z3 = FG.
 */
static void
ge_finish(struct ext *r, const struct fe *e, const struct fe *f,
    const struct fe *g, const struct fe *h)
{
	fe_mul(&r->x, e, f);
	fe_mul(&r->y, g, h);
	fe_mul(&r->t, e, h);
	fe_mul(&r->z, f, g);
}

/* r = p + q, both extended ("add-2008-hwcd-3" for a = -1). */
static void
ge_add(struct ext *r, const struct ext *p, const struct ext *q)
{
	struct fe a, b, c, d, e, f, g, h, t;

	fe_sub(&a, &p->y, &p->x);
	fe_sub(&t, &q->y, &q->x);
	fe_mul(&a, &a, &t);
	fe_add(&b, &p->y, &p->x);
	fe_add(&t, &q->y, &q->x);
	fe_mul(&b, &b, &t);
	fe_mul(&c, &p->t, &q->t);
	fe_mul(&c, &c, &edv_g.d2);
	fe_mul(&d, &p->z, &q->z);
	fe_add(&d, &d, &d);
	fe_sub(&e, &b, &a);
	fe_sub(&f, &d, &c);
	fe_add(&g, &d, &c);
	fe_add(&h, &b, &a);
	ge_finish(r, &e, &f, &g, &h);
}

/* r = 2p ("dbl-2008-hwcd" with a = -1). */
static void
ge_dbl(struct ext *r, const struct ext *p)
{
	struct fe a, b, c, d, e, f, g, h;

	fe_sq(&a, &p->x);
	fe_sq(&b, &p->y);
	fe_sq(&c, &p->z);
	fe_add(&c, &c, &c);
	fe_neg(&d, &a);
	fe_add(&e, &p->x, &p->y);
	fe_sq(&e, &e);
	fe_sub(&e, &e, &a);
	fe_sub(&e, &e, &b);
	fe_add(&g, &d, &b);
	fe_sub(&f, &g, &c);
	fe_sub(&h, &d, &b);
	ge_finish(r, &e, &f, &g, &h);
}

/* r = p + q, or p - q when neg: q affine, in Niels form. */
static void
ge_madd(struct ext *r, const struct ext *p, const struct niels *q, int neg)
{
	struct fe a, b, c, d, e, f, g, h;

	fe_sub(&a, &p->y, &p->x);
	fe_mul(&a, &a, neg ? &q->ypx : &q->ymx);
	fe_add(&b, &p->y, &p->x);
	fe_mul(&b, &b, neg ? &q->ymx : &q->ypx);
	fe_mul(&c, &p->t, &q->xy2d);
	fe_add(&d, &p->z, &p->z);
	fe_sub(&e, &b, &a);
	if (neg) {
		fe_add(&f, &d, &c);
		fe_sub(&g, &d, &c);
	} else {
		fe_sub(&f, &d, &c);
		fe_add(&g, &d, &c);
	}
	fe_add(&h, &b, &a);
	ge_finish(r, &e, &f, &g, &h);
}

static void
ge_encode(uint8_t s[32], const struct ext *p)
{
	struct fe zi, x, y;

	fe_invert(&zi, &p->z);
	fe_mul(&x, &p->x, &zi);
	fe_mul(&y, &p->y, &zi);
	fe_tobytes(s, &y);
	s[31] |= (uint8_t)(fe_isodd(&x) << 7);
}

/*
 * Decodes a point (RFC 8032 section 5.1.3).  Returns 0, or -1 when s is
 * not the canonical encoding of a point on the curve.
 */
static int
ge_decode(struct ext *p, const uint8_t s[32])
{
	struct fe one, u, v, v3, x, y, t;
	uint8_t chk[32];
	int sign = s[31] >> 7;

	fe_frombytes(&y, s);
	fe_tobytes(chk, &y);
	chk[31] |= (uint8_t)(sign << 7);
	if (memcmp(chk, s, 32) != 0)
		return -1; /* y >= p */
	fe_small(&one, 1);
	fe_sq(&u, &y);
	fe_mul(&v, &u, &edv_g.d);
	fe_sub(&u, &u, &one); /* y^2 - 1 */
	fe_add(&v, &v, &one); /* d y^2 + 1 */
	fe_sq(&v3, &v);
	fe_mul(&v3, &v3, &v); /* v^3 */
	fe_sq(&x, &v3);
	fe_mul(&x, &x, &v);
	fe_mul(&x, &x, &u); /* u v^7 */
	fe_pow22523(&x, &x);
	fe_mul(&x, &x, &v3);
	fe_mul(&x, &x, &u); /* u v^3 (u v^7)^((p-5)/8) */
	fe_sq(&t, &x);
	fe_mul(&t, &t, &v); /* v x^2 */
	if (!fe_equal(&t, &u)) {
		fe_neg(&u, &u);
		if (!fe_equal(&t, &u))
			return -1; /* no square root: not on the curve */
		fe_mul(&x, &x, &edv_g.sqrtm1);
	}
	if (fe_iszero(&x) && sign)
		return -1;
	if (fe_isodd(&x) != sign)
		fe_neg(&x, &x);
	p->x = x;
	p->y = y;
	fe_small(&p->z, 1);
	fe_mul(&p->t, &x, &y);
	return 0;
}

/* Fills tab[i][j] = (j + 1) * 256^i * p.  Returns KT_OK or KT_ENOMEM. */
static int
edv_table(struct niels tab[EDV_ROWS][EDV_COLS], const struct ext *p)
{
	struct ext *pt, q = *p;
	struct fe *acc, inv, zi, x, y;

	pt = malloc(EDV_POINTS * sizeof(*pt));
	acc = malloc(EDV_POINTS * sizeof(*acc));
	if (pt == NULL || acc == NULL) {
		free(pt);
		free(acc);
		return KT_ENOMEM;
	}
	for (int i = 0; i < EDV_ROWS; i++) {
		struct ext *row = pt + i * EDV_COLS;

		row[0] = q;
		ge_dbl(&row[1], &q);
		for (int j = 2; j < EDV_COLS; j++)
			ge_add(&row[j], &row[j - 1], &q);
		q = row[EDV_COLS - 1]; /* 8 * 256^i * p, then 256^(i+1) * p */
		for (int k = 0; k < 5; k++)
			ge_dbl(&q, &q);
	}
	/* One inversion for all: acc[i] = z0 * ... * zi. */
	acc[0] = pt[0].z;
	for (int i = 1; i < EDV_POINTS; i++)
		fe_mul(&acc[i], &acc[i - 1], &pt[i].z);
	fe_invert(&inv, &acc[EDV_POINTS - 1]);
	for (int i = EDV_POINTS - 1; i >= 0; i--) {
		struct niels *n = &tab[i / EDV_COLS][i % EDV_COLS];

		if (i > 0) {
			fe_mul(&zi, &inv, &acc[i - 1]);
			fe_mul(&inv, &inv, &pt[i].z);
		} else
			zi = inv;
		fe_mul(&x, &pt[i].x, &zi);
		fe_mul(&y, &pt[i].y, &zi);
		fe_add(&n->ypx, &y, &x);
		fe_sub(&n->ymx, &y, &x);
		fe_mul(&n->xy2d, &x, &y);
		fe_mul(&n->xy2d, &n->xy2d, &edv_g.d2);
	}
	free(pt);
	free(acc);
	return KT_OK;
}

static void
edv_init(void)
{
	struct fe a, b, t, one;
	struct ext base;
	uint8_t enc[32];

	/* d = -121665 / 121666 */
	fe_small(&a, 121665);
	fe_small(&b, 121666);
	fe_invert(&b, &b);
	fe_mul(&t, &a, &b);
	fe_neg(&edv_g.d, &t);
	fe_add(&edv_g.d2, &edv_g.d, &edv_g.d);
	/* sqrt(-1) = 2^((p - 1) / 4) = (2^((p - 5) / 8))^2 * 2 */
	fe_small(&a, 2);
	fe_pow22523(&t, &a);
	fe_sq(&t, &t);
	fe_mul(&edv_g.sqrtm1, &t, &a);
	fe_sq(&t, &edv_g.sqrtm1);
	fe_small(&one, 1);
	fe_add(&t, &t, &one);
	if (!fe_iszero(&t))
		return;
	/* B: y = 4/5, x even (sign bit 0). */
	fe_small(&a, 4);
	fe_small(&b, 5);
	fe_invert(&b, &b);
	fe_mul(&t, &a, &b);
	fe_tobytes(enc, &t);
	if (ge_decode(&base, enc) != 0 || edv_table(edv_g.base, &base) != KT_OK)
		return;
	/* L = 2^252 + 27742317777372353535851937790883648493 */
	if (BN_dec2bn(&edv_g.lbn,
		"723700557733226221397318656304299424085711"
		"6359379907606001950938285454250989") == 0 ||
	    BN_bn2lebinpad(edv_g.lbn, edv_g.l, 32) != 32)
		return;
	if ((edv_g.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL)
		return;
	edv_g.ok = 1;
}

static int
edv_ready(void)
{
	return CRYPTO_THREAD_run_once(&edv_once, edv_init) == 1 && edv_g.ok;
}

/* 1 when the little-endian scalar s is below L. */
static int
edv_below_l(const uint8_t s[32])
{
	for (int i = 31; i >= 0; i--) {
		if (s[i] != edv_g.l[i])
			return s[i] < edv_g.l[i];
	}
	return 0;
}

/* 64 signed base-16 digits in [-8, 8] of a scalar below 2^253. */
static void
edv_recode(int8_t e[EDV_DIGITS], const uint8_t s[32])
{
	int carry = 0;

	for (int i = 0; i < 32; i++) {
		e[2 * i] = (int8_t)(s[i] & 15);
		e[2 * i + 1] = (int8_t)(s[i] >> 4);
	}
	for (int i = 0; i < EDV_DIGITS - 1; i++) {
		e[i] = (int8_t)(e[i] + carry);
		carry = (e[i] + 8) >> 4;
		e[i] = (int8_t)(e[i] - carry * 16);
	}
	e[EDV_DIGITS - 1] = (int8_t)(e[EDV_DIGITS - 1] + carry);
}

static void
edv_digit(struct ext *r, const struct niels row[EDV_COLS], int e)
{
	if (e > 0)
		ge_madd(r, r, &row[e - 1], 0);
	else if (e < 0)
		ge_madd(r, r, &row[-e - 1], 1);
}

/* r = sum of the digits of ea through ta (if any) and of eb through tb. */
static void
edv_mul2(struct ext *r, const struct niels ta[EDV_ROWS][EDV_COLS],
    const int8_t ea[EDV_DIGITS], const struct niels tb[EDV_ROWS][EDV_COLS],
    const int8_t eb[EDV_DIGITS])
{
	ge_identity(r);
	for (int i = 1; i < EDV_DIGITS; i += 2) {
		if (ta != NULL)
			edv_digit(r, ta[i / 2], ea[i]);
		edv_digit(r, tb[i / 2], eb[i]);
	}
	for (int k = 0; k < 4; k++)
		ge_dbl(r, r);
	for (int i = 0; i < EDV_DIGITS; i += 2) {
		if (ta != NULL)
			edv_digit(r, ta[i / 2], ea[i]);
		edv_digit(r, tb[i / 2], eb[i]);
	}
}

/* k = SHA-512(R || A || msg) mod L.  Returns 0, or -1 on failure. */
static int
edv_challenge(uint8_t k[32], const uint8_t *r, const uint8_t pub[32],
    const uint8_t *msg, size_t len)
{
	EVP_MD_CTX *md;
	BN_CTX *bc = NULL;
	BIGNUM *h = NULL;
	uint8_t dig[64];
	unsigned int dlen = 0;
	int rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(md, edv_g.sha512, NULL) != 1 ||
	    EVP_DigestUpdate(md, r, 32) != 1 ||
	    EVP_DigestUpdate(md, pub, 32) != 1 ||
	    (len > 0 && EVP_DigestUpdate(md, msg, len) != 1) ||
	    EVP_DigestFinal_ex(md, dig, &dlen) != 1 || dlen != sizeof(dig))
		goto done;
	if ((bc = BN_CTX_new()) == NULL ||
	    (h = BN_lebin2bn(dig, sizeof(dig), NULL)) == NULL ||
	    BN_nnmod(h, h, edv_g.lbn, bc) != 1 ||
	    BN_bn2lebinpad(h, k, 32) != 32)
		goto done;
	rc = 0;
done:
	BN_free(h);
	BN_CTX_free(bc);
	EVP_MD_CTX_free(md);
	return rc;
}

int
edv_new(const uint8_t pub[32], struct edv **out)
{
	struct edv *v;
	struct ext a;
	int rc;

	if (pub == NULL || out == NULL)
		return KT_EINVAL;
	if (!edv_ready())
		return KT_EINTERNAL;
	if (ge_decode(&a, pub) != 0)
		return KT_EINVAL;
	/* The table holds multiples of -A: the check adds [k](-A). */
	fe_neg(&a.x, &a.x);
	fe_neg(&a.t, &a.t);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return KT_ENOMEM;
	if ((rc = edv_table(v->tab, &a)) != KT_OK) {
		free(v);
		return rc;
	}
	atomic_init(&v->refs, 1);
	memcpy(v->pub, pub, 32);
	*out = v;
	return KT_OK;
}

int
edv_new_pkey(EVP_PKEY *pk, struct edv **out)
{
	uint8_t raw[32];
	size_t rawlen = sizeof(raw);

	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 ||
	    rawlen != sizeof(raw))
		return KT_EINVAL;
	return edv_new(raw, out);
}

struct edv *
edv_ref(struct edv *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

void
edv_free(struct edv *v)
{
	if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	free(v);
}

int
edv_verify(const struct edv *v, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	int8_t ek[EDV_DIGITS], es[EDV_DIGITS];
	uint8_t k[32], enc[32];
	struct ext r;

	if (sig == NULL || siglen != 64 || (msg == NULL && len > 0))
		return 0;
	if (!edv_below_l(sig + 32))
		return 0;
	if (edv_challenge(k, sig, v->pub, msg, len) != 0)
		return -1;
	edv_recode(ek, k);
	edv_recode(es, sig + 32);
	/* [S]B + [k](-A), which is R for a valid signature. */
	edv_mul2(&r, v->tab, ek, edv_g.base, es);
	ge_encode(enc, &r);
	return CRYPTO_memcmp(enc, sig, 32) == 0;
}

int
edv_base_mul(const uint8_t s[32], uint8_t out[32])
{
	int8_t e[EDV_DIGITS];
	struct ext r;

	if (!edv_ready())
		return KT_EINTERNAL;
	if (!edv_below_l(s))
		return KT_EINVAL;
	edv_recode(e, s);
	edv_mul2(&r, NULL, NULL, edv_g.base, e);
	ge_encode(out, &r);
	return KT_OK;
}
