/*
 * keytrail-logd: the read API handlers (DESIGN.md section 5): C2SP tiles
 * and checkpoint, entries, proofs, bundles, search, keys, health and
 * metrics.  Each takes one short store read session and replies once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/merkle.h"
#include "keytrail/tile.h"
#include "keytrail/tlogproof.h"
#include "log.h"
#include "tilecache.h"

/* Page size limits for /v1/search. */
#define API_SEARCH_DEFAULT 100
#define API_SEARCH_MAX 1000

static const char *const no_params[] = { NULL };

void
api_get_checkpoint(struct http_req *r, void *arg)
{
	struct api *a = arg;
	struct store_rd *rd;
	struct kt_buf note;
	int rc;

	if ((rd = api_rd(a, r)) == NULL)
		return;
	kt_buf_init(&note, KT_NOTE_MAX);
	rc = store_rd_checkpoint(rd, &note);
	store_rd_end(rd);
	if (rc != KT_OK)
		api_reply_kt(r, rc, "no checkpoint");
	else
		http_reply_bytes(r, 200, "text/plain; charset=utf-8",
		    "no-cache", note.p, note.len);
	kt_buf_free(&note);
}

/*
 * Tiles and entry bundles.  The answer for a (level, index, width) never
 * changes, so it is cached (tilecache.c) and served without a copy.
 */
void
api_get_tile(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *path = http_req_path(r) + 1;
	struct tilecache_key key;
	struct store_rd *rd;
	struct kt_tile t;
	struct kt_buf data, gz;
	struct blob *b;
	const char *cache;
	int rc, bundle;

	if (kt_tile_parse(path, strlen(path), &t) != KT_OK) {
		http_reply_error(r, 404, "not_found", "not a tile path");
		return;
	}
	bundle = t.level == KT_TILE_ENTRIES;
	/*
	 * C2SP tlog-tiles: full tiles never change; a partial tile of a given
	 * width never changes either, but it is not kept forever, so it gets
	 * a short lifetime.
	 */
	cache = t.width == KT_TILE_WIDTH ? "public, max-age=31536000, immutable"
					 : "public, max-age=60";
	memset(&key, 0, sizeof(key));
	key.level = t.level;
	key.index = t.index;
	key.width = t.width;
	key.gzip = bundle && http_req_accepts_gzip(r);
	if ((b = tilecache_get(a->tiles, &key)) != NULL) {
		http_reply_blob(r, 200, "application/octet-stream", cache,
		    bundle ? (key.gzip ? "gzip" : "") : NULL, b);
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	kt_buf_init(&data, KT_ENTRY_BUNDLE_MAX);
	kt_buf_init(&gz, 2 * KT_ENTRY_BUNDLE_MAX);
	if (bundle)
		rc = store_rd_bundle(rd, t.index, t.width, &data);
	else
		rc = store_rd_tile(rd, t.level, t.index, t.width, &data);
	store_rd_end(rd);
	if (rc != KT_OK) {
		api_reply_kt(r, rc == KT_EINVAL ? KT_ENOTFOUND : rc,
		    "tile not in the tree");
		goto out;
	}
	if (key.gzip && http_gzip(data.p, data.len, &gz) != KT_OK)
		key.gzip = 0;
	b = key.gzip ? blob_new(gz.p, gz.len) : blob_new(data.p, data.len);
	if (b == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	tilecache_put(a->tiles, &key, b);
	http_reply_blob(r, 200, "application/octet-stream", cache,
	    bundle ? (key.gzip ? "gzip" : "") : NULL, b);
out:
	kt_buf_free(&data);
	kt_buf_free(&gz);
}

void
api_get_log(struct http_req *r, void *arg)
{
	struct api *a = arg;
	struct store_rd *rd;
	uint64_t size;

	if (http_req_query_unknown(r, no_params)) {
		http_reply_error(r, 400, "bad_request", "no parameters here");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	size = store_rd_size(rd);
	store_rd_end(rd);
	http_reply_json(r, 200,
	    json_pack("{s:s, s:s, s:I}", "origin", a->conf->origin, "vkey",
		a->vkey_str, "size", (json_int_t)size));
}

/* Entry JSON for /v1/entries/<i>: exact bytes in base64 plus parsed. */
static json_t *
api_entry_json(uint64_t index, const struct kt_buf *e)
{
	struct kt_buf b64;
	struct kt_hash leaf;
	char hex[65];
	json_t *j, *parsed;

	kt_buf_init(&b64, 2 * KT_ENTRY_MAX);
	if (kt_b64_append(&b64, e->p, e->len) != KT_OK)
		return NULL;
	kt_leaf_hash(e->p, e->len, &leaf);
	kt_hex_encode(leaf.b, 32, hex);
	parsed = json_loadb((const char *)e->p, e->len, 0, NULL);
	j = json_pack("{s:I, s:s, s:s%, s:o*}", "index", (json_int_t)index,
	    "leaf_hash", hex, "entry_b64", (const char *)b64.p, b64.len,
	    "entry", parsed);
	kt_buf_free(&b64);
	return j;
}

void
api_get_entry(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *s = http_req_path(r) + strlen("/v1/entries/");
	struct store_rd *rd;
	struct kt_buf e;
	uint64_t index;
	int rc;

	if (http_req_method(r) == HTTP_POST) {
		http_reply_error(r, 404, "not_found", "no such path");
		return;
	}
	if (api_u64(s, &index) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "index: must be a canonical decimal");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	kt_buf_init(&e, KT_ENTRY_MAX);
	rc = store_rd_entry(rd, index, &e);
	store_rd_end(rd);
	if (rc != KT_OK)
		api_reply_kt(r, rc, "no entry at this index");
	else
		http_reply_json(r, 200, api_entry_json(index, &e));
	kt_buf_free(&e);
}

/* Resolves the size parameter: absent means the latest checkpoint. */
static int
api_size_param(
    struct http_req *r, const char *name, uint64_t latest, uint64_t *size)
{
	const char *s = http_req_query(r, name);
	char detail[128];

	if (s == NULL) {
		*size = latest;
		return 0;
	}
	if (api_u64(s, size) != KT_OK) {
		snprintf(detail, sizeof(detail),
		    "%s: must be a canonical decimal", name);
		http_reply_error(r, 400, "bad_request", detail);
		return -1;
	}
	if (*size > latest) {
		snprintf(detail, sizeof(detail),
		    "%s: beyond the tree size %llu", name,
		    (unsigned long long)latest);
		http_reply_error(r, 400, "bad_request", detail);
		return -1;
	}
	return 0;
}

static json_t *
api_proof_array(const struct kt_hash *p, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		char b64[KT_B64_ENCLEN(32) + 1];

		if (kt_b64_encode(p[i].b, 32, b64, sizeof(b64)) < 0 ||
		    json_array_append_new(arr, json_string(b64)) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

void
api_get_inclusion(struct http_req *r, void *arg)
{
	static const char *const params[] = { "index", "hash", "size", NULL };
	struct api *a = arg;
	const char *idx = http_req_query(r, "index");
	const char *hash = http_req_query(r, "hash");
	struct kt_hash proof[KT_PROOF_MAX], leaf;
	struct store_rd *rd;
	uint64_t index, size;
	size_t np;
	int rc;

	if (http_req_query_unknown(r, params) ||
	    (idx == NULL) == (hash == NULL)) {
		http_reply_error(r, 400, "bad_request",
		    "give exactly one of index or hash, and optionally size");
		return;
	}
	if (idx != NULL && api_u64(idx, &index) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "index: must be a canonical decimal");
		return;
	}
	if (hash != NULL &&
	    kt_hex_decode_exact(hash, strlen(hash), leaf.b, 32) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "hash: must be 64 lowercase hex digits");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	if (api_size_param(r, "size", store_rd_size(rd), &size) != 0)
		goto out;
	if (hash != NULL) {
		if (store_rd_find_leaf(rd, &leaf, &index) != KT_OK) {
			http_reply_error(r, 404, "not_found",
			    "hash: no entry has this leaf hash");
			goto out;
		}
	}
	if (index >= size) {
		http_reply_error(
		    r, 400, "bad_request", "index: must be below size");
		goto out;
	}
	rc = kt_prove_inclusion(
	    size, index, store_rd_read_hashes, rd, proof, &np);
	if (rc != KT_OK) {
		api_reply_kt(r, rc, "proof unavailable");
		goto out;
	}
	http_reply_json(r, 200,
	    json_pack("{s:I, s:I, s:o}", "index", (json_int_t)index, "size",
		(json_int_t)size, "proof", api_proof_array(proof, np)));
out:
	store_rd_end(rd);
}

void
api_get_consistency(struct http_req *r, void *arg)
{
	static const char *const params[] = { "old", "new", NULL };
	struct api *a = arg;
	struct kt_hash proof[KT_PROOF_MAX];
	struct store_rd *rd;
	uint64_t old, nsize;
	size_t np;
	int rc;

	if (http_req_query_unknown(r, params) ||
	    api_u64(http_req_query(r, "old"), &old) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "old: required canonical decimal (and optionally new)");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	if (api_size_param(r, "new", store_rd_size(rd), &nsize) != 0)
		goto out;
	if (old == 0 || old > nsize) {
		http_reply_error(
		    r, 400, "bad_request", "old: must be from 1 to new");
		goto out;
	}
	rc = kt_prove_consistency(
	    nsize, old, store_rd_read_hashes, rd, proof, &np);
	if (rc != KT_OK) {
		api_reply_kt(r, rc, "proof unavailable");
		goto out;
	}
	http_reply_json(r, 200,
	    json_pack("{s:I, s:I, s:o}", "old", (json_int_t)old, "new",
		(json_int_t)nsize, "proof", api_proof_array(proof, np)));
out:
	store_rd_end(rd);
}

void
api_get_bundle(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *s = http_req_path(r) + strlen("/v1/bundle/");
	struct kt_buf note, entry, proof;
	struct store_rd *rd;
	uint64_t index, size;
	int rc;

	if (api_u64(s, &index) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "index: must be a canonical decimal");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&entry, KT_ENTRY_MAX);
	kt_buf_init(&proof, KT_TLOGPROOF_MAX);
	rc = store_rd_checkpoint(rd, &note);
	size = store_rd_size(rd);
	store_rd_end(rd);
	if (rc == KT_OK && index >= size)
		rc = KT_ENOTFOUND;
	if (rc == KT_OK)
		rc = api_proof(
		    a, index, note.p, note.len, size, NULL, &entry, &proof);
	if (rc != KT_OK)
		api_reply_kt(r, rc, "no entry at this index");
	else
		http_reply_bytes(r, 200, "text/plain; charset=utf-8",
		    "no-cache", proof.p, proof.len);
	kt_buf_free(&note);
	kt_buf_free(&entry);
	kt_buf_free(&proof);
}

void
api_get_search(struct http_req *r, void *arg)
{
	static const char *const params[] = { "key", "digest", "artifact",
		"after", "limit", NULL };
	struct api *a = arg;
	const char *names[] = { "key", "digest", "artifact" };
	const enum store_index which[] = { STORE_BY_KEY, STORE_BY_DIGEST,
		STORE_BY_ARTIFACT };
	const char *value = NULL, *s;
	uint64_t after = UINT64_MAX, limit = API_SEARCH_DEFAULT, *out;
	struct store_rd *rd;
	size_t n = 0, k = 0;
	int more = 0, rc, found = 0;
	json_t *arr;

	if (http_req_query_unknown(r, params)) {
		http_reply_error(r, 400, "bad_request", "unknown parameter");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		if ((s = http_req_query(r, names[i])) != NULL) {
			value = s;
			k = i;
			found++;
		}
	}
	if (found != 1 || value[0] == 0 || strlen(value) > 255) {
		http_reply_error(r, 400, "bad_request",
		    "give exactly one of key, digest or artifact (1-255 "
		    "bytes)");
		return;
	}
	if ((s = http_req_query(r, "after")) != NULL &&
	    api_u64(s, &after) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "after: must be a canonical decimal");
		return;
	}
	if ((s = http_req_query(r, "limit")) != NULL &&
	    (api_u64(s, &limit) != KT_OK || limit == 0 ||
		limit > API_SEARCH_MAX)) {
		http_reply_error(
		    r, 400, "bad_request", "limit: must be from 1 to 1000");
		return;
	}
	if ((out = calloc((size_t)limit, sizeof(*out))) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL) {
		free(out);
		return;
	}
	if (which[k] == STORE_BY_ARTIFACT) {
		rc = store_rd_search(rd, which[k], (const uint8_t *)value,
		    strlen(value), after, out, (size_t)limit, &n, &more);
	} else {
		uint8_t raw[32];

		/* Key IDs and digests are indexed as their 32 raw bytes. */
		rc = kt_hex_decode_exact(value, strlen(value), raw, 32);
		if (rc == KT_OK)
			rc = store_rd_search(rd, which[k], raw, 32, after, out,
			    (size_t)limit, &n, &more);
	}
	store_rd_end(rd);
	if (rc != KT_OK) {
		free(out);
		api_reply_kt(r, rc,
		    rc == KT_EPARSE ? "key and digest must be 64 lowercase hex "
				      "digits"
				    : "search failed");
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		json_array_append_new(arr, json_integer((json_int_t)out[i]));
	http_reply_json(r, 200,
	    json_pack("{s:o, s:o}", "entries", arr, "next",
		more && n > 0 ? json_integer((json_int_t)out[n - 1])
			      : json_null()));
	free(out);
}

static int
api_keys_cb(void *ctx, struct kt_bytes key, struct kt_bytes val)
{
	json_t *arr = ctx, *rec;

	rec = json_loadb((const char *)val.p, val.len, 0, NULL);
	if (rec == NULL)
		return KT_OK;
	json_object_set_new(
	    rec, "key", json_stringn((const char *)key.p, key.len));
	json_array_append_new(arr, rec);
	return KT_OK;
}

void
api_get_keys(struct http_req *r, void *arg)
{
	struct api *a = arg;
	struct store_rd *rd;
	json_t *arr = json_array();
	int rc;

	if (arr == NULL || (rd = api_rd(a, r)) == NULL) {
		if (arr == NULL)
			http_reply_error(r, 500, "internal", "out of memory");
		json_decref(arr);
		return;
	}
	rc = store_rd_iter(rd, STORE_DB_KEYS, api_keys_cb, arr);
	store_rd_end(rd);
	if (rc != KT_OK) {
		json_decref(arr);
		api_reply_kt(r, rc, "keys unavailable");
		return;
	}
	http_reply_json(r, 200, json_pack("{s:o}", "keys", arr));
}

void
api_get_healthz(struct http_req *r, void *arg)
{
	struct api *a = arg;
	struct store_rd *rd;
	uint64_t size;

	if ((rd = api_rd(a, r)) == NULL)
		return;
	size = store_rd_size(rd);
	store_rd_end(rd);
	http_reply_json(r, a->shutting_down ? 503 : 200,
	    json_pack("{s:s, s:I}", "status",
		a->shutting_down ? "stopping" : "ok", "size",
		(json_int_t)size));
}

/* Appends one printf-formatted piece of the metrics page. */
static void metric(struct kt_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metric(struct kt_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A page cut short is better than none; the buffer is 1 MiB. */
	if (n > 0 && (size_t)n < sizeof(line) &&
	    kt_buf_append(b, line, (size_t)n) != KT_OK)
		return;
}

/*
 * The HSM counters of the checkpoint key's token (token="log") and of the
 * signing keys' (token="keys"), a line per open token.
 */
static void
metrics_hsm(struct kt_buf *b, struct api *a)
{
	static const char *const tokname[2] = { "log", "keys" };
	static const struct {
		const char *name, *type;
	} m[] = {
		{ "keytrail_hsm_signatures_total", "counter" },
		{ "keytrail_hsm_sign_failures_total", "counter" },
		{ "keytrail_hsm_reconnects_total", "counter" },
		{ "keytrail_hsm_sessions_open", "gauge" },
		{ "keytrail_hsm_session_copies_total", "counter" },
		{ "keytrail_hsm_session_copies_refused", "gauge" },
	};
	struct hsm *const tokens[2] = { a->log_hsm, a->keys_hsm };
	uint64_t v[sizeof(m) / sizeof(m[0])][2];

	memset(v, 0, sizeof(v));
	for (int t = 0; t < 2; t++) {
		struct hsm_stats hs;

		if (tokens[t] == NULL)
			continue;
		hsm_stats(tokens[t], &hs);
		v[0][t] = hs.signs;
		v[1][t] = hs.sign_failures;
		v[2][t] = hs.reconnects;
		v[3][t] = hs.sessions_open;
		v[4][t] = hs.copies;
		v[5][t] = (uint64_t)hs.copies_refused;
	}
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		metric(b, "# TYPE %s %s\n", m[i].name, m[i].type);
		for (int t = 0; t < 2; t++)
			if (tokens[t] != NULL)
				metric(b, "%s{token=\"%s\"} %llu\n", m[i].name,
				    tokname[t], (unsigned long long)v[i][t]);
	}
}

void
api_get_metrics(struct http_req *r, void *arg)
{
	static const char *const le[] = { "0.001", "0.002", "0.005", "0.01",
		"0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "+Inf" };
	struct api *a = arg;
	struct seq_stats ss;
	struct http_stats hs;
	struct store_stats st;
	struct kt_buf b;
	uint64_t cum = 0;

	seq_get_stats(a->seq, &ss);
	http_get_stats(a->http, &hs);
	if (store_stats(a->st, &st) != KT_OK)
		memset(&st, 0, sizeof(st));
	kt_buf_init(&b, 1 << 20);
	metric(&b, "# TYPE keytrail_tree_size gauge\nkeytrail_tree_size %llu\n",
	    (unsigned long long)st.entries);
	metric(&b,
	    "# TYPE keytrail_entries_appended_total counter\n"
	    "keytrail_entries_appended_total %llu\n",
	    (unsigned long long)(ss.entries - ss.duplicates));
	metric(&b,
	    "# TYPE keytrail_entries_duplicate_total counter\n"
	    "keytrail_entries_duplicate_total %llu\n",
	    (unsigned long long)ss.duplicates);
	metric(&b,
	    "# TYPE keytrail_entries_failed_total counter\n"
	    "keytrail_entries_failed_total %llu\n",
	    (unsigned long long)ss.failures);
	metric(&b,
	    "# TYPE keytrail_batches_total counter\n"
	    "keytrail_batches_total %llu\n",
	    (unsigned long long)ss.batches);
	metric(&b,
	    "# TYPE keytrail_queue_length gauge\n"
	    "keytrail_queue_length %llu\n",
	    (unsigned long long)ss.queued);
	metric(&b,
	    "# TYPE keytrail_commit_seconds_total counter\n"
	    "keytrail_commit_seconds_total %.6f\n",
	    ss.commit_seconds);
	metric(&b,
	    "# TYPE keytrail_batch_step_seconds_total counter\n"
	    "keytrail_batch_step_seconds_total{step=\"add\"} %.6f\n"
	    "keytrail_batch_step_seconds_total{step=\"index\"} %.6f\n"
	    "keytrail_batch_step_seconds_total{step=\"checkpoint\"} %.6f\n"
	    "keytrail_batch_step_seconds_total{step=\"commit\"} %.6f\n",
	    ss.steps.add, ss.steps.index, ss.steps.sign, ss.steps.commit);
	metric(&b, "# TYPE keytrail_batch_size histogram\n");
	for (int i = 0; i < 8; i++) {
		static const char *const bl[] = { "1", "7", "63", "511", "4095",
			"32767", "262143", "+Inf" };

		cum += ss.batch_hist[i];
		metric(&b, "keytrail_batch_size_bucket{le=\"%s\"} %llu\n",
		    bl[i], (unsigned long long)cum);
	}
	metric(&b, "keytrail_batch_size_count %llu\n", (unsigned long long)cum);
	metric(&b, "# TYPE keytrail_write_latency_seconds histogram\n");
	cum = 0;
	for (int i = 0; i < 12; i++) {
		cum += a->latency_hist[i];
		metric(&b,
		    "keytrail_write_latency_seconds_bucket{le=\"%s\"} %llu\n",
		    le[i], (unsigned long long)cum);
	}
	metric(&b, "keytrail_write_latency_seconds_sum %.6f\n", a->latency_sum);
	metric(&b, "keytrail_write_latency_seconds_count %llu\n",
	    (unsigned long long)a->latency_count);
	metric(&b,
	    "# TYPE keytrail_signatures_total counter\n"
	    "keytrail_signatures_total %llu\n",
	    (unsigned long long)a->signatures);
	metric(&b, "# TYPE keytrail_sign_denials_total counter\n");
	for (size_t i = 0; i < sizeof(a->denials) / sizeof(a->denials[0]);
	     i++) {
		if (a->denials[i] != 0)
			metric(&b,
			    "keytrail_sign_denials_total{reason=\"%s\"} "
			    "%llu\n",
			    policy_reason_name((enum policy_reason)i),
			    (unsigned long long)a->denials[i]);
	}
	metric(&b,
	    "# TYPE keytrail_auth_failures_total counter\n"
	    "keytrail_auth_failures_total %llu\n",
	    (unsigned long long)a->auth_failures);
	metric(&b,
	    "# TYPE keytrail_storage_bytes gauge\n"
	    "keytrail_storage_bytes{kind=\"used\"} %llu\n"
	    "keytrail_storage_bytes{kind=\"map\"} %llu\n",
	    (unsigned long long)st.used_bytes, (unsigned long long)st.map_size);
	metric(&b,
	    "# TYPE keytrail_index_buffer_entries gauge\n"
	    "keytrail_index_buffer_entries %llu\n"
	    "# TYPE keytrail_index_buffer_merging gauge\n"
	    "keytrail_index_buffer_merging %d\n",
	    (unsigned long long)st.ixbuf_entries, st.ixbuf_merging);
	metric(&b,
	    "# TYPE keytrail_index_tables gauge\n"
	    "keytrail_index_tables %u\n"
	    "# TYPE keytrail_index_table_levels gauge\n"
	    "keytrail_index_table_levels %u\n"
	    "# TYPE keytrail_index_table_merges gauge\n"
	    "keytrail_index_table_merges %u\n"
	    "# TYPE keytrail_index_table_level_max gauge\n"
	    "keytrail_index_table_level_max %u\n",
	    st.ixtables, st.ixlevels, st.ixmerges, st.ixlevel_max);
	metric(&b,
	    "# TYPE keytrail_index_table_probes_total counter\n"
	    "keytrail_index_table_probes_total{result=\"read\"} %llu\n"
	    "keytrail_index_table_probes_total{result=\"skipped\"} %llu\n",
	    (unsigned long long)st.probes_read,
	    (unsigned long long)st.probes_skipped);
	metric(&b,
	    "# TYPE keytrail_index_slices_total counter\n"
	    "keytrail_index_slices_total %llu\n"
	    "# TYPE keytrail_index_slice_rows_total counter\n"
	    "keytrail_index_slice_rows_total %llu\n",
	    (unsigned long long)st.slices, (unsigned long long)st.slice_rows);
	metric(&b, "# TYPE keytrail_http_responses_total counter\n");
	for (int s = 100; s < 600; s++) {
		if (hs.by_status[s] != 0)
			metric(&b,
			    "keytrail_http_responses_total{status=\"%d\"} "
			    "%llu\n",
			    s, (unsigned long long)hs.by_status[s]);
	}
	metrics_hsm(&b, a);
	http_reply_bytes(
	    r, 200, "text/plain; version=0.0.4", "no-store", b.p, b.len);
	kt_buf_free(&b);
}
