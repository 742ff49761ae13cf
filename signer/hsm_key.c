/*
 * The keys in the token: finding them by label, generating key pairs,
 * destroying them, checking a private key's attributes, and reading the
 * public half into an OpenSSL key and its SubjectPublicKeyInfo (EC, RSA,
 * Ed25519).  The module, the login, the session pool and signing are
 * hsm.c's; hsm.h is the contract and hsm_int.h what the two files share.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "keytrail/encoding.h"
#include "ecverify.h"
#include "hsm.h"
#include "hsm_int.h"

/* Buffers for public key attributes, generous for what we support. */
#define HSM_EC_PARAMS_MAX 64
#define HSM_EC_POINT_MAX 160
#define HSM_RSA_MODULUS_MAX 1024
#define HSM_RSA_EXPONENT_MAX 64

/*
 * DER of the curve identifiers a key's CKA_EC_PARAMS holds: the named-curve
 * OIDs of RFC 5480 section 2.1.1.1 (prime256v1, secp384r1) and RFC 8410
 * section 3 (id-Ed25519), and the PrintableString "edwards25519" that
 * PKCS#11 v3.0 also allows for Edwards curves.
 */
static const uint8_t hsm_oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
	0x3d, 0x03, 0x01, 0x07 };
static const uint8_t hsm_oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
	0x22 };
static const uint8_t hsm_oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t hsm_str_ed25519[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
	'd', 's', '2', '5', '5', '1', '9' };
/* F4, the RSA public exponent we generate with (SP 800-56B minimum). */
static const uint8_t hsm_rsa_f4[] = { 0x01, 0x00, 0x01 };

/* Runs C_FindObjects for tmpl and returns up to max handles. */
static int
hsm_find_objects(struct hsm *h, ck_session_handle_t s,
    struct ck_attribute *tmpl, unsigned long ntmpl, ck_object_handle_t *objs,
    unsigned long max, unsigned long *n, struct hsm_op *op)
{
	ck_rv_t rv;

	if ((rv = h->f->C_FindObjectsInit(s, tmpl, ntmpl)) != CKR_OK)
		return hsm_fail(op, rv, "C_FindObjectsInit");
	rv = h->f->C_FindObjects(s, objs, max, n);
	/* Always end the search: the session is going back to the pool. */
	(void)h->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return hsm_fail(op, rv, "C_FindObjects");
	return KT_OK;
}

/* Reads one attribute of at most cap bytes. */
static int
hsm_attr_read(struct hsm *h, ck_session_handle_t s, ck_object_handle_t obj,
    ck_attribute_type_t type, const char *name, void *buf, size_t cap,
    size_t *len, struct hsm_op *op)
{
	struct ck_attribute a = { type, buf, cap };
	ck_rv_t rv = h->f->C_GetAttributeValue(s, obj, &a, 1);

	if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && a.value_len > cap))
		return hsm_error(op, KT_ETOOBIG,
		    "the token's %s is longer than %zu bytes", name, cap);
	if (rv != CKR_OK)
		return hsm_fail(op, rv, "reading %s", name);
	*len = a.value_len;
	return KT_OK;
}

/* What we read from a private key, all in one C_GetAttributeValue. */
struct hsm_priv_info {
	ck_key_type_t type;
	unsigned char sign, sensitive, extractable, always_sensitive,
	    never_extractable, local;
	uint8_t ckid[HSM_CKID_MAX];
	size_t ckidlen;
};

static int
hsm_priv_read(struct hsm *h, ck_session_handle_t s, ck_object_handle_t obj,
    struct hsm_priv_info *pi, struct hsm_op *op)
{
	struct ck_attribute a[] = {
		{ CKA_KEY_TYPE, &pi->type, sizeof(pi->type) },
		{ CKA_SIGN, &pi->sign, 1 },
		{ CKA_SENSITIVE, &pi->sensitive, 1 },
		{ CKA_EXTRACTABLE, &pi->extractable, 1 },
		{ CKA_ALWAYS_SENSITIVE, &pi->always_sensitive, 1 },
		{ CKA_NEVER_EXTRACTABLE, &pi->never_extractable, 1 },
		{ CKA_LOCAL, &pi->local, 1 },
		{ CKA_ID, pi->ckid, sizeof(pi->ckid) },
	};
	const size_t na = sizeof(a) / sizeof(a[0]);
	ck_rv_t rv;

	memset(pi, 0, sizeof(*pi));
	rv = h->f->C_GetAttributeValue(s, obj, a, na);
	if (rv != CKR_OK)
		return hsm_fail(op, rv, "reading the private key's attributes");
	for (size_t i = 0; i < na - 1; i++)
		if (a[i].value_len != (i == 0 ? sizeof(pi->type) : 1))
			return hsm_error(op, KT_EPARSE,
			    "the token returned a malformed private key "
			    "attribute 0x%lx",
			    (unsigned long)a[i].type);
	if (a[na - 1].value_len > sizeof(pi->ckid))
		return hsm_error(op, KT_EPARSE, "the key's CKA_ID is too long");
	pi->ckidlen = a[na - 1].value_len;
	return KT_OK;
}

/*
 * The rule for using a private key: it is sensitive and not extractable
 * now, and always was.  Names the first attribute that breaks it.
 */
static int
hsm_priv_check(
    const struct hsm_priv_info *pi, const char *label, struct hsm_op *op)
{
	const char *bad = NULL;

	if (!pi->sensitive)
		bad = "CKA_SENSITIVE is false";
	else if (pi->extractable)
		bad = "CKA_EXTRACTABLE is true";
	else if (!pi->always_sensitive)
		bad = "CKA_ALWAYS_SENSITIVE is false";
	else if (!pi->never_extractable)
		bad = "CKA_NEVER_EXTRACTABLE is false";
	else if (!pi->sign)
		bad = "CKA_SIGN is false";
	if (bad != NULL)
		return hsm_error(op, KT_EPOLICY,
		    "refusing key '%s': %s (its private key must be "
		    "sensitive, never extractable, and able to sign)",
		    label, bad);
	return KT_OK;
}

/*
 * Takes the point out of CKA_EC_POINT.  PKCS#11 says it is a DER OCTET
 * STRING holding the point (and SoftHSM 2.6 wraps Ed25519 keys the same
 * way); some tokens hand out the bare point instead, so accept that when
 * the bytes are not a DER OCTET STRING.
 */
static int
hsm_ec_point(
    const uint8_t *p, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os;

	os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
	if (os != NULL && q == p + len) {
		int n = ASN1_STRING_length(os);

		if (n > 0 && (size_t)n <= cap) {
			memcpy(out, ASN1_STRING_get0_data(os), (size_t)n);
			*outlen = (size_t)n;
			ASN1_OCTET_STRING_free(os);
			return KT_OK;
		}
	}
	ASN1_OCTET_STRING_free(os);
	ERR_clear_error();
	if (len == 0 || len > cap)
		return KT_EPARSE;
	memcpy(out, p, len);
	*outlen = len;
	return KT_OK;
}

/* Builds an OpenSSL public key from one of the supported EC curves. */
static int
hsm_pub_ec(const uint8_t *params, size_t plen, const uint8_t *point,
    size_t ptlen, enum hsm_alg *alg, EVP_PKEY **out, struct hsm_op *op)
{
	uint8_t pt[HSM_EC_POINT_MAX];
	const char *group;
	OSSL_PARAM prm[3];
	EVP_PKEY_CTX *c = NULL;
	EVP_PKEY *pk = NULL;
	size_t n;
	int rc = KT_OK;

	if (plen == sizeof(hsm_oid_p256) &&
	    memcmp(params, hsm_oid_p256, plen) == 0) {
		*alg = HSM_ECDSA_P256;
		group = SN_X9_62_prime256v1;
	} else if (plen == sizeof(hsm_oid_p384) &&
	    memcmp(params, hsm_oid_p384, plen) == 0) {
		*alg = HSM_ECDSA_P384;
		group = SN_secp384r1;
	} else {
		return hsm_error(op, KT_EPOLICY,
		    "unsupported elliptic curve (only P-256 and P-384)");
	}
	if (hsm_ec_point(point, ptlen, pt, sizeof(pt), &n) != KT_OK)
		return hsm_error(op, KT_EPARSE, "malformed CKA_EC_POINT");
	prm[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	prm[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, n);
	prm[2] = OSSL_PARAM_construct_end();
	/* The import decodes the point and refuses one off the curve. */
	if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, prm) != 1) {
		rc = hsm_error(op, KT_EPARSE,
		    "the token's EC public key is not a valid point");
		goto out;
	}
	*out = pk;
	pk = NULL;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	return rc;
}

static int
hsm_pub_ed25519(const uint8_t *params, size_t plen, const uint8_t *point,
    size_t ptlen, EVP_PKEY **out, struct hsm_op *op)
{
	uint8_t pt[HSM_EC_POINT_MAX];
	EVP_PKEY *pk;
	size_t n;

	if (!(plen == sizeof(hsm_oid_ed25519) &&
		memcmp(params, hsm_oid_ed25519, plen) == 0) &&
	    !(plen == sizeof(hsm_str_ed25519) &&
		memcmp(params, hsm_str_ed25519, plen) == 0))
		return hsm_error(
		    op, KT_EPOLICY, "unsupported Edwards curve (only Ed25519)");
	if (hsm_ec_point(point, ptlen, pt, sizeof(pt), &n) != KT_OK || n != 32)
		return hsm_error(
		    op, KT_EPARSE, "malformed Ed25519 CKA_EC_POINT");
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, n);
	if (pk == NULL) {
		ERR_clear_error();
		return hsm_error(op, KT_EPARSE, "invalid Ed25519 public key");
	}
	*out = pk;
	return KT_OK;
}

static int
hsm_pub_rsa(const uint8_t *mod, size_t modlen, const uint8_t *exp,
    size_t explen, enum hsm_alg *alg, EVP_PKEY **out, struct hsm_op *op)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *prm = NULL;
	EVP_PKEY_CTX *c = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int rc = KT_OK, bits;

	if ((n = BN_bin2bn(mod, (int)modlen, NULL)) == NULL ||
	    (e = BN_bin2bn(exp, (int)explen, NULL)) == NULL) {
		rc = hsm_error(op, KT_ENOMEM, "out of memory");
		goto out;
	}
	bits = BN_num_bits(n);
	if (bits == 3072) {
		*alg = HSM_RSA3072_PSS;
	} else if (bits == 4096) {
		*alg = HSM_RSA4096_PSS;
	} else {
		rc = hsm_error(op, KT_EPOLICY,
		    "unsupported RSA key of %d bits (only 3072 and 4096)",
		    bits);
		goto out;
	}
	/* SP 800-56B: odd e with 65537 <= e < 2^256. */
	if (!BN_is_odd(e) || BN_num_bits(e) < 17 || BN_num_bits(e) > 256) {
		rc = hsm_error(
		    op, KT_EPOLICY, "unsupported RSA public exponent");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (prm = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, prm) != 1) {
		rc = hsm_error(op, KT_EPARSE, "invalid RSA public key");
		goto out;
	}
	*out = pk;
	pk = NULL;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(prm);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return rc;
}

/* Reads the public key object pub of key type type into an EVP_PKEY. */
static int
hsm_pub_read(struct hsm *h, ck_session_handle_t s, ck_object_handle_t pub,
    ck_key_type_t type, enum hsm_alg *alg, EVP_PKEY **out, struct hsm_op *op)
{
	uint8_t a[HSM_RSA_MODULUS_MAX], b[HSM_EC_POINT_MAX];
	ck_key_type_t pubtype;
	size_t alen = 0, blen = 0, tlen = 0;
	int rc;

	rc = hsm_attr_read(h, s, pub, CKA_KEY_TYPE, "CKA_KEY_TYPE", &pubtype,
	    sizeof(pubtype), &tlen, op);
	if (rc != KT_OK)
		return rc;
	if (tlen != sizeof(pubtype) || pubtype != type)
		return hsm_error(op, KT_EPARSE,
		    "the public key's type does not match the private key's");
	switch (type) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		if ((rc = hsm_attr_read(h, s, pub, CKA_EC_PARAMS,
			 "CKA_EC_PARAMS", a, HSM_EC_PARAMS_MAX, &alen, op)) !=
			KT_OK ||
		    (rc = hsm_attr_read(h, s, pub, CKA_EC_POINT, "CKA_EC_POINT",
			 b, sizeof(b), &blen, op)) != KT_OK)
			return rc;
		if (type == CKK_EC)
			return hsm_pub_ec(a, alen, b, blen, alg, out, op);
		*alg = HSM_ED25519;
		return hsm_pub_ed25519(a, alen, b, blen, out, op);
	case CKK_RSA:
		if ((rc = hsm_attr_read(h, s, pub, CKA_MODULUS, "CKA_MODULUS",
			 a, sizeof(a), &alen, op)) != KT_OK)
			return rc;
		if ((rc = hsm_attr_read(h, s, pub, CKA_PUBLIC_EXPONENT,
			 "CKA_PUBLIC_EXPONENT", b, HSM_RSA_EXPONENT_MAX, &blen,
			 op)) != KT_OK)
			return rc;
		return hsm_pub_rsa(a, alen, b, blen, alg, out, op);
	default:
		return hsm_error(op, KT_EPOLICY, "unsupported key type 0x%lx",
		    (unsigned long)type);
	}
}

/* The DER SubjectPublicKeyInfo of pk and its key ID (DESIGN.md 4). */
static int
hsm_spki(EVP_PKEY *pk, uint8_t **der, size_t *derlen,
    char id[HSM_KEY_ID_LEN + 1], uint8_t digest[32], struct hsm_op *op)
{
	unsigned char *p = NULL;
	unsigned int mdlen = 0;
	int n;

	if ((n = i2d_PUBKEY(pk, &p)) <= 0) {
		ERR_clear_error();
		return hsm_error(
		    op, KT_EINTERNAL, "cannot encode the public key");
	}
	if (EVP_Digest(p, (size_t)n, digest, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		OPENSSL_free(p);
		ERR_clear_error();
		return hsm_error(op, KT_EINTERNAL, "SHA-256 failed");
	}
	kt_hex_encode(digest, 32, id);
	*der = p;
	*derlen = (size_t)n;
	return KT_OK;
}

/*
 * Finds the one private key labelled label, and with CKA_ID ckid when
 * ckid is not NULL.
 */
static int
hsm_priv_find(struct hsm *h, ck_session_handle_t s, const char *label,
    const uint8_t *ckid, size_t ckidlen, ck_object_handle_t *out,
    struct hsm_op *op)
{
	ck_object_class_t cls = CKO_PRIVATE_KEY;
	unsigned char on_token = 1;
	/* Token objects only: not the session copies of hsm_key_handle(). */
	struct ck_attribute t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &on_token, 1 },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)ckid, ckidlen },
	};
	ck_object_handle_t objs[2];
	unsigned long n = 0;
	int rc;

	rc = hsm_find_objects(h, s, t, ckid != NULL ? 4 : 3, objs, 2, &n, op);
	if (rc != KT_OK)
		return rc;
	if (n == 0)
		return hsm_error(op, KT_ENOTFOUND,
		    "no private key labelled '%s' in token '%s'", label,
		    h->token_label);
	if (n > 1)
		return hsm_error(op, KT_EPOLICY,
		    "more than one private key is labelled '%s'", label);
	*out = objs[0];
	return KT_OK;
}

/*
 * Builds a key from its private key object: checks the attributes, finds
 * the public half (same CKA_ID, or same label for a key without an ID),
 * and derives the algorithm, SPKI and key ID.
 */
static int
hsm_key_load(struct hsm *h, ck_session_handle_t s, ck_object_handle_t priv,
    const char *label, struct hsm_key **out, struct hsm_op *op)
{
	struct hsm_priv_info pi;
	ck_object_class_t cls = CKO_PUBLIC_KEY;
	struct ck_attribute t[2];
	ck_object_handle_t objs[2];
	struct hsm_key *k = NULL;
	uint8_t digest[32];
	unsigned long n = 0;
	int rc;

	if ((rc = hsm_priv_read(h, s, priv, &pi, op)) != KT_OK ||
	    (rc = hsm_priv_check(&pi, label, op)) != KT_OK)
		return rc;

	t[0] = (struct ck_attribute){ CKA_CLASS, &cls, sizeof(cls) };
	if (pi.ckidlen > 0)
		t[1] = (struct ck_attribute){ CKA_ID, pi.ckid, pi.ckidlen };
	else
		t[1] = (struct ck_attribute){ CKA_LABEL, (void *)label,
			strlen(label) };
	if ((rc = hsm_find_objects(h, s, t, 2, objs, 2, &n, op)) != KT_OK)
		return rc;
	if (n == 0)
		return hsm_error(op, KT_ENOTFOUND,
		    "key '%s' has no public key object", label);
	if (n > 1)
		return hsm_error(op, KT_EPOLICY,
		    "key '%s' has more than one public key object", label);

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return hsm_error(op, KT_ENOMEM, "out of memory");
	if ((rc = hsm_pub_read(h, s, objs[0], pi.type, &k->alg, &k->pub, op)) !=
		KT_OK ||
	    (rc = hsm_spki(k->pub, &k->spki, &k->spkilen, k->id, digest, op)) !=
		KT_OK)
		goto fail;
	k->h = h;
	(void)snprintf(k->label, sizeof(k->label), "%s", label);
	memcpy(k->ckid, pi.ckid, pi.ckidlen);
	k->ckidlen = pi.ckidlen;
	k->attrs.sensitive = pi.sensitive != 0;
	k->attrs.extractable = pi.extractable != 0;
	k->attrs.always_sensitive = pi.always_sensitive != 0;
	k->attrs.never_extractable = pi.never_extractable != 0;
	k->attrs.local = pi.local != 0;
	k->priv = priv;
	k->gen = hsm_generation(h);
	/* With session copies, the first signature makes the copy. */
	hsm_lock(&h->mu);
	k->handle_ok = !h->copies || h->copies_refused;
	hsm_unlock(&h->mu);
	*out = k;
	return KT_OK;
fail:
	hsm_key_free(k);
	return rc;
}

void
hsm_key_free(struct hsm_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	hsm_fast_free(k->fast);
	OPENSSL_free(k->spki);
	free(k);
}

enum hsm_alg
hsm_key_alg(const struct hsm_key *k)
{
	return k->alg;
}

const char *
hsm_key_label(const struct hsm_key *k)
{
	return k->label;
}

const char *
hsm_key_id(const struct hsm_key *k)
{
	return k->id;
}

struct kt_bytes
hsm_key_spki(const struct hsm_key *k)
{
	struct kt_bytes b = { k->spki, k->spkilen };

	return b;
}

void
hsm_key_attrs(const struct hsm_key *k, struct hsm_attrs *out)
{
	*out = k->attrs;
}

/*
 * With session copies on (struct hsm_config), replaces *obj, a checked
 * token private key, by a copy of it made inside the token as a session
 * object of s.  SoftHSM re-reads a token object's file at every
 * C_SignInit; a session object stays in memory.  The copy keeps the
 * original's label and ID (hsm_destroy() finds it with the original)
 * but not CKA_TOKEN, and must pass the same attribute check.  It lives as
 * long as s; after that its handle is invalid, which hsm_sign() treats as
 * a stale handle and cures by looking the key up again.  A token that
 * refuses to copy (CKA_COPYABLE false, no C_CopyObject) or whose copy
 * fails the check is used through its token objects from then on; that
 * is not an error.
 */
static int
hsm_priv_copy(struct hsm *h, ck_session_handle_t s, const char *label,
    ck_object_handle_t *obj, int *copied, struct hsm_op *op)
{
	unsigned char off = 0;
	/*
	 * Only CKA_TOKEN changes.  SoftHSM refuses CKA_SENSITIVE and
	 * CKA_EXTRACTABLE in the template (CKR_ATTRIBUTE_READ_ONLY) even
	 * unchanged; the copy is checked for them below instead.
	 */
	struct ck_attribute t[] = {
		{ CKA_TOKEN, &off, 1 },
	};
	struct hsm_priv_info pi;
	ck_object_handle_t copy = 0;
	char scratch[HSM_ERR_SIZE];
	struct hsm_op quiet;
	ck_rv_t rv;
	int use;

	hsm_lock(&h->mu);
	use = h->copies && !h->copies_refused;
	hsm_unlock(&h->mu);
	if (!use)
		return KT_OK;
	rv = h->f->C_CopyObject(s, *obj, t, 1, &copy);
	if (hsm_rv_reconnect(rv))
		return hsm_fail(op, rv, "C_CopyObject of key '%s'", label);
	if (rv == CKR_OK) {
		hsm_op_init(&quiet, scratch, sizeof(scratch));
		if (hsm_priv_read(h, s, copy, &pi, &quiet) == KT_OK &&
		    hsm_priv_check(&pi, label, &quiet) == KT_OK) {
			hsm_lock(&h->mu);
			h->ncopies++;
			hsm_unlock(&h->mu);
			*obj = copy;
			*copied = 1;
			return KT_OK;
		}
		(void)h->f->C_DestroyObject(s, copy);
		/* A lost session says nothing about copies: try again. */
		if (hsm_rv_reconnect(quiet.rv))
			return hsm_fail(op, quiet.rv,
			    "reading the copy of key '%s'", label);
	}
	hsm_lock(&h->mu);
	h->copies_refused = 1;
	hsm_unlock(&h->mu);
	return KT_OK;
}

/*
 * The private key handle to use on session s: the cached one when it is
 * from the current generation, otherwise looked up again (same label and
 * CKA_ID), checked again and, with session copies on, copied
 * (hsm_priv_copy).
 */
int
hsm_key_handle(struct hsm *h, struct hsm_key *k, ck_session_handle_t s,
    ck_object_handle_t *out, struct hsm_op *op)
{
	struct hsm_priv_info pi;
	ck_object_handle_t obj = 0;
	uint64_t gen;
	int rc, copied = 0;

	hsm_lock(&h->mu);
	gen = h->gen;
	if (k->handle_ok && k->gen == gen) {
		*out = k->priv;
		hsm_unlock(&h->mu);
		return KT_OK;
	}
	hsm_unlock(&h->mu);

	if ((rc = hsm_priv_find(
		 h, s, k->label, k->ckid, k->ckidlen, &obj, op)) != KT_OK ||
	    (rc = hsm_priv_read(h, s, obj, &pi, op)) != KT_OK ||
	    (rc = hsm_priv_check(&pi, k->label, op)) != KT_OK)
		return rc;
	if ((rc = hsm_priv_copy(h, s, k->label, &obj, &copied, op)) != KT_OK)
		return rc;
	hsm_lock(&h->mu);
	if (k->handle_ok && k->gen == gen) {
		/*
		 * Another thread got there first: use its handle, and drop
		 * the copy made here (never the token object).
		 */
		ck_object_handle_t theirs = k->priv;

		hsm_unlock(&h->mu);
		if (copied && obj != theirs)
			(void)h->f->C_DestroyObject(s, obj);
		*out = theirs;
		return KT_OK;
	}
	k->priv = obj;
	k->gen = gen;
	k->handle_ok = 1;
	hsm_unlock(&h->mu);
	*out = obj;
	return KT_OK;
}

void
hsm_key_stale(struct hsm *h, struct hsm_key *k)
{
	hsm_lock(&h->mu);
	k->handle_ok = 0;
	hsm_unlock(&h->mu);
}

/* Is any object (of any class) labelled label? */
static int
hsm_label_taken(struct hsm *h, ck_session_handle_t s, const char *label,
    int *taken, struct hsm_op *op)
{
	struct ck_attribute t[] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	ck_object_handle_t obj;
	unsigned long n = 0;
	int rc;

	if ((rc = hsm_find_objects(h, s, t, 1, &obj, 1, &n, op)) != KT_OK)
		return rc;
	*taken = n > 0;
	return KT_OK;
}

/* Appends one attribute to a template of capacity cap. */
static void
hsm_tmpl_add(struct ck_attribute *t, unsigned long *n, size_t cap,
    ck_attribute_type_t type, const void *p, size_t len)
{
	HSM_ASSERT(*n < cap);
	t[*n].type = type;
	t[*n].value = (void *)p;
	t[*n].value_len = len;
	(*n)++;
}

/*
 * Makes a key pair in the token.  unsafe (tests only) makes the private
 * key extractable and not sensitive.
 */
static int
hsm_pair_generate(struct hsm *h, ck_session_handle_t s, enum hsm_alg alg,
    const char *label, int unsafe, ck_object_handle_t *pub,
    ck_object_handle_t *priv, struct hsm_op *op)
{
	unsigned char yes = 1, no = 0;
	unsigned char *sensitive = unsafe ? &no : &yes;
	unsigned char *extractable = unsafe ? &yes : &no;
	unsigned long bits = 0;
	struct ck_mechanism mech = { 0, NULL, 0 };
	enum {
		PUBT = 8,
		PRIVT = 9
	};
	struct ck_attribute pubt[PUBT], privt[PRIVT];
	unsigned long npub = 0, npriv = 0;
	const uint8_t *params = NULL;
	size_t plen = 0;
	ck_rv_t rv;

	switch (alg) {
	case HSM_ED25519:
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
		params = hsm_oid_ed25519;
		plen = sizeof(hsm_oid_ed25519);
		break;
	case HSM_ECDSA_P256:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		params = hsm_oid_p256;
		plen = sizeof(hsm_oid_p256);
		break;
	case HSM_ECDSA_P384:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		params = hsm_oid_p384;
		plen = sizeof(hsm_oid_p384);
		break;
	case HSM_RSA3072_PSS:
	case HSM_RSA4096_PSS:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		bits = alg == HSM_RSA3072_PSS ? 3072 : 4096;
		break;
	default:
		return hsm_error(
		    op, KT_EINVAL, "unknown algorithm %d", (int)alg);
	}

	hsm_tmpl_add(pubt, &npub, PUBT, CKA_TOKEN, &yes, 1);
	hsm_tmpl_add(pubt, &npub, PUBT, CKA_PRIVATE, &no, 1);
	hsm_tmpl_add(pubt, &npub, PUBT, CKA_VERIFY, &yes, 1);
	hsm_tmpl_add(pubt, &npub, PUBT, CKA_ENCRYPT, &no, 1);
	hsm_tmpl_add(pubt, &npub, PUBT, CKA_WRAP, &no, 1);
	hsm_tmpl_add(pubt, &npub, PUBT, CKA_LABEL, label, strlen(label));
	if (params != NULL) {
		hsm_tmpl_add(pubt, &npub, PUBT, CKA_EC_PARAMS, params, plen);
	} else {
		hsm_tmpl_add(
		    pubt, &npub, PUBT, CKA_MODULUS_BITS, &bits, sizeof(bits));
		hsm_tmpl_add(pubt, &npub, PUBT, CKA_PUBLIC_EXPONENT, hsm_rsa_f4,
		    sizeof(hsm_rsa_f4));
	}

	/* Signing only: no decryption, unwrapping or derivation. */
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_TOKEN, &yes, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_PRIVATE, &yes, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_SENSITIVE, sensitive, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_EXTRACTABLE, extractable, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_SIGN, &yes, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_DECRYPT, &no, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_UNWRAP, &no, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_DERIVE, &no, 1);
	hsm_tmpl_add(privt, &npriv, PRIVT, CKA_LABEL, label, strlen(label));

	rv = h->f->C_GenerateKeyPair(
	    s, &mech, pubt, npub, privt, npriv, pub, priv);
	if (rv != CKR_OK)
		return hsm_fail(op, rv, "generating a %s key in token '%s'",
		    hsm_alg_name(alg), h->token_label);
	return KT_OK;
}

/*
 * Sets CKA_ID of both halves to the raw key ID, so that PKCS#11 tools
 * pair them and show the identity the log uses.
 */
static int
hsm_pair_set_id(struct hsm *h, ck_session_handle_t s, ck_object_handle_t pub,
    ck_object_handle_t priv, struct hsm_op *op)
{
	struct ck_attribute t[] = { { CKA_ID, NULL, 0 } };
	enum hsm_alg alg;
	EVP_PKEY *pk = NULL;
	uint8_t *der = NULL, digest[32];
	char id[HSM_KEY_ID_LEN + 1];
	size_t derlen;
	ck_key_type_t type;
	size_t tlen;
	ck_rv_t rv;
	int rc;

	if ((rc = hsm_attr_read(h, s, pub, CKA_KEY_TYPE, "CKA_KEY_TYPE", &type,
		 sizeof(type), &tlen, op)) != KT_OK ||
	    (rc = hsm_pub_read(h, s, pub, type, &alg, &pk, op)) != KT_OK ||
	    (rc = hsm_spki(pk, &der, &derlen, id, digest, op)) != KT_OK)
		goto out;
	t[0].value = digest;
	t[0].value_len = sizeof(digest);
	if ((rv = h->f->C_SetAttributeValue(s, pub, t, 1)) != CKR_OK ||
	    (rv = h->f->C_SetAttributeValue(s, priv, t, 1)) != CKR_OK)
		rc = hsm_fail(op, rv, "setting CKA_ID");
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return rc;
}

/*
 * One attempt at hsm_generate(); *created tells whether objects were
 * made (they are destroyed again on failure, so a retry is safe only
 * when none were).
 */
static int
hsm_generate_once(struct hsm *h, enum hsm_alg alg, const char *label,
    int unsafe, struct hsm_key **out, int *created, struct hsm_op *op)
{
	ck_session_handle_t s;
	ck_object_handle_t pub = 0, priv = 0;
	int rc, taken = 0;

	*created = 0;
	op->rv = CKR_OK;
	if ((rc = hsm_pool_get(h, &s, op)) != KT_OK)
		return rc;
	if ((rc = hsm_label_taken(h, s, label, &taken, op)) != KT_OK)
		goto out;
	if (taken) {
		rc = hsm_error(op, KT_EEXIST,
		    "an object labelled '%s' exists in token '%s'", label,
		    h->token_label);
		goto out;
	}
	if ((rc = hsm_pair_generate(
		 h, s, alg, label, unsafe, &pub, &priv, op)) != KT_OK)
		goto out;
	*created = 1;
	if ((rc = hsm_pair_set_id(h, s, pub, priv, op)) != KT_OK)
		goto out;
	if (!unsafe)
		rc = hsm_key_load(h, s, priv, label, out, op);
out:
	if (rc != KT_OK && *created) {
		(void)h->f->C_DestroyObject(s, priv);
		(void)h->f->C_DestroyObject(s, pub);
	}
	hsm_pool_put(h, s, op->rv);
	return rc;
}

static int
hsm_generate_any(struct hsm *h, enum hsm_alg alg, const char *label, int unsafe,
    struct hsm_key **out, struct hsm_op *op)
{
	int rc, created;

	if (h == NULL || (!unsafe && out == NULL))
		return hsm_error(op, KT_EINVAL, "missing argument");
	if (hsm_alg_name(alg) == NULL)
		return hsm_error(
		    op, KT_EINVAL, "unknown algorithm %d", (int)alg);
	if (!hsm_label_ok(label, HSM_KEY_LABEL_MAX))
		return hsm_error(op, KT_EINVAL,
		    "a key label must be 1 to %d printable bytes",
		    HSM_KEY_LABEL_MAX);
	hsm_lock(&h->genmu);
	for (int attempt = 0;; attempt++) {
		uint64_t seen = hsm_generation(h);

		rc =
		    hsm_generate_once(h, alg, label, unsafe, out, &created, op);
		if (rc == KT_OK || attempt > 0 || created ||
		    !hsm_rv_reconnect(op->rv))
			break;
		if ((rc = hsm_reconnect(h, seen, op)) != KT_OK)
			break;
	}
	hsm_unlock(&h->genmu);
	return rc;
}

int
hsm_generate(struct hsm *h, enum hsm_alg alg, const char *label,
    struct hsm_key **out, char *err, size_t errlen)
{
	struct hsm_op op;

	hsm_op_init(&op, err, errlen);
	return hsm_generate_any(h, alg, label, 0, out, &op);
}

/*
 * Destroys the objects of k (every object with its label and CKA_ID: the
 * private and the public half).  One attempt; no reconnect, because a
 * caller that cannot destroy a key reports it and leaves it unused.
 */
int
hsm_destroy(struct hsm *h, struct hsm_key *k, char *err, size_t errlen)
{
	struct hsm_op op;
	ck_session_handle_t s;
	ck_object_handle_t objs[8];
	unsigned long n = 0;
	ck_rv_t rv;
	int rc;

	hsm_op_init(&op, err, errlen);
	if (h == NULL || k == NULL || k->h != h)
		return hsm_error(&op, KT_EINVAL, "missing argument");
	{
		struct ck_attribute t[] = {
			{ CKA_LABEL, k->label, strlen(k->label) },
			{ CKA_ID, k->ckid, k->ckidlen },
		};

		if ((rc = hsm_pool_get(h, &s, &op)) != KT_OK)
			return rc;
		rc = hsm_find_objects(h, s, t, 2, objs, 8, &n, &op);
	}
	for (unsigned long i = 0; rc == KT_OK && i < n; i++) {
		if ((rv = h->f->C_DestroyObject(s, objs[i])) != CKR_OK)
			rc = hsm_fail(&op, rv, "C_DestroyObject");
	}
	if (rc == KT_OK && n == 0)
		rc = hsm_error(
		    &op, KT_ENOTFOUND, "no object labelled '%s'", k->label);
	hsm_lock(&h->mu);
	k->handle_ok = 0;
	hsm_unlock(&h->mu);
	hsm_pool_put(h, s, op.rv);
	return rc;
}

static int
hsm_find_once(
    struct hsm *h, const char *label, struct hsm_key **out, struct hsm_op *op)
{
	ck_session_handle_t s;
	ck_object_handle_t priv = 0;
	int rc;

	op->rv = CKR_OK;
	if ((rc = hsm_pool_get(h, &s, op)) != KT_OK)
		return rc;
	if ((rc = hsm_priv_find(h, s, label, NULL, 0, &priv, op)) == KT_OK)
		rc = hsm_key_load(h, s, priv, label, out, op);
	hsm_pool_put(h, s, op->rv);
	return rc;
}

int
hsm_find(struct hsm *h, const char *label, struct hsm_key **out, char *err,
    size_t errlen)
{
	struct hsm_op op;
	int rc;

	hsm_op_init(&op, err, errlen);
	if (h == NULL || out == NULL)
		return hsm_error(&op, KT_EINVAL, "missing argument");
	if (!hsm_label_ok(label, HSM_KEY_LABEL_MAX))
		return hsm_error(&op, KT_EINVAL,
		    "a key label must be 1 to %d printable bytes",
		    HSM_KEY_LABEL_MAX);
	for (int attempt = 0;; attempt++) {
		uint64_t seen = hsm_generation(h);

		rc = hsm_find_once(h, label, out, &op);
		if (rc == KT_OK || attempt > 0 || !hsm_rv_reconnect(op.rv))
			break;
		if ((rc = hsm_reconnect(h, seen, &op)) != KT_OK)
			break;
	}
	return rc;
}

/*
 * Test hooks.
 */

int
hsm_test_secret_readable(
    struct hsm *h, struct hsm_key *k, int *readable, char *err, size_t errlen)
{
	uint8_t buf[HSM_RSA_MODULUS_MAX];
	struct ck_attribute a = { CKA_VALUE, buf, sizeof(buf) };
	ck_session_handle_t s;
	ck_object_handle_t obj;
	struct hsm_op op;
	ck_rv_t rv;
	int rc;

	hsm_op_init(&op, err, errlen);
	if (k->alg == HSM_RSA3072_PSS || k->alg == HSM_RSA4096_PSS)
		a.type = CKA_PRIVATE_EXPONENT;
	if ((rc = hsm_pool_get(h, &s, &op)) != KT_OK)
		return rc;
	if ((rc = hsm_key_handle(h, k, s, &obj, &op)) != KT_OK)
		goto out;
	rv = h->f->C_GetAttributeValue(s, obj, &a, 1);
	if (rv == CKR_OK && a.value_len != CK_UNAVAILABLE_INFORMATION)
		*readable = 1;
	else if (rv == CKR_ATTRIBUTE_SENSITIVE)
		*readable = 0;
	else
		rc = hsm_fail(&op, rv, "reading the secret value");
out:
	kt_wipe(buf, sizeof(buf));
	hsm_pool_put(h, s, op.rv);
	return rc;
}

int
hsm_test_generate_unsafe(
    struct hsm *h, const char *label, char *err, size_t errlen)
{
	struct hsm_op op;

	hsm_op_init(&op, err, errlen);
	return hsm_generate_any(h, HSM_ECDSA_P256, label, 1, NULL, &op);
}

int
hsm_test_key_mismatch(struct hsm_key *k, const struct hsm_key *other)
{
	if (k->alg != other->alg || EVP_PKEY_up_ref(other->pub) != 1)
		return KT_EINVAL;
	EVP_PKEY_free(k->pub);
	k->pub = other->pub;
	/* The next check builds its verifier from the new key. */
	hsm_fast_free(k->fast);
	k->fast = NULL;
	k->fast_failed = 0;
	return KT_OK;
}
