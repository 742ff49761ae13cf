/*
 * Blocked Bloom filters (bloom.h).  The key hash is a 64-bit multiply-
 * rotate over 8-byte words with a splitmix64-style finish: keys here are
 * hashes or digests chosen by clients, and a client who made keys
 * collide would only make the log look in a table it could have skipped.
 */
#include "bloom.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BLOOM_BITS_PER_ENTRY 48
#define BLOOM_PROBES 7
#define BLOOM_FORMAT 1
/* Filters this large are allocated in (transparent) huge pages. */
#define BLOOM_HUGE ((size_t)2 << 20)
/* Blocks at most: 2^32 - 1 blocks of 64 bytes is far past any table. */
#define BLOOM_BLOCKS_MAX UINT32_MAX

static const uint64_t P1 = UINT64_C(0x9e3779b97f4a7c15);
static const uint64_t P2 = UINT64_C(0xc2b2ae3d27d4eb4f);
static const uint64_t P3 = UINT64_C(0x85ebca77c2b2ae63);

static uint64_t
rotl(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static uint64_t
finish(uint64_t h)
{
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	return h ^ (h >> 31);
}

static uint64_t
bloom_hash(uint8_t kind, const uint8_t *p, size_t len)
{
	uint64_t h = P3 ^ ((uint64_t)len * P1) ^ ((uint64_t)kind * P2);
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h ^= rotl(w * P2, 31) * P1;
		h = rotl(h, 27) * P1 + P3;
	}
	w = 0;
	if (len > 0)
		memcpy(&w, p, len);
	h ^= rotl(w * P2, 31) * P1;
	return finish(h);
}

int
bloom_init(struct bloom *b, uint64_t entries)
{
	uint64_t bits = entries * BLOOM_BITS_PER_ENTRY;
	uint64_t blocks = bits / (8 * BLOOM_BLOCK) + 1;

	memset(b, 0, sizeof(*b));
	if (entries > UINT64_MAX / BLOOM_BITS_PER_ENTRY ||
	    blocks > BLOOM_BLOCKS_MAX ||
	    blocks > (SIZE_MAX - BLOOM_HEADER) / BLOOM_BLOCK)
		return KT_ENOMEM;
	b->blocks = (uint32_t)blocks;
	b->len = BLOOM_HEADER + (size_t)blocks * BLOOM_BLOCK;
	if (b->len >= BLOOM_HUGE) {
		/*
		 * Every add lands on a random block: in 4 KiB pages nearly
		 * each is a TLB miss too, so a large filter asks for huge
		 * pages (a hint; without them it works the same).
		 */
		size_t cap =
		    (b->len + BLOOM_HUGE - 1) / BLOOM_HUGE * BLOOM_HUGE;
		void *m = NULL;

		if (posix_memalign(&m, BLOOM_HUGE, cap) != 0)
			return KT_ENOMEM;
		(void)madvise(m, cap, MADV_HUGEPAGE);
		memset(m, 0, b->len);
		b->bits = m;
	} else if ((b->bits = calloc(1, b->len)) == NULL) {
		return KT_ENOMEM;
	}
	b->bits[0] = BLOOM_FORMAT;
	kt_put_u32be(b->bits + 4, b->blocks);
	return KT_OK;
}

void
bloom_free(struct bloom *b)
{
	free(b->bits);
	memset(b, 0, sizeof(*b));
}

/* The block of hash h among n (the probe bits within it come from g). */
static size_t
bloom_block_index(uint64_t h, uint32_t n)
{
	return (size_t)(((h >> 32) * (uint64_t)n) >> 32);
}

static void
bloom_set(uint8_t *blk, uint64_t g)
{
	for (int i = 0; i < BLOOM_PROBES; i++, g >>= 9)
		blk[(g & 511) >> 3] |= (uint8_t)(1u << (g & 7));
}

void
bloom_add(struct bloom *b, uint8_t kind, const uint8_t *p, size_t len)
{
	uint64_t h = bloom_hash(kind, p, len);

	bloom_set(b->bits + BLOOM_HEADER +
		bloom_block_index(h, b->blocks) * BLOOM_BLOCK,
	    finish(h + P2));
}

void
bloom_add_soon(struct bloom *b, uint8_t kind, const uint8_t *p, size_t len)
{
	uint64_t h = bloom_hash(kind, p, len);
	uint8_t *blk = b->bits + BLOOM_HEADER +
	    bloom_block_index(h, b->blocks) * BLOOM_BLOCK;
	unsigned i;

	__builtin_prefetch(blk, 1);
	if (b->soon_n < BLOOM_SOON) {
		i = b->soon_n++;
	} else {
		/* The oldest add held back goes in, the new one waits. */
		i = b->soon_next;
		b->soon_next = (i + 1) % BLOOM_SOON;
		bloom_set(b->soon_blk[i], b->soon_g[i]);
	}
	b->soon_blk[i] = blk;
	b->soon_g[i] = finish(h + P2);
}

void
bloom_settle(struct bloom *b)
{
	for (unsigned i = 0; i < b->soon_n; i++)
		bloom_set(b->soon_blk[i], b->soon_g[i]);
	b->soon_n = b->soon_next = 0;
}

void
bloom_probe_init(
    struct bloom_probe *pr, uint8_t kind, const uint8_t *p, size_t len)
{
	pr->h = bloom_hash(kind, p, len);
	pr->g = finish(pr->h + P2);
}

const uint8_t *
bloom_block(const uint8_t *f, size_t flen, const struct bloom_probe *pr)
{
	uint32_t n;

	if (f == NULL || flen < BLOOM_HEADER || f[0] != BLOOM_FORMAT)
		return NULL;
	n = kt_get_u32be(f + 4);
	if (n == 0 || (flen - BLOOM_HEADER) / BLOOM_BLOCK != n ||
	    (flen - BLOOM_HEADER) % BLOOM_BLOCK != 0)
		return NULL;
	return f + BLOOM_HEADER + bloom_block_index(pr->h, n) * BLOOM_BLOCK;
}

int
bloom_block_maybe(const uint8_t *blk, const struct bloom_probe *pr)
{
	uint64_t g = pr->g;

	for (int i = 0; i < BLOOM_PROBES; i++, g >>= 9)
		if (!(blk[(g & 511) >> 3] & (1u << (g & 7))))
			return 0;
	return 1;
}

int
bloom_maybe(
    const uint8_t *f, size_t flen, uint8_t kind, const uint8_t *p, size_t len)
{
	struct bloom_probe pr;
	const uint8_t *blk;

	bloom_probe_init(&pr, kind, p, len);
	if ((blk = bloom_block(f, flen, &pr)) == NULL)
		return 1;
	return bloom_block_maybe(blk, &pr);
}
