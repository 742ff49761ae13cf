/*
 * keytrail: C2SP tlog-proof@v1 (c2sp.org/tlog-proof), the offline proof
 * that an entry is in the log.
 *
 *   c2sp.org/tlog-proof@v1
 *   extra <base64 of the entry bytes>
 *   index <leaf index, canonical decimal>
 *   <base64 hash>            zero or more: the inclusion proof, from the
 *   ...                      leaf's sibling upward
 *   <empty line>
 *   <the signed checkpoint, verbatim>
 *
 * The "extra" line is optional in C2SP; keytrail's log always writes it
 * and puts the entry itself there, so that the proof verifies offline.
 * Nothing in the file is trusted until kt_tlogproof_verify() accepts it.
 */
#ifndef KEYTRAIL_TLOGPROOF_H
#define KEYTRAIL_TLOGPROOF_H

#include "keytrail/checkpoint.h"
#include "keytrail/common.h"
#include "keytrail/merkle.h"
#include "keytrail/note.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Largest extra data: an entry, which the entry bundles of C2SP
 * tlog-tiles limit to 65,535 bytes (DESIGN.md section 4).
 */
#define KT_TLOGPROOF_EXTRA_MAX 65535

/*
 * Largest proof file: the header, an extra line of KT_TLOGPROOF_EXTRA_MAX
 * bytes (87,380 in base64), the index, KT_PROOF_MAX hashes (45 bytes a
 * line), the blank line and a note of KT_NOTE_MAX bytes come to about
 * 152 KiB.
 */
#define KT_TLOGPROOF_MAX (160 * 1024)

/*
 * A parsed proof.  extra is the base64 text of the extra line (canonical,
 * decoding to at most KT_TLOGPROOF_EXTRA_MAX bytes; see
 * kt_tlogproof_extra()), present only when has_extra is 1.  note is the
 * signed checkpoint.  Both borrow from the parsed text.
 */
struct kt_tlogproof {
	int has_extra;
	struct kt_bytes extra;
	uint64_t index;
	size_t nproof;
	struct kt_hash proof[KT_PROOF_MAX];
	struct kt_bytes note;
};

/*
 * Parses a tlog-proof@v1 text of len bytes.  Strict: exactly the header
 * line; an optional "extra " line of canonical base64; "index " and a
 * canonical decimal below KT_SIZE_MAX; up to KT_PROOF_MAX lines of
 * canonical base64 of 32 bytes; an empty line; and a checkpoint note that
 * kt_note_parse() accepts (its signatures are not checked here).  Returns
 * KT_OK, KT_EPARSE, or KT_ETOOBIG (len above KT_TLOGPROOF_MAX, extra data
 * above KT_TLOGPROOF_EXTRA_MAX, more than KT_PROOF_MAX hashes, an index
 * too large, or the note's limits), or KT_ENOMEM.  Writes *out only on
 * success; *out then borrows from p.
 */
int kt_tlogproof_parse(
    const uint8_t *p, size_t len, struct kt_tlogproof *out) KT_MUST_CHECK;

/*
 * Appends the decoded extra data of tp to out.  Returns KT_OK, KT_ENOTFOUND
 * if tp has no extra line, KT_EPARSE if the extra is not canonical base64
 * (never for a tp from kt_tlogproof_parse()), KT_ENOMEM, or out's errors;
 * out's contents are unchanged on failure.
 */
int kt_tlogproof_extra(
    const struct kt_tlogproof *tp, struct kt_buf *out) KT_MUST_CHECK;

/*
 * Appends a tlog-proof@v1 text to out: extra (NULL for no extra line; an
 * empty one gives "extra " with empty base64), index, the nproof hashes of
 * proof, and the signed checkpoint note[0..notelen), which must pass
 * kt_note_parse().  Returns KT_OK; KT_EINVAL for extra above
 * KT_TLOGPROOF_EXTRA_MAX, index at or above KT_SIZE_MAX, nproof above
 * KT_PROOF_MAX or a note that does not parse; KT_ETOOBIG above
 * KT_TLOGPROOF_MAX; KT_ENOMEM; or out's errors.  out's contents are
 * unchanged on failure.
 */
int kt_tlogproof_format(const struct kt_bytes *extra, uint64_t index,
    const struct kt_hash *proof, size_t nproof, const uint8_t *note,
    size_t notelen, struct kt_buf *out) KT_MUST_CHECK;

/* What a verified proof showed. */
struct kt_tlogproof_result {
	uint64_t index;			 /* the entry's leaf index */
	struct kt_checkpoint checkpoint; /* borrows from the proof text */
};

/*
 * Verifies a tlog-proof@v1 text p[0..len) offline: parses it
 * (kt_tlogproof_parse), opens its checkpoint with trust
 * (kt_checkpoint_open: log signature, origin, witness quorum), requires
 * index < checkpoint size, and checks the inclusion proof of the leaf hash
 * of the extra data against the checkpoint's root (RFC 9162 section
 * 2.1.3.2).  A proof without an extra line is KT_EPARSE: keytrail's
 * entries travel in it.  Returns KT_OK; the errors of kt_tlogproof_parse()
 * and kt_checkpoint_open(); KT_EVERIFY for an index outside the tree or a
 * wrong inclusion proof; KT_ENOMEM; or entry's errors.  On success only:
 * appends the entry bytes (now known to be in the log) to entry if it is
 * not NULL, fills *res if it is not NULL (borrowing from p), and stores
 * one result per trusted witness in wresults if it is not NULL.
 */
int kt_tlogproof_verify(const uint8_t *p, size_t len,
    const struct kt_checkpoint_trust *trust, struct kt_note_keyresult *wresults,
    struct kt_buf *entry, struct kt_tlogproof_result *res) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
