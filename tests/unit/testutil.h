/*
 * Helpers shared by the unit tests: locating and loading the known-answer
 * vectors in ../shared/vectors (through the KT_VECTORS environment
 * variable that ctest sets), reading files, decoding hex.  A missing
 * vectors directory fails the test; nothing is skipped.
 */
#ifndef KT_TESTUTIL_H
#define KT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "keytrail/common.h"

/* The vectors directory; fails the test when unset or missing. */
const char *tu_vectors_dir(void);

/* Reads <vectors>/<rel> whole; fails the test when unreadable. */
uint8_t *tu_read_vector_file(const char *rel, size_t *len);

/* Reads an absolute or relative path whole; NULL if missing. */
uint8_t *tu_read_file(const char *path, size_t *len);

/* Loads <vectors>/<rel> as JSON; fails the test on error. */
json_t *tu_load_json(const char *rel);

/* Returns obj[key] as a string; fails the test when absent. */
const char *tu_str(const json_t *obj, const char *key);
/* Returns obj[key] as an integer; fails the test when absent. */
uint64_t tu_u64(const json_t *obj, const char *key);

/* Decodes a hex string of exactly 64 digits into a hash; fails the test. */
void tu_hash_hex(const char *hex, struct kt_hash *out);
/* Decodes hex of any even length; caller frees.  Fails the test. */
uint8_t *tu_hex(const char *hex, size_t *len);

/* Decodes canonical base64 (vector data); caller frees.  Fails the test. */
uint8_t *tu_b64(const char *s, size_t *len);

struct kt_note_vkey;
/* Parses a verifier key string; fails the test if it does not parse. */
void tu_vkey(const char *s, struct kt_note_vkey *k);

#endif
