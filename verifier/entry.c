/*
 * Canonical log entries.  jansson does the JSON; this file only pins down
 * the one encoding keytrail uses (sorted keys, compact separators, no
 * escaping beyond what JSON requires) and checks that bytes received are
 * exactly that encoding.
 */
#include <string.h>

#include "keytrail/entry.h"

/* Flags of the one canonical encoding. */
#define ENTRY_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* 1 when v holds only allowed types within depth. */
static int
entry_value_ok(const json_t *v, int depth)
{
	const char *k;
	json_t *x;
	size_t i;

	if (depth > KT_ENTRY_DEPTH_MAX)
		return 0;
	switch (json_typeof(v)) {
	case JSON_STRING:
	case JSON_INTEGER:
		return 1;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, x)
		{
			if (!entry_value_ok(x, depth + 1))
				return 0;
		}
		return 1;
	case JSON_ARRAY:
		json_array_foreach(v, i, x)
		{
			if (!entry_value_ok(x, depth + 1))
				return 0;
		}
		return 1;
	default:
		return 0;
	}
}

static int
entry_shape_ok(const json_t *obj)
{
	return json_is_object(obj) &&
	    json_is_string(json_object_get(obj, "kind")) &&
	    entry_value_ok(obj, 1);
}

int
kt_entry_encode(const json_t *obj, struct kt_buf *out)
{
	size_t need;
	uint8_t *dst;
	int rc;

	kt_buf_reset(out);
	if (!entry_shape_ok(obj))
		return KT_EINVAL;
	need = json_dumpb(obj, NULL, 0, ENTRY_DUMP_FLAGS);
	if (need == 0)
		return KT_EINVAL;
	if (need > KT_ENTRY_MAX || need > out->max)
		return KT_ETOOBIG;
	if ((rc = kt_buf_extend(out, need, &dst)) != KT_OK)
		return rc;
	if (json_dumpb(obj, (char *)dst, need, ENTRY_DUMP_FLAGS) != need) {
		kt_buf_reset(out);
		return KT_EINTERNAL;
	}
	return KT_OK;
}

int
kt_entry_parse(const uint8_t *p, size_t len, json_t **out)
{
	json_error_t err;
	json_t *obj;
	struct kt_buf again;
	int rc = KT_EPARSE;

	if (len > KT_ENTRY_MAX)
		return KT_ETOOBIG;
	obj = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &err);
	if (obj == NULL)
		return KT_EPARSE;
	kt_buf_init(&again, KT_ENTRY_MAX);
	if (!entry_shape_ok(obj))
		goto out;
	if (kt_entry_encode(obj, &again) != KT_OK)
		goto out;
	if (again.len != len || memcmp(again.p, p, len) != 0)
		goto out;
	rc = KT_OK;
out:
	kt_buf_free(&again);
	if (rc == KT_OK && out != NULL)
		*out = obj;
	else
		json_decref(obj);
	return rc;
}
