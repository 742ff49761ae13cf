/*
 * keytrail-logd end to end: a real daemon on 127.0.0.1 with a real
 * SoftHSM token in a temp dir, driven over HTTP.  Every answered proof is
 * verified with libkeytrail against the answered checkpoint, checkpoints
 * are checked for consistency with each other, the tree is recomputed
 * from the served tiles, and the daemon is restarted and crashed.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <zlib.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "e2e.h"
#include "hsm.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/merkle.h"
#include "keytrail/note.h"
#include "keytrail/tile.h"
#include "keytrail/tlogproof.h"

/*
 * Entries a fresh development log starts with: the policy in force and
 * the creation of the default and release keys.
 */
#define SETUP_ENTRIES 3

/* A client-side signing key registered with the log. */
struct signer {
	EVP_PKEY *pk;
	char id[65];
	char spki_b64[256];
};

static void
signer_new(struct signer *s)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	uint8_t *der = NULL;
	struct kt_hash h;
	int n;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1), 1);
	s->pk = NULL;
	assert_int_equal(EVP_PKEY_keygen(c, &s->pk), 1);
	EVP_PKEY_CTX_free(c);
	n = i2d_PUBKEY(s->pk, &der);
	assert_true(n > 0);
	SHA256(der, (size_t)n, h.b);
	kt_hex_encode(h.b, 32, s->id);
	assert_true(kt_b64_encode(
			der, (size_t)n, s->spki_b64, sizeof(s->spki_b64)) > 0);
	OPENSSL_free(der);
}

/* Body of POST /v1/entries for digest = SHA-256(seed). */
static char *
entry_body(const struct signer *s, const char *seed, const char *artifact)
{
	uint8_t dig[32], sig[128];
	char hex[65], b64[200], *out;
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->pk, NULL);
	int n;

	SHA256((const uint8_t *)seed, strlen(seed), dig);
	kt_hex_encode(dig, 32, hex);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_sign(c, sig, &siglen, dig, 32), 1);
	EVP_PKEY_CTX_free(c);
	assert_true(kt_b64_encode(sig, siglen, b64, sizeof(b64)) > 0);
	out = malloc(1024);
	assert_non_null(out);
	n = snprintf(out, 1024,
	    "{\"key\":\"%s\",\"digest\":\"%s\",\"sig\":\"%s\","
	    "\"artifact\":{\"name\":\"%s\",\"size\":%zu}}",
	    s->id, hex, b64, artifact, strlen(seed));
	assert_true(n > 0 && n < 1024);
	return out;
}

static void
import_key(struct e2e *e, const struct signer *s, const char *label)
{
	char tok[128], body[512];
	struct e2e_resp r;

	e2e_token(e, "admin", tok, sizeof(tok));
	snprintf(body, sizeof(body),
	    "{\"action\":\"import\",\"label\":\"%s\",\"spki\":\"%s\"}", label,
	    s->spki_b64);
	e2e_http(e, "POST", "/v1/keys", tok, body, strlen(body), &r);
	if (r.status != 200)
		fail_msg("import: %d %.*s", r.status, (int)r.body.len,
		    (char *)r.body.p);
	e2e_resp_free(&r);
}

/* Imports s's key as principal who, expecting status. */
static void
import_key_expect(
    struct e2e *e, const char *who, int status, const struct signer *s)
{
	char tok[128], body[512];
	struct e2e_resp r;

	e2e_token(e, who, tok, sizeof(tok));
	snprintf(body, sizeof(body),
	    "{\"action\":\"import\",\"label\":\"again\",\"spki\":\"%s\"}",
	    s->spki_b64);
	e2e_http(e, "POST", "/v1/keys", tok, body, strlen(body), &r);
	assert_int_equal(r.status, status);
	e2e_resp_free(&r);
}

/* Fetches and opens /checkpoint. */
static void
checkpoint_get(struct e2e *e, const struct e2e_trust *tr, uint64_t *size,
    struct kt_hash *root, struct kt_buf *note)
{
	struct e2e_resp r;
	struct kt_checkpoint cp;

	e2e_http(e, "GET", "/checkpoint", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.cache, "no-cache");
	assert_int_equal(
	    kt_checkpoint_open(r.body.p, r.body.len, &tr->t, NULL, &cp), KT_OK);
	*size = cp.size;
	*root = cp.root;
	if (note != NULL) {
		kt_buf_reset(note);
		assert_int_equal(
		    kt_buf_append(note, r.body.p, r.body.len), KT_OK);
	}
	e2e_resp_free(&r);
}

/* kt_tile_read_fn over HTTP. */
static int
http_tile_read(void *ctx, const struct kt_tile *t, struct kt_buf *data)
{
	struct e2e *e = ctx;
	char path[KT_TILE_PATH_MAX + 1];
	size_t n;
	struct e2e_resp r;
	int rc = KT_OK;

	path[0] = '/';
	if (kt_tile_format(t, path + 1, sizeof(path) - 1, &n) != KT_OK)
		return KT_EINVAL;
	e2e_http(e, "GET", path, NULL, NULL, 0, &r);
	if (r.status != 200)
		rc = KT_ENOTFOUND;
	else if (kt_buf_append(data, r.body.p, r.body.len) != KT_OK)
		rc = KT_ETOOBIG;
	if (r.status == 200 && t->width == KT_TILE_WIDTH &&
	    strstr(r.cache, "immutable") == NULL)
		rc = KT_EVERIFY;
	e2e_resp_free(&r);
	return rc;
}

static void
test_setup_reuse_and_files(void **state)
{
	struct e2e e;
	struct e2e_trust t1, t2;
	struct stat st;
	char path[400];
	const char *secret[] = { "hsm/pin", "tokens/admin", "tokens/ci",
		"tokens/alice", "tokens/bob", "keytrail.json", "policy.json" };
	uint64_t s1, s2;
	struct kt_hash r1, r2;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", e.data, secret[i]);
		assert_int_equal(stat(path, &st), 0);
		if ((st.st_mode & 077) != 0)
			fail_msg("%s is readable by others", secret[i]);
	}
	e2e_trust_get(&e, &t1);
	checkpoint_get(&e, &t1, &s1, &r1, NULL);
	/*
	 * The first entries: the policy in force, then the creation of the
	 * two development signing keys, logged at start.
	 */
	assert_int_equal(s1, SETUP_ENTRIES);
	{
		struct e2e_resp r;
		json_t *j, *ent;

		e2e_http(&e, "GET", "/v1/entries/0", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		j = e2e_json(&r);
		ent = json_object_get(j, "entry");
		assert_string_equal(
		    json_string_value(json_object_get(ent, "kind")), "policy");
		json_decref(j);
		e2e_resp_free(&r);
	}
	e2e_stop(&e, SIGTERM);
	/* A second start reuses the token, the key and the origin. */
	e2e_start(&e);
	e2e_trust_get(&e, &t2);
	assert_string_equal(t1.origin, t2.origin);
	assert_memory_equal(t1.vkey.pub, t2.vkey.pub, 32);
	checkpoint_get(&e, &t2, &s2, &r2, NULL);
	/* Not logged again: the same policy and keys. */
	assert_int_equal(s2, SETUP_ENTRIES);
	assert_memory_equal(r1.b, r2.b, 32);
	e2e_stop(&e, SIGTERM);

	/* The log key lives in the HSM: sensitive and never extractable. */
	{
		struct hsm_config hc;
		struct hsm *h = NULL;
		struct hsm_key *k = NULL;
		struct hsm_attrs a;
		char pin[400], conf[400], err[256];
		int readable = 1;

		snprintf(pin, sizeof(pin), "%s/hsm/pin", e.data);
		snprintf(conf, sizeof(conf), "%s/hsm/softhsm2.conf", e.data);
		memset(&hc, 0, sizeof(hc));
		hc.token_label = "keytrail-log";
		hc.pin_file = pin;
		hc.softhsm_conf = conf;
		if (hsm_open(&hc, &h, err, sizeof(err)) != KT_OK)
			fail_msg("hsm_open: %s", err);
		if (hsm_find(h, "log", &k, err, sizeof(err)) != KT_OK)
			fail_msg("hsm_find: %s", err);
		hsm_key_attrs(k, &a);
		assert_true(a.sensitive);
		assert_false(a.extractable);
		assert_true(a.never_extractable);
		assert_true(a.always_sensitive);
		assert_true(a.local);
		assert_int_equal(hsm_key_alg(k), HSM_ED25519);
		assert_int_equal(
		    hsm_test_secret_readable(h, k, &readable, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(readable, 0);
		hsm_key_free(k);
		hsm_close(h);
	}
	e2e_cleanup(&e);
}

/* A checkpoint seen by the client. */
struct seen {
	uint64_t size;
	struct kt_hash root;
};

static int
seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

static void
test_append_verify_restart(void **state)
{
	enum {
		N = 2000,
		NCONN = 32
	};
	struct e2e e;
	struct e2e_trust tr;
	struct signer s;
	struct e2e_call *calls = calloc(N, sizeof(*calls));
	struct seen *seen = calloc(N, sizeof(*seen));
	uint64_t *index = calloc(N, sizeof(*index));
	char tok[128], name[64], seed[64];
	size_t nseen = 0;
	uint64_t size, size2;
	struct kt_hash root, root2;
	struct kt_buf note, note2;
	struct e2e_resp r;

	(void)state;
	assert_non_null(calls);
	assert_non_null(seen);
	assert_non_null(index);
	e2e_init(&e);
	e2e_start(&e);
	e2e_trust_get(&e, &tr);
	signer_new(&s);
	import_key(&e, &s, "e2e");
	e2e_token(&e, "ci", tok, sizeof(tok));
	for (size_t i = 0; i < N; i++) {
		/*
		 * Every tenth submission repeats an earlier one byte for byte
		 * (ECDSA signatures are randomised, so a fresh signature of
		 * the same digest would be a different entry).
		 */
		snprintf(seed, sizeof(seed), "artifact-%zu", i);
		snprintf(name, sizeof(name), "pkg-%zu.tar.gz", i % 7);
		calls[i].path = "/v1/entries";
		calls[i].token = tok;
		calls[i].body = (i % 10 == 9) ? strdup(calls[i - 5].body)
					      : entry_body(&s, seed, name);
		calls[i].bodylen = strlen(calls[i].body);
	}
	e2e_post_many(&e, calls, N, NCONN);

	for (size_t i = 0; i < N; i++) {
		json_t *j;
		const char *proof;
		struct kt_buf entry;
		struct kt_tlogproof_result res;
		json_t *ej;

		if (calls[i].resp.status != 200)
			fail_msg("entry %zu: %d %.*s", i, calls[i].resp.status,
			    (int)calls[i].resp.body.len,
			    (char *)calls[i].resp.body.p);
		j = e2e_json(&calls[i].resp);
		proof = json_string_value(json_object_get(j, "proof"));
		assert_non_null(proof);
		kt_buf_init(&entry, KT_ENTRY_MAX);
		/* The proof verifies offline against the log's key. */
		assert_int_equal(kt_tlogproof_verify((const uint8_t *)proof,
				     strlen(proof), &tr.t, NULL, &entry, &res),
		    KT_OK);
		index[i] = res.index;
		assert_int_equal(
		    res.index, json_integer_value(json_object_get(j, "index")));
		/* The entry is canonical and is what was submitted. */
		assert_int_equal(
		    kt_entry_parse(entry.p, entry.len, &ej), KT_OK);
		assert_string_equal(
		    json_string_value(json_object_get(ej, "kind")),
		    "signature");
		assert_non_null(strstr(calls[i].body,
		    json_string_value(json_object_get(ej, "sig"))));
		json_decref(ej);
		seen[nseen].size = res.checkpoint.size;
		seen[nseen].root = res.checkpoint.root;
		nseen++;
		kt_buf_free(&entry);
		json_decref(j);
	}
	/* Duplicates got the index of the first submission. */
	for (size_t i = 9; i < N; i += 10)
		assert_int_equal(index[i], index[i - 5]);
	/* Every other index is distinct: N - N/10 entries after the key. */
	checkpoint_get(&e, &tr, &size, &root, NULL);
	/* The setup, the key, and every distinct submission. */
	assert_int_equal(size, SETUP_ENTRIES + 1 + N - N / 10);

	/* Every pair of checkpoints handed out is consistent. */
	qsort(seen, nseen, sizeof(seen[0]), seen_cmp);
	{
		size_t m = 0;

		for (size_t i = 0; i < nseen; i++) {
			if (m > 0 && seen[m - 1].size == seen[i].size) {
				assert_memory_equal(
				    seen[m - 1].root.b, seen[i].root.b, 32);
				continue;
			}
			seen[m++] = seen[i];
		}
		nseen = m;
	}
	seen[nseen].size = size;
	seen[nseen].root = root;
	nseen++;
	for (size_t i = 0; i < nseen; i++) {
		for (size_t k = i + 1; k < nseen; k++) {
			char path[128];
			json_t *j, *pj;
			struct kt_hash p[KT_PROOF_MAX];
			size_t np;

			snprintf(path, sizeof(path),
			    "/v1/proof/consistency?old=%llu&new=%llu",
			    (unsigned long long)seen[i].size,
			    (unsigned long long)seen[k].size);
			e2e_http(&e, "GET", path, NULL, NULL, 0, &r);
			assert_int_equal(r.status, 200);
			j = e2e_json(&r);
			pj = json_object_get(j, "proof");
			np = json_array_size(pj);
			assert_true(np <= KT_PROOF_MAX);
			for (size_t x = 0; x < np; x++) {
				const char *b =
				    json_string_value(json_array_get(pj, x));

				assert_int_equal(kt_b64_decode_exact(
						     b, strlen(b), p[x].b, 32),
				    KT_OK);
			}
			assert_int_equal(
			    kt_consistency_check(p, np, seen[i].size,
				&seen[i].root, seen[k].size, &seen[k].root),
			    KT_OK);
			json_decref(j);
			e2e_resp_free(&r);
		}
	}

	/* The served tiles and bundles rebuild exactly the signed root. */
	assert_int_equal(
	    kt_tiles_verify(size, &root, http_tile_read, &e), KT_OK);

	/* Search finds every entry of one artifact name, page by page. */
	{
		size_t total = 0;
		uint64_t after = UINT64_MAX;

		for (;;) {
			char path[200];
			json_t *j, *next;

			if (after == UINT64_MAX)
				snprintf(path, sizeof(path),
				    "/v1/"
				    "search?artifact=pkg-3.tar.gz&limit=50");
			else
				snprintf(path, sizeof(path),
				    "/v1/search?artifact=pkg-3.tar.gz&limit=50"
				    "&after=%llu",
				    (unsigned long long)after);
			e2e_http(&e, "GET", path, NULL, NULL, 0, &r);
			assert_int_equal(r.status, 200);
			j = e2e_json(&r);
			total += json_array_size(json_object_get(j, "entries"));
			next = json_object_get(j, "next");
			if (!json_is_integer(next)) {
				json_decref(j);
				e2e_resp_free(&r);
				break;
			}
			after = (uint64_t)json_integer_value(next);
			json_decref(j);
			e2e_resp_free(&r);
		}
		/* Unique seeds k with k % 7 == 3 among the N - N/10. */
		{
			size_t want = 0;

			for (size_t i = 0; i < N; i++)
				if (i % 10 != 9 && i % 7 == 3)
					want++;
			/* The repeats name the artifact of i - 5. */
			assert_int_equal(total, want);
		}
	}

	/* Restart: nothing changed, and a resubmission is deduplicated. */
	kt_buf_init(&note, KT_NOTE_MAX);
	kt_buf_init(&note2, KT_NOTE_MAX);
	checkpoint_get(&e, &tr, &size, &root, &note);
	e2e_stop(&e, SIGTERM);
	e2e_start(&e);
	checkpoint_get(&e, &tr, &size2, &root2, &note2);
	assert_int_equal(size, size2);
	assert_int_equal(note.len, note2.len);
	assert_memory_equal(note.p, note2.p, note.len);
	e2e_http(&e, "POST", "/v1/entries", tok, calls[100].body,
	    calls[100].bodylen, &r);
	assert_int_equal(r.status, 200);
	{
		json_t *j = e2e_json(&r);

		assert_int_equal(
		    json_integer_value(json_object_get(j, "index")),
		    index[100]);
		assert_true(json_is_true(json_object_get(j, "duplicate")));
		json_decref(j);
	}
	e2e_resp_free(&r);
	checkpoint_get(&e, &tr, &size2, &root2, NULL);
	assert_int_equal(size, size2);

	for (size_t i = 0; i < N; i++) {
		free(calls[i].body);
		e2e_resp_free(&calls[i].resp);
	}
	kt_buf_free(&note);
	kt_buf_free(&note2);
	EVP_PKEY_free(s.pk);
	free(calls);
	free(seen);
	free(index);
	e2e_stop(&e, SIGTERM);
	e2e_cleanup(&e);
}

/* One bad request and what the daemon must answer. */
struct bad {
	const char *method;
	const char *path;
	const char *who; /* token file, "bogus", or NULL for none */
	const char *body;
	int status;
};

static void
test_bad_requests(void **state)
{
	static char big[70 * 1024], longname[400], hugehdr[12000];
	struct e2e e;
	struct e2e_trust tr;
	struct signer s, s2, weak;
	char *good, *other, *revoked_body, unknown[600], badsig[1200];
	char revoke[300], dupimport[600], weakimport[600], tokbuf[128];
	uint64_t size0, size1;
	struct kt_hash root0, root1;
	struct e2e_resp r;
	size_t nbad;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	e2e_trust_get(&e, &tr);
	signer_new(&s);
	signer_new(&s2);
	import_key(&e, &s, "good");
	import_key(&e, &s2, "revoked");
	good = entry_body(&s, "one", "a.tar.gz");
	other = entry_body(&s, "two", "b.tar.gz");
	revoked_body = entry_body(&s2, "three", "c.tar.gz");
	/* Revoke s2. */
	snprintf(revoke, sizeof(revoke),
	    "{\"action\":\"revoke\",\"key\":\"%s\",\"reason\":\"test\"}",
	    s2.id);
	e2e_token(&e, "admin", tokbuf, sizeof(tokbuf));
	e2e_http(&e, "POST", "/v1/keys", tokbuf, revoke, strlen(revoke), &r);
	assert_int_equal(r.status, 200);
	e2e_resp_free(&r);
	/* A valid-looking body for a key nobody registered. */
	snprintf(unknown, sizeof(unknown), "%s", good);
	memcpy(strstr(unknown, s.id), "00000000", 8);
	/* The signature of "two" under the digest of "one". */
	{
		const char *sig1 = strstr(good, "\"sig\":\"");
		const char *sig2 = strstr(other, "\"sig\":\"");
		size_t pre = (size_t)(sig1 - good);

		snprintf(badsig, sizeof(badsig), "%.*s%.*s%s", (int)pre, good,
		    (int)(strstr(sig2 + 7, "\"") - sig2 + 1), sig2,
		    strstr(sig1 + 7, "\"") + 1);
	}
	snprintf(dupimport, sizeof(dupimport),
	    "{\"action\":\"import\",\"label\":\"again\",\"spki\":\"%s\"}",
	    s.spki_b64);
	/* A P-224 key is below the algorithm floor. */
	{
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
		uint8_t *der = NULL;
		int n;

		assert_int_equal(EVP_PKEY_keygen_init(c), 1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_secp224r1),
		    1);
		weak.pk = NULL;
		assert_int_equal(EVP_PKEY_keygen(c, &weak.pk), 1);
		EVP_PKEY_CTX_free(c);
		n = i2d_PUBKEY(weak.pk, &der);
		assert_true(kt_b64_encode(der, (size_t)n, weak.spki_b64,
				sizeof(weak.spki_b64)) > 0);
		OPENSSL_free(der);
		snprintf(weakimport, sizeof(weakimport),
		    "{\"action\":\"import\",\"label\":\"weak\","
		    "\"spki\":\"%s\"}",
		    weak.spki_b64);
	}
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	memset(longname, 'n', sizeof(longname) - 1);

	{
		char nameart[1000], negsize[700], hugesize[700], artnotobj[700];
		char sigempty[700], sigbad[700], dig_short[700], dig_upper[700];
		char keynum[700], unknownfield[800];
		const char *sigp = strstr(good, "\"sig\":\"") + 7;
		const char *digp = strstr(good, "\"digest\":\"") + 10;
		int pre;

		snprintf(nameart, sizeof(nameart),
		    "{\"key\":\"%s\",\"digest\":\"%.64s\",\"sig\":\"AA==\","
		    "\"artifact\":{\"name\":\"%s\"}}",
		    s.id, digp, longname);
		snprintf(negsize, sizeof(negsize),
		    "{\"key\":\"%s\",\"digest\":\"%.64s\",\"sig\":\"AA==\","
		    "\"artifact\":{\"size\":-1}}",
		    s.id, digp);
		snprintf(hugesize, sizeof(hugesize),
		    "{\"key\":\"%s\",\"digest\":\"%.64s\",\"sig\":\"AA==\","
		    "\"artifact\":{\"size\":123456789012345678901234567890}}",
		    s.id, digp);
		snprintf(artnotobj, sizeof(artnotobj),
		    "{\"key\":\"%s\",\"digest\":\"%.64s\",\"sig\":\"AA==\","
		    "\"artifact\":\"x\"}",
		    s.id, digp);
		pre = (int)(sigp - good);
		snprintf(sigempty, sizeof(sigempty), "%.*s%s", pre, good,
		    strchr(sigp, '"'));
		snprintf(sigbad, sizeof(sigbad), "%.*s!!!!%s", pre, good,
		    strchr(sigp, '"'));
		pre = (int)(digp - good);
		snprintf(dig_short, sizeof(dig_short), "%.*sabcd%s", pre, good,
		    digp + 64);
		snprintf(dig_upper, sizeof(dig_upper), "%.*sABCDEF%.58s%s", pre,
		    good, digp + 6, digp + 64);
		snprintf(keynum, sizeof(keynum),
		    "{\"key\":12,\"digest\":\"%.64s\",\"sig\":\"AA==\"}", digp);
		snprintf(unknownfield, sizeof(unknownfield),
		    "{\"extra\":\"1\",%s", good + 1);
		memset(hugehdr, 'a', sizeof(hugehdr) - 1);

		const struct bad cases[] = {
			{ "POST", "/v1/entries", NULL, good, 401 },
			{ "POST", "/v1/entries", "bogus", good, 401 },
			{ "POST", "/v1/entries", "alice", good, 403 },
			{ "POST", "/v1/entries", "admin", good, 403 },
			{ "POST", "/v1/keys", "ci", dupimport, 403 },
			{ "POST", "/v1/keys", NULL, dupimport, 401 },
			{ "POST", "/v1/entries", "ci", "{", 400 },
			{ "POST", "/v1/entries", "ci", "", 400 },
			{ "POST", "/v1/entries", "ci", "[]", 400 },
			{ "POST", "/v1/entries", "ci", "\"str\"", 400 },
			{ "POST", "/v1/entries", "ci",
			    "{\"key\":\"a\",\"key\":\"b\"}", 400 },
			{ "POST", "/v1/entries", "ci", unknownfield, 400 },
			{ "POST", "/v1/entries", "ci", keynum, 400 },
			{ "POST", "/v1/entries", "ci", dig_short, 400 },
			{ "POST", "/v1/entries", "ci", dig_upper, 400 },
			{ "POST", "/v1/entries", "ci", sigempty, 400 },
			{ "POST", "/v1/entries", "ci", sigbad, 400 },
			{ "POST", "/v1/entries", "ci", artnotobj, 400 },
			{ "POST", "/v1/entries", "ci", negsize, 400 },
			{ "POST", "/v1/entries", "ci", hugesize, 400 },
			{ "POST", "/v1/entries", "ci", nameart, 400 },
			{ "POST", "/v1/entries", "ci", unknown, 404 },
			{ "POST", "/v1/entries", "ci", badsig, 422 },
			{ "POST", "/v1/entries", "ci", revoked_body, 403 },
			{ "POST", "/v1/entries", "ci", big, 413 },
			{ "POST", "/v1/keys", "admin", dupimport, 409 },
			{ "POST", "/v1/keys", "admin", weakimport, 400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"import\",\"label\":\"x\","
			    "\"spki\":\"not base64\"}",
			    400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"import\",\"label\":\"x\","
			    "\"spki\":\"AAAA\"}",
			    400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"import\",\"label\":\"bad label\","
			    "\"spki\":\"AAAA\"}",
			    400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"explode\"}", 400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"revoke\",\"key\":\"00\"}", 400 },
			{ "POST", "/v1/keys", "admin",
			    "{\"action\":\"revoke\",\"key\":"
			    "\"0000000000000000000"
			    "000000000000000000000000000000000000000000000\","
			    "\"reason\":\"x\"}",
			    404 },
			{ "POST", "/v1/keys", "admin", revoke, 409 },
			{ "GET", "/tile/0/1000", NULL, NULL, 404 },
			{ "GET", "/tile/0/000.p/0", NULL, NULL, 404 },
			{ "GET", "/tile/0/000.p/256", NULL, NULL, 404 },
			{ "GET", "/tile/0/x000/001", NULL, NULL, 404 },
			{ "GET", "/tile/0/999", NULL, NULL, 404 },
			{ "GET", "/tile/0/000", NULL, NULL, 404 },
			{ "GET", "/tile/entries/000.p/200", NULL, NULL, 404 },
			{ "GET", "/tile/8/0/000", NULL, NULL, 404 },
			{ "GET", "/tile/0/%30%30%30", NULL, NULL, 404 },
			{ "GET", "/v1/proof/inclusion", NULL, NULL, 400 },
			{ "GET", "/v1/proof/inclusion?index=0&size=999999",
			    NULL, NULL, 400 },
			{ "GET", "/v1/proof/inclusion?index=3&size=3", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/inclusion?index=01", NULL, NULL,
			    400 },
			{ "GET", "/v1/proof/inclusion?index=-1", NULL, NULL,
			    400 },
			{ "GET",
			    "/v1/proof/inclusion?index=99999999999999999999999",
			    NULL, NULL, 400 },
			{ "GET", "/v1/proof/inclusion?hash=zz", NULL, NULL,
			    400 },
			{ "GET",
			    "/v1/proof/"
			    "inclusion?hash=00000000000000000000000000"
			    "00000000000000000000000000000000000000",
			    NULL, NULL, 404 },
			{ "GET", "/v1/proof/inclusion?index=0&index=1", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/inclusion?index=0&bogus=1", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/consistency?old=0&new=2", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/consistency?old=3&new=2", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/consistency?old=1&new=999", NULL,
			    NULL, 400 },
			{ "GET", "/v1/proof/consistency", NULL, NULL, 400 },
			{ "GET", "/v1/entries/99999999", NULL, NULL, 404 },
			{ "GET", "/v1/entries/abc", NULL, NULL, 400 },
			{ "GET", "/v1/entries/18446744073709551616", NULL, NULL,
			    400 },
			{ "GET", "/v1/bundle/999999", NULL, NULL, 404 },
			{ "GET", "/v1/search", NULL, NULL, 400 },
			{ "GET", "/v1/search?key=a&digest=b", NULL, NULL, 400 },
			{ "GET", "/v1/search?key=a&limit=0", NULL, NULL, 400 },
			{ "GET", "/v1/search?key=a&limit=1001", NULL, NULL,
			    400 },
			{ "GET", "/nope", NULL, NULL, 404 },
			{ "GET", "/v1/entries", NULL, NULL, 405 },
			{ "PUT", "/v1/entries", "ci", good, 405 },
			{ "DELETE", "/checkpoint", NULL, NULL, 405 },
			{ "PATCH", "/v1/keys", "admin", "{}", 405 },
			{ "POST", "/checkpoint", NULL, "{}", 405 },
		};

		nbad = sizeof(cases) / sizeof(cases[0]);
		assert_true(nbad >= 40);
		checkpoint_get(&e, &tr, &size0, &root0, NULL);
		for (size_t i = 0; i < nbad; i++) {
			char tok[128];
			const char *t = NULL;
			json_t *j;

			if (cases[i].who != NULL &&
			    strcmp(cases[i].who, "bogus") == 0)
				t = "kt_0000000000000000000000000000000000";
			else if (cases[i].who != NULL) {
				e2e_token(&e, cases[i].who, tok, sizeof(tok));
				t = tok;
			}
			e2e_http(&e, cases[i].method, cases[i].path, t,
			    cases[i].body,
			    cases[i].body ? strlen(cases[i].body) : 0, &r);
			if (r.status != cases[i].status)
				fail_msg("case %zu (%s %s): got %d want %d: "
					 "%.*s",
				    i, cases[i].method, cases[i].path, r.status,
				    cases[i].status,
				    (int)(r.body.len > 300 ? 300 : r.body.len),
				    r.body.p ? (char *)r.body.p : "");
			/* Every error is JSON {"error", "detail"}. */
			j = e2e_json(&r);
			assert_true(
			    json_is_string(json_object_get(j, "error")));
			assert_true(
			    json_is_string(json_object_get(j, "detail")));
			json_decref(j);
			e2e_resp_free(&r);
		}
		/* An oversized header block is refused, not crashed on. */
		{
			char hdr[12100];
			const char *hs[] = { hdr, NULL };

			snprintf(hdr, sizeof(hdr), "X-Big: %s", hugehdr);
			e2e_http_h(&e, "GET", "/v1/log", hs, NULL, 0, &r);
			assert_true(r.status != 200);
			e2e_resp_free(&r);
		}
	}
	/* Nothing was logged by any of them, and the daemon still serves. */
	checkpoint_get(&e, &tr, &size1, &root1, NULL);
	assert_int_equal(size0, size1);
	assert_memory_equal(root0.b, root1.b, 32);
	e2e_token(&e, "ci", tokbuf, sizeof(tokbuf));
	e2e_http(&e, "POST", "/v1/entries", tokbuf, good, strlen(good), &r);
	assert_int_equal(r.status, 200);
	e2e_resp_free(&r);
	checkpoint_get(&e, &tr, &size1, &root1, NULL);
	assert_int_equal(size1, size0 + 1);

	free(good);
	free(other);
	free(revoked_body);
	EVP_PKEY_free(s.pk);
	EVP_PKEY_free(s2.pk);
	EVP_PKEY_free(weak.pk);
	e2e_stop(&e, SIGTERM);
	e2e_cleanup(&e);
}

/* What a client was told: the entry's index and leaf, and the checkpoint. */
struct ack {
	uint64_t index;
	struct kt_hash leaf;
	uint64_t size;
	struct kt_hash root;
};

/*
 * The load of one crash round, run in a child process: submits entries,
 * and every fourth request asks the service to sign with the development
 * key "default", in waves until the daemon dies, writing every
 * acknowledged (and verified) answer to fd.  A signature that left the
 * service must be the one in the entry its proof names.
 */
static void
crash_load(struct e2e *parent, const struct e2e_trust *tr,
    const struct signer *s, int round, int fd)
{
	enum {
		WAVE = 64,
		NCONN = 16
	};
	struct e2e e = *parent;
	struct e2e_call calls[WAVE];
	char tok[128], seed[64];

	e.base = event_base_new();
	e.conn = NULL;
	e2e_token(&e, "ci", tok, sizeof(tok));
	for (int wave = 0; wave < 1000; wave++) {
		int dead = 0;

		for (int i = 0; i < WAVE; i++) {
			snprintf(seed, sizeof(seed), "crash-%d-%d-%d", round,
			    wave, i);
			calls[i].token = tok;
			if (i % 4 == 3) {
				char digest[65], body[256];

				e2e_sha256_hex(seed, strlen(seed), digest);
				snprintf(body, sizeof(body),
				    "{\"key\":\"default\",\"digest\":\"%s\","
				    "\"artifact\":{\"name\":\"crash.bin\"}}",
				    digest);
				calls[i].path = "/v1/sign";
				calls[i].body = strdup(body);
				if (calls[i].body == NULL)
					_exit(6);
			} else {
				calls[i].path = "/v1/entries";
				calls[i].body =
				    entry_body(s, seed, "crash.bin");
			}
			calls[i].bodylen = strlen(calls[i].body);
		}
		e2e_post_many(&e, calls, WAVE, NCONN);
		for (int i = 0; i < WAVE; i++) {
			json_t *j;
			const char *proof;
			struct kt_buf entry;
			struct kt_tlogproof_result res;
			struct ack a;

			if (calls[i].resp.status != 200) {
				dead = 1;
				goto next;
			}
			j = e2e_json(&calls[i].resp);
			proof = json_string_value(json_object_get(j, "proof"));
			kt_buf_init(&entry, KT_ENTRY_MAX);
			if (proof == NULL ||
			    kt_tlogproof_verify((const uint8_t *)proof,
				strlen(proof), &tr->t, NULL, &entry,
				&res) != KT_OK)
				_exit(3);
			if (i % 4 == 3) {
				/* The signature handed out: the logged one. */
				const char *sig = json_string_value(
				    json_object_get(j, "signature"));
				json_t *ej = json_loadb(
				    (const char *)entry.p, entry.len, 0, NULL);
				const char *esig = json_string_value(
				    json_object_get(ej, "sig"));

				if (sig == NULL || esig == NULL ||
				    strcmp(sig, esig) != 0)
					_exit(5);
				json_decref(ej);
			}
			a.index = res.index;
			kt_leaf_hash(entry.p, entry.len, &a.leaf);
			a.size = res.checkpoint.size;
			a.root = res.checkpoint.root;
			if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
				_exit(4);
			kt_buf_free(&entry);
			json_decref(j);
		next:
			free(calls[i].body);
			e2e_resp_free(&calls[i].resp);
		}
		if (dead)
			break;
	}
	_exit(0);
}

static void
test_crash_safety(void **state)
{
	const char *it = getenv("KT_CRASH_ROUNDS");
	int rounds = it ? atoi(it) : 3;
	struct e2e e;
	struct e2e_trust tr;
	struct signer s;
	struct ack *acks = NULL;
	size_t nacks = 0, cap = 0;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	/*
	 * A small index buffer: runs of index rows freeze, are written to
	 * index tables and merge level by level many times under the load,
	 * and crashes land in every stage.
	 */
	e2e_stop(&e, SIGTERM);
	e2e_conf_set(&e, NULL, "index_buffer_entries", json_integer(64));
	e2e_start(&e);
	e2e_trust_get(&e, &tr);
	signer_new(&s);
	import_key(&e, &s, "crash");
	srand((unsigned)getpid());
	for (int round = 0; round < rounds; round++) {
		int fds[2], status;
		pid_t child;
		struct ack a;

		assert_int_equal(pipe(fds), 0);
		child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			close(fds[0]);
			crash_load(&e, &tr, &s, round, fds[1]);
		}
		close(fds[1]);
		/* Let the load run, then pull the plug mid-write. */
		usleep(200000 + (useconds_t)(rand() % 400000));
		e2e_stop(&e, SIGKILL);
		while (read(fds[0], &a, sizeof(a)) == (ssize_t)sizeof(a)) {
			if (nacks == cap) {
				cap = cap ? 2 * cap : 1024;
				acks = realloc(acks, cap * sizeof(*acks));
				assert_non_null(acks);
			}
			acks[nacks++] = a;
		}
		close(fds[0]);
		assert_int_equal(waitpid(child, &status, 0), child);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		e2e_start(&e);
	}
	assert_true(nacks > 0);
	/*
	 * After every crash: each acknowledged entry is at its acknowledged
	 * index, and each checkpoint ever handed out is consistent with the
	 * final tree.
	 */
	{
		uint64_t size;
		struct kt_hash root;

		checkpoint_get(&e, &tr, &size, &root, NULL);
		for (size_t i = 0; i < nacks; i++) {
			char path[128];
			struct e2e_resp r;
			json_t *j;
			struct kt_hash leaf, p[KT_PROOF_MAX];
			const char *lh;
			size_t np;

			assert_true(acks[i].index < size);
			assert_true(acks[i].size <= size);
			snprintf(path, sizeof(path), "/v1/entries/%llu",
			    (unsigned long long)acks[i].index);
			e2e_http(&e, "GET", path, NULL, NULL, 0, &r);
			assert_int_equal(r.status, 200);
			j = e2e_json(&r);
			lh = json_string_value(json_object_get(j, "leaf_hash"));
			assert_non_null(lh);
			assert_int_equal(
			    kt_hex_decode_exact(lh, strlen(lh), leaf.b, 32),
			    KT_OK);
			assert_memory_equal(leaf.b, acks[i].leaf.b, 32);
			json_decref(j);
			e2e_resp_free(&r);
			/* Its leaf hash finds it, wherever its index row is. */
			{
				char hex[65];

				kt_hex_encode(acks[i].leaf.b, 32, hex);
				snprintf(path, sizeof(path),
				    "/v1/proof/inclusion?hash=%s&size=%llu",
				    hex, (unsigned long long)size);
				e2e_http(&e, "GET", path, NULL, NULL, 0, &r);
				assert_int_equal(r.status, 200);
				j = e2e_json(&r);
				assert_int_equal(
				    json_integer_value(
					json_object_get(j, "index")),
				    acks[i].index);
				json_decref(j);
				e2e_resp_free(&r);
			}
			if (i > 0 && acks[i].size == acks[i - 1].size)
				continue;
			snprintf(path, sizeof(path),
			    "/v1/proof/consistency?old=%llu&new=%llu",
			    (unsigned long long)acks[i].size,
			    (unsigned long long)size);
			e2e_http(&e, "GET", path, NULL, NULL, 0, &r);
			assert_int_equal(r.status, 200);
			j = e2e_json(&r);
			np = json_array_size(json_object_get(j, "proof"));
			assert_true(np <= KT_PROOF_MAX);
			for (size_t x = 0; x < np; x++) {
				const char *b =
				    json_string_value(json_array_get(
					json_object_get(j, "proof"), x));

				assert_int_equal(kt_b64_decode_exact(
						     b, strlen(b), p[x].b, 32),
				    KT_OK);
			}
			assert_int_equal(
			    kt_consistency_check(p, np, acks[i].size,
				&acks[i].root, size, &root),
			    KT_OK);
			json_decref(j);
			e2e_resp_free(&r);
		}
		print_message("crash safety: %d rounds, %zu acknowledged "
			      "entries and signatures, final size %llu\n",
		    rounds, nacks, (unsigned long long)size);
	}
	free(acks);
	EVP_PKEY_free(s.pk);
	e2e_stop(&e, SIGTERM);
	e2e_cleanup(&e);
}

/* Gunzips p[0..n) into out (test helper). */
static void
gunzip(const uint8_t *p, size_t n, struct kt_buf *out)
{
	z_stream z;
	uint8_t chunk[65536];
	int rc;

	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = inflate(&z, Z_NO_FLUSH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		assert_int_equal(
		    kt_buf_append(out, chunk, sizeof(chunk) - z.avail_out),
		    KT_OK);
	} while (rc != Z_STREAM_END);
	inflateEnd(&z);
}

/* 1 when the daemon's log (stderr) has a line containing needle. */
static int
log_has(const struct e2e *e, const char *needle)
{
	char path[400];
	size_t len;
	uint8_t *b;
	int found;

	snprintf(path, sizeof(path), "%s/logd.log", e->dir);
	b = e2e_file_read(path, &len);
	assert_non_null(b);
	(void)len;
	found = strstr((const char *)b, needle) != NULL;
	free(b);
	return found;
}

static void
test_gzip_metrics_reload(void **state)
{
	struct e2e e;
	struct e2e_trust tr;
	struct signer s;
	struct e2e_resp plain, gz, r;
	struct kt_buf un;
	char tok[128], path[400], newtok[80], hash[65], bundle[64], want[64];
	const char *hdrs[] = { "Accept-Encoding: gzip", NULL };
	struct kt_hash h;
	FILE *f;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	e2e_trust_get(&e, &tr);
	signer_new(&s);
	import_key(&e, &s, "gz");
	e2e_token(&e, "ci", tok, sizeof(tok));
	for (int i = 0; i < 20; i++) {
		char seed[32];
		char *b;

		snprintf(seed, sizeof(seed), "gz-%d", i);
		b = entry_body(&s, seed, "gz.bin");
		e2e_http(&e, "POST", "/v1/entries", tok, b, strlen(b), &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		free(b);
	}
	/* Entry bundles: gzip when asked, identical once inflated. */
	snprintf(bundle, sizeof(bundle), "/tile/entries/000.p/%d",
	    SETUP_ENTRIES + 21);
	e2e_http(&e, "GET", bundle, NULL, NULL, 0, &plain);
	assert_int_equal(plain.status, 200);
	assert_string_equal(plain.encoding, "");
	e2e_http_h(&e, "GET", bundle, hdrs, NULL, 0, &gz);
	assert_int_equal(gz.status, 200);
	assert_string_equal(gz.encoding, "gzip");
	assert_true(gz.body.len < plain.body.len);
	kt_buf_init(&un, 1 << 24);
	gunzip(gz.body.p, gz.body.len, &un);
	assert_int_equal(un.len, plain.body.len);
	assert_memory_equal(un.p, plain.body.p, un.len);
	kt_buf_free(&un);
	e2e_resp_free(&plain);
	e2e_resp_free(&gz);

	/* Metrics count what happened. */
	e2e_http(&e, "GET", "/metrics", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(kt_buf_terminate(&r.body), KT_OK);
	snprintf(
	    want, sizeof(want), "keytrail_tree_size %d\n", SETUP_ENTRIES + 21);
	assert_non_null(strstr((char *)r.body.p, want));
	assert_non_null(
	    strstr((char *)r.body.p, "keytrail_entries_appended_total 21\n"));
	assert_non_null(strstr(
	    (char *)r.body.p, "keytrail_http_responses_total{status=\"200\"}"));
	/* A log this small has all its index rows in the buffer. */
	assert_non_null(
	    strstr((char *)r.body.p, "\nkeytrail_index_tables 0\n"));
	assert_non_null(
	    strstr((char *)r.body.p, "\nkeytrail_index_table_level_max 0\n"));
	/* And nothing written into tables yet. */
	assert_non_null(
	    strstr((char *)r.body.p, "\nkeytrail_index_slices_total 0\n"));
	assert_non_null(
	    strstr((char *)r.body.p, "\nkeytrail_index_slice_rows_total 0\n"));
	{
		/*
		 * The batches' steps (in store_append) add up to no more
		 * than the time in store_append.
		 */
		static const char *const step[] = { "add", "index",
			"checkpoint", "commit" };
		const char *p;
		double total, sum = 0;

		/* The value line, not the "# TYPE" line. */
		assert_non_null(p = strstr((char *)r.body.p,
				    "\nkeytrail_commit_seconds_total "));
		total = strtod(
		    p + strlen("\nkeytrail_commit_seconds_total "), NULL);
		assert_true(total > 0);
		for (size_t i = 0; i < 4; i++) {
			char line[96];
			double v;

			snprintf(line, sizeof(line),
			    "keytrail_batch_step_seconds_total{step=\"%s\"} ",
			    step[i]);
			assert_non_null(p = strstr((char *)r.body.p, line));
			v = strtod(p + strlen(line), NULL);
			/* Moving index rows may take no measurable time. */
			assert_true(i == 1 ? v >= 0 : v > 0);
			sum += v;
		}
		/* Each of the five figures is rounded to the microsecond. */
		assert_true(sum <= total + 5e-6);
	}
	e2e_resp_free(&r);

	/* SIGHUP with a broken policy file keeps the old policy. */
	snprintf(path, sizeof(path), "%s/policy.json", e.data);
	{
		size_t len;
		uint8_t *old = e2e_file_read(path, &len);
		json_t *doc = json_loadb((const char *)old, len, 0, NULL);
		char logged[200];
		struct kt_hash dh;
		char dhex[65];

		assert_non_null(doc);
		assert_non_null(f = fopen(path, "w"));
		fputs("{\"principals\": {\"ci\": {\"roles\": 7}}}", f);
		fclose(f);
		kill(e.pid, SIGHUP);
		usleep(300000);
		import_key_expect(&e, "admin", 409, &s);
		/*
		 * A valid file with a new submitter and without ci's token
		 * takes effect, and is logged and served by its SHA-256.
		 */
		snprintf(newtok, sizeof(newtok), "kt_%064d", 42);
		SHA256((const uint8_t *)newtok, strlen(newtok), h.b);
		kt_hex_encode(h.b, 32, hash);
		json_object_set_new(json_object_get(doc, "principals"), "dave",
		    json_pack("{s:s, s:[s]}", "token_sha256", hash, "roles",
			"submitter"));
		json_object_set_new(
		    json_object_get(json_object_get(doc, "principals"), "ci"),
		    "token_sha256", json_string(hash + 0));
		json_object_set_new(
		    json_object_get(json_object_get(doc, "principals"), "ci"),
		    "token_sha256",
		    json_string("00000000000000000000000000000000000000000000"
				"00000000000000000000"));
		assert_non_null(f = fopen(path, "w"));
		assert_int_equal(json_dumpf(doc, f, JSON_INDENT(2)), 0);
		fclose(f);
		json_decref(doc);
		free(old);
		kill(e.pid, SIGHUP);
		usleep(500000);
		{
			char *b = entry_body(&s, "dave", "d.bin");

			e2e_http(&e, "POST", "/v1/entries", newtok, b,
			    strlen(b), &r);
			assert_int_equal(r.status, 200);
			e2e_resp_free(&r);
			/* ci's old token no longer works. */
			e2e_http(
			    &e, "POST", "/v1/entries", tok, b, strlen(b), &r);
			assert_int_equal(r.status, 401);
			e2e_resp_free(&r);
			free(b);
		}
		old = e2e_file_read(path, &len);
		SHA256(old, len, dh.b);
		kt_hex_encode(dh.b, 32, dhex);
		snprintf(logged, sizeof(logged), "/v1/policy/%s", dhex);
		e2e_http(&e, "GET", logged, NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body.len, len);
		assert_memory_equal(r.body.p, old, len);
		e2e_resp_free(&r);
		free(old);
	}
	/*
	 * SIGHUP reloads the configuration too: limits change in place, a
	 * file that does not load changes nothing, and a setting that needs
	 * a restart is reported and left as it is.
	 */
	{
		char *e1 = entry_body(&s, "conf-1", "c.bin");
		char *b2 = entry_body(&s, "conf-2", "c.bin");
		/* Over 1 KiB (the smallest limit), all but the JSON blanks. */
		char *b1 = malloc(1100 + strlen(e1) + 1);
		size_t clen;
		uint8_t *orig;
		char cfg[400];
		json_t *j;

		assert_non_null(b1);
		memset(b1, ' ', 1100);
		strcpy(b1 + 1100, e1);
		free(e1);
		snprintf(cfg, sizeof(cfg), "%s/keytrail.json", e.data);
		orig = e2e_file_read(cfg, &clen);
		assert_non_null(orig);
		e2e_conf_set(&e, "limits", "max_body", json_integer(1024));
		e2e_conf_set(
		    &e, NULL, "origin", json_string("elsewhere.example/log"));
		kill(e.pid, SIGHUP);
		usleep(300000);
		e2e_http(&e, "POST", "/v1/entries", newtok, b1, strlen(b1), &r);
		assert_int_equal(r.status, 413);
		e2e_resp_free(&r);
		assert_true(log_has(&e,
		    "origin changed; it takes effect on "
		    "restart"));
		e2e_http(&e, "GET", "/v1/log", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		j = e2e_json(&r);
		assert_string_equal(e2e_jstr(j, "origin"), tr.origin);
		json_decref(j);
		e2e_resp_free(&r);
		/* A broken file: refused, the 1 KiB limit stays. */
		assert_non_null(f = fopen(cfg, "a"));
		fputs("garbage", f);
		fclose(f);
		kill(e.pid, SIGHUP);
		usleep(300000);
		assert_true(log_has(&e, "configuration reload refused"));
		e2e_http(&e, "POST", "/v1/entries", newtok, b1, strlen(b1), &r);
		assert_int_equal(r.status, 413);
		e2e_resp_free(&r);
		/* The file as it was: 64 KiB bodies again. */
		e2e_file_write(cfg, orig, clen);
		kill(e.pid, SIGHUP);
		usleep(300000);
		e2e_http(&e, "POST", "/v1/entries", newtok, b1, strlen(b1), &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		e2e_http(&e, "POST", "/v1/entries", newtok, b2, strlen(b2), &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		/*
		 * A batch waits for more entries only while more are on
		 * their way: with a one-second interval a lone entry is
		 * still answered at once.
		 */
		{
			char *b3 = entry_body(&s, "conf-3", "c.bin");
			double t0;

			e2e_conf_set(
			    &e, "batch", "interval_us", json_integer(1000000));
			kill(e.pid, SIGHUP);
			usleep(300000);
			t0 = kt_monotonic_seconds();
			e2e_http(&e, "POST", "/v1/entries", newtok, b3,
			    strlen(b3), &r);
			assert_int_equal(r.status, 200);
			assert_true(kt_monotonic_seconds() - t0 < 0.6);
			e2e_resp_free(&r);
			free(b3);
			e2e_file_write(cfg, orig, clen);
			kill(e.pid, SIGHUP);
			usleep(300000);
		}
		free(orig);
		free(b1);
		free(b2);
	}
	EVP_PKEY_free(s.pk);
	e2e_stop(&e, SIGTERM);
	/* --check-config accepts the setup and refuses a broken file. */
	{
		char *argv1[] = { (char *)getenv("KT_LOGD"), "--data", e.data,
			"--check-config", NULL };
		char cfg[400];

		assert_int_equal(e2e_run(argv1), 0);
		e2e_conf_set(&e, "hsm", "session_copies", json_string("yes"));
		assert_int_not_equal(e2e_run(argv1), 0);
		e2e_conf_set(&e, "hsm", "session_copies", json_false());
		assert_int_equal(e2e_run(argv1), 0);
		snprintf(cfg, sizeof(cfg), "%s/keytrail.json", e.data);
		assert_non_null(f = fopen(cfg, "a"));
		fputs("garbage", f);
		fclose(f);
		assert_int_not_equal(e2e_run(argv1), 0);
	}
	e2e_cleanup(&e);
}

static void
test_storage_full(void **state)
{
	enum {
		N = 4000,
		WAVE = 200
	};
	struct e2e e;
	struct e2e_trust tr;
	struct signer s;
	struct e2e_call calls[WAVE];
	char tok[128], seed[64], name[300];
	uint64_t acked = 0, size, size2;
	struct kt_hash root, root2;
	int full = 0;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	e2e_stop(&e, SIGTERM);
	/* A 1 MiB map fills after a few thousand entries. */
	e2e_conf_set(&e, NULL, "map_size_mib", json_integer(1));
	e2e_start(&e);
	e2e_trust_get(&e, &tr);
	signer_new(&s);
	import_key(&e, &s, "full");
	e2e_token(&e, "ci", tok, sizeof(tok));
	memset(name, 'n', 200);
	name[200] = 0;
	for (int wave = 0; wave < N / WAVE && !full; wave++) {
		for (int i = 0; i < WAVE; i++) {
			snprintf(seed, sizeof(seed), "full-%d-%d", wave, i);
			calls[i].path = "/v1/entries";
			calls[i].token = tok;
			calls[i].body = entry_body(&s, seed, name);
			calls[i].bodylen = strlen(calls[i].body);
		}
		e2e_post_many(&e, calls, WAVE, 8);
		for (int i = 0; i < WAVE; i++) {
			if (calls[i].resp.status == 200) {
				acked++;
			} else {
				json_t *j = e2e_json(&calls[i].resp);

				/* Full: 503 with a clear reason, never a crash.
				 */
				assert_int_equal(calls[i].resp.status, 503);
				assert_non_null(
				    strstr(json_string_value(
					       json_object_get(j, "detail")),
					"full"));
				json_decref(j);
				full = 1;
			}
			free(calls[i].body);
			e2e_resp_free(&calls[i].resp);
		}
	}
	assert_true(full);
	/* The log still serves, at a size covering every acknowledged entry. */
	checkpoint_get(&e, &tr, &size, &root, NULL);
	assert_int_equal(size, acked + SETUP_ENTRIES + 1);
	assert_int_equal(
	    kt_tiles_verify(size, &root, http_tile_read, &e), KT_OK);
	e2e_stop(&e, SIGTERM);
	/* With a larger map the same log carries on. */
	e2e_conf_set(&e, NULL, "map_size_mib", json_integer(64));
	e2e_start(&e);
	checkpoint_get(&e, &tr, &size2, &root2, NULL);
	assert_int_equal(size2, size);
	assert_memory_equal(root2.b, root.b, 32);
	{
		struct e2e_resp r;
		char *b = entry_body(&s, "after", "after.bin");

		e2e_http(&e, "POST", "/v1/entries", tok, b, strlen(b), &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		free(b);
	}
	checkpoint_get(&e, &tr, &size2, &root2, NULL);
	assert_int_equal(size2, size + 1);
	EVP_PKEY_free(s.pk);
	e2e_stop(&e, SIGTERM);
	e2e_cleanup(&e);
}

static void
test_connection_limit(void **state)
{
	enum {
		CONNS = 12,
		CALLS = 48
	};
	struct e2e e;
	struct e2e_call calls[CALLS];
	int refused = 0, served = 0;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	e2e_stop(&e, SIGTERM);
	e2e_conf_set(&e, "limits", "max_connections", json_integer(4));
	e2e_start(&e);
	/*
	 * Twelve connections at once, four allowed: the others are answered
	 * 503 with a JSON reason and closed, and the daemon keeps serving.
	 */
	for (int i = 0; i < CALLS; i++) {
		calls[i].path = "/v1/entries";
		calls[i].token = NULL;
		calls[i].body = strdup("{}");
		calls[i].bodylen = 2;
	}
	e2e_post_many(&e, calls, CALLS, CONNS);
	for (int i = 0; i < CALLS; i++) {
		if (calls[i].resp.status == 503) {
			json_t *j = e2e_json(&calls[i].resp);

			assert_string_equal(
			    json_string_value(json_object_get(j, "error")),
			    "overloaded");
			json_decref(j);
			refused++;
		} else if (calls[i].resp.status == 401) {
			served++;
		}
		free(calls[i].body);
		e2e_resp_free(&calls[i].resp);
	}
	assert_true(refused > 0);
	assert_true(served > 0);
	{
		struct e2e_resp r;

		e2e_http(&e, "GET", "/healthz", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
	}
	e2e_stop(&e, SIGTERM);
	e2e_cleanup(&e);
}

/*
 * Runs `keytrail bench MODE` (KT_CLI) against e with n requests over conns
 * connections; its exit status, and its stdout and stderr in *out (caller
 * frees), which are printed when the status is not 0.
 */
static int
bench_run(struct e2e *e, const char *mode, int n, int conns, char **out)
{
	const char *bin = getenv("KT_CLI");
	char url[64], ns[16], cs[16], opath[400];
	int status;
	pid_t pid;

	if (bin == NULL)
		fail_msg("KT_CLI is not set");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", e->port);
	snprintf(ns, sizeof(ns), "%d", n);
	snprintf(cs, sizeof(cs), "%d", conns);
	snprintf(opath, sizeof(opath), "%s/bench.out", e->dir);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fo < 0)
			_exit(126);
		dup2(fo, STDOUT_FILENO);
		dup2(fo, STDERR_FILENO);
		execl(bin, bin, "bench", mode, "--url", url, "--data", e->data,
		    "-n", ns, "-c", cs, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	*out = (char *)e2e_file_read(opath, NULL);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		print_message("keytrail bench %s failed:\n%s\n", mode,
		    *out != NULL ? *out : "(no output)");
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The benchmark tools work against a real daemon: every append and every
 * signature answered, every proof and signature checked by the tool; and
 * a daemon that is gone makes them fail.
 */
static void
test_bench_tools(void **state)
{
	struct e2e e;
	struct e2e_resp r;
	char *out;
	json_t *j;

	(void)state;
	e2e_init(&e);
	e2e_start(&e);
	assert_int_equal(bench_run(&e, "append", 300, 16, &out), 0);
	assert_non_null(strstr(out, "appended and proven   300 of 300"));
	assert_non_null(strstr(out, "client CPU"));
	free(out);
	assert_int_equal(bench_run(&e, "sign", 300, 16, &out), 0);
	assert_non_null(strstr(out, "signed, logged, proven  300 of 300"));
	free(out);
	/* The key registration, 300 appends and 300 signatures are logged. */
	e2e_http(&e, "GET", "/v1/log", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	assert_true(json_integer_value(json_object_get(j, "size")) >= 601);
	json_decref(j);
	e2e_resp_free(&r);
	e2e_stop(&e, SIGTERM);
	assert_int_not_equal(bench_run(&e, "sign", 20, 4, &out), 0);
	free(out);
	e2e_cleanup(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_reuse_and_files),
		cmocka_unit_test(test_append_verify_restart),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_crash_safety),
		cmocka_unit_test(test_gzip_metrics_reload),
		cmocka_unit_test(test_storage_full),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_bench_tools),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
