/*
 * Signed notes, verifier keys, signer keys and cosignature/v1: every case
 * of notes.json (made with Go's sumdb/note and crypto/ed25519), RFC 8032's
 * first Ed25519 vector, and tables of truncated, oversized, non-canonical
 * and trailing-garbage inputs that must be refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/encoding.h"
#include "keytrail/note.h"
#include "testutil.h"

#define COSIG_TIME UINT64_C(1735689600)

/*
 * Outcomes chosen where notes.json says "either" and names no preferred
 * value; every other "either" case follows its *_preferred field.  A new
 * "either" case without a decision here fails the test.
 */
static const struct {
	const char *name;
	int accept;
} either_choices[] = {
	/* 101 signature lines: above KT_NOTE_SIGS_MAX, Go's cap too. */
	{ "hundred-unknown-then-valid", 0 },
	/* 4,283 bytes: well within KT_NOTE_MAX. */
	{ "long-extension-4097", 1 },
	/* 70,186 bytes: above KT_NOTE_MAX. */
	{ "huge-extension-70000", 0 },
};

/* Resolves an expected outcome to 1 (accept) or 0 (reject). */
static int
expect_accept(const json_t *v, const char *field, const char *preferred)
{
	const char *e = tu_str(v, field);
	const json_t *p = json_object_get(v, preferred);

	if (strcmp(e, "accept") == 0)
		return 1;
	if (strcmp(e, "reject") == 0)
		return 0;
	assert_string_equal(e, "either");
	if (json_is_string(p))
		return strcmp(json_string_value(p), "accept") == 0;
	for (size_t i = 0;
	     i < sizeof(either_choices) / sizeof(either_choices[0]); i++) {
		if (strcmp(either_choices[i].name, tu_str(v, "name")) == 0)
			return either_choices[i].accept;
	}
	fail_msg("no decision for \"either\" case %s", tu_str(v, "name"));
	return 0;
}

/* Parses a JSON array of vkey strings into a fresh array. */
static struct kt_note_vkey *
parse_vkeys(const json_t *arr, size_t *n)
{
	struct kt_note_vkey *keys;
	const json_t *s;
	size_t i;

	*n = json_array_size(arr);
	keys = calloc(*n + 1, sizeof(*keys));
	assert_non_null(keys);
	json_array_foreach(arr, i, s)
	{
		tu_vkey(json_string_value(s), &keys[i]);
	}
	return keys;
}

/* Finds the notes.json key named name. */
static const json_t *
find_key(const json_t *j, const char *name)
{
	const json_t *k;
	size_t i;

	json_array_foreach(json_object_get(j, "keys"), i, k)
	{
		if (strcmp(tu_str(k, "name"), name) == 0)
			return k;
	}
	fail_msg("no key %s in notes.json", name);
	return NULL;
}

/* A software signer made from a notes.json key's seed. */
struct test_signer {
	struct kt_note_ed25519 *ed;
	struct kt_note_signer s;
};

static void
signer_from_seed(const uint8_t seed[32], const char *name, uint8_t type,
    struct test_signer *ts)
{
	uint8_t pub[32];

	assert_int_equal(kt_note_ed25519_new(seed, &ts->ed), KT_OK);
	kt_note_ed25519_public(ts->ed, pub);
	assert_int_equal(
	    kt_note_vkey_init(name, strlen(name), type, pub, &ts->s.key),
	    KT_OK);
	ts->s.sign = kt_note_ed25519_sign;
	ts->s.ctx = ts->ed;
}

static void
signer_from_key(const json_t *key, struct test_signer *ts)
{
	size_t n;
	uint8_t *seed = tu_hex(tu_str(key, "seed_hex"), &n);

	assert_int_equal(n, 32);
	signer_from_seed(
	    seed, tu_str(key, "name"), (uint8_t)tu_u64(key, "type"), ts);
	kt_wipe(seed, n);
	free(seed);
}

static void
signer_free(struct test_signer *ts)
{
	kt_note_ed25519_free(ts->ed);
	ts->ed = NULL;
}

static void
test_note_vkey_parse_keys(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *k;
	size_t i;

	(void)state;
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
	json_array_foreach(json_object_get(j, "keys"), i, k)
	{
		const char *vkey = tu_str(k, "vkey");
		const char *name = tu_str(k, "name");
		struct kt_note_vkey key;
		struct kt_buf b;
		size_t publen, inlen, idlen;
		uint8_t *pub = tu_hex(tu_str(k, "public_key_hex"), &publen);
		uint8_t *in = tu_hex(tu_str(k, "key_id_input_hex"), &inlen);
		uint8_t *id = tu_hex(tu_str(k, "key_id_hex"), &idlen);
		uint32_t kid;

		tu_vkey(vkey, &key);
		assert_string_equal(key.name, name);
		assert_int_equal(key.namelen, strlen(name));
		assert_int_equal(key.type, tu_u64(k, "type"));
		assert_int_equal(publen, 32);
		assert_memory_equal(key.pub, pub, 32);
		assert_int_equal(idlen, 4);
		assert_int_equal(key.id, kt_get_u32be(id));
		/* The key ID input is name || 0x0A || type || key. */
		assert_int_equal(inlen, strlen(name) + 2 + 32);
		assert_memory_equal(in, name, strlen(name));
		assert_int_equal(in[strlen(name)], 0x0a);
		assert_int_equal(in[strlen(name) + 1], key.type);
		assert_memory_equal(in + strlen(name) + 2, pub, 32);
		assert_int_equal(
		    kt_note_key_id(name, strlen(name), key.type, pub, &kid),
		    KT_OK);
		assert_int_equal(kid, key.id);
		/* Formatting gives back the same string. */
		kt_buf_init(&b, 1024);
		assert_int_equal(kt_note_vkey_format(&key, &b), KT_OK);
		assert_int_equal(b.len, strlen(vkey));
		assert_memory_equal(b.p, vkey, b.len);
		kt_buf_free(&b);
		free(pub);
		free(in);
		free(id);
	}
	json_decref(j);
}

static void
test_note_skey_parse_keys(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *k;
	size_t i, nskeys = 0;

	(void)state;
	json_array_foreach(json_object_get(j, "keys"), i, k)
	{
		const json_t *skey = json_object_get(k, "skey");
		struct kt_note_vkey vk, want;
		struct test_signer ts;
		uint8_t seed[32], pub[32];
		size_t n;
		uint8_t *wseed;

		if (skey == NULL)
			continue;
		nskeys++;
		tu_vkey(tu_str(k, "vkey"), &want);
		assert_int_equal(
		    kt_note_skey_parse(json_string_value(skey),
			strlen(json_string_value(skey)), &vk, seed),
		    KT_OK);
		assert_memory_equal(&vk, &want, sizeof(vk));
		wseed = tu_hex(tu_str(k, "seed_hex"), &n);
		assert_memory_equal(seed, wseed, 32);
		/* The seed gives the published public key. */
		assert_int_equal(kt_note_ed25519_new(seed, &ts.ed), KT_OK);
		kt_note_ed25519_public(ts.ed, pub);
		assert_memory_equal(pub, want.pub, 32);
		kt_note_ed25519_free(ts.ed);
		kt_wipe(seed, sizeof(seed));
		free(wseed);
	}
	assert_int_equal(nskeys, 2);
	json_decref(j);
}

static void
test_note_vkey_parse_vectors(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v;
	size_t i;

	(void)state;
	assert_true(json_array_size(json_object_get(j, "vkey_vectors")) > 0);
	json_array_foreach(json_object_get(j, "vkey_vectors"), i, v)
	{
		const char *s = tu_str(v, "vkey");
		int want = expect_accept(v, "expect", "preferred");
		struct kt_note_vkey k;
		int rc = kt_note_vkey_parse(s, strlen(s), &k);

		if (want != (rc == KT_OK))
			fail_msg("vkey case %s: got %s", tu_str(v, "name"),
			    kt_strerror(rc));
		if (rc == KT_OK) {
			struct kt_buf b;

			kt_buf_init(&b, 1024);
			assert_int_equal(kt_note_vkey_format(&k, &b), KT_OK);
			assert_int_equal(b.len, strlen(s));
			assert_memory_equal(b.p, s, b.len);
			kt_buf_free(&b);
		}
	}
	json_decref(j);
}

/* A valid key string used by the negative tables. */
#define LOG_VKEY \
	"example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRa" \
	"dkEB+"
#define LOG_SKEY \
	"PRIVATE+KEY+example.com/testlog+4bdfd257+ATi2PGvaFtiAXRd7qhKphmMF6T" \
	"VYYEKFEYNuK8RZYzO5"

static const char *const bad_vkeys[] = {
	"",
	"+",
	"++",
	"example.com/testlog",
	"example.com/testlog+",
	"example.com/testlog+4bdfd257",
	"example.com/testlog+4bdfd257+",
	/* Truncated base64 and key. */
	"example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad",
	"example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRadk"
	"EB",
	/* Trailing garbage. */
	LOG_VKEY "\n",
	LOG_VKEY " ",
	LOG_VKEY "=",
	LOG_VKEY "AAAA",
	LOG_VKEY "+",
	/* Leading garbage, changed separators. */
	" " LOG_VKEY,
	"example.com/testlog 4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	"example.com/testlog+4bdfd257 Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	/* Key ID not 8 lowercase hex digits. */
	"example.com/testlog+4bdfd25g+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	"example.com/testlog+4bdfD257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	"example.com/testlog+0x4bdfd2+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	/* Wrong key ID. */
	"example.com/testlog+4bdfd258+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB+",
	/* The same key under another name keeps its ID: mismatch. */
	"example.com/testlog2+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRa"
	"dkEB+",
	/* URL-safe base64. */
	"example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
	"kEB-",
	/* A name with a TAB, a no-break space, invalid UTF-8, U+3000. */
	"example.com/\ttestlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRa"
	"dkEB+",
	"example.com/\xc2\xa0testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9"
	"fiyGRadkEB+",
	"example.com/\xfftestlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyG"
	"RadkEB+",
	"example.com/\xe3\x80\x80+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiy"
	"GRadkEB+",
	/* A signer key is not a verifier key. */
	LOG_SKEY,
};

static void
test_note_vkey_parse_rejects(void **state)
{
	char big[KT_NOTE_NAME_MAX + 200];
	struct kt_note_vkey k;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_vkeys) / sizeof(bad_vkeys[0]); i++) {
		memset(&k, 0xa5, sizeof(k));
		if (kt_note_vkey_parse(
			bad_vkeys[i], strlen(bad_vkeys[i]), &k) == KT_OK)
			fail_msg("bad vkey %zu accepted: %s", i, bad_vkeys[i]);
		/* Nothing is written on failure. */
		for (size_t b = 0; b < sizeof(k); b++)
			assert_int_equal(((uint8_t *)&k)[b], 0xa5);
	}
	/* A NUL inside the string. */
	{
		static const char nul[] = "example.com/t\0estlog+4bdfd257+Ac7c2"
					  "Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRad"
					  "kEB+";

		assert_int_equal(
		    kt_note_vkey_parse(nul, sizeof(nul) - 1, &k), KT_EPARSE);
	}
	/* Every truncation of a valid key fails. */
	for (size_t n = 0; n < strlen(LOG_VKEY); n++)
		assert_int_not_equal(
		    kt_note_vkey_parse(LOG_VKEY, n, &k), KT_OK);
	/* An oversized name is refused before anything else. */
	memset(big, 'a', sizeof(big));
	memcpy(big + KT_NOTE_NAME_MAX + 1, "+4bdfd257+", 10);
	assert_int_equal(
	    kt_note_vkey_parse(big, KT_NOTE_NAME_MAX + 11, &k), KT_ETOOBIG);
}

static void
test_note_vkey_init_name_limits(void **state)
{
	char name[KT_NOTE_NAME_MAX + 1];
	uint8_t pub[32] = { 1, 2, 3 };
	struct kt_note_vkey k, back;
	struct kt_buf b;

	(void)state;
	memset(name, 'n', sizeof(name));
	/* The longest name round-trips. */
	assert_int_equal(kt_note_vkey_init(
			     name, KT_NOTE_NAME_MAX, KT_NOTE_COSIG_V1, pub, &k),
	    KT_OK);
	kt_buf_init(&b, 4096);
	assert_int_equal(kt_note_vkey_format(&k, &b), KT_OK);
	assert_int_equal(
	    kt_note_vkey_parse((const char *)b.p, b.len, &back), KT_OK);
	assert_memory_equal(&k, &back, sizeof(k));
	kt_buf_free(&b);
	/* One byte more, an empty name, bad types. */
	assert_int_equal(kt_note_vkey_init(name, KT_NOTE_NAME_MAX + 1,
			     KT_NOTE_ED25519, pub, &k),
	    KT_EINVAL);
	assert_int_equal(
	    kt_note_vkey_init(name, 0, KT_NOTE_ED25519, pub, &k), KT_EINVAL);
	assert_int_equal(
	    kt_note_vkey_init("a+b", 3, KT_NOTE_ED25519, pub, &k), KT_EINVAL);
	assert_int_equal(kt_note_vkey_init("a", 1, 0x02, pub, &k), KT_EINVAL);
	/* Formatting refuses a key whose ID does not match. */
	assert_int_equal(
	    kt_note_vkey_init("a", 1, KT_NOTE_ED25519, pub, &k), KT_OK);
	k.id ^= 1;
	kt_buf_init(&b, 4096);
	assert_int_equal(kt_note_vkey_format(&k, &b), KT_EINVAL);
	assert_int_equal(b.len, 0);
	kt_buf_free(&b);
}

static const char *const bad_skeys[] = {
	"",
	"PRIVATE+KEY+",
	"PRIVATE+KEY",
	"private+key+example.com/testlog+4bdfd257+ATi2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYzO5",
	/* Without the prefix it is not a signer key. */
	"example.com/testlog+4bdfd257+ATi2PGvaFtiAXRd7qhKphmMF6TVYYEKFEYNuK8RZ"
	"YzO5",
	/* Wrong key ID, uppercase ID. */
	"PRIVATE+KEY+example.com/testlog+4bdfd258+ATi2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYzO5",
	"PRIVATE+KEY+example.com/testlog+4BDFD257+ATi2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYzO5",
	/* Truncated, trailing garbage. */
	"PRIVATE+KEY+example.com/testlog+4bdfd257+ATi2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYz",
	LOG_SKEY "\n",
	LOG_SKEY "AAAA",
	/* Type 0x02 with a consistent key ID. */
	"PRIVATE+KEY+example.com/testlog+29e39ec6+Aji2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYzO5",
	/* The type-0x01 string with the type-0x04 key ID. */
	"PRIVATE+KEY+example.com/testlog+da1d551e+ATi2PGvaFtiAXRd7qhKphmMF6TVYY"
	"EKFEYNuK8RZYzO5",
	/* A verifier key is not a signer key. */
	"PRIVATE+KEY+" LOG_VKEY,
};

static void
test_note_skey_parse_rejects(void **state)
{
	struct kt_note_vkey k;
	uint8_t seed[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_skeys) / sizeof(bad_skeys[0]); i++) {
		memset(seed, 0x5a, sizeof(seed));
		if (kt_note_skey_parse(
			bad_skeys[i], strlen(bad_skeys[i]), &k, seed) == KT_OK)
			fail_msg("bad skey %zu accepted: %s", i, bad_skeys[i]);
		for (size_t b = 0; b < sizeof(seed); b++)
			assert_int_equal(seed[b], 0x5a);
	}
	for (size_t n = 0; n < strlen(LOG_SKEY); n++)
		assert_int_not_equal(
		    kt_note_skey_parse(LOG_SKEY, n, &k, seed), KT_OK);
	assert_int_equal(
	    kt_note_skey_parse(LOG_SKEY, strlen(LOG_SKEY), &k, seed), KT_OK);
	/* The same seed as a cosigner (type 0x04) key. */
	{
		static const char cosig[] =
		    "PRIVATE+KEY+example.com/testlog+da1d551e+BDi2PGvaFtiAXRd7q"
		    "hKphmMF6TVYYEKFEYNuK8RZYzO5";
		static const char vkey[] =
		    "example.com/testlog+da1d551e+BM7c2Ka76ppiOhI2yyVC3znqh3PUU"
		    "JMI9fiyGRadkEB+";
		struct kt_note_vkey want;

		assert_int_equal(
		    kt_note_skey_parse(cosig, strlen(cosig), &k, seed), KT_OK);
		tu_vkey(vkey, &want);
		assert_memory_equal(&k, &want, sizeof(k));
		assert_int_equal(k.type, KT_NOTE_COSIG_V1);
	}
	kt_wipe(seed, sizeof(seed));
}

/* Returns "name+keyid" of k in buf. */
static const char *
signer_id(const struct kt_note_vkey *k, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s+%08x", k->name, (unsigned)k->id);

	assert_true(n > 0 && (size_t)n < cap);
	return buf;
}

/* Whether the JSON array of strings arr contains s. */
static int
json_has(const json_t *arr, const char *s)
{
	const json_t *e;
	size_t i;

	json_array_foreach(arr, i, e)
	{
		if (strcmp(json_string_value(e), s) == 0)
			return 1;
	}
	return 0;
}

static void
test_note_open_vectors(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v;
	size_t i, naccepted = 0;

	(void)state;
	assert_int_equal(
	    json_array_size(json_object_get(j, "note_vectors")), 70);
	json_array_foreach(json_object_get(j, "note_vectors"), i, v)
	{
		const char *name = tu_str(v, "name");
		int want = expect_accept(v, "note_expect", "note_preferred");
		struct kt_note_keyresult *res;
		struct kt_note *n = malloc(sizeof(*n));
		size_t nkeys, len, unmatched = 0;
		struct kt_note_vkey *keys =
		    parse_vkeys(json_object_get(v, "verifier_keys"), &nkeys);
		uint8_t *msg = tu_b64(tu_str(v, "note_b64"), &len);
		const json_t *text = json_object_get(v, "note");
		int rc;

		assert_non_null(n);
		res = calloc(nkeys, sizeof(*res));
		assert_non_null(res);
		/* note, when given, is the same bytes as note_b64. */
		if (text != NULL) {
			assert_int_equal(json_string_length(text), len);
			assert_memory_equal(json_string_value(text), msg, len);
		}
		rc = kt_note_open(msg, len, keys, nkeys, res, n);
		if (want != (rc == KT_OK))
			fail_msg("note case %s: got %s", name, kt_strerror(rc));
		if (rc == KT_OK) {
			struct kt_buf b;
			char id[KT_NOTE_NAME_MAX + 16];
			size_t nsigners = 0;

			naccepted++;
			/* The verified keys are the ones x/mod verified. */
			for (size_t k = 0; k < nkeys; k++) {
				int in = json_has(
				    json_object_get(v, "verified_signers"),
				    signer_id(&keys[k], id, sizeof(id)));

				assert_int_equal(res[k].verified, in);
				nsigners += (size_t)in;
				assert_int_equal(res[k].timestamp,
				    res[k].verified &&
					    keys[k].type == KT_NOTE_COSIG_V1
					? COSIG_TIME
					: 0);
			}
			assert_int_equal(nsigners,
			    json_array_size(
				json_object_get(v, "verified_signers")));
			/* Lines from unknown keys are the ones x/mod skipped.
			 */
			for (size_t s = 0; s < n->nsigs; s++) {
				int known = 0;

				for (size_t k = 0; k < nkeys; k++)
					known |= n->sigs[s].id == keys[k].id &&
					    n->sigs[s].name.len ==
						keys[k].namelen &&
					    memcmp(n->sigs[s].name.p,
						keys[k].name,
						keys[k].namelen) == 0;
				unmatched += (size_t)!known;
			}
			assert_int_equal(
			    unmatched, tu_u64(v, "ignored_signatures"));
			/* Re-formatting the parsed note gives the input. */
			kt_buf_init(&b, KT_NOTE_MAX);
			assert_int_equal(kt_note_format(n, &b), KT_OK);
			assert_int_equal(b.len, len);
			assert_memory_equal(b.p, msg, len);
			kt_buf_free(&b);
		}
		free(res);
		free(keys);
		free(msg);
		free(n);
	}
	assert_true(naccepted > 20);
	json_decref(j);
}

static void
test_note_verify_vectors_with_all_keys(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct kt_note_vkey all[3];
	const json_t *v;
	size_t i;

	(void)state;
	for (size_t k = 0; k < 3; k++)
		tu_vkey(tu_str(json_array_get(json_object_get(j, "keys"), k),
			    "vkey"),
		    &all[k]);
	/*
	 * A case that must be rejected with its own keys stays rejected
	 * when a caller trusts more keys: more trust never rescues a note.
	 */
	json_array_foreach(json_object_get(j, "note_vectors"), i, v)
	{
		size_t len;
		uint8_t *msg = tu_b64(tu_str(v, "note_b64"), &len);
		int rc = kt_note_open(msg, len, all, 3, NULL, NULL);

		/* The one exception: its signer is now trusted. */
		if (strcmp(tu_str(v, "name"), "unknown-signer-only") == 0)
			assert_int_equal(rc, KT_OK);
		else if (strcmp(tu_str(v, "note_expect"), "reject") == 0)
			assert_int_not_equal(rc, KT_OK);
		free(msg);
	}
	json_decref(j);
}

static void
test_note_sign_line_cosignature_vectors(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v;
	size_t i;

	(void)state;
	assert_true(
	    json_array_size(json_object_get(j, "cosignature_vectors")) > 0);
	json_array_foreach(json_object_get(j, "cosignature_vectors"), i, v)
	{
		const char *text = tu_str(v, "checkpoint_text");
		const char *line = tu_str(v, "signature_line");
		const char *note = tu_str(v, "note");
		struct test_signer w, log;
		struct kt_note_vkey keys[2];
		struct kt_note_keyresult res[2];
		struct kt_buf b;
		size_t msg_n, note_n;
		uint8_t *msg, *nb;

		signer_from_key(find_key(j, "witness.example.com/w1"), &w);
		signer_from_key(find_key(j, "example.com/testlog"), &log);
		tu_vkey(tu_str(v, "cosigner_vkey"), &keys[1]);
		tu_vkey(tu_str(v, "log_vkey"), &keys[0]);
		assert_memory_equal(&keys[1], &w.s.key, sizeof(keys[1]));
		assert_memory_equal(&keys[0], &log.s.key, sizeof(keys[0]));
		assert_int_equal(tu_u64(v, "timestamp"), COSIG_TIME);
		/* The signed message is the documented one. */
		msg = tu_b64(tu_str(v, "signed_message_b64"), &msg_n);
		assert_int_equal(msg_n, strlen(tu_str(v, "signed_message")));
		assert_memory_equal(
		    msg, "cosignature/v1\ntime 1735689600\n", 31);
		assert_memory_equal(msg + 31, text, strlen(text));
		assert_int_equal(msg_n, 31 + strlen(text));
		/* Cosigning reproduces the line (Ed25519 is deterministic). */
		kt_buf_init(&b, KT_NOTE_MAX);
		assert_int_equal(kt_note_sign_line((const uint8_t *)text,
				     strlen(text), &w.s, COSIG_TIME, &b),
		    KT_OK);
		assert_int_equal(b.len, strlen(line));
		assert_memory_equal(b.p, line, b.len);
		kt_buf_reset(&b);
		/* Log signature, then the cosignature: the published note. */
		assert_int_equal(kt_note_sign((const uint8_t *)text,
				     strlen(text), &log.s, 1, 0, &b),
		    KT_OK);
		assert_int_equal(kt_note_sign_line((const uint8_t *)text,
				     strlen(text), &w.s, COSIG_TIME, &b),
		    KT_OK);
		assert_int_equal(b.len, strlen(note));
		assert_memory_equal(b.p, note, b.len);
		nb = tu_b64(tu_str(v, "note_b64"), &note_n);
		assert_int_equal(note_n, b.len);
		assert_memory_equal(nb, b.p, b.len);
		/* Both signers at once give the same note. */
		{
			struct kt_note_signer both[2] = { log.s, w.s };
			struct kt_buf b2;

			kt_buf_init(&b2, KT_NOTE_MAX);
			assert_int_equal(
			    kt_note_sign((const uint8_t *)text, strlen(text),
				both, 2, COSIG_TIME, &b2),
			    KT_OK);
			assert_int_equal(b2.len, b.len);
			assert_memory_equal(b2.p, b.p, b.len);
			kt_buf_free(&b2);
		}
		assert_int_equal(
		    kt_note_open(b.p, b.len, keys, 2, res, NULL), KT_OK);
		assert_true(res[0].verified && res[1].verified);
		assert_int_equal(res[0].timestamp, 0);
		assert_int_equal(res[1].timestamp, COSIG_TIME);
		kt_buf_free(&b);
		signer_free(&w);
		signer_free(&log);
		free(msg);
		free(nb);
	}
	json_decref(j);
}

static void
test_note_sign_line_signature_bytes(void **state)
{
	json_t *j = tu_load_json("notes.json");
	const json_t *v =
	    json_array_get(json_object_get(j, "cosignature_vectors"), 0);
	const char *line = tu_str(v, "signature_line");
	const char *b64 = strrchr(line, ' ') + 1;
	size_t sbn, rawn, n = strlen(b64) - 1;
	uint8_t *sb = tu_hex(tu_str(v, "signature_bytes_hex"), &sbn);
	uint8_t *raw = malloc(n);

	(void)state;
	/* "— witness.example.com/w1 <base64>\n": decode without the \n. */
	assert_non_null(raw);
	assert_int_equal(b64[n], '\n');
	assert_int_equal(kt_b64_decode(b64, n, raw, n, &rawn), KT_OK);
	assert_int_equal(sbn, 76);
	assert_int_equal(rawn, 76);
	assert_memory_equal(raw, sb, 76);
	/* key ID 88b27608, then the timestamp big-endian. */
	assert_int_equal(kt_get_u32be(raw), 0x88b27608);
	assert_int_equal(kt_get_u64be(raw + 4), COSIG_TIME);
	free(sb);
	free(raw);
	json_decref(j);
}

/* RFC 8032 section 7.1, TEST 1 (empty message). */
static void
test_note_ed25519_sign_rfc8032(void **state)
{
	static const char sk[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b32"
				 "6919703bac031cae7f60";
	static const char pk[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa6"
				 "2325af021a68f707511a";
	static const char sig[] = "e5564300c360ac729086e2cc806e828a84877f1eb8e5"
				  "d974d873e065224901555fb8821590a33bacc61e39"
				  "701cf9b46bd25bf5f0595bbe24655141438e7a100b";
	struct kt_note_ed25519 *k;
	uint8_t pub[32], out[64];
	size_t n;
	uint8_t *seed = tu_hex(sk, &n), *wpub = tu_hex(pk, &n),
		*wsig = tu_hex(sig, &n);

	(void)state;
	assert_int_equal(kt_note_ed25519_new(seed, &k), KT_OK);
	kt_note_ed25519_public(k, pub);
	assert_memory_equal(pub, wpub, 32);
	assert_int_equal(
	    kt_note_ed25519_sign(k, (const uint8_t *)"", 0, out), KT_OK);
	assert_memory_equal(out, wsig, 64);
	kt_note_ed25519_free(k);
	kt_note_ed25519_free(NULL);
	kt_wipe(seed, 32);
	free(seed);
	free(wpub);
	free(wsig);
}

/* The vector checkpoint of tiles/, the text every forged note starts from. */
#define CP_TEXT \
	"example.com/testlog\n70000\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5" \
	"rMs=\n"
#define CP_SIG \
	"\xe2\x80\x94 example.com/testlog S9/SV4GLf5SHcbn2muRVuRiqgdZ87EE7hrQ" \
	"czDexp3lh0sUXF8hmKZRQb1rJ7HW+J/6IIVZbH9C8tt9W7zY8oIveqgw=\n"
#define CP_NOTE CP_TEXT "\n" CP_SIG

/* Malformed notes kt_note_parse must refuse, with the error it returns. */
static const struct {
	const char *msg;
	int err;
} bad_notes[] = {
	{ "", KT_EPARSE },
	{ "\n", KT_EPARSE },
	{ "\n\n", KT_EPARSE },
	{ CP_TEXT, KT_EPARSE },
	{ CP_TEXT "\n", KT_EPARSE },
	/* Trailing garbage, with and without a newline. */
	{ CP_NOTE "x", KT_EPARSE },
	{ CP_NOTE "x\n", KT_EPARSE },
	{ CP_NOTE " ", KT_EPARSE },
	{ CP_NOTE "\n", KT_EPARSE },
	{ CP_NOTE "\xe2\x80\x94 \n", KT_EPARSE },
	/* Signature line shapes. */
	{ CP_TEXT "\n\xe2\x80\x94"
		  "example.com/testlog S9/SVw==\n",
	    KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94  example.com/testlog S9/SVw==\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 example.com/testlog\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 example.com/testlog S9/SV\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 example.com/testlog S9/SVwA=\n", KT_OK },
	{ CP_TEXT "\n\xe2\x80\x94 example.com/testlog S9/SVwB=\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 example.com/testlog S9/SVwA=\r\n",
	    KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 \xc2\xa0 S9/SVwAA\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 a\xe2\x80\x83"
		  "b S9/SVwAA\n",
	    KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x94 a+b S9/SVwAA\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80\x93 a S9/SVwAA\n", KT_EPARSE },
	{ CP_TEXT "\n\xe2\x80 a S9/SVwAA\n", KT_EPARSE },
	/* Character rules anywhere in the message. */
	{ "a\x7f\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_OK },
	{ "a\x1b\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "a\r\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xc0\xaf\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xe0\x80\xaf\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xed\xa0\x80\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xf4\x90\x80\x80\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xf8\x88\x80\x80\x80\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xe3\x83\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_EPARSE },
	{ "\xf0\x9f\x98\x80\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_OK },
	{ "\xef\xbf\xbf\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_OK },
	{ "\xf4\x8f\xbf\xbf\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_OK },
	/* The shortest note: a one-line text and a 5-byte signature. */
	{ "\n\n\xe2\x80\x94 a S9/SVwAA\n", KT_OK },
	{ "\n\n\xe2\x80\x94 a S9/SV\n", KT_EPARSE },
};

static void
test_note_parse_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_notes) / sizeof(bad_notes[0]); i++) {
		struct kt_note n;
		int rc;

		memset(&n, 0xa5, sizeof(n));
		rc = kt_note_parse((const uint8_t *)bad_notes[i].msg,
		    strlen(bad_notes[i].msg), &n);
		if (rc != bad_notes[i].err)
			fail_msg("note %zu: got %s, want %s", i,
			    kt_strerror(rc), kt_strerror(bad_notes[i].err));
		if (rc != KT_OK)
			assert_int_equal(((uint8_t *)&n)[0], 0xa5);
	}
}

static void
test_note_parse_truncated(void **state)
{
	const uint8_t *msg = (const uint8_t *)CP_NOTE;
	size_t len = strlen(CP_NOTE);
	struct kt_note n;

	(void)state;
	assert_int_equal(kt_note_parse(msg, len, &n), KT_OK);
	assert_int_equal(n.nsigs, 1);
	assert_int_equal(n.text.len, strlen(CP_TEXT));
	for (size_t k = 0; k < len; k++)
		assert_int_not_equal(kt_note_parse(msg, k, &n), KT_OK);
}

/* Builds a note of CP_TEXT signed by count unknown keys, then the log. */
static void
build_many(struct kt_buf *b, size_t count, const struct test_signer *log)
{
	uint8_t seed[32];
	char name[32];

	assert_int_equal(kt_buf_append_str(b, CP_TEXT "\n"), KT_OK);
	for (size_t i = 0; i < count; i++) {
		struct test_signer u;
		int n = snprintf(name, sizeof(name), "unknown.example/%zu", i);

		assert_true(n > 0 && (size_t)n < sizeof(name));
		memset(seed, (int)i + 1, sizeof(seed));
		signer_from_seed(seed, name, KT_NOTE_ED25519, &u);
		assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
				     strlen(CP_TEXT), &u.s, 0, b),
		    KT_OK);
		signer_free(&u);
	}
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &log->s, 0, b),
	    KT_OK);
}

static void
test_note_parse_signature_count_limit(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct test_signer log;
	static const struct {
		size_t unknown;
		int err;
	} counts[] = {
		{ 0, KT_OK },
		{ 15, KT_OK }, /* 16 signatures: C2SP's minimum */
		{ KT_NOTE_SIGS_MAX - 1, KT_OK },
		{ KT_NOTE_SIGS_MAX, KT_ETOOBIG },
	};

	(void)state;
	signer_from_key(find_key(j, "example.com/testlog"), &log);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct kt_buf b;
		struct kt_note_keyresult res;

		kt_buf_init(&b, KT_NOTE_MAX);
		build_many(&b, counts[i].unknown, &log);
		assert_int_equal(
		    kt_note_open(b.p, b.len, &log.s.key, 1, &res, NULL),
		    counts[i].err);
		if (counts[i].err == KT_OK)
			assert_true(res.verified);
		kt_buf_free(&b);
	}
	signer_free(&log);
	json_decref(j);
}

static void
test_note_parse_size_limit(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct test_signer log;
	size_t textlen;

	(void)state;
	signer_from_key(find_key(j, "example.com/testlog"), &log);
	/* A note of exactly KT_NOTE_MAX bytes opens; one byte more fails. */
	for (int extra = 0; extra <= 1; extra++) {
		struct kt_buf text, b;
		size_t siglen = 3 + 1 + log.s.key.namelen + 1 + 92 + 1;

		kt_buf_init(&text, KT_NOTE_MAX + 1);
		kt_buf_init(&b, 2 * KT_NOTE_MAX);
		assert_int_equal(kt_buf_append_str(&text, CP_TEXT), KT_OK);
		textlen =
		    KT_NOTE_MAX - siglen - 1 - text.len - 1 + (size_t)extra;
		for (size_t i = 0; i < textlen; i++)
			assert_int_equal(kt_buf_append_byte(&text, 'x'), KT_OK);
		assert_int_equal(kt_buf_append_byte(&text, '\n'), KT_OK);
		assert_int_equal(
		    kt_note_sign(text.p, text.len, &log.s, 1, 0, &b),
		    extra ? KT_ETOOBIG : KT_OK);
		if (!extra) {
			assert_int_equal(b.len, KT_NOTE_MAX);
			assert_int_equal(
			    kt_note_open(b.p, b.len, &log.s.key, 1, NULL, NULL),
			    KT_OK);
			assert_int_equal(kt_buf_append_byte(&b, 'x'), KT_OK);
			assert_int_equal(
			    kt_note_parse(b.p, b.len, &(struct kt_note){ 0 }),
			    KT_ETOOBIG);
		} else {
			assert_int_equal(b.len, 0);
		}
		kt_buf_free(&text);
		kt_buf_free(&b);
	}
	signer_free(&log);
	json_decref(j);
}

/* A signer callback that returns a fixed answer, for fault injection. */
static int fault_rc;

static int
fault_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	(void)ctx;
	(void)msg;
	(void)len;
	memset(sig, 0x42, 64);
	return fault_rc;
}

static void
test_note_sign_line_rejects(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct test_signer log, w;
	struct kt_note_signer s;
	struct kt_buf b;
	static const char *const bad_texts[] = {
		"",
		"no newline",
		"tab\there\n",
		"cr\r\n",
		"nu\0l\n",
		"bad \xff utf-8\n",
	};

	(void)state;
	signer_from_key(find_key(j, "example.com/testlog"), &log);
	signer_from_key(find_key(j, "witness.example.com/w1"), &w);
	kt_buf_init(&b, KT_NOTE_MAX);
	assert_int_equal(kt_buf_append_str(&b, "keep"), KT_OK);
	for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
		size_t n = i == 4 ? 5 : strlen(bad_texts[i]);

		assert_int_equal(
		    kt_note_sign_line(
			(const uint8_t *)bad_texts[i], n, &log.s, 0, &b),
		    KT_EINVAL);
		assert_int_equal(kt_note_sign((const uint8_t *)bad_texts[i], n,
				     &log.s, 1, 0, &b),
		    KT_EINVAL);
	}
	/* Timestamps: none for type 0x01, at most 2^63 - 1 for 0x04. */
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &log.s, 1, &b),
	    KT_EINVAL);
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &w.s, KT_COSIG_TIME_MAX + 1, &b),
	    KT_EINVAL);
	/* A signer whose key ID does not match its key. */
	s = log.s;
	s.key.id ^= 0x100;
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &s, 0, &b),
	    KT_EINVAL);
	/* Counts. */
	assert_int_equal(kt_note_sign((const uint8_t *)CP_TEXT, strlen(CP_TEXT),
			     &log.s, 0, 0, &b),
	    KT_EINVAL);
	/* A faulty HSM: garbage, an error, a positive return. */
	s = log.s;
	s.sign = fault_sign;
	fault_rc = KT_OK;
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &s, 0, &b),
	    KT_EVERIFY);
	fault_rc = KT_EIO;
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &s, 0, &b),
	    KT_EIO);
	fault_rc = 7;
	assert_int_equal(kt_note_sign((const uint8_t *)CP_TEXT, strlen(CP_TEXT),
			     &s, 1, 0, &b),
	    KT_EINTERNAL);
	/* A key that signs for another public key is caught too. */
	s = w.s;
	s.key = log.s.key;
	s.key.type = KT_NOTE_ED25519;
	assert_int_equal(kt_note_sign_line((const uint8_t *)CP_TEXT,
			     strlen(CP_TEXT), &s, 0, &b),
	    KT_EVERIFY);
	/* The buffer kept its contents through every failure. */
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "keep", 4);
	/* A buffer that is too small fails cleanly. */
	kt_buf_free(&b);
	kt_buf_init(&b, 100);
	assert_int_equal(kt_note_sign((const uint8_t *)CP_TEXT, strlen(CP_TEXT),
			     &log.s, 1, 0, &b),
	    KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	kt_buf_free(&b);
	signer_free(&log);
	signer_free(&w);
	json_decref(j);
}

static void
test_note_sign_multiline_text(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct test_signer log;
	static const char *const texts[] = {
		"a\n",
		"\n",
		"a\n\nb\n",
		"a\n\n",
		("Ognuno sta solo sul cuor della terra\n\ned \xc3\xa8 subito "
		 "sera.\n"),
	};

	(void)state;
	signer_from_key(find_key(j, "example.com/testlog"), &log);
	/* Texts may hold empty lines: the last blank line splits. */
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct kt_buf b;
		struct kt_note n;

		kt_buf_init(&b, KT_NOTE_MAX);
		assert_int_equal(kt_note_sign((const uint8_t *)texts[i],
				     strlen(texts[i]), &log.s, 1, 0, &b),
		    KT_OK);
		assert_int_equal(
		    kt_note_open(b.p, b.len, &log.s.key, 1, NULL, &n), KT_OK);
		assert_int_equal(n.text.len, strlen(texts[i]));
		assert_memory_equal(n.text.p, texts[i], n.text.len);
		kt_buf_free(&b);
	}
	signer_free(&log);
	json_decref(j);
}

static void
test_note_check_reports_without_requiring(void **state)
{
	json_t *j = tu_load_json("notes.json");
	struct kt_note_vkey w;
	struct kt_note_keyresult res[2] = { { 7, 7 }, { 7, 7 } };
	struct kt_note n;
	size_t count = 99;

	(void)state;
	tu_vkey(tu_str(find_key(j, "witness.example.com/w1"), "vkey"), &w);
	assert_int_equal(
	    kt_note_parse((const uint8_t *)CP_NOTE, strlen(CP_NOTE), &n),
	    KT_OK);
	/* No known key signed: check passes with nothing verified... */
	assert_int_equal(kt_note_check(&n, &w, 1, res, &count), KT_OK);
	assert_int_equal(count, 0);
	assert_int_equal(res[0].verified, 0);
	/* ...and verify refuses, writing nothing. */
	res[0].verified = 7;
	assert_int_equal(kt_note_verify(&n, &w, 1, res), KT_EVERIFY);
	assert_int_equal(res[0].verified, 7);
	assert_int_equal(kt_note_verify(&n, NULL, 0, NULL), KT_EVERIFY);
	/* A key listed twice verifies twice. */
	{
		struct kt_note_vkey twice[2];

		tu_vkey(LOG_VKEY, &twice[0]);
		twice[1] = twice[0];
		assert_int_equal(kt_note_verify(&n, twice, 2, res), KT_OK);
		assert_true(res[0].verified && res[1].verified);
		/* Same name and ID but another public key: it fails. */
		twice[1].pub[0] ^= 1;
		assert_int_equal(kt_note_verify(&n, twice, 2, res), KT_EVERIFY);
	}
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_note_vkey_parse_keys),
		cmocka_unit_test(test_note_skey_parse_keys),
		cmocka_unit_test(test_note_vkey_parse_vectors),
		cmocka_unit_test(test_note_vkey_parse_rejects),
		cmocka_unit_test(test_note_vkey_init_name_limits),
		cmocka_unit_test(test_note_skey_parse_rejects),
		cmocka_unit_test(test_note_open_vectors),
		cmocka_unit_test(test_note_verify_vectors_with_all_keys),
		cmocka_unit_test(test_note_sign_line_cosignature_vectors),
		cmocka_unit_test(test_note_sign_line_signature_bytes),
		cmocka_unit_test(test_note_ed25519_sign_rfc8032),
		cmocka_unit_test(test_note_parse_rejects),
		cmocka_unit_test(test_note_parse_truncated),
		cmocka_unit_test(test_note_parse_signature_count_limit),
		cmocka_unit_test(test_note_parse_size_limit),
		cmocka_unit_test(test_note_sign_line_rejects),
		cmocka_unit_test(test_note_sign_multiline_text),
		cmocka_unit_test(test_note_check_reports_without_requiring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
