/*
 * Fuzzes the signed-note parser and verifier and the verifier- and
 * signer-key parsers on the same input.  Whatever parses must format back
 * to exactly the input (one spelling per note and per key), and
 * verification with the test keys must never crash or claim success
 * without a verified key.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public test keys of the vectors (notes.json "keys"). */
static const char *const fuzz_vkeys[] = {
	"example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRadk"
	"EB+",
	"example.com/testlog-varlen+9cd40c11+AZknzX+RiunMmEHF/MfCxsDIR7F/A5J89z"
	"jLrYVvQXkw",
	"witness.example.com/w1+88b27608+BG2KzKGE37ZPVrdkeD2eOHGrcfjY2QrwN5QMcO"
	"mwZSRJ",
};

#define NKEYS (sizeof(fuzz_vkeys) / sizeof(fuzz_vkeys[0]))

/* Aborts unless b holds exactly data[0..size). */
static void
fuzz_same(const struct kt_buf *b, const uint8_t *data, size_t size)
{
	if (b->len != size || (size > 0 && memcmp(b->p, data, size) != 0))
		abort();
}

static void
fuzz_note(
    const uint8_t *data, size_t size, const struct kt_note_vkey keys[NKEYS])
{
	struct kt_note_keyresult res[NKEYS];
	struct kt_note *n;
	struct kt_buf b;
	size_t count;

	if ((n = malloc(sizeof(*n))) == NULL)
		abort();
	kt_buf_init(&b, KT_NOTE_MAX);
	if (kt_note_parse(data, size, n) == KT_OK) {
		if (kt_note_format(n, &b) != KT_OK)
			abort();
		fuzz_same(&b, data, size);
		if (kt_note_verify(n, keys, NKEYS, res) == KT_OK &&
		    !res[0].verified && !res[1].verified && !res[2].verified)
			abort();
		if (kt_note_check(n, keys, NKEYS, res, &count) == KT_OK &&
		    count > NKEYS)
			abort();
	}
	if (kt_note_open(data, size, keys, NKEYS, res, n) == KT_OK &&
	    n->nsigs == 0)
		abort();
	kt_buf_free(&b);
	free(n);
}

static void
fuzz_keys(const uint8_t *data, size_t size)
{
	struct kt_note_vkey k;
	uint8_t seed[KT_ED25519_SEED_SIZE];
	struct kt_buf b;

	kt_buf_init(&b, 1024);
	if (kt_note_vkey_parse((const char *)data, size, &k) == KT_OK) {
		if (kt_note_vkey_format(&k, &b) != KT_OK)
			abort();
		fuzz_same(&b, data, size);
	}
	if (kt_note_skey_parse((const char *)data, size, &k, seed) == KT_OK) {
		kt_wipe(seed, sizeof(seed));
		kt_buf_reset(&b);
		if (kt_note_vkey_format(&k, &b) != KT_OK)
			abort();
	}
	kt_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_note_vkey keys[NKEYS];

	/* Just past the limit is interesting; far past it is not. */
	if (size > KT_NOTE_MAX + 16)
		return 0;
	for (size_t i = 0; i < NKEYS; i++) {
		if (kt_note_vkey_parse(fuzz_vkeys[i], strlen(fuzz_vkeys[i]),
			&keys[i]) != KT_OK)
			abort();
	}
	fuzz_note(data, size, keys);
	fuzz_keys(data, size);
	return 0;
}
