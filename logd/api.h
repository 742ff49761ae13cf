/*
 * The HTTP API handlers (DESIGN.md section 5): the read API served from
 * short read sessions of the store, and the write API, which validates and
 * authenticates a request, builds its entry, and hands it to the
 * sequencer.  Handlers never block and never open a write transaction.
 */
#ifndef LOGD_API_H
#define LOGD_API_H

#include <stddef.h>

#include "conf.h"
#include "http.h"
#include "keytrail/entry.h"
#include "keytrail/note.h"
#include "seq.h"
#include "store.h"
#include "keytrail/sig.h"
#include "hsm.h"
#include "policy.h"
#include "pool.h"

/* Most signing keys the policy may name. */
#define API_SIGNKEYS_MAX 256
/* Most sign requests waiting for approval being updated at once. */
#define API_BUSY_MAX 64
/* Most key changes (POST /v1/keys) in flight at once. */
#define API_KEYS_BUSY_MAX 64
/* Longest key label in the registry (a policy label is at most 128). */
#define API_LABEL_MAX 64

/* A signing key held in the HSM. */
struct api_signkey {
	char label[129];
	char id[65];
	struct hsm_key *hk;
};

/* Slots of the key cache (direct-mapped by key ID). */
#define API_KEY_CACHE 1024

/* A registered key as the write path needs it. */
struct api_key {
	char id[65]; /* "" when the slot is empty */
	int active;
	int64_t cert_not_after; /* its certificate's notAfter; 0: none */
	struct kt_pubkey *pk;
};

/*
 * A key change between its first look at the registry and its commit:
 * the key ID (or "" while a new key is made) and the label it claims.
 * Another change of the same key or label meanwhile is refused (409), so
 * none of them works from a record another is about to replace.
 */
struct api_keys_busy {
	char id[65];
	char label[API_LABEL_MAX + 1];
};

/* Bytes of random request IDs drawn at once (256 IDs of 16 bytes). */
#define API_IDPOOL 4096

struct api {
	struct conf *conf;
	struct store *st;
	struct seq *seq;
	struct pool *pool;
	struct tilecache *tiles;
	struct api_key keys[API_KEY_CACHE];
	struct kt_note_vkey log_vkey;	  /* the checkpoint key */
	char vkey_str[512];		  /* its vkey string */
	struct policy *policy;		  /* in force; swapped on SIGHUP */
	struct policy_throttle *throttle; /* failed authentications */
	struct policy_rate *rate;	  /* signing rate limits */
	struct hsm *keys_hsm;		  /* the signing keys' token */
	struct hsm *log_hsm;		  /* the checkpoint key's token */
	struct api_signkey signkeys[API_SIGNKEYS_MAX];
	size_t nsignkeys;
	char busy[API_BUSY_MAX][33]; /* requests being updated */
	/*
	 * Random bytes for new request IDs (sign.c), drawn API_IDPOOL bytes
	 * at a time: RAND_bytes() makes a system call per call.  The IDs
	 * are public; the pool is not a secret.
	 */
	uint8_t idpool[API_IDPOOL];
	size_t idpool_left;
	struct api_keys_busy keys_busy[API_KEYS_BUSY_MAX]; /* keys.c */
	char test_clock[512]; /* KEYTRAIL_TEST_CLOCK, test builds */
	struct http *http;
	int shutting_down;
	/* Counters for /metrics. */
	uint64_t entries_submitted;
	uint64_t auth_failures;
	uint64_t signatures;
	uint64_t denials[32]; /* by enum policy_reason */
	double latency_sum;
	uint64_t latency_hist[12]; /* <=1ms, 2, 5, 10, 20, 50, 100, ... */
	uint64_t latency_count;
};

/*
 * Logs the policy now in force as a `policy` entry (with the document, so
 * /v1/policy/<sha256> serves it), unless it was logged before.  principal
 * names who put it in force.  Asynchronous; the outcome is logged.
 */
void api_log_policy(struct api *a, const char *principal);

/*
 * The same, synchronously through the store, for startup: before the
 * sequencer runs, so the log never serves a checkpoint without the policy
 * in force.  Returns KT_OK or store_append's error (message in err).
 */
int api_log_policy_now(struct api *a, store_sign_fn sign, void *ctx, char *err,
    size_t errlen) KT_MUST_CHECK;

/* Frees the key cache. */
void api_keys_free(struct api *a);

/*
 * Helpers shared by the handler files (api.c, reads.c, keys.c).  Each replies
 * itself when it fails, and the caller then just returns.
 */
struct store_rd;
/* Unix seconds for policy decisions (tests may shift it; see api.c). */
int64_t api_now(struct api *a);
/* The current UTC time as RFC 3339 ("2026-11-29T10:00:00Z"). */
void api_time(char out[32]);
/* A canonical decimal below 2^63, or KT_EPARSE. */
int api_u64(const char *s, uint64_t *out);
/* Replies with the status and error word for a KT_E* code. */
void api_reply_kt(struct http_req *r, int rc, const char *detail);
/* A read session, or NULL after replying 503. */
struct store_rd *api_rd(struct api *a, struct http_req *r);
/*
 * The authenticated principal holding one of roles, or NULL after
 * replying 401/403/429.
 */
const struct policy_principal *api_auth(
    struct api *a, struct http_req *r, unsigned roles);
/* The body as one JSON object, or NULL after replying 400. */
json_t *api_body(struct http_req *r);
/* 0, or -1 after replying 400 for a field not in allowed. */
int api_fields(struct http_req *r, json_t *j, const char *const *allowed);
/* A string field of at most max bytes ("" if optional and absent). */
const char *api_str(
    struct http_req *r, json_t *j, const char *field, size_t max, int required);
/*
 * The tlog-proof of entry index against the checkpoint note of size; the
 * entry's bytes are known, or (known NULL) read into entry_out.
 */
int api_proof(struct api *a, uint64_t index, const uint8_t *note,
    size_t notelen, uint64_t size, const struct kt_bytes *known,
    struct kt_buf *entry_out, struct kt_buf *proof_out);
/*
 * Sets the artifact members of a signature entry from a request's checked
 * "artifact" object ({"name", "size"}, both optional); NULL sets none.
 */
void api_entry_artifact(struct kt_entry_sig *e, const json_t *art);
/* A key record of the registry, or NULL. */
json_t *api_key_load(struct store_rd *rd, const char *keyid);
/*
 * The registered key keyid (from the cache or the store), or NULL after
 * replying 404/500.
 */
struct api_key *api_key_get(
    struct api *a, struct http_req *r, const char *keyid);
/*
 * Forgets keyid's cached record, so the next api_key_get() reads the
 * registry again.  Call it whenever a key entry for keyid commits.
 */
void api_key_drop(struct api *a, const char *keyid);
/*
 * Answers a write the sequencer completed (req, in its done callback):
 * 503 with the reason when nothing was logged, otherwise 200 {"index",
 * "leaf_hash", "proof", "size"} with the entry's tlog-proof against
 * req->cp, plus "key": keyid when keyid is not NULL and "duplicate": true
 * for a deduplicated entry.  Counts the write's latency, releases req->cp
 * and sets it to NULL.
 */
void api_write_reply(
    struct api *a, struct http_req *r, struct seq_req *req, const char *keyid);
/* Serialises a record (sorted, compact) into out. */
int api_record(const json_t *rec, struct kt_buf *out);

/* Handlers (the route table in api.c names them). */
void api_get_checkpoint(struct http_req *r, void *arg);
void api_get_tile(struct http_req *r, void *arg);
void api_get_log(struct http_req *r, void *arg);
void api_get_entry(struct http_req *r, void *arg);
void api_get_inclusion(struct http_req *r, void *arg);
void api_get_consistency(struct http_req *r, void *arg);
void api_get_bundle(struct http_req *r, void *arg);
void api_get_search(struct http_req *r, void *arg);
void api_get_keys(struct http_req *r, void *arg);
void api_get_healthz(struct http_req *r, void *arg);
void api_get_metrics(struct http_req *r, void *arg);
void api_get_policy(struct http_req *r, void *arg);
void api_post_entries(struct http_req *r, void *arg);

/* The route table (static; lives as long as the program). */
extern const struct http_route api_routes[];
extern const size_t api_nroutes;

#endif
