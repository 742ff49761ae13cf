/*
 * HTTP API handlers.  Every handler replies exactly once through http.c.
 * Reads take one short store read session; writes go to the sequencer and
 * reply from its completion callback, with the inclusion proof against the
 * checkpoint that covers the entry.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "api.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/merkle.h"
#include "keytrail/sig.h"
#include "keytrail/tile.h"
#include "keytrail/tlogproof.h"
#include "keys.h"
#include "log.h"
#include "sign.h"
#include "tilecache.h"

/* Longest artifact name logged. */
#define API_ARTIFACT_NAME_MAX 255

/* ---- small helpers ---------------------------------------------------- */

int64_t
api_now(struct api *a)
{
	int64_t now = (int64_t)time(NULL);

#ifdef KT_TEST_HOOKS
	/*
	 * Tests move the policy's clock (allowed hours, validity windows,
	 * rate limits, request expiry) with a file holding an offset in
	 * seconds.  Builds without KT_TEST_HOOKS refuse to start with it.
	 */
	if (a->test_clock[0] != 0) {
		FILE *f = fopen(a->test_clock, "r");
		long long off = 0;

		if (f != NULL) {
			if (fscanf(f, "%lld", &off) != 1)
				off = 0;
			fclose(f);
		}
		now += off;
	}
#else
	(void)a;
#endif
	return now;
}

void
api_time(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Parses a canonical decimal query value below KT_SIZE_MAX. */
int
api_u64(const char *s, uint64_t *out)
{
	if (s == NULL)
		return KT_EPARSE;
	return kt_parse_u64(
	    (const uint8_t *)s, strlen(s), KT_SIZE_MAX - 1, out);
}

void
api_reply_kt(struct http_req *r, int rc, const char *detail)
{
	int status = http_status_for(rc);
	const char *error;

	switch (status) {
	case 400:
		error = "bad_request";
		break;
	case 401:
		error = "unauthenticated";
		break;
	case 403:
		error = "forbidden";
		break;
	case 404:
		error = "not_found";
		break;
	case 409:
		error = "conflict";
		break;
	case 413:
		error = "too_large";
		break;
	case 422:
		error = "verification_failed";
		break;
	case 503:
		error = "unavailable";
		break;
	default:
		error = "internal";
		break;
	}
	http_reply_error(r, status, error, detail ? detail : kt_strerror(rc));
}

/* Starts a read session or replies 503 and returns NULL. */
struct store_rd *
api_rd(struct api *a, struct http_req *r)
{
	struct store_rd *rd = NULL;

	if (store_rd_begin(a->st, &rd) != KT_OK) {
		http_reply_error(
		    r, 503, "unavailable", "log storage unavailable");
		return NULL;
	}
	return rd;
}

/*
 * Authenticates the bearer token and checks that the principal holds one
 * of roles.  Replies 401/403 and returns NULL on failure.
 */
const struct policy_principal *
api_auth(struct api *a, struct http_req *r, unsigned roles)
{
	const char *h = http_req_header(r, "Authorization");
	const struct policy_principal *p = NULL;
	char peer[POLICY_PEER_MAX + 1];
	int64_t now = (int64_t)time(NULL), wait;
	size_t len;

	/* The peer's address without its port: failures count per host. */
	snprintf(peer, sizeof(peer), "%s", http_req_peer(r));
	peer[strcspn(peer, ":")] = 0;
	if ((wait = policy_throttle_wait(a->throttle, peer, now)) > 0) {
		char retry[32], detail[96];

		snprintf(retry, sizeof(retry), "%lld", (long long)wait);
		snprintf(detail, sizeof(detail),
		    "too many failed authentications; retry in %lld s",
		    (long long)wait);
		http_add_header(r, "Retry-After", retry);
		http_reply_error(r, 429, "rate_limited", detail);
		return NULL;
	}
	if (h != NULL && strncmp(h, "Bearer ", 7) == 0) {
		h += 7;
		len = strlen(h);
		if (len > 0 && len <= 256)
			p = policy_authenticate(
			    a->policy, (const uint8_t *)h, len);
	}
	if (p == NULL) {
		a->auth_failures++;
		policy_throttle_fail(a->throttle, peer, now);
		log_warn("auth: %s bearer token from %s",
		    h == NULL ? "no" : "unknown", http_req_peer(r));
		http_reply_error(r, 401, "unauthenticated",
		    h == NULL ? "missing bearer token"
			      : "unknown bearer token");
		return NULL;
	}
	if ((p->roles & roles) == 0) {
		log_warn("auth: %s lacks the role for %s", p->name,
		    http_req_path(r));
		http_reply_error(
		    r, 403, "forbidden", "principal lacks the required role");
		return NULL;
	}
	return p;
}

/* Parses the body as one JSON object; replies 400 and NULL otherwise. */
json_t *
api_body(struct http_req *r)
{
	struct kt_bytes b = http_req_body(r);
	json_error_t err;
	json_t *j;
	/*
	 * The body is parsed strictly as JSON whatever Content-Type says, so
	 * a plain `curl -d` works.
	 */
	j = json_loadb((const char *)b.p, b.len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL || !json_is_object(j)) {
		char detail[200];

		snprintf(detail, sizeof(detail), "body: %s",
		    j ? "must be a JSON object" : err.text);
		json_decref(j);
		http_reply_error(r, 400, "bad_request", detail);
		return NULL;
	}
	return j;
}

/* Refuses body fields outside allowed (NULL-terminated). */
int
api_fields(struct http_req *r, json_t *j, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v)
	{
		int ok = 0;

		for (size_t i = 0; allowed[i] != NULL; i++)
			ok |= strcmp(k, allowed[i]) == 0;
		if (!ok) {
			char detail[128];

			snprintf(
			    detail, sizeof(detail), "%.64s: unknown field", k);
			http_reply_error(r, 400, "bad_request", detail);
			return -1;
		}
	}
	return 0;
}

/* A required string field of at most max bytes, or NULL (replied 400). */
const char *
api_str(
    struct http_req *r, json_t *j, const char *field, size_t max, int required)
{
	json_t *v = json_object_get(j, field);
	char detail[128];

	if (v == NULL && !required)
		return "";
	if (!json_is_string(v)) {
		snprintf(detail, sizeof(detail), "%s: %s", field,
		    v ? "must be a string" : "required");
		http_reply_error(r, 400, "bad_request", detail);
		return NULL;
	}
	if (json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(detail, sizeof(detail),
		    "%s: must be at most %zu bytes, no NUL", field, max);
		http_reply_error(r, json_string_length(v) > max ? 413 : 400,
		    json_string_length(v) > max ? "too_large" : "bad_request",
		    detail);
		return NULL;
	}
	return json_string_value(v);
}

/* ---- keys ---------------------------------------------------------------
 * The key registry lives in the store's "keys" table: key ID (64 hex) ->
 * a JSON record {"alg","label","spki","state"[,"reason"][,"hsm"]
 * [,"cert","not_before","not_after","subject"]}.  keys.c writes it.
 */

/* Serialises a key record (sorted, compact) into out. */
int
api_record(const json_t *rec, struct kt_buf *out)
{
	char *s = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (s == NULL)
		return KT_ENOMEM;
	rc = kt_buf_append_str(out, s);
	free(s);
	return rc;
}

/* Loads a key record; NULL if unknown. */
json_t *
api_key_load(struct store_rd *rd, const char *keyid)
{
	struct kt_buf b;
	json_t *j = NULL;

	kt_buf_init(&b, 64 * 1024);
	if (strlen(keyid) == 64 &&
	    store_rd_get(rd, STORE_DB_KEYS, (const uint8_t *)keyid, 64, &b) ==
		KT_OK)
		j = json_loadb((const char *)b.p, b.len, 0, NULL);
	kt_buf_free(&b);
	return j;
}

/* ---- write path --------------------------------------------------------- */

struct api_write {
	struct seq_req req; /* first: the sequencer hands this back */
	struct api *a;
	struct http_req *r;
	struct kt_buf entry;
	char keyid[65];
	char digest[65];
	uint8_t keyraw[32];
	uint8_t digestraw[32];
	char alg[32];
	char principal[POLICY_NAME_MAX + 1];
	json_t *body; /* the request, while its signature is checked */
	struct pool_job job;
	struct kt_pubkey *pk;
	uint8_t digestbin[32];
	uint8_t sig[KT_SIG_MAX];
	size_t siglen;
	int rc; /* why a submission did not reach the sequencer */
	char policy[POLICY_SHA256_LEN + 1];
	struct kt_buf artifact;
};

static void
api_write_free(struct api_write *w)
{
	if (w == NULL)
		return;
	kt_pubkey_free(w->pk);
	json_decref(w->body);
	kt_buf_free(&w->entry);
	kt_buf_free(&w->artifact);
	free(w);
}

static struct api_write *
api_write_new(struct api *a, struct http_req *r)
{
	struct api_write *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->a = a;
	w->r = r;
	kt_buf_init(&w->entry, KT_ENTRY_MAX);
	kt_buf_init(&w->artifact, API_ARTIFACT_NAME_MAX + 1);
	return w;
}

static void
api_latency(struct api *a, double seconds)
{
	static const double bounds[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
		0.1, 0.2, 0.5, 1, 2 };
	size_t i;

	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		if (seconds <= bounds[i])
			break;
	}
	a->latency_hist[i]++;
	a->latency_sum += seconds;
	a->latency_count++;
}

/*
 * Builds the tlog-proof of the entry at index against the checkpoint cp.
 * The entry's bytes are known (the request's own, just logged), or read
 * back from the log into entry_out (a duplicate's are the first entry's,
 * not this request's).
 */
int
api_proof(struct api *a, uint64_t index, const uint8_t *note, size_t notelen,
    uint64_t size, const struct kt_bytes *known, struct kt_buf *entry_out,
    struct kt_buf *proof_out)
{
	struct store_rd *rd = NULL;
	struct kt_hash proof[KT_PROOF_MAX];
	struct kt_bytes extra;
	size_t np;
	int rc;

	if ((rc = store_rd_begin(a->st, &rd)) != KT_OK)
		return rc;
	if (known != NULL) {
		extra = *known;
	} else if ((rc = store_rd_entry(rd, index, entry_out)) == KT_OK) {
		extra.p = entry_out->p;
		extra.len = entry_out->len;
	} else {
		goto out;
	}
	if ((rc = kt_prove_inclusion(
		 size, index, store_rd_read_hashes, rd, proof, &np)) != KT_OK)
		goto out;
	rc = kt_tlogproof_format(
	    &extra, index, proof, np, note, notelen, proof_out);
out:
	store_rd_end(rd);
	return rc;
}

void
api_write_reply(
    struct api *a, struct http_req *r, struct seq_req *req, const char *keyid)
{
	struct kt_buf entry, proof;
	struct kt_hash leaf;
	struct http_jw jw;
	char hex[65];
	int rc;

	api_latency(a, kt_monotonic_seconds() - req->submitted);
	if (req->rc != KT_OK) {
		log_warn(
		    "write from %s not logged: %s", http_req_peer(r), req->err);
		http_reply_error(r, 503, "unavailable", req->err);
		return;
	}
	kt_buf_init(&entry, KT_ENTRY_MAX);
	kt_buf_init(&proof, KT_TLOGPROOF_MAX);
	rc = api_proof(a, req->item.index, req->cp->note.p, req->cp->note.len,
	    req->cp->size, req->item.duplicate ? NULL : &req->item.entry,
	    &entry, &proof);
	if (rc != KT_OK) {
		log_err("proof for entry %llu: %s",
		    (unsigned long long)req->item.index, kt_strerror(rc));
		http_reply_error(r, 500, "internal",
		    "entry logged but its proof could not be built");
		goto out;
	}
	/* A duplicate's leaf is the first entry's, read back above. */
	if (req->item.duplicate)
		kt_leaf_hash(entry.p, entry.len, &leaf);
	else
		leaf = req->item.leaf;
	kt_hex_encode(leaf.b, 32, hex);
	/* Sorted keys, as every other JSON answer. */
	http_jw_init(&jw, 1024 + proof.len);
	if (req->item.duplicate)
		http_jw_raw(&jw, "duplicate", "true");
	http_jw_u64(&jw, "index", req->item.index);
	if (keyid != NULL)
		http_jw_str(&jw, "key", keyid, strlen(keyid));
	http_jw_str(&jw, "leaf_hash", hex, 64);
	http_jw_str(&jw, "proof", (const char *)proof.p, proof.len);
	http_jw_u64(&jw, "size", req->cp->size);
	http_reply_jw(r, 200, &jw);
out:
	kt_buf_free(&entry);
	kt_buf_free(&proof);
	seq_cp_release(req->cp);
	req->cp = NULL;
}

static void
api_write_done(struct seq_req *req, void *arg)
{
	struct api_write *w = arg;

	w->a->entries_submitted++; /* every submission that reached it */
	api_write_reply(w->a, w->r, req, NULL);
	api_write_free(w);
}

/*
 * The key cache: parsed public keys of registered keys, so a submission
 * costs no store read and no DER parsing.  Direct-mapped by key ID; a
 * key's slot is dropped whenever a key entry for it commits.
 */
static struct api_key *
api_key_slot(struct api *a, const char *keyid)
{
	uint8_t b[2];

	if (kt_hex_decode_exact(keyid, 4, b, 2) != KT_OK)
		return NULL;
	return &a->keys[((b[0] << 8) | b[1]) % API_KEY_CACHE];
}

void
api_key_drop(struct api *a, const char *keyid)
{
	struct api_key *k = api_key_slot(a, keyid);

	if (k != NULL && strcmp(k->id, keyid) == 0) {
		kt_pubkey_free(k->pk);
		memset(k, 0, sizeof(*k));
	}
}

void
api_keys_free(struct api *a)
{
	for (size_t i = 0; i < API_KEY_CACHE; i++)
		kt_pubkey_free(a->keys[i].pk);
	memset(a->keys, 0, sizeof(a->keys));
}

/*
 * Returns the registered key keyid (from the cache or the store), or NULL
 * after replying 404/500.
 */
struct api_key *
api_key_get(struct api *a, struct http_req *r, const char *keyid)
{
	struct api_key *k = api_key_slot(a, keyid);
	struct store_rd *rd;
	json_t *rec, *notafter;
	const char *spki, *state;
	uint8_t der[KT_SPKI_MAX];
	size_t dlen;
	struct kt_pubkey *pk = NULL;

	if (k == NULL || strlen(keyid) != 64) {
		http_reply_error(r, 404, "unknown_key",
		    "key: no registered key has this ID");
		return NULL;
	}
	if (strcmp(k->id, keyid) == 0)
		return k;
	if ((rd = api_rd(a, r)) == NULL)
		return NULL;
	rec = api_key_load(rd, keyid);
	store_rd_end(rd);
	if (rec == NULL) {
		http_reply_error(r, 404, "unknown_key",
		    "key: no registered key has this ID");
		return NULL;
	}
	spki = json_string_value(json_object_get(rec, "spki"));
	state = json_string_value(json_object_get(rec, "state"));
	notafter = json_object_get(rec, "not_after");
	if (spki == NULL || state == NULL ||
	    (notafter != NULL && !json_is_integer(notafter)) ||
	    kt_b64_decode(spki, strlen(spki), der, sizeof(der), &dlen) !=
		KT_OK ||
	    kt_pubkey_parse(der, dlen, &pk) != KT_OK) {
		json_decref(rec);
		http_reply_error(r, 500, "internal", "key record unreadable");
		return NULL;
	}
	kt_pubkey_free(k->pk);
	memcpy(k->id, keyid, 65);
	k->active = strcmp(state, "active") == 0;
	k->cert_not_after =
	    notafter ? (int64_t)json_integer_value(notafter) : 0;
	k->pk = pk;
	json_decref(rec);
	return k;
}

static enum pool_next api_entries_verify(void *arg);
static void api_entries_failed(void *arg);

/* POST /v1/entries: log a signature made elsewhere by a registered key. */
void
api_post_entries(struct http_req *r, void *arg)
{
	static const char *const fields[] = { "key", "digest", "sig",
		"artifact", NULL };
	static const char *const afields[] = { "name", "size", NULL };
	struct api *a = arg;
	const struct policy_principal *p;
	struct api_write *w = NULL;
	struct api_key *k;
	json_t *body = NULL, *art;
	const char *keyid, *digest, *sig;
	uint8_t dig[32];

	if ((p = api_auth(a, r, POLICY_ROLE_SUBMITTER)) == NULL)
		return;
	if ((body = api_body(r)) == NULL)
		return;
	if (api_fields(r, body, fields) != 0 ||
	    (keyid = api_str(r, body, "key", 64, 1)) == NULL ||
	    (digest = api_str(r, body, "digest", 64, 1)) == NULL ||
	    (sig = api_str(r, body, "sig", 2 * KT_SIG_MAX, 1)) == NULL)
		goto out;
	if (kt_hex_decode_exact(digest, strlen(digest), dig, 32) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "digest: must be 64 lowercase hex digits (SHA-256)");
		goto out;
	}
	art = json_object_get(body, "artifact");
	if (art != NULL) {
		json_t *name = json_object_get(art, "name");
		json_t *size = json_object_get(art, "size");

		if (!json_is_object(art) || api_fields(r, art, afields) != 0) {
			if (!json_is_object(art))
				http_reply_error(r, 400, "bad_request",
				    "artifact: must be an object");
			goto out;
		}
		if (name != NULL &&
		    (!json_is_string(name) || json_string_length(name) == 0 ||
			json_string_length(name) > API_ARTIFACT_NAME_MAX ||
			strlen(json_string_value(name)) !=
			    json_string_length(name))) {
			http_reply_error(r, 400, "bad_request",
			    "artifact.name: must be a string of 1 to 255 "
			    "bytes");
			goto out;
		}
		if (size != NULL &&
		    (!json_is_integer(size) || json_integer_value(size) < 0)) {
			http_reply_error(r, 400, "bad_request",
			    "artifact.size: must be a non-negative integer");
			goto out;
		}
	}
	if ((w = api_write_new(a, r)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (kt_b64_decode(sig, strlen(sig), w->sig, sizeof(w->sig),
		&w->siglen) != KT_OK ||
	    w->siglen == 0) {
		http_reply_error(
		    r, 400, "bad_request", "sig: must be canonical base64");
		goto out;
	}
	if ((k = api_key_get(a, r, keyid)) == NULL)
		goto out;
	if (!k->active) {
		log_warn(
		    "entries: %s submitted for revoked key %s", p->name, keyid);
		http_reply_error(r, 403, "key_revoked",
		    "key: revoked keys cannot log new signatures");
		goto out;
	}
	/*
	 * A key whose certificate has expired logs nothing new, as it signs
	 * nothing new: a verifier then knows every entry of a certified key
	 * was logged while its certificate was valid.
	 */
	if (k->cert_not_after != 0 && api_now(a) > k->cert_not_after) {
		log_warn("entries: %s submitted for key %s, whose certificate "
			 "has expired",
		    p->name, keyid);
		http_reply_error(r, 403, "certificate_expired",
		    "key: its certificate has expired; signatures made with it "
		    "are no longer logged");
		goto out;
	}
	memcpy(w->keyid, keyid, 65);
	memcpy(w->digest, digest, 65);
	snprintf(w->alg, sizeof(w->alg), "%s", kt_pubkey_alg(k->pk));
	snprintf(w->principal, sizeof(w->principal), "%s", p->name);
	w->body = json_incref(body);
	memcpy(w->digestbin, dig, 32);
	if ((w->pk = kt_pubkey_ref(k->pk)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	snprintf(w->policy, sizeof(w->policy), "%s", policy_sha256(a->policy));
	w->job.run = api_entries_verify;
	w->job.done = api_entries_failed;
	w->job.arg = w;
	/* Checked, built and queued for the log on a worker thread. */
	if (a->shutting_down) {
		http_reply_error(
		    r, 503, "unavailable", "the log is not accepting entries");
		goto out;
	}
	pool_submit(a->pool, &w->job);
	w = NULL;
out:
	api_write_free(w);
	json_decref(body);
}

void
api_entry_artifact(struct kt_entry_sig *e, const json_t *art)
{
	const json_t *sz;

	if (art == NULL)
		return;
	sz = json_object_get(art, "size");
	e->has_artifact = 1;
	e->artifact_name = json_string_value(json_object_get(art, "name"));
	e->has_artifact_size = sz != NULL;
	e->artifact_size = json_integer_value(sz);
}

/*
 * Builds w's dedup key and signature entry once its signature verified.
 * Runs on a worker and touches only w.  Returns KT_OK, KT_ETOOBIG or
 * KT_EINTERNAL.
 */
static int
api_entries_build(struct api_write *w)
{
	static const char tag[] = "keytrail dedup v1\n";
	static const char *const none[1] = { NULL };
	json_t *art = json_object_get(w->body, "artifact");
	struct kt_entry_sig e;
	struct kt_buf sb;
	char now[32];
	int rc;

	/*
	 * Resubmitting the same signature (same key, digest, signature and
	 * artifact) must return its first index even though a new entry
	 * would carry a new time: the store deduplicates on this key, inside
	 * the write transaction.  The tag comes last: the canonical JSON
	 * fixes its own end.
	 */
	memset(&e, 0, sizeof(e));
	e.kind = "submission";
	e.key = w->keyid;
	e.digest = w->digest;
	e.sig = json_string_value(json_object_get(w->body, "sig"));
	api_entry_artifact(&e, art);
	kt_buf_init(&sb, KT_ENTRY_MAX + sizeof(tag));
	if ((rc = kt_entry_sig_encode(&e, &sb)) != KT_OK ||
	    (rc = kt_buf_append(&sb, tag, sizeof(tag) - 1)) != KT_OK) {
		kt_buf_free(&sb);
		return rc == KT_ETOOBIG ? KT_ETOOBIG : KT_EINTERNAL;
	}
	kt_sha256(sb.p, sb.len, &w->req.item.dedup);
	w->req.item.has_dedup = 1;
	kt_buf_free(&sb);

	api_time(now);
	e.kind = "signature";
	e.alg = w->alg;
	e.principal = w->principal;
	e.time = now;
	e.approvers = none;
	e.napprovers = 0;
	e.policy = w->policy;
	if ((rc = kt_entry_sig_encode(&e, &w->entry)) != KT_OK)
		return rc == KT_ETOOBIG ? KT_ETOOBIG : KT_EINTERNAL;
	w->req.item.entry.p = w->entry.p;
	w->req.item.entry.len = w->entry.len;
	kt_leaf_hash(w->entry.p, w->entry.len, &w->req.item.leaf);
	/* Indexed as raw bytes: half the size of the hex in every index row. */
	if (kt_hex_decode_exact(w->keyid, 64, w->keyraw, 32) != KT_OK ||
	    kt_hex_decode_exact(w->digest, 64, w->digestraw, 32) != KT_OK)
		return KT_EINTERNAL;
	w->req.item.by_key.p = w->keyraw;
	w->req.item.by_key.len = 32;
	w->req.item.by_digest.p = w->digestraw;
	w->req.item.by_digest.len = 32;
	if (e.artifact_name != NULL) {
		if (kt_buf_append_str(&w->artifact, e.artifact_name) != KT_OK)
			return KT_EINTERNAL;
		w->req.item.by_artifact.p = w->artifact.p;
		w->req.item.by_artifact.len = w->artifact.len;
	}
	w->req.done = api_write_done;
	w->req.arg = w;
	return KT_OK;
}

/*
 * On a worker thread: checks the submitted signature and, when it
 * verifies, hands the entry straight to the sequencer.  Anything else
 * completes on the loop (api_entries_failed), which answers.
 */
static enum pool_next
api_entries_verify(void *arg)
{
	struct api_write *w = arg;

	w->rc = kt_pubkey_verify(w->pk, w->digestbin, w->sig, w->siglen);
	if (w->rc != KT_OK) {
		w->rc = KT_EVERIFY;
		return POOL_COMPLETE;
	}
	if ((w->rc = api_entries_build(w)) != KT_OK)
		return POOL_COMPLETE;
	/* From here the sequencer owns w (done: api_write_done). */
	if (seq_submit(w->a->seq, &w->req) == KT_OK)
		return POOL_PASSED;
	w->rc = KT_EUNAVAIL;
	return POOL_COMPLETE;
}

/* Loop thread: the submission did not reach the sequencer; says why. */
static void
api_entries_failed(void *arg)
{
	struct api_write *w = arg;

	switch (w->rc) {
	case KT_EVERIFY:
		http_reply_error(w->r, 422, "bad_signature",
		    "sig: does not verify over digest with this key");
		break;
	case KT_ETOOBIG:
		api_reply_kt(w->r, KT_ETOOBIG, "entry larger than 65535 bytes");
		break;
	case KT_EUNAVAIL:
		http_reply_error(w->r, 503, "unavailable",
		    "the log is not accepting entries");
		break;
	default:
		http_reply_error(
		    w->r, 500, "internal", "entry could not be encoded");
		break;
	}
	api_write_free(w);
}

/* ---- policy ---------------------------------------------------------------
 */

struct api_policy_log {
	struct seq_req req;
	struct kt_buf entry;
	char sha[POLICY_SHA256_LEN + 1];
	struct store_put put;
};

static void
api_policy_logged(struct seq_req *req, void *arg)
{
	struct api_policy_log *l = arg;

	if (req->rc == KT_OK)
		log_info("policy %s in force, logged at index %llu%s", l->sha,
		    (unsigned long long)req->item.index,
		    req->item.duplicate ? " (already logged)" : "");
	else
		log_err("policy %s could not be logged: %s", l->sha, req->err);
	seq_cp_release(req->cp);
	kt_buf_free(&l->entry);
	free(l);
}

/*
 * Builds in l the `policy` entry of the policy in force.  Returns 1 when
 * it needs logging, 0 when it was logged before, -1 on failure.
 */
static int
api_policy_item(struct api *a, const char *principal, struct api_policy_log *l)
{
	struct store_rd *rd;
	struct kt_buf have;
	json_t *e;
	char now[32];
	int known = 0;

	/* A policy already logged is not logged again (restarts, reloads). */
	kt_buf_init(&have, POLICY_FILE_MAX);
	if (store_rd_begin(a->st, &rd) == KT_OK) {
		known = store_rd_get(rd, STORE_DB_POLICIES,
			    (const uint8_t *)policy_sha256(a->policy),
			    POLICY_SHA256_LEN, &have) == KT_OK;
		store_rd_end(rd);
	}
	kt_buf_free(&have);
	memcpy(l->sha, policy_sha256(a->policy), POLICY_SHA256_LEN + 1);
	if (known)
		return 0;
	api_time(now);
	e = json_pack("{s:s, s:s, s:s, s:s}", "kind", "policy", "sha256",
	    l->sha, "principal", principal, "time", now);
	kt_buf_init(&l->entry, KT_ENTRY_MAX);
	if (e == NULL || kt_entry_encode(e, &l->entry) != KT_OK) {
		json_decref(e);
		kt_buf_free(&l->entry);
		return -1;
	}
	json_decref(e);
	/* The document itself goes in with its entry, atomically. */
	l->put.db = STORE_DB_POLICIES;
	l->put.key.p = (const uint8_t *)l->sha;
	l->put.key.len = POLICY_SHA256_LEN;
	l->put.val = policy_document(a->policy);
	l->req.item.entry.p = l->entry.p;
	l->req.item.entry.len = l->entry.len;
	kt_leaf_hash(l->entry.p, l->entry.len, &l->req.item.leaf);
	l->req.item.puts = &l->put;
	l->req.item.nputs = 1;
	return 1;
}

int
api_log_policy_now(
    struct api *a, store_sign_fn sign, void *ctx, char *err, size_t errlen)
{
	struct api_policy_log l;
	int rc;

	memset(&l, 0, sizeof(l));
	if ((rc = api_policy_item(a, "operator", &l)) <= 0) {
		if (rc < 0)
			snprintf(err, errlen, "policy entry: out of memory");
		else
			log_info("policy %s in force", l.sha);
		return rc < 0 ? KT_ENOMEM : KT_OK;
	}
	rc = store_append(
	    a->st, &l.req.item, 1, sign, ctx, NULL, NULL, err, errlen);
	if (rc == KT_OK)
		log_info("policy %s in force, logged at index %llu", l.sha,
		    (unsigned long long)l.req.item.index);
	kt_buf_free(&l.entry);
	return rc;
}

void
api_log_policy(struct api *a, const char *principal)
{
	struct api_policy_log *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return;
	if (api_policy_item(a, principal, l) <= 0) {
		log_info("policy %s in force", l->sha);
		free(l);
		return;
	}
	l->req.done = api_policy_logged;
	l->req.arg = l;
	if (seq_submit(a->seq, &l->req) != KT_OK) {
		log_err(
		    "policy %s could not be logged: log unavailable", l->sha);
		kt_buf_free(&l->entry);
		free(l);
	}
}

/* GET /v1/policy/<sha256>: a policy document that was in force. */
void
api_get_policy(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *sha = http_req_path(r) + strlen("/v1/policy/");
	uint8_t raw[32];
	struct store_rd *rd;
	struct kt_buf doc;
	int rc;

	if (kt_hex_decode_exact(sha, strlen(sha), raw, 32) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "sha256: must be 64 lowercase hex digits");
		return;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return;
	kt_buf_init(&doc, POLICY_FILE_MAX);
	rc =
	    store_rd_get(rd, STORE_DB_POLICIES, (const uint8_t *)sha, 64, &doc);
	store_rd_end(rd);
	if (rc != KT_OK)
		api_reply_kt(r, rc, "no policy with this SHA-256 was in force");
	else
		http_reply_bytes(r, 200, "application/json",
		    "public, max-age=31536000, immutable", doc.p, doc.len);
	kt_buf_free(&doc);
}

static void
api_keys(struct http_req *r, void *arg)
{
	if (http_req_method(r) == HTTP_POST)
		keys_post(r, arg);
	else
		api_get_keys(r, arg);
}

const struct http_route api_routes[] = {
	{ "/checkpoint", 0, HTTP_GET | HTTP_HEAD, api_get_checkpoint },
	{ "/tile/", 1, HTTP_GET | HTTP_HEAD, api_get_tile },
	{ "/v1/log", 0, HTTP_GET | HTTP_HEAD, api_get_log },
	{ "/v1/entries", 0, HTTP_POST, api_post_entries },
	{ "/v1/entries/", 1, HTTP_GET | HTTP_HEAD, api_get_entry },
	{ "/v1/proof/inclusion", 0, HTTP_GET | HTTP_HEAD, api_get_inclusion },
	{ "/v1/proof/consistency", 0, HTTP_GET | HTTP_HEAD,
	    api_get_consistency },
	{ "/v1/bundle/", 1, HTTP_GET | HTTP_HEAD, api_get_bundle },
	{ "/v1/search", 0, HTTP_GET | HTTP_HEAD, api_get_search },
	{ "/v1/keys", 0, HTTP_GET | HTTP_HEAD | HTTP_POST, api_keys },
	{ "/v1/keys/", 1, HTTP_POST, keys_post_csr },
	{ "/v1/policy/", 1, HTTP_GET | HTTP_HEAD, api_get_policy },
	{ "/v1/sign", 0, HTTP_POST, sign_post },
	{ "/v1/requests/", 1, HTTP_GET | HTTP_HEAD | HTTP_POST, sign_requests },
	{ "/healthz", 0, HTTP_GET | HTTP_HEAD, api_get_healthz },
	{ "/metrics", 0, HTTP_GET | HTTP_HEAD, api_get_metrics },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
