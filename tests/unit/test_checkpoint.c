/*
 * Checkpoint bodies and signed checkpoints: the checkpoint cases of
 * notes.json, every file of vectors/checkpoints and the two published
 * checkpoints (all re-signed byte for byte from the test seeds), the four
 * checkpoints a client must refuse, witness quorums, and tables of
 * truncated, oversized, non-canonical and trailing-garbage bodies.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "testutil.h"

#define ROOT_70000 "iBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5rMs="
#define BODY_70000 "example.com/testlog\n70000\n" ROOT_70000 "\n"
#define COSIG_TIME UINT64_C(1735689600)

/*
 * Resolves an expected outcome to 1 (accept) or 0 (reject): "either"
 * follows the preferred field or, for the cases without one, the outcome
 * the limits of note.h give (as test_note.c records).
 */
static int
expect_accept(const json_t *v, const char *field, const char *preferred)
{
	const char *e = tu_str(v, field);
	const json_t *p = json_object_get(v, preferred);
	const char *name = tu_str(v, "name");

	if (strcmp(e, "accept") == 0)
		return 1;
	if (strcmp(e, "reject") == 0 || strcmp(e, "n/a") == 0)
		return 0;
	assert_string_equal(e, "either");
	if (json_is_string(p))
		return strcmp(json_string_value(p), "accept") == 0;
	if (strcmp(name, "long-extension-4097") == 0)
		return 1;
	if (strcmp(name, "hundred-unknown-then-valid") == 0 ||
	    strcmp(name, "huge-extension-70000") == 0)
		return 0;
	fail_msg("no decision for \"either\" case %s", name);
	return 0;
}

/*
 * Length of the note text of msg: everything up to and including the
 * newline before the last blank line, or 0 when there is no blank line.
 */
static size_t
text_len(const uint8_t *msg, size_t len)
{
	for (size_t i = len; i >= 2; i--) {
		if (msg[i - 2] == '\n' && msg[i - 1] == '\n')
			return i - 1;
	}
	return 0;
}

/* Checks c against a notes.json "checkpoint" object. */
static void
check_fields(const struct kt_checkpoint *c, const json_t *want, int lossy)
{
	const char *origin = tu_str(want, "origin");
	const json_t *e;
	struct kt_hash root;
	struct kt_buf ext;
	size_t i;

	assert_int_equal(c->origin.len, strlen(origin));
	assert_memory_equal(c->origin.p, origin, c->origin.len);
	assert_int_equal(c->size, tu_u64(want, "size"));
	tu_hash_hex(tu_str(want, "root_hex"), &root);
	assert_memory_equal(c->root.b, root.b, 32);
	assert_int_equal(
	    kt_b64_decode_exact(tu_str(want, "root_b64"), 44, root.b, 32),
	    KT_OK);
	assert_memory_equal(c->root.b, root.b, 32);
	kt_buf_init(&ext, KT_CHECKPOINT_MAX);
	json_array_foreach(json_object_get(want, "extensions"), i, e)
	{
		/* json_string_length: one extension line holds a NUL. */
		assert_int_equal(kt_buf_append(&ext, json_string_value(e),
				     json_string_length(e)),
		    KT_OK);
		assert_int_equal(kt_buf_append_byte(&ext, '\n'), KT_OK);
	}
	/*
	 * JSON cannot hold invalid UTF-8: there the extension shows U+FFFD
	 * and the case has no "note" text.  Compare line counts then.
	 */
	if (lossy) {
		size_t got = 0, exp = 0;

		int fffd = 0;

		for (size_t k = 0; k + 3 <= ext.len; k++)
			fffd |= memcmp(ext.p + k, "\xef\xbf\xbd", 3) == 0;
		assert_true(fffd);
		for (size_t k = 0; k < c->ext.len; k++)
			got += c->ext.p[k] == '\n';
		for (size_t k = 0; k < ext.len; k++)
			exp += ext.p[k] == '\n';
		assert_int_equal(got, exp);
	} else {
		assert_int_equal(c->ext.len, ext.len);
		if (ext.len > 0)
			assert_memory_equal(c->ext.p, ext.p, ext.len);
	}
	kt_buf_free(&ext);
}

static void
test_checkpoint_parse_vectors(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v;
	size_t i, naccepted = 0;

	(void)state;
	json_array_foreach(json_object_get(j, "note_vectors"), i, v)
	{
		const char *name = tu_str(v, "name");
		int want = expect_accept(
		    v, "checkpoint_expect", "checkpoint_preferred");
		size_t len, tlen;
		uint8_t *msg = tu_b64(tu_str(v, "note_b64"), &len);
		struct kt_checkpoint c;
		int rc;

		tlen = text_len(msg, len);
		if (strcmp(tu_str(v, "checkpoint_expect"), "n/a") == 0) {
			/* No blank line, so no text to parse. */
			assert_int_equal(tlen, 0);
			free(msg);
			continue;
		}
		assert_int_not_equal(tlen, 0);
		rc = kt_checkpoint_parse(msg, tlen, &c);
		if (want != (rc == KT_OK))
			fail_msg("checkpoint case %s: got %s", name,
			    kt_strerror(rc));
		if (rc == KT_OK) {
			struct kt_buf b;

			naccepted++;
			check_fields(&c, json_object_get(v, "checkpoint"),
			    json_object_get(v, "note") == NULL &&
				kt_note_text_check(msg, tlen) != KT_OK);
			/* Formatting the parsed body gives it back. */
			kt_buf_init(&b, KT_CHECKPOINT_MAX);
			assert_int_equal(kt_checkpoint_format(&c, &b), KT_OK);
			assert_int_equal(b.len, tlen);
			assert_memory_equal(b.p, msg, tlen);
			kt_buf_free(&b);
		} else {
			assert_true(
			    json_is_null(json_object_get(v, "checkpoint")) ||
			    strcmp(tu_str(v, "checkpoint_expect"), "either") ==
				0);
		}
		free(msg);
	}
	assert_true(naccepted > 30);
	json_decref(j);
}

static void
test_checkpoint_open_vectors(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v;
	size_t i, nrun = 0;

	(void)state;
	json_array_foreach(json_object_get(j, "note_vectors"), i, v)
	{
		const json_t *vk = json_object_get(v, "verifier_keys");
		const json_t *cp = json_object_get(v, "checkpoint");
		size_t nkeys = json_array_size(vk), len;
		struct kt_note_vkey keys[4];
		struct kt_note_keyresult wres[4];
		struct kt_checkpoint_trust trust;
		struct kt_checkpoint c;
		uint8_t *msg;
		int want, same_origin, rc;

		assert_true(nkeys >= 1 && nkeys <= 4);
		for (size_t k = 0; k < nkeys; k++)
			tu_vkey(
			    json_string_value(json_array_get(vk, k)), &keys[k]);
		/* A client needs a log key; witness-only cases are notes. */
		if (keys[0].type != KT_NOTE_ED25519)
			continue;
		nrun++;
		same_origin = json_is_object(cp) &&
		    strcmp(tu_str(cp, "origin"), keys[0].name) == 0;
		want = expect_accept(v, "note_expect", "note_preferred") &&
		    expect_accept(
			v, "checkpoint_expect", "checkpoint_preferred") &&
		    same_origin;
		/* "expect" combines both parts for exactly this client. */
		if (same_origin && strcmp(tu_str(v, "expect"), "either") != 0)
			assert_int_equal(
			    want, strcmp(tu_str(v, "expect"), "accept") == 0);
		msg = tu_b64(tu_str(v, "note_b64"), &len);
		memset(&trust, 0, sizeof(trust));
		trust.log = &keys[0];
		trust.origin.p = (const uint8_t *)keys[0].name;
		trust.origin.len = keys[0].namelen;
		trust.witnesses = keys + 1;
		trust.nwitnesses = nkeys - 1;
		rc = kt_checkpoint_open(msg, len, &trust, wres, &c);
		if (want != (rc == KT_OK))
			fail_msg("open case %s: got %s", tu_str(v, "name"),
			    kt_strerror(rc));
		if (rc == KT_OK)
			check_fields(&c, cp, 0);
		free(msg);
	}
	assert_true(nrun > 50);
	json_decref(j);
}

/* A software signer made from a hex seed. */
struct test_signer {
	struct kt_note_ed25519 *ed;
	struct kt_note_signer s;
};

static void
signer_init(
    const char *seed_hex, const struct kt_note_vkey *k, struct test_signer *ts)
{
	size_t n;
	uint8_t *seed = tu_hex(seed_hex, &n);
	uint8_t pub[32];

	assert_int_equal(n, 32);
	assert_int_equal(kt_note_ed25519_new(seed, &ts->ed), KT_OK);
	kt_note_ed25519_public(ts->ed, pub);
	assert_memory_equal(pub, k->pub, 32);
	ts->s.key = *k;
	ts->s.sign = kt_note_ed25519_sign;
	ts->s.ctx = ts->ed;
	kt_wipe(seed, n);
	free(seed);
}

/* The two log keys of notes.json, by vkey string. */
struct log_keys {
	struct kt_note_vkey key[2];
	struct test_signer signer[2];
};

static void
log_keys_init(struct log_keys *lk)
{
	json_t *j = tu_load_json("notes.json");

	for (size_t i = 0; i < 2; i++) {
		const json_t *k = json_array_get(json_object_get(j, "keys"), i);

		tu_vkey(tu_str(k, "vkey"), &lk->key[i]);
		signer_init(tu_str(k, "seed_hex"), &lk->key[i], &lk->signer[i]);
	}
	json_decref(j);
}

static void
log_keys_free(struct log_keys *lk)
{
	for (size_t i = 0; i < 2; i++)
		kt_note_ed25519_free(lk->signer[i].ed);
}

/* Opens a vector checkpoint file with a log's key and origin. */
static int
open_file(const char *rel, const struct kt_note_vkey *key, const char *origin,
    uint8_t **msg, size_t *len, struct kt_checkpoint *c)
{
	struct kt_checkpoint_trust trust;

	*msg = tu_read_vector_file(rel, len);
	memset(&trust, 0, sizeof(trust));
	trust.log = key;
	trust.origin.p = (const uint8_t *)origin;
	trust.origin.len = strlen(origin);
	return kt_checkpoint_open(*msg, *len, &trust, NULL, c);
}

/* Re-signs the text of msg with ts and expects the same bytes. */
static void
check_resign(const uint8_t *msg, size_t len, const struct test_signer *ts)
{
	struct kt_buf b;

	kt_buf_init(&b, KT_NOTE_MAX);
	assert_int_equal(
	    kt_note_sign(msg, text_len(msg, len), &ts->s, 1, 0, &b), KT_OK);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.p, msg, len);
	kt_buf_free(&b);
}

/* Number of regular files in <vectors>/checkpoints. */
static size_t
count_checkpoint_files(void)
{
	char path[4096];
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int k;

	k = snprintf(path, sizeof(path), "%s/checkpoints", tu_vectors_dir());
	assert_true(k > 0 && (size_t)k < sizeof(path));
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static void
test_checkpoint_open_history(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	struct log_keys lk;
	const json_t *log;
	size_t i, nfiles = 0;

	(void)state;
	log_keys_init(&lk);
	assert_int_equal(json_array_size(json_object_get(j, "logs")), 2);
	json_array_foreach(json_object_get(j, "logs"), i, log)
	{
		const char *origin = tu_str(log, "origin");
		const json_t *h;
		struct kt_note_vkey key;
		struct kt_checkpoint cur, c;
		struct kt_hash root;
		const struct test_signer *ts;
		char rel[256];
		uint8_t *msg;
		size_t len, k;

		tu_vkey(tu_str(log, "vkey"), &key);
		ts = memcmp(&key, &lk.key[0], sizeof(key)) == 0 ? &lk.signer[0]
								: &lk.signer[1];
		assert_memory_equal(&ts->s.key, &key, sizeof(key));
		/* The published checkpoint. */
		snprintf(rel, sizeof(rel), "%s/checkpoint", tu_str(log, "dir"));
		assert_int_equal(
		    open_file(rel, &key, origin, &msg, &len, &cur), KT_OK);
		assert_int_equal(len, strlen(tu_str(log, "checkpoint")));
		assert_memory_equal(msg, tu_str(log, "checkpoint"), len);
		assert_int_equal(cur.size, tu_u64(log, "size"));
		tu_hash_hex(tu_str(log, "root_hex"), &root);
		assert_memory_equal(cur.root.b, root.b, 32);
		assert_int_equal(cur.ext.len, 0);
		check_resign(msg, len, ts);
		free(msg);
		/* Every earlier checkpoint, and its consistency proof. */
		json_array_foreach(json_object_get(log, "history"), k, h)
		{
			const json_t *pj =
			    json_object_get(h, "consistency_proof_to_current");
			struct kt_hash proof[KT_PROOF_MAX];
			size_t np = json_array_size(pj);
			uint8_t *cmsg;
			size_t clen;

			assert_int_equal(open_file(tu_str(h, "file"), &key,
					     origin, &cmsg, &clen, &c),
			    KT_OK);
			nfiles++;
			assert_int_equal(c.size, tu_u64(h, "size"));
			tu_hash_hex(tu_str(h, "root_hex"), &root);
			assert_memory_equal(c.root.b, root.b, 32);
			check_resign(cmsg, clen, ts);
			assert_true(np <= KT_PROOF_MAX);
			for (size_t p = 0; p < np; p++)
				tu_hash_hex(
				    json_string_value(json_array_get(pj, p)),
				    &proof[p]);
			if (c.size > 0)
				assert_int_equal(
				    kt_consistency_check(proof, np, c.size,
					&c.root, cur.size, &cur.root),
				    KT_OK);
			free(cmsg);
		}
		nfiles +=
		    json_array_size(json_object_get(log, "negative_history"));
	}
	/* The history and the four bad files are the whole directory. */
	assert_int_equal(nfiles, count_checkpoint_files());
	log_keys_free(&lk);
	json_decref(j);
}

/* Finds a history entry of the tiles/ log by size. */
static const json_t *
history_entry(const json_t *log, uint64_t size)
{
	const json_t *h;
	size_t i;

	json_array_foreach(json_object_get(log, "history"), i, h)
	{
		if (tu_u64(h, "size") == size)
			return h;
	}
	fail_msg("no history entry of size %llu", (unsigned long long)size);
	return NULL;
}

static void
test_checkpoint_open_refuses_bad_history(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	const json_t *log = json_array_get(json_object_get(j, "logs"), 0);
	const char *origin = tu_str(log, "origin");
	const json_t *h1000, *nh, *pj;
	struct kt_hash proof[KT_PROOF_MAX], root;
	struct kt_checkpoint cur, c;
	struct kt_note_vkey key;
	struct log_keys lk;
	uint8_t *cmsg, *msg;
	size_t clen, len, np, i;

	(void)state;
	log_keys_init(&lk);
	assert_string_equal(tu_str(log, "dir"), "tiles");
	tu_vkey(tu_str(log, "vkey"), &key);
	assert_int_equal(
	    open_file("tiles/checkpoint", &key, origin, &cmsg, &clen, &cur),
	    KT_OK);
	h1000 = history_entry(log, 1000);
	pj = json_object_get(h1000, "consistency_proof_to_current");
	np = json_array_size(pj);
	for (size_t p = 0; p < np; p++)
		tu_hash_hex(
		    json_string_value(json_array_get(pj, p)), &proof[p]);
	assert_int_equal(
	    json_array_size(json_object_get(log, "negative_history")), 4);
	json_array_foreach(json_object_get(log, "negative_history"), i, nh)
	{
		const char *file = tu_str(nh, "file");
		int rc = open_file(file, &key, origin, &msg, &len, &c);

		if (strstr(file, "fork") != NULL) {
			/* Signed by the log, but not a prefix of the tree. */
			assert_int_equal(rc, KT_OK);
			assert_int_equal(c.size, 1000);
			assert_int_equal(kt_consistency_check(proof, np, 1000,
					     &c.root, cur.size, &cur.root),
			    KT_EVERIFY);
			check_resign(msg, len, &lk.signer[0]);
		} else if (strstr(file, "future") != NULL) {
			/* Genuine and newer: the published one is a rollback.
			 */
			assert_int_equal(rc, KT_OK);
			assert_true(c.size > cur.size);
			check_resign(msg, len, &lk.signer[0]);
		} else if (strstr(file, "otherkey") != NULL) {
			/* The other log's key signed it: nothing verifies. */
			assert_int_equal(rc, KT_EVERIFY);
			assert_int_equal(
			    kt_note_open(msg, len, &key, 1, NULL, NULL),
			    KT_EVERIFY);
			assert_int_equal(
			    kt_note_open(msg, len, &lk.key[1], 1, NULL, NULL),
			    KT_OK);
			check_resign(msg, len, &lk.signer[1]);
		} else if (strstr(file, "otherorigin") != NULL) {
			struct kt_checkpoint_trust t;

			/* The signature is good; the origin is not ours. */
			assert_int_equal(rc, KT_EVERIFY);
			assert_int_equal(
			    kt_note_open(msg, len, &key, 1, NULL, NULL), KT_OK);
			memset(&t, 0, sizeof(t));
			t.log = &key;
			t.origin.p = (const uint8_t *)"example.com/other-log";
			t.origin.len = strlen("example.com/other-log");
			assert_int_equal(
			    kt_checkpoint_open(msg, len, &t, NULL, &c), KT_OK);
			tu_hash_hex(tu_str(h1000, "root_hex"), &root);
			assert_memory_equal(c.root.b, root.b, 32);
			check_resign(msg, len, &lk.signer[0]);
		} else {
			fail_msg("unexpected negative file %s", file);
		}
		free(msg);
	}
	free(cmsg);
	log_keys_free(&lk);
	json_decref(j);
}

/* Bodies kt_checkpoint_parse must refuse, with the error it returns. */
static const struct {
	const char *text;
	int err;
} bad_bodies[] = {
	{ "", KT_EPARSE },
	{ "\n", KT_EPARSE },
	{ "example.com/testlog\n", KT_EPARSE },
	{ "example.com/testlog\n70000\n", KT_EPARSE },
	{ "example.com/testlog\n70000\n" ROOT_70000, KT_EPARSE },
	{ "\n70000\n" ROOT_70000 "\n", KT_EPARSE },
	/* Trailing garbage and empty extension lines. */
	{ BODY_70000 "x", KT_EPARSE },
	{ BODY_70000 "\n", KT_EPARSE },
	{ BODY_70000 "ext\n\n", KT_EPARSE },
	{ BODY_70000 "\next\n", KT_EPARSE },
	{ BODY_70000 "ext\nx", KT_EPARSE },
	/* Sizes. */
	{ "o\n\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n070000\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n00\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n-1\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n+1\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n1 \n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n 1\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n1\r\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n0x11170\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n1e5\n" ROOT_70000 "\n", KT_EPARSE },
	{ "o\n9223372036854775808\n" ROOT_70000 "\n", KT_ETOOBIG },
	{ "o\n18446744073709551615\n" ROOT_70000 "\n", KT_ETOOBIG },
	{ "o\n18446744073709551616\n" ROOT_70000 "\n", KT_ETOOBIG },
	{ "o\n99999999999999999999999\n" ROOT_70000 "\n", KT_ETOOBIG },
	/* Roots. */
	{ "o\n1\n\n", KT_EPARSE },
	{ "o\n1\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5rMt=\n", KT_EPARSE },
	{ "o\n1\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5rMs\n", KT_EPARSE },
	{ "o\n1\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5rA==\n", KT_EPARSE },
	{ "o\n1\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5rMsA\n", KT_EPARSE },
	{ "o\n1\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3--5rMs=\n", KT_EPARSE },
	{ "o\n1\n" ROOT_70000 " \n", KT_EPARSE },
	{ "o\n1\n " ROOT_70000 "\n", KT_EPARSE },
	{ "o\n1\n" ROOT_70000 "\r\n", KT_EPARSE },
	{ "o\n1\n881c2f4c7c3b60c864d574aab91746a167220c520a2f833d86eee6dfefb9"
	  "accb\n",
	    KT_EPARSE },
	/* Accepted for contrast. */
	{ "o\n9223372036854775807\n" ROOT_70000 "\n", KT_OK },
	{ "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", KT_OK },
	{ "o p\n1\n" ROOT_70000 "\n", KT_OK },
	{ BODY_70000 "ext\n\xe2\x80\x94 x\n", KT_OK },
};

static void
test_checkpoint_parse_rejects(void **state)
{
	const uint8_t *body = (const uint8_t *)BODY_70000;
	struct kt_checkpoint c;
	uint8_t *big;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]);
	     i++) {
		int rc;

		memset(&c, 0xa5, sizeof(c));
		rc = kt_checkpoint_parse((const uint8_t *)bad_bodies[i].text,
		    strlen(bad_bodies[i].text), &c);
		if (rc != bad_bodies[i].err)
			fail_msg("body %zu: got %s, want %s", i,
			    kt_strerror(rc), kt_strerror(bad_bodies[i].err));
		if (rc != KT_OK)
			assert_int_equal(((uint8_t *)&c)[0], 0xa5);
	}
	/* A NUL is the note's business; the body only counts lines. */
	assert_int_equal(
	    kt_checkpoint_parse(
		(const uint8_t *)"o\0\n1\n" ROOT_70000 "\n", 5 + 45, &c),
	    KT_OK);
	/* Every truncation of a valid body fails. */
	for (size_t n = 0; n < strlen(BODY_70000); n++)
		assert_int_not_equal(kt_checkpoint_parse(body, n, &c), KT_OK);
	/* Oversized: one byte past the limit, however well formed. */
	big = malloc(KT_CHECKPOINT_MAX + 1);
	assert_non_null(big);
	memcpy(big, BODY_70000, strlen(BODY_70000));
	memset(big + strlen(BODY_70000), 'x',
	    KT_CHECKPOINT_MAX + 1 - strlen(BODY_70000));
	big[KT_CHECKPOINT_MAX - 1] = '\n';
	assert_int_equal(
	    kt_checkpoint_parse(big, KT_CHECKPOINT_MAX, &c), KT_OK);
	assert_int_equal(c.ext.len, KT_CHECKPOINT_MAX - strlen(BODY_70000));
	big[KT_CHECKPOINT_MAX] = '\n';
	assert_int_equal(
	    kt_checkpoint_parse(big, KT_CHECKPOINT_MAX + 1, &c), KT_ETOOBIG);
	free(big);
}

static void
test_checkpoint_format_roundtrip(void **state)
{
	static const struct {
		const char *origin;
		uint64_t size;
		const char *ext;
	} cases[] = {
		{ "example.com/testlog", 0, "" },
		{ "example.com/testlog", 70000, "" },
		{ "example.com/\xe3\x83\xad\xe3\x82\xb0", 1, "" },
		{ "o", KT_SIZE_MAX - 1, "a\nb c\n" },
	};
	struct kt_buf b;

	(void)state;
	kt_buf_init(&b, KT_CHECKPOINT_MAX);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kt_checkpoint c, back;

		c.origin.p = (const uint8_t *)cases[i].origin;
		c.origin.len = strlen(cases[i].origin);
		c.size = cases[i].size;
		for (size_t k = 0; k < 32; k++)
			c.root.b[k] = (uint8_t)(i * 31 + k);
		c.ext.p = (const uint8_t *)cases[i].ext;
		c.ext.len = strlen(cases[i].ext);
		kt_buf_reset(&b);
		assert_int_equal(kt_checkpoint_format(&c, &b), KT_OK);
		assert_int_equal(kt_checkpoint_parse(b.p, b.len, &back), KT_OK);
		assert_int_equal(back.origin.len, c.origin.len);
		assert_memory_equal(back.origin.p, c.origin.p, c.origin.len);
		assert_int_equal(back.size, c.size);
		assert_memory_equal(back.root.b, c.root.b, 32);
		assert_int_equal(back.ext.len, c.ext.len);
		if (c.ext.len > 0)
			assert_memory_equal(back.ext.p, c.ext.p, c.ext.len);
	}
	/* The body of the published checkpoint. */
	{
		struct kt_checkpoint c;

		assert_int_equal(
		    kt_checkpoint_parse(
			(const uint8_t *)BODY_70000, strlen(BODY_70000), &c),
		    KT_OK);
		kt_buf_reset(&b);
		assert_int_equal(kt_checkpoint_format(&c, &b), KT_OK);
		assert_int_equal(b.len, strlen(BODY_70000));
		assert_memory_equal(b.p, BODY_70000, b.len);
	}
	kt_buf_free(&b);
}

static void
test_checkpoint_format_rejects(void **state)
{
	static const struct {
		const char *origin;
		size_t originlen;
		uint64_t size;
		const char *ext;
	} cases[] = {
		{ "", 0, 1, "" },
		{ "a\nb", 3, 1, "" },
		{ "o", 1, KT_SIZE_MAX, "" },
		{ "o", 1, UINT64_MAX, "" },
		{ "o", 1, 1, "a" },
		{ "o", 1, 1, "\n" },
		{ "o", 1, 1, "a\n\n" },
		{ "o", 1, 1, "a\n\nb\n" },
	};
	struct kt_buf b;

	(void)state;
	kt_buf_init(&b, KT_CHECKPOINT_MAX);
	assert_int_equal(kt_buf_append_str(&b, "keep"), KT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kt_checkpoint c;

		memset(&c, 0, sizeof(c));
		c.origin.p = (const uint8_t *)cases[i].origin;
		c.origin.len = cases[i].originlen;
		c.size = cases[i].size;
		c.ext.p = (const uint8_t *)cases[i].ext;
		c.ext.len = strlen(cases[i].ext);
		assert_int_equal(kt_checkpoint_format(&c, &b), KT_EINVAL);
		assert_int_equal(b.len, 4);
	}
	kt_buf_free(&b);
	/* A buffer too small for the body is left as it was. */
	{
		struct kt_checkpoint c;

		assert_int_equal(
		    kt_checkpoint_parse(
			(const uint8_t *)BODY_70000, strlen(BODY_70000), &c),
		    KT_OK);
		kt_buf_init(&b, 30);
		assert_int_equal(kt_checkpoint_format(&c, &b), KT_ETOOBIG);
		assert_int_equal(b.len, 0);
		kt_buf_free(&b);
	}
}

static void
test_checkpoint_open_rejects_bad_trust(void **state)
{
	struct kt_checkpoint_trust t;
	struct kt_note_vkey log, w;
	struct kt_checkpoint c;
	json_t *j = tu_load_json("notes.json");
	uint8_t *msg;
	size_t len;

	(void)state;
	tu_vkey(tu_str(json_array_get(json_object_get(j, "keys"), 0), "vkey"),
	    &log);
	tu_vkey(
	    tu_str(json_array_get(json_object_get(j, "keys"), 2), "vkey"), &w);
	msg = tu_read_vector_file("tiles/checkpoint", &len);
	memset(&t, 0, sizeof(t));
	t.origin.p = (const uint8_t *)"example.com/testlog";
	t.origin.len = strlen("example.com/testlog");
	/* No log key; a cosigner key as the log's; quorum above the list. */
	assert_int_equal(kt_checkpoint_open(msg, len, &t, NULL, &c), KT_EINVAL);
	t.log = &w;
	assert_int_equal(kt_checkpoint_open(msg, len, &t, NULL, &c), KT_EINVAL);
	t.log = &log;
	t.quorum = 1;
	assert_int_equal(kt_checkpoint_open(msg, len, &t, NULL, &c), KT_EINVAL);
	t.witnesses = &w;
	t.nwitnesses = 1;
	t.quorum = 0;
	assert_int_equal(kt_checkpoint_open(msg, len, &t, NULL, &c), KT_OK);
	/* Origins that are prefixes or extensions of the real one. */
	t.origin.len--;
	assert_int_equal(
	    kt_checkpoint_open(msg, len, &t, NULL, &c), KT_EVERIFY);
	t.origin.p = (const uint8_t *)"example.com/testlog2";
	t.origin.len = strlen("example.com/testlog2");
	assert_int_equal(
	    kt_checkpoint_open(msg, len, &t, NULL, &c), KT_EVERIFY);
	free(msg);
	json_decref(j);
}

static void
test_checkpoint_open_witness_quorum(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *cv =
	    json_array_get(json_object_get(j, "cosignature_vectors"), 0);
	const char *note = tu_str(cv, "note");
	struct kt_note_vkey log, w[3];
	struct kt_note_keyresult res[3];
	struct kt_checkpoint_trust t;
	struct kt_checkpoint c;
	const json_t *v;
	uint8_t *plain;
	size_t plen, i;

	(void)state;
	tu_vkey(tu_str(cv, "log_vkey"), &log);
	tu_vkey(tu_str(cv, "cosigner_vkey"), &w[0]);
	memset(&t, 0, sizeof(t));
	t.log = &log;
	t.origin.p = (const uint8_t *)"example.com/testlog";
	t.origin.len = strlen("example.com/testlog");
	t.witnesses = w;
	t.nwitnesses = 1;
	t.quorum = 1;
	memset(res, 0, sizeof(res));
	assert_int_equal(kt_checkpoint_open(
			     (const uint8_t *)note, strlen(note), &t, res, &c),
	    KT_OK);
	assert_true(res[0].verified);
	assert_int_equal(res[0].timestamp, COSIG_TIME);
	assert_int_equal(c.size, 70000);
	/* The same witness listed twice is still one witness. */
	w[1] = w[0];
	t.nwitnesses = 2;
	t.quorum = 2;
	assert_int_equal(kt_checkpoint_open(
			     (const uint8_t *)note, strlen(note), &t, res, &c),
	    KT_EPOLICY);
	/* The log's own key never counts as a witness. */
	w[1] = log;
	t.quorum = 2;
	assert_int_equal(kt_checkpoint_open(
			     (const uint8_t *)note, strlen(note), &t, res, &c),
	    KT_EPOLICY);
	t.quorum = 1;
	assert_int_equal(kt_checkpoint_open(
			     (const uint8_t *)note, strlen(note), &t, res, &c),
	    KT_OK);
	assert_true(res[0].verified && res[1].verified);
	/* Without the cosignature the quorum is not met, and res is kept. */
	plain = tu_read_vector_file("tiles/checkpoint", &plen);
	t.nwitnesses = 1;
	res[0].verified = 9;
	assert_int_equal(
	    kt_checkpoint_open(plain, plen, &t, res, &c), KT_EPOLICY);
	assert_int_equal(res[0].verified, 9);
	t.quorum = 0;
	assert_int_equal(kt_checkpoint_open(plain, plen, &t, res, &c), KT_OK);
	assert_int_equal(res[0].verified, 0);
	free(plain);
	/* A trusted witness whose cosignature fails rejects the note. */
	json_array_foreach(json_object_get(j, "note_vectors"), i, v)
	{
		size_t len;
		uint8_t *msg;

		if (strcmp(tu_str(v, "name"),
			"cosignature-timestamp-altered-log-ok") != 0)
			continue;
		msg = tu_b64(tu_str(v, "note_b64"), &len);
		t.quorum = 0;
		assert_int_equal(
		    kt_checkpoint_open(msg, len, &t, res, &c), KT_EVERIFY);
		free(msg);
	}
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_parse_vectors),
		cmocka_unit_test(test_checkpoint_open_vectors),
		cmocka_unit_test(test_checkpoint_open_history),
		cmocka_unit_test(test_checkpoint_open_refuses_bad_history),
		cmocka_unit_test(test_checkpoint_parse_rejects),
		cmocka_unit_test(test_checkpoint_format_roundtrip),
		cmocka_unit_test(test_checkpoint_format_rejects),
		cmocka_unit_test(test_checkpoint_open_rejects_bad_trust),
		cmocka_unit_test(test_checkpoint_open_witness_quorum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
