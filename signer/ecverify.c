/*
 * Fast ECDSA P-256 verification for one public key (ecverify.h).
 *
 * OpenSSL 3.0 still exposes a group's precomputation only through the
 * deprecated EC_GROUP_precompute_mult(); it is the one deprecated call
 * here, and this file is the only one that allows it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "ecverify.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "keytrail/common.h"

/* Bytes of the P-256 order: longer digests are cut to their leftmost 32. */
#define ECV_ORDER_BYTES 32
/* An uncompressed P-256 point: 0x04, x, y. */
#define ECV_POINT_MAX 65

struct ecv {
	EC_GROUP *g;  /* P-256, generator G (OpenSSL's built-in table) */
	EC_GROUP *gq; /* P-256 with the public key Q as its generator */
	const BIGNUM *n;
	BIGNUM *p;    /* the field prime */
	BIGNUM *rmax; /* p - n: an x below it may also be r + n */
};

void
ecv_free(struct ecv *v)
{
	if (v == NULL)
		return;
	EC_GROUP_free(v->g);
	EC_GROUP_free(v->gq);
	BN_free(v->p);
	BN_free(v->rmax);
	free(v);
}

int
ecv_new(EVP_PKEY *pub, struct ecv **out)
{
	struct ecv *v = NULL;
	EC_POINT *q = NULL;
	BN_CTX *bc = NULL;
	char name[64];
	uint8_t oct[ECV_POINT_MAX];
	size_t octlen = 0;
	int rc = KT_EINTERNAL;

	if (pub == NULL || out == NULL)
		return KT_EINVAL;
	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME,
		name, sizeof(name), NULL) != 1 ||
	    OBJ_txt2nid(name) != NID_X9_62_prime256v1 ||
	    EVP_PKEY_get_octet_string_param(
		pub, OSSL_PKEY_PARAM_PUB_KEY, oct, sizeof(oct), &octlen) != 1) {
		rc = KT_EINVAL;
		goto out;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL ||
	    (bc = BN_CTX_new()) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if ((v->g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    (q = EC_POINT_new(v->g)) == NULL)
		goto out;
	/* oct2point refuses a point that is not on the curve. */
	if (EC_POINT_oct2point(v->g, q, oct, octlen, bc) != 1 ||
	    EC_POINT_is_at_infinity(v->g, q)) {
		rc = KT_EINVAL;
		goto out;
	}
	v->n = EC_GROUP_get0_order(v->g);
	if ((v->p = BN_new()) == NULL || (v->rmax = BN_new()) == NULL ||
	    EC_GROUP_get_curve(v->g, v->p, NULL, NULL, bc) != 1 ||
	    BN_sub(v->rmax, v->p, v->n) != 1)
		goto out;
	/*
	 * P-256 has cofactor 1, so every point but infinity has order n and
	 * can stand as a generator.  The precomputation must take: without
	 * it u2*Q would be no faster than OpenSSL's own verification.
	 */
	if ((v->gq = EC_GROUP_dup(v->g)) == NULL ||
	    EC_GROUP_set_generator(
		v->gq, q, v->n, EC_GROUP_get0_cofactor(v->g)) != 1 ||
	    EC_GROUP_precompute_mult(v->gq, bc) != 1 ||
	    EC_GROUP_have_precompute_mult(v->gq) != 1)
		goto out;
	*out = v;
	v = NULL;
	rc = KT_OK;
out:
	ecv_free(v);
	EC_POINT_free(q);
	BN_CTX_free(bc);
	ERR_clear_error();
	return rc;
}

/*
 * 1/s mod n by the binary extended Euclidean algorithm on 64-bit limbs
 * (least significant first).  BN_mod_inverse() does the same steps
 * through a library call per shift and subtraction, and was half the
 * cost of a check.  Nothing here is secret (s is part of a signature), so
 * the branches may depend on the values.
 */
__extension__ typedef unsigned __int128 ecv_u128;

static const uint64_t ecv_order[4] = {
	UINT64_C(0xf3b9cac2fc632551),
	UINT64_C(0xbce6faada7179e84),
	UINT64_C(0xffffffffffffffff),
	UINT64_C(0xffffffff00000000),
};

/* 1/n mod 2^64 (n is odd): Newton's iteration doubles the correct bits. */
static uint64_t
ecv_order_inv64(void)
{
	uint64_t n0 = ecv_order[0], inv = n0; /* right to 3 bits */

	for (int i = 0; i < 5; i++)
		inv *= 2 - n0 * inv;
	return inv;
}

/* a += b; returns the carry out. */
static uint64_t
u256_add(uint64_t a[4], const uint64_t b[4])
{
	uint64_t c = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t t = a[i] + c;

		c = t < c;
		a[i] = t + b[i];
		c += a[i] < t;
	}
	return c;
}

/* a -= b; returns the borrow out. */
static uint64_t
u256_sub(uint64_t a[4], const uint64_t b[4])
{
	uint64_t bw = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t t = a[i] - b[i];
		uint64_t nb = a[i] < b[i];

		nb |= t < bw;
		a[i] = t - bw;
		bw = nb;
	}
	return bw;
}

/* a >>= k for 0 < k < 64, with the low k bits of top shifted in. */
static void
u256_shr(uint64_t a[4], unsigned k, uint64_t top)
{
	for (int i = 0; i < 3; i++)
		a[i] = (a[i] >> k) | (a[i + 1] << (64 - k));
	a[3] = (a[3] >> k) | (top << (64 - k));
}

/* -1, 0 or 1 as a <, = or > b. */
static int
u256_cmp(const uint64_t a[4], const uint64_t b[4])
{
	for (int i = 3; i >= 0; i--)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static int
u256_is_one(const uint64_t a[4])
{
	return a[0] == 1 && (a[1] | a[2] | a[3]) == 0;
}

/*
 * x/2^k mod n, for x < n and 0 < k < 64: adds the multiple m*n (m < 2^k)
 * that makes the low k bits zero, then shifts.  (x + m*n)/2^k is below
 * (n + (2^k - 1)*n)/2^k = n, so no reduction follows.
 */
static void
ecv_div2k_mod(uint64_t x[4], unsigned k, uint64_t ninv)
{
	uint64_t m = (0 - x[0] * ninv) & ((UINT64_C(1) << k) - 1);
	ecv_u128 acc = 0;

	for (int i = 0; i < 4; i++) {
		acc += (ecv_u128)m * ecv_order[i] + x[i];
		x[i] = (uint64_t)acc;
		acc >>= 64;
	}
	u256_shr(x, k, (uint64_t)acc);
}

/*
 * Strips u's factors of two (u > 0), k at a time, and divides x by the
 * same power of two mod n.
 */
static void
ecv_strip2(uint64_t u[4], uint64_t x[4], uint64_t ninv)
{
	while ((u[0] & 1) == 0) {
		unsigned k = u[0] != 0 ? (unsigned)__builtin_ctzll(u[0]) : 63;

		u256_shr(u, k, 0);
		ecv_div2k_mod(x, k, ninv);
	}
}

/* a - b mod n, for a, b < n. */
static void
ecv_sub_mod(uint64_t a[4], const uint64_t b[4])
{
	if (u256_sub(a, b))
		(void)u256_add(a, ecv_order);
}

/*
 * w = 1/a mod n for 0 < a < n.  Invariants: x1*a = u and x2*a = v
 * (mod n), and gcd(u, v) = gcd(a, n) = 1 since n is prime; each round
 * makes u or v smaller, so one of them reaches 1.  A run of k zero bits
 * is shifted out at once, its halvings of x1 or x2 done as one division
 * by 2^k (ecv_div2k_mod).
 */
static void
ecv_inverse(const uint64_t a[4], uint64_t w[4])
{
	uint64_t u[4], v[4], x1[4] = { 1, 0, 0, 0 }, x2[4] = { 0, 0, 0, 0 };
	uint64_t ninv = ecv_order_inv64();

	memcpy(u, a, sizeof(u));
	memcpy(v, ecv_order, sizeof(v));
	while (!u256_is_one(u) && !u256_is_one(v)) {
		ecv_strip2(u, x1, ninv);
		ecv_strip2(v, x2, ninv);
		if (u256_cmp(u, v) >= 0) {
			(void)u256_sub(u, v);
			ecv_sub_mod(x1, x2);
		} else {
			(void)u256_sub(v, u);
			ecv_sub_mod(x2, x1);
		}
	}
	memcpy(w, u256_is_one(u) ? x1 : x2, sizeof(x1));
}

/* 1/s mod n into w, for 0 < s < n; 1 on success, 0 on failure. */
static int
ecv_inverse_bn(const BIGNUM *s, BIGNUM *w)
{
	uint8_t le[32];
	uint64_t a[4], r[4];

	if (BN_bn2lebinpad(s, le, sizeof(le)) != (int)sizeof(le))
		return 0;
	for (int i = 0; i < 4; i++) {
		a[i] = 0;
		for (int j = 7; j >= 0; j--)
			a[i] = (a[i] << 8) | le[8 * i + j];
	}
	/* Outside (0, n) the loop would not end. */
	if ((a[0] | a[1] | a[2] | a[3]) == 0 || u256_cmp(a, ecv_order) >= 0)
		return 0;
	ecv_inverse(a, r);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			le[8 * i + j] = (uint8_t)(r[i] >> (8 * j));
	return BN_lebin2bn(le, sizeof(le), w) != NULL;
}

/* 1 when 0 < x < n. */
static int
ecv_in_range(const BIGNUM *x, const BIGNUM *n)
{
	return !BN_is_zero(x) && !BN_is_negative(x) && BN_ucmp(x, n) < 0;
}

/*
 * 1 when sig is DER that decodes to a pair and encodes back to exactly
 * sig (OpenSSL's own rule: no trailing bytes, no second encoding of one
 * signature), and the pair is then in *es; 0 otherwise; -1 on failure.
 */
static int
ecv_decode(const uint8_t *sig, size_t siglen, ECDSA_SIG **es)
{
	const unsigned char *p = sig;
	unsigned char *der = NULL;
	int n, ok;

	if (siglen == 0 || siglen > INT_MAX)
		return 0;
	if ((*es = d2i_ECDSA_SIG(NULL, &p, (long)siglen)) == NULL)
		return 0;
	if (p != sig + siglen)
		return 0;
	if ((n = i2d_ECDSA_SIG(*es, &der)) <= 0)
		return -1;
	ok = (size_t)n == siglen && memcmp(der, sig, siglen) == 0;
	OPENSSL_free(der);
	return ok;
}

int
ecv_verify(const struct ecv *v, const uint8_t *digest, size_t dlen,
    const uint8_t *sig, size_t siglen)
{
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	BIGNUM *z, *w, *u1, *u2, *x, *z2, *t;
	EC_POINT *a = NULL, *b = NULL;
	BN_CTX *bc = NULL;
	int ok = 0;

	if (v == NULL || sig == NULL || (digest == NULL && dlen != 0))
		return 0;
	if ((ok = ecv_decode(sig, siglen, &es)) != 1)
		goto out;
	ok = 0;
	ECDSA_SIG_get0(es, &r, &s);
	if (!ecv_in_range(r, v->n) || !ecv_in_range(s, v->n))
		goto out;
	if (dlen > ECV_ORDER_BYTES)
		dlen = ECV_ORDER_BYTES;

	ok = -1;
	if ((bc = BN_CTX_new()) == NULL)
		goto out;
	BN_CTX_start(bc);
	z = BN_CTX_get(bc);
	w = BN_CTX_get(bc);
	u1 = BN_CTX_get(bc);
	u2 = BN_CTX_get(bc);
	z2 = BN_CTX_get(bc);
	t = BN_CTX_get(bc);
	if ((x = BN_CTX_get(bc)) == NULL || (a = EC_POINT_new(v->g)) == NULL ||
	    (b = EC_POINT_new(v->g)) == NULL)
		goto end;
	/* w = 1/s, u1 = z*w, u2 = r*w (mod n); R = u1*G + u2*Q. */
	if (BN_bin2bn(digest, (int)dlen, z) == NULL ||
	    ecv_inverse_bn(s, w) != 1 || BN_mod_mul(u1, z, w, v->n, bc) != 1 ||
	    BN_mod_mul(u2, r, w, v->n, bc) != 1 ||
	    EC_POINT_mul(v->g, a, u1, NULL, NULL, bc) != 1 ||
	    EC_POINT_mul(v->gq, b, u2, NULL, NULL, bc) != 1 ||
	    EC_POINT_add(v->g, a, a, b, bc) != 1)
		goto end;
	/* Valid when R is a point and its x, reduced mod n, is r. */
	if (EC_POINT_is_at_infinity(v->g, a)) {
		ok = 0;
		goto end;
	}
	/*
	 * R = (X/Z^2, Y/Z^3) in Jacobian coordinates; its x, below p, is r
	 * or r + n when reduced mod n is r.  So compare X with r*Z^2 (and
	 * (r + n)*Z^2 when r + n < p) instead of inverting Z.
	 */
	if (EC_POINT_get_Jprojective_coordinates_GFp(
		v->g, a, x, NULL, z2, bc) != 1 ||
	    BN_mod_sqr(z2, z2, v->p, bc) != 1 ||
	    BN_mod_mul(t, r, z2, v->p, bc) != 1)
		goto end;
	ok = BN_cmp(t, x) == 0;
	if (!ok && BN_cmp(r, v->rmax) < 0) {
		if (BN_add(t, r, v->n) != 1 ||
		    BN_mod_mul(t, t, z2, v->p, bc) != 1) {
			ok = -1;
			goto end;
		}
		ok = BN_cmp(t, x) == 0;
	}
end:
	BN_CTX_end(bc);
out:
	EC_POINT_free(a);
	EC_POINT_free(b);
	BN_CTX_free(bc);
	ECDSA_SIG_free(es);
	ERR_clear_error();
	return ok;
}
