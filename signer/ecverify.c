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
};

void
ecv_free(struct ecv *v)
{
	if (v == NULL)
		return;
	EC_GROUP_free(v->g);
	EC_GROUP_free(v->gq);
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
	BIGNUM *z, *w, *u1, *u2, *x;
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
	if ((x = BN_CTX_get(bc)) == NULL || (a = EC_POINT_new(v->g)) == NULL ||
	    (b = EC_POINT_new(v->g)) == NULL)
		goto end;
	/* w = 1/s, u1 = z*w, u2 = r*w (mod n); R = u1*G + u2*Q. */
	if (BN_bin2bn(digest, (int)dlen, z) == NULL ||
	    BN_mod_inverse(w, s, v->n, bc) == NULL ||
	    BN_mod_mul(u1, z, w, v->n, bc) != 1 ||
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
	if (EC_POINT_get_affine_coordinates(v->g, a, x, NULL, bc) != 1 ||
	    BN_nnmod(x, x, v->n, bc) != 1)
		goto end;
	ok = BN_cmp(x, r) == 0;
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
