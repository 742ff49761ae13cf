/*
 * Merkle hashing, tree hashes and proofs against the known-answer vectors
 * (merkle.json, made with Go's sumdb/tlog, and the transparency-dev/merkle
 * test data), plus properties checked against a plain recursive RFC 6962
 * implementation written here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "keytrail/encoding.h"
#include "keytrail/merkle.h"
#include "testutil.h"

/* Builds the leaves of a merkle.json tree into a fresh memtree. */
static struct kt_memtree *
build_tree(const json_t *tree, size_t *nleaves)
{
	const json_t *leaves = json_object_get(tree, "leaves");
	const char *kind = tu_str(leaves, "kind");
	uint64_t count = tu_u64(leaves, "count");
	struct kt_memtree *t = kt_memtree_new();

	assert_non_null(t);
	for (uint64_t i = 0; i < count; i++) {
		if (strcmp(kind, "ascii") == 0) {
			char buf[64];
			int n = snprintf(buf, sizeof(buf), "%s%llu",
			    tu_str(leaves, "prefix"), (unsigned long long)i);

			assert_int_equal(kt_memtree_append(t,
					     (const uint8_t *)buf, (size_t)n),
			    KT_OK);
		} else {
			json_t *arr = json_object_get(leaves, "data_hex");
			size_t len;
			uint8_t *d = tu_hex(
			    json_string_value(json_array_get(arr, i)), &len);

			assert_int_equal(kt_memtree_append(t, d, len), KT_OK);
			free(d);
		}
	}
	*nleaves = count;
	return t;
}

/* Decodes a JSON array of hex hashes; returns the count (may exceed max). */
static size_t
hex_proof(const json_t *arr, struct kt_hash *out, size_t max)
{
	size_t n = json_array_size(arr);

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		tu_hash_hex(json_string_value(json_array_get(arr, i)), &out[i]);
	return n;
}

/*
 * kt_sha256 against FIPS 180-2's examples ("abc", the empty string) and
 * against OpenSSL's one-shot for lengths around the 64-byte block.
 */
static void
test_sha256(void **state)
{
	static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01,
		0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10,
		0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
	struct kt_hash h, empty;
	uint8_t buf[200], want[32];

	(void)state;
	kt_sha256((const uint8_t *)"abc", 3, &h);
	assert_memory_equal(h.b, abc, 32);
	kt_sha256(NULL, 0, &h);
	kt_empty_root(&empty);
	assert_memory_equal(h.b, empty.b, 32);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	for (size_t len = 1; len <= sizeof(buf); len += 9) {
		kt_sha256(buf, len, &h);
		assert_non_null(SHA256(buf, len, want));
		assert_memory_equal(h.b, want, 32);
	}
}

static void
test_leaf_hash_vectors(void **state)
{
	json_t *j = tu_load_json("merkle.json");
	json_t *v;
	size_t i;

	(void)state;
	assert_true(
	    json_array_size(json_object_get(j, "leaf_hash_vectors")) > 0);
	json_array_foreach(json_object_get(j, "leaf_hash_vectors"), i, v)
	{
		size_t len;
		uint8_t *d = tu_hex(tu_str(v, "data_hex"), &len);
		struct kt_hash want, got;

		tu_hash_hex(tu_str(v, "leaf_hash"), &want);
		kt_leaf_hash(d, len, &got);
		assert_memory_equal(got.b, want.b, 32);
		free(d);
	}
	json_array_foreach(json_object_get(j, "node_hash_vectors"), i, v)
	{
		struct kt_hash l, r, want, got;

		tu_hash_hex(tu_str(v, "left"), &l);
		tu_hash_hex(tu_str(v, "right"), &r);
		tu_hash_hex(tu_str(v, "hash"), &want);
		kt_node_hash(&l, &r, &got);
		assert_memory_equal(got.b, want.b, 32);
	}
	json_decref(j);
}

static void
test_tree_vectors(void **state)
{
	json_t *j = tu_load_json("merkle.json");
	json_t *tree;
	size_t ti, ntrees = 0;

	(void)state;
	json_array_foreach(json_object_get(j, "trees"), ti, tree)
	{
		size_t nleaves, i, nroots = 0, ninc = 0, ncons = 0, nbad = 0;
		struct kt_memtree *t = build_tree(tree, &nleaves);
		json_t *v;

		json_array_foreach(json_object_get(tree, "roots"), i, v)
		{
			struct kt_hash want, got;

			tu_hash_hex(tu_str(v, "root"), &want);
			assert_int_equal(
			    kt_memtree_root(t, tu_u64(v, "size"), &got), KT_OK);
			assert_memory_equal(got.b, want.b, 32);
			nroots++;
		}
		json_array_foreach(json_object_get(tree, "inclusion"), i, v)
		{
			struct kt_hash want[KT_PROOF_MAX], got[KT_PROOF_MAX];
			struct kt_hash root, leaf;
			uint64_t size = tu_u64(v, "size");
			uint64_t index = tu_u64(v, "index");
			size_t nw = hex_proof(
			    json_object_get(v, "proof"), want, KT_PROOF_MAX);
			size_t ng;

			tu_hash_hex(tu_str(v, "root"), &root);
			tu_hash_hex(tu_str(v, "leaf_hash"), &leaf);
			assert_int_equal(kt_inclusion_check(want, nw, size,
					     &root, index, &leaf),
			    KT_OK);
			/* Proofs are unique: the prover must match exactly. */
			assert_int_equal(kt_prove_inclusion(size, index,
					     kt_memtree_read, t, got, &ng),
			    KT_OK);
			assert_int_equal(ng, nw);
			if (nw > 0)
				assert_memory_equal(
				    got, want, nw * sizeof(want[0]));
			ninc++;
		}
		json_array_foreach(json_object_get(tree, "consistency"), i, v)
		{
			struct kt_hash want[KT_PROOF_MAX], got[KT_PROOF_MAX];
			struct kt_hash r1, r2;
			uint64_t s1 = tu_u64(v, "size1"),
				 s2 = tu_u64(v, "size2");
			size_t nw = hex_proof(
			    json_object_get(v, "proof"), want, KT_PROOF_MAX);
			size_t ng;

			tu_hash_hex(tu_str(v, "root1"), &r1);
			tu_hash_hex(tu_str(v, "root2"), &r2);
			assert_int_equal(
			    kt_consistency_check(want, nw, s1, &r1, s2, &r2),
			    KT_OK);
			assert_int_equal(kt_prove_consistency(s2, s1,
					     kt_memtree_read, t, got, &ng),
			    KT_OK);
			assert_int_equal(ng, nw);
			if (nw > 0)
				assert_memory_equal(
				    got, want, nw * sizeof(want[0]));
			ncons++;
		}
		json_array_foreach(
		    json_object_get(tree, "inclusion_invalid"), i, v)
		{
			struct kt_hash p[KT_PROOF_MAX], root, leaf;
			size_t np = hex_proof(
			    json_object_get(v, "proof"), p, KT_PROOF_MAX);

			tu_hash_hex(tu_str(v, "root"), &root);
			tu_hash_hex(tu_str(v, "leaf_hash"), &leaf);
			if (kt_inclusion_check(p, np, tu_u64(v, "size"), &root,
				tu_u64(v, "index"), &leaf) == KT_OK)
				fail_msg("%s: accepted invalid inclusion: %s",
				    tu_str(tree, "name"), tu_str(v, "desc"));
			nbad++;
		}
		json_array_foreach(
		    json_object_get(tree, "consistency_invalid"), i, v)
		{
			struct kt_hash p[KT_PROOF_MAX], r1, r2;
			size_t np = hex_proof(
			    json_object_get(v, "proof"), p, KT_PROOF_MAX);

			tu_hash_hex(tu_str(v, "root1"), &r1);
			tu_hash_hex(tu_str(v, "root2"), &r2);
			if (kt_consistency_check(p, np, tu_u64(v, "size1"), &r1,
				tu_u64(v, "size2"), &r2) == KT_OK)
				fail_msg("%s: accepted invalid consistency: %s",
				    tu_str(tree, "name"), tu_str(v, "desc"));
			nbad++;
		}
		assert_true(nroots > 0 && ninc > 0 && ncons > 0 && nbad > 0);
		kt_memtree_free(t);
		ntrees++;
	}
	assert_int_equal(ntrees, 3);
	json_decref(j);
}

/*
 * transparency-dev/merkle data: hashes of any length and numbers up to
 * 2^64-1 appear in the negative files.  A hash that is not 32 bytes cannot
 * be passed to the verifier at all, which is a rejection.
 */
static int
td_hash(const json_t *v, struct kt_hash *out)
{
	const char *s = json_string_value(v);
	uint8_t tmp[256];
	size_t n;

	if (s == NULL)
		return -1;
	if (kt_b64_decode(s, strlen(s), tmp, sizeof(tmp), &n) != KT_OK ||
	    n != 32)
		return -1;
	memcpy(out->b, tmp, 32);
	return 0;
}

static uint64_t
td_u64(const json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return (uint64_t)json_integer_value(v);
	/* Larger than jansson's integers: clamp to a value we must refuse. */
	if (json_is_real(v) && json_real_value(v) >= 9.2e18)
		return UINT64_MAX;
	if (json_is_real(v))
		return (uint64_t)json_real_value(v);
	fail_msg("unexpected number in transparency-dev vector");
	return 0;
}

static json_t *
td_load(const char *path)
{
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err);

	if (j == NULL)
		j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
	if (j == NULL)
		fail_msg("cannot load %s: %s", path, err.text);
	return j;
}

/* Runs one transparency-dev file; returns 1 when our verifier accepted. */
static int
td_run(const char *path, int consistency)
{
	json_t *j = td_load(path);
	json_t *proof = json_object_get(j, "proof");
	struct kt_hash p[KT_PROOF_MAX + 1];
	size_t np = json_is_array(proof) ? json_array_size(proof) : 0;
	int bad = 0, ok;

	if (np > KT_PROOF_MAX)
		bad = 1;
	for (size_t i = 0; !bad && i < np; i++)
		bad |= td_hash(json_array_get(proof, i), &p[i]) != 0;
	if (consistency) {
		struct kt_hash r1, r2;

		bad |= td_hash(json_object_get(j, "root1"), &r1) != 0;
		bad |= td_hash(json_object_get(j, "root2"), &r2) != 0;
		ok = !bad &&
		    kt_consistency_check(p, np,
			td_u64(json_object_get(j, "size1")), &r1,
			td_u64(json_object_get(j, "size2")), &r2) == KT_OK;
	} else {
		struct kt_hash root, leaf;

		bad |= td_hash(json_object_get(j, "root"), &root) != 0;
		bad |= td_hash(json_object_get(j, "leafHash"), &leaf) != 0;
		ok = !bad &&
		    kt_inclusion_check(p, np,
			td_u64(json_object_get(j, "treeSize")), &root,
			td_u64(json_object_get(j, "leafIdx")), &leaf) == KT_OK;
	}
	if (json_is_true(json_object_get(j, "wantErr")) == ok &&
	    strstr(path, "sizes-are-equal-one-and-proof-is-empty") == NULL)
		fail_msg(
		    "%s: verifier said %s", path, ok ? "accept" : "reject");
	json_decref(j);
	return ok;
}

static void
test_transparency_dev_vectors(void **state)
{
	const char *kinds[] = { "inclusion", "consistency" };
	int files = 0;

	(void)state;
	for (int k = 0; k < 2; k++) {
		char cmd[4200];
		FILE *f;
		char line[4096];
		int n = snprintf(cmd, sizeof(cmd),
		    "find '%s/third_party/transparency-dev-merkle/%s' "
		    "-name '*.json' | sort",
		    tu_vectors_dir(), kinds[k]);

		assert_true(n > 0 && (size_t)n < sizeof(cmd));
		assert_non_null(f = popen(cmd, "r"));
		while (fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\n")] = 0;
			(void)td_run(line, k == 1);
			files++;
		}
		pclose(f);
	}
	/* 196 files were published; all must have been read. */
	assert_int_equal(files, 196);
	/* Preferred stricter outcome for the one disputed file. */
	{
		char path[4200];

		snprintf(path, sizeof(path),
		    "%s/third_party/transparency-dev-merkle/consistency/"
		    "additional/sizes-are-equal-one-and-proof-is-empty.json",
		    tu_vectors_dir());
		assert_int_equal(td_run(path, 1), 0);
	}
}

/* Plain recursive RFC 6962 MTH over leaf hashes, for cross-checking. */
static void
ref_mth(const struct kt_hash *leaves, uint64_t n, struct kt_hash *out)
{
	uint64_t k = 1;
	struct kt_hash l, r;

	if (n == 1) {
		*out = leaves[0];
		return;
	}
	while (k * 2 < n)
		k *= 2;
	ref_mth(leaves, k, &l);
	ref_mth(leaves + k, n - k, &r);
	kt_node_hash(&l, &r, out);
}

static void
test_memtree_matches_recursive_definition(void **state)
{
	enum {
		N = 600
	};
	struct kt_hash *leaves = calloc(N, sizeof(*leaves));
	struct kt_memtree *t = kt_memtree_new();
	struct kt_hash got, want, empty;

	(void)state;
	assert_non_null(leaves);
	assert_non_null(t);
	assert_int_equal(kt_memtree_root(t, 0, &got), KT_OK);
	kt_empty_root(&empty);
	assert_memory_equal(got.b, empty.b, 32);
	for (uint64_t i = 0; i < N; i++) {
		uint8_t d[8];

		kt_put_u64be(d, i * 7919);
		kt_leaf_hash(d, sizeof(d), &leaves[i]);
		assert_int_equal(kt_memtree_append_hash(t, &leaves[i]), KT_OK);
		assert_int_equal(kt_memtree_root(t, i + 1, &got), KT_OK);
		ref_mth(leaves, i + 1, &want);
		assert_memory_equal(got.b, want.b, 32);
	}
	/* Every proof in a 600-leaf tree checks; a neighbour's does not. */
	for (uint64_t size = 1; size <= N; size += 37) {
		struct kt_hash root, p[KT_PROOF_MAX];
		size_t np;

		assert_int_equal(kt_memtree_root(t, size, &root), KT_OK);
		for (uint64_t i = 0; i < size; i++) {
			assert_int_equal(kt_prove_inclusion(size, i,
					     kt_memtree_read, t, p, &np),
			    KT_OK);
			assert_int_equal(kt_inclusion_check(
					     p, np, size, &root, i, &leaves[i]),
			    KT_OK);
			if (size > 1)
				assert_int_not_equal(
				    kt_inclusion_check(p, np, size, &root,
					(i + 1) % size, &leaves[i]),
				    KT_OK);
		}
		for (uint64_t old = 1; old <= size; old += 13) {
			struct kt_hash oroot;

			assert_int_equal(
			    kt_memtree_root(t, old, &oroot), KT_OK);
			assert_int_equal(kt_prove_consistency(size, old,
					     kt_memtree_read, t, p, &np),
			    KT_OK);
			assert_int_equal(kt_consistency_check(
					     p, np, old, &oroot, size, &root),
			    KT_OK);
			if (np > 0) {
				p[np - 1].b[5] ^= 1;
				assert_int_equal(kt_consistency_check(p, np,
						     old, &oroot, size, &root),
				    KT_EVERIFY);
			}
		}
	}
	kt_memtree_free(t);
	free(leaves);
}

static void
test_stored_hash_index_roundtrip(void **state)
{
	(void)state;
	/* The tlog layout: record 0 -> 0; record 1 -> 1 and level-1 -> 2. */
	assert_int_equal(kt_stored_hash_index(0, 0), 0);
	assert_int_equal(kt_stored_hash_index(0, 1), 1);
	assert_int_equal(kt_stored_hash_index(1, 0), 2);
	assert_int_equal(kt_stored_hash_index(0, 2), 3);
	assert_int_equal(kt_stored_hash_count(0), 0);
	assert_int_equal(kt_stored_hash_count(1), 1);
	assert_int_equal(kt_stored_hash_count(2), 3);
	assert_int_equal(kt_stored_hash_count(4), 7);
	for (uint64_t idx = 0; idx < 100000; idx++) {
		int level;
		uint64_t n;

		kt_split_stored_hash_index(idx, &level, &n);
		assert_int_equal(kt_stored_hash_index(level, n), idx);
	}
	for (int level = 0; level < 40; level++) {
		uint64_t n = (UINT64_C(1) << (61 - level)) - 3;
		uint64_t idx = kt_stored_hash_index(level, n);
		uint64_t back;
		int lv;

		kt_split_stored_hash_index(idx, &lv, &back);
		assert_int_equal(lv, level);
		assert_int_equal(back, n);
	}
}

static int
failing_reader(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out)
{
	(void)ctx;
	(void)indexes;
	(void)n;
	(void)out;
	return KT_EIO;
}

static void
test_proofs_reject_bad_arguments(void **state)
{
	struct kt_hash p[KT_PROOF_MAX + 1], h;
	size_t np;

	(void)state;
	memset(p, 0, sizeof(p));
	memset(&h, 0, sizeof(h));
	/* index >= size, size 0, sizes at or past 2^63, too long proofs. */
	assert_int_equal(kt_inclusion_check(p, 0, 0, &h, 0, &h), KT_EINVAL);
	assert_int_equal(kt_inclusion_check(p, 0, 5, &h, 5, &h), KT_EINVAL);
	assert_int_equal(
	    kt_inclusion_check(p, 0, KT_SIZE_MAX, &h, 1, &h), KT_EINVAL);
	assert_int_equal(
	    kt_inclusion_check(p, KT_PROOF_MAX + 1, KT_SIZE_MAX - 1, &h, 1, &h),
	    KT_EINVAL);
	assert_int_equal(kt_consistency_check(p, 0, 0, &h, 4, &h), KT_EINVAL);
	assert_int_equal(kt_consistency_check(p, 0, 5, &h, 4, &h), KT_EINVAL);
	assert_int_equal(
	    kt_consistency_check(p, 1, 4, &h, UINT64_MAX, &h), KT_EINVAL);
	/* Equal sizes need an empty proof. */
	assert_int_equal(kt_consistency_check(p, 1, 4, &h, 4, &h), KT_EVERIFY);
	assert_int_equal(kt_consistency_check(p, 0, 4, &h, 4, &h), KT_OK);
	/* A proof that is too long for its tree is refused. */
	assert_int_equal(kt_inclusion_check(p, 3, 2, &h, 0, &h), KT_EVERIFY);
	/* Reader errors come back unchanged; nothing is written. */
	np = 99;
	assert_int_equal(
	    kt_prove_inclusion(10, 3, failing_reader, NULL, p, &np), KT_EIO);
	assert_int_equal(np, 99);
	assert_int_equal(kt_tree_hash(10, failing_reader, NULL, &h), KT_EIO);
	assert_int_equal(
	    kt_prove_consistency(10, 0, failing_reader, NULL, p, &np),
	    KT_EINVAL);
	assert_int_equal(
	    kt_prove_consistency(10, 11, failing_reader, NULL, p, &np),
	    KT_EINVAL);
	assert_int_equal(
	    kt_prove_inclusion(10, 10, failing_reader, NULL, p, &np),
	    KT_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_leaf_hash_vectors),
		cmocka_unit_test(test_tree_vectors),
		cmocka_unit_test(test_transparency_dev_vectors),
		cmocka_unit_test(test_memtree_matches_recursive_definition),
		cmocka_unit_test(test_stored_hash_index_roundtrip),
		cmocka_unit_test(test_proofs_reject_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
