/*
 * Strict configuration parsing: unknown fields are errors (a typo must not
 * silently fall back to a default), every error names its field.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "keytrail/encoding.h"
#include "store.h"

/* Config files are small; anything larger is a mistake. */
#define CONF_FILE_MAX (1024 * 1024)

static void conf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
conf_resolve(const char *base, const char *path, char *out, size_t outlen)
{
	int n;

	if (path[0] == '/')
		n = snprintf(out, outlen, "%s", path);
	else
		n = snprintf(out, outlen, "%s/%s", base, path);
	return n < 0 || (size_t)n >= outlen ? KT_ETOOBIG : KT_OK;
}

int
conf_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	size_t hl;

	if (colon == NULL || colon == s)
		return KT_EPARSE;
	hl = (size_t)(colon - s);
	if (hl >= hostlen)
		return KT_EPARSE;
	if (kt_parse_u64((const uint8_t *)colon + 1, strlen(colon + 1), 65535,
		&p) != KT_OK ||
	    p == 0)
		return KT_EPARSE;
	memcpy(host, s, hl);
	host[hl] = 0;
	*port = (uint16_t)p;
	return KT_OK;
}

/* Loads a bounded JSON file, rejecting duplicate keys. */
static json_t *
conf_load_json(const char *path, char *err, size_t errlen, int *rc)
{
	json_error_t jerr;
	json_t *j;
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		conf_err(err, errlen, "%s: %s", path, strerror(errno));
		*rc = errno == ENOENT ? KT_ENOTFOUND : KT_EIO;
		return NULL;
	}
	if ((buf = malloc(CONF_FILE_MAX + 1)) == NULL) {
		fclose(f);
		*rc = KT_ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, CONF_FILE_MAX + 1, f);
	fclose(f);
	if (n > CONF_FILE_MAX) {
		free(buf);
		conf_err(err, errlen, "%s: larger than %d bytes", path,
		    CONF_FILE_MAX);
		*rc = KT_ETOOBIG;
		return NULL;
	}
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (j == NULL || !json_is_object(j)) {
		conf_err(err, errlen, "%s:%d: %s", path, j ? 1 : jerr.line,
		    j ? "must be a JSON object" : jerr.text);
		json_decref(j);
		*rc = KT_EPARSE;
		return NULL;
	}
	return j;
}

/* Copies string field key of obj into out; absent keeps the default. */
static int
get_str(const json_t *obj, const char *prefix, const char *key, char *out,
    size_t outlen, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (v == NULL)
		return KT_OK;
	if (!json_is_string(v)) {
		conf_err(err, errlen, "%s%s: must be a string", prefix, key);
		return KT_EPARSE;
	}
	len = json_string_length(v);
	if (len == 0 || len >= outlen || memchr(json_string_value(v), 0, len)) {
		conf_err(err, errlen, "%s%s: must be 1 to %zu bytes", prefix,
		    key, outlen - 1);
		return KT_EPARSE;
	}
	memcpy(out, json_string_value(v), len + 1);
	return KT_OK;
}

static int
get_uint(const json_t *obj, const char *prefix, const char *key, uint64_t min,
    uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return KT_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max) {
		conf_err(err, errlen,
		    "%s%s: must be an integer from %llu to %llu", prefix, key,
		    (unsigned long long)min, (unsigned long long)max);
		return KT_EPARSE;
	}
	*out = (uint64_t)json_integer_value(v);
	return KT_OK;
}

/* Reads an optional boolean; *out is left alone when absent. */
static int
get_bool(const json_t *obj, const char *prefix, const char *key, int *out,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return KT_OK;
	if (!json_is_boolean(v)) {
		conf_err(
		    err, errlen, "%s%s: must be true or false", prefix, key);
		return KT_EPARSE;
	}
	*out = json_is_true(v);
	return KT_OK;
}

/* Refuses fields not in allowed (NULL-terminated). */
static int
check_fields(const json_t *obj, const char *prefix, const char *const *allowed,
    char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v)
	{
		int ok = 0;

		for (size_t i = 0; allowed[i] != NULL; i++)
			ok |= strcmp(k, allowed[i]) == 0;
		if (!ok) {
			conf_err(err, errlen, "%s%s: unknown field", prefix, k);
			return KT_EPARSE;
		}
	}
	return KT_OK;
}

int
conf_load(const char *data_dir, const char *path, struct conf *out, char *err,
    size_t errlen)
{
	static const char *const top[] = { "origin", "listen", "map_size_mib",
		"index_buffer_entries", "hsm", "batch", "limits", "policy_file",
		NULL };
	static const char *const hsmf[] = { "module", "softhsm_conf", "token",
		"pin_file", "log_key", "keys_token", "session_copies", NULL };
	static const char *const batchf[] = { "max_entries", "interval_us",
		NULL };
	static const char *const limitf[] = { "max_body", "max_headers",
		"max_connections", "timeout_s", NULL };
	struct conf *c;
	char file[CONF_PATH_MAX], listen[300] = "127.0.0.1:8080";
	char tmp[CONF_PATH_MAX];
	json_t *j = NULL, *sub;
	uint64_t v;
	int rc;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return KT_ENOMEM;
	rc = KT_ETOOBIG;
	if (snprintf(c->data_dir, sizeof(c->data_dir), "%s", data_dir) >=
	    (int)sizeof(c->data_dir))
		goto out;
	if (conf_resolve(
		data_dir, path ? path : CONF_FILE, file, sizeof(file)) != KT_OK)
		goto out;
	if ((j = conf_load_json(file, err, errlen, &rc)) == NULL)
		goto out;
	rc = KT_EPARSE;
	if (check_fields(j, "", top, err, errlen) != KT_OK)
		goto out;
	/* Defaults first, then the file. */
	c->map_size = UINT64_C(1) << 30;
	c->ixbuf_entries = STORE_IXBUF_ENTRIES_DEFAULT;
	c->hsm_session_copies = 1;
	snprintf(c->hsm_module, sizeof(c->hsm_module), "%s",
	    "/usr/lib/softhsm/libsofthsm2.so");
	snprintf(c->hsm_token, sizeof(c->hsm_token), "%s", "keytrail-log");
	snprintf(c->log_key_label, sizeof(c->log_key_label), "%s", "log");
	snprintf(tmp, sizeof(tmp), "%s", "hsm/pin");
	c->batch_max = 1024;
	c->batch_interval_us = 2000;
	c->max_body = 64 * 1024;
	c->max_headers = 8 * 1024;
	c->max_connections = 1024;
	c->timeout_s = 30;

	if (get_str(j, "", "origin", c->origin, sizeof(c->origin), err,
		errlen) != KT_OK ||
	    get_str(j, "", "listen", listen, sizeof(listen), err, errlen) !=
		KT_OK)
		goto out;
	if (c->origin[0] == 0) {
		conf_err(err, errlen, "origin: required");
		goto out;
	}
	if (strpbrk(c->origin, " \t\n+") != NULL) {
		conf_err(err, errlen,
		    "origin: must not contain spaces or '+' (it names the "
		    "log's note key)");
		goto out;
	}
	if (conf_parse_listen(listen, c->listen_host, sizeof(c->listen_host),
		&c->listen_port) != KT_OK) {
		conf_err(err, errlen, "listen: must be host:port");
		goto out;
	}
	v = c->map_size >> 20;
	if (get_uint(j, "", "map_size_mib", 1, UINT64_C(1) << 24, &v, err,
		errlen) != KT_OK)
		goto out;
	c->map_size = v << 20;
	if (get_uint(j, "", "index_buffer_entries", 1, UINT64_C(1) << 24,
		&c->ixbuf_entries, err, errlen) != KT_OK)
		goto out;

	if ((sub = json_object_get(j, "hsm")) != NULL) {
		char mod[CONF_PATH_MAX] = "", shc[CONF_PATH_MAX] = "";

		if (!json_is_object(sub) ||
		    check_fields(sub, "hsm.", hsmf, err, errlen) != KT_OK) {
			if (!json_is_object(sub))
				conf_err(err, errlen, "hsm: must be an object");
			goto out;
		}
		if (get_str(sub, "hsm.", "module", mod, sizeof(mod), err,
			errlen) != KT_OK ||
		    get_str(sub, "hsm.", "softhsm_conf", shc, sizeof(shc), err,
			errlen) != KT_OK ||
		    get_str(sub, "hsm.", "token", c->hsm_token,
			sizeof(c->hsm_token), err, errlen) != KT_OK ||
		    get_str(sub, "hsm.", "pin_file", tmp, sizeof(tmp), err,
			errlen) != KT_OK ||
		    get_str(sub, "hsm.", "log_key", c->log_key_label,
			sizeof(c->log_key_label), err, errlen) != KT_OK ||
		    get_str(sub, "hsm.", "keys_token", c->hsm_keys_token,
			sizeof(c->hsm_keys_token), err, errlen) != KT_OK ||
		    get_bool(sub, "hsm.", "session_copies",
			&c->hsm_session_copies, err, errlen) != KT_OK)
			goto out;
		if (mod[0] != 0 &&
		    conf_resolve(data_dir, mod, c->hsm_module,
			sizeof(c->hsm_module)) != KT_OK)
			goto out;
		if (shc[0] != 0 &&
		    conf_resolve(data_dir, shc, c->hsm_softhsm_conf,
			sizeof(c->hsm_softhsm_conf)) != KT_OK)
			goto out;
	}
	if (conf_resolve(data_dir, tmp, c->hsm_pin_file,
		sizeof(c->hsm_pin_file)) != KT_OK)
		goto out;

	if ((sub = json_object_get(j, "batch")) != NULL) {
		if (!json_is_object(sub) ||
		    check_fields(sub, "batch.", batchf, err, errlen) != KT_OK) {
			if (!json_is_object(sub))
				conf_err(
				    err, errlen, "batch: must be an object");
			goto out;
		}
		v = c->batch_max;
		if (get_uint(sub, "batch.", "max_entries", 1, 65536, &v, err,
			errlen) != KT_OK)
			goto out;
		c->batch_max = (unsigned)v;
		v = c->batch_interval_us;
		if (get_uint(sub, "batch.", "interval_us", 0, 1000000, &v, err,
			errlen) != KT_OK)
			goto out;
		c->batch_interval_us = (unsigned)v;
	}
	if ((sub = json_object_get(j, "limits")) != NULL) {
		if (!json_is_object(sub) ||
		    check_fields(sub, "limits.", limitf, err, errlen) !=
			KT_OK) {
			if (!json_is_object(sub))
				conf_err(
				    err, errlen, "limits: must be an object");
			goto out;
		}
		v = c->max_body;
		if (get_uint(sub, "limits.", "max_body", 1024, 1 << 24, &v, err,
			errlen) != KT_OK)
			goto out;
		c->max_body = (size_t)v;
		v = c->max_headers;
		if (get_uint(sub, "limits.", "max_headers", 1024, 1 << 20, &v,
			err, errlen) != KT_OK)
			goto out;
		c->max_headers = (size_t)v;
		v = c->max_connections;
		if (get_uint(sub, "limits.", "max_connections", 1, 1000000, &v,
			err, errlen) != KT_OK)
			goto out;
		c->max_connections = (unsigned)v;
		v = c->timeout_s;
		if (get_uint(sub, "limits.", "timeout_s", 1, 3600, &v, err,
			errlen) != KT_OK)
			goto out;
		c->timeout_s = (unsigned)v;
	}
	snprintf(tmp, sizeof(tmp), "%s", CONF_POLICY_FILE);
	if (get_str(j, "", "policy_file", tmp, sizeof(tmp), err, errlen) !=
	    KT_OK)
		goto out;
	if (conf_resolve(
		data_dir, tmp, c->policy_file, sizeof(c->policy_file)) != KT_OK)
		goto out;
	memcpy(out, c, sizeof(*c));
	rc = KT_OK;
out:
	if (rc == KT_ETOOBIG && err[0] == 0)
		conf_err(err, errlen, "a path is too long");
	json_decref(j);
	free(c);
	return rc;
}
