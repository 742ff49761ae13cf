/*
 * keytrail: C2SP tlog-tiles.
 *
 * A log publishes its Merkle tree as tiles: a level-L tile holds up to 256
 * consecutive hashes at tree level 8L (level 0 holds leaf hashes), and an
 * entry bundle holds up to 256 consecutive entries, each preceded by its
 * length as a 2-byte big-endian number.  This module names tiles (the
 * tile/<L>/<N>[.p/<W>] paths), computes which tiles a tree of a given size
 * has, builds tile data from stored hashes so a log serves tiles without
 * recomputing anything, encodes and decodes entry bundles, and verifies
 * tiles fetched from an untrusted source against a trusted tree size and
 * root (normally from a verified checkpoint).
 *
 * Tile data is reached through callbacks, like stored hashes in merkle.h,
 * so nothing here performs I/O.  The structure mirrors Go's
 * golang.org/x/mod/sumdb/tlog tile.go with C2SP's fixed tile height of 8.
 */
#ifndef KEYTRAIL_TILE_H
#define KEYTRAIL_TILE_H

#include "keytrail/common.h"
#include "keytrail/merkle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tile height: a tile spans 8 tree levels (C2SP tlog-tiles). */
#define KT_TILE_HEIGHT 8
/* Hashes in a full tile, entries in a full bundle: 2^KT_TILE_HEIGHT. */
#define KT_TILE_WIDTH 256
/* The level value that names an entry bundle (tile/entries/...). */
#define KT_TILE_ENTRIES (-1)
/*
 * Highest level a tile path may name.  C2SP allows 0..63 in a path, and
 * so do we, so every syntactically valid path round-trips.  No tree below
 * KT_SIZE_MAX (2^63) has a tile above level 7 (256^8 = 2^64): whether a
 * tile exists is a separate question, answered by kt_tile_in_tree().
 */
#define KT_TILE_LEVEL_MAX 63
/* Most hash-tile levels of any tree below KT_SIZE_MAX: levels 0..7. */
#define KT_TILE_LEVELS_MAX 8
/*
 * Largest tile index a path may name: 2^55 - 1.  A level-0 tile or entry
 * bundle with a larger index would start at or beyond leaf 2^63, so no
 * tree below KT_SIZE_MAX holds it; the cap also keeps
 * index * 256 + width far from overflowing.
 */
#define KT_TILE_INDEX_MAX ((KT_SIZE_MAX / KT_TILE_WIDTH) - 1)
/*
 * Buffer size for a formatted tile path, NUL included.  The longest path
 * is tile/entries/x036/x028/x797/x018/x963/967.p/255 (47 bytes); parsers
 * reject anything of KT_TILE_PATH_MAX bytes or more without looking at it.
 */
#define KT_TILE_PATH_MAX 64
/* Bytes in a full hash tile. */
#define KT_TILE_DATA_MAX (KT_TILE_WIDTH * KT_HASH_SIZE)
/* Largest full entry bundle: 256 entries of KT_ENTRY_MAX bytes. */
#define KT_ENTRY_BUNDLE_MAX (KT_TILE_WIDTH * (2 + KT_ENTRY_MAX))
/*
 * Most tiles authenticating KT_READ_MAX stored hashes can take: one
 * partial tile per level for the root, and for each hash the tiles from
 * its own up to the top level.
 */
#define KT_TILE_PLAN_MAX (KT_TILE_LEVELS_MAX * (KT_READ_MAX + 1))

/*
 * A tile: level 0..KT_TILE_LEVEL_MAX for hash tiles or KT_TILE_ENTRIES for
 * an entry bundle; index is the tile's position within its level
 * (0..KT_TILE_INDEX_MAX); width is the number of hashes or entries,
 * 1..KT_TILE_WIDTH, where KT_TILE_WIDTH is a full tile and anything less a
 * partial one.  Plain data, caller-allocated.
 */
struct kt_tile {
	int level;
	uint64_t index;
	unsigned width;
};

/*
 * Checks that t names a tile: level, index and width within the ranges
 * above.  Returns KT_OK or KT_EINVAL.
 */
int kt_tile_check(const struct kt_tile *t) KT_MUST_CHECK;

/*
 * Writes the C2SP path of t (tile/<L>/<N>[.p/<W>] or
 * tile/entries/<N>[.p/<W>], without a leading slash) and a NUL into
 * out[0..outcap), and its length without the NUL into *outlen.
 * KT_TILE_PATH_MAX bytes are always enough.  Returns KT_OK, KT_EINVAL
 * if kt_tile_check fails, or KT_ETOOBIG if outcap is too small.  Writes
 * nothing on failure.
 */
int kt_tile_format(const struct kt_tile *t, char *out, size_t outcap,
    size_t *outlen) KT_MUST_CHECK;

/*
 * Parses the tile path p[0..len) (as kt_tile_format writes it, no leading
 * slash, no NUL needed).  Only the canonical spelling is accepted: the
 * path is parsed, formatted again and compared, so leading zeros, a
 * leading x000 group, width 0 or 256 written as partial, levels above
 * KT_TILE_LEVEL_MAX, indexes above KT_TILE_INDEX_MAX, x/mod's height
 * element and anything trailing are all rejected.  Returns KT_OK or
 * KT_EPARSE.  Writes *out only on success.
 */
int kt_tile_parse(const char *p, size_t len, struct kt_tile *out) KT_MUST_CHECK;

/*
 * Tile arithmetic for a tree of size leaves (size < KT_SIZE_MAX).  level
 * may be KT_TILE_ENTRIES, which counts like level 0.  Level L has
 * floor(size / 256^(L+1)) full tiles and, when floor(size / 256^L) mod 256
 * is not zero, one partial tile of that width after them (C2SP
 * tlog-tiles).  A tree of 256 leaves thus has a full level-0 tile and a
 * partial level-1 tile of width 1.  level outside KT_TILE_ENTRIES to
 * KT_TILE_LEVEL_MAX is a caller bug and aborts.
 */
/* Number of hash-tile levels with at least one tile: 0..KT_TILE_LEVELS_MAX.
 */
unsigned kt_tile_levels(uint64_t size);
/* Number of full tiles at level. */
uint64_t kt_tile_full_count(uint64_t size, int level);
/* Width of the partial tile at level, or 0 when there is none. */
unsigned kt_tile_partial_width(uint64_t size, int level);
/*
 * Returns 1 if every hash (or entry) t covers is in the tree of size
 * leaves, else 0 (also for a t that fails kt_tile_check).  This holds for
 * the tiles the tree publishes and for narrower tiles at the same place,
 * such as the partial tiles of an earlier tree size: their contents never
 * change, so a log may serve them.
 */
int kt_tile_in_tree(const struct kt_tile *t, uint64_t size);

/*
 * The level-0 tile of the tree of size leaves that holds leaf (the entry
 * bundle has the same index and width).  Returns KT_OK or KT_EINVAL if
 * leaf >= size or size >= KT_SIZE_MAX.  Writes *out only on success.
 */
int kt_tile_for_leaf(
    uint64_t size, uint64_t leaf, struct kt_tile *out) KT_MUST_CHECK;

/*
 * The tile of the tree of size leaves from which the stored hash index
 * (merkle.h numbering) is read: the tile at level floor(l / 8) for a hash
 * at tree level l, full or as wide as the tree's partial tile there (tlog
 * TileForIndex, widened to the published tile).  A hash whose tree level
 * is not a multiple of 8 is the root of a complete subtree of that tile's
 * hashes.  Returns KT_OK or KT_EINVAL if index is not a stored hash of
 * that tree or size >= KT_SIZE_MAX.  Writes *out only on success.
 */
int kt_tile_for_stored_hash(
    uint64_t size, uint64_t index, struct kt_tile *out) KT_MUST_CHECK;

/*
 * Lists the tiles of the tree of size leaves that authenticating the
 * stored hashes indexes[0..n) against the tree's root needs: first the
 * partial tiles of every level, top level first (together they give the
 * root), then for each hash the tiles from the top down to the one holding
 * it, each full tile after the parent that authenticates it.  No tile is
 * listed twice.  Writes up to outcap tiles to out and their number to
 * *nout; KT_TILE_PLAN_MAX is always enough.  Returns KT_OK, KT_EINVAL (an
 * index not in the tree, n > KT_READ_MAX, size >= KT_SIZE_MAX) or
 * KT_ETOOBIG (outcap too small).  Writes *nout only on success.
 */
int kt_tiles_for_hashes(uint64_t size, const uint64_t *indexes, size_t n,
    struct kt_tile *out, size_t outcap, size_t *nout) KT_MUST_CHECK;

/*
 * Lists, as kt_tiles_for_hashes does, the tiles needed to build the
 * inclusion proof of leaf in the tree of size leaves from tiles (leaf's
 * own level-0 tile among them).  Returns KT_OK, KT_EINVAL (leaf >= size,
 * size >= KT_SIZE_MAX) or KT_ETOOBIG.  Writes *nout only on success.
 */
int kt_tiles_for_inclusion(uint64_t size, uint64_t leaf, struct kt_tile *out,
    size_t outcap, size_t *nout) KT_MUST_CHECK;

/*
 * Lists the tiles needed to build the consistency proof from the tree of
 * size old to the tree of size size (0 < old <= size < KT_SIZE_MAX, else
 * KT_EINVAL).  Same outputs and errors as kt_tiles_for_inclusion.
 */
int kt_tiles_for_consistency(uint64_t size, uint64_t old, struct kt_tile *out,
    size_t outcap, size_t *nout) KT_MUST_CHECK;

/*
 * Appends the data of the hash tile t of the tree of size leaves to out:
 * t->width hashes of 32 bytes, the stored hashes at tree level 8 * level,
 * positions index * 256 onwards, read through read/ctx in batches of at
 * most KT_READ_MAX.  Nothing is hashed, so a log serves tiles straight from
 * its stored hashes.  Returns KT_OK, KT_EINVAL (t fails kt_tile_check or is
 * an entry bundle), KT_ENOTFOUND (t is not in the tree, see
 * kt_tile_in_tree), the buffer's KT_ETOOBIG or KT_ENOMEM, or the reader's
 * error.  out is unchanged on failure.
 */
int kt_tile_read_data(uint64_t size, const struct kt_tile *t,
    kt_hash_reader_fn read, void *ctx, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Appends one entry to the entry bundle being built in b: its length as a
 * 2-byte big-endian number, then its bytes.  Returns KT_OK, KT_ETOOBIG
 * (len > KT_ENTRY_MAX, or past b's maximum) or KT_ENOMEM.  b is unchanged
 * on failure.  A bundle is complete after KT_TILE_WIDTH entries; give b a
 * maximum of KT_ENTRY_BUNDLE_MAX to hold any bundle.
 */
int kt_entry_bundle_append(
    struct kt_buf *b, const uint8_t *entry, size_t len) KT_MUST_CHECK;

/*
 * Splits the entry bundle p[0..len), which must hold exactly count
 * entries and nothing after the last, into entries[0..count): views into
 * p, valid as long as p is.  entries is caller storage for count views.
 * Returns KT_OK, KT_EINVAL (count is not 1..KT_TILE_WIDTH) or KT_EPARSE
 * (truncated, too few or too many entries, trailing bytes).  Writes
 * entries only on success.
 */
int kt_entry_bundle_parse(const uint8_t *p, size_t len, unsigned count,
    struct kt_bytes *entries) KT_MUST_CHECK;

/*
 * Checks the entry bundle p[0..len) against the level-0 tile data
 * tile[0..tilelen) that covers the same leaves: the bundle must parse with
 * exactly tilelen / 32 entries and the leaf hash of each must equal the
 * tile's hash at the same place.  Only authenticated tile data makes this
 * check mean anything.  Returns KT_OK, KT_EINVAL (tilelen is not 32 to
 * 8192 in steps of 32), KT_EPARSE or KT_EVERIFY.
 */
int kt_entry_bundle_check(const uint8_t *p, size_t len, const uint8_t *tile,
    size_t tilelen) KT_MUST_CHECK;

/*
 * Fetches the tile t (a hash tile or an entry bundle) from wherever the
 * caller keeps tiles: appends its bytes to data, which is empty on entry
 * and whose maximum is the largest valid size of t, so an oversized answer
 * fails inside the append.  Returns KT_OK or an error the verifier passes
 * on (KT_ENOTFOUND, KT_EIO, ...).  The bytes are untrusted: the caller of
 * the verifier below checks them, the callback need not.
 */
typedef int (*kt_tile_read_fn)(
    void *ctx, const struct kt_tile *t, struct kt_buf *data);

/*
 * Verifies every tile of the tree of size leaves with root hash root,
 * reading them through read/ctx: each partial tile through the root
 * computation (together the partial tiles give the root), each full tile
 * by its Merkle root against the matching hash in its parent tile, which
 * is verified first, and each entry bundle, entry by entry, against its
 * verified level-0 tile.  Tiles are read in order with one tile per level
 * kept, so memory stays small for any size.  Size 0 requires root to be
 * the empty-tree root and reads nothing.  Returns KT_OK, KT_EINVAL
 * (size >= KT_SIZE_MAX), KT_EPARSE (a tile of the wrong length, a
 * malformed bundle), KT_EVERIFY (a hash that does not match), KT_ENOMEM
 * or the callback's error.
 */
int kt_tiles_verify(uint64_t size, const struct kt_hash *root,
    kt_tile_read_fn read, void *ctx) KT_MUST_CHECK;

/*
 * A stored-hash reader over untrusted tiles for the tree of size leaves
 * with root hash root (tlog TileHashReader).  Fill in the fields and pass
 * a pointer to it as the ctx of kt_tile_hash_read, which then serves as
 * the kt_hash_reader_fn of kt_prove_inclusion, kt_prove_consistency, ...
 * Plain data; it owns nothing and caches nothing: each read fetches what
 * it needs through read/ctx (which may cache).
 */
struct kt_tile_hash_reader {
	uint64_t size;
	struct kt_hash root;
	kt_tile_read_fn read;
	void *ctx;
};

/*
 * A kt_hash_reader_fn over tiles; ctx is a struct kt_tile_hash_reader.
 * Fetches the tiles kt_tiles_for_hashes lists and authenticates all of
 * them (the partial tiles against the root, each full tile against its
 * parent) before it writes any hash to out[0..n).  Returns KT_OK, KT_EINVAL
 * (an index not in the tree, n > KT_READ_MAX), KT_EPARSE or KT_EVERIFY
 * (tiles that do not match the root), KT_ENOMEM or the callback's error.
 * Writes out only on success.
 */
int kt_tile_hash_read(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out);

#ifdef __cplusplus
}
#endif
#endif
