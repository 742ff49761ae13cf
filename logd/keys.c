/*
 * The key lifecycle: POST /v1/keys and POST /v1/keys/<id>/csr (keys.h).
 *
 * Every change is a struct keys_op that reads the registry on the event
 * loop thread, builds its `key` entry and the key's new record, and hands
 * both to the sequencer, which commits them in one write transaction; the
 * answer, with the entry's inclusion proof, goes out from the completion.
 * Making a key and signing a request wait on the HSM, so those steps run
 * on the worker pool first.  From its first look at the registry until
 * its commit a change holds a slot of a->keys_busy: two changes of one key
 * never work from the same old record, so a certificate cannot undo a
 * revocation committed meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "keys.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/merkle.h"
#include "keytrail/sig.h"
#include "log.h"
#include "sign.h"

/* Longest revocation reason. */
#define KEYS_REASON_MAX 255
/* Largest registry record (a certificate makes it a few KiB). */
#define KEYS_RECORD_MAX (64 * 1024)
/* Longest "action" and "alg" values worth reading. */
#define KEYS_WORD_MAX 32
/* The characters of a key label (docs/policy.md, "Keys"). */
#define KEYS_LABEL_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

enum keys_action {
	KEYS_CREATE,
	KEYS_IMPORT,
	KEYS_CERTIFICATE,
	KEYS_REVOKE,
	KEYS_CSR
};

static const char *const keys_action_names[] = { "create", "import",
	"certificate", "revoke", "csr" };

struct keys_op {
	struct seq_req req; /* the sequencer hands this back */
	struct pool_job job;
	struct api *a;
	struct http_req *r;
	enum keys_action action;
	int slot; /* index in a->keys_busy, or -1 */
	char keyid[65];
	uint8_t keyraw[32];
	char label[POLICY_LABEL_MAX + 1];
	char principal[POLICY_NAME_MAX + 1];
	enum hsm_alg alg;
	struct hsm_key *hk;	/* create: the new key until it may sign */
	int logged;		/* create: its entry committed */
	struct api_signkey *sk; /* csr: the key that signs */
	struct cert_csr *csr;
	int rc; /* the worker's result */
	char err[HSM_ERR_SIZE];
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen;
	struct kt_buf entry;
	struct kt_buf rec;
	struct kt_buf pem;
	struct store_put put;
};

static struct keys_op *
keys_op_new(struct api *a, struct http_req *r, const char *principal)
{
	struct keys_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->a = a;
	op->r = r;
	op->slot = -1;
	snprintf(op->principal, sizeof(op->principal), "%s", principal);
	kt_buf_init(&op->entry, KT_ENTRY_MAX);
	kt_buf_init(&op->rec, KEYS_RECORD_MAX);
	kt_buf_init(&op->pem, CERT_PEM_MAX);
	return op;
}

/* A key made in the HSM whose creation was not logged: destroyed. */
struct keys_orphan {
	struct pool_job job;
	struct hsm *h;
	struct hsm_key *hk;
	int rc;
	char err[HSM_ERR_SIZE];
};

/* Worker thread. */
static enum pool_next
keys_orphan_run(void *arg)
{
	struct keys_orphan *o = arg;

	o->rc = hsm_destroy(o->h, o->hk, o->err, sizeof(o->err));
	return POOL_COMPLETE;
}

/* Loop thread. */
static void
keys_orphan_done(void *arg)
{
	struct keys_orphan *o = arg;

	if (o->rc == KT_OK)
		log_info("keys: %s destroyed in the HSM: its creation was not "
			 "logged",
		    hsm_key_label(o->hk));
	else
		log_err("keys: %s was made in the HSM but not logged, and "
			"could not be destroyed (%s); it never signs",
		    hsm_key_label(o->hk), o->err);
	hsm_key_free(o->hk);
	free(o);
}

/*
 * Takes over hk, a key whose creation was not logged, and destroys it in
 * the token on a worker thread: the HSM holds no key the log does not
 * know of.  (The destroy matches label and CKA_ID, so a key made later
 * under the same label is safe.)
 */
static void
keys_orphan_destroy(struct api *a, struct hsm_key *hk)
{
	struct keys_orphan *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		log_err("keys: %s was made in the HSM but not logged; it "
			"never signs",
		    hsm_key_label(hk));
		hsm_key_free(hk);
		return;
	}
	o->h = a->keys_hsm;
	o->hk = hk;
	if (a->shutting_down || a->pool == NULL) {
		/* The workers are stopping: done here, once. */
		keys_orphan_run(o);
		keys_orphan_done(o);
		return;
	}
	o->job.run = keys_orphan_run;
	o->job.done = keys_orphan_done;
	o->job.arg = o;
	pool_submit(a->pool, &o->job);
}

static void
keys_op_free(struct keys_op *op)
{
	if (op == NULL)
		return;
	if (op->slot >= 0)
		memset(&op->a->keys_busy[op->slot], 0,
		    sizeof(op->a->keys_busy[op->slot]));
	/*
	 * A made key whose entry did not commit is destroyed; a logged one
	 * that could not be handed on stays (it signs after a restart).
	 */
	if (op->action == KEYS_CREATE && op->hk != NULL && !op->logged) {
		keys_orphan_destroy(op->a, op->hk);
		op->hk = NULL;
	}
	hsm_key_free(op->hk);
	cert_csr_free(op->csr);
	kt_wipe(op->sig, sizeof(op->sig));
	kt_buf_free(&op->entry);
	kt_buf_free(&op->rec);
	kt_buf_free(&op->pem);
	free(op);
}

/*
 * Claims a slot of a->keys_busy for a change of keyid and label (either
 * may be ""); replies 409 and returns -1 when a change of either is in
 * flight (or every slot is taken).
 */
static int
keys_claim(struct keys_op *op, const char *keyid, const char *label)
{
	struct api *a = op->a;
	size_t free_slot = API_KEYS_BUSY_MAX;

	for (size_t i = 0; i < API_KEYS_BUSY_MAX; i++) {
		struct api_keys_busy *b = &a->keys_busy[i];

		if ((keyid[0] != 0 && strcmp(b->id, keyid) == 0) ||
		    (label[0] != 0 && strcmp(b->label, label) == 0)) {
			http_reply_error(op->r, 409, "conflict",
			    "another change of this key or label is in "
			    "progress; retry");
			return -1;
		}
		if (b->id[0] == 0 && b->label[0] == 0 &&
		    free_slot == API_KEYS_BUSY_MAX)
			free_slot = i;
	}
	if (free_slot == API_KEYS_BUSY_MAX) {
		http_reply_error(op->r, 409, "conflict",
		    "too many key changes in progress; retry");
		return -1;
	}
	op->slot = (int)free_slot;
	snprintf(a->keys_busy[free_slot].id, sizeof(a->keys_busy[0].id), "%s",
	    keyid);
	snprintf(a->keys_busy[free_slot].label, sizeof(a->keys_busy[0].label),
	    "%s", label);
	return 0;
}

/*
 * A label as the policy can name it: 1-64 of [A-Za-z0-9._-], a letter or
 * digit first.  Not 64 lowercase hex digits either: /v1/sign and the CLI
 * take a label or a key ID, and one must never read as the other.
 */
static int
keys_label_ok(const char *label)
{
	size_t n = strlen(label);

	return n > 0 && n <= API_LABEL_MAX &&
	    strspn(label, KEYS_LABEL_CHARS) == n && label[0] != '.' &&
	    label[0] != '_' && label[0] != '-' &&
	    !(n == 64 && strspn(label, "0123456789abcdef") == n);
}

/* The label field of body, checked; NULL after replying 400/413. */
static const char *
keys_label(struct http_req *r, json_t *body)
{
	const char *label = api_str(r, body, "label", API_LABEL_MAX, 1);

	if (label != NULL && !keys_label_ok(label)) {
		http_reply_error(r, 400, "bad_request",
		    "label: must be 1 to 64 of A-Z a-z 0-9 . _ -, starting "
		    "with a letter or digit, and not look like a key ID");
		return NULL;
	}
	return label;
}

/* The key field of body: a key ID; NULL after replying 400. */
static const char *
keys_id(struct http_req *r, json_t *body)
{
	const char *keyid = api_str(r, body, "key", 64, 1);
	uint8_t raw[32];

	if (keyid != NULL &&
	    kt_hex_decode_exact(keyid, strlen(keyid), raw, 32) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "key: must be a key ID (64 lowercase hex digits)");
		return NULL;
	}
	return keyid;
}

struct keys_label_search {
	const char *label;
	int found;
};

/* store_rd_iter: does any record carry the label? */
static int
keys_label_cb(void *ctx, struct kt_bytes key, struct kt_bytes val)
{
	struct keys_label_search *s = ctx;
	json_t *rec = json_loadb((const char *)val.p, val.len, 0, NULL);
	const char *label = json_string_value(json_object_get(rec, "label"));

	(void)key;
	if (label != NULL && strcmp(label, s->label) == 0)
		s->found = 1;
	json_decref(rec);
	return KT_OK;
}

/*
 * 0 when no registered key (and no signing key) has label; -1 after
 * replying 409, or 503 when the registry cannot be read.
 */
static int
keys_label_free(struct api *a, struct http_req *r, const char *label)
{
	struct keys_label_search s = { label, 0 };
	struct store_rd *rd;
	int rc;

	if ((rd = api_rd(a, r)) == NULL)
		return -1;
	rc = store_rd_iter(rd, STORE_DB_KEYS, keys_label_cb, &s);
	store_rd_end(rd);
	if (rc != KT_OK) {
		api_reply_kt(r, rc, "key registry unavailable");
		return -1;
	}
	if (s.found || sign_key_find(a, label) != NULL) {
		http_reply_error(r, 409, "conflict",
		    "label: a registered key has this label");
		return -1;
	}
	return 0;
}

/*
 * The registry record of keyid, or NULL after replying 404 (503 when the
 * registry cannot be read).
 */
static json_t *
keys_record(struct api *a, struct http_req *r, const char *keyid)
{
	struct store_rd *rd;
	json_t *rec;

	if ((rd = api_rd(a, r)) == NULL)
		return NULL;
	rec = api_key_load(rd, keyid);
	store_rd_end(rd);
	if (rec == NULL)
		http_reply_error(r, 404, "unknown_key",
		    "key: no registered key has this ID");
	return rec;
}

/* ---- logging a change --------------------------------------------------- */

/* Loop thread: the change committed (or not). */
static void
keys_logged(struct seq_req *req, void *arg)
{
	struct keys_op *op = arg;
	struct api *a = op->a;

	if (req->rc == KT_OK) {
		api_key_drop(a, op->keyid);
		log_info("keys: %s of %s (%s) by %s logged at index %llu",
		    keys_action_names[op->action], op->keyid, op->label,
		    op->principal, (unsigned long long)req->item.index);
		if (op->action == KEYS_CREATE) {
			op->logged = 1;
			/* Registered: from now on the policy decides. */
			if (sign_key_add(a, op->hk) == KT_OK)
				op->hk = NULL;
			else
				log_err("keys: %s is logged but cannot sign "
					"until a restart",
				    op->label);
		}
	} else if (op->action == KEYS_CREATE) {
		log_err("keys: %s was made in the HSM but not logged (%s); "
			"it is destroyed",
		    op->label, req->err);
	}
	api_write_reply(a, op->r, req, op->keyid);
	keys_op_free(op);
}

/*
 * Queues entry and the key's record rec (both taken over, either may be
 * NULL after a failed allocation) under op->keyid for one commit.  Takes
 * over op: on failure it replies and frees it.
 */
static void
keys_submit(struct keys_op *op, json_t *rec, json_t *entry)
{
	struct api *a = op->a;
	int rc;

	rc = rec == NULL ? KT_ENOMEM : api_record(rec, &op->rec);
	json_decref(rec);
	if (rc != KT_OK) {
		json_decref(entry);
		http_reply_error(op->r, 500, "internal", "key record");
		keys_op_free(op);
		return;
	}
	rc = entry == NULL ? KT_ENOMEM : kt_entry_encode(entry, &op->entry);
	json_decref(entry);
	if (rc != KT_OK) {
		api_reply_kt(op->r,
		    rc == KT_ETOOBIG ? KT_ETOOBIG : KT_EINTERNAL,
		    rc == KT_ETOOBIG ? "entry larger than 65535 bytes"
				     : "entry could not be encoded");
		keys_op_free(op);
		return;
	}
	if (kt_hex_decode_exact(op->keyid, 64, op->keyraw, 32) != KT_OK) {
		http_reply_error(op->r, 500, "internal", "key id");
		keys_op_free(op);
		return;
	}
	op->put.db = STORE_DB_KEYS;
	op->put.key.p = (const uint8_t *)op->keyid;
	op->put.key.len = 64;
	op->put.val.p = op->rec.p;
	op->put.val.len = op->rec.len;
	op->req.item.entry.p = op->entry.p;
	op->req.item.entry.len = op->entry.len;
	kt_leaf_hash(op->entry.p, op->entry.len, &op->req.item.leaf);
	/* Indexed by the raw key ID, as signature entries are. */
	op->req.item.by_key.p = op->keyraw;
	op->req.item.by_key.len = 32;
	op->req.item.puts = &op->put;
	op->req.item.nputs = 1;
	op->req.done = keys_logged;
	op->req.arg = op;
	if (a->shutting_down || seq_submit(a->seq, &op->req) != KT_OK) {
		if (op->action == KEYS_CREATE)
			log_err("keys: %s was made in the HSM but not logged "
				"(the log is not accepting entries); it is "
				"destroyed",
			    op->label);
		http_reply_error(op->r, 503, "unavailable",
		    "the log is not accepting entries");
		keys_op_free(op);
		return;
	}
	a->entries_submitted++;
}

/* ---- create ------------------------------------------------------------- */

/* Worker thread: the HSM makes the key pair. */
static enum pool_next
keys_generate(void *arg)
{
	struct keys_op *op = arg;

	op->rc = hsm_generate(op->a->keys_hsm, op->alg, op->label, &op->hk,
	    op->err, sizeof(op->err));
	return POOL_COMPLETE;
}

/* Loop thread: the key exists; log its creation. */
static void
keys_generated(void *arg)
{
	struct keys_op *op = arg;
	struct api *a = op->a;
	struct kt_bytes spki;
	struct hsm_attrs at;
	struct kt_buf b64;
	json_t *entry, *rec;
	char now[32];

	if (op->rc != KT_OK) {
		log_err(
		    "keys: the HSM did not make %s: %s", op->label, op->err);
		if (op->rc == KT_EEXIST)
			http_reply_error(op->r, 409, "conflict",
			    "label: the HSM token already holds an object "
			    "with this label");
		else
			http_reply_error(op->r, 503, "unavailable",
			    "the HSM could not make the key; nothing was "
			    "logged");
		keys_op_free(op);
		return;
	}
	snprintf(op->keyid, sizeof(op->keyid), "%s", hsm_key_id(op->hk));
	memcpy(a->keys_busy[op->slot].id, op->keyid, sizeof(op->keyid));
	spki = hsm_key_spki(op->hk);
	hsm_key_attrs(op->hk, &at);
	kt_buf_init(&b64, 2 * KT_SPKI_MAX);
	if (kt_b64_append(&b64, spki.p, spki.len) != KT_OK ||
	    kt_buf_terminate(&b64) != KT_OK) {
		kt_buf_free(&b64);
		http_reply_error(op->r, 500, "internal", "out of memory");
		keys_op_free(op);
		return;
	}
	api_time(now);
	/* The attributes the token reports: the key never left it. */
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, "
			  "s:s}, s:s, s:s}",
	    "kind", "key", "action", "create", "key", op->keyid, "alg",
	    hsm_alg_name(op->alg), "spki", (const char *)b64.p, "label",
	    op->label, "attrs", "sensitive", at.sensitive ? "true" : "false",
	    "never_extractable", at.never_extractable ? "true" : "false",
	    "always_sensitive", at.always_sensitive ? "true" : "false", "local",
	    at.local ? "true" : "false", "principal", op->principal, "time",
	    now);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:b}", "alg",
	    hsm_alg_name(op->alg), "label", op->label, "spki",
	    (const char *)b64.p, "state", "active", "hsm", 1);
	kt_buf_free(&b64);
	keys_submit(op, rec, entry);
}

static void
keys_create(struct keys_op *op, json_t *body)
{
	static const char *const fields[] = { "action", "label", "alg", NULL };
	struct api *a = op->a;
	struct http_req *r = op->r;
	const char *label, *alg;

	if (api_fields(r, body, fields) != 0 ||
	    (label = keys_label(r, body)) == NULL ||
	    (alg = api_str(r, body, "alg", KEYS_WORD_MAX, 1)) == NULL)
		goto fail;
	if (hsm_alg_parse(alg, &op->alg) != KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "alg: must be ecdsa-p256-sha256, ecdsa-p384-sha256, "
		    "rsa3072-pss-sha256, rsa4096-pss-sha256 or ed25519");
		goto fail;
	}
	if (a->keys_hsm == NULL) {
		http_reply_error(r, 503, "unavailable",
		    "this log has no signing keys token (hsm.keys_token)");
		goto fail;
	}
	if (keys_label_free(a, r, label) != 0)
		goto fail;
	/* Room in the signing keys for this one and those being made. */
	{
		size_t making = 0;

		/* Counting imports too errs on the safe side. */
		for (size_t i = 0; i < API_KEYS_BUSY_MAX; i++)
			making += a->keys_busy[i].label[0] != 0;
		if (a->nsignkeys + making >= API_SIGNKEYS_MAX) {
			http_reply_error(r, 409, "conflict",
			    "this log holds the most signing keys it can");
			goto fail;
		}
	}
	if (keys_claim(op, "", label) != 0)
		goto fail;
	snprintf(op->label, sizeof(op->label), "%s", label);
	op->action = KEYS_CREATE;
	log_info("keys: %s asks for a new %s key %s", op->principal,
	    hsm_alg_name(op->alg), op->label);
	/* RSA-4096 takes seconds: the loop thread does not wait for it. */
	op->job.run = keys_generate;
	op->job.done = keys_generated;
	op->job.arg = op;
	pool_submit(a->pool, &op->job);
	return;
fail:
	keys_op_free(op);
}

/* ---- import ------------------------------------------------------------- */

static void
keys_import(struct keys_op *op, json_t *body)
{
	static const char *const fields[] = { "action", "spki", "label", NULL };
	struct api *a = op->a;
	struct http_req *r = op->r;
	const char *spki, *label, *alg;
	uint8_t der[KT_SPKI_MAX];
	struct kt_pubkey *pk = NULL;
	json_t *exists, *entry, *rec;
	char now[32];
	size_t dlen;

	if (api_fields(r, body, fields) != 0 ||
	    (spki = api_str(r, body, "spki", 4 * KT_SPKI_MAX / 3 + 4, 1)) ==
		NULL ||
	    (label = keys_label(r, body)) == NULL)
		goto fail;
	if (kt_b64_decode(spki, strlen(spki), der, sizeof(der), &dlen) !=
	    KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "spki: must be base64 of a DER SubjectPublicKeyInfo");
		goto fail;
	}
	switch (kt_pubkey_parse(der, dlen, &pk)) {
	case KT_OK:
		break;
	case KT_EPOLICY:
		http_reply_error(r, 400, "weak_key",
		    "spki: supported keys are ECDSA P-256/P-384, RSA "
		    "3072/4096 (PSS) and Ed25519");
		goto fail;
	default:
		http_reply_error(r, 400, "bad_request",
		    "spki: must be base64 of a canonical DER "
		    "SubjectPublicKeyInfo");
		goto fail;
	}
	alg = kt_pubkey_alg(pk);
	snprintf(op->keyid, sizeof(op->keyid), "%s", kt_pubkey_id(pk));
	snprintf(op->label, sizeof(op->label), "%s", label);
	op->action = KEYS_IMPORT;
	if (keys_claim(op, op->keyid, label) != 0)
		goto fail;
	{
		struct store_rd *rd;

		if ((rd = api_rd(a, r)) == NULL)
			goto fail;
		exists = api_key_load(rd, op->keyid);
		store_rd_end(rd);
	}
	if (exists != NULL) {
		json_decref(exists);
		http_reply_error(
		    r, 409, "conflict", "spki: this key is already registered");
		goto fail;
	}
	if (keys_label_free(a, r, label) != 0)
		goto fail;
	api_time(now);
	rec = json_pack("{s:s, s:s, s:s, s:s}", "alg", alg, "label", label,
	    "spki", spki, "state", "active");
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind",
	    "key", "action", "import", "key", op->keyid, "alg", alg, "spki",
	    spki, "label", label, "principal", op->principal, "time", now);
	kt_pubkey_free(pk);
	keys_submit(op, rec, entry);
	return;
fail:
	kt_pubkey_free(pk);
	keys_op_free(op);
}

/* ---- certificate -------------------------------------------------------- */

static void
keys_certificate(struct keys_op *op, json_t *body)
{
	static const char *const fields[] = { "action", "key", "cert", NULL };
	struct http_req *r = op->r;
	const char *keyid, *cert, *spki, *state, *alg, *label;
	uint8_t *der = NULL, spkider[KT_SPKI_MAX];
	struct cert_info ci;
	json_t *rec = NULL, *entry;
	char now[32], err[POLICY_ERR_SIZE];
	size_t dlen, spkilen;
	int rc;

	if (api_fields(r, body, fields) != 0 ||
	    (keyid = keys_id(r, body)) == NULL ||
	    (cert = api_str(r, body, "cert", KT_B64_ENCLEN(CERT_DER_MAX), 1)) ==
		NULL)
		goto fail;
	if ((der = malloc(CERT_DER_MAX)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto fail;
	}
	if (cert[0] == 0 ||
	    kt_b64_decode(cert, strlen(cert), der, CERT_DER_MAX, &dlen) !=
		KT_OK) {
		http_reply_error(r, 400, "bad_request",
		    "cert: must be canonical base64 of a DER X.509 "
		    "certificate");
		goto fail;
	}
	snprintf(op->keyid, sizeof(op->keyid), "%s", keyid);
	op->action = KEYS_CERTIFICATE;
	if (keys_claim(op, keyid, "") != 0 ||
	    (rec = keys_record(op->a, r, keyid)) == NULL)
		goto fail;
	spki = json_string_value(json_object_get(rec, "spki"));
	state = json_string_value(json_object_get(rec, "state"));
	alg = json_string_value(json_object_get(rec, "alg"));
	label = json_string_value(json_object_get(rec, "label"));
	if (spki == NULL || state == NULL || alg == NULL || label == NULL ||
	    kt_b64_decode(spki, strlen(spki), spkider, sizeof(spkider),
		&spkilen) != KT_OK) {
		http_reply_error(r, 500, "internal", "key record unreadable");
		goto fail;
	}
	if (strcmp(state, "active") != 0) {
		http_reply_error(r, 409, "conflict",
		    "key: revoked; a certificate would change nothing");
		goto fail;
	}
	rc = cert_parse(der, dlen, spkider, spkilen, &ci, err, sizeof(err));
	if (rc != KT_OK) {
		char detail[POLICY_ERR_SIZE + 16];

		snprintf(detail, sizeof(detail), "cert: %s", err);
		if (rc == KT_EVERIFY)
			http_reply_error(r, 400, "cert_mismatch", detail);
		else if (rc == KT_ENOMEM)
			http_reply_error(r, 500, "internal", detail);
		else
			http_reply_error(r, 400, "bad_request", detail);
		goto fail;
	}
	snprintf(op->label, sizeof(op->label), "%s", label);
	api_time(now);
	/*
	 * An expired certificate is recorded like any other: it is a fact
	 * about the key, and its notAfter then stops the key signing.
	 */
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind",
	    "key", "action", "certificate", "key", keyid, "alg", alg, "label",
	    label, "cert", cert, "principal", op->principal, "time", now);
	json_object_set_new(rec, "cert", json_string(cert));
	json_object_set_new(
	    rec, "not_before", json_integer((json_int_t)ci.not_before));
	json_object_set_new(
	    rec, "not_after", json_integer((json_int_t)ci.not_after));
	json_object_set_new(rec, "subject", json_string(ci.subject));
	free(der);
	keys_submit(op, rec, entry);
	return;
fail:
	free(der);
	json_decref(rec);
	keys_op_free(op);
}

/* ---- revoke ------------------------------------------------------------- */

static void
keys_revoke(struct keys_op *op, json_t *body)
{
	static const char *const fields[] = { "action", "key", "reason", NULL };
	struct http_req *r = op->r;
	const char *keyid, *reason, *state, *label;
	json_t *rec = NULL, *entry;
	char now[32];

	if (api_fields(r, body, fields) != 0 ||
	    (keyid = keys_id(r, body)) == NULL ||
	    (reason = api_str(r, body, "reason", KEYS_REASON_MAX, 1)) == NULL)
		goto fail;
	if (reason[0] == 0) {
		http_reply_error(
		    r, 400, "bad_request", "reason: required for a revocation");
		goto fail;
	}
	snprintf(op->keyid, sizeof(op->keyid), "%s", keyid);
	op->action = KEYS_REVOKE;
	if (keys_claim(op, keyid, "") != 0 ||
	    (rec = keys_record(op->a, r, keyid)) == NULL)
		goto fail;
	state = json_string_value(json_object_get(rec, "state"));
	if (state != NULL && strcmp(state, "revoked") == 0) {
		http_reply_error(r, 409, "conflict", "key: already revoked");
		goto fail;
	}
	label = json_string_value(json_object_get(rec, "label"));
	snprintf(op->label, sizeof(op->label), "%s", label ? label : "");
	api_time(now);
	entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "key",
	    "action", "revoke", "key", keyid, "alg",
	    json_string_value(json_object_get(rec, "alg")), "reason", reason,
	    "principal", op->principal, "time", now);
	json_object_set_new(rec, "state", json_string("revoked"));
	json_object_set_new(rec, "reason", json_string(reason));
	keys_submit(op, rec, entry);
	return;
fail:
	json_decref(rec);
	keys_op_free(op);
}

/* ---- POST /v1/keys ------------------------------------------------------ */

void
keys_post(struct http_req *r, void *arg)
{
	struct api *a = arg;
	const struct policy_principal *p;
	struct keys_op *op;
	json_t *body;
	const char *action;

	if ((p = api_auth(a, r, POLICY_ROLE_ADMIN)) == NULL)
		return;
	if ((body = api_body(r)) == NULL)
		return;
	if ((action = api_str(r, body, "action", KEYS_WORD_MAX, 1)) == NULL)
		goto out;
	if ((op = keys_op_new(a, r, p->name)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	/* Each action takes op over and replies, now or later. */
	if (strcmp(action, "create") == 0) {
		keys_create(op, body);
	} else if (strcmp(action, "import") == 0) {
		keys_import(op, body);
	} else if (strcmp(action, "certificate") == 0) {
		keys_certificate(op, body);
	} else if (strcmp(action, "revoke") == 0) {
		keys_revoke(op, body);
	} else {
		http_reply_error(r, 400, "bad_request",
		    "action: must be create, import, certificate or revoke");
		keys_op_free(op);
	}
out:
	json_decref(body);
}

/* ---- POST /v1/keys/<id>/csr --------------------------------------------- */

/* Worker thread: the HSM signs the request, which is then checked. */
static enum pool_next
keys_csr_sign(void *arg)
{
	struct keys_op *op = arg;
	struct kt_bytes msg = cert_csr_message(op->csr);

	op->rc = hsm_sign(op->a->keys_hsm, op->sk->hk, msg.p, msg.len, op->sig,
	    sizeof(op->sig), &op->siglen, op->err, sizeof(op->err));
	if (op->rc != KT_OK)
		return POOL_COMPLETE;
	op->rc = cert_csr_finish(op->csr, op->sig, op->siglen, &op->pem);
	if (op->rc != KT_OK)
		snprintf(op->err, sizeof(op->err),
		    "the signed request does not verify: %s",
		    kt_strerror(op->rc));
	return POOL_COMPLETE;
}

/* Loop thread: answers the request. */
static void
keys_csr_signed(void *arg)
{
	struct keys_op *op = arg;

	if (op->rc != KT_OK || kt_buf_terminate(&op->pem) != KT_OK) {
		log_err("keys: csr for %s failed: %s", op->keyid, op->err);
		http_reply_error(op->r, 503, "unavailable",
		    "the HSM could not sign the request");
	} else {
		log_info("keys: csr for %s (%s) by %s (not logged)", op->keyid,
		    op->label, op->principal);
		http_reply_json(op->r, 200,
		    json_pack("{s:s, s:s, s:s%}", "key", op->keyid, "alg",
			hsm_alg_name(op->alg), "csr", (const char *)op->pem.p,
			op->pem.len));
	}
	keys_op_free(op);
}

void
keys_post_csr(struct http_req *r, void *arg)
{
	static const char *const fields[] = { "subject", NULL };
	struct api *a = arg;
	const char *path = http_req_path(r) + strlen("/v1/keys/");
	const struct policy_principal *p;
	struct keys_op *op = NULL;
	struct api_key *k;
	struct kt_bytes spki;
	json_t *body = NULL;
	const char *subject;
	char keyid[65], err[POLICY_ERR_SIZE];
	uint8_t raw[32];
	int rc;

	/* Exactly /v1/keys/<64 lowercase hex>/csr. */
	if (strlen(path) != 64 + 4 || strcmp(path + 64, "/csr") != 0 ||
	    kt_hex_decode_exact(path, 64, raw, 32) != KT_OK) {
		http_reply_error(r, 404, "not_found", "no such path");
		return;
	}
	memcpy(keyid, path, 64);
	keyid[64] = 0;
	if ((p = api_auth(a, r, POLICY_ROLE_ADMIN)) == NULL)
		return;
	if ((body = api_body(r)) == NULL)
		return;
	if (api_fields(r, body, fields) != 0 ||
	    (subject = api_str(r, body, "subject", CERT_SUBJECT_MAX, 1)) ==
		NULL)
		goto out;
	if ((k = api_key_get(a, r, keyid)) == NULL)
		goto out;
	if (!k->active) {
		http_reply_error(r, 403, "key_revoked",
		    "key: revoked keys get no certificates");
		goto out;
	}
	if ((op = keys_op_new(a, r, p->name)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	op->action = KEYS_CSR;
	memcpy(op->keyid, keyid, sizeof(keyid));
	if ((op->sk = sign_key_find(a, keyid)) == NULL) {
		http_reply_error(r, 409, "not_in_hsm",
		    "key: this service's HSM does not hold the private key "
		    "(an imported key signs elsewhere)");
		goto out;
	}
	snprintf(op->label, sizeof(op->label), "%s", op->sk->label);
	op->alg = hsm_key_alg(op->sk->hk);
	spki = hsm_key_spki(op->sk->hk);
	rc = cert_csr_new(spki.p, spki.len, op->alg, subject, strlen(subject),
	    &op->csr, err, sizeof(err));
	if (rc != KT_OK) {
		if (rc == KT_EPARSE || rc == KT_ETOOBIG)
			http_reply_error(r, 400, "bad_request", err);
		else
			http_reply_error(r, 500, "internal", err);
		goto out;
	}
	op->job.run = keys_csr_sign;
	op->job.done = keys_csr_signed;
	op->job.arg = op;
	pool_submit(a->pool, &op->job);
	op = NULL;
out:
	keys_op_free(op);
	json_decref(body);
}
