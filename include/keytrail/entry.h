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
 * The fields of a signature entry (DESIGN.md section 4), or of the
 * submission object a log deduplicates on.  A NULL string leaves its
 * member out; approvers NULL leaves "approvers" out, otherwise it holds
 * napprovers names.  artifact is written when has_artifact is set, with
 * "name" when artifact_name is not NULL and "size" when has_artifact_size
 * is set.  Strings must be valid UTF-8.
 */
struct kt_entry_sig {
	const char *kind; /* required */
	const char *alg, *digest, *key, *policy, *principal, *request, *sig,
	    *time;
	const char *const *approvers;
	size_t napprovers;
	int has_artifact, has_artifact_size;
	const char *artifact_name;
	int64_t artifact_size;
};

/*
 * Writes e canonically into out, replacing its contents: the very bytes
 * kt_entry_encode writes for the same object, without building one.
 * Returns KT_OK, KT_EINVAL (no kind, a NULL approver, a string that is
 * not UTF-8), KT_ETOOBIG (over KT_ENTRY_MAX or out's maximum) or
 * KT_ENOMEM.  out is left empty on failure.
 */
int kt_entry_sig_encode(
    const struct kt_entry_sig *e, struct kt_buf *out) KT_MUST_CHECK;

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
