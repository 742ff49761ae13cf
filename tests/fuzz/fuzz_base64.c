/*
 * Fuzzes the strict base64 and hex decoders: whatever decodes must
 * re-encode to exactly the input (one spelling per value), and nothing
 * may read or write out of bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *dec;
	char *enc;
	size_t n;

	if (size > 65536)
		return 0;
	dec = malloc(size + 1);
	enc = malloc(KT_B64_ENCLEN(size) + 1);
	if (dec == NULL || enc == NULL)
		abort();
	if (kt_b64_decode((const char *)data, size, dec, size, &n) == KT_OK) {
		long len = kt_b64_encode(dec, n, enc, KT_B64_ENCLEN(size) + 1);

		if (len < 0 || (size_t)len != size ||
		    memcmp(enc, data, size) != 0)
			abort();
	}
	if (size % 2 == 0 &&
	    kt_hex_decode_exact((const char *)data, size, dec, size / 2) ==
		KT_OK) {
		char *hex = malloc(size + 1);

		if (hex == NULL)
			abort();
		kt_hex_encode(dec, size / 2, hex);
		if (memcmp(hex, data, size) != 0)
			abort();
		free(hex);
	}
	free(dec);
	free(enc);
	return 0;
}
