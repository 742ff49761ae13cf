/*
 * keytrail: common types of libkeytrail.
 *
 * Error codes, the fixed-size hash, borrowed byte views, the bounded
 * growable buffer and the bounds-checked reader that every other module
 * uses.  Nothing here performs I/O or keeps global state.
 */
#ifndef KEYTRAIL_COMMON_H
#define KEYTRAIL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define KT_MUST_CHECK
#endif

/*
 * Every function that can fail returns KT_OK (0) or one of these negative
 * codes.  kt_strerror() names them.
 */
enum {
	KT_OK = 0,
	KT_ENOMEM = -1,	   /* allocation failed */
	KT_EINVAL = -2,	   /* the caller broke a documented precondition */
	KT_EPARSE = -3,	   /* malformed or non-canonical input */
	KT_ETOOBIG = -4,   /* input or output beyond a hard limit */
	KT_EVERIFY = -5,   /* a proof or signature does not verify */
	KT_ENOTFOUND = -6, /* no such entry, key or object */
	KT_EIO = -7,	   /* storage or device failure */
	KT_EPOLICY = -8,   /* refused by policy */
	KT_EAUTH = -9,	   /* unauthenticated */
	KT_EEXIST = -10,   /* already exists */
	KT_EUNAVAIL = -11, /* service unavailable (log cannot commit, ...) */
	KT_EINTERNAL = -12 /* an internal step failed unexpectedly */
};

/* Returns a static, human-readable name for err; never NULL. */
const char *kt_strerror(int err);

/*
 * Largest log entry, in bytes: C2SP entry bundles carry each entry's
 * length in two bytes.
 */
#define KT_ENTRY_MAX 65535

/* A SHA-256 hash. */
#define KT_HASH_SIZE 32
struct kt_hash {
	uint8_t b[KT_HASH_SIZE];
};

/*
 * Compares two hashes in constant time.  Returns 1 when equal, 0 when not.
 * Use it whenever one side could be secret or attacker-chosen.
 */
int kt_hash_equal(const struct kt_hash *a, const struct kt_hash *b);

/* A borrowed view of bytes; the owner keeps them alive. */
struct kt_bytes {
	const uint8_t *p;
	size_t len;
};

/*
 * An owned, growable byte buffer with a hard maximum size.  An append that
 * would exceed max (or fails to allocate) returns an error and leaves the
 * buffer exactly as it was.  Initialise with kt_buf_init(); release with
 * kt_buf_free() or kt_buf_wipe() (which also zeroes the bytes: use it for
 * anything secret).  kt_buf_free(NULL) is a no-op.
 */
struct kt_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max;
};

/* Initialises b as empty with hard maximum max bytes. */
void kt_buf_init(struct kt_buf *b, size_t max);
/* Appends n bytes.  KT_ETOOBIG past max, KT_ENOMEM; b unchanged on error. */
int kt_buf_append(struct kt_buf *b, const void *p, size_t n) KT_MUST_CHECK;
/*
 * Appends n uninitialised bytes and points *p at them, for writers that
 * fill a known length in place.  Same errors as kt_buf_append; on error b
 * is unchanged and *p is not written.
 */
int kt_buf_extend(struct kt_buf *b, size_t n, uint8_t **p) KT_MUST_CHECK;
/* Appends a NUL-terminated string (without the NUL). */
int kt_buf_append_str(struct kt_buf *b, const char *s) KT_MUST_CHECK;
/* Appends one byte. */
int kt_buf_append_byte(struct kt_buf *b, uint8_t c) KT_MUST_CHECK;
/* Appends the decimal form of v. */
int kt_buf_append_u64(struct kt_buf *b, uint64_t v) KT_MUST_CHECK;
/*
 * Makes sure the contents are followed by a NUL byte (not counted in len)
 * so p can be used as a C string.  Same errors as kt_buf_append.
 */
int kt_buf_terminate(struct kt_buf *b) KT_MUST_CHECK;
/* Drops the contents, keeps the allocation. */
void kt_buf_reset(struct kt_buf *b);
/*
 * Keeps only the first len bytes (no-op if there are no more), for
 * example to give back the unused tail of a kt_buf_extend() reservation.
 */
void kt_buf_truncate(struct kt_buf *b, size_t len);
/* Frees the storage; b is empty afterwards and may be reused. */
void kt_buf_free(struct kt_buf *b);
/* Zeroes the whole allocation, then frees it. */
void kt_buf_wipe(struct kt_buf *b);

/*
 * A bounds-checked reader over borrowed bytes with a sticky error flag:
 * any read past the end sets bad, returns zeros / empty views, and every
 * later read fails too.  Check bad once at the end.
 */
struct kt_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	int bad;
};

void kt_reader_init(struct kt_reader *r, const uint8_t *p, size_t len);
/* Bytes not yet read. */
size_t kt_reader_left(const struct kt_reader *r);
uint8_t kt_reader_u8(struct kt_reader *r);
uint16_t kt_reader_u16be(struct kt_reader *r);
uint32_t kt_reader_u32be(struct kt_reader *r);
uint64_t kt_reader_u64be(struct kt_reader *r);
/* A view of the next n bytes. */
struct kt_bytes kt_reader_bytes(struct kt_reader *r, size_t n);
/*
 * The next line without its terminating '\n'.  A final line without '\n'
 * sets bad.
 */
struct kt_bytes kt_reader_line(struct kt_reader *r);

/* Stores v big-endian in out[0..7] / out[0..3] / out[0..1]. */
void kt_put_u64be(uint8_t out[8], uint64_t v);
void kt_put_u32be(uint8_t out[4], uint32_t v);
void kt_put_u16be(uint8_t out[2], uint16_t v);
uint64_t kt_get_u64be(const uint8_t in[8]);
uint32_t kt_get_u32be(const uint8_t in[4]);

/*
 * Parses a canonical unsigned decimal: digits only, no sign, no spaces, no
 * leading zeros (except "0" itself), value <= max.  Returns KT_OK,
 * KT_EPARSE, or KT_ETOOBIG if the value exceeds max.  Writes *out only on
 * success.
 */
int kt_parse_u64(
    const uint8_t *p, size_t len, uint64_t max, uint64_t *out) KT_MUST_CHECK;

/* Zeroes n bytes in a way the compiler cannot drop. */
void kt_wipe(void *p, size_t n);

/* Constant-time comparison of n bytes: 1 when equal, 0 otherwise. */
int kt_memeq_ct(const void *a, const void *b, size_t n);

/* Seconds on the monotonic clock, for measuring durations. */
double kt_monotonic_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
