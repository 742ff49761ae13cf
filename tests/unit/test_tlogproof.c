/*
 * tlog-proof@v1: proofs built from the inclusion samples of both vector
 * logs (tiles.json) and their published checkpoints, formatted, parsed
 * and verified; forged variants that must fail; and tables of truncated,
 * oversized, non-canonical and trailing-garbage proofs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytrail/encoding.h"
#include "keytrail/tlogproof.h"
#include "testutil.h"

#define HEADER "c2sp.org/tlog-proof@v1\n"

/* One vector log: its trust, its published checkpoint, its samples. */
struct vlog {
	const json_t *json;
	struct kt_note_vkey key;
	struct kt_checkpoint_trust trust;
	uint8_t *note;
	size_t notelen;
	uint64_t size;
};

static void
vlog_init(const json_t *log, struct vlog *vl)
{
	const char *vkey = tu_str(log, "vkey");
	char rel[256];
	int n;

	memset(vl, 0, sizeof(*vl));
	vl->json = log;
	assert_int_equal(
	    kt_note_vkey_parse(vkey, strlen(vkey), &vl->key), KT_OK);
	vl->trust.log = &vl->key;
	vl->trust.origin.p = (const uint8_t *)tu_str(log, "origin");
	vl->trust.origin.len = strlen(tu_str(log, "origin"));
	n = snprintf(rel, sizeof(rel), "%s/checkpoint", tu_str(log, "dir"));
	assert_true(n > 0 && (size_t)n < sizeof(rel));
	vl->note = tu_read_vector_file(rel, &vl->notelen);
	vl->size = tu_u64(log, "size");
}

/*
 * The bytes of entry index of a vector log (tiles.json "entries"): ASCII
 * "leaf-<i>" for tiles/, and for tiles-varlen/ (211 i mod 1024) bytes,
 * 65,535 for entry 7, byte j being (i + j) mod 256.
 */
static void
vlog_entry(const struct vlog *vl, uint64_t index, struct kt_buf *out)
{
	const json_t *e = json_object_get(vl->json, "entries");

	kt_buf_reset(out);
	if (strcmp(tu_str(e, "kind"), "ascii") == 0) {
		char buf[64];
		int n = snprintf(buf, sizeof(buf), "%s%llu",
		    tu_str(e, "prefix"), (unsigned long long)index);

		assert_int_equal(kt_buf_append(out, buf, (size_t)n), KT_OK);
		return;
	}
	assert_string_equal(tu_str(e, "kind"), "varlen");
	{
		size_t len = index == 7 ? 65535 : (size_t)(211 * index % 1024);

		for (size_t j = 0; j < len; j++)
			assert_int_equal(kt_buf_append_byte(
					     out, (uint8_t)((index + j) % 256)),
			    KT_OK);
	}
}

/* Reads a sample's proof; returns its length. */
static size_t
sample_proof(const json_t *s, struct kt_hash proof[KT_PROOF_MAX])
{
	const json_t *pj = json_object_get(s, "proof");
	size_t n = json_array_size(pj);

	assert_true(n <= KT_PROOF_MAX);
	for (size_t i = 0; i < n; i++)
		tu_hash_hex(
		    json_string_value(json_array_get(pj, i)), &proof[i]);
	return n;
}

/* Formats the proof of sample s of vl into out. */
static void
build_proof(const struct vlog *vl, const json_t *s, struct kt_buf *out)
{
	struct kt_hash proof[KT_PROOF_MAX];
	struct kt_buf entry;
	struct kt_bytes extra;
	size_t n = sample_proof(s, proof);

	kt_buf_init(&entry, KT_TLOGPROOF_EXTRA_MAX);
	vlog_entry(vl, tu_u64(s, "index"), &entry);
	extra.p = entry.p;
	extra.len = entry.len;
	kt_buf_reset(out);
	assert_int_equal(kt_tlogproof_format(&extra, tu_u64(s, "index"), proof,
			     n, vl->note, vl->notelen, out),
	    KT_OK);
	kt_buf_free(&entry);
}

static void
test_tlogproof_verify_inclusion_samples(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	const json_t *log;
	size_t i, nsamples = 0;

	(void)state;
	json_array_foreach(json_object_get(j, "logs"), i, log)
	{
		const json_t *s;
		struct vlog vl;
		size_t k;

		vlog_init(log, &vl);
		json_array_foreach(
		    json_object_get(log, "inclusion_samples"), k, s)
		{
			struct kt_hash proof[KT_PROOF_MAX], leaf, want;
			struct kt_buf text, entry, again, got;
			struct kt_tlogproof_result res;
			struct kt_tlogproof tp;
			size_t n = sample_proof(s, proof);
			uint64_t index = tu_u64(s, "index");

			nsamples++;
			assert_int_equal(tu_u64(s, "size"), vl.size);
			kt_buf_init(&text, KT_TLOGPROOF_MAX);
			kt_buf_init(&entry, KT_TLOGPROOF_EXTRA_MAX);
			kt_buf_init(&again, KT_TLOGPROOF_MAX);
			kt_buf_init(&got, KT_TLOGPROOF_EXTRA_MAX);
			/* The entry rule gives the published leaf hash. */
			vlog_entry(&vl, index, &entry);
			kt_leaf_hash(entry.len ? entry.p : (const uint8_t *)"",
			    entry.len, &leaf);
			tu_hash_hex(tu_str(s, "leaf_hash"), &want);
			assert_memory_equal(leaf.b, want.b, 32);
			build_proof(&vl, s, &text);
			/* Parse gives back every field... */
			assert_int_equal(
			    kt_tlogproof_parse(text.p, text.len, &tp), KT_OK);
			assert_true(tp.has_extra);
			assert_int_equal(tp.index, index);
			assert_int_equal(tp.nproof, n);
			assert_memory_equal(tp.proof, proof, n * 32);
			assert_int_equal(tp.note.len, vl.notelen);
			assert_memory_equal(tp.note.p, vl.note, vl.notelen);
			assert_int_equal(kt_tlogproof_extra(&tp, &got), KT_OK);
			assert_int_equal(got.len, entry.len);
			if (entry.len > 0)
				assert_memory_equal(got.p, entry.p, entry.len);
			/* ...and formatting them again gives the same text. */
			assert_int_equal(
			    kt_tlogproof_format(
				&(struct kt_bytes){ got.p, got.len }, tp.index,
				tp.proof, tp.nproof, tp.note.p, tp.note.len,
				&again),
			    KT_OK);
			assert_int_equal(again.len, text.len);
			assert_memory_equal(again.p, text.p, text.len);
			/* It verifies, and hands back the entry. */
			kt_buf_reset(&got);
			memset(&res, 0, sizeof(res));
			assert_int_equal(kt_tlogproof_verify(text.p, text.len,
					     &vl.trust, NULL, &got, &res),
			    KT_OK);
			assert_int_equal(res.index, index);
			assert_int_equal(res.checkpoint.size, vl.size);
			tu_hash_hex(tu_str(s, "root"), &want);
			assert_memory_equal(res.checkpoint.root.b, want.b, 32);
			assert_int_equal(got.len, entry.len);
			if (entry.len > 0)
				assert_memory_equal(got.p, entry.p, entry.len);
			assert_int_equal(kt_tlogproof_verify(text.p, text.len,
					     &vl.trust, NULL, NULL, NULL),
			    KT_OK);
			kt_buf_free(&text);
			kt_buf_free(&entry);
			kt_buf_free(&again);
			kt_buf_free(&got);
		}
		free(vl.note);
	}
	assert_int_equal(nsamples, 16);
	json_decref(j);
}

/* Replaces the first occurrence of from in b with to. */
static void
edit(struct kt_buf *b, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	struct kt_buf n;

	for (size_t i = 0; i + fl <= b->len; i++) {
		if (memcmp(b->p + i, from, fl) != 0)
			continue;
		kt_buf_init(&n, b->max);
		assert_int_equal(kt_buf_append(&n, b->p, i), KT_OK);
		assert_int_equal(kt_buf_append(&n, to, tl), KT_OK);
		assert_int_equal(
		    kt_buf_append(&n, b->p + i + fl, b->len - i - fl), KT_OK);
		kt_buf_free(b);
		*b = n;
		return;
	}
	fail_msg("edit: \"%s\" not found", from);
}

/* Formats a proof from the given parts (entry NULL: no extra line). */
static void
forge(const char *entry, uint64_t index, const struct kt_hash *proof, size_t n,
    const uint8_t *note, size_t notelen, struct kt_buf *out)
{
	struct kt_bytes extra = { (const uint8_t *)entry,
		entry ? strlen(entry) : 0 };

	kt_buf_reset(out);
	assert_int_equal(kt_tlogproof_format(entry ? &extra : NULL, index,
			     proof, n, note, notelen, out),
	    KT_OK);
}

static void
test_tlogproof_verify_rejects_forgeries(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	const json_t *log = json_array_get(json_object_get(j, "logs"), 0);
	const json_t *s =
	    json_array_get(json_object_get(log, "inclusion_samples"), 6);
	struct kt_hash proof[KT_PROOF_MAX + 1], p2[KT_PROOF_MAX + 1];
	struct kt_checkpoint_trust t;
	struct kt_note_vkey other;
	struct kt_buf b, got;
	struct vlog vl;
	uint64_t index = tu_u64(s, "index");
	size_t n, olen;
	uint8_t *old;
	char entry[32];

	(void)state;
	vlog_init(log, &vl);
	n = sample_proof(s, proof);
	assert_int_equal(index, 65536);
	assert_true(n >= 2);
	snprintf(entry, sizeof(entry), "leaf-%llu", (unsigned long long)index);
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	kt_buf_init(&got, KT_TLOGPROOF_EXTRA_MAX);
	assert_int_equal(kt_buf_append_str(&got, "keep"), KT_OK);
	forge(entry, index, proof, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, NULL, NULL),
	    KT_OK);
	/* Every bit of every proof hash matters (a sample of bits). */
	for (size_t k = 0; k < n; k++) {
		for (size_t bit = 0; bit < 256; bit += 37) {
			memcpy(p2, proof, n * sizeof(proof[0]));
			p2[k].b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			forge(entry, index, p2, n, vl.note, vl.notelen, &b);
			assert_int_equal(kt_tlogproof_verify(b.p, b.len,
					     &vl.trust, NULL, &got, NULL),
			    KT_EVERIFY);
		}
	}
	/* Wrong index: neighbours, the size, beyond it. */
	{
		static const int64_t delta[] = { -1, 1, 2, -65536 };

		for (size_t k = 0; k < sizeof(delta) / sizeof(delta[0]); k++) {
			forge(entry, (uint64_t)((int64_t)index + delta[k]),
			    proof, n, vl.note, vl.notelen, &b);
			assert_int_equal(kt_tlogproof_verify(b.p, b.len,
					     &vl.trust, NULL, &got, NULL),
			    KT_EVERIFY);
		}
		forge(entry, vl.size, proof, n, vl.note, vl.notelen, &b);
		assert_int_equal(kt_tlogproof_verify(
				     b.p, b.len, &vl.trust, NULL, &got, NULL),
		    KT_EVERIFY);
		forge(
		    entry, KT_SIZE_MAX - 1, proof, n, vl.note, vl.notelen, &b);
		assert_int_equal(kt_tlogproof_verify(
				     b.p, b.len, &vl.trust, NULL, &got, NULL),
		    KT_EVERIFY);
	}
	/* An extra hash line, a missing one, two swapped. */
	memcpy(p2, proof, n * sizeof(proof[0]));
	p2[n] = proof[n - 1];
	forge(entry, index, p2, n + 1, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	forge(entry, index, proof, n - 1, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	p2[0] = proof[1];
	p2[1] = proof[0];
	forge(entry, index, p2, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	/* Tampered extra, and none at all. */
	forge("leaf-65537", index, proof, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	forge("", index, proof, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	forge(NULL, index, proof, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EPARSE);
	/* Missing blank line before the checkpoint. */
	forge(entry, index, proof, n, vl.note, vl.notelen, &b);
	edit(&b, "=\n\nexample.com/testlog\n", "=\nexample.com/testlog\n");
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EPARSE);
	/* Wrong key, wrong origin. */
	assert_int_equal(
	    kt_note_vkey_parse(
		tu_str(json_array_get(json_object_get(j, "logs"), 1), "vkey"),
		strlen(tu_str(
		    json_array_get(json_object_get(j, "logs"), 1), "vkey")),
		&other),
	    KT_OK);
	forge(entry, index, proof, n, vl.note, vl.notelen, &b);
	t = vl.trust;
	t.log = &other;
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &t, NULL, &got, NULL), KT_EVERIFY);
	t = vl.trust;
	t.origin.len--;
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &t, NULL, &got, NULL), KT_EVERIFY);
	/* A tampered checkpoint, and an older genuine one. */
	edit(&b, "\n70000\n", "\n70001\n");
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	old = tu_read_vector_file("checkpoints/tiles.69999", &olen);
	forge(entry, index, proof, n, old, olen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, NULL, &got, NULL),
	    KT_EVERIFY);
	free(old);
	/* No failure wrote to the entry buffer. */
	assert_int_equal(got.len, 4);
	assert_memory_equal(got.p, "keep", 4);
	kt_buf_free(&got);
	kt_buf_free(&b);
	free(vl.note);
	json_decref(j);
}

static void
test_tlogproof_verify_witness_quorum(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	json_t *nj = tu_load_json("notes.json");
	const json_t *log = json_array_get(json_object_get(j, "logs"), 0);
	const json_t *s =
	    json_array_get(json_object_get(log, "inclusion_samples"), 0);
	const json_t *cv =
	    json_array_get(json_object_get(nj, "cosignature_vectors"), 0);
	const char *cosigned = tu_str(cv, "note");
	struct kt_hash proof[KT_PROOF_MAX];
	struct kt_note_keyresult res = { 0, 0 };
	struct kt_note_vkey w;
	struct kt_buf b;
	struct vlog vl;
	size_t n;

	(void)state;
	vlog_init(log, &vl);
	assert_int_equal(kt_note_vkey_parse(tu_str(cv, "cosigner_vkey"),
			     strlen(tu_str(cv, "cosigner_vkey")), &w),
	    KT_OK);
	vl.trust.witnesses = &w;
	vl.trust.nwitnesses = 1;
	vl.trust.quorum = 1;
	n = sample_proof(s, proof);
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	/* The published checkpoint has no cosignature. */
	forge("leaf-0", 0, proof, n, vl.note, vl.notelen, &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, &res, NULL, NULL),
	    KT_EPOLICY);
	assert_int_equal(res.verified, 0);
	/* The cosigned one (same checkpoint text) meets the quorum. */
	forge("leaf-0", 0, proof, n, (const uint8_t *)cosigned,
	    strlen(cosigned), &b);
	assert_int_equal(
	    kt_tlogproof_verify(b.p, b.len, &vl.trust, &res, NULL, NULL),
	    KT_OK);
	assert_true(res.verified);
	assert_int_equal(res.timestamp, 1735689600);
	kt_buf_free(&b);
	free(vl.note);
	json_decref(nj);
	json_decref(j);
}

#define GOOD_NOTE \
	"example.com/testlog\n70000\niBwvTHw7YMhk1XSquRdGoWciDFIKL4M9hu7m3++5" \
	"rMs=\n\n\xe2\x80\x94 example.com/testlog " \
	"S9/SV4GLf5SHcbn2muRVuRiqgdZ8" \
	"7EE7hrQczDexp3lh0sUXF8hmKZRQb1rJ7HW+J/6IIVZbH9C8tt9W7zY8oIveqgw=\n"
#define HASH_A "MF31n5WQw8msY9KydDw4jjeSRJB4zr9/s9vmRxZDsrc=\n"

/* Proof texts kt_tlogproof_parse must refuse, with the error it returns. */
static const struct {
	const char *text;
	int err;
} bad_proofs[] = {
	{ "", KT_EPARSE },
	{ HEADER, KT_EPARSE },
	{ HEADER "index 0\n", KT_EPARSE },
	{ HEADER "index 0\n\n", KT_EPARSE },
	{ HEADER "index 0\n" HASH_A, KT_EPARSE },
	/* Header. */
	{ "c2sp.org/tlog-proof@v2\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ "C2SP.org/tlog-proof@v1\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ "c2sp.org/tlog-proof@v1 \nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ "c2sp.org/tlog-proof@v1\r\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ "\n" HEADER "index 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ "index 0\n\n" GOOD_NOTE, KT_EPARSE },
	/* Extra. */
	{ HEADER "extra\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra  bGVhZi0w\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra bGVhZi0w \nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra bGVhZi0x=\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra Zh==\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra Zg\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "extra Zg==\nextra Zg==\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 0\nextra Zg==\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "Extra Zg==\nindex 0\n\n" GOOD_NOTE, KT_EPARSE },
	/* Index. */
	{ HEADER "index\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index \n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 00\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 01\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index -1\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index +1\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index  1\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 1 \n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 0x1\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index=1\n\n" GOOD_NOTE, KT_EPARSE },
	{ HEADER "index 9223372036854775808\n\n" GOOD_NOTE, KT_ETOOBIG },
	{ HEADER "index 18446744073709551616\n\n" GOOD_NOTE, KT_ETOOBIG },
	/* Hashes. */
	{ HEADER
	    "index "
	    "0\nMF31n5WQw8msY9KydDw4jjeSRJB4zr9/s9vmRxZDsrd=\n\n" GOOD_NOTE,
	    KT_EPARSE },
	{ HEADER "index "
		 "0\nMF31n5WQw8msY9KydDw4jjeSRJB4zr9/s9vmRxZDsrc\n\n" GOOD_NOTE,
	    KT_EPARSE },
	{ HEADER
	    "index "
	    "0\nMF31n5WQw8msY9KydDw4jjeSRJB4zr9/s9vmRxZDsg==\n\n" GOOD_NOTE,
	    KT_EPARSE },
	{ HEADER
	    "index "
	    "0\nMF31n5WQw8msY9KydDw4jjeSRJB4zr9_s9vmRxZDsrc=\n\n" GOOD_NOTE,
	    KT_EPARSE },
	{ HEADER "index 0\n "
		 "MF31n5WQw8msY9KydDw4jjeSRJB4zr9/s9vmRxZDsrc=\n\n" GOOD_NOTE,
	    KT_EPARSE },
	{ HEADER "index 0\n305df59f9590c3c9ac63d2b2743c388e3792449078cebf7fb3d"
		 "be6471643b2b7\n\n" GOOD_NOTE,
	    KT_EPARSE },
	/* The checkpoint: missing, malformed, with trailing garbage. */
	{ HEADER "index 0\n" HASH_A "\n", KT_EPARSE },
	/* A leading empty line is note text: it parses, and never verifies. */
	{ HEADER "index 0\n" HASH_A "\n\n" GOOD_NOTE, KT_OK },
	{ HEADER "index 0\n" HASH_A "\n" GOOD_NOTE "x", KT_EPARSE },
	{ HEADER "index 0\n" HASH_A "\n" GOOD_NOTE "garbage\n", KT_EPARSE },
	{ HEADER "index 0\n" HASH_A "\n" GOOD_NOTE "\n", KT_EPARSE },
	/* Accepted for contrast: empty extra, no hashes, a large index. */
	{ HEADER "extra \nindex 0\n\n" GOOD_NOTE, KT_OK },
	{ HEADER "index 0\n\n" GOOD_NOTE, KT_OK },
	{ HEADER "index 9223372036854775807\n" HASH_A "\n" GOOD_NOTE, KT_OK },
};

static void
test_tlogproof_parse_rejects(void **state)
{
	struct kt_tlogproof tp;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_proofs) / sizeof(bad_proofs[0]);
	     i++) {
		int rc;

		memset(&tp, 0xa5, sizeof(tp));
		rc = kt_tlogproof_parse((const uint8_t *)bad_proofs[i].text,
		    strlen(bad_proofs[i].text), &tp);
		if (rc != bad_proofs[i].err)
			fail_msg("proof %zu: got %s, want %s", i,
			    kt_strerror(rc), kt_strerror(bad_proofs[i].err));
		if (rc != KT_OK)
			assert_int_equal(((uint8_t *)&tp)[0], 0xa5);
	}
}

static void
test_tlogproof_parse_truncated(void **state)
{
	json_t *j = tu_load_json("tiles.json");
	const json_t *log = json_array_get(json_object_get(j, "logs"), 0);
	struct kt_tlogproof tp;
	struct kt_buf b;
	struct vlog vl;

	(void)state;
	vlog_init(log, &vl);
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	build_proof(&vl,
	    json_array_get(json_object_get(log, "inclusion_samples"), 3), &b);
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_OK);
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(kt_tlogproof_parse(b.p, n, &tp), KT_OK);
	kt_buf_free(&b);
	free(vl.note);
	json_decref(j);
}

/*
 * Appends a syntactically valid note of exactly len bytes: an ASCII text
 * and one (unverifiable) signature line.
 */
static void
filler_note(size_t len, struct kt_buf *b)
{
	static const char sig[] = "\n\xe2\x80\x94 a S9/SVwAA\n";
	size_t textlen = len - (sizeof(sig) - 1);

	for (size_t i = 0; i + 1 < textlen; i++)
		assert_int_equal(kt_buf_append_byte(b, 'x'), KT_OK);
	assert_int_equal(kt_buf_append_byte(b, '\n'), KT_OK);
	assert_int_equal(kt_buf_append_str(b, sig), KT_OK);
	assert_int_equal(b->len, len);
}

static void
test_tlogproof_parse_limits(void **state)
{
	struct kt_hash proof[KT_PROOF_MAX + 1];
	struct kt_buf note, extra, b, big;
	struct kt_tlogproof tp;

	(void)state;
	memset(proof, 0x11, sizeof(proof));
	kt_buf_init(&note, KT_NOTE_MAX + 1);
	kt_buf_init(&extra, KT_TLOGPROOF_EXTRA_MAX + 1);
	kt_buf_init(&b, 2 * KT_TLOGPROOF_MAX);
	filler_note(KT_NOTE_MAX, &note);
	for (size_t i = 0; i < KT_TLOGPROOF_EXTRA_MAX; i++)
		assert_int_equal(kt_buf_append_byte(&extra, (uint8_t)i), KT_OK);
	/* Everything at its maximum still fits and round-trips. */
	assert_int_equal(
	    kt_tlogproof_format(&(struct kt_bytes){ extra.p, extra.len },
		KT_SIZE_MAX - 1, proof, KT_PROOF_MAX, note.p, note.len, &b),
	    KT_OK);
	assert_true(b.len <= KT_TLOGPROOF_MAX);
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_OK);
	assert_int_equal(tp.nproof, KT_PROOF_MAX);
	assert_int_equal(tp.index, KT_SIZE_MAX - 1);
	/* One more hash line. */
	edit(&b, "\n\nxxx",
	    "\nERERERERERERERERERERERERERERERERERERERERERE=\n\nxxx");
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_ETOOBIG);
	/* One more byte of extra data. */
	assert_int_equal(kt_buf_append_byte(&extra, 0), KT_OK);
	kt_buf_reset(&b);
	assert_int_equal(kt_buf_append_str(&b, HEADER "extra "), KT_OK);
	assert_int_equal(kt_b64_append(&b, extra.p, extra.len), KT_OK);
	assert_int_equal(
	    kt_buf_append_str(&b, "\nindex 0\n\n" GOOD_NOTE), KT_OK);
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_ETOOBIG);
	/* A note one byte too large. */
	kt_buf_reset(&note);
	filler_note(KT_NOTE_MAX + 1, &note);
	kt_buf_reset(&b);
	assert_int_equal(kt_buf_append_str(&b, HEADER "index 0\n\n"), KT_OK);
	assert_int_equal(kt_buf_append(&b, note.p, note.len), KT_OK);
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_ETOOBIG);
	/* A whole file past KT_TLOGPROOF_MAX is refused unread. */
	kt_buf_init(&big, KT_TLOGPROOF_MAX + 1);
	for (size_t i = 0; i <= KT_TLOGPROOF_MAX; i++)
		assert_int_equal(kt_buf_append_byte(&big, 'x'), KT_OK);
	assert_int_equal(kt_tlogproof_parse(big.p, big.len, &tp), KT_ETOOBIG);
	kt_buf_free(&big);
	kt_buf_free(&note);
	kt_buf_free(&extra);
	kt_buf_free(&b);
}

static void
test_tlogproof_format_rejects(void **state)
{
	struct kt_hash proof[KT_PROOF_MAX + 1];
	struct kt_bytes extra;
	struct kt_tlogproof tp;
	struct kt_buf b;
	uint8_t *big;
	const uint8_t *note = (const uint8_t *)GOOD_NOTE;
	size_t nl = strlen(GOOD_NOTE);

	(void)state;
	memset(proof, 0, sizeof(proof));
	big = calloc(1, KT_TLOGPROOF_EXTRA_MAX + 1);
	assert_non_null(big);
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	assert_int_equal(kt_buf_append_str(&b, "keep"), KT_OK);
	extra.p = big;
	extra.len = KT_TLOGPROOF_EXTRA_MAX + 1;
	assert_int_equal(
	    kt_tlogproof_format(&extra, 0, proof, 0, note, nl, &b), KT_EINVAL);
	assert_int_equal(
	    kt_tlogproof_format(NULL, KT_SIZE_MAX, proof, 0, note, nl, &b),
	    KT_EINVAL);
	assert_int_equal(
	    kt_tlogproof_format(NULL, 0, proof, KT_PROOF_MAX + 1, note, nl, &b),
	    KT_EINVAL);
	assert_int_equal(
	    kt_tlogproof_format(NULL, 0, proof, 0, note, nl - 1, &b),
	    KT_EINVAL);
	assert_int_equal(
	    kt_tlogproof_format(NULL, 0, proof, 0, note, 0, &b), KT_EINVAL);
	assert_int_equal(b.len, 4);
	kt_buf_free(&b);
	/* A buffer too small is left as it was. */
	kt_buf_init(&b, 60);
	assert_int_equal(
	    kt_tlogproof_format(NULL, 0, proof, 1, note, nl, &b), KT_ETOOBIG);
	assert_int_equal(b.len, 0);
	kt_buf_free(&b);
	/* No extra line: kt_tlogproof_extra has nothing to give. */
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	assert_int_equal(
	    kt_tlogproof_format(NULL, 0, proof, 1, note, nl, &b), KT_OK);
	assert_int_equal(kt_tlogproof_parse(b.p, b.len, &tp), KT_OK);
	assert_false(tp.has_extra);
	kt_buf_reset(&b);
	assert_int_equal(kt_tlogproof_extra(&tp, &b), KT_ENOTFOUND);
	kt_buf_free(&b);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tlogproof_verify_inclusion_samples),
		cmocka_unit_test(test_tlogproof_verify_rejects_forgeries),
		cmocka_unit_test(test_tlogproof_verify_witness_quorum),
		cmocka_unit_test(test_tlogproof_parse_rejects),
		cmocka_unit_test(test_tlogproof_parse_truncated),
		cmocka_unit_test(test_tlogproof_parse_limits),
		cmocka_unit_test(test_tlogproof_format_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
