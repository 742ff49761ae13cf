/*
 * keytrail-logd: the log's storage.
 *
 * One LMDB environment in <datadir>/log/ holds everything the log keeps:
 * the entries, every stored hash of the Merkle tree (as "level tiles" from
 * which C2SP tlog-tiles are served without recomputation), the leaf-hash
 * dedup index, the search indexes, every signed checkpoint, and the
 * opaque key/value tables the layers above keep (keys, policies, pending
 * requests).  docs/storage.md describes the schema byte by byte.
 *
 * store.c (writes) and store_rd.c (reads) are the only files that include
 * lmdb.h, and every transaction begins and ends inside them: writes are
 * one call each (store_append, store_init_checkpoint, store_write), reads
 * are a short session (store_rd_begin ... store_rd_end) that sees one
 * consistent snapshot and copies out everything it returns.
 *
 * Threads: any thread may run read sessions (the environment is opened
 * with MDB_NOTLS), each session used by one thread at a time.  Writes
 * must not overlap: the index buffer's state (store_int.h) belongs to the
 * writer outside LMDB's writer lock too.  keytrail-logd writes at start
 * from its main thread, then from its one sequencer thread only.
 *
 * Errors are the KT_E* codes of keytrail/common.h.  Functions that take
 * err/errlen also write a one-line explanation there (always NUL
 * terminated, truncated to errlen) when they fail.
 */
#ifndef KEYTRAIL_LOGD_STORE_H
#define KEYTRAIL_LOGD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

/* The schema this code reads and writes; any other version is refused. */
#define STORE_SCHEMA_VERSION 3
/*
 * Entries whose index rows the index buffer holds before the run is
 * written to an index table (docs/storage.md): about 400 bytes of memory
 * each, twice over while a full run is written out.
 */
#define STORE_IXBUF_ENTRIES_DEFAULT 65536
/*
 * LMDB map size when the caller passes 0: 1 GiB of address space (the file
 * only grows as pages are used).  A 300-byte entry takes about 800 bytes
 * with its hashes, indexes and checkpoint share (measured), so that is
 * over a million entries; watch store_stats and raise it in the
 * configuration long before it fills.
 */
#define STORE_MAP_SIZE_DEFAULT (UINT64_C(1) << 30)
/* Smallest map size accepted: 1 MiB. */
#define STORE_MAP_SIZE_MIN (UINT64_C(1) << 20)
/* Largest entry: an entry bundle gives each entry a 2-byte length. */
#define STORE_ENTRY_MAX 65535
/* Longest value in a search index (its length is stored in one byte). */
#define STORE_INDEX_VALUE_MAX 255
/* Longest key of an auxiliary table (LMDB keys are at most 511 bytes). */
#define STORE_AUX_KEY_MAX 255
/* Largest value of an auxiliary table. */
#define STORE_AUX_VALUE_MAX (1024 * 1024)
/* Most auxiliary writes one item or one store_write call may carry. */
#define STORE_PUTS_MAX 16
/* Most items one store_append call may carry. */
#define STORE_BATCH_MAX 16384
/* Longest origin: the origin is also the checkpoint key's name. */
#define STORE_ORIGIN_MAX 255

struct store;
struct store_rd;

/* The auxiliary tables: opaque keys and values owned by the layer above. */
enum store_aux {
	STORE_DB_KEYS,
	STORE_DB_POLICIES,
	STORE_DB_REQUESTS
};

/*
 * One write to an auxiliary table: sets key to val, or, when del is
 * non-zero, deletes key (val is ignored; deleting a missing key is not an
 * error).  key is 1..STORE_AUX_KEY_MAX bytes, val 0..STORE_AUX_VALUE_MAX.
 * All bytes are borrowed for the duration of the call.
 */
struct store_put {
	enum store_aux db;
	struct kt_bytes key;
	struct kt_bytes val;
	int del;
	/*
	 * Only in an item's puts: the value written is the item's leaf index
	 * (8 bytes, big-endian) and val is ignored, so a record can name the
	 * entry in the transaction that assigns its index.  store_write
	 * refuses it (KT_EINVAL).
	 */
	int index_value;
};

/*
 * One entry to append.  The caller fills the inputs; store_append fills
 * the results.  All bytes are borrowed for the duration of the call.
 */
struct store_item {
	/* Inputs. */
	struct kt_bytes entry; /* canonical entry bytes, <= STORE_ENTRY_MAX */
	struct kt_hash leaf;   /* kt_leaf_hash of entry (checked) */
	/* Search index values, each <= STORE_INDEX_VALUE_MAX; len 0: none. */
	struct kt_bytes by_key;
	struct kt_bytes by_digest;
	struct kt_bytes by_artifact;
	/*
	 * Optional dedup key: when has_dedup is set, the item is a duplicate
	 * if an earlier item with the same by_digest had the same dedup key
	 * (instead of the same leaf hash).  For entries that record when the
	 * log accepted them, so that resubmitting the same request is still
	 * idempotent.  Requires by_digest.
	 */
	struct kt_hash dedup;
	int has_dedup;
	/* Auxiliary writes made only if the entry is new (<= STORE_PUTS_MAX).
	 */
	const struct store_put *puts;
	size_t nputs;
	/* Results. */
	uint64_t index; /* the entry's leaf index, new or existing */
	int duplicate;	/* 1 if the entry was already in the log (or earlier
			   in the same batch); index is then the existing one */
};

/*
 * Signs the checkpoint text[0..len) (origin, size and base64 root lines)
 * and appends the complete signed note (the text, a blank line, the
 * signature lines) to out.  Returns KT_OK or a negative KT_E* code, which
 * the store passes on after abandoning the write.
 */
typedef int (*store_sign_fn)(
    void *ctx, const uint8_t *text, size_t len, struct kt_buf *out);

/*
 * Opens (creating it on first use) the log storage in <datadir>/log/,
 * mode 0700, for the log named origin (a NUL-terminated valid note key
 * name of at most STORE_ORIGIN_MAX bytes).  map_size is the LMDB map size
 * in bytes, 0 for STORE_MAP_SIZE_DEFAULT; LMDB keeps at least the current
 * file size.  An existing log must have been created with the same origin
 * and schema STORE_SCHEMA_VERSION (older schemas are refused until
 * store_upgrade has run), and its tree size must match its entries.  Returns
 * KT_OK and *out (free with store_close), or KT_EINVAL (bad origin, map size,
 * or an origin different from the stored one), KT_EPARSE (unknown schema
 * version, inconsistent storage), KT_EIO, KT_EUNAVAIL or KT_ENOMEM, with a
 * message in err.
 */
int store_open(const char *datadir, const char *origin, uint64_t map_size,
    struct store **out, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Brings the log storage in <datadir>/log/ up to STORE_SCHEMA_VERSION, as
 * an operator's explicit step (store_open refuses an older version and
 * says so): schema 1 gains the index buffer's pending tables, and schemas
 * 1 and 2 the index tables, empty; no row moves.  A log already at the current
 * version is left as it is. Returns what store_open would.
 */
int store_upgrade(const char *datadir, const char *origin, uint64_t map_size,
    char *err, size_t errlen) KT_MUST_CHECK;

/* Closes s.  Every read session must have ended.  NULL is a no-op. */
void store_close(struct store *s);

/*
 * Sets how many entries' index rows the index buffer holds before the run
 * is written to an index table (at least 1; the default is
 * STORE_IXBUF_ENTRIES_DEFAULT).  Takes effect from the next batch.
 */
void store_set_ixbuf_entries(struct store *s, uint64_t entries);

/*
 * Appends the new entries among items[0..n) to the log and signs the new
 * tree, all in one durable transaction: for each item in order, an entry
 * whose leaf hash is already in the log (or earlier in items) is a
 * duplicate and writes nothing; a new one gets the next leaf index, its
 * index values and its auxiliary writes.  Then the new stored hashes and
 * root are computed, the new tree is checked to extend the last signed
 * one (consistency proof against the stored signed root), the checkpoint
 * text is built and passed to sign, and the signed note is stored as the
 * checkpoint of the new size.  The transaction commits (fsync) last: on
 * any failure nothing at all is written.
 *
 * If no item is new (or n is 0), nothing is written or signed and the
 * latest checkpoint is returned.
 *
 * On success fills every item's index and duplicate, appends the signed
 * note to note_out (if not NULL) and stores the tree size in *size_out
 * (if not NULL).  On failure they are unchanged.  Returns KT_OK;
 * KT_EINVAL (n > STORE_BATCH_MAX, an entry whose leaf does not match, a
 * bad put), KT_ETOOBIG (an entry or value past its limit, a batch too big
 * for one transaction, note_out's maximum); KT_ENOTFOUND (n is 0 or all
 * duplicates and no checkpoint exists yet); KT_EUNAVAIL (the map is full:
 * raise map_size); the signer's code; KT_EINTERNAL (a broken invariant,
 * such as a tree that does not extend the signed one); KT_EIO; KT_ENOMEM.
 */
int store_append(struct store *s, struct store_item *items, size_t n,
    store_sign_fn sign, void *ctx, struct kt_buf *note_out, uint64_t *size_out,
    char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Where the last store_append call spent its time, in seconds: looking up
 * and writing the items (add), moving index rows into index tables and
 * merging them (index), building, checking and signing the new
 * checkpoint (sign), and committing with fsync (commit).  A step the call
 * did not reach counts 0.  Call from the thread that appends.
 */
struct store_times {
	double add;
	double index;
	double sign;
	double commit;
};
void store_last_times(const struct store *s, struct store_times *out);

/*
 * Makes sure a fresh log has a checkpoint: if none exists, signs and
 * stores the checkpoint of the empty tree (size 0, root SHA-256 of the
 * empty string) in one durable transaction; otherwise writes nothing.
 * Appends the latest signed note to note_out (if not NULL).  Returns
 * KT_OK, the signer's code, or store_append's storage errors.
 */
int store_init_checkpoint(struct store *s, store_sign_fn sign, void *ctx,
    struct kt_buf *note_out, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Makes the auxiliary writes puts[0..n) (n <= STORE_PUTS_MAX) in one
 * durable transaction, in order; nothing is written on failure.  Returns
 * KT_OK, KT_EINVAL, KT_ETOOBIG, KT_EUNAVAIL (map full), KT_EIO.
 */
int store_write(struct store *s, const struct store_put *puts, size_t n,
    char *err, size_t errlen) KT_MUST_CHECK;

/* Storage figures for monitoring. */
struct store_stats {
	uint64_t map_size;	 /* the LMDB map size in bytes */
	uint64_t used_bytes;	 /* bytes of the map in use */
	uint64_t entries;	 /* the tree size */
	uint64_t ixbuf_entries;	 /* entries whose index rows wait in memory */
	int ixbuf_merging;	 /* a full run is being written to a table */
	unsigned ixtables;	 /* live index tables */
	unsigned ixmerges;	 /* index table merges under way */
	unsigned ixlevels;	 /* levels of live index tables (highest + 1) */
	unsigned ixlevel_max;	 /* most live index tables at one level */
	uint64_t probes_read;	 /* table lookups that read the table */
	uint64_t probes_skipped; /* and that its Bloom filter spared */
	uint64_t slices;	 /* slices written into index tables */
	uint64_t slice_rows;	 /* rows those slices moved */
};

/* Fills *st.  Returns KT_OK, KT_EUNAVAIL or KT_EIO (*st unchanged). */
int store_stats(struct store *s, struct store_stats *st) KT_MUST_CHECK;

/*
 * Read sessions.  store_rd_begin starts a read-only snapshot; every
 * store_rd_* call reads from it, copying results into caller buffers; end
 * it soon (a session pins the pages it sees) with store_rd_end.  A buffer
 * argument out is appended to and is unchanged when the call fails,
 * including when it would pass its maximum (KT_ETOOBIG).
 */

/*
 * Starts a read session.  Returns KT_OK and *out, KT_ENOMEM, KT_EUNAVAIL
 * (too many concurrent sessions) or KT_EIO.
 */
int store_rd_begin(struct store *s, struct store_rd **out) KT_MUST_CHECK;

/* Ends a read session.  NULL is a no-op. */
void store_rd_end(struct store_rd *rd);

/* The tree size of the session's snapshot (that of its latest checkpoint). */
uint64_t store_rd_size(const struct store_rd *rd);

/*
 * Appends the latest signed checkpoint note to note.  Returns KT_OK,
 * KT_ENOTFOUND (the log has never signed one), note's errors, KT_EIO.
 */
int store_rd_checkpoint(struct store_rd *rd, struct kt_buf *note) KT_MUST_CHECK;

/*
 * Appends the signed checkpoint note of tree size size.  Returns KT_OK,
 * KT_ENOTFOUND (that size was never signed), note's errors, KT_EIO.
 */
int store_rd_checkpoint_at(
    struct store_rd *rd, uint64_t size, struct kt_buf *note) KT_MUST_CHECK;

/*
 * Appends the bytes of the entry at leaf index index.  Returns KT_OK,
 * KT_ENOTFOUND (index >= size), out's errors, KT_EIO.
 */
int store_rd_entry(
    struct store_rd *rd, uint64_t index, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Appends the data of the C2SP hash tile tile/<level>/<index>[.p/<width>]:
 * width hashes of 32 bytes, tree level 8 * level, positions index * 256
 * onwards.  A narrower tile than the stored one (the partial tile of an
 * older tree) is its prefix.  Returns KT_OK, KT_EINVAL (level outside
 * 0..63, index above KT_TILE_INDEX_MAX, width outside 1..256),
 * KT_ENOTFOUND (the tree does not yet hold width hashes there), out's
 * errors, KT_EIO.
 */
int store_rd_tile(struct store_rd *rd, int level, uint64_t index,
    unsigned width, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Appends the C2SP entry bundle tile/entries/<index>[.p/<width>]: entries
 * index * 256 .. index * 256 + width - 1, each as a 2-byte big-endian
 * length and its bytes.  Returns KT_OK, KT_EINVAL (as store_rd_tile),
 * KT_ENOTFOUND (not all width entries are in the tree), out's errors,
 * KT_EIO.
 */
int store_rd_bundle(struct store_rd *rd, uint64_t index, unsigned width,
    struct kt_buf *out) KT_MUST_CHECK;

/*
 * A kt_hash_reader_fn over the session (ctx is the struct store_rd), for
 * kt_tree_hash, kt_prove_inclusion and kt_prove_consistency: reads the
 * stored hashes indexes[0..n) (merkle.h numbering) into out[0..n).
 * Returns KT_OK, KT_EINVAL (n > KT_READ_MAX), KT_ENOTFOUND (a hash not in
 * the snapshot's tree) or KT_EIO.  Writes out only on success.
 */
int store_rd_read_hashes(
    void *rd, const uint64_t *indexes, size_t n, struct kt_hash *out);

/*
 * Looks up the entry whose leaf hash is leaf.  Returns KT_OK and *index,
 * KT_ENOTFOUND or KT_EIO.
 */
int store_rd_find_leaf(struct store_rd *rd, const struct kt_hash *leaf,
    uint64_t *index) KT_MUST_CHECK;

/* The search indexes. */
enum store_index {
	STORE_BY_KEY,
	STORE_BY_DIGEST,
	STORE_BY_ARTIFACT
};

/*
 * Lists, in increasing order, the leaf indexes of the entries indexed
 * under value[0..len) in which, starting after leaf index after
 * (UINT64_MAX: from the start): at most max of them into out[0..max),
 * their number into *nout, and into *more whether further ones follow
 * (pass the last one as after to continue).  The listing is complete:
 * every indexed entry of the snapshot appears on exactly one page.
 * Returns KT_OK, KT_EINVAL (len 0, max 0, unknown which), KT_ETOOBIG
 * (len > STORE_INDEX_VALUE_MAX), KT_EIO.  *nout and *more are written
 * only on success; out[] may be partly written on failure.
 */
int store_rd_search(struct store_rd *rd, enum store_index which,
    const uint8_t *value, size_t len, uint64_t after, uint64_t *out, size_t max,
    size_t *nout, int *more) KT_MUST_CHECK;

/*
 * Appends the value of key[0..klen) in auxiliary table db to val.
 * Returns KT_OK, KT_ENOTFOUND, KT_EINVAL (bad db or key length), val's
 * errors, KT_EIO.
 */
int store_rd_get(struct store_rd *rd, enum store_aux db, const uint8_t *key,
    size_t klen, struct kt_buf *val) KT_MUST_CHECK;

/*
 * Calls cb for each key and value of auxiliary table db, in key order.
 * The views are valid only during the call.  cb returns KT_OK to go on;
 * any other value stops the walk and is returned.  Returns KT_OK,
 * KT_EINVAL (bad db), cb's code, KT_EIO.
 */
int store_rd_iter(struct store_rd *rd, enum store_aux db,
    int (*cb)(void *ctx, struct kt_bytes key, struct kt_bytes val),
    void *ctx) KT_MUST_CHECK;

/*
 * For tests only: overwrites the stored schema version, so a test can
 * check that store_open refuses a version it does not know.  Returns KT_OK
 * or a storage error.
 */
int store_debug_set_schema(struct store *s, uint64_t version) KT_MUST_CHECK;

/*
 * For tests only: fn(ctx) runs inside the next store_rd_begin calls,
 * after the session has taken the index buffer's runs and before its
 * snapshot begins, so a test can make the writer freeze a run in between.
 * NULL removes it.
 */
void store_debug_set_rd_hook(struct store *s, void (*fn)(void *ctx), void *ctx);

#endif
