/*
 * Fuzzes the entry bundle parser.  The first byte gives the expected
 * number of entries minus one (1..256), the rest is the bundle.  Whatever
 * parses must encode back to exactly the same bytes, and must pass the
 * check against a tile made of its own leaf hashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/tile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_bytes e[KT_TILE_WIDTH];
	uint8_t tile[KT_TILE_DATA_MAX];
	struct kt_hash h;
	struct kt_buf b;
	unsigned count;

	if (size < 1)
		return 0;
	count = (unsigned)data[0] + 1;
	if (kt_entry_bundle_parse(data + 1, size - 1, count, e) != KT_OK)
		return 0;

	kt_buf_init(&b, KT_ENTRY_BUNDLE_MAX);
	for (unsigned i = 0; i < count; i++) {
		if (e[i].len > KT_ENTRY_MAX)
			abort();
		if (kt_entry_bundle_append(&b, e[i].p, e[i].len) != KT_OK)
			abort();
		kt_leaf_hash(e[i].p, e[i].len, &h);
		memcpy(tile + (size_t)i * KT_HASH_SIZE, h.b, KT_HASH_SIZE);
	}
	if (b.len != size - 1 || memcmp(b.p, data + 1, b.len) != 0)
		abort();
	kt_buf_free(&b);
	if (kt_entry_bundle_check(data + 1, size - 1, tile,
		(size_t)count * KT_HASH_SIZE) != KT_OK)
		abort();
	return 0;
}
