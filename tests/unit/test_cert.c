/*
 * X.509 for the signing keys (signer/cert.c): certification requests for
 * every algorithm the HSM makes, signed here the way hsm_sign() signs and
 * checked by OpenSSL as any CA would check them; certificates read back
 * with their validity, subject and key; subjects parsed strictly.  Forged,
 * truncated, non-canonical and oversized inputs are refused.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cert.h"
#include "testutil.h"

static EVP_PKEY *
gen(enum hsm_alg alg)
{
	EVP_PKEY_CTX *c;
	EVP_PKEY *pk = NULL;

	switch (alg) {
	case HSM_ECDSA_P256:
	case HSM_ECDSA_P384:
		assert_non_null(c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c,
			alg == HSM_ECDSA_P256 ? NID_X9_62_prime256v1
					      : NID_secp384r1),
		    1);
		break;
	case HSM_RSA3072_PSS:
	case HSM_RSA4096_PSS:
		assert_non_null(c = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(
				     c, alg == HSM_RSA3072_PSS ? 3072 : 4096),
		    1);
		break;
	case HSM_ED25519:
	default:
		assert_non_null(
		    c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL));
		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		break;
	}
	assert_int_equal(EVP_PKEY_keygen(c, &pk), 1);
	EVP_PKEY_CTX_free(c);
	return pk;
}

/* The DER SubjectPublicKeyInfo of pk (caller frees with OPENSSL_free). */
static uint8_t *
spki_of(EVP_PKEY *pk, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

/*
 * Signs msg as hsm_sign() does: Ed25519 over the message, ECDSA (DER) and
 * RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over a 32-byte digest.
 */
static size_t
hsm_like_sign(EVP_PKEY *pk, struct kt_bytes msg, uint8_t *sig, size_t cap)
{
	size_t siglen = cap;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		assert_non_null(md);
		assert_int_equal(
		    EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
		assert_int_equal(
		    EVP_DigestSign(md, sig, &siglen, msg.p, msg.len), 1);
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);

		assert_non_null(c);
		assert_int_equal(msg.len, 32);
		assert_int_equal(EVP_PKEY_sign_init(c), 1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(
					     c, RSA_PKCS1_PSS_PADDING),
			    1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()), 1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32), 1);
		}
		assert_int_equal(
		    EVP_PKEY_sign(c, sig, &siglen, msg.p, msg.len), 1);
		EVP_PKEY_CTX_free(c);
	}
	return siglen;
}

static X509_REQ *
pem_req(const struct kt_buf *pem)
{
	BIO *b = BIO_new_mem_buf(pem->p, (int)pem->len);
	X509_REQ *req;

	assert_non_null(b);
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(req);
	return req;
}

/* The subject of a request or certificate as cert.c prints it. */
static void
name_text(const X509_NAME *n, char *out, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;

	assert_non_null(b);
	assert_true(X509_NAME_print_ex(
			b, n, 0, XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV) >= 0);
	len = BIO_get_mem_data(b, &p);
	assert_true(len >= 0 && (size_t)len < cap);
	memcpy(out, p, (size_t)len);
	out[len] = 0;
	BIO_free(b);
}

/* One CSR for alg: it verifies, names subject, carries the key. */
static void
csr_roundtrip(enum hsm_alg alg, const char *subject, const char *sigoid)
{
	EVP_PKEY *pk = gen(alg), *got;
	uint8_t sig[1024], *spki, *gspki = NULL;
	size_t spkilen, siglen;
	struct cert_csr *csr = NULL;
	struct kt_buf pem;
	X509_REQ *req;
	const X509_ALGOR *sa;
	const ASN1_OBJECT *oid;
	char text[256], oidtxt[64], err[256];
	int n;

	spki = spki_of(pk, &spkilen);
	kt_buf_init(&pem, CERT_PEM_MAX);
	assert_int_equal(cert_csr_new(spki, spkilen, alg, subject,
			     strlen(subject), &csr, err, sizeof(err)),
	    KT_OK);
	siglen = hsm_like_sign(pk, cert_csr_message(csr), sig, sizeof(sig));

	/* A wrong signature is refused and writes nothing. */
	sig[siglen / 2] ^= 0x40;
	assert_int_equal(cert_csr_finish(csr, sig, siglen, &pem), KT_EVERIFY);
	assert_int_equal(pem.len, 0);
	sig[siglen / 2] ^= 0x40;
	assert_int_equal(cert_csr_finish(csr, sig, siglen, &pem), KT_OK);
	assert_true(pem.len > 0);
	/* Finished once. */
	assert_int_equal(cert_csr_finish(csr, sig, siglen, &pem), KT_EINVAL);
	cert_csr_free(csr);

	req = pem_req(&pem);
	assert_non_null(got = X509_REQ_get0_pubkey(req));
	assert_int_equal(X509_REQ_verify(req, got), 1);
	assert_int_equal(X509_REQ_verify(req, pk), 1);
	n = i2d_PUBKEY(got, &gspki);
	assert_int_equal(n, (int)spkilen);
	assert_memory_equal(gspki, spki, spkilen);
	name_text(X509_REQ_get_subject_name(req), text, sizeof(text));
	assert_string_equal(text, subject);
	assert_int_equal(X509_REQ_get_version(req), 0);
	X509_REQ_get0_signature(req, NULL, &sa);
	X509_ALGOR_get0(&oid, NULL, NULL, sa);
	OBJ_obj2txt(oidtxt, sizeof(oidtxt), oid, 1);
	assert_string_equal(oidtxt, sigoid);

	OPENSSL_free(gspki);
	OPENSSL_free(spki);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	kt_buf_free(&pem);
}

static void
test_cert_csr_ecdsa_p256(void **state)
{
	(void)state;
	csr_roundtrip(HSM_ECDSA_P256, "CN=build.example,O=Example Corp",
	    "1.2.840.10045.4.3.2");
}

static void
test_cert_csr_ecdsa_p384(void **state)
{
	(void)state;
	csr_roundtrip(HSM_ECDSA_P384, "C=DE,ST=Berlin,L=Berlin,O=Ex,OU=CI,CN=x",
	    "1.2.840.10045.4.3.2");
}

static void
test_cert_csr_ed25519(void **state)
{
	(void)state;
	csr_roundtrip(HSM_ED25519, "CN=ed", "1.3.101.112");
}

static void
test_cert_csr_rsa_pss(void **state)
{
	(void)state;
	csr_roundtrip(
	    HSM_RSA3072_PSS, "CN=rsa,OU=a,OU=b", "1.2.840.113549.1.1.10");
}

/* A key of another type than alg says is a caller bug. */
static void
test_cert_csr_new_refuses_wrong_key(void **state)
{
	EVP_PKEY *pk = gen(HSM_ED25519);
	uint8_t *spki;
	size_t spkilen;
	struct cert_csr *csr = NULL;

	(void)state;
	spki = spki_of(pk, &spkilen);
	assert_int_equal(cert_csr_new(spki, spkilen, HSM_ECDSA_P256, "CN=x", 4,
			     &csr, NULL, 0),
	    KT_EINVAL);
	assert_int_equal(cert_csr_new(spki, spkilen - 1, HSM_ED25519, "CN=x", 4,
			     &csr, NULL, 0),
	    KT_EINVAL);
	assert_int_equal(cert_csr_new(spki, spkilen, (enum hsm_alg)99, "CN=x",
			     4, &csr, NULL, 0),
	    KT_EINVAL);
	assert_null(csr);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
}

static void
test_cert_subject_check_table(void **state)
{
	static const struct {
		const char *s;
		int rc;
	} cases[] = {
		{ "CN=a", KT_OK },
		{ "CN=build,O=Example Corp,OU=CI,L=Berlin,ST=BE,C=DE", KT_OK },
		{ "OU=a,OU=a", KT_OK },
		{ "CN=a-b_c.d@e(f)/g:h?i!j", KT_OK },
		{ "", KT_EPARSE },
		{ "CN", KT_EPARSE },
		{ "CN=", KT_EPARSE },
		{ "=a", KT_EPARSE },
		{ "CN=a,", KT_EPARSE },
		{ ",CN=a", KT_EPARSE },
		{ "CN=a,,O=b", KT_EPARSE },
		{ "CN=a, O=b", KT_EPARSE },
		{ "CN= a", KT_EPARSE },
		{ "CN=a ", KT_EPARSE },
		{ "cn=a", KT_EPARSE },
		{ "E=a@b", KT_EPARSE },
		{ "CN=a=b", KT_EPARSE },
		{ "CN=a+O=b", KT_EPARSE },
		{ "CN=a\\,b", KT_EPARSE },
		{ "CN=\"a\"", KT_EPARSE },
		{ "CN=#04", KT_EPARSE },
		{ "CN=a;b", KT_EPARSE },
		{ "CN=<a>", KT_EPARSE },
		{ "CN=a\tb", KT_EPARSE },
		{ "CN=caf\xc3\xa9", KT_EPARSE },
		{ "C=de", KT_EPARSE },
		{ "C=DEU", KT_EPARSE },
		{ "CN=0123456789012345678901234567890123456789012345678901234"
		  "567890123",
		    KT_OK },
		{ "CN=0123456789012345678901234567890123456789012345678901234"
		  "5678901234",
		    KT_EPARSE },
		{ "OU=1,OU=2,OU=3,OU=4,OU=5,OU=6,OU=7,OU=8,OU=9,OU=10,OU=11,"
		  "OU=12,OU=13,OU=14,OU=15,OU=16",
		    KT_OK },
		{ "OU=1,OU=2,OU=3,OU=4,OU=5,OU=6,OU=7,OU=8,OU=9,OU=10,OU=11,"
		  "OU=12,OU=13,OU=14,OU=15,OU=16,OU=17",
		    KT_ETOOBIG },
	};
	char err[256], big[CERT_SUBJECT_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		err[0] = 0;
		rc = cert_subject_check(
		    cases[i].s, strlen(cases[i].s), err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("subject \"%s\": got %d, want %d (%s)",
			    cases[i].s, rc, cases[i].rc, err);
		if (rc != KT_OK && strncmp(err, "subject: ", 9) != 0)
			fail_msg(
			    "subject \"%s\": message \"%s\"", cases[i].s, err);
	}
	/* Embedded NUL is not a printable byte. */
	assert_int_equal(cert_subject_check("CN=a\0b", 6, NULL, 0), KT_EPARSE);
	memset(big, 'a', sizeof(big));
	memcpy(big, "CN=", 3);
	assert_int_equal(
	    cert_subject_check(big, sizeof(big), NULL, 0), KT_ETOOBIG);
}

/* A certificate for subject's key pk, issued by ca, valid nb..na. */
static uint8_t *
make_cert(EVP_PKEY *pk, EVP_PKEY *ca, int64_t nb, int64_t na, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	uint8_t *der = NULL;
	int dlen;

	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
			     (const unsigned char *)"Ex", -1, -1, 0),
	    1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
			     (const unsigned char *)"b\xc3\xa4r", -1, -1, 0),
	    1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
	assert_int_equal(X509_set_pubkey(x, pk), 1);
	/* Ed25519 takes no separate digest. */
	assert_true(X509_sign(x, ca,
			EVP_PKEY_get_base_id(ca) == EVP_PKEY_ED25519
			    ? NULL
			    : EVP_sha256()) > 0);
	dlen = i2d_X509(x, &der);
	assert_true(dlen > 0);
	*len = (size_t)dlen;
	X509_NAME_free(n);
	X509_free(x);
	return der;
}

static void
test_cert_parse_reads_certificate(void **state)
{
	EVP_PKEY *pk = gen(HSM_ECDSA_P256), *ca = gen(HSM_ED25519);
	EVP_PKEY *other = gen(HSM_ECDSA_P256);
	uint8_t *spki, *ospki, *der, buf[CERT_DER_MAX + 2];
	size_t spkilen, ospkilen, len;
	struct cert_info ci, untouched;
	char err[256];

	(void)state;
	spki = spki_of(pk, &spkilen);
	ospki = spki_of(other, &ospkilen);
	/* 2030-01-01 to 2031-01-01, a year 9999 end. */
	der = make_cert(pk, ca, INT64_C(1893456000), INT64_C(1924992000), &len);
	assert_int_equal(
	    cert_parse(der, len, spki, spkilen, &ci, err, sizeof(err)), KT_OK);
	assert_int_equal(ci.not_before, INT64_C(1893456000));
	assert_int_equal(ci.not_after, INT64_C(1924992000));
	/* Bytes above 0x7f come out as RFC 4514 escapes. */
	assert_string_equal(ci.subject, "O=Ex,CN=b\\C3\\A4r");

	memset(&untouched, 0x5a, sizeof(untouched));
	ci = untouched;
	/* Another key's certificate. */
	assert_int_equal(
	    cert_parse(der, len, ospki, ospkilen, &ci, err, sizeof(err)),
	    KT_EVERIFY);
	/* Truncated, with a trailing byte, one bit flipped in the tag. */
	assert_int_equal(
	    cert_parse(der, len - 1, spki, spkilen, &ci, NULL, 0), KT_EPARSE);
	memcpy(buf, der, len);
	buf[len] = 0;
	assert_int_equal(
	    cert_parse(buf, len + 1, spki, spkilen, &ci, NULL, 0), KT_EPARSE);
	buf[0] ^= 0x01;
	assert_int_equal(
	    cert_parse(buf, len, spki, spkilen, &ci, NULL, 0), KT_EPARSE);
	assert_int_equal(
	    cert_parse(buf, 0, spki, spkilen, &ci, NULL, 0), KT_EPARSE);
	assert_int_equal(
	    cert_parse(buf, sizeof(buf), spki, spkilen, &ci, NULL, 0),
	    KT_ETOOBIG);
	assert_memory_equal(&ci, &untouched, sizeof(ci));
	OPENSSL_free(der);

	/* Expired long ago is a fact like any other. */
	der = make_cert(pk, ca, INT64_C(1000000000), INT64_C(1000086400), &len);
	assert_int_equal(
	    cert_parse(der, len, spki, spkilen, &ci, NULL, 0), KT_OK);
	assert_int_equal(ci.not_after, INT64_C(1000086400));
	OPENSSL_free(der);
	/* But a notAfter before 1970 is outside what the policy can use. */
	der = make_cert(pk, ca, -INT64_C(200000), -INT64_C(100000), &len);
	assert_int_equal(
	    cert_parse(der, len, spki, spkilen, &ci, NULL, 0), KT_EPOLICY);
	OPENSSL_free(der);

	OPENSSL_free(spki);
	OPENSSL_free(ospki);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(other);
}

/* A long-form length where DER needs the short one is not canonical. */
static void
test_cert_parse_refuses_non_canonical(void **state)
{
	EVP_PKEY *pk = gen(HSM_ED25519);
	uint8_t *spki, *der, *ber;
	size_t spkilen, len, nlen;
	struct cert_info ci;

	(void)state;
	spki = spki_of(pk, &spkilen);
	der = make_cert(pk, pk, INT64_C(1893456000), INT64_C(1924992000), &len);
	/*
	 * The outer SEQUENCE's length is in the long form (30 8n ...); give
	 * it one more, leading zero byte, which BER allows and DER forbids.
	 */
	assert_int_equal(der[0], 0x30);
	assert_true(der[1] == 0x81 || der[1] == 0x82);
	nlen = der[1] & 0x7f;
	assert_non_null(ber = malloc(len + 1));
	ber[0] = 0x30;
	ber[1] = (uint8_t)(0x80 | (nlen + 1));
	ber[2] = 0;
	memcpy(ber + 3, der + 2, len - 2);
	assert_int_equal(
	    cert_parse(der, len, spki, spkilen, &ci, NULL, 0), KT_OK);
	assert_int_equal(
	    cert_parse(ber, len + 1, spki, spkilen, &ci, NULL, 0), KT_EPARSE);
	free(ber);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_csr_ecdsa_p256),
		cmocka_unit_test(test_cert_csr_ecdsa_p384),
		cmocka_unit_test(test_cert_csr_ed25519),
		cmocka_unit_test(test_cert_csr_rsa_pss),
		cmocka_unit_test(test_cert_csr_new_refuses_wrong_key),
		cmocka_unit_test(test_cert_subject_check_table),
		cmocka_unit_test(test_cert_parse_reads_certificate),
		cmocka_unit_test(test_cert_parse_refuses_non_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
