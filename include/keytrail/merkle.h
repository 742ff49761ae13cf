/*
 * keytrail: RFC 6962 / RFC 9162 Merkle trees over stored hashes.
 *
 * The tree of a log is kept as a sequence of "stored hashes", numbered as
 * Go's golang.org/x/mod/sumdb/tlog numbers them: appending record n adds its
 * leaf hash and then the hash of every complete subtree that record n
 * completes.  Storage is reached only through a hash reader callback, so
 * tests can keep hashes in an array and the log daemon in LMDB.  Each
 * computation lists the indexes it needs, reads them in one call, and then
 * hashes (sumdb/tlog's structure), so one read transaction serves it.
 *
 * Sizes and indexes are uint64_t and must be below KT_SIZE_MAX (2^63).
 */
#ifndef KEYTRAIL_MERKLE_H
#define KEYTRAIL_MERKLE_H

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tree sizes, leaf indexes and stored-hash indexes stay below 2^63. */
#define KT_SIZE_MAX (UINT64_C(1) << 63)

/* Longest inclusion or consistency proof for a tree below 2^63 leaves. */
#define KT_PROOF_MAX 64

/* Leaf hash: SHA-256(0x00 || data) (RFC 6962 section 2.1). */
void kt_leaf_hash(const uint8_t *data, size_t len, struct kt_hash *out);
/* Node hash: SHA-256(0x01 || left || right) (RFC 6962 section 2.1). */
void kt_node_hash(const struct kt_hash *left, const struct kt_hash *right,
    struct kt_hash *out);
/*
 * Plain SHA-256 of data[0..len), for hot paths (OpenSSL's SHA256()
 * one-shot looks the algorithm up on every call).  The hashing state is
 * wiped afterwards, so data may be a secret such as a bearer token.
 */
void kt_sha256(const uint8_t *data, size_t len, struct kt_hash *out);
/* Root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1). */
void kt_empty_root(struct kt_hash *out);

/*
 * Reads the stored hashes at indexes[0..n) into out[0..n).  Returns KT_OK,
 * or an error code (KT_ENOTFOUND, KT_EIO, ...) that the caller passes on.
 * Implementations may assume n <= KT_READ_MAX.
 */
typedef int (*kt_hash_reader_fn)(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out);

/* Most hashes any single computation here asks a reader for. */
#define KT_READ_MAX 128

/*
 * The stored-hash index of the hash of the complete subtree at level
 * (0 = leaves) and position n within that level (tlog StoredHashIndex).
 * Precondition: the result is below KT_SIZE_MAX.
 */
uint64_t kt_stored_hash_index(int level, uint64_t n);

/* Inverse of kt_stored_hash_index (tlog SplitStoredHashIndex). */
void kt_split_stored_hash_index(uint64_t index, int *level, uint64_t *n);

/* Number of stored hashes of a tree of size records (tlog StoredHashCount). */
uint64_t kt_stored_hash_count(uint64_t size);

/*
 * Computes the hashes to store when appending record n whose leaf hash is
 * leaf, given a reader of the hashes already stored for records 0..n-1
 * (tlog StoredHashesForRecordHash).  Writes up to 64 hashes to out and their
 * count to *nout; they belong at indexes kt_stored_hash_count(n) onwards.
 * Returns KT_OK, KT_EINVAL (n too large) or the reader's error.
 */
int kt_stored_hashes(uint64_t n, const struct kt_hash *leaf,
    kt_hash_reader_fn read, void *ctx, struct kt_hash out[64],
    size_t *nout) KT_MUST_CHECK;

/*
 * Computes the root hash of the tree of size records (tlog TreeHash, except
 * that size 0 gives the RFC 9162 empty root).  Returns KT_OK, KT_EINVAL or
 * the reader's error.  Writes *root only on success.
 */
int kt_tree_hash(uint64_t size, kt_hash_reader_fn read, void *ctx,
    struct kt_hash *root) KT_MUST_CHECK;

/*
 * Builds the inclusion proof of leaf index in the tree of size leaves
 * (RFC 9162 section 2.1.3.1), ordered from the leaf's sibling upward.
 * proof must hold KT_PROOF_MAX hashes.  Returns KT_OK, KT_EINVAL
 * (index >= size or size >= KT_SIZE_MAX) or the reader's error.
 */
int kt_prove_inclusion(uint64_t size, uint64_t index, kt_hash_reader_fn read,
    void *ctx, struct kt_hash proof[KT_PROOF_MAX],
    size_t *nproof) KT_MUST_CHECK;

/*
 * Builds the consistency proof from the tree of size old to the tree of
 * size size (RFC 9162 section 2.1.4.1).  Requires 0 < old <= size.
 * old == size gives an empty proof.  Returns KT_OK, KT_EINVAL or the
 * reader's error.
 */
int kt_prove_consistency(uint64_t size, uint64_t old, kt_hash_reader_fn read,
    void *ctx, struct kt_hash proof[KT_PROOF_MAX],
    size_t *nproof) KT_MUST_CHECK;

/*
 * Checks that proof shows the leaf with hash leaf is at position index in
 * the tree of size size with root hash root (RFC 9162 section 2.1.3.2).
 * Returns KT_OK, KT_EVERIFY (wrong, short or long proof), or KT_EINVAL if
 * index >= size, size >= KT_SIZE_MAX or nproof > KT_PROOF_MAX.
 */
int kt_inclusion_check(const struct kt_hash *proof, size_t nproof,
    uint64_t size, const struct kt_hash *root, uint64_t index,
    const struct kt_hash *leaf) KT_MUST_CHECK;

/*
 * Checks that proof shows the tree of size size1 with root root1 is a
 * prefix of the tree of size size2 with root root2 (RFC 9162 section
 * 2.1.4.2).  Requires 0 < size1 <= size2 < KT_SIZE_MAX (else KT_EINVAL).
 * size1 == size2 requires an empty proof and equal roots.  Returns KT_OK,
 * KT_EVERIFY or KT_EINVAL.
 */
int kt_consistency_check(const struct kt_hash *proof, size_t nproof,
    uint64_t size1, const struct kt_hash *root1, uint64_t size2,
    const struct kt_hash *root2) KT_MUST_CHECK;

/*
 * Computes, from a proof, the root of the tree of size size that holds leaf
 * at index (the computation behind kt_inclusion_check).  Same errors.
 */
int kt_inclusion_root(const struct kt_hash *proof, size_t nproof, uint64_t size,
    uint64_t index, const struct kt_hash *leaf,
    struct kt_hash *root) KT_MUST_CHECK;

/*
 * An in-memory tree: stored hashes in one growable array.  Used by tests,
 * benchmarks and clients that rebuild a log; the daemon keeps its hashes in
 * LMDB instead.  Not thread-safe.
 */
struct kt_memtree;

/* Returns a new empty tree, or NULL when out of memory. */
struct kt_memtree *kt_memtree_new(void);
void kt_memtree_free(struct kt_memtree *t);
/*
 * Allocates (and touches) room for a tree of records records, so appends
 * up to that size neither reallocate nor fault in fresh pages.  Optional.
 * KT_ENOMEM, KT_ETOOBIG.
 */
int kt_memtree_reserve(struct kt_memtree *t, uint64_t records) KT_MUST_CHECK;
/* Appends a record's bytes.  KT_ENOMEM, or KT_ETOOBIG at 2^61 records. */
int kt_memtree_append(
    struct kt_memtree *t, const uint8_t *data, size_t len) KT_MUST_CHECK;
/* Appends a record by its leaf hash. */
int kt_memtree_append_hash(
    struct kt_memtree *t, const struct kt_hash *leaf) KT_MUST_CHECK;
/* Number of records appended. */
uint64_t kt_memtree_size(const struct kt_memtree *t);
/* Root of the first size records (size <= kt_memtree_size). */
int kt_memtree_root(const struct kt_memtree *t, uint64_t size,
    struct kt_hash *root) KT_MUST_CHECK;
/* A kt_hash_reader_fn over a kt_memtree (pass the tree as ctx). */
int kt_memtree_read(
    void *ctx, const uint64_t *indexes, size_t n, struct kt_hash *out);

#ifdef __cplusplus
}
#endif
#endif
