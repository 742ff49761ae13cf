/*
 * keytrail signer: the signing policy (DESIGN.md section 7).
 *
 * A policy is a JSON document naming the principals (each with the SHA-256
 * of its bearer token and its roles) and, for every HSM key that may sign,
 * who may request a signature, for which artifact names, with how many
 * approvals from whom, at which hours, how often, and during which
 * validity window.  docs/policy.md describes the format field by field.
 *
 * This module decides; it does not act.  It parses and validates a policy
 * document, authenticates bearer tokens against it, decides sign requests
 * and approvals, and keeps the two small pieces of mutable state a
 * decision needs besides the document: per principal and key rate limits
 * (struct policy_rate) and the per-peer slowdown after failed
 * authentications (struct policy_throttle).  It performs no I/O (except
 * policy_load_file(), which only reads the file into memory), never logs,
 * and keeps no global state.
 *
 * Rules that hold whatever the document says: a requester never approves
 * its own request; a principal counts once towards a quorum; a revoked key,
 * a key outside its validity window, a key whose certificate has expired,
 * and a key below P-256 / RSA-3072 (or with an algorithm this module does
 * not know, SHA-1 included) never signs.
 *
 * Threads.  A parsed struct policy is immutable: any number of threads may
 * use one at once, and the pointers it hands out (principals, names, the
 * document) stay valid until policy_free().  A process reloading its
 * policy swaps in a new one and frees the old one once no thread uses it.
 * struct policy_rate and struct policy_throttle carry their own mutex and
 * may be shared by all threads; they outlive any one policy.
 *
 * Errors.  Functions return KT_OK or a negative KT_E* code.  Parse errors
 * are also written to err (NUL-terminated, truncated to errlen; err may be
 * NULL) as one line that starts with the JSON path of the offending field,
 * e.g. "keys.release.approvals.required: must be an integer from 0 to 16";
 * problems with the document as a whole (not JSON, a duplicate object key,
 * too large) start with "$".
 */
#ifndef KT_SIGNER_POLICY_H
#define KT_SIGNER_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest policy document, in bytes. */
#define POLICY_FILE_MAX (1024 * 1024)
/* At most this many principals and keys in one policy. */
#define POLICY_PRINCIPALS_MAX 256
#define POLICY_KEYS_MAX 256
/* Longest principal name and key label, in bytes. */
#define POLICY_NAME_MAX 64
#define POLICY_LABEL_MAX 128
/* At most this many artifact patterns per key, each at most this long. */
#define POLICY_PATTERNS_MAX 64
#define POLICY_PATTERN_MAX 256
/* Longest artifact name a key's patterns are matched against. */
#define POLICY_ARTIFACT_MAX 1024
/* Most approvals a key can require, and most principals in its set. */
#define POLICY_APPROVALS_MAX 16
#define POLICY_APPROVERS_MAX 64
/* Highest rate limit, in signatures per hour. */
#define POLICY_RATE_MAX 1000000
/* Bounds and default of requests.expire_seconds. */
#define POLICY_EXPIRE_MIN 60
#define POLICY_EXPIRE_MAX (30 * 86400)
#define POLICY_EXPIRE_DEFAULT 86400
/*
 * Times are Unix seconds from 0 to the end of year 9999 UTC; anything else
 * passed as "now" is a caller bug (KT_EINVAL).
 */
#define POLICY_TIME_MAX INT64_C(253402300799)
/* A good size for err buffers, and the size of decision details. */
#define POLICY_ERR_SIZE 256
#define POLICY_DETAIL_SIZE 192
/* Length of the hex SHA-256 of a policy, without the NUL. */
#define POLICY_SHA256_LEN 64

/* Roles a principal can hold, as a bitmask. */
enum {
	POLICY_ROLE_REQUESTER = 1 << 0, /* "requester": asks for signatures */
	POLICY_ROLE_APPROVER = 1 << 1,	/* "approver": approves requests */
	POLICY_ROLE_SUBMITTER = 1 << 2, /* "submitter": POST /v1/entries */
	POLICY_ROLE_ADMIN = 1 << 3	/* "admin": manages keys */
};

struct policy;

/* A principal; it lives as long as the policy it came from. */
struct policy_principal {
	char name[POLICY_NAME_MAX + 1];
	unsigned roles; /* POLICY_ROLE_* bits */
};

/*
 * Parses and validates the policy document doc[0..len) (DESIGN.md section
 * 7, docs/policy.md).  The bytes are copied: the caller keeps doc.  On
 * success *out owns a new policy (free it with policy_free()).  Returns
 * KT_OK, KT_EPARSE (not JSON, a duplicate key, an unknown field, a wrong
 * type, a value out of range, an inconsistency such as a quorum that can
 * never be reached), KT_ETOOBIG (len > POLICY_FILE_MAX, or more than
 * POLICY_PRINCIPALS_MAX principals or POLICY_KEYS_MAX keys), KT_EINVAL
 * (doc is NULL) or KT_ENOMEM, with the reason in err.  *out is written
 * only on success.
 */
int policy_parse(const uint8_t *doc, size_t len, struct policy **out, char *err,
    size_t errlen) KT_MUST_CHECK;

/*
 * Reads the regular file at path (at most POLICY_FILE_MAX bytes) and
 * parses it with policy_parse().  Returns what policy_parse() returns, or
 * KT_ENOTFOUND (no such file) or KT_EIO (unreadable, not a regular file),
 * with the reason in err; messages about the file start with its path,
 * messages about its contents with the JSON path, as for policy_parse().
 * *out is written only on success.
 */
int policy_load_file(const char *path, struct policy **out, char *err,
    size_t errlen) KT_MUST_CHECK;

/* Frees p and everything it handed out.  policy_free(NULL) is a no-op. */
void policy_free(struct policy *p);

/*
 * The lowercase hex SHA-256 of the exact document bytes (64 digits and a
 * NUL).  Log entries name a policy by it.  Owned by p.
 */
const char *policy_sha256(const struct policy *p);

/*
 * The document bytes p was parsed from, as served at
 * /v1/policy/<sha256>.  Borrowed from p.
 */
struct kt_bytes policy_document(const struct policy *p);

/*
 * How long, in seconds, a sign request waiting for approvals stays open
 * (requests.expire_seconds).
 */
uint32_t policy_request_expire(const struct policy *p);

/* The principal called name, or NULL.  Borrowed from p. */
const struct policy_principal *policy_principal_find(
    const struct policy *p, const char *name);

/*
 * The principal whose token hashes to the token_sha256 of the policy, or
 * NULL.  The token's SHA-256 is compared with every principal's hash in
 * constant time, without stopping at a match, so the time taken says
 * nothing about which principal (if any) matched.  The hash is wiped
 * before returning.  An empty token matches nobody.  Borrowed from p.
 */
const struct policy_principal *policy_authenticate(
    const struct policy *p, const uint8_t *token, size_t len) KT_MUST_CHECK;

/*
 * The strength of a signing algorithm, in bits of security of its key
 * (docs/policy.md, "Algorithms"): 128 for "ed25519", "ecdsa-p256-sha256"
 * and "rsa3072-pss-sha256", 152 for "rsa4096-pss-sha256", 192 for
 * "ecdsa-p384-sha256", and 0 for every other name, which never signs.
 */
unsigned policy_alg_strength(const char *alg);

/* Why a request was decided as it was; policy_reason_name() spells it. */
enum policy_reason {
	POLICY_REASON_OK = 0,		    /* "ok" */
	POLICY_REASON_NEEDS_APPROVAL,	    /* "needs_approval" */
	POLICY_REASON_INVALID,		    /* "invalid_request": caller bug */
	POLICY_REASON_UNKNOWN_KEY,	    /* "unknown_key" */
	POLICY_REASON_UNKNOWN_PRINCIPAL,    /* "unknown_principal" */
	POLICY_REASON_NOT_REQUESTER,	    /* "not_requester" */
	POLICY_REASON_KEY_REVOKED,	    /* "key_revoked" */
	POLICY_REASON_WEAK_ALGORITHM,	    /* "weak_algorithm" */
	POLICY_REASON_CERTIFICATE_EXPIRED,  /* "certificate_expired" */
	POLICY_REASON_OUTSIDE_VALIDITY,	    /* "outside_validity" */
	POLICY_REASON_ARTIFACT_NOT_ALLOWED, /* "artifact_not_allowed" */
	POLICY_REASON_OUTSIDE_HOURS,	    /* "outside_hours" */
	POLICY_REASON_RATE_LIMITED,	    /* "rate_limited" */
	POLICY_REASON_SELF_APPROVAL,	    /* "self_approval" */
	POLICY_REASON_NOT_APPROVER	    /* "not_approver" */
};

/* The machine-readable name of r (see the enum); never NULL. */
const char *policy_reason_name(enum policy_reason r);

/* What the caller knows about the key; 0 is deliberately no state. */
enum policy_key_state {
	POLICY_KEY_ACTIVE = 1,
	POLICY_KEY_REVOKED = 2
};

/* A request to sign, as policy_check_sign() sees it. */
struct policy_sign_request {
	const char *principal; /* authenticated principal's name */
	const char *key;       /* HSM label of the key */
	const char *alg;       /* the key's algorithm, as in log entries */
	enum policy_key_state key_state;
	int64_t cert_not_after; /* certificate notAfter; 0: no certificate */
	const char *artifact;	/* artifact name; NULL or "": none */
	int64_t now;		/* Unix seconds */
};

enum policy_verdict {
	POLICY_DENY = 0,
	POLICY_ALLOW,
	POLICY_NEEDS_APPROVAL
};

struct policy_decision {
	enum policy_verdict verdict;
	enum policy_reason reason;
	char detail[POLICY_DETAIL_SIZE]; /* one sentence for people */
	/* With POLICY_NEEDS_APPROVAL: how many, and who may give them. */
	unsigned required;
	size_t napprovers;
	const char *approvers[POLICY_APPROVERS_MAX]; /* borrowed from p */
};

/*
 * Decides whether req may be signed now under p.  Checks, in this order,
 * and stops at the first that fails: the key is in the policy
 * (unknown_key); the principal is declared (unknown_principal), holds the
 * requester role and is one of the key's requesters (not_requester); the
 * key is not revoked (key_revoked); its algorithm is known, at least
 * P-256 / RSA-3072 strong and at least the key's min_alg
 * (weak_algorithm); its certificate, if any, has not expired
 * (certificate_expired); now is inside the key's validity window
 * (outside_validity); the artifact name matches the key's patterns
 * (artifact_not_allowed); now is inside the key's hours (outside_hours).
 * Rate limits are not checked here: see policy_rate_take().
 *
 * Always writes *out.  Returns KT_OK only when the verdict is
 * POLICY_ALLOW: the key may sign right away.  Returns KT_EPOLICY with
 * POLICY_NEEDS_APPROVAL (every check passed, and the key needs
 * out->required approvals from out->approvers, the key's approver set
 * without the requester) or with POLICY_DENY and the reason.  Returns
 * KT_EINVAL (verdict POLICY_DENY, reason invalid_request) when a string
 * is NULL, key_state is neither value, or now is outside 0 to
 * POLICY_TIME_MAX.
 *
 * A request that needed approvals is decided again, with the policy then
 * in force and the current time, when its quorum is complete
 * (policy_check_approval()): it signs only if that decision is
 * POLICY_NEEDS_APPROVAL and the quorum still holds.
 */
int policy_check_sign(const struct policy *p,
    const struct policy_sign_request *req,
    struct policy_decision *out) KT_MUST_CHECK;

struct policy_approval {
	enum policy_reason reason;	 /* POLICY_REASON_OK or why refused */
	char detail[POLICY_DETAIL_SIZE]; /* one sentence for people */
	int counted;			 /* this approval added one */
	unsigned have;			 /* approvals that count now */
	unsigned required;		 /* the key's quorum */
	int complete;			 /* have >= required */
};

/*
 * Decides whether approver may approve requester's pending request for
 * key, given the approvals already recorded for it (already[0..nalready),
 * principal names, in any order, repeats allowed).  Refused, whatever the
 * document says: approving one's own request (self_approval); an
 * approver who is not declared (unknown_principal), lacks the approver
 * role or is not in the key's approver set (not_approver); a key the
 * policy does not know (unknown_key).  The recorded approvals are counted
 * again under p: each principal once, and only those that p still lets
 * approve this request.  An approver found in already is accepted but not
 * counted again (out->counted 0).  With approver NULL nothing is
 * approved: the recorded approvals are only counted (after a reload, say).
 *
 * Always writes *out.  Returns KT_OK when the approval is accepted (then
 * out->complete says whether the quorum is reached), KT_EPOLICY when it
 * is refused (out->reason says why; have, required and complete still
 * describe the recorded approvals when the key is known), or KT_EINVAL
 * (reason invalid_request) when key, requester or an entry of already is
 * NULL.
 */
int policy_check_approval(const struct policy *p, const char *key,
    const char *requester, const char *approver, const char *const *already,
    size_t nalready, struct policy_approval *out) KT_MUST_CHECK;

/*
 * Per principal and key rate limits (a key's rate.per_hour).  A token
 * bucket per (principal, key) pair holds per_hour tokens and refills at
 * per_hour tokens an hour; each sign request takes one.  The state does
 * not belong to any one policy: a reload keeps the buckets, and a changed
 * per_hour applies from the next request.  Memory is bounded: at most
 * max_pairs pairs are tracked; a new pair then replaces the one whose
 * bucket is fullest (a full bucket carries no information).
 */
/*
 * The label and per_hour rate limit (0: none) of key in p, for the rate
 * limiter (limits.c).  Returns KT_OK, KT_ENOTFOUND or KT_EINVAL; *label
 * borrows from p.
 */
int policy_key_rate(const struct policy *p, const char *key, const char **label,
    uint32_t *per_hour) KT_MUST_CHECK;

struct policy_rate;

/* Pairs tracked when policy_rate_new() is given 0. */
#define POLICY_RATE_PAIRS_DEFAULT 4096

/*
 * Creates an empty rate limiter tracking at most max_pairs pairs (0:
 * POLICY_RATE_PAIRS_DEFAULT).  Returns KT_OK or KT_ENOMEM; *out is
 * written only on success.
 */
int policy_rate_new(size_t max_pairs, struct policy_rate **out) KT_MUST_CHECK;

/* Frees r.  policy_rate_free(NULL) is a no-op. */
void policy_rate_free(struct policy_rate *r);

/*
 * Takes one token from the bucket of (principal, key) at time now under
 * the limits of p.  Returns KT_OK (taken, or the key has no rate limit),
 * KT_EPOLICY when the bucket is empty (nothing taken; *retry_after, if
 * not NULL, is set to the seconds until a token is back, at least 1),
 * KT_ENOTFOUND when p has no such key, or KT_EINVAL (a NULL name, a
 * principal name longer than POLICY_NAME_MAX, now outside 0 to
 * POLICY_TIME_MAX).  Take a token when a request is
 * accepted (allowed, or pending approval), before anything is signed.
 */
int policy_rate_take(struct policy_rate *r, const struct policy *p,
    const char *principal, const char *key, int64_t now,
    int64_t *retry_after) KT_MUST_CHECK;

/*
 * The slowdown after failed authentications, per peer.  Each failure
 * adds one to the peer's count; the count drains by one every
 * POLICY_THROTTLE_DRAIN seconds.  Once the count reaches
 * POLICY_THROTTLE_FREE, the peer is refused for 2^(count - FREE) seconds
 * after its latest failure (1, 2, 4, ... up to POLICY_THROTTLE_WAIT_MAX):
 * a burst is answered with a fast-growing wait, and in the long run a
 * peer makes about one attempt per drain period.  At most max_peers peers
 * are tracked; a new peer then replaces the one whose latest failure is
 * oldest.  Peers are strings chosen by the caller (an IPv4 address; for
 * IPv6, the /64 prefix, as one host usually owns a whole /64); only the
 * first POLICY_PEER_MAX bytes count.
 */
struct policy_throttle;

#define POLICY_THROTTLE_FREE 5
#define POLICY_THROTTLE_DRAIN 12
#define POLICY_THROTTLE_WAIT_MAX 900
#define POLICY_THROTTLE_PEERS_DEFAULT 4096
#define POLICY_PEER_MAX 63

/*
 * Creates an empty tracker for at most max_peers peers (0:
 * POLICY_THROTTLE_PEERS_DEFAULT).  Returns KT_OK or KT_ENOMEM; *out is
 * written only on success.
 */
int policy_throttle_new(
    size_t max_peers, struct policy_throttle **out) KT_MUST_CHECK;

/* Frees t.  policy_throttle_free(NULL) is a no-op. */
void policy_throttle_free(struct policy_throttle *t);

/*
 * How many seconds peer must still wait at time now before its next
 * authentication attempt is looked at (0: go ahead).  While it is not 0,
 * refuse the request (429, Retry-After) without checking its token and
 * without calling policy_throttle_fail().
 */
int64_t policy_throttle_wait(
    struct policy_throttle *t, const char *peer, int64_t now) KT_MUST_CHECK;

/*
 * Records a failed authentication by peer at time now.  A success
 * changes nothing: it proves only that one token is known, not that the
 * failures were innocent.
 */
void policy_throttle_fail(
    struct policy_throttle *t, const char *peer, int64_t now);

#ifdef __cplusplus
}
#endif
#endif
