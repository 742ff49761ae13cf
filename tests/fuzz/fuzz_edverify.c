/*
 * Fuzzes the fast Ed25519 check (verifier/edverify.c) against OpenSSL's
 * own Ed25519.  Input: one mode byte; when its low bit is set, 32 bytes
 * of public key follow (any bytes: those that are not a canonical point
 * get no table and are skipped), otherwise the target's fixed key is
 * used; then up to 64 bytes of signature, then the message.  The two
 * checks must give the same answer for every input; any difference
 * aborts.  The corpus holds signatures that verify, so mutations start
 * from valid ones.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "edverify.h"
#include "keytrail/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private seed of this target's fixed key (a test key, nothing else). */
static const uint8_t fuzz_seed[32] = { 0x6b, 0x65, 0x79, 0x74, 0x72, 0x61, 0x69,
	0x6c, 0x20, 0x66, 0x75, 0x7a, 0x7a, 0x5f, 0x65, 0x64, 0x76, 0x65, 0x72,
	0x69, 0x66, 0x79, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x6b, 0x65, 0x79,
	0x21 };

static uint8_t fuzz_pub[32];
static struct edv *fuzz_edv;

static int
fuzz_evp(const uint8_t pub[32], const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r;

	if (pk == NULL || md == NULL ||
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1)
		abort();
	r = EVP_DigestVerify(md, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *pub = fuzz_pub;
	struct edv *v = NULL;
	size_t siglen;
	int want, got;

	if (fuzz_edv == NULL) {
		EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(
		    EVP_PKEY_ED25519, NULL, fuzz_seed, sizeof(fuzz_seed));
		size_t len = sizeof(fuzz_pub);

		if (pk == NULL ||
		    EVP_PKEY_get_raw_public_key(pk, fuzz_pub, &len) != 1 ||
		    edv_new(fuzz_pub, &fuzz_edv) != KT_OK)
			abort();
		EVP_PKEY_free(pk);
	}
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (size < 33)
			return 0;
		pub = data + 1;
		if (edv_new(pub, &v) != KT_OK)
			return 0;
		data += 33;
		size -= 33;
	} else {
		data++;
		size--;
	}
	siglen = size < 64 ? size : 64;
	want = fuzz_evp(pub, data + siglen, size - siglen, data, siglen);
	got = edv_verify(v != NULL ? v : fuzz_edv, data + siglen, size - siglen,
	    data, siglen);
	edv_free(v);
	if (got != want)
		abort();
	return 0;
}
