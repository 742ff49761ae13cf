/*
 * Fuzzes the fast P-256 check (signer/ecverify.c) against OpenSSL's own
 * ECDSA verification, for one fixed public key.  Input: one byte n, then
 * a digest of n % 65 bytes, then the DER signature.  The two verifiers
 * must give the same answer for every input; any difference aborts.  The
 * corpus holds signatures that verify, so mutations start from valid ones.
 */
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ecverify.h"
#include "keytrail/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A P-256 public key (SubjectPublicKeyInfo) made for this target. */
static const uint8_t fuzz_spki[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a,
	0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
	0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0xd4, 0xf0, 0x47, 0xbd,
	0x77, 0x99, 0x15, 0x23, 0x5a, 0x6c, 0x9c, 0xc0, 0x12, 0xdc, 0xa6, 0x35,
	0x30, 0x0e, 0xdc, 0x65, 0x00, 0x94, 0x7a, 0x4f, 0x17, 0x88, 0x83, 0x4d,
	0x82, 0x9b, 0x21, 0xe0, 0x1b, 0xda, 0x7d, 0x9b, 0xdb, 0x74, 0x53, 0x66,
	0x97, 0xc4, 0x4f, 0x85, 0xf3, 0x98, 0x4e, 0xac, 0xc8, 0xbe, 0x50, 0x1c,
	0x0f, 0x4f, 0xf3, 0x0f, 0xd1, 0xf0, 0xb5, 0xdb, 0xf0, 0xa6, 0xf6,
	0xea };

static EVP_PKEY *fuzz_pub;
static struct ecv *fuzz_ecv;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY_CTX *c;
	size_t dlen;
	int want, got;

	if (fuzz_pub == NULL) {
		const unsigned char *p = fuzz_spki;

		fuzz_pub = d2i_PUBKEY(NULL, &p, (long)sizeof(fuzz_spki));
		if (fuzz_pub == NULL || ecv_new(fuzz_pub, &fuzz_ecv) != KT_OK)
			abort();
	}
	if (size < 1 || (dlen = data[0] % 65u) > size - 1)
		return 0;
	data++;
	size--;
	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, fuzz_pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(c) != 1)
		abort();
	want = EVP_PKEY_verify(c, data + dlen, size - dlen, data, dlen) == 1;
	EVP_PKEY_CTX_free(c);
	got = ecv_verify(fuzz_ecv, data, dlen, data + dlen, size - dlen);
	if (got != want)
		abort();
	return 0;
}
