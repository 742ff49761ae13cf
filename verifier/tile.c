/*
 * C2SP tlog-tiles: tile paths, tile arithmetic, tile data from stored
 * hashes, entry bundles, and verification of untrusted tiles.
 *
 * The tile arithmetic and the hash reader follow Go's
 * golang.org/x/mod/sumdb/tlog tile.go (TileForIndex, HashFromTile,
 * TileHashReader) with the tile height fixed at 8, as C2SP fixes it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/tile.h"

/* Hard invariant checks: broken math aborts even in release builds. */
#define TILE_ASSERT(c) \
	do { \
		if (!(c)) \
			abort(); \
	} while (0)

/* Every tile path starts with this. */
#define TILE_PREFIX "tile/"
#define TILE_PREFIX_LEN (sizeof(TILE_PREFIX) - 1)
/* Digits per element of a tile index ("x001/x234/067"), and their base. */
#define TILE_GROUP_DIGITS 3
#define TILE_GROUP_BASE 1000
/* The level element of an entry bundle path. */
#define TILE_ENTRIES_NAME "entries"
#define TILE_ENTRIES_LEN (sizeof(TILE_ENTRIES_NAME) - 1)
/* The marker before a partial tile's width. */
#define TILE_PARTIAL_MARK ".p/"
#define TILE_PARTIAL_LEN (sizeof(TILE_PARTIAL_MARK) - 1)
/* Most complete subtrees of a tree: one per bit of its size. */
#define TILE_SUBTREES_MAX 64

/*
 * Number of hashes at tree level 8 * level in a tree of size leaves: the
 * complete subtrees of 256^level leaves.  Entry bundles count like level
 * 0.  Levels of 8 and above have none below 2^64.
 */
static uint64_t
tile_hashes_at(uint64_t size, int level)
{
	TILE_ASSERT(level >= KT_TILE_ENTRIES && level <= KT_TILE_LEVEL_MAX);
	if (level < 0)
		level = 0;
	if (level >= KT_TILE_LEVELS_MAX)
		return 0;
	return size >> (KT_TILE_HEIGHT * level);
}

/*
 * The tile at (level, index) as the tree of size leaves publishes it: full
 * or as wide as the level's partial tile.  The tile must exist.
 */
static void
tile_published(uint64_t size, int level, uint64_t index, struct kt_tile *t)
{
	uint64_t have = tile_hashes_at(size, level);

	/* We must have index * 256 < have, or the caller's math is wrong. */
	TILE_ASSERT(index <= KT_TILE_INDEX_MAX && index * KT_TILE_WIDTH < have);
	t->level = level;
	t->index = index;
	if (have - index * KT_TILE_WIDTH >= KT_TILE_WIDTH)
		t->width = KT_TILE_WIDTH;
	else
		t->width = (unsigned)(have - index * KT_TILE_WIDTH);
}

static int
tile_equal(const struct kt_tile *a, const struct kt_tile *b)
{
	return a->level == b->level && a->index == b->index &&
	    a->width == b->width;
}

int
kt_tile_check(const struct kt_tile *t)
{
	if (t == NULL)
		return KT_EINVAL;
	if (t->level < KT_TILE_ENTRIES || t->level > KT_TILE_LEVEL_MAX)
		return KT_EINVAL;
	if (t->index > KT_TILE_INDEX_MAX)
		return KT_EINVAL;
	if (t->width < 1 || t->width > KT_TILE_WIDTH)
		return KT_EINVAL;
	return KT_OK;
}

int
kt_tile_format(
    const struct kt_tile *t, char *out, size_t outcap, size_t *outlen)
{
	char path[KT_TILE_PATH_MAX], digits[24];
	size_t ndig, ngroups, pos = 0;
	int n;

	if (kt_tile_check(t) != KT_OK)
		return KT_EINVAL;

	/*
	 * C2SP tlog-tiles: "tile/", the level or "entries", then the index
	 * zero-padded to a multiple of three digits and split into
	 * three-digit elements, all but the last prefixed with "x", then
	 * ".p/<W>" for a partial tile.  The buffers are sized for the
	 * largest index and width, so snprintf cannot truncate here.
	 */
	if (t->level == KT_TILE_ENTRIES)
		n = snprintf(path, sizeof(path), "%s%s/", TILE_PREFIX,
		    TILE_ENTRIES_NAME);
	else
		n = snprintf(
		    path, sizeof(path), "%s%d/", TILE_PREFIX, t->level);
	TILE_ASSERT(n > 0 && (size_t)n < sizeof(path));
	pos = (size_t)n;

	n = snprintf(digits, sizeof(digits), "%" PRIu64, t->index);
	TILE_ASSERT(n > 0 && (size_t)n < sizeof(digits));
	ndig = (size_t)n;
	ngroups = (ndig + TILE_GROUP_DIGITS - 1) / TILE_GROUP_DIGITS;
	for (size_t g = 0; g < ngroups; g++) {
		if (g + 1 < ngroups)
			path[pos++] = 'x';
		for (size_t k = 0; k < TILE_GROUP_DIGITS; k++) {
			/* Position of this digit counted from the right. */
			size_t fromright =
			    (ngroups - g) * TILE_GROUP_DIGITS - k - 1;

			path[pos++] = fromright < ndig
			    ? digits[ndig - 1 - fromright]
			    : '0';
		}
		if (g + 1 < ngroups)
			path[pos++] = '/';
		/* Room must remain for ".p/255" and the NUL. */
		TILE_ASSERT(pos + TILE_PARTIAL_LEN + 4 <= sizeof(path));
	}
	if (t->width < KT_TILE_WIDTH) {
		n = snprintf(path + pos, sizeof(path) - pos, "%s%u",
		    TILE_PARTIAL_MARK, t->width);
		TILE_ASSERT(n > 0 && (size_t)n < sizeof(path) - pos);
		pos += (size_t)n;
	}
	path[pos] = '\0';

	if (out == NULL || outcap <= pos)
		return KT_ETOOBIG;
	memcpy(out, path, pos + 1);
	*outlen = pos;
	return KT_OK;
}

/* Reads three decimal digits at p into *v; 0 if they are not digits. */
static int
tile_group(const char *p, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < TILE_GROUP_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*v = x;
	return 1;
}

/* index = index * 1000 + group, refusing anything past the index cap. */
static int
tile_index_push(uint64_t *index, uint64_t group)
{
	if (*index > KT_TILE_INDEX_MAX / TILE_GROUP_BASE)
		return 0;
	*index = *index * TILE_GROUP_BASE + group;
	return *index <= KT_TILE_INDEX_MAX;
}

int
kt_tile_parse(const char *p, size_t len, struct kt_tile *out)
{
	struct kt_tile t;
	char canon[KT_TILE_PATH_MAX];
	const char *s, *end, *slash;
	size_t clen;
	uint64_t v;

	if (p == NULL || len >= KT_TILE_PATH_MAX || len < TILE_PREFIX_LEN ||
	    memcmp(p, TILE_PREFIX, TILE_PREFIX_LEN) != 0)
		return KT_EPARSE;
	end = p + len;
	s = p + TILE_PREFIX_LEN;

	/* The level: "entries" or a canonical decimal up to 63. */
	if ((slash = memchr(s, '/', (size_t)(end - s))) == NULL)
		return KT_EPARSE;
	if ((size_t)(slash - s) == TILE_ENTRIES_LEN &&
	    memcmp(s, TILE_ENTRIES_NAME, TILE_ENTRIES_LEN) == 0)
		t.level = KT_TILE_ENTRIES;
	else if (kt_parse_u64((const uint8_t *)s, (size_t)(slash - s),
		     KT_TILE_LEVEL_MAX, &v) == KT_OK)
		t.level = (int)v;
	else
		return KT_EPARSE;
	s = slash + 1;

	/* The index: "xDDD/" elements, then a last "DDD". */
	t.index = 0;
	while (end - s > TILE_GROUP_DIGITS + 1 && s[0] == 'x' &&
	    s[TILE_GROUP_DIGITS + 1] == '/') {
		if (!tile_group(s + 1, &v) || !tile_index_push(&t.index, v))
			return KT_EPARSE;
		s += TILE_GROUP_DIGITS + 2;
	}
	if (end - s < TILE_GROUP_DIGITS || !tile_group(s, &v) ||
	    !tile_index_push(&t.index, v))
		return KT_EPARSE;
	s += TILE_GROUP_DIGITS;

	/* The width: absent for a full tile, ".p/<1..255>" otherwise. */
	t.width = KT_TILE_WIDTH;
	if (s != end) {
		if ((size_t)(end - s) < TILE_PARTIAL_LEN ||
		    memcmp(s, TILE_PARTIAL_MARK, TILE_PARTIAL_LEN) != 0)
			return KT_EPARSE;
		s += TILE_PARTIAL_LEN;
		if (kt_parse_u64((const uint8_t *)s, (size_t)(end - s),
			KT_TILE_WIDTH - 1, &v) != KT_OK ||
		    v == 0)
			return KT_EPARSE;
		t.width = (unsigned)v;
	}

	/*
	 * Accept only the spelling we would write ourselves (tlog
	 * ParseTilePath: "if path != t.Path()"); this rejects the
	 * non-canonical forms, such as a leading x000 element, that the
	 * loops above let through.
	 */
	if (kt_tile_format(&t, canon, sizeof(canon), &clen) != KT_OK ||
	    clen != len || memcmp(canon, p, len) != 0)
		return KT_EPARSE;
	*out = t;
	return KT_OK;
}

unsigned
kt_tile_levels(uint64_t size)
{
	unsigned n = 0;

	while (n < KT_TILE_LEVELS_MAX && tile_hashes_at(size, (int)n) != 0)
		n++;
	return n;
}

uint64_t
kt_tile_full_count(uint64_t size, int level)
{
	return tile_hashes_at(size, level) / KT_TILE_WIDTH;
}

unsigned
kt_tile_partial_width(uint64_t size, int level)
{
	return (unsigned)(tile_hashes_at(size, level) % KT_TILE_WIDTH);
}

int
kt_tile_in_tree(const struct kt_tile *t, uint64_t size)
{
	if (kt_tile_check(t) != KT_OK)
		return 0;
	/* index <= KT_TILE_INDEX_MAX, so this cannot overflow. */
	return t->index * KT_TILE_WIDTH + t->width <=
	    tile_hashes_at(size, t->level);
}

int
kt_tile_for_leaf(uint64_t size, uint64_t leaf, struct kt_tile *out)
{
	if (size >= KT_SIZE_MAX || leaf >= size)
		return KT_EINVAL;
	tile_published(size, 0, leaf / KT_TILE_WIDTH, out);
	return KT_OK;
}

/*
 * Splits a stored-hash index of the tree of size leaves into its tree
 * level and position, refusing hashes that are not in the tree: the
 * complete subtree at (level, n) is in it when (n + 1) << level <= size.
 */
static int
tile_split_in_tree(uint64_t size, uint64_t index, int *level, uint64_t *n)
{
	int l;
	uint64_t x;

	if (size >= KT_SIZE_MAX || index >= KT_SIZE_MAX)
		return KT_EINVAL;
	kt_split_stored_hash_index(index, &l, &x);
	/* No subtree of a tree below 2^63 has 2^63 leaves: l < 63. */
	if (l < 0 || l >= 63 || x >= (size >> l))
		return KT_EINVAL;
	*level = l;
	*n = x;
	return KT_OK;
}

int
kt_tile_for_stored_hash(uint64_t size, uint64_t index, struct kt_tile *out)
{
	uint64_t n, first;
	int l, rc;

	if ((rc = tile_split_in_tree(size, index, &l, &n)) != KT_OK)
		return rc;
	/*
	 * tlog TileForIndex: the hash at tree level l is the root of the
	 * 2^(l mod 8) hashes at level 8 * floor(l / 8) starting at
	 * n << (l mod 8); 2^(l mod 8) divides 256, so they share a tile.
	 */
	first = n << (l % KT_TILE_HEIGHT);
	tile_published(size, l / KT_TILE_HEIGHT, first / KT_TILE_WIDTH, out);
	return KT_OK;
}

/* Copies the i-th hash of tile data p into h. */
static void
tile_hash_at(const uint8_t *p, size_t i, struct kt_hash *h)
{
	memcpy(h->b, p + i * KT_HASH_SIZE, KT_HASH_SIZE);
}

/*
 * The Merkle root of the count consecutive hashes of tile data p starting
 * at hash off; count is a power of two up to 256, so they form one
 * complete subtree.
 */
static void
tile_subtree_hash(
    const uint8_t *p, size_t off, size_t count, struct kt_hash *out)
{
	struct kt_hash h[KT_TILE_WIDTH / 2], l, r;

	TILE_ASSERT(count >= 1 && count <= KT_TILE_WIDTH &&
	    (count & (count - 1)) == 0 && off + count <= KT_TILE_WIDTH);
	if (count == 1) {
		tile_hash_at(p, off, out);
		return;
	}
	for (size_t i = 0; i < count / 2; i++) {
		tile_hash_at(p, off + 2 * i, &l);
		tile_hash_at(p, off + 2 * i + 1, &r);
		kt_node_hash(&l, &r, &h[i]);
	}
	for (count /= 2; count > 1; count /= 2) {
		for (size_t i = 0; i < count / 2; i++)
			kt_node_hash(&h[2 * i], &h[2 * i + 1], &h[i]);
	}
	*out = h[0];
}

/*
 * tlog HashFromTile: the stored hash index, taken from the data p of tile
 * t, which must hold it.
 */
static void
tile_stored_hash(const struct kt_tile *t, const uint8_t *p, uint64_t index,
    struct kt_hash *out)
{
	uint64_t n, first;
	int l, s;

	kt_split_stored_hash_index(index, &l, &n);
	s = l % KT_TILE_HEIGHT;
	first = n << s;
	TILE_ASSERT(t->level == l / KT_TILE_HEIGHT &&
	    t->index == first / KT_TILE_WIDTH &&
	    first % KT_TILE_WIDTH + (UINT64_C(1) << s) <= t->width);
	tile_subtree_hash(
	    p, (size_t)(first % KT_TILE_WIDTH), (size_t)1 << s, out);
}

/*
 * The root of the tree of size leaves from its partial tiles: part[L] is
 * the data of the partial tile at level L (NULL for levels without one).
 * RFC 6962's root is the right fold of node hashes over the tree's
 * complete subtrees, largest first, one per one bit of size; the subtree
 * for bit 8L + s is the root of 2^s hashes of the level-L partial tile.
 */
static void
tile_root_from_partials(uint64_t size,
    const uint8_t *const part[KT_TILE_LEVELS_MAX], struct kt_hash *root)
{
	struct kt_hash sub[TILE_SUBTREES_MAX];
	size_t nsub = 0;

	if (size == 0) {
		kt_empty_root(root);
		return;
	}
	for (int level = (int)kt_tile_levels(size) - 1; level >= 0; level--) {
		unsigned w = kt_tile_partial_width(size, level);
		size_t off = 0;

		if (w == 0)
			continue;
		TILE_ASSERT(part[level] != NULL);
		for (int s = KT_TILE_HEIGHT - 1; s >= 0; s--) {
			if (((w >> s) & 1) == 0)
				continue;
			TILE_ASSERT(nsub < TILE_SUBTREES_MAX);
			tile_subtree_hash(
			    part[level], off, (size_t)1 << s, &sub[nsub++]);
			off += (size_t)1 << s;
		}
	}
	TILE_ASSERT(nsub > 0);
	*root = sub[nsub - 1];
	for (size_t i = nsub - 1; i > 0; i--)
		kt_node_hash(&sub[i - 1], root, root);
}

/* Index of tile t in plan[0..n), or n when absent. */
static size_t
tile_plan_find(const struct kt_tile *plan, size_t n, const struct kt_tile *t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (tile_equal(&plan[i], t))
			break;
	}
	return i;
}

/*
 * The plan behind kt_tiles_for_hashes, written to plan[0..cap).  The
 * indexes must already be checked to be in the tree.  Returns KT_OK or
 * KT_ETOOBIG.
 */
static int
tile_plan(uint64_t size, const uint64_t *indexes, size_t n,
    struct kt_tile *plan, size_t cap, size_t *nplan)
{
	struct kt_tile chain[KT_TILE_LEVELS_MAX], t;
	size_t np = 0, nchain;
	int rc;

	/* The partial tiles give the root, so they come first (tlog stx). */
	for (int level = (int)kt_tile_levels(size) - 1; level >= 0; level--) {
		if (kt_tile_partial_width(size, level) == 0)
			continue;
		if (np == cap)
			return KT_ETOOBIG;
		tile_published(
		    size, level, kt_tile_full_count(size, level), &plan[np++]);
	}

	/*
	 * For each hash, walk up from its tile until a planned one, then
	 * record the walk top-down so parents precede children.  Every
	 * tile not yet planned is full (the partial ones are all planned),
	 * and a full tile always has a parent; the top level has no full
	 * tile, so the walk ends.
	 */
	for (size_t i = 0; i < n; i++) {
		rc = kt_tile_for_stored_hash(size, indexes[i], &t);
		TILE_ASSERT(rc == KT_OK);
		nchain = 0;
		while (tile_plan_find(plan, np, &t) == np) {
			TILE_ASSERT(t.width == KT_TILE_WIDTH &&
			    nchain < KT_TILE_LEVELS_MAX);
			chain[nchain++] = t;
			tile_published(
			    size, t.level + 1, t.index / KT_TILE_WIDTH, &t);
		}
		while (nchain > 0) {
			if (np == cap)
				return KT_ETOOBIG;
			plan[np++] = chain[--nchain];
		}
	}
	*nplan = np;
	return KT_OK;
}

/* Checks indexes[0..n) are stored hashes of the tree of size leaves. */
static int
tile_check_indexes(uint64_t size, const uint64_t *indexes, size_t n)
{
	uint64_t x;
	int l;

	if (size >= KT_SIZE_MAX || n > KT_READ_MAX || (n > 0 && !indexes))
		return KT_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (tile_split_in_tree(size, indexes[i], &l, &x) != KT_OK)
			return KT_EINVAL;
	}
	return KT_OK;
}

int
kt_tiles_for_hashes(uint64_t size, const uint64_t *indexes, size_t n,
    struct kt_tile *out, size_t outcap, size_t *nout)
{
	struct kt_tile *plan = NULL;
	size_t np;
	int rc;

	if ((rc = tile_check_indexes(size, indexes, n)) != KT_OK)
		goto out;
	if ((plan = calloc(KT_TILE_PLAN_MAX, sizeof(*plan))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	rc = tile_plan(size, indexes, n, plan, KT_TILE_PLAN_MAX, &np);
	TILE_ASSERT(rc == KT_OK);
	if (np > outcap || (np > 0 && out == NULL)) {
		rc = KT_ETOOBIG;
		goto out;
	}
	if (np > 0)
		memcpy(out, plan, np * sizeof(*plan));
	*nout = np;
	rc = KT_OK;
out:
	free(plan);
	return rc;
}

/*
 * A kt_hash_reader_fn that only records which stored hashes a proof
 * computation asks for (each once) and answers with zero hashes.
 */
struct tile_recorder {
	uint64_t idx[KT_READ_MAX];
	size_t n;
};

static int
tile_record(void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	struct tile_recorder *rec = ctx;

	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < rec->n; j++) {
			if (rec->idx[j] == indexes[i])
				break;
		}
		if (j == rec->n) {
			if (rec->n == KT_READ_MAX)
				return KT_ETOOBIG;
			rec->idx[rec->n++] = indexes[i];
		}
		memset(&out[i], 0, sizeof(out[i]));
	}
	return KT_OK;
}

int
kt_tiles_for_inclusion(uint64_t size, uint64_t leaf, struct kt_tile *out,
    size_t outcap, size_t *nout)
{
	struct tile_recorder rec = { .n = 0 };
	struct kt_hash proof[KT_PROOF_MAX];
	size_t nproof;
	int rc;

	if (size >= KT_SIZE_MAX || leaf >= size)
		return KT_EINVAL;
	rc = kt_prove_inclusion(size, leaf, tile_record, &rec, proof, &nproof);
	if (rc != KT_OK)
		return rc;
	/* The leaf's own tile, so the caller can also fetch its entry. */
	if (rec.n == KT_READ_MAX)
		return KT_ETOOBIG;
	rec.idx[rec.n++] = kt_stored_hash_index(0, leaf);
	return kt_tiles_for_hashes(size, rec.idx, rec.n, out, outcap, nout);
}

int
kt_tiles_for_consistency(uint64_t size, uint64_t old, struct kt_tile *out,
    size_t outcap, size_t *nout)
{
	struct tile_recorder rec = { .n = 0 };
	struct kt_hash proof[KT_PROOF_MAX];
	size_t nproof;
	int rc;

	if (size >= KT_SIZE_MAX || old == 0 || old > size)
		return KT_EINVAL;
	rc = kt_prove_consistency(size, old, tile_record, &rec, proof, &nproof);
	if (rc != KT_OK)
		return rc;
	return kt_tiles_for_hashes(size, rec.idx, rec.n, out, outcap, nout);
}

int
kt_tile_read_data(uint64_t size, const struct kt_tile *t,
    kt_hash_reader_fn read, void *ctx, struct kt_buf *out)
{
	uint64_t idx[KT_READ_MAX];
	struct kt_hash h[KT_READ_MAX];
	size_t start, done, n;
	int rc;

	if (kt_tile_check(t) != KT_OK || t->level == KT_TILE_ENTRIES ||
	    read == NULL || out == NULL || size >= KT_SIZE_MAX)
		return KT_EINVAL;
	if (!kt_tile_in_tree(t, size))
		return KT_ENOTFOUND;

	/*
	 * A level-L tile holds the stored hashes of tree level 8L, so it is
	 * copied, never computed.  On any failure the appended bytes are
	 * dropped again, leaving out as it was.
	 */
	start = out->len;
	for (done = 0; done < t->width; done += n) {
		n = t->width - done;
		if (n > KT_READ_MAX)
			n = KT_READ_MAX;
		for (size_t i = 0; i < n; i++)
			idx[i] = kt_stored_hash_index(KT_TILE_HEIGHT * t->level,
			    t->index * KT_TILE_WIDTH + done + i);
		if ((rc = read(ctx, idx, n, h)) != KT_OK)
			goto out;
		for (size_t i = 0; i < n; i++) {
			rc = kt_buf_append(out, h[i].b, KT_HASH_SIZE);
			if (rc != KT_OK)
				goto out;
		}
	}
	rc = KT_OK;
out:
	if (rc != KT_OK)
		kt_buf_truncate(out, start);
	return rc;
}

int
kt_entry_bundle_append(struct kt_buf *b, const uint8_t *entry, size_t len)
{
	uint8_t prefix[2];
	size_t start;
	int rc;

	if (b == NULL || (len > 0 && entry == NULL))
		return KT_EINVAL;
	if (len > KT_ENTRY_MAX)
		return KT_ETOOBIG;
	/* Refuse up front what cannot fit, so the prefix is never orphaned. */
	if (b->len > b->max || b->max - b->len < sizeof(prefix) + len)
		return KT_ETOOBIG;
	kt_put_u16be(prefix, (uint16_t)len);
	start = b->len;
	if ((rc = kt_buf_append(b, prefix, sizeof(prefix))) != KT_OK)
		return rc;
	if ((rc = kt_buf_append(b, entry, len)) != KT_OK)
		kt_buf_truncate(b, start);
	return rc;
}

int
kt_entry_bundle_parse(
    const uint8_t *p, size_t len, unsigned count, struct kt_bytes *entries)
{
	struct kt_bytes tmp[KT_TILE_WIDTH];
	struct kt_reader r;

	if (count < 1 || count > KT_TILE_WIDTH || entries == NULL)
		return KT_EINVAL;
	if (p == NULL)
		return KT_EPARSE;
	kt_reader_init(&r, p, len);
	for (unsigned i = 0; i < count; i++) {
		uint16_t n = kt_reader_u16be(&r);

		tmp[i] = kt_reader_bytes(&r, n);
	}
	/* Exactly count entries: nothing missing, nothing after the last. */
	if (r.bad || kt_reader_left(&r) != 0)
		return KT_EPARSE;
	memcpy(entries, tmp, count * sizeof(tmp[0]));
	return KT_OK;
}

int
kt_entry_bundle_check(
    const uint8_t *p, size_t len, const uint8_t *tile, size_t tilelen)
{
	struct kt_bytes e[KT_TILE_WIDTH];
	struct kt_hash got, want;
	unsigned count;
	int rc;

	if (tile == NULL || tilelen == 0 || tilelen % KT_HASH_SIZE != 0 ||
	    tilelen > KT_TILE_DATA_MAX)
		return KT_EINVAL;
	count = (unsigned)(tilelen / KT_HASH_SIZE);
	if ((rc = kt_entry_bundle_parse(p, len, count, e)) != KT_OK)
		return rc;
	for (unsigned i = 0; i < count; i++) {
		kt_leaf_hash(e[i].p, e[i].len, &got);
		tile_hash_at(tile, i, &want);
		if (!kt_hash_equal(&got, &want))
			return KT_EVERIFY;
	}
	return KT_OK;
}

/*
 * Fetches tile t into b (emptied first, with the largest valid size of t
 * as its maximum).  A hash tile must have exactly its width in hashes:
 * KT_EPARSE otherwise.  An entry bundle's length is checked when it is
 * parsed.
 */
static int
tile_fetch(
    kt_tile_read_fn read, void *ctx, const struct kt_tile *t, struct kt_buf *b)
{
	size_t max;
	int rc;

	if (t->level == KT_TILE_ENTRIES)
		max = (size_t)t->width * (2 + KT_ENTRY_MAX);
	else
		max = (size_t)t->width * KT_HASH_SIZE;
	kt_buf_free(b);
	kt_buf_init(b, max);
	if ((rc = read(ctx, t, b)) != KT_OK)
		return rc;
	if (b->len > max || (t->level != KT_TILE_ENTRIES && b->len != max))
		return KT_EPARSE;
	return KT_OK;
}

/* Checks full tile data p against its hash in the parent's data. */
static int
tile_check_child(
    const struct kt_tile *t, const uint8_t *p, const uint8_t *parent)
{
	struct kt_hash got, want;

	TILE_ASSERT(t->width == KT_TILE_WIDTH);
	tile_subtree_hash(p, 0, KT_TILE_WIDTH, &got);
	tile_hash_at(parent, (size_t)(t->index % KT_TILE_WIDTH), &want);
	return kt_hash_equal(&got, &want) ? KT_OK : KT_EVERIFY;
}

/*
 * State of kt_tiles_verify: the verified partial tile of each level and
 * the full tile of each level last verified, so walking the level-0
 * tiles in order reads every tile of the tree exactly once.
 */
struct tile_verifier {
	uint64_t size;
	kt_tile_read_fn read;
	void *ctx;
	struct kt_buf partial[KT_TILE_LEVELS_MAX];
	struct kt_buf full[KT_TILE_LEVELS_MAX];
	struct kt_tile fulltile[KT_TILE_LEVELS_MAX];
	int havefull[KT_TILE_LEVELS_MAX];
	struct kt_buf bundle;
};

/*
 * Makes sure the tile the tree publishes at (level, index) is verified and
 * points *p at its data.  A partial tile was verified with the root; a
 * full one is checked against its parent, which is verified first.  The
 * top level has only a partial tile, which bounds the recursion.
 */
static int
tile_verifier_get(
    struct tile_verifier *v, int level, uint64_t index, const uint8_t **p)
{
	struct kt_tile t;
	const uint8_t *parent;
	int rc;

	TILE_ASSERT(level >= 0 && level < KT_TILE_LEVELS_MAX);
	tile_published(v->size, level, index, &t);
	if (t.width < KT_TILE_WIDTH) {
		TILE_ASSERT(
		    v->partial[level].len == (size_t)t.width * KT_HASH_SIZE);
		*p = v->partial[level].p;
		return KT_OK;
	}
	if (v->havefull[level] && v->fulltile[level].index == index) {
		*p = v->full[level].p;
		return KT_OK;
	}
	rc = tile_verifier_get(v, level + 1, index / KT_TILE_WIDTH, &parent);
	if (rc != KT_OK)
		return rc;
	v->havefull[level] = 0;
	if ((rc = tile_fetch(v->read, v->ctx, &t, &v->full[level])) != KT_OK)
		return rc;
	if ((rc = tile_check_child(&t, v->full[level].p, parent)) != KT_OK)
		return rc;
	v->fulltile[level] = t;
	v->havefull[level] = 1;
	*p = v->full[level].p;
	return KT_OK;
}

int
kt_tiles_verify(
    uint64_t size, const struct kt_hash *root, kt_tile_read_fn read, void *ctx)
{
	struct tile_verifier v;
	const uint8_t *part[KT_TILE_LEVELS_MAX] = { NULL };
	const uint8_t *p;
	struct kt_hash got;
	struct kt_tile t;
	uint64_t ntiles;
	int rc;

	if (size >= KT_SIZE_MAX || root == NULL || read == NULL)
		return KT_EINVAL;
	memset(&v, 0, sizeof(v));
	v.size = size;
	v.read = read;
	v.ctx = ctx;
	for (int i = 0; i < KT_TILE_LEVELS_MAX; i++) {
		kt_buf_init(&v.partial[i], KT_TILE_DATA_MAX);
		kt_buf_init(&v.full[i], KT_TILE_DATA_MAX);
	}
	kt_buf_init(&v.bundle, KT_ENTRY_BUNDLE_MAX);

	/* First the partial tiles, all at once, against the root. */
	for (int level = 0; level < (int)kt_tile_levels(size); level++) {
		if (kt_tile_partial_width(size, level) == 0)
			continue;
		tile_published(
		    size, level, kt_tile_full_count(size, level), &t);
		if ((rc = tile_fetch(read, ctx, &t, &v.partial[level])) !=
		    KT_OK)
			goto out;
		part[level] = v.partial[level].p;
	}
	tile_root_from_partials(size, part, &got);
	if (!kt_hash_equal(&got, root)) {
		rc = KT_EVERIFY;
		goto out;
	}

	/*
	 * Then every level-0 tile in order, which pulls in each tile above
	 * it once (every tile at level L >= 1 holds the hash of at least
	 * one full tile below it), and the entry bundle next to it.
	 */
	ntiles =
	    kt_tile_full_count(size, 0) + (kt_tile_partial_width(size, 0) != 0);
	for (uint64_t i = 0; i < ntiles; i++) {
		if ((rc = tile_verifier_get(&v, 0, i, &p)) != KT_OK)
			goto out;
		tile_published(size, KT_TILE_ENTRIES, i, &t);
		if ((rc = tile_fetch(read, ctx, &t, &v.bundle)) != KT_OK)
			goto out;
		rc = kt_entry_bundle_check(v.bundle.p, v.bundle.len, p,
		    (size_t)t.width * KT_HASH_SIZE);
		if (rc != KT_OK)
			goto out;
	}
	rc = KT_OK;
out:
	for (int i = 0; i < KT_TILE_LEVELS_MAX; i++) {
		kt_buf_free(&v.partial[i]);
		kt_buf_free(&v.full[i]);
	}
	kt_buf_free(&v.bundle);
	return rc;
}

int
kt_tile_hash_read(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	const struct kt_tile_hash_reader *r = ctx;
	const uint8_t *part[KT_TILE_LEVELS_MAX] = { NULL };
	struct kt_tile *plan = NULL, t;
	struct kt_buf *data = NULL;
	struct kt_hash got, *res = NULL;
	size_t np = 0, cap, j;
	int rc;

	if (r == NULL || r->read == NULL)
		return KT_EINVAL;
	if ((rc = tile_check_indexes(r->size, indexes, n)) != KT_OK)
		return rc;
	if (n == 0)
		return KT_OK;

	cap = KT_TILE_LEVELS_MAX * (n + 1);
	plan = calloc(cap, sizeof(*plan));
	data = calloc(cap, sizeof(*data));
	res = calloc(n, sizeof(*res));
	if (plan == NULL || data == NULL || res == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	rc = tile_plan(r->size, indexes, n, plan, cap, &np);
	TILE_ASSERT(rc == KT_OK);

	/* Fetch everything before trusting anything (tlog ReadHashes). */
	for (j = 0; j < np; j++)
		kt_buf_init(&data[j], KT_TILE_DATA_MAX);
	for (j = 0; j < np; j++) {
		rc = tile_fetch(r->read, r->ctx, &plan[j], &data[j]);
		if (rc != KT_OK)
			goto out;
	}

	/* The partial tiles, planned first, against the root. */
	for (j = 0; j < np && plan[j].width < KT_TILE_WIDTH; j++)
		part[plan[j].level] = data[j].p;
	tile_root_from_partials(r->size, part, &got);
	if (!kt_hash_equal(&got, &r->root)) {
		rc = KT_EVERIFY;
		goto out;
	}

	/* Each full tile against its parent, planned and checked before. */
	for (; j < np; j++) {
		size_t k;

		tile_published(r->size, plan[j].level + 1,
		    plan[j].index / KT_TILE_WIDTH, &t);
		k = tile_plan_find(plan, j, &t);
		TILE_ASSERT(k < j);
		if ((rc = tile_check_child(&plan[j], data[j].p, data[k].p)) !=
		    KT_OK)
			goto out;
	}

	for (size_t i = 0; i < n; i++) {
		rc = kt_tile_for_stored_hash(r->size, indexes[i], &t);
		TILE_ASSERT(rc == KT_OK);
		j = tile_plan_find(plan, np, &t);
		TILE_ASSERT(j < np);
		tile_stored_hash(&plan[j], data[j].p, indexes[i], &res[i]);
	}
	memcpy(out, res, n * sizeof(*res));
	rc = KT_OK;
out:
	for (size_t i = 0; data != NULL && i < np; i++)
		kt_buf_free(&data[i]);
	free(res);
	free(data);
	free(plan);
	return rc;
}
