/*
 * Canonical log entries.  jansson does the JSON; this file only pins down
 * the one encoding keytrail uses (sorted keys, compact separators, no
 * escaping beyond what JSON requires) and checks that bytes received are
 * exactly that encoding.
 */
#include <stdio.h>
#include <string.h>

#include "keytrail/encoding.h"
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

/*
 * The direct writer of signature entries.  Its output must be byte for
 * byte what kt_entry_encode makes of the same object; test_entry checks
 * that on generated entries, including every escaped byte.
 */

/* Appends ,"name": (no comma before the first member). */
static int
entry_key(struct kt_buf *b, int *first, const char *name)
{
	int rc;

	if ((!*first && (rc = kt_buf_append_byte(b, ',')) != KT_OK) ||
	    (rc = kt_buf_append_byte(b, '"')) != KT_OK ||
	    (rc = kt_buf_append_str(b, name)) != KT_OK)
		return rc;
	*first = 0;
	return kt_buf_append(b, "\":", 2);
}

/* Appends the member name: v, a string, unless v is NULL. */
static int
entry_member(struct kt_buf *b, int *first, const char *name, const char *v)
{
	int rc;

	if (v == NULL)
		return KT_OK;
	if ((rc = entry_key(b, first, name)) != KT_OK)
		return rc;
	return kt_json_quote(b, v, strlen(v));
}

/* The members of e from "alg" to "artifact", in sorted order. */
static int
entry_sig_head(const struct kt_entry_sig *e, struct kt_buf *b, int *first)
{
	char num[24];
	int rc, inner = 1;

	if ((rc = entry_member(b, first, "alg", e->alg)) != KT_OK)
		return rc;
	if (e->approvers != NULL) {
		if ((rc = entry_key(b, first, "approvers")) != KT_OK ||
		    (rc = kt_buf_append_byte(b, '[')) != KT_OK)
			return rc;
		for (size_t i = 0; i < e->napprovers; i++) {
			if (e->approvers[i] == NULL)
				return KT_EINVAL;
			if ((i > 0 &&
				(rc = kt_buf_append_byte(b, ',')) != KT_OK) ||
			    (rc = kt_json_quote(b, e->approvers[i],
				 strlen(e->approvers[i]))) != KT_OK)
				return rc;
		}
		if ((rc = kt_buf_append_byte(b, ']')) != KT_OK)
			return rc;
	}
	if (!e->has_artifact)
		return KT_OK;
	if ((rc = entry_key(b, first, "artifact")) != KT_OK ||
	    (rc = kt_buf_append_byte(b, '{')) != KT_OK ||
	    (rc = entry_member(b, &inner, "name", e->artifact_name)) != KT_OK)
		return rc;
	if (e->has_artifact_size) {
		snprintf(num, sizeof(num), "%lld", (long long)e->artifact_size);
		if ((rc = entry_key(b, &inner, "size")) != KT_OK ||
		    (rc = kt_buf_append_str(b, num)) != KT_OK)
			return rc;
	}
	return kt_buf_append_byte(b, '}');
}

int
kt_entry_sig_encode(const struct kt_entry_sig *e, struct kt_buf *out)
{
	int first = 1, rc;

	kt_buf_reset(out);
	if (e == NULL || e->kind == NULL)
		return KT_EINVAL;
	if ((rc = kt_buf_append_byte(out, '{')) != KT_OK ||
	    (rc = entry_sig_head(e, out, &first)) != KT_OK ||
	    (rc = entry_member(out, &first, "digest", e->digest)) != KT_OK ||
	    (rc = entry_member(out, &first, "key", e->key)) != KT_OK ||
	    (rc = entry_member(out, &first, "kind", e->kind)) != KT_OK ||
	    (rc = entry_member(out, &first, "policy", e->policy)) != KT_OK ||
	    (rc = entry_member(out, &first, "principal", e->principal)) !=
		KT_OK ||
	    (rc = entry_member(out, &first, "request", e->request)) != KT_OK ||
	    (rc = entry_member(out, &first, "sig", e->sig)) != KT_OK ||
	    (rc = entry_member(out, &first, "time", e->time)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '}')) != KT_OK) {
		kt_buf_reset(out);
		return rc;
	}
	if (out->len > KT_ENTRY_MAX) {
		kt_buf_reset(out);
		return KT_ETOOBIG;
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
