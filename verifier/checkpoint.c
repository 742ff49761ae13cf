/*
 * C2SP tlog-checkpoint bodies and the client's "open a signed checkpoint"
 * step (c2sp.org/tlog-checkpoint, "Note text").
 */
#include <stdlib.h>
#include <string.h>

#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"

int
kt_checkpoint_parse(const uint8_t *text, size_t len, struct kt_checkpoint *out)
{
	struct kt_bytes origin, size, root;
	struct kt_checkpoint c;
	struct kt_reader r;
	size_t ext;
	int rc;

	if (len > KT_CHECKPOINT_MAX)
		return KT_ETOOBIG;
	kt_reader_init(&r, text, len);
	origin = kt_reader_line(&r);
	size = kt_reader_line(&r);
	root = kt_reader_line(&r);
	if (r.bad || origin.len == 0)
		return KT_EPARSE;
	c.origin = origin;
	/* Sizes stay below 2^63 (merkle.h); kt_parse_u64 is canonical. */
	if ((rc = kt_parse_u64(size.p, size.len, KT_SIZE_MAX - 1, &c.size)) !=
	    KT_OK)
		return rc;
	if (kt_b64_decode_exact((const char *)root.p, root.len, c.root.b,
		KT_HASH_SIZE) != KT_OK)
		return KT_EPARSE;
	ext = r.off;
	while (kt_reader_left(&r) > 0) {
		struct kt_bytes line = kt_reader_line(&r);

		/* "Extension lines, if any, MUST be non-empty." */
		if (r.bad || line.len == 0)
			return KT_EPARSE;
	}
	c.ext.p = text + ext;
	c.ext.len = len - ext;
	*out = c;
	return KT_OK;
}

/* Whether ext is empty or a run of non-empty '\n'-terminated lines. */
static int
checkpoint_ext_ok(struct kt_bytes ext)
{
	struct kt_reader r;

	if (ext.len == 0)
		return 1;
	kt_reader_init(&r, ext.p, ext.len);
	while (kt_reader_left(&r) > 0) {
		struct kt_bytes line = kt_reader_line(&r);

		if (r.bad || line.len == 0)
			return 0;
	}
	return 1;
}

int
kt_checkpoint_format(const struct kt_checkpoint *c, struct kt_buf *out)
{
	size_t old = out->len;
	int rc;

	if (c->origin.len == 0 ||
	    memchr(c->origin.p, '\n', c->origin.len) != NULL ||
	    c->size >= KT_SIZE_MAX || !checkpoint_ext_ok(c->ext))
		return KT_EINVAL;
	if ((rc = kt_buf_append(out, c->origin.p, c->origin.len)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK ||
	    (rc = kt_buf_append_u64(out, c->size)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK ||
	    (rc = kt_b64_append(out, c->root.b, KT_HASH_SIZE)) != KT_OK ||
	    (rc = kt_buf_append_byte(out, '\n')) != KT_OK ||
	    (rc = kt_buf_append(out, c->ext.p, c->ext.len)) != KT_OK)
		goto out;
	if (out->len - old > KT_CHECKPOINT_MAX) {
		rc = KT_ETOOBIG;
		goto out;
	}
	rc = KT_OK;
out:
	if (rc != KT_OK)
		kt_buf_truncate(out, old);
	return rc;
}

/*
 * Counts the witnesses that verified, once per distinct public key and
 * never the log's own key: one signer must not fill a quorum alone.
 */
static size_t
checkpoint_count_witnesses(const struct kt_checkpoint_trust *trust,
    const struct kt_note_keyresult *res)
{
	size_t count = 0;

	for (size_t i = 0; i < trust->nwitnesses; i++) {
		const uint8_t *pub = trust->witnesses[i].pub;
		int dup = 0;

		if (!res[i].verified ||
		    memcmp(pub, trust->log->pub, KT_ED25519_PUB_SIZE) == 0)
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = res[j].verified &&
			    memcmp(pub, trust->witnesses[j].pub,
				KT_ED25519_PUB_SIZE) == 0;
		if (!dup)
			count++;
	}
	return count;
}

int
kt_checkpoint_open(const uint8_t *msg, size_t len,
    const struct kt_checkpoint_trust *trust, struct kt_note_keyresult *wresults,
    struct kt_checkpoint *out)
{
	struct kt_note_keyresult *wres = NULL;
	struct kt_note *note = NULL;
	struct kt_checkpoint c;
	size_t nverified;
	int rc;

	if (trust->log == NULL || trust->log->type != KT_NOTE_ED25519 ||
	    trust->quorum > trust->nwitnesses ||
	    (trust->nwitnesses > 0 && trust->witnesses == NULL))
		return KT_EINVAL;
	if ((note = malloc(sizeof(*note))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if (trust->nwitnesses > 0 &&
	    (wres = calloc(trust->nwitnesses, sizeof(*wres))) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if ((rc = kt_note_parse(msg, len, note)) != KT_OK)
		goto out;
	/* The text means nothing until the log's signature verifies. */
	if ((rc = kt_note_verify(note, trust->log, 1, NULL)) != KT_OK)
		goto out;
	if ((rc = kt_checkpoint_parse(note->text.p, note->text.len, &c)) !=
	    KT_OK)
		goto out;
	if (c.origin.len != trust->origin.len ||
	    memcmp(c.origin.p, trust->origin.p, c.origin.len) != 0) {
		rc = KT_EVERIFY;
		goto out;
	}
	if (trust->nwitnesses > 0) {
		rc = kt_note_check(note, trust->witnesses, trust->nwitnesses,
		    wres, &nverified);
		if (rc != KT_OK)
			goto out;
		if (checkpoint_count_witnesses(trust, wres) < trust->quorum) {
			rc = KT_EPOLICY;
			goto out;
		}
		if (wresults != NULL)
			memcpy(
			    wresults, wres, trust->nwitnesses * sizeof(*wres));
	}
	*out = c;
	rc = KT_OK;
out:
	free(wres);
	free(note);
	return rc;
}
