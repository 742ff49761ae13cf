/*
 * Fuzzes X.509 for the signing keys (signer/cert.c).  The first byte picks
 * the parser: 0, a certificate (cert_parse); 1, a subject
 * (cert_subject_check); 2, a subject made into a request for a fixed
 * Ed25519 key (cert_csr_new), which must refuse a signature that is not
 * the key's.  Whatever the bytes, the answer is a code, never a crash,
 * and a refusal says why.
 */
#include <stdlib.h>
#include <string.h>

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The Ed25519 public key of RFC 8032 section 7.1, test 1, as an SPKI. */
static const uint8_t fuzz_spki[] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b,
	0x65, 0x70, 0x03, 0x21, 0x00, 0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a,
	0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72,
	0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51,
	0x1a };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_info ci;
	struct cert_csr *csr = NULL;
	struct kt_buf pem;
	uint8_t sig[64];
	char err[256];
	int rc;

	if (size == 0)
		return 0;
	err[0] = 0;
	switch (data[0]) {
	case 0:
		rc = cert_parse(data + 1, size - 1, fuzz_spki,
		    sizeof(fuzz_spki), &ci, err, sizeof(err));
		if (rc == KT_OK &&
		    (ci.not_after < CERT_TIME_MIN ||
			ci.not_after > CERT_TIME_MAX ||
			strlen(ci.subject) > CERT_SUBJECT_TEXT_MAX))
			abort();
		break;
	case 1:
		rc = cert_subject_check(
		    (const char *)data + 1, size - 1, err, sizeof(err));
		break;
	case 2:
		rc = cert_csr_new(fuzz_spki, sizeof(fuzz_spki), HSM_ED25519,
		    (const char *)data + 1, size - 1, &csr, err, sizeof(err));
		if (rc != KT_OK)
			break;
		if (cert_csr_message(csr).len == 0 ||
		    cert_csr_message(csr).len > CERT_TBS_MAX)
			abort();
		/* Nobody here holds the private key: it must not verify. */
		memset(sig, 0x5a, sizeof(sig));
		kt_buf_init(&pem, CERT_PEM_MAX);
		if (cert_csr_finish(csr, sig, sizeof(sig), &pem) !=
			KT_EVERIFY ||
		    pem.len != 0)
			abort();
		kt_buf_free(&pem);
		cert_csr_free(csr);
		break;
	default:
		return 0;
	}
	if (rc != KT_OK && err[0] == 0)
		abort();
	return 0;
}
