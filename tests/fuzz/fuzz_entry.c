/*
 * Fuzzes the canonical-entry parser: whatever it accepts must encode back
 * to exactly the input.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj = NULL;
	struct kt_buf b;

	if (kt_entry_parse(data, size, &obj) != KT_OK)
		return 0;
	kt_buf_init(&b, KT_ENTRY_MAX);
	if (kt_entry_encode(obj, &b) != KT_OK || b.len != size ||
	    memcmp(b.p, data, size) != 0)
		abort();
	kt_buf_free(&b);
	json_decref(obj);
	return 0;
}
