/*
 * The fast Ed25519 check (verifier/edverify.c) against OpenSSL's own
 * Ed25519: the base point's table must give OpenSSL's public keys; for
 * fresh keys and messages, signatures made by OpenSSL must verify; every
 * alteration of a signature or a message, random signatures, scalars at
 * and beyond the group order, and keys of small order must get exactly
 * OpenSSL's answer.  Keys that are not canonical encodings of a point get
 * no table.  The signed notes of ../shared/vectors (made by an independent
 * implementation) are checked too.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "edverify.h"
#include "keytrail/note.h"
#include "testutil.h"

#define ORDER_DEC \
	"72370055773322622139731865630429942408571163593799076060019509382" \
	"85454250989"

static EVP_PKEY *
gen_key(uint8_t pub[32])
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	size_t len = 32;

	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &len), 1);
	assert_int_equal(len, 32);
	return pk;
}

/* OpenSSL's answer for a raw public key: 1 valid, 0 anything else. */
static int
evp_verify(const uint8_t pub[32], const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r;

	assert_non_null(pk);
	assert_non_null(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk), 1);
	r = EVP_DigestVerify(md, sig, siglen, msg, len);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return r == 1;
}

static void
evp_sign(EVP_PKEY *pk, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t siglen = 64;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, len), 1);
	assert_int_equal(siglen, 64);
	EVP_MD_CTX_free(md);
}

/* Both checks must agree; returns their answer. */
static int
same_answer(const struct edv *v, const uint8_t pub[32], const uint8_t *msg,
    size_t len, const uint8_t *sig, size_t siglen)
{
	int want = evp_verify(pub, msg, len, sig, siglen);

	assert_int_equal(edv_verify(v, msg, len, sig, siglen), want);
	return want;
}

/* x mod L, or x + k*L, as 32 little-endian bytes (0 if it does not fit). */
static int
scalar_bytes(const BIGNUM *x, uint8_t out[32])
{
	return BN_bn2lebinpad(x, out, 32) == 32;
}

static BIGNUM *
order(void)
{
	BIGNUM *l = NULL;

	assert_true(BN_dec2bn(&l, ORDER_DEC) > 0);
	return l;
}

static void
test_edv_base_table_gives_openssl_keys(void **state)
{
	BIGNUM *l = order(), *a;
	BN_CTX *bc = BN_CTX_new();

	(void)state;
	assert_non_null(bc);
	for (int i = 0; i < 64; i++) {
		uint8_t pub[32], seed[32], h[64], s[32], enc[32];
		size_t len = 32;
		EVP_PKEY *pk = gen_key(pub);

		/* RFC 8032 5.1.5: the secret scalar from the seed. */
		assert_int_equal(
		    EVP_PKEY_get_raw_private_key(pk, seed, &len), 1);
		SHA512(seed, 32, h);
		h[0] &= 248;
		h[31] &= 127;
		h[31] |= 64;
		assert_non_null(a = BN_lebin2bn(h, 32, NULL));
		assert_int_equal(BN_nnmod(a, a, l, bc), 1);
		assert_true(scalar_bytes(a, s));
		assert_int_equal(edv_base_mul(s, enc), KT_OK);
		assert_memory_equal(enc, pub, 32);
		BN_free(a);
		EVP_PKEY_free(pk);
		OPENSSL_cleanse(seed, sizeof(seed));
		OPENSSL_cleanse(h, sizeof(h));
	}
	/* A scalar not below L is refused. */
	{
		uint8_t s[32], enc[32];

		assert_true(scalar_bytes(l, s));
		assert_int_equal(edv_base_mul(s, enc), KT_EINVAL);
	}
	BN_CTX_free(bc);
	BN_free(l);
}

static void
test_edv_valid_and_every_bit_flip(void **state)
{
	static const size_t lens[] = { 0, 1, 32, 100, 2000 };
	uint8_t msg[2000];

	(void)state;
	for (size_t n = 0; n < sizeof(lens) / sizeof(lens[0]); n++) {
		uint8_t pub[32], sig[64];
		EVP_PKEY *pk = gen_key(pub);
		struct edv *v;
		size_t len = lens[n];

		assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
		assert_int_equal(edv_new(pub, &v), KT_OK);
		evp_sign(pk, msg, len, sig);
		assert_int_equal(edv_verify(v, msg, len, sig, 64), 1);
		for (int bit = 0; bit < 512; bit++) {
			sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(
			    same_answer(v, pub, msg, len, sig, 64), 0);
			sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		for (size_t i = 0; i < len && i < 64; i++) {
			msg[i] ^= 0x20;
			assert_int_equal(
			    same_answer(v, pub, msg, len, sig, 64), 0);
			msg[i] ^= 0x20;
		}
		/* Wrong lengths, and the message one byte longer or shorter. */
		assert_int_equal(same_answer(v, pub, msg, len, sig, 63), 0);
		assert_int_equal(edv_verify(v, msg, len, sig, 65), 0);
		assert_int_equal(same_answer(v, pub, msg, len + 1, sig, 64), 0);
		if (len > 0)
			assert_int_equal(
			    same_answer(v, pub, msg, len - 1, sig, 64), 0);
		assert_int_equal(same_answer(v, pub, msg, len, sig, 64), 1);
		edv_free(v);
		EVP_PKEY_free(pk);
	}
}

static void
test_edv_random_signatures(void **state)
{
	uint8_t pub[32], sig[64], msg[32];
	EVP_PKEY *pk = gen_key(pub);
	struct edv *v;

	(void)state;
	assert_int_equal(edv_new(pub, &v), KT_OK);
	assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(RAND_bytes(sig, sizeof(sig)), 1);
		if (i % 2)
			sig[63] &= 0x0f; /* S below L, so the equation runs */
		assert_int_equal(same_answer(v, pub, msg, 32, sig, 64), 0);
	}
	edv_free(v);
	EVP_PKEY_free(pk);
}

/* S + L satisfies the equation as well as S: both must refuse it. */
static void
test_edv_scalar_at_and_beyond_order(void **state)
{
	uint8_t pub[32], sig[64], bad[64], msg[32];
	EVP_PKEY *pk = gen_key(pub);
	BIGNUM *l = order(), *s;
	struct edv *v;

	(void)state;
	assert_int_equal(edv_new(pub, &v), KT_OK);
	assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
	for (int tries = 0; tries < 64; tries++) {
		evp_sign(pk, msg, sizeof(msg), sig);
		msg[0]++;
		assert_non_null(s = BN_lebin2bn(sig + 32, 32, NULL));
		assert_int_equal(BN_add(s, s, l), 1);
		memcpy(bad, sig, 64);
		if (scalar_bytes(s, bad + 32)) {
			msg[0]--;
			assert_int_equal(
			    same_answer(v, pub, msg, sizeof(msg), bad, 64), 0);
			assert_int_equal(
			    same_answer(v, pub, msg, sizeof(msg), sig, 64), 1);
			msg[0]++;
		}
		BN_free(s);
	}
	/* S = L, S = L - 1, S = 2^256 - 1 with the R of a valid signature. */
	evp_sign(pk, msg, sizeof(msg), sig);
	memcpy(bad, sig, 64);
	assert_true(scalar_bytes(l, bad + 32));
	assert_int_equal(same_answer(v, pub, msg, sizeof(msg), bad, 64), 0);
	assert_int_equal(BN_sub_word(l, 1), 1);
	assert_true(scalar_bytes(l, bad + 32));
	assert_int_equal(same_answer(v, pub, msg, sizeof(msg), bad, 64), 0);
	memset(bad + 32, 0xff, 32);
	assert_int_equal(same_answer(v, pub, msg, sizeof(msg), bad, 64), 0);
	BN_free(l);
	edv_free(v);
	EVP_PKEY_free(pk);
}

/*
 * Keys of small order: with A the identity, (enc([S]B), S) satisfies the
 * equation for every message; with A of order 2 it does for half of
 * them.  Whatever OpenSSL answers, the table must answer the same.
 */
static void
test_edv_small_order_keys(void **state)
{
	uint8_t keys[2][32] = { { 1 }, { 0 } };
	uint8_t sig[64], msg[8];
	int accepted = 0;

	(void)state;
	/* y = -1 = p - 1: ec ff ... ff 7f */
	keys[1][0] = 0xec;
	memset(keys[1] + 1, 0xff, 30);
	keys[1][31] = 0x7f;
	for (int k = 0; k < 2; k++) {
		struct edv *v;

		assert_int_equal(edv_new(keys[k], &v), KT_OK);
		for (int i = 0; i < 32; i++) {
			assert_int_equal(RAND_bytes(sig + 32, 32), 1);
			sig[63] &= 0x0f;
			assert_int_equal(edv_base_mul(sig + 32, sig), KT_OK);
			assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
			accepted +=
			    same_answer(v, keys[k], msg, sizeof(msg), sig, 64);
		}
		edv_free(v);
	}
	/* The forgery works on these keys (both checks let it through). */
	assert_true(accepted > 0);
}

/* Encodings that are not a canonical point get no table. */
static void
test_edv_refuses_noncanonical_keys(void **state)
{
	uint8_t k[32];
	struct edv *v = NULL;
	int built = 0, refused = 0;

	(void)state;
	/* y = p and y = p + 1 (both reduce to valid y, but not canonical) */
	k[0] = 0xed;
	memset(k + 1, 0xff, 30);
	k[31] = 0x7f;
	assert_int_equal(edv_new(k, &v), KT_EINVAL);
	k[0] = 0xee;
	assert_int_equal(edv_new(k, &v), KT_EINVAL);
	/* x = 0 with the sign bit set: y = 1 */
	memset(k, 0, 32);
	k[0] = 1;
	k[31] = 0x80;
	assert_int_equal(edv_new(k, &v), KT_EINVAL);
	/* Small y: some are on the curve, some not; the latter never verify. */
	for (int y = 2; y < 66; y++) {
		uint8_t sig[64], msg[4] = { 1, 2, 3, 4 };

		memset(k, 0, 32);
		k[0] = (uint8_t)y;
		assert_int_equal(RAND_bytes(sig, 64), 1);
		sig[63] &= 0x0f;
		if (edv_new(k, &v) == KT_OK) {
			built++;
			(void)same_answer(v, k, msg, sizeof(msg), sig, 64);
			edv_free(v);
		} else {
			refused++;
			assert_int_equal(
			    evp_verify(k, msg, sizeof(msg), sig, 64), 0);
		}
	}
	assert_true(built > 0);
	assert_true(refused > 0);
}

/* References: each holder frees its own (ASan catches a double free). */
static void
test_edv_references(void **state)
{
	uint8_t pub[32], sig[64], msg[3] = { 'a', 'b', 'c' };
	EVP_PKEY *pk = gen_key(pub);
	struct edv *v, *w;

	(void)state;
	assert_int_equal(edv_new(pub, &v), KT_OK);
	w = edv_ref(v);
	assert_ptr_equal(w, v);
	edv_free(v);
	evp_sign(pk, msg, sizeof(msg), sig);
	assert_int_equal(edv_verify(w, msg, sizeof(msg), sig, 64), 1);
	edv_free(w);
	assert_int_equal(edv_new(NULL, &v), KT_EINVAL);
	EVP_PKEY_free(pk);
}

/*
 * The signed notes of the shared vectors: every Ed25519 signature line
 * of a known key must get OpenSSL's answer, and the notes the vectors
 * say verify must verify.
 */
static void
test_edv_shared_note_vectors(void **state)
{
	json_t *doc = tu_load_json("notes.json"), *keys, *notes, *e;
	size_t i, checked = 0, valid = 0;

	(void)state;
	keys = json_object_get(doc, "keys");
	notes = json_object_get(doc, "note_vectors");
	assert_true(json_is_array(keys) && json_is_array(notes));
	json_array_foreach(notes, i, e)
	{
		const json_t *note = json_object_get(e, "note");
		const char *expect =
		    json_string_value(json_object_get(e, "note_expect"));
		struct kt_note n;
		size_t j;
		json_t *key;

		if (!json_is_string(note) ||
		    kt_note_parse((const uint8_t *)json_string_value(note),
			json_string_length(note), &n) != KT_OK)
			continue;
		json_array_foreach(keys, j, key)
		{
			const char *name = tu_str(key, "name");
			uint8_t *pub;
			size_t publen;
			struct edv *v;

			if (tu_u64(key, "type") != KT_NOTE_ED25519)
				continue;
			pub = tu_hex(tu_str(key, "public_key_hex"), &publen);
			assert_int_equal(publen, 32);
			assert_int_equal(edv_new(pub, &v), KT_OK);
			for (size_t s = 0; s < n.nsigs; s++) {
				size_t blen;
				uint8_t *b;
				char *b64;

				if (n.sigs[s].name.len != strlen(name) ||
				    memcmp(n.sigs[s].name.p, name,
					strlen(name)) != 0)
					continue;
				b64 = strndup((const char *)n.sigs[s].b64.p,
				    n.sigs[s].b64.len);
				assert_non_null(b64);
				b = tu_b64(b64, &blen);
				if (blen == 68) {
					int ok = same_answer(v, pub, n.text.p,
					    n.text.len, b + 4, 64);

					checked++;
					if (ok && expect != NULL &&
					    strcmp(expect, "accept") == 0)
						valid++;
				}
				free(b);
				free(b64);
			}
			edv_free(v);
			free(pub);
		}
	}
	/* The file has dozens of accepted notes signed by its keys. */
	assert_true(checked >= 20);
	assert_true(valid >= 10);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edv_base_table_gives_openssl_keys),
		cmocka_unit_test(test_edv_valid_and_every_bit_flip),
		cmocka_unit_test(test_edv_random_signatures),
		cmocka_unit_test(test_edv_scalar_at_and_beyond_order),
		cmocka_unit_test(test_edv_small_order_keys),
		cmocka_unit_test(test_edv_refuses_noncanonical_keys),
		cmocka_unit_test(test_edv_references),
		cmocka_unit_test(test_edv_shared_note_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
