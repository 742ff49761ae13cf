/*
 * Public keys and signature checks with OpenSSL.  The algorithm floor
 * (P-256, RSA-3072; DESIGN.md section 7) is enforced when a key is parsed,
 * so a weak key never gets as far as a check.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "edverify.h"
#include "keytrail/encoding.h"
#include "keytrail/sig.h"

struct kt_pubkey {
	EVP_PKEY *pk;
	struct edv *edv; /* Ed25519 with tables (edverify.h), or NULL */
	int rsa_pss;
	char alg[KT_ALG_NAME_MAX];
	char id[2 * KT_HASH_SIZE + 1];
};

/* Names the algorithm, or NULL when unsupported or below the floor. */
static const char *
sig_alg(EVP_PKEY *pk)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_ED25519:
		return "ed25519";
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(
			pk, "group", group, sizeof(group), &glen) != 1)
			return NULL;
		if (strcmp(group, "prime256v1") == 0)
			return "ecdsa-p256-sha256";
		if (strcmp(group, "secp384r1") == 0)
			return "ecdsa-p384-sha256";
		return NULL;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) == 3072)
			return "rsa3072-pss-sha256";
		if (EVP_PKEY_get_bits(pk) == 4096)
			return "rsa4096-pss-sha256";
		return NULL;
	default:
		return NULL;
	}
}

/*
 * Gives an Ed25519 key its tables, so checks take about a quarter of
 * OpenSSL's time.  Without them (a key that is not canonically encoded,
 * or no memory) the key is checked through OpenSSL, with the same answers.
 */
static void
sig_edv(struct kt_pubkey *k)
{
	if (edv_new_pkey(k->pk, &k->edv) != KT_OK)
		k->edv = NULL; /* not Ed25519, or no table */
}

int
kt_pubkey_parse(const uint8_t *spki, size_t len, struct kt_pubkey **out)
{
	const uint8_t *p = spki;
	uint8_t *re = NULL;
	struct kt_pubkey *k;
	struct kt_hash id;
	const char *alg;
	EVP_PKEY *pk;
	int relen, rc;

	if (len > KT_SPKI_MAX)
		return KT_ETOOBIG;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len) {
		EVP_PKEY_free(pk);
		return KT_EPARSE;
	}
	/* The key ID hashes the DER: insist on its one canonical form. */
	relen = i2d_PUBKEY(pk, &re);
	if (relen <= 0 || (size_t)relen != len || memcmp(re, spki, len) != 0) {
		rc = KT_EPARSE;
		goto fail;
	}
	if ((alg = sig_alg(pk)) == NULL) {
		rc = KT_EPOLICY;
		goto fail;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		rc = KT_ENOMEM;
		goto fail;
	}
	k->pk = pk;
	k->rsa_pss = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
	sig_edv(k);
	memcpy(k->alg, alg, strlen(alg) + 1);
	SHA256(spki, len, id.b);
	kt_hex_encode(id.b, KT_HASH_SIZE, k->id);
	OPENSSL_free(re);
	*out = k;
	return KT_OK;
fail:
	OPENSSL_free(re);
	EVP_PKEY_free(pk);
	return rc;
}

struct kt_pubkey *
kt_pubkey_ref(struct kt_pubkey *k)
{
	struct kt_pubkey *c = calloc(1, sizeof(*c));

	/*
	 * A copy sharing the OpenSSL key (itself reference-counted and safe
	 * to use from several threads), so each holder frees its own.
	 */
	if (c == NULL)
		return NULL;
	*c = *k;
	EVP_PKEY_up_ref(c->pk);
	if (c->edv != NULL)
		edv_ref(c->edv);
	return c;
}

void
kt_pubkey_free(struct kt_pubkey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pk);
	edv_free(k->edv);
	free(k);
}

const char *
kt_pubkey_alg(const struct kt_pubkey *k)
{
	return k->alg;
}

const char *
kt_pubkey_id(const struct kt_pubkey *k)
{
	return k->id;
}

int
kt_pubkey_verify(const struct kt_pubkey *k, const uint8_t digest[32],
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *md = NULL;
	int ok = 0;

	if (siglen == 0 || siglen > KT_SIG_MAX)
		return KT_EVERIFY;
	if (k->edv != NULL) /* -1 (out of memory) cannot tell: refuse */
		return edv_verify(k->edv, digest, 32, sig, siglen) == 1
		    ? KT_OK
		    : KT_EVERIFY;
	if (EVP_PKEY_get_base_id(k->pk) == EVP_PKEY_ED25519) {
		/* Ed25519 signs the digest bytes themselves. */
		if ((md = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pk) == 1)
			ok = EVP_DigestVerify(md, sig, siglen, digest, 32) == 1;
	} else if ((pctx = EVP_PKEY_CTX_new(k->pk, NULL)) != NULL &&
	    EVP_PKEY_verify_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1) {
		if (!k->rsa_pss ||
		    (EVP_PKEY_CTX_set_rsa_padding(
			 pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1))
			ok =
			    EVP_PKEY_verify(pctx, sig, siglen, digest, 32) == 1;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(pctx);
	return ok ? KT_OK : KT_EVERIFY;
}
