/*
 * The fast P-256 check (signer/ecverify.c) against OpenSSL's own ECDSA
 * verification: for fresh keys and digests, signatures made by OpenSSL
 * must verify; then every alteration of a signature or a digest (each
 * bit, random bytes, hand-made edge cases: r or s zero, equal to or
 * beyond the order, negative, padded, trailing bytes, digests of other
 * lengths, another key) must get exactly OpenSSL's answer.  Keys that are
 * not P-256 are refused.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "ecverify.h"
#include "testutil.h"

#define SIG_MAX 80

static EVP_PKEY *
gen_ec(const char *curve)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	assert_non_null(pk);
	return pk;
}

/* OpenSSL's answer: 1 valid, 0 anything else. */
static int
evp_verify(EVP_PKEY *pk, const uint8_t *d, size_t dlen, const uint8_t *sig,
    size_t siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	int r;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	r = EVP_PKEY_verify(c, sig, siglen, d, dlen);
	EVP_PKEY_CTX_free(c);
	return r == 1;
}

static size_t
evp_sign(EVP_PKEY *pk, const uint8_t *d, size_t dlen, uint8_t *sig)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	size_t len = SIG_MAX;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_sign(c, sig, &len, d, dlen), 1);
	EVP_PKEY_CTX_free(c);
	return len;
}

/* Both verifiers give the same answer; returns it. */
static int
same(const struct ecv *v, EVP_PKEY *pk, const uint8_t *d, size_t dlen,
    const uint8_t *sig, size_t siglen)
{
	int want = evp_verify(pk, d, dlen, sig, siglen);
	int got = ecv_verify(v, d, dlen, sig, siglen);

	assert_int_equal(got, want);
	return got;
}

/* DER of the pair (r, s); returns its length. */
static size_t
der_of(const BIGNUM *r, const BIGNUM *s, uint8_t *out)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *p = out;
	int n;

	assert_non_null(es);
	assert_int_equal(ECDSA_SIG_set0(es, BN_dup(r), BN_dup(s)), 1);
	n = i2d_ECDSA_SIG(es, &p);
	assert_true(n > 0 && n <= SIG_MAX);
	ECDSA_SIG_free(es);
	return (size_t)n;
}

/* A DER INTEGER of the non-negative x at out; returns its length. */
static size_t
der_int(const BIGNUM *x, uint8_t *out)
{
	size_t len = (size_t)BN_num_bytes(x), pad = BN_num_bits(x) % 8 == 0;

	out[0] = 0x02;
	out[1] = (uint8_t)(len + pad);
	out[2] = 0;
	assert_int_equal(BN_bn2bin(x, out + 2 + pad), (int)len);
	return 2 + pad + len;
}

static void
test_ecv_valid_and_every_bit_flip(void **state)
{
	(void)state;
	for (int key = 0; key < 2; key++) {
		EVP_PKEY *pk = gen_ec("P-256");
		struct ecv *v = NULL;

		assert_int_equal(ecv_new(pk, &v), KT_OK);
		for (int i = 0; i < 6; i++) {
			uint8_t d[32], sig[SIG_MAX], bad[SIG_MAX], dd[32];
			size_t len;

			assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
			len = evp_sign(pk, d, sizeof(d), sig);
			assert_int_equal(
			    same(v, pk, d, sizeof(d), sig, len), 1);
			/* Every single bit of the signature and the digest. */
			for (size_t b = 0; b < len * 8; b++) {
				memcpy(bad, sig, len);
				bad[b / 8] ^= (uint8_t)(1u << (b % 8));
				same(v, pk, d, sizeof(d), bad, len);
			}
			for (size_t b = 0; b < sizeof(d) * 8; b++) {
				memcpy(dd, d, sizeof(d));
				dd[b / 8] ^= (uint8_t)(1u << (b % 8));
				assert_int_equal(
				    same(v, pk, dd, sizeof(dd), sig, len), 0);
			}
			/* Cut short, and a byte too many. */
			assert_int_equal(
			    same(v, pk, d, sizeof(d), sig, len - 1), 0);
			sig[len] = 0;
			assert_int_equal(
			    same(v, pk, d, sizeof(d), sig, len + 1), 0);
		}
		ecv_free(v);
		EVP_PKEY_free(pk);
	}
}

static void
test_ecv_random_bytes(void **state)
{
	EVP_PKEY *pk = gen_ec("P-256");
	struct ecv *v = NULL;
	uint8_t d[32], sig[SIG_MAX];

	(void)state;
	assert_int_equal(ecv_new(pk, &v), KT_OK);
	for (int i = 0; i < 3000; i++) {
		size_t len;

		assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
		len = evp_sign(pk, d, sizeof(d), sig);
		/* Keep the DER frame, replace some of its content. */
		for (int j = 0; j < 1 + i % 4; j++) {
			uint8_t pos, val;

			assert_int_equal(RAND_bytes(&pos, 1), 1);
			assert_int_equal(RAND_bytes(&val, 1), 1);
			sig[pos % len] = val;
		}
		same(v, pk, d, sizeof(d), sig, len);
	}
	ecv_free(v);
	EVP_PKEY_free(pk);
}

static void
test_ecv_edge_cases(void **state)
{
	EVP_PKEY *pk = gen_ec("P-256"), *other = gen_ec("P-256");
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	const BIGNUM *n;
	BIGNUM *zero = BN_new(), *np1 = BN_new(), *nm1 = BN_new(),
	       *big = BN_new(), *r = NULL, *s = NULL;
	struct ecv *v = NULL, *vo = NULL;
	uint8_t d[64], sig[SIG_MAX], bad[SIG_MAX + 2];
	const unsigned char *p;
	ECDSA_SIG *es;
	size_t len, blen;

	(void)state;
	assert_non_null(g);
	n = EC_GROUP_get0_order(g);
	assert_int_equal(ecv_new(pk, &v), KT_OK);
	assert_int_equal(ecv_new(other, &vo), KT_OK);
	assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
	len = evp_sign(pk, d, 32, sig);
	p = sig;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)len));
	r = BN_dup(ECDSA_SIG_get0_r(es));
	s = BN_dup(ECDSA_SIG_get0_s(es));
	ECDSA_SIG_free(es);

	/* Another key's verifier refuses it, as OpenSSL does. */
	assert_int_equal(same(vo, other, d, 32, sig, len), 0);

	/* r or s out of [1, n-1]. */
	BN_zero(zero);
	assert_non_null(BN_copy(np1, n));
	assert_int_equal(BN_add_word(np1, 1), 1);
	assert_non_null(BN_copy(nm1, n));
	assert_int_equal(BN_sub_word(nm1, 1), 1);
	assert_int_equal(BN_lshift(big, n, 8), 1);
	{
		const BIGNUM *vals[] = { zero, n, np1, nm1, big };

		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			blen = der_of(vals[i], s, bad);
			assert_int_equal(same(v, pk, d, 32, bad, blen), 0);
			blen = der_of(r, vals[i], bad);
			assert_int_equal(same(v, pk, d, 32, bad, blen), 0);
		}
	}
	/* (r, n - s) is the other valid signature of the same digest. */
	{
		BIGNUM *ns = BN_new();

		assert_int_equal(BN_sub(ns, n, s), 1);
		blen = der_of(r, ns, bad);
		assert_int_equal(same(v, pk, d, 32, bad, blen), 1);
		BN_free(ns);
	}
	/* A second encoding of the same pair: a padded INTEGER. */
	blen = der_of(r, s, bad);
	assert_int_equal(same(v, pk, d, 32, bad, blen), 1);
	{
		uint8_t pad[SIG_MAX + 2];
		size_t rl = bad[3];

		/* 30 L 02 rl r... 02 sl s... -> 30 L+1 02 rl+1 00 r... */
		if (bad[1] < 0x7f && rl < 0x7f) {
			pad[0] = 0x30;
			pad[1] = (uint8_t)(bad[1] + 1);
			pad[2] = 0x02;
			pad[3] = (uint8_t)(rl + 1);
			pad[4] = 0;
			memcpy(pad + 5, bad + 4, blen - 4);
			assert_int_equal(same(v, pk, d, 32, pad, blen + 1), 0);
		}
	}
	/*
	 * A negative r: its INTEGER's first byte has the top bit set and no
	 * zero byte before it.
	 */
	{
		uint8_t rb[32];
		size_t sl;

		assert_int_equal(BN_bn2binpad(r, rb, 32), 32);
		rb[0] |= 0x80;
		sl = (size_t)BN_num_bytes(s);
		bad[0] = 0x30;
		bad[1] =
		    (uint8_t)(2 + 32 + 2 + sl + ((BN_num_bits(s) % 8) == 0));
		bad[2] = 0x02;
		bad[3] = 32;
		memcpy(bad + 4, rb, 32);
		blen = 36 + der_int(s, bad + 36);
		assert_int_equal(blen, (size_t)bad[1] + 2);
		assert_int_equal(same(v, pk, d, 32, bad, blen), 0);
	}
	/* Not DER at all, empty. */
	assert_int_equal(same(v, pk, d, 32, (const uint8_t *)"\x30\x00", 2), 0);
	assert_int_equal(ecv_verify(v, d, 32, sig, 0), 0);
	assert_int_equal(ecv_verify(NULL, d, 32, sig, len), 0);

	/* Digests of other lengths: cut to 32 bytes, or taken whole. */
	{
		const size_t lens[] = { 0, 1, 20, 31, 33, 48, 64 };

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			len = evp_sign(pk, d, lens[i], sig);
			assert_int_equal(same(v, pk, d, lens[i], sig, len), 1);
			d[lens[i] == 0 ? 0 : lens[i] - 1] ^= 1;
			same(v, pk, d, lens[i], sig, len);
		}
	}

	BN_free(zero);
	BN_free(np1);
	BN_free(nm1);
	BN_free(big);
	BN_free(r);
	BN_free(s);
	EC_GROUP_free(g);
	ecv_free(v);
	ecv_free(vo);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(other);
}

/*
 * (r, s) was made to be a valid signature of the digest z: both verifiers
 * must accept it, and refuse it once a bit of the digest changes.
 */
static void
valid_then_not(const struct ecv *v, EVP_PKEY *pk, const BIGNUM *z,
    const BIGNUM *r, const BIGNUM *s)
{
	uint8_t dig[32], sig[SIG_MAX];
	size_t len;

	assert_int_equal(BN_bn2binpad(z, dig, sizeof(dig)), 32);
	len = der_of(r, s, sig);
	assert_int_equal(same(v, pk, dig, sizeof(dig), sig, len), 1);
	dig[31] ^= 1;
	assert_int_equal(same(v, pk, dig, sizeof(dig), sig, len), 0);
}

/*
 * Valid signatures with chosen s, made from the private key: for a random
 * k and r = x(kG) mod n, the digest z = s*k - r*d (mod n) makes (r, s)
 * valid.  The check inverts s itself (signer/ecverify.c); these reach the
 * ends of its loop: s = 1, 2, n-1, n-2, powers of two, one limb set.
 */
static void
test_ecv_chosen_s(void **state)
{
	EVP_PKEY *pk = gen_ec("P-256");
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BN_CTX *bc = BN_CTX_new();
	BIGNUM *d = NULL, *k = BN_new(), *r = BN_new(), *z = BN_new(),
	       *t = BN_new(), *s = BN_new();
	const BIGNUM *n;
	EC_POINT *pt;
	struct ecv *v = NULL;

	(void)state;
	assert_non_null(g);
	assert_non_null(bc);
	assert_non_null(pt = EC_POINT_new(g));
	n = EC_GROUP_get0_order(g);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, "priv", &d), 1);
	assert_int_equal(ecv_new(pk, &v), KT_OK);
	for (int i = 0; i < 40; i++) {
		switch (i % 10) {
		case 0:
			assert_int_equal(BN_set_word(s, 1), 1);
			break;
		case 1:
			assert_int_equal(BN_set_word(s, 2), 1);
			break;
		case 2:
			assert_int_equal(BN_sub(s, n, BN_value_one()), 1);
			break;
		case 3:
			assert_int_equal(BN_set_word(s, 2), 1);
			assert_int_equal(BN_sub(s, n, s), 1);
			break;
		case 4:
			assert_int_equal(BN_set_word(s, 1), 1);
			assert_int_equal(BN_lshift(s, s, 255), 1);
			break;
		case 5:
			assert_int_equal(BN_set_word(s, 1), 1);
			assert_int_equal(
			    BN_lshift(s, s, 64 * (i / 10) + 63), 1);
			break;
		case 6:
			assert_int_equal(BN_set_word(s, UINT64_MAX), 1);
			assert_int_equal(BN_lshift(s, s, 64 * (i / 10)), 1);
			assert_int_equal(BN_nnmod(s, s, n, bc), 1);
			break;
		default:
			assert_int_equal(BN_rand_range(s, n), 1);
			if (BN_is_zero(s))
				assert_int_equal(BN_set_word(s, 3), 1);
		}
		do {
			assert_int_equal(BN_rand_range(k, n), 1);
			assert_int_equal(
			    EC_POINT_mul(g, pt, k, NULL, NULL, bc), 1);
			assert_int_equal(
			    EC_POINT_get_affine_coordinates(g, pt, r, NULL, bc),
			    1);
			assert_int_equal(BN_nnmod(r, r, n, bc), 1);
		} while (BN_is_zero(r) || BN_is_zero(k));
		assert_int_equal(BN_mod_mul(z, s, k, n, bc), 1);
		assert_int_equal(BN_mod_mul(t, r, d, n, bc), 1);
		assert_int_equal(BN_mod_sub(z, z, t, n, bc), 1);
		valid_then_not(v, pk, z, r, s);
	}
	BN_free(d);
	BN_free(k);
	BN_free(r);
	BN_free(z);
	BN_free(t);
	BN_free(s);
	EC_POINT_free(pt);
	BN_CTX_free(bc);
	EC_GROUP_free(g);
	ecv_free(v);
	EVP_PKEY_free(pk);
}

/* The P-256 key with public point q. */
static EVP_PKEY *
key_of_point(const EC_GROUP *g, const EC_POINT *q, BN_CTX *bc)
{
	uint8_t oct[65];
	OSSL_PARAM prm[3];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;

	assert_non_null(c);
	assert_int_equal(EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED,
			     oct, sizeof(oct), bc),
	    sizeof(oct));
	prm[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	prm[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, oct, sizeof(oct));
	prm[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
	assert_int_equal(
	    EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, prm), 1);
	EVP_PKEY_CTX_free(c);
	return pk;
}

/*
 * x(R) mod n = r also holds when x(R) = r + n, for x(R) in [n, p): too
 * rare to meet by chance (about 2^-128), so made.  Pick such a point R,
 * r = x(R) - n, any s and z, and the public key Q = (s/r)R - (z/r)G:
 * then z/s G + r/s Q = R, and (r, s) is a valid signature of z for Q.
 * The check compares x(R) without inverting Z (signer/ecverify.c) and
 * must try r + n as OpenSSL does.
 */
static void
test_ecv_x_beyond_order(void **state)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BN_CTX *bc = BN_CTX_new();
	BIGNUM *x = BN_new(), *r = BN_new(), *s = BN_new(), *z = BN_new(),
	       *w = BN_new(), *a1 = BN_new(), *a2 = BN_new();
	const BIGNUM *n;
	EC_POINT *big, *q;

	(void)state;
	assert_non_null(g);
	assert_non_null(bc);
	assert_non_null(big = EC_POINT_new(g));
	assert_non_null(q = EC_POINT_new(g));
	n = EC_GROUP_get0_order(g);
	assert_non_null(BN_copy(x, n));
	for (int found = 0; found < 3;) {
		struct ecv *v = NULL;
		EVP_PKEY *pk;

		assert_int_equal(BN_add_word(x, 1), 1);
		if (EC_POINT_set_compressed_coordinates(
			g, big, x, found & 1, bc) != 1) {
			ERR_clear_error();
			continue;
		}
		found++;
		assert_int_equal(BN_sub(r, x, n), 1);
		assert_int_equal(BN_rand_range(s, n), 1);
		assert_int_equal(BN_rand_range(z, n), 1);
		assert_false(BN_is_zero(s));
		assert_non_null(BN_mod_inverse(w, r, n, bc));
		assert_int_equal(BN_mod_mul(a1, s, w, n, bc), 1);
		assert_int_equal(BN_mod_mul(a2, z, w, n, bc), 1);
		assert_int_equal(BN_mod_sub(a2, n, a2, n, bc), 1);
		assert_int_equal(EC_POINT_mul(g, q, a2, big, a1, bc), 1);
		pk = key_of_point(g, q, bc);
		assert_int_equal(ecv_new(pk, &v), KT_OK);
		valid_then_not(v, pk, z, r, s);
		ecv_free(v);
		EVP_PKEY_free(pk);
	}
	BN_free(x);
	BN_free(r);
	BN_free(s);
	BN_free(z);
	BN_free(w);
	BN_free(a1);
	BN_free(a2);
	EC_POINT_free(big);
	EC_POINT_free(q);
	BN_CTX_free(bc);
	EC_GROUP_free(g);
}

static void
test_ecv_refuses_other_keys(void **state)
{
	EVP_PKEY *p384 = gen_ec("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct ecv *v = NULL;

	(void)state;
	assert_non_null(ed);
	assert_non_null(rsa);
	assert_int_equal(ecv_new(p384, &v), KT_EINVAL);
	assert_int_equal(ecv_new(ed, &v), KT_EINVAL);
	assert_int_equal(ecv_new(rsa, &v), KT_EINVAL);
	assert_int_equal(ecv_new(NULL, &v), KT_EINVAL);
	assert_null(v);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecv_valid_and_every_bit_flip),
		cmocka_unit_test(test_ecv_random_bytes),
		cmocka_unit_test(test_ecv_edge_cases),
		cmocka_unit_test(test_ecv_chosen_s),
		cmocka_unit_test(test_ecv_x_beyond_order),
		cmocka_unit_test(test_ecv_refuses_other_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
