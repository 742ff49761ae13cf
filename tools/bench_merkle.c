/*
 * keytrail bench merkle: measures libkeytrail's Merkle work against raw OpenSSL
 * SHA-256 in the same run, so the ratios mean something on a shared,
 * noisy machine.  Each figure is the best of several rounds, and the
 * baseline and the measurement alternate round by round.
 *
 *   node-hash      raw OpenSSL SHA256 over 65-byte node inputs (hashes/s)
 *   tree-build     records of 32 bytes appended to a kt_memtree (leaves/s,
 *                  including each leaf hash), into reserved storage and
 *                  into storage that grows as it goes
 *   inclusion      RFC 9162 inclusion proofs checked in a 2^30-leaf tree
 *                  (30-hash proofs, checks/s)
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "cli.h"
#include "keytrail/merkle.h"

#define BENCH_ROUNDS 5
#define BENCH_SECONDS 0.4

/* Raw node hashing: exactly the bytes a node hash takes, chained. */
static double
bench_node_hash(void)
{
	uint8_t in[65] = { 0x01 }, out[32];
	double t0 = kt_monotonic_seconds(), t;
	uint64_t n = 0;

	do {
		for (int i = 0; i < 4096; i++) {
			SHA256_CTX c;

			SHA256_Init(&c);
			SHA256_Update(&c, in, sizeof(in));
			SHA256_Final(out, &c);
			memcpy(in + 1, out, 32);
		}
		n += 4096;
	} while ((t = kt_monotonic_seconds() - t0) < BENCH_SECONDS);
	return (double)n / t;
}

/*
 * Appends BENCH_TREE records of 32 bytes.  With reserve, the tree's storage
 * is allocated and touched first (kt_memtree_reserve), so the figure is the
 * Merkle work itself; without, it includes growing the array and the
 * kernel's first-touch page faults, which on a virtual machine cost about
 * as much as the hashing.
 */
#define BENCH_TREE (1u << 20)

static double
bench_tree_build(int reserve)
{
	struct kt_memtree *tree = kt_memtree_new();
	uint8_t rec[32] = { 0 };
	double t0;

	if (tree == NULL)
		exit(1);
	if (reserve && kt_memtree_reserve(tree, BENCH_TREE) != KT_OK)
		exit(1);
	t0 = kt_monotonic_seconds();
	for (uint64_t n = 0; n < BENCH_TREE; n++) {
		kt_put_u64be(rec, n);
		if (kt_memtree_append(tree, rec, sizeof(rec)) != KT_OK)
			exit(1);
	}
	t0 = kt_monotonic_seconds() - t0;
	kt_memtree_free(tree);
	return BENCH_TREE / t0;
}

static double
bench_inclusion(void)
{
	enum {
		NPROOF = 64,
		DEPTH = 30
	};
	const uint64_t size = UINT64_C(1) << DEPTH;
	static struct kt_hash proofs[NPROOF][DEPTH], roots[NPROOF],
	    leaves[NPROOF];
	uint64_t idx[NPROOF];
	double t0, t;
	uint64_t n = 0, state = 0x9e3779b97f4a7c15ull;

	/*
	 * A 2^30-leaf tree is not built: the proofs are random hashes and
	 * each root is computed from its proof, which is exactly the work a
	 * verifier does, on proofs of the real length.
	 */
	for (int p = 0; p < NPROOF; p++) {
		state = state * 6364136223846793005ull + 1442695040888963407ull;
		idx[p] = (state >> 11) % size;
		for (int i = 0; i < DEPTH; i++)
			for (int k = 0; k < 32; k++)
				proofs[p][i].b[k] =
				    (uint8_t)(state >> (k % 8 * 8)) ^
				    (uint8_t)(i * 31 + k);
		kt_leaf_hash(
		    (const uint8_t *)&idx[p], sizeof(idx[p]), &leaves[p]);
		if (kt_inclusion_root(proofs[p], DEPTH, size, idx[p],
			&leaves[p], &roots[p]) != KT_OK)
			exit(1);
	}
	t0 = kt_monotonic_seconds();
	do {
		for (int p = 0; p < NPROOF; p++) {
			if (kt_inclusion_check(proofs[p], DEPTH, size,
				&roots[p], idx[p], &leaves[p]) != KT_OK)
				exit(1);
		}
		n += NPROOF;
	} while ((t = kt_monotonic_seconds() - t0) < BENCH_SECONDS);
	return (double)n / t;
}

int
bench_merkle(int argc, char **argv)
{
	double node = 0, build = 0, cold = 0, incl = 0;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: keytrail bench merkle\n");
		return 2;
	}
	for (int r = 0; r < BENCH_ROUNDS; r++) {
		double v;

		if ((v = bench_node_hash()) > node)
			node = v;
		if ((v = bench_tree_build(1)) > build)
			build = v;
		if ((v = bench_tree_build(0)) > cold)
			cold = v;
		if ((v = bench_inclusion()) > incl)
			incl = v;
	}
	printf("keytrail bench merkle: best of %d rounds of %.1f s each\n",
	    BENCH_ROUNDS, BENCH_SECONDS);
	printf("%-34s %14.0f /s\n", "raw OpenSSL SHA-256 node hashes", node);
	printf("%-34s %14.0f /s  (%u leaves of 32 bytes)\n",
	    "tree building, storage reserved", build, BENCH_TREE);
	printf("%-34s %14.0f /s\n", "tree building, growing storage", cold);
	printf("%-34s %14.0f /s\n", "inclusion checks, 2^30 leaves", incl);
	printf("%-34s %14.2f x  (goal >= 0.50)\n",
	    "tree building / raw node hashing", build / node);
	printf("%-34s %14.2f x\n", "growing storage / raw node hashing",
	    cold / node);
	printf("%-34s %14.2f x\n", "inclusion checks x 30 / node hashes",
	    incl * 30 / node);
	return 0;
}
