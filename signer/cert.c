/*
 * X.509 for the signing keys: certificates and certification requests.
 * See cert.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cert.h"
#include "keytrail/sig.h"

/*
 * The AlgorithmIdentifier of RSASSA-PSS with SHA-256, MGF1 with SHA-256
 * and a 32-byte salt (RFC 4055 section 3.1), the parameters hsm_sign()
 * uses.  These are the exact bytes the CA/Browser Forum Baseline
 * Requirements (section 7.1.3.2.1) prescribe for this algorithm.
 */
static const uint8_t cert_pss_sha256[] = { 0x30, 0x41, 0x06, 0x09, 0x2a, 0x86,
	0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30,
	0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
	0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01,
	0x20 };

/* The attribute types a subject may use, as OpenSSL names them. */
static const char *const cert_attrs[] = { "C", "ST", "L", "O", "OU", "CN" };

struct cert_csr {
	enum hsm_alg alg;
	X509_REQ *req;
	EVP_PKEY *pub;
	uint8_t *tbs; /* OPENSSL_malloc'd by i2d_re_X509_REQ_tbs */
	size_t tbslen;
	uint8_t digest[SHA256_DIGEST_LENGTH];
	int finished;
};

static void cert_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cert_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), so a time converts without the C
 * library's time zone.
 */
static int64_t
cert_days(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* An ASN1_TIME as Unix seconds. */
static int
cert_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return KT_EPARSE;
	*out = cert_days((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
		   (unsigned)tm.tm_mday) *
		86400 +
	    (int64_t)tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return KT_OK;
}

/* The subject of x as text into out (cap bytes, NUL included). */
static int
cert_subject_text(X509 *x, char *out, size_t cap)
{
	/* RFC 2253 escaping and short names, in encoding order. */
	unsigned long flags = XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV;
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int rc = KT_ENOMEM;

	if (b == NULL)
		return KT_ENOMEM;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, flags) < 0) {
		rc = KT_EPARSE;
		goto out;
	}
	n = BIO_get_mem_data(b, &p);
	if (n < 0 || (size_t)n >= cap) {
		rc = KT_ETOOBIG;
		goto out;
	}
	memcpy(out, p, (size_t)n);
	out[n] = 0;
	rc = KT_OK;
out:
	BIO_free(b);
	return rc;
}

int
cert_parse(const uint8_t *der, size_t len, const uint8_t *spki, size_t spkilen,
    struct cert_info *out, char *err, size_t errlen)
{
	const uint8_t *p = der;
	uint8_t *re = NULL, *pk = NULL;
	struct cert_info info;
	X509 *x = NULL;
	int relen, pklen, rc;

	if (der == NULL || spki == NULL || out == NULL) {
		cert_err(err, errlen, "missing argument");
		return KT_EINVAL;
	}
	if (len == 0 || len > CERT_DER_MAX) {
		cert_err(err, errlen, "a certificate is 1 to %d bytes of DER",
		    CERT_DER_MAX);
		return len == 0 ? KT_EPARSE : KT_ETOOBIG;
	}
	/*
	 * Canonical DER only: the log records these bytes, so decoding and
	 * encoding again must give them back.  i2d_re_X509_tbs() encodes
	 * the to-be-signed part afresh instead of reusing what was read.
	 */
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len ||
	    i2d_re_X509_tbs(x, NULL) <= 0 || (relen = i2d_X509(x, &re)) <= 0 ||
	    (size_t)relen != len || memcmp(re, der, len) != 0) {
		cert_err(err, errlen, "not one X.509 certificate in DER");
		rc = KT_EPARSE;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	if (cert_time(X509_get0_notBefore(x), &info.not_before) != KT_OK ||
	    cert_time(X509_get0_notAfter(x), &info.not_after) != KT_OK) {
		cert_err(err, errlen, "the validity cannot be read");
		rc = KT_EPARSE;
		goto out;
	}
	if (info.not_after < CERT_TIME_MIN || info.not_after > CERT_TIME_MAX) {
		cert_err(err, errlen,
		    "notAfter must fall between 1970 and the end of 9999");
		rc = KT_EPOLICY;
		goto out;
	}
	if ((rc = cert_subject_text(x, info.subject, sizeof(info.subject))) !=
	    KT_OK) {
		cert_err(err, errlen, "the subject %s",
		    rc == KT_ETOOBIG ? "is too long" : "cannot be read");
		goto out;
	}
	/* The key the certificate certifies must be this one, exactly. */
	if ((pklen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &pk)) <= 0 ||
	    (size_t)pklen != spkilen || memcmp(pk, spki, spkilen) != 0) {
		cert_err(err, errlen,
		    "the certificate's public key is not this key");
		rc = KT_EVERIFY;
		goto out;
	}
	*out = info;
	rc = KT_OK;
out:
	ERR_clear_error();
	OPENSSL_free(re);
	OPENSSL_free(pk);
	X509_free(x);
	return rc;
}

/* A value byte that needs no escaping in any of RFC 4514's positions. */
static int
cert_value_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && strchr(",=+\\\"<>;#", c) == NULL;
}

/*
 * Walks subject text s[0..len), calling add (if not NULL) for every
 * attribute.  Returns as cert_subject_check() does, or what add returns.
 */
static int
cert_subject_walk(const char *s, size_t len,
    int (*add)(void *ctx, const char *type, const char *value), void *ctx,
    char *err, size_t errlen)
{
	char type[8], value[CERT_VALUE_MAX + 1];
	size_t i = 0, n = 0;
	int rc;

	if (len == 0) {
		cert_err(err, errlen, "subject: empty");
		return KT_EPARSE;
	}
	if (len > CERT_SUBJECT_MAX) {
		cert_err(err, errlen, "subject: longer than %d bytes",
		    CERT_SUBJECT_MAX);
		return KT_ETOOBIG;
	}
	for (;;) {
		size_t t0 = i, tlen, v0, vlen, k;
		int known = 0;

		while (i < len && s[i] != '=' && s[i] != ',')
			i++;
		tlen = i - t0;
		if (i == len || s[i] != '=' || tlen == 0 ||
		    tlen >= sizeof(type)) {
			cert_err(err, errlen,
			    "subject: attribute %zu: expected TYPE=VALUE",
			    n + 1);
			return KT_EPARSE;
		}
		memcpy(type, s + t0, tlen);
		type[tlen] = 0;
		for (k = 0; k < sizeof(cert_attrs) / sizeof(cert_attrs[0]); k++)
			known |= strcmp(type, cert_attrs[k]) == 0;
		if (!known) {
			cert_err(err, errlen,
			    "subject: attribute %zu: unknown type \"%s\" (C, "
			    "ST, L, O, OU or CN)",
			    n + 1, type);
			return KT_EPARSE;
		}
		v0 = ++i;
		while (i < len && s[i] != ',') {
			if (!cert_value_byte((unsigned char)s[i])) {
				cert_err(err, errlen,
				    "subject: %s: byte 0x%02x is not allowed "
				    "(no escapes, printable ASCII only)",
				    type, (unsigned)(unsigned char)s[i]);
				return KT_EPARSE;
			}
			i++;
		}
		vlen = i - v0;
		if (vlen == 0 || vlen > CERT_VALUE_MAX || s[v0] == ' ' ||
		    s[i - 1] == ' ') {
			cert_err(err, errlen,
			    "subject: %s: the value must be 1 to %d bytes, "
			    "without leading or trailing space",
			    type, CERT_VALUE_MAX);
			return KT_EPARSE;
		}
		memcpy(value, s + v0, vlen);
		value[vlen] = 0;
		if (strcmp(type, "C") == 0 &&
		    (vlen != 2 || value[0] < 'A' || value[0] > 'Z' ||
			value[1] < 'A' || value[1] > 'Z')) {
			cert_err(err, errlen,
			    "subject: C: must be two capital letters "
			    "(ISO 3166)");
			return KT_EPARSE;
		}
		if (++n > CERT_RDNS_MAX) {
			cert_err(err, errlen,
			    "subject: more than %d attributes", CERT_RDNS_MAX);
			return KT_ETOOBIG;
		}
		if (add != NULL && (rc = add(ctx, type, value)) != KT_OK) {
			cert_err(err, errlen, "subject: out of memory");
			return rc;
		}
		if (i == len)
			break;
		/* A comma: another attribute must follow. */
		if (++i == len) {
			cert_err(err, errlen, "subject: ends with a comma");
			return KT_EPARSE;
		}
	}
	return KT_OK;
}

int
cert_subject_check(const char *s, size_t len, char *err, size_t errlen)
{
	if (s == NULL) {
		cert_err(err, errlen, "missing argument");
		return KT_EINVAL;
	}
	return cert_subject_walk(s, len, NULL, NULL, err, errlen);
}

static int
cert_name_add(void *ctx, const char *type, const char *value)
{
	X509_NAME *name = ctx;

	/* Appended as a new RDN of its own, in order (loc -1, set 0). */
	if (X509_NAME_add_entry_by_txt(name, type, MBSTRING_ASC,
		(const unsigned char *)value, -1, -1, 0) != 1)
		return KT_ENOMEM;
	return KT_OK;
}

/* Does the parsed key pub have the type alg says? */
static int
cert_key_matches(EVP_PKEY *pub, enum hsm_alg alg)
{
	switch (alg) {
	case HSM_ED25519:
		return EVP_PKEY_is_a(pub, "ED25519");
	case HSM_ECDSA_P256:
	case HSM_ECDSA_P384:
		return EVP_PKEY_is_a(pub, "EC");
	case HSM_RSA3072_PSS:
	case HSM_RSA4096_PSS:
		return EVP_PKEY_is_a(pub, "RSA");
	}
	return 0;
}

int
cert_csr_new(const uint8_t *spki, size_t spkilen, enum hsm_alg alg,
    const char *s, size_t len, struct cert_csr **out, char *err, size_t errlen)
{
	struct cert_csr *c = NULL;
	X509_NAME *name = NULL;
	const uint8_t *p = spki;
	int n, rc;

	if (spki == NULL || s == NULL || out == NULL ||
	    hsm_alg_name(alg) == NULL) {
		cert_err(err, errlen, "missing argument or unknown algorithm");
		return KT_EINVAL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (name = X509_NAME_new()) == NULL) {
		rc = KT_ENOMEM;
		cert_err(err, errlen, "out of memory");
		goto out;
	}
	c->alg = alg;
	if ((rc = cert_subject_walk(
		 s, len, cert_name_add, name, err, errlen)) != KT_OK)
		goto out;
	if (spkilen > KT_SPKI_MAX ||
	    (c->pub = d2i_PUBKEY(NULL, &p, (long)spkilen)) == NULL ||
	    p != spki + spkilen || !cert_key_matches(c->pub, alg)) {
		cert_err(err, errlen, "the public key is not a %s key",
		    hsm_alg_name(alg));
		rc = KT_EINVAL;
		goto out;
	}
	rc = KT_ENOMEM;
	if ((c->req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(c->req, 0) != 1 ||
	    X509_REQ_set_subject_name(c->req, name) != 1 ||
	    X509_REQ_set_pubkey(c->req, c->pub) != 1) {
		cert_err(err, errlen, "out of memory");
		goto out;
	}
	/* The bytes the signature covers: CertificationRequestInfo. */
	if ((n = i2d_re_X509_REQ_tbs(c->req, &c->tbs)) <= 0) {
		cert_err(err, errlen, "the request cannot be encoded");
		goto out;
	}
	c->tbslen = (size_t)n;
	if (c->tbslen > CERT_TBS_MAX) {
		cert_err(err, errlen, "the request is too large to sign");
		rc = KT_ETOOBIG;
		goto out;
	}
	SHA256(c->tbs, c->tbslen, c->digest);
	*out = c;
	c = NULL;
	rc = KT_OK;
out:
	ERR_clear_error();
	X509_NAME_free(name);
	cert_csr_free(c);
	return rc;
}

struct kt_bytes
cert_csr_message(const struct cert_csr *csr)
{
	struct kt_bytes b;

	/* Ed25519 signs the message itself; the others a SHA-256 digest. */
	if (csr->alg == HSM_ED25519) {
		b.p = csr->tbs;
		b.len = csr->tbslen;
	} else {
		b.p = csr->digest;
		b.len = sizeof(csr->digest);
	}
	return b;
}

/* The signature algorithm of alg, as a new X509_ALGOR. */
static X509_ALGOR *
cert_sigalg(enum hsm_alg alg)
{
	const uint8_t *p = cert_pss_sha256;
	X509_ALGOR *a;

	switch (alg) {
	case HSM_RSA3072_PSS:
	case HSM_RSA4096_PSS:
		a = d2i_X509_ALGOR(NULL, &p, (long)sizeof(cert_pss_sha256));
		/* A constant that does not decode is a bug here. */
		if (a != NULL && p != cert_pss_sha256 + sizeof(cert_pss_sha256))
			abort();
		return a;
	case HSM_ECDSA_P256:
	case HSM_ECDSA_P384:
	case HSM_ED25519:
		break;
	}
	if ((a = X509_ALGOR_new()) == NULL)
		return NULL;
	/* RFC 5758 section 3.2 and RFC 8410 section 3: no parameters. */
	if (X509_ALGOR_set0(a,
		OBJ_nid2obj(
		    alg == HSM_ED25519 ? NID_ED25519 : NID_ecdsa_with_SHA256),
		V_ASN1_UNDEF, NULL) != 1) {
		X509_ALGOR_free(a);
		return NULL;
	}
	return a;
}

int
cert_csr_finish(
    struct cert_csr *csr, const uint8_t *sig, size_t siglen, struct kt_buf *pem)
{
	ASN1_BIT_STRING *bits = NULL;
	X509_ALGOR *alg = NULL;
	BIO *b = NULL;
	char *p;
	long n;
	int rc = KT_ENOMEM;

	if (csr == NULL || sig == NULL || pem == NULL || csr->finished ||
	    siglen == 0 || siglen > INT32_MAX)
		return KT_EINVAL;
	if ((alg = cert_sigalg(csr->alg)) == NULL ||
	    (bits = ASN1_BIT_STRING_new()) == NULL ||
	    ASN1_BIT_STRING_set(bits, (unsigned char *)sig, (int)siglen) != 1)
		goto out;
	/* Whole bytes: no unused bits in the signature's BIT STRING. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if (X509_REQ_set1_signature_algo(csr->req, alg) != 1)
		goto out;
	X509_REQ_set0_signature(csr->req, bits);
	bits = NULL;
	if (X509_REQ_verify(csr->req, csr->pub) != 1) {
		rc = KT_EVERIFY;
		goto out;
	}
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(b, csr->req) != 1)
		goto out;
	if ((n = BIO_get_mem_data(b, &p)) <= 0)
		goto out;
	if ((rc = kt_buf_append(pem, p, (size_t)n)) == KT_OK)
		csr->finished = 1;
out:
	ERR_clear_error();
	BIO_free(b);
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(alg);
	return rc;
}

void
cert_csr_free(struct cert_csr *csr)
{
	if (csr == NULL)
		return;
	OPENSSL_free(csr->tbs);
	X509_REQ_free(csr->req);
	EVP_PKEY_free(csr->pub);
	free(csr);
}
