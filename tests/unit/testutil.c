#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keytrail/encoding.h"
#include "keytrail/note.h"

const char *
tu_vectors_dir(void)
{
	const char *d = getenv("KT_VECTORS");
	struct stat st;

	if (d == NULL || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
		fail_msg("vectors directory missing (KT_VECTORS=%s)",
		    d ? d : "(unset)");
	return d;
}

uint8_t *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((p = malloc((size_t)n + 1)) == NULL)
		goto out;
	if (fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
		goto out;
	}
	p[n] = 0;
	*len = (size_t)n;
out:
	fclose(f);
	return p;
}

uint8_t *
tu_read_vector_file(const char *rel, size_t *len)
{
	char path[4096];
	uint8_t *p;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", tu_vectors_dir(), rel);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	p = tu_read_file(path, len);
	if (p == NULL)
		fail_msg("cannot read vector file %s", path);
	return p;
}

json_t *
tu_load_json(const char *rel)
{
	char path[4096];
	json_error_t err;
	json_t *j;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", tu_vectors_dir(), rel);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	/* JSON_ALLOW_NUL: some note vectors hold a NUL inside a string. */
	j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (j == NULL)
		fail_msg(
		    "cannot load %s: %s (line %d)", path, err.text, err.line);
	return j;
}

const char *
tu_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("vector field %s missing or not a string", key);
	return json_string_value(v);
}

uint64_t
tu_u64(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		fail_msg("vector field %s missing or not an integer", key);
	return (uint64_t)json_integer_value(v);
}

void
tu_hash_hex(const char *hex, struct kt_hash *out)
{
	assert_int_equal(
	    kt_hex_decode_exact(hex, strlen(hex), out->b, 32), KT_OK);
}

uint8_t *
tu_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex);
	uint8_t *p = malloc(n / 2 + 1);

	assert_non_null(p);
	assert_int_equal(n % 2, 0);
	assert_int_equal(kt_hex_decode_exact(hex, n, p, n / 2), KT_OK);
	*len = n / 2;
	return p;
}

uint8_t *
tu_b64(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *p = malloc(KT_B64_DECMAX(n) + 1);

	assert_non_null(p);
	assert_int_equal(kt_b64_decode(s, n, p, KT_B64_DECMAX(n), len), KT_OK);
	return p;
}

void
tu_vkey(const char *s, struct kt_note_vkey *k)
{
	assert_int_equal(kt_note_vkey_parse(s, strlen(s), k), KT_OK);
}
