/*
 * keytrail: log entries (DESIGN.md section 4, "Entry").
 *
 * An entry is one JSON object, UTF-8, keys sorted, no insignificant
 * space, holding only strings, integers, and (for artifact, approvers and
 * attrs) objects and arrays of them.  The log builds the bytes once;
 * verifiers hash exactly the bytes they receive and never re-serialize,
 * but they do check that the bytes are canonical, so that one logical
 * entry has exactly one encoding and one leaf hash.
 */
#ifndef KEYTRAIL_ENTRY_H
#define KEYTRAIL_ENTRY_H

#include <jansson.h>

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of objects and arrays inside an entry. */
#define KT_ENTRY_DEPTH_MAX 4

/*
 * Serialises obj canonically (sorted keys, compact, UTF-8 as is) into
 * out, replacing its contents.  obj may hold only objects, arrays,
 * strings and integers, nested at most KT_ENTRY_DEPTH_MAX deep.  Returns
 * KT_OK, KT_EINVAL (other JSON types, too deep, not an object, or no
 * string "kind"), KT_ETOOBIG (over KT_ENTRY_MAX or out's maximum) or
 * KT_ENOMEM.  out is left empty on failure.
 */
int kt_entry_encode(const json_t *obj, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Parses entry bytes p[0..len) and checks they are canonical: a JSON
 * object with a string "kind", only the types above, no duplicate keys,
 * and byte-for-byte equal to kt_entry_encode of the parsed value.  On
 * success stores a new reference in *out (caller json_decref()s it) when
 * out is not NULL.  Returns KT_OK, KT_ETOOBIG (len > KT_ENTRY_MAX),
 * KT_EPARSE or KT_ENOMEM.
 */
int kt_entry_parse(const uint8_t *p, size_t len, json_t **out) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
