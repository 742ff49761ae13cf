/*
 * POST /v1/sign and /v1/requests end to end: the real keytrail-logd with
 * its SoftHSM signing keys, driven through a table of policy cases.  Each
 * case states the HTTP status, the error word or the fields of the
 * answer, and whether the transparency log grew by one entry (the tree
 * size of the signed checkpoint before and after).  Every signature
 * handed out is verified against the key's public key, its proof against
 * the log's key, and its logged entry field by field.
 *
 * The policy changes between phases (policy.json rewritten, SIGHUP); time
 * moves through KEYTRAIL_TEST_CLOCK, a file holding the offset in seconds
 * that the daemon adds to its clock for policy decisions.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "e2e.h"
#include "hsm.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/note.h"
#include "keytrail/tlogproof.h"

/*
 * Entries a fresh development log starts with: the policy in force and
 * the creation of the default and release keys.
 */
#define SETUP_ENTRIES 3
/* Pending requests a test keeps track of. */
#define SLOTS 8
/* Request ID of no request (well-formed: 32 hex digits). */
#define NO_SUCH_REQUEST "00112233445566778899aabbccddeeff"
/* Fixed instants for validity windows (Unix seconds, UTC). */
#define T_2090_01_01 INT64_C(3786912000)
#define T_2090_03_01 INT64_C(3792009600)
#define T_2090_07_01 INT64_C(3802550400)
#define T_2091_01_01 INT64_C(3818448000)
/* Seconds since 00:00 UTC. */
#define TOD(h, m, s) ((int64_t)(h)*3600 + (m)*60 + (s))

enum case_op {
	OP_SIGN,    /* POST /v1/sign */
	OP_GET,	    /* GET /v1/requests/<id> */
	OP_APPROVE, /* POST /v1/requests/<id>/approve */
	OP_DENY,    /* POST /v1/requests/<id>/deny */
	OP_REVOKE   /* POST /v1/keys {"action": "revoke"} */
};

/* How a case sets the policy clock. */
enum case_clock {
	CLK_REL, /* clock seconds from now (0: the real time) */
	CLK_TOD, /* today at clock seconds after 00:00 UTC */
	CLK_ABS	 /* at the Unix time clock */
};

struct sign_case {
	const char *desc;
	/* Bearer token of this principal; NULL: none; "?": an unknown one. */
	const char *who;
	enum case_op op;
	/* OP_SIGN, OP_REVOKE: a key label, or "#label" for its key ID. */
	const char *key;
	const char *artifact; /* OP_SIGN: artifact name; NULL: none */
	const char *reason;   /* OP_DENY: the reason sent, if any */
	/*
	 * OP_SIGN: where a 202's request is kept; the other request ops use
	 * it, and -1 names a request that does not exist.
	 */
	int slot;
	enum case_clock clk;
	int64_t clock;
	int cli; /* also verify with `openssl dgst -verify` */
	/* Expected: */
	int status;
	const char *error;     /* the error word of a refusal */
	const char *state;     /* a record's "status"; NULL for a direct sign */
	const char *approvers; /* sorted, comma-separated ("" for none) */
	unsigned needed;       /* a pending record's quorum */
	const char *from;      /* and who may approve (sorted) */
	int logged;	       /* one log entry appended (else none) */
};

enum {
	RESTART = 1,
	RESTART_TOKEN_OBJECTS,
	RESTART_COPIES
};

struct phase {
	const char *name;
	/*
	 * The policy's "keys" and "requests" (single quotes stand for double
	 * quotes); keys NULL keeps the policy in force.
	 */
	const char *keys;
	const char *requests;
	int broken; /* write a broken policy: the reload must be refused */
	/*
	 * Restart the daemon first: RESTART, or RESTART_TOKEN_OBJECTS /
	 * RESTART_COPIES to make it sign with its keys' token objects or
	 * (the default) session copies (hsm.session_copies) from then on.
	 */
	int restart;
	const struct sign_case *cases;
	size_t ncases;
};

/* Principals added to the development ones. */
static const struct {
	const char *name;
	const char *roles[2];
} extra_principals[] = {
	{ "carol", { "approver", NULL } },
	{ "dave", { "approver", NULL } },
	{ "erin", { "approver", NULL } },
	{ "frank", { "requester", "approver" } },
	{ "mallory", { "requester", NULL } },
};

/* ---- the table ----------------------------------------------------------- */

/* clang-format off */
/* The development policy as set up: default free, release 1 of alice/bob. */
static const struct sign_case cases_dev[] = {
	{ .desc = "ci signs f.txt with default: allowed, openssl verifies",
	  .who = "ci", .op = OP_SIGN, .key = "default", .artifact = "f.txt",
	  .cli = 1, .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "ci signs an anonymous digest by key ID: allowed",
	  .who = "ci", .op = OP_SIGN, .key = "#default", .status = 200,
	  .approvers = "", .logged = 1 },
	{ .desc = "ci asks release: pending, 1 of alice or bob",
	  .who = "ci", .op = OP_SIGN, .key = "release",
	  .artifact = "app-1.4.2.tar.gz", .slot = 0, .status = 202,
	  .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "ci (no approver role) approves its own request: forbidden",
	  .who = "ci", .op = OP_APPROVE, .slot = 0, .status = 403,
	  .error = "forbidden" },
	{ .desc = "alice reads the pending request",
	  .who = "alice", .op = OP_GET, .slot = 0, .status = 200,
	  .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "alice approves: quorum, signed, entry lists alice",
	  .who = "alice", .op = OP_APPROVE, .slot = 0, .status = 200,
	  .state = "signed", .approvers = "alice", .logged = 1 },
	{ .desc = "bob approves the signed request: conflict",
	  .who = "bob", .op = OP_APPROVE, .slot = 0, .status = 409,
	  .error = "conflict" },
	{ .desc = "ci reads its request: signed",
	  .who = "ci", .op = OP_GET, .slot = 0, .status = 200,
	  .state = "signed", .approvers = "alice", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "alice (approver only) asks for a signature: forbidden",
	  .who = "alice", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "forbidden" },
	{ .desc = "no bearer token: unauthenticated",
	  .who = NULL, .op = OP_SIGN, .key = "default", .status = 401,
	  .error = "unauthenticated" },
	{ .desc = "an unknown bearer token: unauthenticated",
	  .who = "?", .op = OP_SIGN, .key = "default", .status = 401,
	  .error = "unauthenticated" },
	{ .desc = "a key label the HSM does not hold: unknown_key",
	  .who = "ci", .op = OP_SIGN, .key = "nope", .status = 404,
	  .error = "unknown_key" },
};

/* Artifact patterns, an unknown requester, 2 of 4 approvals. */
static const struct sign_case cases_rich[] = {
	{ .desc = "app.tar.gz matches *.tar.gz: allowed",
	  .who = "ci", .op = OP_SIGN, .key = "default",
	  .artifact = "app.tar.gz", .status = 200, .approvers = "",
	  .logged = 1 },
	{ .desc = "dist/app.tar.gz: * crosses /, allowed",
	  .who = "ci", .op = OP_SIGN, .key = "default",
	  .artifact = "dist/app.tar.gz", .status = 200, .approvers = "",
	  .logged = 1 },
	{ .desc = "app.tar.gz.sig: the whole name must match",
	  .who = "ci", .op = OP_SIGN, .key = "default",
	  .artifact = "app.tar.gz.sig", .status = 403,
	  .error = "artifact_not_allowed" },
	{ .desc = "no artifact name without a * pattern",
	  .who = "ci", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "artifact_not_allowed" },
	{ .desc = "pkg-1.deb matches pkg-?.deb: allowed",
	  .who = "ci", .op = OP_SIGN, .key = "default", .artifact = "pkg-1.deb",
	  .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "pkg-10.deb: ? is exactly one byte",
	  .who = "ci", .op = OP_SIGN, .key = "default",
	  .artifact = "pkg-10.deb", .status = 403,
	  .error = "artifact_not_allowed" },
	{ .desc = "mallory is a requester, but not default's",
	  .who = "mallory", .op = OP_SIGN, .key = "default",
	  .artifact = "app.tar.gz", .status = 403, .error = "not_requester" },
	{ .desc = "ghost is in the policy but not in the HSM",
	  .who = "ci", .op = OP_SIGN, .key = "ghost", .status = 404,
	  .error = "unknown_key" },
	{ .desc = "ci asks release: pending, 2 of carol/dave/erin/frank",
	  .who = "ci", .op = OP_SIGN, .key = "release",
	  .artifact = "rel.tar.gz", .slot = 1, .status = 202,
	  .state = "pending", .approvers = "", .needed = 2,
	  .from = "carol,dave,erin,frank" },
	{ .desc = "carol approves: 1 of 2, no entry",
	  .who = "carol", .op = OP_APPROVE, .slot = 1, .status = 200,
	  .state = "pending", .approvers = "carol", .needed = 2,
	  .from = "carol,dave,erin,frank" },
	{ .desc = "carol approves again: counted once",
	  .who = "carol", .op = OP_APPROVE, .slot = 1, .status = 200,
	  .state = "pending", .approvers = "carol", .needed = 2,
	  .from = "carol,dave,erin,frank" },
	{ .desc = "alice is an approver, but not release's",
	  .who = "alice", .op = OP_APPROVE, .slot = 1, .status = 403,
	  .error = "not_approver" },
	{ .desc = "dave approves: 2 of 2, signed",
	  .who = "dave", .op = OP_APPROVE, .slot = 1, .status = 200,
	  .state = "signed", .approvers = "carol,dave", .logged = 1 },
	{ .desc = "erin approves the signed request: conflict",
	  .who = "erin", .op = OP_APPROVE, .slot = 1, .status = 409,
	  .error = "conflict" },
	{ .desc = "frank asks release: pending, frank not among approvers",
	  .who = "frank", .op = OP_SIGN, .key = "release",
	  .artifact = "frank.tar.gz", .slot = 2, .status = 202,
	  .state = "pending", .approvers = "", .needed = 2,
	  .from = "carol,dave,erin" },
	{ .desc = "frank approves his own request: self_approval",
	  .who = "frank", .op = OP_APPROVE, .slot = 2, .status = 403,
	  .error = "self_approval" },
	{ .desc = "erin denies frank's request",
	  .who = "erin", .op = OP_DENY, .reason = "not a release", .slot = 2,
	  .status = 200, .state = "denied", .approvers = "", .needed = 2,
	  .from = "carol,dave,erin" },
	{ .desc = "carol approves the denied request: conflict",
	  .who = "carol", .op = OP_APPROVE, .slot = 2, .status = 409,
	  .error = "conflict" },
	{ .desc = "frank reads his request: denied",
	  .who = "frank", .op = OP_GET, .slot = 2, .status = 200,
	  .state = "denied", .approvers = "", .needed = 2,
	  .from = "carol,dave,erin" },
	{ .desc = "reading a request that does not exist",
	  .who = "ci", .op = OP_GET, .slot = -1, .status = 404,
	  .error = "not_found" },
	{ .desc = "approving a request that does not exist",
	  .who = "carol", .op = OP_APPROVE, .slot = -1, .status = 404,
	  .error = "not_found" },
};

/* default signs 08:00-09:00 UTC (as 10:00-11:00 at +02:00). */
static const struct sign_case cases_hours[] = {
	{ .desc = "12:00 UTC: outside the hours",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_TOD,
	  .clock = TOD(12, 0, 0), .status = 403, .error = "outside_hours" },
	{ .desc = "08:30 UTC: inside",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_TOD,
	  .clock = TOD(8, 30, 0), .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "08:00:00 UTC: from is inclusive",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_TOD,
	  .clock = TOD(8, 0, 0), .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "09:00:00 UTC: to is exclusive",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_TOD,
	  .clock = TOD(9, 0, 0), .status = 403, .error = "outside_hours" },
	{ .desc = "07:59 UTC: before the window",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_TOD,
	  .clock = TOD(7, 59, 0), .status = 403, .error = "outside_hours" },
	{ .desc = "release has min_alg P-384, the key is P-256",
	  .who = "ci", .op = OP_SIGN, .key = "release", .status = 403,
	  .error = "weak_algorithm" },
};

/* default valid in 2090 only; release 2 signatures an hour. */
static const struct sign_case cases_window[] = {
	{ .desc = "now: before not_before",
	  .who = "ci", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "outside_validity" },
	{ .desc = "at not_before exactly: allowed",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_ABS,
	  .clock = T_2090_01_01, .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "mid-2090: allowed",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_ABS,
	  .clock = T_2090_07_01, .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "at not_after exactly: refused",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_ABS,
	  .clock = T_2091_01_01, .status = 403, .error = "outside_validity" },
	{ .desc = "release, 1st of 2 per hour",
	  .who = "ci", .op = OP_SIGN, .key = "release", .status = 200,
	  .approvers = "", .logged = 1 },
	{ .desc = "release, 2nd of 2 per hour",
	  .who = "ci", .op = OP_SIGN, .key = "release", .status = 200,
	  .approvers = "", .logged = 1 },
	{ .desc = "release, 3rd in the hour: rate_limited",
	  .who = "ci", .op = OP_SIGN, .key = "release", .status = 429,
	  .error = "rate_limited" },
	{ .desc = "an hour later: allowed again",
	  .who = "ci", .op = OP_SIGN, .key = "release", .clk = CLK_REL,
	  .clock = 3600, .status = 200, .approvers = "", .logged = 1 },
};

/* A broken policy file: refused, the 2090 window stays in force. */
static const struct sign_case cases_broken[] = {
	{ .desc = "old policy: still before not_before",
	  .who = "ci", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "outside_validity" },
	{ .desc = "old policy: allowed in 2090",
	  .who = "ci", .op = OP_SIGN, .key = "default", .clk = CLK_ABS,
	  .clock = T_2090_03_01, .status = 200, .approvers = "", .logged = 1 },
};

/* Requests expire after 60 s. */
static const struct sign_case cases_expire[] = {
	{ .desc = "ci asks release: pending for 60 s",
	  .who = "ci", .op = OP_SIGN, .key = "release", .slot = 3,
	  .status = 202, .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "120 s later alice approves: conflict (expired)",
	  .who = "alice", .op = OP_APPROVE, .slot = 3, .clock = 120,
	  .status = 409, .error = "conflict" },
	{ .desc = "120 s later the request reads as expired",
	  .who = "ci", .op = OP_GET, .slot = 3, .clock = 120, .status = 200,
	  .state = "expired", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "ci asks release again",
	  .who = "ci", .op = OP_SIGN, .key = "release", .slot = 4,
	  .status = 202, .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
	{ .desc = "30 s later bob approves in time: signed",
	  .who = "bob", .op = OP_APPROVE, .slot = 4, .clock = 30, .status = 200,
	  .state = "signed", .approvers = "bob", .logged = 1 },
};

/* release 1 of alice/bob within 08:00-09:00 UTC: decided again at quorum. */
static const struct sign_case cases_redecide[] = {
	{ .desc = "08:30 UTC ci asks release: pending",
	  .who = "ci", .op = OP_SIGN, .key = "release",
	  .artifact = "late.tar.gz", .slot = 5, .clk = CLK_TOD,
	  .clock = TOD(8, 30, 0), .status = 202, .state = "pending",
	  .approvers = "", .needed = 1, .from = "alice,bob" },
	{ .desc = "12:00 UTC alice completes the quorum: outside_hours",
	  .who = "alice", .op = OP_APPROVE, .slot = 5, .clk = CLK_TOD,
	  .clock = TOD(12, 0, 0), .status = 403, .error = "outside_hours" },
	{ .desc = "the refused approval was not recorded",
	  .who = "ci", .op = OP_GET, .slot = 5, .clk = CLK_TOD,
	  .clock = TOD(12, 0, 0), .status = 200, .state = "pending",
	  .approvers = "", .needed = 1, .from = "alice,bob" },
	{ .desc = "08:45 UTC bob approves: signed",
	  .who = "bob", .op = OP_APPROVE, .slot = 5, .clk = CLK_TOD,
	  .clock = TOD(8, 45, 0), .status = 200, .state = "signed",
	  .approvers = "bob", .logged = 1 },
	{ .desc = "08:30 UTC ci asks release: pending (to be revoked)",
	  .who = "ci", .op = OP_SIGN, .key = "release",
	  .artifact = "revoked.tar.gz", .slot = 6, .clk = CLK_TOD,
	  .clock = TOD(8, 30, 0), .status = 202, .state = "pending",
	  .approvers = "", .needed = 1, .from = "alice,bob" },
};

/* A request waits while its key leaves the policy. */
static const struct sign_case cases_leave_before[] = {
	{ .desc = "ci asks release: pending",
	  .who = "ci", .op = OP_SIGN, .key = "release", .slot = 7,
	  .status = 202, .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
};
static const struct sign_case cases_leave_after[] = {
	{ .desc = "release left the policy: alice approves, unknown_key",
	  .who = "alice", .op = OP_APPROVE, .slot = 7, .status = 403,
	  .error = "unknown_key" },
	{ .desc = "nor can bob deny it",
	  .who = "bob", .op = OP_DENY, .slot = 7, .status = 403,
	  .error = "unknown_key" },
	{ .desc = "the request stays pending, nothing approved",
	  .who = "admin", .op = OP_GET, .slot = 7, .status = 200,
	  .state = "pending", .approvers = "", .needed = 1,
	  .from = "alice,bob" },
};

/* Revocation, last: it is irreversible. */
static const struct sign_case cases_revoke[] = {
	{ .desc = "ci (no admin role) revokes default: forbidden",
	  .who = "ci", .op = OP_REVOKE, .key = "default", .status = 403,
	  .error = "forbidden" },
	{ .desc = "admin revokes default: logged",
	  .who = "admin", .op = OP_REVOKE, .key = "default", .status = 200,
	  .logged = 1 },
	{ .desc = "admin revokes default again: conflict",
	  .who = "admin", .op = OP_REVOKE, .key = "default", .status = 409,
	  .error = "conflict" },
	{ .desc = "ci signs with the revoked default: key_revoked",
	  .who = "ci", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "key_revoked" },
	{ .desc = "by key ID too: key_revoked",
	  .who = "ci", .op = OP_SIGN, .key = "#default", .status = 403,
	  .error = "key_revoked" },
	{ .desc = "mallory on the revoked key: not_requester comes first",
	  .who = "mallory", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "not_requester" },
	{ .desc = "admin revokes release, a request waiting",
	  .who = "admin", .op = OP_REVOKE, .key = "release", .status = 200,
	  .logged = 1 },
	{ .desc = "08:45 UTC alice approves it: key_revoked",
	  .who = "alice", .op = OP_APPROVE, .slot = 6, .clk = CLK_TOD,
	  .clock = TOD(8, 45, 0), .status = 403, .error = "key_revoked" },
	{ .desc = "the request is still pending, nothing approved",
	  .who = "admin", .op = OP_GET, .slot = 6, .clk = CLK_TOD,
	  .clock = TOD(8, 45, 0), .status = 200, .state = "pending",
	  .approvers = "", .needed = 1, .from = "alice,bob" },
};

/* After a restart the revocations hold; ghost is not in the HSM. */
static const struct sign_case cases_restart[] = {
	{ .desc = "after a restart default is still revoked",
	  .who = "ci", .op = OP_SIGN, .key = "default", .status = 403,
	  .error = "key_revoked" },
	{ .desc = "after a restart release is still revoked",
	  .who = "ci", .op = OP_SIGN, .key = "release", .clk = CLK_TOD,
	  .clock = TOD(8, 30, 0), .status = 403, .error = "key_revoked" },
	{ .desc = "a policy key the HSM lacks is skipped at start",
	  .who = "ci", .op = OP_SIGN, .key = "ghost", .status = 404,
	  .error = "unknown_key" },
};

/* Signing with the token's key objects instead of session copies. */
static const struct sign_case cases_token_objects[] = {
	{ .desc = "token objects: ci signs g.txt with default, openssl verifies",
	  .who = "ci", .op = OP_SIGN, .key = "default", .artifact = "g.txt",
	  .cli = 1, .status = 200, .approvers = "", .logged = 1 },
	{ .desc = "token objects: by key ID too",
	  .who = "ci", .op = OP_SIGN, .key = "#default", .status = 200,
	  .approvers = "", .logged = 1 },
};

/* And back to session copies. */
static const struct sign_case cases_copies[] = {
	{ .desc = "session copies: ci signs h.txt with default, openssl verifies",
	  .who = "ci", .op = OP_SIGN, .key = "default", .artifact = "h.txt",
	  .cli = 1, .status = 200, .approvers = "", .logged = 1 },
};

/* clang-format on */

#define PHASE_CASES(c) (c), (sizeof(c) / sizeof((c)[0]))

static const struct phase phases[] = {
	{ "development policy", NULL, NULL, 0, 0, PHASE_CASES(cases_dev) },
	{ "token objects", NULL, NULL, 0, RESTART_TOKEN_OBJECTS,
	    PHASE_CASES(cases_token_objects) },
	{ "session copies", NULL, NULL, 0, RESTART_COPIES,
	    PHASE_CASES(cases_copies) },
	{ "artifacts and 2 of 4",
	    "{'default': {'requesters': ['ci'],"
	    "             'artifacts': ['*.tar.gz', 'pkg-?.deb']},"
	    " 'release': {'requesters': ['ci', 'frank'],"
	    "             'approvals': {'required': 2,"
	    "               'from': ['carol', 'dave', 'erin', 'frank']}},"
	    " 'ghost': {'requesters': ['ci']}}",
	    NULL, 0, 0, PHASE_CASES(cases_rich) },
	{ "hours and min_alg",
	    "{'default': {'requesters': ['ci'],"
	    "             'hours': {'utc_offset': '+02:00',"
	    "                       'from': '10:00', 'to': '11:00'}},"
	    " 'release': {'requesters': ['ci'],"
	    "             'min_alg': 'ecdsa-p384-sha256'}}",
	    NULL, 0, 0, PHASE_CASES(cases_hours) },
	{ "validity window and rate",
	    "{'default': {'requesters': ['ci'],"
	    "             'not_before': '2090-01-01T00:00:00Z',"
	    "             'not_after': '2091-01-01T00:00:00Z'},"
	    " 'release': {'requesters': ['ci'], 'rate': {'per_hour': 2}}}",
	    NULL, 0, 0, PHASE_CASES(cases_window) },
	{ "broken policy refused", NULL, NULL, 1, 0,
	    PHASE_CASES(cases_broken) },
	{ "request expiry",
	    "{'default': {'requesters': ['ci']},"
	    " 'release': {'requesters': ['ci'],"
	    "             'approvals': {'required': 1,"
	    "                           'from': ['alice', 'bob']}}}",
	    "{'expire_seconds': 60}", 0, 0, PHASE_CASES(cases_expire) },
	{ "key leaving the policy",
	    "{'default': {'requesters': ['ci']},"
	    " 'release': {'requesters': ['ci'],"
	    "             'approvals': {'required': 1,"
	    "                           'from': ['alice', 'bob']}}}",
	    NULL, 0, 0, PHASE_CASES(cases_leave_before) },
	{ "key left the policy", "{'default': {'requesters': ['ci']}}", NULL, 0,
	    0, PHASE_CASES(cases_leave_after) },
	{ "decided again at quorum",
	    "{'default': {'requesters': ['ci']},"
	    " 'release': {'requesters': ['ci'],"
	    "             'approvals': {'required': 1,"
	    "                           'from': ['alice', 'bob']},"
	    "             'hours': {'utc_offset': 'Z',"
	    "                       'from': '08:00', 'to': '09:00'}},"
	    " 'ghost': {'requesters': ['ci']}}",
	    NULL, 0, 0, PHASE_CASES(cases_redecide) },
	{ "revocation", NULL, NULL, 0, 0, PHASE_CASES(cases_revoke) },
	{ "restart", NULL, NULL, 0, RESTART, PHASE_CASES(cases_restart) },
};

/* An artifact name of 255 bytes, the most allowed (set at run time). */
static char long_name[256];

/* clang-format off */
/* A log that cannot commit: no signature leaves (test_storage_full). */
static const struct sign_case cases_full[] = {
	{ .desc = "storage full: unavailable, no signature",
	  .who = "ci", .op = OP_SIGN, .key = "default", .artifact = long_name,
	  .status = 503, .error = "unavailable" },
	{ .desc = "storage full: still unavailable by key ID",
	  .who = "ci", .op = OP_SIGN, .key = "#default", .artifact = long_name,
	  .status = 503, .error = "unavailable" },
};
/* clang-format on */

/* ---- helpers ------------------------------------------------------------- */

struct signkey {
	const char *label;
	char id[65];
	EVP_PKEY *pk;
	uint8_t spki[512];
	size_t spkilen;
};

struct slot {
	char id[33];
	char digest[65];
	char requester[65];
	char key[65];
	char artifact[256];
	char denied_by[65]; /* who denied it, once denied */
	uint64_t index;	    /* its entry, once signed */
};

struct ctx {
	struct e2e e;
	struct e2e_trust tr;
	json_t *principals;  /* development principals and the extras */
	char policy_sha[65]; /* the policy in force */
	struct signkey keys[2];
	struct slot slots[SLOTS];
	char clock[400];  /* KEYTRAIL_TEST_CLOCK, or "" */
	int64_t midnight; /* 00:00 UTC of the day the test started */
	unsigned serial;  /* makes every digest distinct */
	int inited;	  /* e2e_init() done: the teardown cleans up */
};

/* The tree size of the latest checkpoint, opened with the log's key. */
static uint64_t
checkpoint_size(struct e2e *e, const struct e2e_trust *tr)
{
	struct e2e_resp r;
	struct kt_checkpoint cp;

	e2e_http(e, "GET", "/checkpoint", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(
	    kt_checkpoint_open(r.body.p, r.body.len, &tr->t, NULL, &cp), KT_OK);
	e2e_resp_free(&r);
	return cp.size;
}

/* The signing keys' IDs and public keys, from GET /v1/keys. */
static void
keys_get(struct ctx *c)
{
	struct e2e_resp r;
	json_t *j, *v;
	size_t i;

	c->keys[0].label = "default";
	c->keys[1].label = "release";
	e2e_http(&c->e, "GET", "/v1/keys", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	json_array_foreach(json_object_get(j, "keys"), i, v)
	{
		const char *label =
		    json_string_value(json_object_get(v, "label"));
		const char *id = json_string_value(json_object_get(v, "key"));
		const char *spki =
		    json_string_value(json_object_get(v, "spki"));

		for (size_t k = 0; k < 2; k++) {
			struct signkey *sk = &c->keys[k];
			const uint8_t *p;
			char want[65];

			if (label == NULL || strcmp(label, sk->label) != 0)
				continue;
			assert_non_null(id);
			assert_non_null(spki);
			assert_string_equal(
			    json_string_value(json_object_get(v, "alg")),
			    "ecdsa-p256-sha256");
			assert_int_equal(
			    kt_b64_decode(spki, strlen(spki), sk->spki,
				sizeof(sk->spki), &sk->spkilen),
			    KT_OK);
			/* The key ID is the SHA-256 of the DER SPKI. */
			e2e_sha256_hex(sk->spki, sk->spkilen, want);
			assert_string_equal(id, want);
			snprintf(sk->id, sizeof(sk->id), "%s", id);
			p = sk->spki;
			assert_non_null(
			    sk->pk = d2i_PUBKEY(NULL, &p, (long)sk->spkilen));
		}
	}
	assert_non_null(c->keys[0].pk);
	assert_non_null(c->keys[1].pk);
	json_decref(j);
	e2e_resp_free(&r);
}

static const struct signkey *
key_by_label(const struct ctx *c, const char *label)
{
	for (size_t i = 0; i < 2; i++)
		if (strcmp(c->keys[i].label, label) == 0)
			return &c->keys[i];
	return NULL;
}

/* The state of key label in GET /v1/keys. */
static void
key_state_check(struct ctx *c, const char *label, const char *state)
{
	struct e2e_resp r;
	json_t *j, *v;
	size_t i;
	int found = 0;

	e2e_http(&c->e, "GET", "/v1/keys", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	json_array_foreach(json_object_get(j, "keys"), i, v)
	{
		const char *l = json_string_value(json_object_get(v, "label"));

		if (l == NULL || strcmp(l, label) != 0)
			continue;
		found = 1;
		assert_string_equal(
		    json_string_value(json_object_get(v, "state")), state);
	}
	assert_true(found);
	json_decref(j);
	e2e_resp_free(&r);
}

/* Sets the daemon's policy clock to offset seconds from the real time. */
static void
clock_set(struct ctx *c, int64_t offset)
{
	char s[32];
	int n = snprintf(s, sizeof(s), "%lld\n", (long long)offset);

	if (c->clock[0] == 0) {
		/* A daemon without the hook runs on the real time. */
		assert_int_equal(offset, 0);
		return;
	}
	e2e_file_write(c->clock, s, (size_t)n);
}

static int64_t
case_offset(const struct ctx *c, const struct sign_case *sc)
{
	int64_t now = (int64_t)time(NULL);

	switch (sc->clk) {
	case CLK_TOD:
		/* One day for the whole test, even across midnight. */
		return c->midnight + sc->clock - now;
	case CLK_ABS:
		return sc->clock - now;
	case CLK_REL:
	default:
		return sc->clock;
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JSON array of strings as a sorted, comma-separated list. */
static void
names_join(const json_t *arr, char *out, size_t outlen)
{
	const char *names[64];
	size_t n = json_array_size(arr), len = 0;

	assert_true(json_is_array(arr));
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++) {
		names[i] = json_string_value(json_array_get(arr, i));
		assert_non_null(names[i]);
	}
	qsort(names, n, sizeof(names[0]), name_cmp);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + len, outlen - len, "%s%s",
		    i > 0 ? "," : "", names[i]);

		assert_true(w > 0 && (size_t)w < outlen - len);
		len += (size_t)w;
	}
}

static void
names_check(const json_t *arr, const char *want, const char *what)
{
	char got[1024];

	names_join(arr, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s: got [%s], want [%s]", what, got, want);
}

/* ---- the policy ---------------------------------------------------------- */

/* A policy fragment written with single quotes, parsed. */
static json_t *
fragment(const char *s)
{
	char *d = strdup(s);
	json_error_t err;
	json_t *j;

	assert_non_null(d);
	for (char *p = d; *p != 0; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(d, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		fail_msg("table policy: %s: %s", err.text, d);
	free(d);
	return j;
}

/* Loads the development principals and adds the extra ones. */
static void
principals_load(struct ctx *c)
{
	char path[400], hash[65], tok[68];
	size_t len;
	uint8_t *doc;
	json_t *j;

	snprintf(path, sizeof(path), "%s/policy.json", c->e.data);
	doc = e2e_file_read(path, &len);
	e2e_sha256_hex(doc, len, c->policy_sha);
	assert_non_null(j = json_loadb((const char *)doc, len, 0, NULL));
	c->principals = json_incref(json_object_get(j, "principals"));
	assert_non_null(c->principals);
	json_decref(j);
	free(doc);
	for (size_t i = 0;
	     i < sizeof(extra_principals) / sizeof(extra_principals[0]); i++) {
		json_t *roles = json_array();

		/* A token of this test's making, stored as setup stores. */
		e2e_sha256_hex(extra_principals[i].name,
		    strlen(extra_principals[i].name), hash);
		snprintf(tok, sizeof(tok), "kt_%s", hash);
		snprintf(path, sizeof(path), "%s/tokens/%s", c->e.data,
		    extra_principals[i].name);
		e2e_file_write(path, tok, strlen(tok));
		e2e_sha256_hex(tok, strlen(tok), hash);
		for (size_t r = 0; r < 2 && extra_principals[i].roles[r]; r++)
			json_array_append_new(
			    roles, json_string(extra_principals[i].roles[r]));
		json_object_set_new(c->principals, extra_principals[i].name,
		    json_pack(
			"{s:s, s:o}", "token_sha256", hash, "roles", roles));
	}
}

/* Occurrences of s in the daemon's log. */
static size_t
daemon_log_count(const struct ctx *c, const char *s)
{
	char path[400];
	size_t len, n = 0;
	uint8_t *doc;

	snprintf(path, sizeof(path), "%s/logd.log", c->e.dir);
	doc = e2e_file_read(path, &len);
	for (const char *p = (const char *)doc; (p = strstr(p, s)) != NULL; p++)
		n++;
	free(doc);
	return n;
}

/*
 * Puts the phase's policy in force with SIGHUP and waits until it is
 * served by its SHA-256.  A changed policy is one more log entry.
 */
static void
policy_apply(struct ctx *c, const struct phase *ph)
{
	char path[400], sha[65], url[128];
	uint64_t before = checkpoint_size(&c->e, &c->tr), after;
	json_t *doc;
	char *s;
	int ok = 0;

	doc = json_pack("{s:O, s:o, s:o}", "principals", c->principals, "keys",
	    fragment(ph->keys), "requests",
	    fragment(
		ph->requests ? ph->requests : "{'expire_seconds': 86400}"));
	assert_non_null(doc);
	assert_non_null(s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS));
	json_decref(doc);
	snprintf(path, sizeof(path), "%s/policy.json", c->e.data);
	e2e_file_write(path, s, strlen(s));
	e2e_sha256_hex(s, strlen(s), sha);
	assert_int_equal(kill(c->e.pid, SIGHUP), 0);
	snprintf(url, sizeof(url), "/v1/policy/%s", sha);
	for (int i = 0; i < 200 && !ok; i++) {
		struct e2e_resp r;

		e2e_http(&c->e, "GET", url, NULL, NULL, 0, &r);
		if (r.status == 200) {
			/* The exact bytes are served. */
			assert_int_equal(r.body.len, strlen(s));
			assert_memory_equal(r.body.p, s, r.body.len);
			ok = 1;
		} else {
			assert_int_equal(r.status, 404);
			usleep(20000);
		}
		e2e_resp_free(&r);
	}
	free(s);
	if (!ok)
		fail_msg("policy of phase \"%s\" not in force", ph->name);
	memcpy(c->policy_sha, sha, sizeof(sha));
	after = checkpoint_size(&c->e, &c->tr);
	assert_int_equal(after, before + 1);
}

/* Writes a broken policy; SIGHUP must refuse it and log nothing. */
static void
policy_break(struct ctx *c)
{
	const char *bad = "{\"principals\": {\"ci\": {\"roles\": 7}}}";
	const char *line = "policy reload refused";
	char path[400];
	uint64_t before = checkpoint_size(&c->e, &c->tr);
	size_t seen = daemon_log_count(c, line);
	int ok = 0;

	snprintf(path, sizeof(path), "%s/policy.json", c->e.data);
	e2e_file_write(path, bad, strlen(bad));
	assert_int_equal(kill(c->e.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && !ok; i++) {
		ok = daemon_log_count(c, line) > seen;
		if (!ok)
			usleep(20000);
	}
	if (!ok)
		fail_msg("the broken policy was not refused");
	assert_int_equal(checkpoint_size(&c->e, &c->tr), before);
}

/* ---- checking answers ---------------------------------------------------- */

/* What a case signs. */
struct signing {
	const char *digest;    /* hex */
	const char *requester; /* principal in the entry */
	const char *key;       /* label */
	const char *artifact;  /* name, or NULL */
	const char *request;   /* request ID, when known */
	const char *file;      /* a file with that SHA-256, for openssl */
};

/* `openssl dgst -sha256 -verify` on the file, and on a tampered copy. */
static void
cli_verify(struct ctx *c, const struct signkey *sk, const uint8_t *sig,
    size_t siglen, const char *file)
{
	char pem[400], sigf[400], bad[400];
	char *argv[] = { "openssl", "dgst", "-sha256", "-verify", pem,
		"-signature", sigf, (char *)file, NULL };
	FILE *f;
	size_t len;
	uint8_t *doc;

	snprintf(pem, sizeof(pem), "%s/pub.pem", c->e.dir);
	snprintf(sigf, sizeof(sigf), "%s/f.sig", c->e.dir);
	snprintf(bad, sizeof(bad), "%s/tampered", c->e.dir);
	assert_non_null(f = fopen(pem, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, sk->pk), 1);
	assert_int_equal(fclose(f), 0);
	e2e_file_write(sigf, sig, siglen);
	assert_int_equal(e2e_run(argv), 0);
	doc = e2e_file_read(file, &len);
	assert_true(len > 0);
	doc[0] ^= 1;
	e2e_file_write(bad, doc, len);
	free(doc);
	argv[7] = bad;
	assert_int_not_equal(e2e_run(argv), 0);
}

/*
 * A signature answer: the signature verifies under the key, the proof
 * under the log's key, and the logged entry says what was signed.
 */
static void
signed_check(struct ctx *c, const struct sign_case *sc, const json_t *j,
    const struct signing *s, uint64_t size_before)
{
	const struct signkey *sk = key_by_label(c, s->key);
	const char *sigb64 = e2e_jstr(j, "signature");
	const char *proof = e2e_jstr(j, "proof");
	const char *request = e2e_jstr(j, "request");
	uint8_t sig[256], dig[32];
	size_t siglen;
	json_t *idx = json_object_get(j, "index"), *ent = NULL, *art;
	EVP_PKEY_CTX *vc;
	struct kt_buf entry;
	struct kt_tlogproof_result res;

	assert_non_null(sk);
	assert_string_equal(e2e_jstr(j, "key"), sk->id);
	assert_string_equal(e2e_jstr(j, "alg"), "ecdsa-p256-sha256");
	assert_true(json_is_integer(idx));
	assert_int_equal((uint64_t)json_integer_value(idx), size_before);
	assert_int_equal(strlen(request), 32);
	if (s->request != NULL)
		assert_string_equal(request, s->request);
	names_check(
	    json_object_get(j, "approvers"), sc->approvers, "answer approvers");

	/* ECDSA over the SHA-256 digest, pre-hashed (DER). */
	assert_int_equal(
	    kt_b64_decode(sigb64, strlen(sigb64), sig, sizeof(sig), &siglen),
	    KT_OK);
	assert_int_equal(kt_hex_decode_exact(s->digest, 64, dig, 32), KT_OK);
	assert_non_null(vc = EVP_PKEY_CTX_new(sk->pk, NULL));
	assert_int_equal(EVP_PKEY_verify_init(vc), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(vc, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(vc, sig, siglen, dig, 32), 1);
	/* And not over another digest. */
	dig[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(vc, sig, siglen, dig, 32), 1);
	EVP_PKEY_CTX_free(vc);
	if (s->file != NULL)
		cli_verify(c, sk, sig, siglen, s->file);

	/* The proof verifies offline; its entry is what was signed. */
	kt_buf_init(&entry, KT_ENTRY_MAX);
	assert_int_equal(kt_tlogproof_verify((const uint8_t *)proof,
			     strlen(proof), &c->tr.t, NULL, &entry, &res),
	    KT_OK);
	assert_int_equal(res.index, size_before);
	assert_true(res.checkpoint.size > res.index);
	assert_int_equal(kt_entry_parse(entry.p, entry.len, &ent), KT_OK);
	assert_string_equal(e2e_jstr(ent, "kind"), "signature");
	assert_string_equal(e2e_jstr(ent, "key"), sk->id);
	assert_string_equal(e2e_jstr(ent, "alg"), "ecdsa-p256-sha256");
	assert_string_equal(e2e_jstr(ent, "digest"), s->digest);
	assert_string_equal(e2e_jstr(ent, "sig"), sigb64);
	assert_string_equal(e2e_jstr(ent, "principal"), s->requester);
	assert_string_equal(e2e_jstr(ent, "policy"), c->policy_sha);
	assert_string_equal(e2e_jstr(ent, "request"), request);
	assert_int_equal(strlen(e2e_jstr(ent, "time")), 20);
	assert_int_equal(e2e_jstr(ent, "time")[19], 'Z');
	names_check(json_object_get(ent, "approvers"), sc->approvers,
	    "entry approvers");
	art = json_object_get(ent, "artifact");
	if (s->artifact != NULL)
		assert_string_equal(e2e_jstr(art, "name"), s->artifact);
	else
		assert_null(json_object_get(art, "name"));
	json_decref(ent);
	kt_buf_free(&entry);
}

/* A request record: who asked what, the quorum, its state. */
static void
record_check(struct ctx *c, const struct sign_case *sc, const json_t *j,
    const struct slot *sl)
{
	const struct signkey *sk = key_by_label(c, sl->key);
	json_t *art = json_object_get(j, "artifact");

	assert_non_null(sk);
	assert_string_equal(e2e_jstr(j, "request"), sl->id);
	assert_string_equal(e2e_jstr(j, "status"), sc->state);
	assert_string_equal(e2e_jstr(j, "key"), sl->key);
	assert_string_equal(e2e_jstr(j, "key_id"), sk->id);
	assert_string_equal(e2e_jstr(j, "alg"), "ecdsa-p256-sha256");
	assert_string_equal(e2e_jstr(j, "digest"), sl->digest);
	assert_string_equal(e2e_jstr(j, "requester"), sl->requester);
	assert_int_equal(
	    json_integer_value(json_object_get(j, "needed")), sc->needed);
	names_check(json_object_get(j, "from"), sc->from, "record from");
	names_check(
	    json_object_get(j, "approvers"), sc->approvers, "record approvers");
	assert_true(json_integer_value(json_object_get(j, "expires")) >
	    json_integer_value(json_object_get(j, "created")));
	assert_int_equal(strlen(e2e_jstr(j, "policy")), 64);
	if (sl->artifact[0] != 0)
		assert_string_equal(e2e_jstr(art, "name"), sl->artifact);
	else
		assert_null(art);
	if (strcmp(sc->state, "denied") == 0)
		assert_string_equal(e2e_jstr(j, "denied_by"), sl->denied_by);
	/* A signature is in the record only once it is logged. */
	if (strcmp(sc->state, "signed") == 0) {
		assert_true(strlen(e2e_jstr(j, "signature")) > 0);
		assert_int_equal(
		    json_integer_value(json_object_get(j, "index")), sl->index);
	} else
		assert_null(json_object_get(j, "signature"));
}

static void
case_run(struct ctx *c, const struct phase *ph, size_t i)
{
	const struct sign_case *sc = &ph->cases[i];
	struct slot *sl = NULL, fresh;
	struct signing s;
	struct e2e_resp r;
	char tok[128], path[128], digest[65], file[400];
	const char *method = "POST";
	char *body = NULL;
	uint64_t before, after;
	json_t *j;

	memset(&s, 0, sizeof(s));
	memset(&fresh, 0, sizeof(fresh));
	clock_set(c, case_offset(c, sc));
	if (sc->who == NULL)
		tok[0] = 0;
	else if (strcmp(sc->who, "?") == 0)
		snprintf(tok, sizeof(tok), "kt_%064d", 0);
	else
		e2e_token(&c->e, sc->who, tok, sizeof(tok));

	if (sc->op == OP_SIGN || sc->op == OP_REVOKE) {
		const char *keyname = sc->key;
		json_t *req;

		if (keyname[0] == '#') {
			const struct signkey *sk = key_by_label(c, keyname + 1);

			assert_non_null(sk);
			keyname = sk->id;
		}
		if (sc->op == OP_REVOKE) {
			const struct signkey *sk = key_by_label(c, sc->key);

			assert_non_null(sk);
			req = json_pack("{s:s, s:s, s:s}", "action", "revoke",
			    "key", sk->id, "reason", "e2e revocation");
			snprintf(path, sizeof(path), "/v1/keys");
		} else {
			char seed[64];

			if (sc->cli) {
				snprintf(
				    file, sizeof(file), "%s/f.txt", c->e.dir);
				snprintf(seed, sizeof(seed),
				    "keytrail e2e artifact %u\n", c->serial++);
				e2e_file_write(file, seed, strlen(seed));
				s.file = file;
			} else {
				snprintf(
				    seed, sizeof(seed), "case %u", c->serial++);
			}
			e2e_sha256_hex(seed, strlen(seed), digest);
			req = json_pack(
			    "{s:s, s:s}", "key", keyname, "digest", digest);
			if (sc->artifact != NULL)
				json_object_set_new(req, "artifact",
				    json_pack("{s:s, s:I}", "name",
					sc->artifact, "size",
					(json_int_t)strlen(seed)));
			snprintf(path, sizeof(path), "/v1/sign");
			s.digest = digest;
			s.requester = sc->who;
			s.key = keyname == sc->key ? sc->key : sc->key + 1;
			s.artifact = sc->artifact;
			/* A 202 fills this slot. */
			sl = &fresh;
			snprintf(
			    fresh.digest, sizeof(fresh.digest), "%s", digest);
			snprintf(fresh.requester, sizeof(fresh.requester), "%s",
			    sc->who ? sc->who : "");
			snprintf(fresh.key, sizeof(fresh.key), "%s", s.key);
			snprintf(fresh.artifact, sizeof(fresh.artifact), "%s",
			    sc->artifact ? sc->artifact : "");
		}
		assert_non_null(req);
		assert_non_null(body = json_dumps(req, JSON_COMPACT));
		json_decref(req);
	} else {
		static const char *const tail[] = { [OP_GET] = "",
			[OP_APPROVE] = "/approve",
			[OP_DENY] = "/deny" };
		const char *id = NO_SUCH_REQUEST;

		if (sc->slot >= 0) {
			assert_true(sc->slot < SLOTS);
			sl = &c->slots[sc->slot];
			assert_int_equal(strlen(sl->id), 32);
			id = sl->id;
			s.digest = sl->digest;
			s.requester = sl->requester;
			s.key = sl->key;
			s.artifact = sl->artifact[0] ? sl->artifact : NULL;
			s.request = sl->id;
		}
		snprintf(
		    path, sizeof(path), "/v1/requests/%s%s", id, tail[sc->op]);
		if (sc->op == OP_GET)
			method = "GET";
		if (sc->op == OP_DENY && sc->reason != NULL) {
			json_t *req = json_pack("{s:s}", "reason", sc->reason);

			assert_non_null(req);
			assert_non_null(body = json_dumps(req, JSON_COMPACT));
			json_decref(req);
		}
	}

	print_message("  %-26s %-58s %d%s\n", ph->name, sc->desc, sc->status,
	    sc->logged ? " +1 entry" : "");
	before = checkpoint_size(&c->e, &c->tr);
	e2e_http(&c->e, method, path, sc->who ? tok : NULL, body,
	    body ? strlen(body) : 0, &r);
	if (r.status != sc->status)
		fail_msg("%s / %s: got %d want %d: %.*s", ph->name, sc->desc,
		    r.status, sc->status,
		    (int)(r.body.len > 400 ? 400 : r.body.len),
		    r.body.p ? (const char *)r.body.p : "");
	j = e2e_json(&r);
	/*
	 * A signed record names its entry's index at once: the store writes
	 * it in the commit that logs the signature.
	 */
	if (sc->op == OP_GET && sc->state != NULL &&
	    strcmp(sc->state, "signed") == 0)
		assert_true(json_is_integer(json_object_get(j, "index")));
	if (sc->error != NULL) {
		/* A refusal: its code word, a sentence, never a signature. */
		assert_string_equal(e2e_jstr(j, "error"), sc->error);
		assert_true(strlen(e2e_jstr(j, "detail")) > 0);
		assert_null(json_object_get(j, "signature"));
		assert_null(json_object_get(j, "proof"));
		if (sc->status == 429) {
			char *end = NULL;
			unsigned long long ra;

			/* The bucket refills one signature per half hour. */
			errno = 0;
			ra = strtoull(r.retry_after, &end, 10);
			if (errno != 0 || end == r.retry_after || *end != 0 ||
			    ra < 1 || ra > 1800)
				fail_msg("Retry-After \"%s\"", r.retry_after);
		}
	} else {
		assert_null(json_object_get(j, "error"));
		if (sc->op == OP_REVOKE) {
			assert_int_equal(
			    json_integer_value(json_object_get(j, "index")),
			    before);
			key_state_check(c, sc->key, "revoked");
		} else if (sc->state == NULL ||
		    strcmp(sc->state, "signed") == 0) {
			if (sc->state == NULL)
				assert_null(json_object_get(j, "status"));
			else
				assert_string_equal(
				    e2e_jstr(j, "status"), "signed");
			if (sc->op != OP_GET)
				signed_check(c, sc, j, &s, before);
			else
				record_check(c, sc, j, sl);
			if (sc->op == OP_APPROVE)
				sl->index = before;
		} else {
			if (sc->status == 202) {
				assert_true(sc->slot >= 0 && sc->slot < SLOTS);
				snprintf(fresh.id, sizeof(fresh.id), "%s",
				    e2e_jstr(j, "request"));
				c->slots[sc->slot] = fresh;
				sl = &c->slots[sc->slot];
				assert_string_equal(
				    e2e_jstr(j, "policy"), c->policy_sha);
			}
			if (sc->op == OP_DENY) {
				snprintf(sl->denied_by, sizeof(sl->denied_by),
				    "%s", sc->who);
				assert_string_equal(e2e_jstr(j, "reason"),
				    sc->reason ? sc->reason : "");
			}
			record_check(c, sc, j, sl);
		}
	}
	json_decref(j);
	e2e_resp_free(&r);
	free(body);
	after = checkpoint_size(&c->e, &c->tr);
	if (after != before + (sc->logged ? 1 : 0))
		fail_msg("%s / %s: tree size %llu -> %llu, want %s", ph->name,
		    sc->desc, (unsigned long long)before,
		    (unsigned long long)after,
		    sc->logged ? "one entry" : "no entry");
}

/* The value of one line of /metrics (name with its labels); fails if absent. */
static uint64_t
metric_value(struct ctx *c, const char *line)
{
	struct e2e_resp r;
	const char *p;
	uint64_t v;

	e2e_http(&c->e, "GET", "/metrics", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(kt_buf_terminate(&r.body), KT_OK);
	p = strstr((const char *)r.body.p, line);
	if (p == NULL)
		fail_msg("/metrics has no %s", line);
	v = strtoull(p + strlen(line), NULL, 10);
	e2e_resp_free(&r);
	return v;
}

static void
phase_run(struct ctx *c, const struct phase *ph)
{
	if (ph->restart) {
		uint64_t before = checkpoint_size(&c->e, &c->tr);

		e2e_stop(&c->e, SIGTERM);
		if (ph->restart != RESTART)
			e2e_conf_set(&c->e, "hsm", "session_copies",
			    json_boolean(ph->restart == RESTART_COPIES));
		e2e_start(&c->e);
		/* Same policy, same keys: nothing logged again. */
		assert_int_equal(checkpoint_size(&c->e, &c->tr), before);
	}
	if (ph->broken)
		policy_break(c);
	else if (ph->keys != NULL)
		policy_apply(c, ph);
	for (size_t i = 0; i < ph->ncases; i++)
		case_run(c, ph, i);
	/* The HSM signed the way the config says (counters start at 0). */
	if (ph->restart == RESTART_TOKEN_OBJECTS ||
	    ph->restart == RESTART_COPIES) {
		uint64_t want = ph->restart == RESTART_COPIES;

		assert_int_equal(metric_value(c,
				     "keytrail_hsm_signatures_total"
				     "{token=\"keys\"} "),
		    ph->ncases);
		assert_int_equal(metric_value(c,
				     "keytrail_hsm_session_copies_total"
				     "{token=\"keys\"} "),
		    want);
		assert_int_equal(metric_value(c,
				     "keytrail_hsm_session_copies_total"
				     "{token=\"log\"} "),
		    want);
	}
}

static void
ctx_start(struct ctx *c, int clock)
{
	memset(c, 0, sizeof(*c));
	c->midnight = (int64_t)time(NULL);
	c->midnight -= c->midnight % 86400;
	e2e_init(&c->e);
	c->inited = 1;
	if (clock) {
		snprintf(c->clock, sizeof(c->clock), "%s/clock", c->e.dir);
		clock_set(c, 0);
		assert_int_equal(setenv("KEYTRAIL_TEST_CLOCK", c->clock, 1), 0);
	}
	e2e_start(&c->e);
	e2e_trust_get(&c->e, &c->tr);
	keys_get(c);
	principals_load(c);
	assert_int_equal(checkpoint_size(&c->e, &c->tr), SETUP_ENTRIES);
}

/* cmocka setup: an empty context for the test. */
static int
ctx_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	*state = c;
	return c == NULL ? -1 : 0;
}

/*
 * cmocka teardown, run after a failed test too: kills a daemon left
 * running and removes the temp dir (kept with KT_E2E_KEEP).
 */
static int
ctx_teardown(void **state)
{
	struct ctx *c = *state;

	if (c == NULL)
		return 0;
	json_decref(c->principals);
	EVP_PKEY_free(c->keys[0].pk);
	EVP_PKEY_free(c->keys[1].pk);
	unsetenv("KEYTRAIL_TEST_CLOCK");
	if (c->inited)
		e2e_cleanup(&c->e);
	free(c);
	return 0;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_sign_policy_table(void **state)
{
	struct ctx *c = *state;
	size_t n = 0;

	ctx_start(c, 1);
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		phase_run(c, &phases[i]);
		n += phases[i].ncases;
	}
	assert_true(n >= 30);
	e2e_stop(&c->e, SIGTERM);
}

/* POST /v1/sign body for one filling signature (a long artifact name). */
static char *
full_body(unsigned n)
{
	char seed[32], digest[65], *s;
	json_t *req;

	snprintf(seed, sizeof(seed), "full %u", n);
	e2e_sha256_hex(seed, strlen(seed), digest);
	req = json_pack("{s:s, s:s, s:{s:s, s:i}}", "key", "default", "digest",
	    digest, "artifact", "name", long_name, "size", 1000);
	assert_non_null(req);
	assert_non_null(s = json_dumps(req, JSON_COMPACT));
	json_decref(req);
	return s;
}

/* Counts a filling answer: a signature, or 503 and no signature. */
static int
full_answer(const struct e2e_resp *r, uint64_t *acked)
{
	json_t *j = e2e_json(r);
	int full = 0;

	if (r->status == 200) {
		assert_non_null(json_object_get(j, "signature"));
		(*acked)++;
	} else {
		if (r->status != 503)
			fail_msg("fill: %d %.*s", r->status, (int)r->body.len,
			    (const char *)r->body.p);
		assert_string_equal(e2e_jstr(j, "error"), "unavailable");
		assert_null(json_object_get(j, "signature"));
		full = 1;
	}
	json_decref(j);
	return full;
}

/*
 * Waits (up to 10 s: it is destroyed after the answer) until the keys
 * token holds no key labelled label.
 */
static void
hsm_wait_gone(struct e2e *e, const char *label)
{
	struct hsm_config hc;
	struct hsm *h = NULL;
	struct hsm_key *k = NULL;
	char pin[400], conf[400], err[256];
	int rc = KT_OK;

	snprintf(pin, sizeof(pin), "%s/hsm/pin", e->data);
	snprintf(conf, sizeof(conf), "%s/hsm/softhsm2.conf", e->data);
	memset(&hc, 0, sizeof(hc));
	hc.token_label = "keytrail-keys";
	hc.pin_file = pin;
	hc.softhsm_conf = conf;
	if (hsm_open(&hc, &h, err, sizeof(err)) != KT_OK)
		fail_msg("hsm_open: %s", err);
	for (int i = 0; i < 100; i++) {
		rc = hsm_find(h, label, &k, err, sizeof(err));
		hsm_key_free(k);
		k = NULL;
		if (rc == KT_ENOTFOUND)
			break;
		usleep(100 * 1000);
	}
	hsm_close(h);
	if (rc != KT_ENOTFOUND)
		fail_msg("key %s is still in the HSM: %s", label,
		    rc == KT_OK ? "found" : err);
}

static void
test_sign_storage_full(void **state)
{
	enum {
		WAVES = 60,
		WAVE = 100,
		NCONN = 8,
		SINGLES = 1000
	};
	static const struct phase full_phase = { "storage full", NULL, NULL, 0,
		0, PHASE_CASES(cases_full) };
	struct ctx *c = *state;
	struct e2e_call calls[WAVE];
	char tok[128];
	uint64_t acked = 0, size;
	unsigned n = 0;
	int full = 0;

	memset(long_name, 'n', sizeof(long_name) - 1);
	ctx_start(c, 0);
	e2e_stop(&c->e, SIGTERM);
	/* A 1 MiB map fills after some hundred signatures. */
	e2e_conf_set(&c->e, NULL, "map_size_mib", json_integer(1));
	e2e_start(&c->e);
	e2e_token(&c->e, "ci", tok, sizeof(tok));
	for (int wave = 0; wave < WAVES && !full; wave++) {
		for (int i = 0; i < WAVE; i++) {
			calls[i].path = "/v1/sign";
			calls[i].token = tok;
			calls[i].body = full_body(n++);
			calls[i].bodylen = strlen(calls[i].body);
		}
		e2e_post_many(&c->e, calls, WAVE, NCONN);
		for (int i = 0; i < WAVE; i++) {
			full |= full_answer(&calls[i].resp, &acked);
			free(calls[i].body);
			e2e_resp_free(&calls[i].resp);
		}
	}
	if (!full)
		fail_msg("the 1 MiB log never filled (%llu signatures)",
		    (unsigned long long)acked);
	/*
	 * A batch fails whole, so a single signature may still fit: go on
	 * one at a time until one does not.
	 */
	full = 0;
	for (int i = 0; i < SINGLES && !full; i++) {
		struct e2e_resp r;
		char *b = full_body(n++);

		e2e_http(&c->e, "POST", "/v1/sign", tok, b, strlen(b), &r);
		full = full_answer(&r, &acked);
		e2e_resp_free(&r);
		free(b);
	}
	assert_true(full);
	print_message("  storage full after %llu signatures\n",
	    (unsigned long long)acked);
	/* Every answered signature is in the log, and nothing else. */
	size = checkpoint_size(&c->e, &c->tr);
	assert_int_equal(size, SETUP_ENTRIES + acked);
	phase_run(c, &full_phase);
	/*
	 * A key made while the log is full: 503, and the HSM keeps no trace.
	 * (Key entries are smaller than these signatures' and may still fit
	 * for a while: go on until one does not.)
	 */
	{
		struct e2e_resp r;
		char adm[128], body[160], label[32];
		int status = 200;

		e2e_token(&c->e, "admin", adm, sizeof(adm));
		int i;

		for (i = 0; i < 200 && status == 200; i++) {
			snprintf(label, sizeof(label), "made-while-full-%d", i);
			snprintf(body, sizeof(body),
			    "{\"action\":\"create\",\"label\":\"%s\","
			    "\"alg\":\"ecdsa-p256-sha256\"}",
			    label);
			e2e_http(&c->e, "POST", "/v1/keys", adm, body,
			    strlen(body), &r);
			status = r.status;
			e2e_resp_free(&r);
			if (status == 200)
				acked++;
		}
		assert_int_equal(status, 503);
		print_message(
		    "  key creation refused after %d more keys\n", i - 1);
		hsm_wait_gone(&c->e, label);
	}
	size = checkpoint_size(&c->e, &c->tr);
	assert_int_equal(size, SETUP_ENTRIES + acked);
	/* Reads are still served. */
	{
		struct e2e_resp r;
		char path[64];

		e2e_http(&c->e, "GET", "/v1/log", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		snprintf(path, sizeof(path), "/v1/entries/%llu",
		    (unsigned long long)(size - 1));
		e2e_http(&c->e, "GET", path, NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
		e2e_http(&c->e, "GET", "/healthz", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		e2e_resp_free(&r);
	}
	assert_int_equal(checkpoint_size(&c->e, &c->tr), size);
	e2e_stop(&c->e, SIGTERM);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_sign_policy_table, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sign_storage_full, ctx_setup, ctx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
