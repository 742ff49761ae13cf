/*
 * Fuzzes the checkpoint body parser and the opening of signed
 * checkpoints.  A body that parses must format back to exactly the input;
 * an opened checkpoint must carry the expected origin.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public test keys of the vectors (notes.json "keys"). */
static const char fuzz_log_vkey[] =
    "example.com/testlog+4bdfd257+Ac7c2Ka76ppiOhI2yyVC3znqh3PUUJMI9fiyGRadkEB"
    "+";
static const char fuzz_witness_vkey[] =
    "witness.example.com/w1+88b27608+BG2KzKGE37ZPVrdkeD2eOHGrcfjY2QrwN5QMcOmw"
    "ZSRJ";
static const char fuzz_origin[] = "example.com/testlog";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_note_vkey log, w;
	struct kt_note_keyresult res;
	struct kt_checkpoint_trust trust;
	struct kt_checkpoint c;
	struct kt_buf b;

	if (size > KT_NOTE_MAX + 16)
		return 0;
	if (kt_note_vkey_parse(fuzz_log_vkey, strlen(fuzz_log_vkey), &log) !=
		KT_OK ||
	    kt_note_vkey_parse(
		fuzz_witness_vkey, strlen(fuzz_witness_vkey), &w) != KT_OK)
		abort();
	kt_buf_init(&b, KT_CHECKPOINT_MAX);
	if (kt_checkpoint_parse(data, size, &c) == KT_OK) {
		if (kt_checkpoint_format(&c, &b) != KT_OK)
			abort();
		if (b.len != size || memcmp(b.p, data, size) != 0)
			abort();
	}
	kt_buf_free(&b);
	memset(&trust, 0, sizeof(trust));
	trust.log = &log;
	trust.origin.p = (const uint8_t *)fuzz_origin;
	trust.origin.len = strlen(fuzz_origin);
	trust.witnesses = &w;
	trust.nwitnesses = 1;
	for (size_t quorum = 0; quorum <= 1; quorum++) {
		trust.quorum = quorum;
		if (kt_checkpoint_open(data, size, &trust, &res, &c) != KT_OK)
			continue;
		if (c.origin.len != trust.origin.len ||
		    memcmp(c.origin.p, fuzz_origin, c.origin.len) != 0 ||
		    (quorum == 1 && !res.verified))
			abort();
	}
	return 0;
}
