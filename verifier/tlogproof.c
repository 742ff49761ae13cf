/*
 * C2SP tlog-proof@v1 (c2sp.org/tlog-proof, "Format"): parse, format and
 * offline verification of the proof that an entry is in the log.
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/encoding.h"
#include "keytrail/tlogproof.h"

static const char tlogproof_header[] = "c2sp.org/tlog-proof@v1";
static const char tlogproof_extra_tag[] = "extra ";
static const char tlogproof_index_tag[] = "index ";

/* The longest proof that can be written must also be readable. */
_Static_assert(sizeof(tlogproof_header) + sizeof(tlogproof_extra_tag) +
	    KT_B64_ENCLEN(KT_TLOGPROOF_EXTRA_MAX) +
	    sizeof(tlogproof_index_tag) + 20 +
	    KT_PROOF_MAX * (KT_B64_ENCLEN(KT_HASH_SIZE) + 1) + 1 +
	    KT_NOTE_MAX <=
	KT_TLOGPROOF_MAX,
    "KT_TLOGPROOF_MAX too small for the largest proof");

/* If line starts with tag, stores the rest in *rest and returns 1. */
static int
tlogproof_tag(struct kt_bytes line, const char *tag, struct kt_bytes *rest)
{
	size_t n = strlen(tag);

	if (line.len < n || memcmp(line.p, tag, n) != 0)
		return 0;
	rest->p = line.p + n;
	rest->len = line.len - n;
	return 1;
}

/*
 * Decodes canonical base64 b64, refusing more than KT_TLOGPROOF_EXTRA_MAX
 * bytes, and appends the bytes to out unless out is NULL (a check only).
 * out is unchanged on failure.
 */
static int
tlogproof_decode_extra(struct kt_bytes b64, struct kt_buf *out)
{
	uint8_t *tmp = NULL;
	size_t n = 0;
	int rc;

	if (b64.len > KT_B64_ENCLEN(KT_TLOGPROOF_EXTRA_MAX))
		return KT_ETOOBIG;
	/* One spare byte keeps malloc(0) out of the picture. */
	if ((tmp = malloc(KT_B64_DECMAX(b64.len) + 1)) == NULL)
		return KT_ENOMEM;
	rc = kt_b64_decode(
	    (const char *)b64.p, b64.len, tmp, KT_B64_DECMAX(b64.len), &n);
	if (rc != KT_OK) {
		rc = KT_EPARSE;
		goto out;
	}
	if (n > KT_TLOGPROOF_EXTRA_MAX) {
		rc = KT_ETOOBIG;
		goto out;
	}
	rc = out != NULL ? kt_buf_append(out, tmp, n) : KT_OK;
out:
	free(tmp);
	return rc;
}

int
kt_tlogproof_parse(const uint8_t *p, size_t len, struct kt_tlogproof *out)
{
	struct kt_tlogproof *tp = NULL;
	struct kt_note *note = NULL;
	struct kt_bytes line, rest;
	struct kt_reader r;
	int rc;

	if (len > KT_TLOGPROOF_MAX)
		return KT_ETOOBIG;
	if ((tp = calloc(1, sizeof(*tp))) == NULL ||
	    (note = malloc(sizeof(*note))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	kt_reader_init(&r, p, len);
	line = kt_reader_line(&r);
	if (r.bad || line.len != sizeof(tlogproof_header) - 1 ||
	    memcmp(line.p, tlogproof_header, line.len) != 0) {
		rc = KT_EPARSE;
		goto out;
	}
	line = kt_reader_line(&r);
	if (!r.bad && tlogproof_tag(line, tlogproof_extra_tag, &rest)) {
		if ((rc = tlogproof_decode_extra(rest, NULL)) != KT_OK)
			goto out;
		tp->has_extra = 1;
		tp->extra = rest;
		line = kt_reader_line(&r);
	}
	if (r.bad || !tlogproof_tag(line, tlogproof_index_tag, &rest)) {
		rc = KT_EPARSE;
		goto out;
	}
	if ((rc = kt_parse_u64(
		 rest.p, rest.len, KT_SIZE_MAX - 1, &tp->index)) != KT_OK)
		goto out;
	/* Hash lines until the empty line; a missing one is malformed. */
	for (;;) {
		line = kt_reader_line(&r);
		if (r.bad) {
			rc = KT_EPARSE;
			goto out;
		}
		if (line.len == 0)
			break;
		if (tp->nproof == KT_PROOF_MAX) {
			rc = KT_ETOOBIG;
			goto out;
		}
		if (kt_b64_decode_exact((const char *)line.p, line.len,
			tp->proof[tp->nproof].b, KT_HASH_SIZE) != KT_OK) {
			rc = KT_EPARSE;
			goto out;
		}
		tp->nproof++;
	}
	tp->note.p = p + r.off;
	tp->note.len = len - r.off;
	if ((rc = kt_note_parse(tp->note.p, tp->note.len, note)) != KT_OK)
		goto out;
	*out = *tp;
	rc = KT_OK;
out:
	free(note);
	free(tp);
	return rc;
}

int
kt_tlogproof_extra(const struct kt_tlogproof *tp, struct kt_buf *out)
{
	if (!tp->has_extra)
		return KT_ENOTFOUND;
	return tlogproof_decode_extra(tp->extra, out);
}

int
kt_tlogproof_format(const struct kt_bytes *extra, uint64_t index,
    const struct kt_hash *proof, size_t nproof, const uint8_t *note,
    size_t notelen, struct kt_buf *out)
{
	struct kt_note *n = NULL;
	size_t old = out->len;
	int rc;

	if ((extra != NULL && extra->len > KT_TLOGPROOF_EXTRA_MAX) ||
	    index >= KT_SIZE_MAX || nproof > KT_PROOF_MAX)
		return KT_EINVAL;
	if ((n = malloc(sizeof(*n))) == NULL)
		return KT_ENOMEM;
	/* Write only what kt_tlogproof_parse() reads back. */
	if (kt_note_parse(note, notelen, n) != KT_OK) {
		rc = KT_EINVAL;
		goto out;
	}
	if ((rc = kt_buf_append_str(out, tlogproof_header)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
		goto out;
	if (extra != NULL &&
	    ((rc = kt_buf_append_str(out, tlogproof_extra_tag)) != KT_OK ||
		(rc = kt_b64_append(out, extra->p, extra->len)) != KT_OK ||
		(rc = kt_buf_append_byte(out, '\n')) != KT_OK))
		goto out;
	if ((rc = kt_buf_append_str(out, tlogproof_index_tag)) != KT_OK ||
	    (rc = kt_buf_append_u64(out, index)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
		goto out;
	for (size_t i = 0; i < nproof; i++) {
		if ((rc = kt_b64_append(out, proof[i].b, KT_HASH_SIZE)) !=
			KT_OK ||
		    (rc = kt_buf_append_byte(out, '\n')) != KT_OK)
			goto out;
	}
	if ((rc = kt_buf_append_byte(out, '\n')) != KT_OK ||
	    (rc = kt_buf_append(out, note, notelen)) != KT_OK)
		goto out;
	if (out->len - old > KT_TLOGPROOF_MAX) {
		rc = KT_ETOOBIG;
		goto out;
	}
	rc = KT_OK;
out:
	if (rc != KT_OK)
		kt_buf_truncate(out, old);
	free(n);
	return rc;
}

int
kt_tlogproof_verify(const uint8_t *p, size_t len,
    const struct kt_checkpoint_trust *trust, struct kt_note_keyresult *wresults,
    struct kt_buf *entry, struct kt_tlogproof_result *res)
{
	struct kt_note_keyresult *wres = NULL;
	struct kt_tlogproof *tp = NULL;
	struct kt_checkpoint cp;
	struct kt_hash leaf;
	struct kt_buf data;
	int rc;

	kt_buf_init(&data, KT_TLOGPROOF_EXTRA_MAX);
	if ((tp = malloc(sizeof(*tp))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if (trust->nwitnesses > 0 &&
	    (wres = calloc(trust->nwitnesses, sizeof(*wres))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if ((rc = kt_tlogproof_parse(p, len, tp)) != KT_OK)
		goto out;
	if (!tp->has_extra) {
		rc = KT_EPARSE;
		goto out;
	}
	if ((rc = kt_checkpoint_open(
		 tp->note.p, tp->note.len, trust, wres, &cp)) != KT_OK)
		goto out;
	if (tp->index >= cp.size) {
		rc = KT_EVERIFY;
		goto out;
	}
	if ((rc = kt_tlogproof_extra(tp, &data)) != KT_OK)
		goto out;
	/* An empty entry leaves data.p NULL; hash from a valid pointer. */
	kt_leaf_hash(
	    data.len > 0 ? data.p : (const uint8_t *)"", data.len, &leaf);
	rc = kt_inclusion_check(
	    tp->proof, tp->nproof, cp.size, &cp.root, tp->index, &leaf);
	if (rc != KT_OK) {
		/* Arguments were checked above; whatever is left is the proof.
		 */
		rc = KT_EVERIFY;
		goto out;
	}
	if (entry != NULL &&
	    (rc = kt_buf_append(entry, data.p, data.len)) != KT_OK)
		goto out;
	if (wresults != NULL && trust->nwitnesses > 0)
		memcpy(wresults, wres, trust->nwitnesses * sizeof(*wres));
	if (res != NULL) {
		res->index = tp->index;
		res->checkpoint = cp;
	}
	rc = KT_OK;
out:
	kt_buf_free(&data);
	free(wres);
	free(tp);
	return rc;
}
