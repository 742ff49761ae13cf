/*
 * Fuzzes the canonical-entry parser: whatever it accepts must encode back
 * to exactly the input.  An accepted entry shaped like a signature entry
 * must also come out byte for byte from the direct writer,
 * kt_entry_sig_encode.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define APPROVERS_MAX 16

/* Fills e from obj; 0 when obj has only the members e can hold. */
static int
sig_from_json(json_t *obj, struct kt_entry_sig *e, const char **appr)
{
	static const char *const names[] = { "alg", "digest", "key", "kind",
		"policy", "principal", "request", "sig", "time" };
	const char **slot[] = { &e->alg, &e->digest, &e->key, &e->kind,
		&e->policy, &e->principal, &e->request, &e->sig, &e->time };
	const char *k;
	json_t *v, *x;
	size_t i;

	memset(e, 0, sizeof(*e));
	json_object_foreach(obj, k, v)
	{
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strcmp(k, names[i]) == 0)
				break;
		}
		if (i < sizeof(names) / sizeof(names[0])) {
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) !=
				json_string_length(v))
				return -1;
			*slot[i] = json_string_value(v);
		} else if (strcmp(k, "approvers") == 0) {
			if (!json_is_array(v) ||
			    json_array_size(v) > APPROVERS_MAX)
				return -1;
			json_array_foreach(v, i, x)
			{
				if (!json_is_string(x) ||
				    strlen(json_string_value(x)) !=
					json_string_length(x))
					return -1;
				appr[i] = json_string_value(x);
			}
			e->approvers = appr;
			e->napprovers = json_array_size(v);
		} else if (strcmp(k, "artifact") == 0) {
			const char *ak;
			json_t *av;

			if (!json_is_object(v))
				return -1;
			e->has_artifact = 1;
			json_object_foreach(v, ak, av)
			{
				if (strcmp(ak, "name") == 0 &&
				    json_is_string(av) &&
				    strlen(json_string_value(av)) ==
					json_string_length(av)) {
					e->artifact_name =
					    json_string_value(av);
				} else if (strcmp(ak, "size") == 0 &&
				    json_is_integer(av)) {
					e->has_artifact_size = 1;
					e->artifact_size =
					    json_integer_value(av);
				} else {
					return -1;
				}
			}
		} else {
			return -1;
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *appr[APPROVERS_MAX];
	struct kt_entry_sig e;
	json_t *obj = NULL;
	struct kt_buf b;

	if (kt_entry_parse(data, size, &obj) != KT_OK)
		return 0;
	kt_buf_init(&b, KT_ENTRY_MAX);
	if (kt_entry_encode(obj, &b) != KT_OK || b.len != size ||
	    memcmp(b.p, data, size) != 0)
		abort();
	if (sig_from_json(obj, &e, appr) == 0 &&
	    (kt_entry_sig_encode(&e, &b) != KT_OK || b.len != size ||
		memcmp(b.p, data, size) != 0))
		abort();
	kt_buf_free(&b);
	json_decref(obj);
	return 0;
}
