/*
 * keytrail: C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint).
 *
 * A checkpoint is the text of a signed note: the log's origin, the tree
 * size in decimal, the base64 root hash, then optional non-empty
 * extension lines, each line ending in '\n'.  keytrail's log writes no
 * extension lines but accepts them from others.  Parsing is strict: one
 * spelling per value (canonical decimal and canonical base64).
 *
 * kt_checkpoint_open() is what a client uses: it verifies the note with
 * the log's key (and witnesses' cosignatures, if asked), parses the body
 * and checks the origin.
 */
#ifndef KEYTRAIL_CHECKPOINT_H
#define KEYTRAIL_CHECKPOINT_H

#include "keytrail/common.h"
#include "keytrail/merkle.h"
#include "keytrail/note.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Longest checkpoint text kt_checkpoint_parse() reads on its own.  A
 * checkpoint inside a note is already bounded by KT_NOTE_MAX; this cap
 * only bounds a stand-alone parse, which allocates nothing and runs in
 * linear time, so it leaves room for long extension lines (C2SP sets no
 * limit on them).
 */
#define KT_CHECKPOINT_MAX (1024 * 1024)

/*
 * A checkpoint body.  origin (without its newline) and ext borrow from the
 * parsed text.  ext holds the extension lines verbatim, each ending in
 * '\n'; it is empty (len 0) when there are none.
 */
struct kt_checkpoint {
	struct kt_bytes origin;
	uint64_t size;
	struct kt_hash root;
	struct kt_bytes ext;
};

/*
 * Parses a checkpoint text of len bytes (the note text, final newline
 * included).  Requires at least three lines, all newline-terminated: a
 * non-empty origin; a size in canonical decimal below KT_SIZE_MAX; a root
 * that is canonical base64 of exactly 32 bytes; and then only non-empty
 * extension lines.  Character rules (UTF-8, control characters) belong to
 * the note and are checked by kt_note_parse(), not here.  Returns KT_OK,
 * KT_EPARSE, or KT_ETOOBIG (len above KT_CHECKPOINT_MAX, or a size too
 * large).  Writes *out only on success; *out then borrows from text.
 */
int kt_checkpoint_parse(
    const uint8_t *text, size_t len, struct kt_checkpoint *out) KT_MUST_CHECK;

/*
 * Appends the text of checkpoint c to out: origin, size, root, then c->ext
 * verbatim (keytrail's log passes none).  Returns KT_OK, KT_EINVAL when c
 * could not be parsed back (empty origin or one holding '\n', size at or
 * above KT_SIZE_MAX, ext not made of non-empty newline-terminated lines),
 * KT_ETOOBIG above KT_CHECKPOINT_MAX, or out's errors.  out's contents are
 * unchanged on failure.
 */
int kt_checkpoint_format(
    const struct kt_checkpoint *c, struct kt_buf *out) KT_MUST_CHECK;

/*
 * What a client trusts for one log: the log's key (type KT_NOTE_ED25519),
 * the origin it expects, and optionally the witnesses whose cosignatures
 * count and how many of them must have cosigned (quorum, which must not
 * exceed nwitnesses).  All pointers are borrowed.
 */
struct kt_checkpoint_trust {
	const struct kt_note_vkey *log;
	struct kt_bytes origin;
	const struct kt_note_vkey *witnesses;
	size_t nwitnesses;
	size_t quorum;
};

/*
 * Opens a signed checkpoint msg[0..len): parses the note, verifies it with
 * trust->log (kt_note_verify), parses its text as a checkpoint, checks
 * that the origin equals trust->origin, and checks the witnesses'
 * signatures (kt_note_check).  Witnesses count towards the quorum once per
 * distinct public key, and never with the log's own key.  Returns KT_OK;
 * the errors of kt_note_parse() and kt_checkpoint_parse(); KT_EVERIFY if
 * the log did not sign, a signature of the log or of a trusted witness
 * fails, or the origin differs; KT_EPOLICY if fewer than trust->quorum
 * witnesses cosigned; KT_EINVAL for a bad trust; KT_ENOMEM; KT_EINTERNAL.
 * On success writes *out (borrowing from msg) and, if wresults is not
 * NULL, one result per witness in wresults[0..trust->nwitnesses).
 */
int kt_checkpoint_open(const uint8_t *msg, size_t len,
    const struct kt_checkpoint_trust *trust, struct kt_note_keyresult *wresults,
    struct kt_checkpoint *out) KT_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
