/*
 * Fuzzes the tile path parser: whatever it accepts must be a valid tile
 * whose formatted path is byte for byte the input (parse, format, compare).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/tile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_tile t;
	char out[KT_TILE_PATH_MAX];
	size_t len;

	if (kt_tile_parse((const char *)data, size, &t) != KT_OK)
		return 0;
	if (kt_tile_check(&t) != KT_OK)
		abort();
	if (kt_tile_format(&t, out, sizeof(out), &len) != KT_OK)
		abort();
	if (len != size || memcmp(out, data, size) != 0)
		abort();
	/* The arithmetic must cope with any tile a path can name. */
	if (kt_tile_in_tree(&t, 0) ||
	    (t.level >= KT_TILE_LEVELS_MAX &&
		kt_tile_in_tree(&t, KT_SIZE_MAX - 1)))
		abort();
	return 0;
}
