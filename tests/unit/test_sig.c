/*
 * Public keys and signature checks: every supported algorithm round-trips
 * a signature made the way `openssl dgst -sha256 -sign` makes it, weak
 * and non-canonical keys are refused, and tampered signatures fail.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "keytrail/encoding.h"
#include "keytrail/sig.h"
#include "testutil.h"

static EVP_PKEY *
gen(const char *type, int param)
{
	EVP_PKEY_CTX *c;
	EVP_PKEY *pk = NULL;

	if (strcmp(type, "EC") == 0) {
		assert_non_null(c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, param), 1);
	} else if (strcmp(type, "RSA") == 0) {
		assert_non_null(c = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, param), 1);
	} else {
		assert_non_null(
		    c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	}
	assert_int_equal(EVP_PKEY_keygen(c, &pk), 1);
	EVP_PKEY_CTX_free(c);
	return pk;
}

/* Signs data as `openssl dgst -sha256 -sign` does (Ed25519: the digest). */
static size_t
sign(EVP_PKEY *pk, const uint8_t *data, size_t len, uint8_t *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = KT_SIG_MAX;
	uint8_t digest[32];

	assert_non_null(md);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		SHA256(data, len, digest);
		assert_int_equal(
		    EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
		assert_int_equal(
		    EVP_DigestSign(md, sig, &siglen, digest, 32), 1);
	} else {
		assert_int_equal(
		    EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pk), 1);
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(
					     pctx, RSA_PKCS1_PSS_PADDING),
			    1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
		}
		assert_int_equal(
		    EVP_DigestSign(md, sig, &siglen, data, len), 1);
	}
	EVP_MD_CTX_free(md);
	return siglen;
}

static void
test_kt_pubkey_verify_every_algorithm(void **state)
{
	static const struct {
		const char *type;
		int param;
		const char *alg;
	} cases[] = {
		{ "EC", NID_X9_62_prime256v1, "ecdsa-p256-sha256" },
		{ "EC", NID_secp384r1, "ecdsa-p384-sha256" },
		{ "ED", 0, "ed25519" },
		{ "RSA", 3072, "rsa3072-pss-sha256" },
	};
	const uint8_t data[] = "the artifact";

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EVP_PKEY *pk = gen(cases[i].type, cases[i].param);
		uint8_t *der = NULL, sig[KT_SIG_MAX], digest[32];
		struct kt_pubkey *k = NULL, *k2;
		struct kt_hash id;
		char hex[65];
		int n = i2d_PUBKEY(pk, &der);
		size_t siglen = sign(pk, data, sizeof(data), sig);

		assert_true(n > 0);
		assert_int_equal(kt_pubkey_parse(der, (size_t)n, &k), KT_OK);
		assert_string_equal(kt_pubkey_alg(k), cases[i].alg);
		SHA256(der, (size_t)n, id.b);
		kt_hex_encode(id.b, 32, hex);
		assert_string_equal(kt_pubkey_id(k), hex);
		SHA256(data, sizeof(data), digest);
		assert_int_equal(
		    kt_pubkey_verify(k, digest, sig, siglen), KT_OK);
		/* A second reference works on its own. */
		assert_non_null(k2 = kt_pubkey_ref(k));
		kt_pubkey_free(k);
		assert_int_equal(
		    kt_pubkey_verify(k2, digest, sig, siglen), KT_OK);
		/* Tampered signature, other digest, empty, oversized. */
		sig[siglen / 2] ^= 1;
		assert_int_equal(
		    kt_pubkey_verify(k2, digest, sig, siglen), KT_EVERIFY);
		sig[siglen / 2] ^= 1;
		digest[0] ^= 1;
		assert_int_equal(
		    kt_pubkey_verify(k2, digest, sig, siglen), KT_EVERIFY);
		assert_int_equal(
		    kt_pubkey_verify(k2, digest, sig, 0), KT_EVERIFY);
		assert_int_equal(
		    kt_pubkey_verify(k2, digest, sig, KT_SIG_MAX + 1),
		    KT_EVERIFY);
		kt_pubkey_free(k2);
		OPENSSL_free(der);
		EVP_PKEY_free(pk);
	}
}

static void
test_kt_pubkey_parse_refuses_weak_and_noncanonical(void **state)
{
	EVP_PKEY *weak[2];
	uint8_t *der = NULL, buf[KT_SPKI_MAX + 10];
	struct kt_pubkey *k = NULL;
	int n;

	(void)state;
	weak[0] = gen("EC", NID_secp224r1);
	weak[1] = gen("RSA", 2048);
	for (int i = 0; i < 2; i++) {
		n = i2d_PUBKEY(weak[i], &der);
		assert_int_equal(
		    kt_pubkey_parse(der, (size_t)n, &k), KT_EPOLICY);
		OPENSSL_free(der);
		der = NULL;
		EVP_PKEY_free(weak[i]);
	}
	weak[0] = gen("EC", NID_X9_62_prime256v1);
	n = i2d_PUBKEY(weak[0], &der);
	/* Trailing byte, truncated, garbage, oversized. */
	memcpy(buf, der, (size_t)n);
	buf[n] = 0;
	assert_int_equal(kt_pubkey_parse(buf, (size_t)n + 1, &k), KT_EPARSE);
	assert_int_equal(kt_pubkey_parse(buf, (size_t)n - 1, &k), KT_EPARSE);
	memset(buf, 0x30, sizeof(buf));
	assert_int_equal(kt_pubkey_parse(buf, 40, &k), KT_EPARSE);
	assert_int_equal(kt_pubkey_parse(buf, sizeof(buf), &k), KT_ETOOBIG);
	assert_null(k);
	OPENSSL_free(der);
	EVP_PKEY_free(weak[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kt_pubkey_verify_every_algorithm),
		cmocka_unit_test(
		    test_kt_pubkey_parse_refuses_weak_and_noncanonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
