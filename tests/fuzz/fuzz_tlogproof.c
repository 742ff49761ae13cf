/*
 * Fuzzes the tlog-proof@v1 parser and the offline verifier.  A proof that
 * parses must format back to exactly the input, and a proof that verifies
 * must hand back its entry.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/tlogproof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public test keys of the vectors (notes.json "keys"). */
static const char fuzz_log_vkey[] =
    "example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRadkEB"
    "+";
static const char fuzz_witness_vkey[] =
    "witness.example.com/w1+88b27608+BG2KzKGE37ZPVrdkeD2eOHGrcfjY2QrwN5QMcOmw"
    "ZSRJ";
static const char fuzz_origin[] = "example.com/testlog";

static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct kt_tlogproof *tp;
	struct kt_buf extra, b;
	struct kt_bytes x;

	if ((tp = malloc(sizeof(*tp))) == NULL)
		abort();
	kt_buf_init(&extra, KT_TLOGPROOF_EXTRA_MAX);
	kt_buf_init(&b, KT_TLOGPROOF_MAX);
	if (kt_tlogproof_parse(data, size, tp) != KT_OK)
		goto out;
	if (tp->has_extra && kt_tlogproof_extra(tp, &extra) != KT_OK)
		abort();
	x.p = extra.p;
	x.len = extra.len;
	if (kt_tlogproof_format(tp->has_extra ? &x : NULL, tp->index, tp->proof,
		tp->nproof, tp->note.p, tp->note.len, &b) != KT_OK)
		abort();
	if (b.len != size || memcmp(b.p, data, size) != 0)
		abort();
out:
	kt_buf_free(&extra);
	kt_buf_free(&b);
	free(tp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_note_vkey log, w;
	struct kt_note_keyresult res;
	struct kt_checkpoint_trust trust;
	struct kt_tlogproof_result r;
	struct kt_buf entry;

	if (size > KT_TLOGPROOF_MAX + 16)
		return 0;
	if (kt_note_vkey_parse(fuzz_log_vkey, strlen(fuzz_log_vkey), &log) !=
		KT_OK ||
	    kt_note_vkey_parse(
		fuzz_witness_vkey, strlen(fuzz_witness_vkey), &w) != KT_OK)
		abort();
	fuzz_roundtrip(data, size);
	memset(&trust, 0, sizeof(trust));
	trust.log = &log;
	trust.origin.p = (const uint8_t *)fuzz_origin;
	trust.origin.len = strlen(fuzz_origin);
	trust.witnesses = &w;
	trust.nwitnesses = 1;
	kt_buf_init(&entry, KT_TLOGPROOF_EXTRA_MAX);
	if (kt_tlogproof_verify(data, size, &trust, &res, &entry, &r) ==
	    KT_OK) {
		if (r.index >= r.checkpoint.size)
			abort();
	}
	kt_buf_free(&entry);
	return 0;
}
