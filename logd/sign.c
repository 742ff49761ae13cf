/*
 * Signing and approvals.  Every operation is a struct sign_op that moves
 * through up to three steps: the HSM signs on a worker thread (pool.c),
 * the sequencer commits the entry (or the request record), and the reply
 * goes out from the event loop thread.  A request signed at once is
 * queued for the log by the worker itself; an approved one returns to the
 * loop first, which owns its record.  The op owns the signature bytes and
 * wipes them whatever happens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/tlogproof.h"
#include "log.h"
#include "sign.h"

/* Largest request record (a few hundred bytes in practice). */
#define SIGN_RECORD_MAX (64 * 1024)
/* Request IDs: 16 random bytes in hex. */
#define SIGN_ID_LEN 32
/*
 * requests[<id> SIGN_INDEX_SUFFIX]: the leaf index (u64, big-endian) of a
 * signed request's entry, written by the store in the signing commit.
 */
#define SIGN_INDEX_SUFFIX ":index"

enum sign_kind {
	SIGN_NOW,      /* allowed: sign and log */
	SIGN_PENDING,  /* needs approval: store the request */
	SIGN_APPROVE,  /* an approval that does not reach the quorum */
	SIGN_APPROVED, /* the approval that does: sign and log */
	SIGN_DENY      /* an approver refuses */
};

struct sign_op {
	struct seq_req req; /* the sequencer hands this back */
	struct pool_job job;
	struct api *a;
	struct http_req *r;
	enum sign_kind kind;
	char id[SIGN_ID_LEN + 1];
	struct api_signkey *sk;
	char alg[KT_ALG_NAME_MAX];
	char digest[65];
	uint8_t digestbin[32];
	uint8_t keyraw[32];
	char requester[POLICY_NAME_MAX + 1];
	json_t *artifact;  /* optional, from the request */
	json_t *record;	   /* the request record to store, if any */
	json_t *approvers; /* array of names */
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen;
	int hsm_rc;
	int submit_rc; /* the worker's sign_submit_entry, when it failed */
	char hsm_err[HSM_ERR_SIZE];
	char policy[POLICY_SHA256_LEN + 1]; /* the policy that allowed it */
	struct kt_buf entry;
	struct kt_buf recbuf;
	struct kt_buf artname;
	struct store_put put;
	/* An approved request: its record and its entry's index, together. */
	struct store_put puts[2];
	char idxkey[SIGN_ID_LEN + sizeof(SIGN_INDEX_SUFFIX)];
	int busy; /* holds a slot of a->busy */
};

static void
sign_busy_release(struct sign_op *op)
{
	if (!op->busy)
		return;
	for (size_t i = 0; i < API_BUSY_MAX; i++) {
		if (strcmp(op->a->busy[i], op->id) == 0) {
			op->a->busy[i][0] = 0;
			break;
		}
	}
	op->busy = 0;
}

/* Claims the request id for this op; 0 if another op holds it. */
static int
sign_busy_claim(struct sign_op *op)
{
	size_t free_slot = API_BUSY_MAX;

	for (size_t i = 0; i < API_BUSY_MAX; i++) {
		if (strcmp(op->a->busy[i], op->id) == 0)
			return 0;
		if (op->a->busy[i][0] == 0 && free_slot == API_BUSY_MAX)
			free_slot = i;
	}
	if (free_slot == API_BUSY_MAX)
		return 0;
	memcpy(op->a->busy[free_slot], op->id, SIGN_ID_LEN + 1);
	op->busy = 1;
	return 1;
}

static void
sign_op_free(struct sign_op *op)
{
	if (op == NULL)
		return;
	sign_busy_release(op);
	kt_wipe(op->sig, sizeof(op->sig));
	json_decref(op->artifact);
	json_decref(op->record);
	json_decref(op->approvers);
	kt_buf_free(&op->entry);
	kt_buf_free(&op->recbuf);
	kt_buf_free(&op->artname);
	free(op);
}

static struct sign_op *
sign_op_new(struct api *a, struct http_req *r, enum sign_kind kind)
{
	struct sign_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->a = a;
	op->r = r;
	op->kind = kind;
	kt_buf_init(&op->entry, KT_ENTRY_MAX);
	kt_buf_init(&op->recbuf, SIGN_RECORD_MAX);
	kt_buf_init(&op->artname, 256);
	return op;
}

struct api_signkey *
sign_key_find(struct api *a, const char *name)
{
	for (size_t i = 0; i < a->nsignkeys; i++) {
		if (strcmp(a->signkeys[i].label, name) == 0 ||
		    strcmp(a->signkeys[i].id, name) == 0)
			return &a->signkeys[i];
	}
	return NULL;
}

/*
 * Makes req carry one write: the request record rec under id in the
 * requests table.  put, id and rec must outlive the submission.
 */
static void
sign_record_put(struct seq_req *req, struct store_put *put, const char *id,
    const struct kt_buf *rec)
{
	put->db = STORE_DB_REQUESTS;
	put->key.p = (const uint8_t *)id;
	put->key.len = SIGN_ID_LEN;
	put->val.p = rec->p;
	put->val.len = rec->len;
	put->del = 0;
	req->item.puts = put;
	req->item.nputs = 1;
}

/* ---- startup ------------------------------------------------------------ */

/* Registers one HSM key in the log with a `key` entry (action create). */
static int
sign_register(struct api *a, struct api_signkey *sk, store_sign_fn sign,
    void *ctx, char *err, size_t errlen)
{
	struct kt_bytes spki = hsm_key_spki(sk->hk);
	struct store_rd *rd;
	struct hsm_attrs at;
	struct store_item item;
	struct store_put put;
	struct kt_buf entry, rec, b64;
	json_t *known, *e = NULL, *r = NULL;
	uint8_t raw[32];
	char now[32];
	int rc = KT_ENOMEM;

	if (store_rd_begin(a->st, &rd) != KT_OK)
		return KT_EIO;
	known = api_key_load(rd, sk->id);
	store_rd_end(rd);
	if (known != NULL) {
		json_decref(known);
		return KT_OK;
	}
	kt_buf_init(&entry, KT_ENTRY_MAX);
	kt_buf_init(&rec, SIGN_RECORD_MAX);
	kt_buf_init(&b64, 4096);
	if (kt_b64_append(&b64, spki.p, spki.len) != KT_OK ||
	    kt_buf_terminate(&b64) != KT_OK)
		goto out;
	hsm_key_attrs(sk->hk, &at);
	api_time(now);
	/* The attributes seen at creation: the key never left the HSM. */
	e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, "
		      "s:s, s:s}",
	    "kind", "key", "action", "create", "key", sk->id, "alg",
	    hsm_alg_name(hsm_key_alg(sk->hk)), "spki", (const char *)b64.p,
	    "label", sk->label, "attrs", "sensitive",
	    at.sensitive ? "true" : "false", "never_extractable",
	    at.never_extractable ? "true" : "false", "always_sensitive",
	    at.always_sensitive ? "true" : "false", "local",
	    at.local ? "true" : "false", "principal", "operator", "time", now);
	r = json_pack("{s:s, s:s, s:s, s:s, s:b}", "alg",
	    hsm_alg_name(hsm_key_alg(sk->hk)), "label", sk->label, "spki",
	    (const char *)b64.p, "state", "active", "hsm", 1);
	if (e == NULL || r == NULL || kt_entry_encode(e, &entry) != KT_OK ||
	    api_record(r, &rec) != KT_OK ||
	    kt_hex_decode_exact(sk->id, 64, raw, 32) != KT_OK)
		goto out;
	memset(&item, 0, sizeof(item));
	memset(&put, 0, sizeof(put));
	put.db = STORE_DB_KEYS;
	put.key.p = (const uint8_t *)sk->id;
	put.key.len = 64;
	put.val.p = rec.p;
	put.val.len = rec.len;
	item.entry.p = entry.p;
	item.entry.len = entry.len;
	kt_leaf_hash(entry.p, entry.len, &item.leaf);
	item.by_key.p = raw;
	item.by_key.len = 32;
	item.puts = &put;
	item.nputs = 1;
	rc = store_append(a->st, &item, 1, sign, ctx, NULL, NULL, err, errlen);
	if (rc == KT_OK)
		log_info("key %s (%s) registered at index %llu", sk->label,
		    sk->id, (unsigned long long)item.index);
out:
	json_decref(e);
	json_decref(r);
	kt_buf_free(&entry);
	kt_buf_free(&rec);
	kt_buf_free(&b64);
	return rc;
}

int
sign_key_add(struct api *a, struct hsm_key *hk)
{
	struct api_signkey *sk;

	if (sign_key_find(a, hsm_key_label(hk)) != NULL ||
	    sign_key_find(a, hsm_key_id(hk)) != NULL)
		return KT_EEXIST;
	if (a->nsignkeys == API_SIGNKEYS_MAX)
		return KT_ETOOBIG;
	sk = &a->signkeys[a->nsignkeys];
	snprintf(sk->label, sizeof(sk->label), "%s", hsm_key_label(hk));
	snprintf(sk->id, sizeof(sk->id), "%s", hsm_key_id(hk));
	sk->hk = hk;
	a->nsignkeys++;
	return KT_OK;
}

/* store_rd_iter: collects {"id","label"} of the registry's HSM keys. */
static int
sign_hsm_record(void *ctx, struct kt_bytes key, struct kt_bytes val)
{
	json_t *list = ctx;
	json_t *rec = json_loadb((const char *)val.p, val.len, 0, NULL);
	const char *label = json_string_value(json_object_get(rec, "label"));

	if (rec != NULL && json_is_true(json_object_get(rec, "hsm")) &&
	    label != NULL && key.len == HSM_KEY_ID_LEN)
		json_array_append_new(list,
		    json_pack("{s:s%, s:s}", "id", (const char *)key.p, key.len,
			"label", label));
	json_decref(rec);
	return KT_OK;
}

/*
 * Loads the keys the registry says live in the HSM (created through the
 * API, or registered at an earlier start) that the policy does not name
 * now, so a policy that names them later takes effect on SIGHUP.  A key
 * the token no longer holds, or holds under its label with another
 * identity, is reported and left out.
 */
static void
sign_load_registered(struct api *a, struct hsm *h)
{
	struct store_rd *rd;
	json_t *list = json_array(), *v;
	size_t i;

	if (list == NULL || store_rd_begin(a->st, &rd) != KT_OK) {
		json_decref(list);
		return;
	}
	if (store_rd_iter(rd, STORE_DB_KEYS, sign_hsm_record, list) != KT_OK)
		json_array_clear(list);
	store_rd_end(rd);
	json_array_foreach(list, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *label =
		    json_string_value(json_object_get(v, "label"));
		struct hsm_key *hk = NULL;
		char herr[HSM_ERR_SIZE];

		if (id == NULL || label == NULL || sign_key_find(a, id) != NULL)
			continue;
		if (hsm_find(h, label, &hk, herr, sizeof(herr)) != KT_OK) {
			log_warn("registered key %s (%s) is not usable in the "
				 "HSM: %s",
			    label, id, herr);
			continue;
		}
		if (strcmp(hsm_key_id(hk), id) != 0 ||
		    sign_key_add(a, hk) != KT_OK) {
			log_warn("registered key %s (%s): the token's key of "
				 "that label is another key, or the table is "
				 "full",
			    label, id);
			hsm_key_free(hk);
		}
	}
	json_decref(list);
}

int
sign_init(struct api *a, struct hsm *h, store_sign_fn sign, void *ctx,
    char *err, size_t errlen)
{
	struct kt_bytes doc = policy_document(a->policy);
	json_t *j = json_loadb((const char *)doc.p, doc.len, 0, NULL);
	json_t *keys = json_object_get(j, "keys"), *v;
	const char *label;
	int rc = KT_OK;

	a->keys_hsm = h;
	json_object_foreach(keys, label, v)
	{
		struct api_signkey *sk;
		char herr[HSM_ERR_SIZE];

		(void)v;
		if (a->nsignkeys == API_SIGNKEYS_MAX || sign_key_find(a, label))
			continue;
		sk = &a->signkeys[a->nsignkeys];
		if (hsm_find(h, label, &sk->hk, herr, sizeof(herr)) != KT_OK) {
			log_warn("policy names key %s, which the HSM does not "
				 "hold (or not safely): %s",
			    label, herr);
			continue;
		}
		snprintf(sk->label, sizeof(sk->label), "%s", label);
		snprintf(sk->id, sizeof(sk->id), "%s", hsm_key_id(sk->hk));
		a->nsignkeys++;
		if ((rc = sign_register(a, sk, sign, ctx, err, errlen)) !=
		    KT_OK)
			break;
	}
	json_decref(j);
	if (rc == KT_OK)
		sign_load_registered(a, h);
	return rc;
}

void
sign_free(struct api *a)
{
	for (size_t i = 0; i < a->nsignkeys; i++)
		hsm_key_free(a->signkeys[i].hk);
	a->nsignkeys = 0;
}

/* ---- the steps ---------------------------------------------------------- */

static void sign_logged(struct seq_req *req, void *arg);

static int sign_submit_entry(struct sign_op *op);

/*
 * Worker thread: the HSM signs the digest (and checks its signature).  A
 * request signed at once goes straight on to the log from here; an
 * approved one returns to the loop, which owns its record.
 */
static enum pool_next
sign_hsm_run(void *arg)
{
	struct sign_op *op = arg;
	int rc;

	op->hsm_rc =
	    hsm_sign(op->a->keys_hsm, op->sk->hk, op->digestbin, 32, op->sig,
		sizeof(op->sig), &op->siglen, op->hsm_err, sizeof(op->hsm_err));
	if (op->hsm_rc != KT_OK || op->kind != SIGN_NOW)
		return POOL_COMPLETE;
	/* Once queued, the sequencer owns op: it may be freed already. */
	if ((rc = sign_submit_entry(op)) == KT_OK)
		return POOL_PASSED;
	op->submit_rc = rc;
	return POOL_COMPLETE;
}

/* Builds the signature entry of op and queues it for the log. */
static int
sign_submit_entry(struct sign_op *op)
{
	const char *appr[POLICY_PRINCIPALS_MAX];
	struct kt_entry_sig e;
	struct kt_buf b64;
	json_t *v;
	size_t i;
	char now[32];
	int rc;

	kt_buf_init(&b64, 2 * HSM_SIG_MAX);
	if (kt_b64_append(&b64, op->sig, op->siglen) != KT_OK ||
	    kt_buf_terminate(&b64) != KT_OK) {
		kt_buf_free(&b64);
		return KT_ENOMEM;
	}
	/* An approved request's record is closed in the same transaction. */
	if (op->record != NULL) {
		json_object_set_new(
		    op->record, "status", json_string("signed"));
		json_object_set_new(
		    op->record, "signature", json_string((const char *)b64.p));
		if (api_record(op->record, &op->recbuf) != KT_OK) {
			kt_buf_free(&b64);
			return KT_ENOMEM;
		}
		sign_record_put(&op->req, &op->puts[0], op->id, &op->recbuf);
		/* The store writes the index it assigns in this commit. */
		snprintf(op->idxkey, sizeof(op->idxkey), "%s%s", op->id,
		    SIGN_INDEX_SUFFIX);
		op->puts[1].db = STORE_DB_REQUESTS;
		op->puts[1].key.p = (const uint8_t *)op->idxkey;
		op->puts[1].key.len = strlen(op->idxkey);
		op->puts[1].index_value = 1;
		op->req.item.nputs = 2;
	}
	api_time(now);
	memset(&e, 0, sizeof(e));
	e.kind = "signature";
	e.key = op->sk->id;
	e.alg = op->alg;
	e.digest = op->digest;
	e.sig = (const char *)b64.p;
	e.principal = op->requester;
	e.policy = op->policy;
	e.time = now;
	e.request = op->id;
	e.approvers = appr;
	json_array_foreach(op->approvers, i, v)
	{
		if (i >= sizeof(appr) / sizeof(appr[0])) {
			kt_buf_free(&b64);
			return KT_ETOOBIG;
		}
		appr[e.napprovers++] = json_string_value(v);
	}
	api_entry_artifact(&e, op->artifact);
	rc = kt_entry_sig_encode(&e, &op->entry);
	kt_buf_free(&b64);
	if (rc != KT_OK)
		return rc;
	op->req.item.entry.p = op->entry.p;
	op->req.item.entry.len = op->entry.len;
	kt_leaf_hash(op->entry.p, op->entry.len, &op->req.item.leaf);
	op->req.item.by_key.p = op->keyraw;
	op->req.item.by_key.len = 32;
	op->req.item.by_digest.p = op->digestbin;
	op->req.item.by_digest.len = 32;
	if (op->artname.len > 0) {
		op->req.item.by_artifact.p = op->artname.p;
		op->req.item.by_artifact.len = op->artname.len;
	}
	op->req.done = sign_logged;
	op->req.arg = op;
	if (seq_submit(op->a->seq, &op->req) != KT_OK)
		return KT_EUNAVAIL;
	return KT_OK;
}

/* Loop thread: the HSM answered. */
static void
sign_hsm_done(void *arg)
{
	struct sign_op *op = arg;
	int rc;

	if (op->hsm_rc != KT_OK) {
		log_err("sign: HSM failed for %s with %s: %s", op->requester,
		    op->sk->label, op->hsm_err);
		http_reply_error(op->r, 503, "unavailable",
		    "the HSM could not sign; nothing was logged");
		sign_op_free(op);
		return;
	}
	if (op->kind == SIGN_NOW)
		rc = op->submit_rc; /* the worker could not queue it */
	else
		rc = op->a->shutting_down ? KT_EUNAVAIL : sign_submit_entry(op);
	if (rc != KT_OK) {
		/* Fail closed: the signature never leaves; it is wiped. */
		http_reply_error(op->r, 503, "unavailable",
		    "the log cannot accept entries; no signature was issued");
		sign_op_free(op);
	}
}

/* Loop thread: the sequencer committed (or not). */
static void
sign_logged(struct seq_req *req, void *arg)
{
	struct sign_op *op = arg;
	struct api *a = op->a;
	struct kt_buf entry, proof, b64;
	json_t *j;

	if (req->rc != KT_OK) {
		log_err("sign: not logged, signature withheld: %s", req->err);
		http_reply_error(op->r, 503, "unavailable",
		    "the log could not commit; no signature was issued");
		sign_op_free(op);
		return;
	}
	if (op->kind == SIGN_PENDING || op->kind == SIGN_APPROVE ||
	    op->kind == SIGN_DENY) {
		/* A record update: answer with the record. */
		j = json_deep_copy(op->record);
		http_reply_json(op->r, op->kind == SIGN_PENDING ? 202 : 200, j);
		sign_op_free(op);
		return;
	}
	kt_buf_init(&entry, KT_ENTRY_MAX);
	kt_buf_init(&proof, KT_TLOGPROOF_MAX);
	kt_buf_init(&b64, 2 * HSM_SIG_MAX);
	if (api_proof(a, req->item.index, req->cp->note.p, req->cp->note.len,
		req->cp->size, req->item.duplicate ? NULL : &req->item.entry,
		&entry, &proof) != KT_OK ||
	    kt_b64_append(&b64, op->sig, op->siglen) != KT_OK ||
	    kt_buf_terminate(&b64) != KT_OK) {
		http_reply_error(op->r, 500, "internal",
		    "signature logged but its proof could not be built");
		goto out;
	}
	a->signatures++;
	log_info("signed %s with %s for %s at index %llu", op->digest,
	    op->sk->label, op->requester, (unsigned long long)req->item.index);
	/* Written directly (sorted keys): this is the hot path. */
	{
		struct http_jw jw;
		char *appr = NULL;

		if (json_array_size(op->approvers) > 0 &&
		    (appr = json_dumps(op->approvers, JSON_COMPACT)) == NULL) {
			http_reply_error(op->r, 500, "internal",
			    "signature logged but its answer could not be "
			    "written");
			goto out;
		}
		http_jw_init(&jw, 2048 + proof.len);
		http_jw_str(&jw, "alg", op->alg, strlen(op->alg));
		http_jw_raw(&jw, "approvers", appr != NULL ? appr : "[]");
		http_jw_u64(&jw, "index", req->item.index);
		http_jw_str(&jw, "key", op->sk->id, strlen(op->sk->id));
		http_jw_str(&jw, "proof", (const char *)proof.p, proof.len);
		http_jw_str(&jw, "request", op->id, strlen(op->id));
		http_jw_str(&jw, "signature", (const char *)b64.p, b64.len);
		if (op->kind == SIGN_APPROVED)
			http_jw_str(&jw, "status", "signed", 6);
		free(appr);
		http_reply_jw(op->r, 200, &jw);
	}
out:
	kt_wipe(b64.p, b64.len);
	kt_buf_free(&b64);
	kt_buf_free(&entry);
	kt_buf_free(&proof);
	seq_cp_release(req->cp);
	sign_op_free(op);
}

/* Queues a record-only write of op->record. */
static void
sign_store_record(struct sign_op *op)
{
	if (api_record(op->record, &op->recbuf) != KT_OK) {
		http_reply_error(op->r, 500, "internal", "request record");
		sign_op_free(op);
		return;
	}
	sign_record_put(&op->req, &op->put, op->id, &op->recbuf);
	op->req.write_only = 1;
	op->req.done = sign_logged;
	op->req.arg = op;
	if (op->a->shutting_down || seq_submit(op->a->seq, &op->req) != KT_OK) {
		http_reply_error(op->r, 503, "unavailable",
		    "the log is not accepting requests");
		sign_op_free(op);
	}
}

static void
sign_deny_reply(struct api *a, struct http_req *r, const char *principal,
    const char *key, const struct policy_decision *d)
{
	if ((size_t)d->reason < sizeof(a->denials) / sizeof(a->denials[0]))
		a->denials[d->reason]++;
	log_warn("sign denied: principal %s key %s: %s (%s)", principal, key,
	    policy_reason_name(d->reason), d->detail);
	http_reply_error(r, d->reason == POLICY_REASON_UNKNOWN_KEY ? 404 : 403,
	    policy_reason_name(d->reason), d->detail);
}

/* ---- POST /v1/sign ------------------------------------------------------ */

/*
 * 16 fresh random bytes for a request ID, from a's pool, refilled by one
 * RAND_bytes() call every 256 IDs.  The HTTP thread alone calls it.
 */
static int
sign_random_id(struct api *a, uint8_t out[16])
{
	if (a->idpool_left < 16) {
		if (RAND_bytes(a->idpool, sizeof(a->idpool)) != 1)
			return KT_EINTERNAL;
		a->idpool_left = sizeof(a->idpool);
	}
	a->idpool_left -= 16;
	memcpy(out, a->idpool + a->idpool_left, 16);
	/* Each byte goes out once. */
	memset(a->idpool + a->idpool_left, 0, 16);
	return KT_OK;
}

void
sign_post(struct http_req *r, void *arg)
{
	static const char *const fields[] = { "key", "digest", "artifact",
		NULL };
	static const char *const afields[] = { "name", "size", NULL };
	struct api *a = arg;
	const struct policy_principal *p;
	struct policy_sign_request pr;
	struct policy_decision d;
	struct api_signkey *sk;
	struct api_key *k;
	struct sign_op *op = NULL;
	json_t *body, *art;
	const char *keyname, *digest, *artname = NULL;
	int64_t now = api_now(a), retry;
	uint8_t rnd[16];
	int rc;

	if ((p = api_auth(a, r, POLICY_ROLE_REQUESTER)) == NULL)
		return;
	if ((body = api_body(r)) == NULL)
		return;
	if (api_fields(r, body, fields) != 0 ||
	    (keyname = api_str(r, body, "key", 128, 1)) == NULL ||
	    (digest = api_str(r, body, "digest", 64, 1)) == NULL)
		goto out;
	if ((op = sign_op_new(a, r, SIGN_NOW)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (kt_hex_decode_exact(digest, strlen(digest), op->digestbin, 32) !=
	    KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "digest: must be 64 lowercase hex digits (SHA-256)");
		goto out;
	}
	art = json_object_get(body, "artifact");
	if (art != NULL) {
		json_t *n = json_object_get(art, "name");
		json_t *sz = json_object_get(art, "size");

		if (!json_is_object(art)) {
			http_reply_error(r, 400, "bad_request",
			    "artifact: must be an object");
			goto out;
		}
		if (api_fields(r, art, afields) != 0)
			goto out;
		if (n != NULL &&
		    (!json_is_string(n) || json_string_length(n) == 0 ||
			json_string_length(n) > 255 ||
			strlen(json_string_value(n)) !=
			    json_string_length(n))) {
			http_reply_error(r, 400, "bad_request",
			    "artifact.name: must be a string of 1 to 255 "
			    "bytes");
			goto out;
		}
		if (sz != NULL &&
		    (!json_is_integer(sz) || json_integer_value(sz) < 0)) {
			http_reply_error(r, 400, "bad_request",
			    "artifact.size: must be a non-negative integer");
			goto out;
		}
		artname = n ? json_string_value(n) : NULL;
		op->artifact = json_incref(art);
		if (artname != NULL &&
		    kt_buf_append_str(&op->artname, artname) != KT_OK)
			goto out;
	}
	if ((sk = sign_key_find(a, keyname)) == NULL) {
		memset(&d, 0, sizeof(d));
		d.reason = POLICY_REASON_UNKNOWN_KEY;
		snprintf(d.detail, sizeof(d.detail),
		    "key: no signing key has this label or ID");
		sign_deny_reply(a, r, p->name, keyname, &d);
		goto out;
	}
	if ((k = api_key_get(a, r, sk->id)) == NULL)
		goto out;
	op->sk = sk;
	snprintf(op->alg, sizeof(op->alg), "%s", kt_pubkey_alg(k->pk));
	memcpy(op->digest, digest, 65);
	snprintf(op->requester, sizeof(op->requester), "%s", p->name);
	if (kt_hex_decode_exact(sk->id, 64, op->keyraw, 32) != KT_OK ||
	    sign_random_id(a, rnd) != KT_OK ||
	    (op->approvers = json_array()) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	kt_hex_encode(rnd, sizeof(rnd), op->id);

	memset(&pr, 0, sizeof(pr));
	pr.principal = p->name;
	pr.key = sk->label;
	pr.alg = op->alg;
	pr.key_state = k->active ? POLICY_KEY_ACTIVE : POLICY_KEY_REVOKED;
	pr.cert_not_after = k->cert_not_after;
	pr.artifact = artname;
	pr.now = now;
	/* KT_OK only for ALLOW; KT_EPOLICY carries the verdict otherwise. */
	rc = policy_check_sign(a->policy, &pr, &d);
	if (rc != KT_OK && rc != KT_EPOLICY) {
		http_reply_error(r, 500, "internal", "policy check failed");
		goto out;
	}
	if (d.verdict == POLICY_DENY) {
		sign_deny_reply(a, r, p->name, sk->label, &d);
		goto out;
	}
	if (policy_rate_take(
		a->rate, a->policy, p->name, sk->label, now, &retry) != KT_OK) {
		char ra[32];

		snprintf(ra, sizeof(ra), "%lld", (long long)retry);
		d.reason = POLICY_REASON_RATE_LIMITED;
		if ((size_t)d.reason <
		    sizeof(a->denials) / sizeof(a->denials[0]))
			a->denials[d.reason]++;
		log_warn("sign denied: principal %s key %s: rate_limited",
		    p->name, sk->label);
		http_add_header(r, "Retry-After", ra);
		http_reply_error(r, 429, "rate_limited",
		    "too many signatures with this key; retry later");
		goto out;
	}
	if (d.verdict == POLICY_NEEDS_APPROVAL) {
		json_t *from = json_array();

		for (size_t i = 0; from != NULL && i < d.napprovers; i++)
			json_array_append_new(
			    from, json_string(d.approvers[i]));
		op->kind = SIGN_PENDING;
		op->record = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, "
				       "s:o, s:i, s:s, s:I, s:I, s:s}",
		    "request", op->id, "key", sk->label, "key_id", sk->id,
		    "alg", op->alg, "digest", op->digest, "requester",
		    op->requester, "approvers", op->approvers, "from", from,
		    "needed", (int)d.required, "status", "pending", "created",
		    (json_int_t)now, "expires",
		    (json_int_t)(now + policy_request_expire(a->policy)),
		    "policy", policy_sha256(a->policy));
		if (op->record == NULL) {
			http_reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
		if (op->artifact != NULL)
			json_object_set(op->record, "artifact", op->artifact);
		log_info("sign request %s by %s with %s waits for %u "
			 "approval(s)",
		    op->id, op->requester, sk->label, d.required);
		sign_store_record(op);
		op = NULL;
		goto out;
	}
	snprintf(
	    op->policy, sizeof(op->policy), "%s", policy_sha256(a->policy));
	op->job.run = sign_hsm_run;
	op->job.done = sign_hsm_done;
	op->job.arg = op;
	pool_submit(a->pool, &op->job);
	op = NULL;
out:
	sign_op_free(op);
	json_decref(body);
}

/* ---- requests ----------------------------------------------------------- */

/* Loads request id's record, or NULL after replying. */
static json_t *
sign_record_load(struct api *a, struct http_req *r, const char *id)
{
	struct store_rd *rd;
	struct kt_buf b;
	json_t *j = NULL;
	uint8_t raw[16];

	if (strlen(id) != SIGN_ID_LEN ||
	    kt_hex_decode_exact(id, SIGN_ID_LEN, raw, 16) != KT_OK) {
		http_reply_error(r, 404, "not_found", "no such request");
		return NULL;
	}
	if ((rd = api_rd(a, r)) == NULL)
		return NULL;
	kt_buf_init(&b, SIGN_RECORD_MAX);
	if (store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)id,
		SIGN_ID_LEN, &b) == KT_OK)
		j = json_loadb((const char *)b.p, b.len, 0, NULL);
	/* A signed request: its entry's index, from the same snapshot. */
	if (j != NULL && json_object_get(j, "index") == NULL) {
		char key[SIGN_ID_LEN + sizeof(SIGN_INDEX_SUFFIX)];

		snprintf(key, sizeof(key), "%s%s", id, SIGN_INDEX_SUFFIX);
		kt_buf_reset(&b);
		if (store_rd_get(rd, STORE_DB_REQUESTS, (const uint8_t *)key,
			strlen(key), &b) == KT_OK &&
		    b.len == 8)
			json_object_set_new(j, "index",
			    json_integer((json_int_t)kt_get_u64be(b.p)));
	}
	store_rd_end(rd);
	kt_buf_free(&b);
	if (j == NULL)
		http_reply_error(r, 404, "not_found", "no such request");
	return j;
}

/* A pending request past its expiry reads as expired (and stays so). */
static void
sign_record_expire(json_t *rec, int64_t now)
{
	const char *st = json_string_value(json_object_get(rec, "status"));
	json_t *exp = json_object_get(rec, "expires");

	if (st != NULL && strcmp(st, "pending") == 0 && json_is_integer(exp) &&
	    now >= json_integer_value(exp))
		json_object_set_new(rec, "status", json_string("expired"));
}

static void
sign_approve(struct api *a, struct http_req *r,
    const struct policy_principal *p, const char *id, int deny)
{
	struct policy_approval ap;
	struct sign_op *op = NULL;
	json_t *rec = NULL, *body = NULL, *list;
	const char *already[POLICY_APPROVERS_MAX];
	const char *status, *keylabel, *requester, *digest, *alg;
	size_t n = 0, i;
	json_t *v;

	if ((rec = sign_record_load(a, r, id)) == NULL)
		return;
	sign_record_expire(rec, api_now(a));
	status = json_string_value(json_object_get(rec, "status"));
	keylabel = json_string_value(json_object_get(rec, "key"));
	requester = json_string_value(json_object_get(rec, "requester"));
	digest = json_string_value(json_object_get(rec, "digest"));
	alg = json_string_value(json_object_get(rec, "alg"));
	list = json_object_get(rec, "approvers");
	if (status == NULL || keylabel == NULL || requester == NULL ||
	    digest == NULL || alg == NULL || !json_is_array(list)) {
		http_reply_error(r, 500, "internal", "request record");
		goto out;
	}
	if (strcmp(status, "pending") != 0) {
		char detail[96];

		snprintf(detail, sizeof(detail), "the request is %s", status);
		http_reply_error(r, 409, "conflict", detail);
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		if (n < POLICY_APPROVERS_MAX && json_is_string(v))
			already[n++] = json_string_value(v);
	}
	/*
	 * The policy decides whatever the record says: a requester never
	 * approves its own request, a principal counts once, only the key's
	 * approvers count (policy_check_approval).
	 */
	if (policy_check_approval(a->policy, keylabel, requester, p->name,
		already, n, &ap) != KT_OK) {
		if ((size_t)ap.reason <
		    sizeof(a->denials) / sizeof(a->denials[0]))
			a->denials[ap.reason]++;
		log_warn("approval refused: %s on request %s: %s", p->name, id,
		    policy_reason_name(ap.reason));
		http_reply_error(
		    r, 403, policy_reason_name(ap.reason), ap.detail);
		goto out;
	}
	if ((op = sign_op_new(a, r, deny ? SIGN_DENY : SIGN_APPROVE)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	snprintf(op->id, sizeof(op->id), "%s", id);
	if (!sign_busy_claim(op)) {
		http_reply_error(
		    r, 409, "conflict", "the request is being updated; retry");
		goto out;
	}
	op->record = rec;
	rec = NULL;
	if (deny) {
		const char *reason = "";

		if (http_req_body(r).len > 0) {
			static const char *const fields[] = { "reason", NULL };

			if ((body = api_body(r)) == NULL)
				goto out;
			if (api_fields(r, body, fields) != 0 ||
			    (reason = api_str(r, body, "reason", 255, 0)) ==
				NULL)
				goto out;
		}
		json_object_set_new(
		    op->record, "status", json_string("denied"));
		json_object_set_new(
		    op->record, "denied_by", json_string(p->name));
		json_object_set_new(op->record, "reason", json_string(reason));
		log_info("request %s denied by %s", id, p->name);
		sign_store_record(op);
		op = NULL;
		goto out;
	}
	if (ap.counted)
		json_array_append_new(json_object_get(op->record, "approvers"),
		    json_string(p->name));
	if (!ap.complete) {
		log_info("request %s approved by %s (%u of %u)", id, p->name,
		    ap.have, ap.required);
		sign_store_record(op);
		op = NULL;
		goto out;
	}
	/* The quorum is reached: sign, log, close the request. */
	op->kind = SIGN_APPROVED;
	op->sk = sign_key_find(a, keylabel);
	if (op->sk == NULL ||
	    kt_hex_decode_exact(digest, 64, op->digestbin, 32) != KT_OK ||
	    kt_hex_decode_exact(op->sk->id, 64, op->keyraw, 32) != KT_OK) {
		http_reply_error(r, 409, "conflict",
		    "the request's key is no longer available for signing");
		goto out;
	}
	{
		/* Decide again now: the key may have been revoked since. */
		struct policy_sign_request pr;
		struct policy_decision d;
		struct api_key *k = api_key_get(a, r, op->sk->id);
		json_t *art = json_object_get(op->record, "artifact");

		if (k == NULL)
			goto out;
		memset(&pr, 0, sizeof(pr));
		pr.principal = requester;
		pr.key = keylabel;
		pr.alg = alg;
		pr.key_state =
		    k->active ? POLICY_KEY_ACTIVE : POLICY_KEY_REVOKED;
		pr.cert_not_after = k->cert_not_after;
		pr.artifact = json_string_value(json_object_get(art, "name"));
		pr.now = api_now(a);
		if (policy_check_sign(a->policy, &pr, &d) == KT_EINVAL ||
		    d.verdict == POLICY_DENY) {
			sign_deny_reply(a, r, requester, keylabel, &d);
			goto out;
		}
		if (art != NULL) {
			op->artifact = json_incref(art);
			if (pr.artifact != NULL &&
			    kt_buf_append_str(&op->artname, pr.artifact) !=
				KT_OK)
				goto out;
		}
	}
	memcpy(op->digest, digest, 65);
	snprintf(op->alg, sizeof(op->alg), "%s", alg);
	snprintf(op->requester, sizeof(op->requester), "%s", requester);
	op->approvers = json_incref(json_object_get(op->record, "approvers"));
	log_info(
	    "request %s approved by %s: quorum reached, signing", id, p->name);
	snprintf(
	    op->policy, sizeof(op->policy), "%s", policy_sha256(a->policy));
	op->job.run = sign_hsm_run;
	op->job.done = sign_hsm_done;
	op->job.arg = op;
	pool_submit(a->pool, &op->job);
	op = NULL;
out:
	sign_op_free(op);
	json_decref(rec);
	json_decref(body);
}

/* /v1/requests/<id>[/approve|/deny] */
void
sign_requests(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const char *rest = http_req_path(r) + strlen("/v1/requests/");
	const struct policy_principal *p;
	char id[SIGN_ID_LEN + 1];
	const char *slash = strchr(rest, '/');
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	json_t *rec;

	if (idlen != SIGN_ID_LEN) {
		http_reply_error(r, 404, "not_found", "no such request");
		return;
	}
	memcpy(id, rest, SIGN_ID_LEN);
	id[SIGN_ID_LEN] = 0;
	if (slash == NULL) {
		if (http_req_method(r) == HTTP_POST) {
			http_reply_error(r, 405, "method_not_allowed",
			    "POST to /approve or /deny");
			return;
		}
		if (api_auth(a, r,
			POLICY_ROLE_REQUESTER | POLICY_ROLE_APPROVER |
			    POLICY_ROLE_ADMIN) == NULL)
			return;
		if ((rec = sign_record_load(a, r, id)) == NULL)
			return;
		sign_record_expire(rec, api_now(a));
		http_reply_json(r, 200, rec);
		return;
	}
	if (http_req_method(r) != HTTP_POST) {
		http_reply_error(
		    r, 405, "method_not_allowed", "approve and deny are POSTs");
		return;
	}
	if (strcmp(slash, "/approve") != 0 && strcmp(slash, "/deny") != 0) {
		http_reply_error(r, 404, "not_found", "no such path");
		return;
	}
	if ((p = api_auth(a, r, POLICY_ROLE_APPROVER)) == NULL)
		return;
	sign_approve(a, r, p, id, strcmp(slash, "/deny") == 0);
}
