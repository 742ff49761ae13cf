/*
 * The signing policy: every kind of bad document is refused with the path
 * of the offending field; sign decisions for each rule (principals, roles,
 * artifact patterns, hours with UTC offsets, validity windows,
 * certificates, revocation, algorithm floors, approvals); approvals
 * (self-approval, the approver set, counting once, M of N); rate limits
 * and the failed-authentication throttle with injected time; and the
 * worked example of docs/policy.md.  Nothing sleeps.
 *
 * Documents are written with single quotes, which doc() turns into double
 * quotes before parsing, so the JSON stays readable in C strings.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "keytrail/encoding.h"
#include "policy.h"
#include "testutil.h"

/* SHA-256 of the tokens "<name>-token" (printf %s ci-token | sha256sum). */
#define H_ADMIN \
	"10a4c7c9fc5206d6f36dc6944a81bb6f4a3cb0e25014ae3b12e6c3e52712292a"
#define H_CI "948b8c2427cd29047839b8e4a27a08763f8befbafa86be5cce8e46217d75e58a"
#define H_ALICE \
	"9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc"
#define H_BOB "97dd3707015dcf069cf73022ed7173b1165db6eff24b441cb57fd069a8c4e525"
#define H_CAROL \
	"6c0d2c0b430d9d9e3231e2645090c735a5059173d4ddf51f186e3f32e01bc832"
#define H_DAVE \
	"550b05ba4d8b3608c51eb6482beeafe79c060ca772f15ba40baf28e41b88bdfc"

#define P_ADMIN "'admin':{'token_sha256':'" H_ADMIN "','roles':['admin']}"
#define P_CI \
	"'ci':{'token_sha256':'" H_CI "','roles':['requester','submitter']}"
#define P_ALICE \
	"'alice':{'token_sha256':'" H_ALICE "','roles':['approver'," \
	"'requester']}"
#define P_BOB "'bob':{'token_sha256':'" H_BOB "','roles':['approver']}"
#define P_CAROL "'carol':{'token_sha256':'" H_CAROL "','roles':['approver']}"
#define P_DAVE "'dave':{'token_sha256':'" H_DAVE "','roles':['submitter']}"
#define PRINCIPALS \
	"'principals':{" P_ADMIN "," P_CI "," P_ALICE "," P_BOB "," P_CAROL \
	"," P_DAVE "}"
/* A document with one key "k" that ci may use, plus the fields in body. */
#define KEY(body) "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']" body "}}}"
/* A document with the given principals entries and a plain key. */
#define WITH_PRINCIPALS(ps) \
	"{'principals':{" ps "},'keys':{'k':{'requesters':['ci']}}}"
#define HOURS(x) KEY(",'hours':{" x "}")
/* A name one byte longer than POLICY_NAME_MAX. */
#define A65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The policy most decision tests run against. */
static const char good_doc[] =
    "{" PRINCIPALS ",'keys':{"
    "'default':{'requesters':['ci']},"
    "'release':{'requesters':['ci','alice'],"
    "'artifacts':['*.tar.gz','release-*'],"
    "'approvals':{'required':1,'from':['alice','bob']}},"
    "'quorum':{'requesters':['ci'],"
    "'approvals':{'required':2,'from':['alice','bob','carol']}},"
    "'alice-only':{'requesters':['alice']},"
    "'office':{'requesters':['ci'],'hours':{'utc_offset':'+01:00',"
    "'days':['mon','tue','wed','thu','fri'],'from':'08:00','to':'18:00'}},"
    "'monday':{'requesters':['ci'],'hours':{'utc_offset':'+10:00',"
    "'days':['mon'],'from':'00:00','to':'24:00'}},"
    "'night':{'requesters':['ci'],'hours':{'utc_offset':'-05:00',"
    "'days':['fri'],'from':'22:00','to':'06:00'}},"
    "'window':{'requesters':['ci'],'not_before':'2026-01-01T00:00:00Z',"
    "'not_after':'2027-01-01T00:00:00Z'},"
    "'strong':{'requesters':['ci'],'min_alg':'rsa4096-pss-sha256'},"
    "'limited':{'requesters':['ci','alice'],'rate':{'per_hour':3}},"
    "'busy':{'requesters':['ci'],'rate':{'per_hour':1000}}},"
    "'requests':{'expire_seconds':3600}}";

/* Times (date -u -d ... +%s). */
#define MON INT64_C(1772409600) /* 2026-03-02T00:00:00Z, a Monday */
#define FRI INT64_C(1772755200) /* 2026-03-06T00:00:00Z */
#define SAT INT64_C(1772841600) /* 2026-03-07T00:00:00Z */
#define SUN (SAT + 86400)
#define Y2026 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define Y2027 INT64_C(1798761600) /* 2027-01-01T00:00:00Z */
#define H(x) ((int64_t)(x)*3600)
#define M(x) ((int64_t)(x)*60)
/* Monday 12:00 UTC: 13:00 in the office (+01:00). */
#define NOW (MON + H(12))

/* Copies s with every ' turned into ". */
static uint8_t *
doc(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *p = malloc(n + 1);

	assert_non_null(p);
	for (size_t i = 0; i <= n; i++)
		p[i] = s[i] == '\'' ? '"' : (uint8_t)s[i];
	*len = n;
	return p;
}

static struct policy *
parse_ok(const char *s)
{
	struct policy *p = NULL;
	char err[POLICY_ERR_SIZE];
	size_t len;
	uint8_t *d = doc(s, &len);
	int rc = policy_parse(d, len, &p, err, sizeof(err));

	if (rc != KT_OK)
		fail_msg("policy refused: %s", err);
	free(d);
	return p;
}

static void
test_policy_parse_rejects_bad_documents(void **state)
{
	static const struct {
		const char *doc;
		const char *path; /* the message starts with this and ':' */
	} bad[] = {
		/* The document as a whole. */
		{ "", "$" },
		{ "[]", "$" },
		{ "'x'", "$" },
		{ "{", "$" },
		{ KEY("") " x", "$" },
		{ KEY("") "{}", "$" },
		{ "{" PRINCIPALS "," PRINCIPALS ",'keys':{}}", "$" },
		{ "{'principals':{" P_CI "," P_CI "},'keys':{}}", "$" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci'],"
		  "'requesters':['ci']}}}",
		    "$" },
		/* Top level. */
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'version':1}",
		    "version" },
		{ "{'keys':{'k':{'requesters':['ci']}}}", "principals" },
		{ "{" PRINCIPALS "}", "keys" },
		{ "{" PRINCIPALS ",'keys':{}}", "keys" },
		{ "{" PRINCIPALS ",'keys':[]}", "keys" },
		{ "{'principals':{},'keys':{'k':{'requesters':['ci']}}}",
		    "principals" },
		{ "{'principals':[],'keys':{'k':{'requesters':['ci']}}}",
		    "principals" },
		/* Principals. */
		{ WITH_PRINCIPALS(P_CI ",'CI':{'token_sha256':'" H_BOB
				       "','roles':['admin']}"),
		    "principals.CI" },
		{ WITH_PRINCIPALS(P_CI ",'c i':{'token_sha256':'" H_BOB
				       "','roles':['admin']}"),
		    "principals.c i" },
		{ WITH_PRINCIPALS(P_CI ",'.x':{'token_sha256':'" H_BOB
				       "','roles':['admin']}"),
		    "principals..x" },
		{ WITH_PRINCIPALS(P_CI ",'" A65 "':{'token_sha256':'" H_BOB
				       "','roles':['admin']}"),
		    "principals." A65 },
		{ WITH_PRINCIPALS("'ci':['requester']"), "principals.ci" },
		{ WITH_PRINCIPALS("'ci':{'token_sha256':'" H_CI
				  "','roles':['requester'],'role':'x'}"),
		    "principals.ci.role" },
		{ WITH_PRINCIPALS("'ci':{'roles':['requester']}"),
		    "principals.ci.token_sha256" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'"
		      "948B8C2427CD29047839B8E4A27A08763F8BEFBAFA8"
		      "6BE5CCE8E46217D75E58A','roles':['requester']}"),
		    "principals.ci.token_sha256" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'"
		      "948b8c2427cd29047839b8e4a27a08763f8befbafa8"
		      "6be5cce8e46217d75e58','roles':['requester']}"),
		    "principals.ci.token_sha256" },
		{ WITH_PRINCIPALS("'ci':{'token_sha256':'ci-token',"
				  "'roles':['requester']}"),
		    "principals.ci.token_sha256" },
		{ WITH_PRINCIPALS("'ci':{'token_sha256':1,"
				  "'roles':['requester']}"),
		    "principals.ci.token_sha256" },
		{ WITH_PRINCIPALS("'ci':{'token_sha256':'" H_CI "'}"),
		    "principals.ci.roles" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'" H_CI "','roles':[]}"),
		    "principals.ci.roles" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'" H_CI "','roles':'requester'}"),
		    "principals.ci.roles" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'" H_CI "','roles':['signer']}"),
		    "principals.ci.roles[0]" },
		{ WITH_PRINCIPALS("'ci':{'token_sha256':'" H_CI
				  "','roles':['requester','requester']}"),
		    "principals.ci.roles[1]" },
		{ WITH_PRINCIPALS(
		      "'ci':{'token_sha256':'" H_CI "','roles':[1]}"),
		    "principals.ci.roles[0]" },
		{ WITH_PRINCIPALS(P_CI ",'bob':{'token_sha256':'" H_CI
				       "','roles':['approver']}"),
		    "principals.bob.token_sha256" },
		/* Keys. */
		{ "{" PRINCIPALS ",'keys':{'k':['ci']}}", "keys.k" },
		{ "{" PRINCIPALS ",'keys':{'k/1':{'requesters':['ci']}}}",
		    "keys.k/1" },
		{ "{" PRINCIPALS ",'keys':{'-k':{'requesters':['ci']}}}",
		    "keys.-k" },
		{ KEY(",'algorithm':'ed25519'"), "keys.k.algorithm" },
		{ "{" PRINCIPALS ",'keys':{'k':{}}}", "keys.k.requesters" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':[]}}}",
		    "keys.k.requesters" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':'ci'}}}",
		    "keys.k.requesters" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['mallory']}}}",
		    "keys.k.requesters[0]" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['bob']}}}",
		    "keys.k.requesters[0]" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci','ci']}}}",
		    "keys.k.requesters[1]" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':[null]}}}",
		    "keys.k.requesters[0]" },
		/* Artifact patterns. */
		{ KEY(",'artifacts':[]"), "keys.k.artifacts" },
		{ KEY(",'artifacts':'*'"), "keys.k.artifacts" },
		{ KEY(",'artifacts':['']"), "keys.k.artifacts[0]" },
		{ KEY(",'artifacts':['*','[ab]*']"), "keys.k.artifacts[1]" },
		{ KEY(",'artifacts':['a\\\\b']"), "keys.k.artifacts[0]" },
		{ KEY(",'artifacts':['a\\tb']"), "keys.k.artifacts[0]" },
		{ KEY(",'artifacts':['*.zip','*.zip']"),
		    "keys.k.artifacts[1]" },
		{ KEY(",'artifacts':[7]"), "keys.k.artifacts[0]" },
		/* Approvals. */
		{ KEY(",'approvals':1"), "keys.k.approvals" },
		{ KEY(",'approvals':{'from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':17,'from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':-1,'from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':'1','from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':1.0,'from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':2,'from':['bob']}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':1}"),
		    "keys.k.approvals.required" },
		{ KEY(",'approvals':{'required':1,'from':['mallory']}"),
		    "keys.k.approvals.from[0]" },
		{ KEY(",'approvals':{'required':1,'from':['bob','ci']}"),
		    "keys.k.approvals.from[1]" },
		{ KEY(",'approvals':{'required':1,'from':['bob','bob']}"),
		    "keys.k.approvals.from[1]" },
		{ KEY(",'approvals':{'required':1,'from':['bob'],'of':2}"),
		    "keys.k.approvals.of" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci','alice'],"
		  "'approvals':{'required':2,'from':['alice','bob']}}}}",
		    "keys.k.approvals.required" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['alice'],"
		  "'approvals':{'required':1,'from':['alice']}}}}",
		    "keys.k.approvals.required" },
		/* Hours. */
		{ KEY(",'hours':'08:00-18:00'"), "keys.k.hours" },
		{ HOURS("'from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':'+1:00','from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':'+15:00','from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':'-00:00','from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':'CET','from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':60,'from':'08:00','to':'18:00'"),
		    "keys.k.hours.utc_offset" },
		{ HOURS("'utc_offset':'Z','to':'18:00'"), "keys.k.hours.from" },
		{ HOURS("'utc_offset':'Z','from':'8:00','to':'18:00'"),
		    "keys.k.hours.from" },
		{ HOURS("'utc_offset':'Z','from':'24:00','to':'18:00'"),
		    "keys.k.hours.from" },
		{ HOURS("'utc_offset':'Z','from':'08:00','to':'18:60'"),
		    "keys.k.hours.to" },
		{ HOURS("'utc_offset':'Z','from':'08:00','to':'24:01'"),
		    "keys.k.hours.to" },
		{ HOURS("'utc_offset':'Z','from':'08:00','to':'08:00'"),
		    "keys.k.hours.to" },
		{ HOURS("'utc_offset':'Z','from':'08:00'"), "keys.k.hours.to" },
		{ HOURS("'utc_offset':'Z','days':[],'from':'08:00',"
			"'to':'18:00'"),
		    "keys.k.hours.days" },
		{ HOURS("'utc_offset':'Z','days':['monday'],'from':'08:00',"
			"'to':'18:00'"),
		    "keys.k.hours.days[0]" },
		{ HOURS("'utc_offset':'Z','days':['mon','mon'],'from':'08:00',"
			"'to':'18:00'"),
		    "keys.k.hours.days[1]" },
		{ HOURS("'utc_offset':'Z','tz':'CET','from':'08:00',"
			"'to':'18:00'"),
		    "keys.k.hours.tz" },
		/* Rate. */
		{ KEY(",'rate':{'per_hour':0}"), "keys.k.rate.per_hour" },
		{ KEY(",'rate':{'per_hour':1000001}"), "keys.k.rate.per_hour" },
		{ KEY(",'rate':{}"), "keys.k.rate.per_hour" },
		{ KEY(",'rate':{'per_minute':1}"), "keys.k.rate.per_minute" },
		{ KEY(",'rate':60"), "keys.k.rate" },
		/* Validity window. */
		{ KEY(",'not_before':'2026-01-01'"), "keys.k.not_before" },
		{ KEY(",'not_before':'2026-02-29T00:00:00Z'"),
		    "keys.k.not_before" },
		{ KEY(",'not_before':'2026-12-31T23:59:60Z'"),
		    "keys.k.not_before" },
		{ KEY(",'not_before':'1969-12-31T23:59:59Z'"),
		    "keys.k.not_before" },
		{ KEY(",'not_before':1767225600"), "keys.k.not_before" },
		{ KEY(",'not_after':'2026-01-01T00:00:00+01:00'"),
		    "keys.k.not_after" },
		{ KEY(",'not_after':'2026-01-01T00:00:00.5Z'"),
		    "keys.k.not_after" },
		{ KEY(",'not_after':'2026-01-01t00:00:00z'"),
		    "keys.k.not_after" },
		{ KEY(",'not_before':'2027-01-01T00:00:00Z',"
		      "'not_after':'2026-01-01T00:00:00Z'"),
		    "keys.k.not_after" },
		{ KEY(",'not_before':'2026-01-01T00:00:00Z',"
		      "'not_after':'2026-01-01T00:00:00Z'"),
		    "keys.k.not_after" },
		/* Algorithm floor. */
		{ KEY(",'min_alg':'rsa2048-pss-sha256'"), "keys.k.min_alg" },
		{ KEY(",'min_alg':'ecdsa-p256-sha1'"), "keys.k.min_alg" },
		{ KEY(",'min_alg':256"), "keys.k.min_alg" },
		/* Requests. */
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'requests':1}",
		    "requests" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'requests':[]}",
		    "requests" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'requests':{'expire_seconds':0}}",
		    "requests.expire_seconds" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'requests':{'expire_seconds':2592001}}",
		    "requests.expire_seconds" },
		{ "{" PRINCIPALS ",'keys':{'k':{'requesters':['ci']}},"
		  "'requests':{'ttl':60}}",
		    "requests.ttl" },
	};

	(void)state;
	assert_true(sizeof(bad) / sizeof(bad[0]) >= 40);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy *p = (struct policy *)&bad; /* must stay */
		char err[POLICY_ERR_SIZE];
		size_t len, plen = strlen(bad[i].path);
		uint8_t *d = doc(bad[i].doc, &len);
		int rc = policy_parse(d, len, &p, err, sizeof(err));

		if (rc != KT_EPARSE)
			fail_msg("case %zu (%s): rc %d, want KT_EPARSE; %s", i,
			    bad[i].path, rc, rc == KT_OK ? "accepted" : err);
		if (strncmp(err, bad[i].path, plen) != 0 || err[plen] != ':')
			fail_msg("case %zu: error \"%s\" does not start with "
				 "\"%s:\"",
			    i, err, bad[i].path);
		assert_ptr_equal(p, (struct policy *)&bad);
		free(d);
	}
}

/* Appends with a check, for the generated documents below. */
static void
cat(struct kt_buf *b, const char *s)
{
	assert_int_equal(kt_buf_append_str(b, s), KT_OK);
}

/*
 * A document with np principals (p0, p1, ...; all requesters), nk keys
 * (k0, k1, ...) and npat patterns on key k0.
 */
static void
big_doc(struct kt_buf *b, size_t np, size_t nk, size_t npat)
{
	char s[160];

	kt_buf_init(b, 4 * POLICY_FILE_MAX);
	cat(b, "{\"principals\":{");
	for (size_t i = 0; i < np; i++) {
		snprintf(s, sizeof(s),
		    "%s\"p%zu\":{\"token_sha256\":\"%064zx\","
		    "\"roles\":[\"requester\"]}",
		    i > 0 ? "," : "", i, i);
		cat(b, s);
	}
	cat(b, "},\"keys\":{");
	for (size_t i = 0; i < nk; i++) {
		snprintf(s, sizeof(s), "%s\"k%zu\":{\"requesters\":[\"p0\"]",
		    i > 0 ? "," : "", i);
		cat(b, s);
		for (size_t j = 0; i == 0 && j < npat; j++) {
			snprintf(s, sizeof(s), "%s\"a%zu-*\"",
			    j == 0 ? ",\"artifacts\":[" : ",", j);
			cat(b, s);
		}
		cat(b, i == 0 && npat > 0 ? "]}" : "}");
	}
	cat(b, "}}");
}

static void
test_policy_parse_enforces_limits(void **state)
{
	static const struct {
		size_t np, nk, npat;
		int rc;
		const char *path;
	} cases[] = {
		{ POLICY_PRINCIPALS_MAX, POLICY_KEYS_MAX, POLICY_PATTERNS_MAX,
		    KT_OK, "" },
		{ POLICY_PRINCIPALS_MAX + 1, 1, 0, KT_ETOOBIG, "principals:" },
		{ 1, POLICY_KEYS_MAX + 1, 0, KT_ETOOBIG, "keys:" },
		{ 1, 1, POLICY_PATTERNS_MAX + 1, KT_EPARSE,
		    "keys.k0.artifacts:" },
	};
	struct policy *p;
	char err[POLICY_ERR_SIZE];
	struct kt_buf b;
	uint8_t *huge;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = NULL;
		big_doc(&b, cases[i].np, cases[i].nk, cases[i].npat);
		assert_int_equal(policy_parse(b.p, b.len, &p, err, sizeof(err)),
		    cases[i].rc);
		assert_memory_equal(err, cases[i].path, strlen(cases[i].path));
		policy_free(p);
		kt_buf_free(&b);
	}

	/* Too big is refused before it is read: padding is no way round. */
	huge = malloc(POLICY_FILE_MAX + 1);
	assert_non_null(huge);
	memset(huge, ' ', POLICY_FILE_MAX + 1);
	p = NULL;
	assert_int_equal(
	    policy_parse(huge, POLICY_FILE_MAX + 1, &p, err, sizeof(err)),
	    KT_ETOOBIG);
	assert_memory_equal(err, "$:", 2);
	assert_null(p);
	free(huge);

	/* A short err buffer is cut, never overrun; NULL is fine. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(
	    policy_parse((const uint8_t *)"[]", 2, &p, err, 4), KT_EPARSE);
	assert_string_equal(err, "$: ");
	assert_int_equal(err[4], 'x');
	assert_int_equal(
	    policy_parse((const uint8_t *)"[]", 2, &p, NULL, 0), KT_EPARSE);
	assert_int_equal(
	    policy_parse(NULL, 0, &p, err, sizeof(err)), KT_EINVAL);
	assert_null(p);
}

static void
test_policy_parse_keeps_document(void **state)
{
	struct policy *p;
	size_t len;
	uint8_t *d = doc(good_doc, &len);
	struct kt_hash h;
	char hex[POLICY_SHA256_LEN + 1];
	struct kt_bytes b;
	const struct policy_principal *pr;

	(void)state;
	p = parse_ok(good_doc);
	SHA256(d, len, h.b);
	kt_hex_encode(h.b, sizeof(h.b), hex);
	assert_string_equal(policy_sha256(p), hex);
	b = policy_document(p);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.p, d, len);
	assert_int_equal(policy_request_expire(p), 3600);

	pr = policy_principal_find(p, "alice");
	assert_non_null(pr);
	assert_string_equal(pr->name, "alice");
	assert_int_equal(
	    pr->roles, POLICY_ROLE_APPROVER | POLICY_ROLE_REQUESTER);
	pr = policy_principal_find(p, "admin");
	assert_non_null(pr);
	assert_int_equal(pr->roles, POLICY_ROLE_ADMIN);
	assert_null(policy_principal_find(p, "mallory"));
	assert_null(policy_principal_find(p, NULL));
	policy_free(p);
	free(d);

	/* Defaults: expiry, patterns, no approvals, no limits. */
	p = parse_ok(KEY(""));
	assert_int_equal(policy_request_expire(p), POLICY_EXPIRE_DEFAULT);
	policy_free(p);
	policy_free(NULL);
}

static void
test_policy_load_file_reads_and_refuses(void **state)
{
	char dir[] = "/tmp/kt-policy-XXXXXX", path[64], err[POLICY_ERR_SIZE];
	struct policy *p = NULL;
	size_t len;
	uint8_t *d = doc(good_doc, &len);
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policy.json", dir);

	assert_int_equal(
	    policy_load_file(path, &p, err, sizeof(err)), KT_ENOTFOUND);
	assert_memory_equal(err, path, strlen(path));
	assert_null(p);
	assert_int_equal(policy_load_file(dir, &p, err, sizeof(err)), KT_EIO);
	assert_memory_equal(err, dir, strlen(dir));

	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(d, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(policy_load_file(path, &p, err, sizeof(err)), KT_OK);
	assert_int_equal(policy_document(p).len, len);
	policy_free(p);
	p = NULL;

	/* Contents are reported by JSON path, as from policy_parse(). */
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fputs("{\"keys\":{}}", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(
	    policy_load_file(path, &p, err, sizeof(err)), KT_EPARSE);
	assert_memory_equal(err, "principals:", 11);

	assert_int_equal(truncate(path, POLICY_FILE_MAX + 1), 0);
	assert_int_equal(
	    policy_load_file(path, &p, err, sizeof(err)), KT_ETOOBIG);
	assert_null(p);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(d);
}

static void
test_policy_authenticate_tokens(void **state)
{
	static const struct {
		const char *token;
		const char *want; /* NULL: nobody */
	} cases[] = {
		{ "ci-token", "ci" },
		{ "alice-token", "alice" },
		{ "bob-token", "bob" },
		{ "admin-token", "admin" },
		{ "dave-token", "dave" },
		{ "ci-toke", NULL },
		{ "ci-token\n", NULL },
		{ "CI-token", NULL },
		{ "mallory-token", NULL },
		{ H_CI, NULL }, /* the hash is not the token */
		{ "", NULL },
	};
	struct policy *p = parse_ok(good_doc);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct policy_principal *pr = policy_authenticate(
		    p, (const uint8_t *)cases[i].token, strlen(cases[i].token));

		if (cases[i].want == NULL) {
			if (pr != NULL)
				fail_msg("token %zu authenticated as %s", i,
				    pr->name);
			continue;
		}
		assert_non_null(pr);
		assert_string_equal(pr->name, cases[i].want);
		assert_ptr_equal(pr, policy_principal_find(p, cases[i].want));
	}
	assert_null(policy_authenticate(p, NULL, 0));
	policy_free(p);
}

struct sign_case {
	const char *principal, *key, *alg;
	enum policy_key_state state;
	int64_t cert;
	const char *artifact;
	int64_t now;
	enum policy_verdict verdict;
	enum policy_reason reason;
	const char *approvers; /* "alice,bob" with NEEDS_APPROVAL */
};

#define P256 "ecdsa-p256-sha256"
#define ACT POLICY_KEY_ACTIVE
#define REV POLICY_KEY_REVOKED
#define OK POLICY_ALLOW, POLICY_REASON_OK, NULL
#define DENY(r) POLICY_DENY, POLICY_REASON_##r, NULL
#define PENDING(who) POLICY_NEEDS_APPROVAL, POLICY_REASON_NEEDS_APPROVAL, who

static const struct sign_case sign_cases[] = {
	/* Principals and roles. */
	{ "ci", "default", P256, ACT, 0, "app.bin", NOW, OK },
	{ "ci", "default", P256, ACT, 0, NULL, NOW, OK },
	{ "ci", "default", P256, ACT, 0, "", NOW, OK },
	{ "ci", "nope", P256, ACT, 0, "app.bin", NOW, DENY(UNKNOWN_KEY) },
	{ "ci", "Default", P256, ACT, 0, "app.bin", NOW, DENY(UNKNOWN_KEY) },
	{ "mallory", "default", P256, ACT, 0, NULL, NOW,
	    DENY(UNKNOWN_PRINCIPAL) },
	{ "dave", "default", P256, ACT, 0, NULL, NOW, DENY(NOT_REQUESTER) },
	{ "bob", "default", P256, ACT, 0, NULL, NOW, DENY(NOT_REQUESTER) },
	{ "admin", "default", P256, ACT, 0, NULL, NOW, DENY(NOT_REQUESTER) },
	{ "ci", "alice-only", P256, ACT, 0, NULL, NOW, DENY(NOT_REQUESTER) },
	{ "alice", "alice-only", P256, ACT, 0, NULL, NOW, OK },
	/* Principal checks come before the key's state. */
	{ "bob", "default", "rsa2048-pss-sha256", REV, 0, NULL, NOW,
	    DENY(NOT_REQUESTER) },
	/* Revocation, algorithms, certificates. */
	{ "ci", "default", P256, REV, 0, NULL, NOW, DENY(KEY_REVOKED) },
	{ "ci", "default", "rsa2048-pss-sha256", REV, 0, NULL, NOW,
	    DENY(KEY_REVOKED) },
	{ "ci", "default", "ed25519", ACT, 0, NULL, NOW, OK },
	{ "ci", "default", "rsa3072-pss-sha256", ACT, 0, NULL, NOW, OK },
	{ "ci", "default", "rsa4096-pss-sha256", ACT, 0, NULL, NOW, OK },
	{ "ci", "default", "ecdsa-p384-sha256", ACT, 0, NULL, NOW, OK },
	{ "ci", "default", "rsa2048-pss-sha256", ACT, 0, NULL, NOW,
	    DENY(WEAK_ALGORITHM) },
	{ "ci", "default", "ecdsa-p224-sha256", ACT, 0, NULL, NOW,
	    DENY(WEAK_ALGORITHM) },
	{ "ci", "default", "ecdsa-p256-sha1", ACT, 0, NULL, NOW,
	    DENY(WEAK_ALGORITHM) },
	{ "ci", "default", "rsa3072-pkcs1-sha1", ACT, 0, NULL, NOW,
	    DENY(WEAK_ALGORITHM) },
	{ "ci", "default", "", ACT, 0, NULL, NOW, DENY(WEAK_ALGORITHM) },
	{ "ci", "strong", P256, ACT, 0, NULL, NOW, DENY(WEAK_ALGORITHM) },
	{ "ci", "strong", "ed25519", ACT, 0, NULL, NOW, DENY(WEAK_ALGORITHM) },
	{ "ci", "strong", "rsa3072-pss-sha256", ACT, 0, NULL, NOW,
	    DENY(WEAK_ALGORITHM) },
	{ "ci", "strong", "rsa4096-pss-sha256", ACT, 0, NULL, NOW, OK },
	{ "ci", "strong", "ecdsa-p384-sha256", ACT, 0, NULL, NOW, OK },
	{ "ci", "default", P256, ACT, NOW - 1, NULL, NOW,
	    DENY(CERTIFICATE_EXPIRED) },
	{ "ci", "default", P256, ACT, NOW, NULL, NOW, OK },
	{ "ci", "default", P256, ACT, NOW + 1, NULL, NOW, OK },
	/* Validity window: from not_before, until before not_after. */
	{ "ci", "window", P256, ACT, 0, NULL, Y2026 - 1,
	    DENY(OUTSIDE_VALIDITY) },
	{ "ci", "window", P256, ACT, 0, NULL, Y2026, OK },
	{ "ci", "window", P256, ACT, 0, NULL, Y2027 - 1, OK },
	{ "ci", "window", P256, ACT, 0, NULL, Y2027, DENY(OUTSIDE_VALIDITY) },
	{ "ci", "default", P256, ACT, 0, NULL, 0, OK },
	{ "ci", "default", P256, ACT, 0, NULL, POLICY_TIME_MAX, OK },
	/* Artifact patterns: '*' spans '/', matching is case-sensitive. */
	{ "ci", "release", P256, ACT, 0, "app-1.0.tar.gz", NOW,
	    PENDING("alice,bob") },
	{ "ci", "release", P256, ACT, 0, "dist/app.tar.gz", NOW,
	    PENDING("alice,bob") },
	{ "ci", "release", P256, ACT, 0, "release-", NOW,
	    PENDING("alice,bob") },
	{ "ci", "release", P256, ACT, 0, ".tar.gz", NOW, PENDING("alice,bob") },
	{ "ci", "release", P256, ACT, 0, "app.zip", NOW,
	    DENY(ARTIFACT_NOT_ALLOWED) },
	{ "ci", "release", P256, ACT, 0, "app.tar.gz.sig", NOW,
	    DENY(ARTIFACT_NOT_ALLOWED) },
	{ "ci", "release", P256, ACT, 0, "APP.TAR.GZ", NOW,
	    DENY(ARTIFACT_NOT_ALLOWED) },
	{ "ci", "release", P256, ACT, 0, "my-release-1", NOW,
	    DENY(ARTIFACT_NOT_ALLOWED) },
	{ "ci", "release", P256, ACT, 0, NULL, NOW,
	    DENY(ARTIFACT_NOT_ALLOWED) },
	{ "ci", "release", P256, ACT, 0, "", NOW, DENY(ARTIFACT_NOT_ALLOWED) },
	/* Approvals: the requester is never among its approvers. */
	{ "alice", "release", P256, ACT, 0, "release-2", NOW, PENDING("bob") },
	{ "ci", "quorum", P256, ACT, 0, NULL, NOW, PENDING("alice,bob,carol") },
	/* Hours: Monday to Friday, 08:00 to 18:00 at +01:00. */
	{ "ci", "office", P256, ACT, 0, NULL, MON + H(7), OK },
	{ "ci", "office", P256, ACT, 0, NULL, MON + H(7) - 1,
	    DENY(OUTSIDE_HOURS) },
	{ "ci", "office", P256, ACT, 0, NULL, MON + H(17) - 1, OK },
	{ "ci", "office", P256, ACT, 0, NULL, MON + H(17),
	    DENY(OUTSIDE_HOURS) },
	{ "ci", "office", P256, ACT, 0, NULL, FRI + H(16), OK },
	{ "ci", "office", P256, ACT, 0, NULL, SAT + H(10),
	    DENY(OUTSIDE_HOURS) },
	{ "ci", "office", P256, ACT, 0, NULL, SUN + H(23) + M(30),
	    DENY(OUTSIDE_HOURS) },
	/* All of Monday at +10:00: the offset moves the day. */
	{ "ci", "monday", P256, ACT, 0, NULL, SUN + H(15), OK },
	{ "ci", "monday", P256, ACT, 0, NULL, SUN + H(14) - 1,
	    DENY(OUTSIDE_HOURS) },
	{ "ci", "monday", P256, ACT, 0, NULL, MON + H(13) + M(59), OK },
	{ "ci", "monday", P256, ACT, 0, NULL, MON + H(14),
	    DENY(OUTSIDE_HOURS) },
	/* Friday 22:00 to Saturday 06:00 at -05:00 (03:00 to 11:00 UTC). */
	{ "ci", "night", P256, ACT, 0, NULL, SAT + H(3), OK },
	{ "ci", "night", P256, ACT, 0, NULL, SAT + H(11) - 1, OK },
	{ "ci", "night", P256, ACT, 0, NULL, SAT + H(11), DENY(OUTSIDE_HOURS) },
	{ "ci", "night", P256, ACT, 0, NULL, SAT + H(3) - 1,
	    DENY(OUTSIDE_HOURS) },
	{ "ci", "night", P256, ACT, 0, NULL, FRI + H(6), DENY(OUTSIDE_HOURS) },
	{ "ci", "night", P256, ACT, 0, NULL, FRI + H(4), DENY(OUTSIDE_HOURS) },
};

static void
test_policy_check_sign_decisions(void **state)
{
	struct policy *p = parse_ok(good_doc);
	size_t n = sizeof(sign_cases) / sizeof(sign_cases[0]);

	(void)state;
	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++) {
		const struct sign_case *c = &sign_cases[i];
		struct policy_sign_request req = { c->principal, c->key, c->alg,
			c->state, c->cert, c->artifact, c->now };
		struct policy_decision d;
		char who[256] = "";
		int rc = policy_check_sign(p, &req, &d);

		if (d.verdict != c->verdict || d.reason != c->reason)
			fail_msg("case %zu (%s, %s): %s (%s), want %s", i,
			    c->principal, c->key, policy_reason_name(d.reason),
			    d.detail, policy_reason_name(c->reason));
		assert_int_equal(
		    rc, c->verdict == POLICY_ALLOW ? KT_OK : KT_EPOLICY);
		assert_true(d.detail[0] != '\0');
		for (size_t j = 0, off = 0; j < d.napprovers; j++) {
			int w = snprintf(who + off, sizeof(who) - off, "%s%s",
			    j > 0 ? "," : "", d.approvers[j]);

			assert_true(w > 0 && (size_t)w < sizeof(who) - off);
			off += (size_t)w;
		}
		if (c->verdict == POLICY_NEEDS_APPROVAL) {
			assert_string_equal(who, c->approvers);
			assert_int_equal(
			    d.required, strcmp(c->key, "quorum") == 0 ? 2 : 1);
		} else {
			assert_int_equal(d.napprovers, 0);
			assert_int_equal(d.required, 0);
		}
	}
	policy_free(p);
}

static void
test_policy_check_sign_details(void **state)
{
	struct policy *p = parse_ok(good_doc);
	struct policy_sign_request req = { "ci", "office", P256, ACT, 0, NULL,
		SAT + H(10) };
	struct policy_decision d;
	char longname[POLICY_ARTIFACT_MAX + 2];

	(void)state;
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_string_equal(d.detail,
	    "key \"office\" signs only mon,tue,wed,thu,fri 08:00-18:00 "
	    "UTC+01:00");
	req.key = "window";
	req.now = Y2027;
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_string_equal(d.detail,
	    "key \"window\" may not sign from 2027-01-01T00:00:00Z on");
	req.key = "default";
	req.cert_not_after = Y2026 + 59;
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_string_equal(d.detail,
	    "the certificate of key \"default\" expired at "
	    "2026-01-01T00:00:59Z");

	/* Caller-supplied names are quoted safely and cut. */
	req.cert_not_after = 0;
	req.now = NOW;
	req.key = "bad\n\"key\x7f";
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_string_equal(
	    d.detail, "key \"bad?\"key?\" is not in the policy");

	/* Names beyond POLICY_ARTIFACT_MAX match nothing, not even "*". */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	req.key = "default";
	req.artifact = longname;
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_int_equal(d.reason, POLICY_REASON_ARTIFACT_NOT_ALLOWED);
	longname[POLICY_ARTIFACT_MAX] = '\0';
	assert_int_equal(policy_check_sign(p, &req, &d), KT_OK);
	policy_free(p);
}

static void
test_policy_check_sign_rejects_bad_requests(void **state)
{
	static const struct policy_sign_request bad[] = {
		{ NULL, "default", P256, ACT, 0, NULL, NOW },
		{ "ci", NULL, P256, ACT, 0, NULL, NOW },
		{ "ci", "default", NULL, ACT, 0, NULL, NOW },
		{ "ci", "default", P256, 0, 0, NULL, NOW },
		{ "ci", "default", P256, (enum policy_key_state)3, 0, NULL,
		    NOW },
		{ "ci", "default", P256, ACT, 0, NULL, -1 },
		{ "ci", "default", P256, ACT, 0, NULL, POLICY_TIME_MAX + 1 },
		{ "ci", "default", P256, ACT, -1, NULL, NOW },
	};
	struct policy *p = parse_ok(good_doc);

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy_decision d;

		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(policy_check_sign(p, &bad[i], &d), KT_EINVAL);
		assert_int_equal(d.verdict, POLICY_DENY);
		assert_int_equal(d.reason, POLICY_REASON_INVALID);
	}
	policy_free(p);
}

static void
test_policy_check_approval_cases(void **state)
{
	static const struct {
		const char *key, *requester, *approver;
		const char *already[4];
		size_t nalready;
		int rc;
		enum policy_reason reason;
		int counted;
		unsigned have, required;
		int complete;
	} cases[] = {
		/* One of alice and bob. */
		{ "release", "ci", "alice", { NULL }, 0, KT_OK,
		    POLICY_REASON_OK, 1, 1, 1, 1 },
		{ "release", "ci", "bob", { NULL }, 0, KT_OK, POLICY_REASON_OK,
		    1, 1, 1, 1 },
		/* Self-approval, though alice is in the set. */
		{ "release", "alice", "alice", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_SELF_APPROVAL, 0, 0, 1, 0 },
		{ "release", "ci", "ci", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_SELF_APPROVAL, 0, 0, 1, 0 },
		{ "release", "alice", "bob", { NULL }, 0, KT_OK,
		    POLICY_REASON_OK, 1, 1, 1, 1 },
		/* Outside the set, without the role, unknown. */
		{ "release", "ci", "carol", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_NOT_APPROVER, 0, 0, 1, 0 },
		{ "release", "alice", "ci", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_NOT_APPROVER, 0, 0, 1, 0 },
		{ "release", "ci", "admin", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_NOT_APPROVER, 0, 0, 1, 0 },
		{ "release", "ci", "mallory", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_UNKNOWN_PRINCIPAL, 0, 0, 1, 0 },
		{ "nope", "ci", "alice", { NULL }, 0, KT_EPOLICY,
		    POLICY_REASON_UNKNOWN_KEY, 0, 0, 0, 0 },
		/* Two of alice, bob and carol. */
		{ "quorum", "ci", "alice", { NULL }, 0, KT_OK, POLICY_REASON_OK,
		    1, 1, 2, 0 },
		{ "quorum", "ci", "alice", { "alice" }, 1, KT_OK,
		    POLICY_REASON_OK, 0, 1, 2, 0 },
		{ "quorum", "ci", "bob", { "alice" }, 1, KT_OK,
		    POLICY_REASON_OK, 1, 2, 2, 1 },
		{ "quorum", "ci", "bob", { "alice", "alice" }, 2, KT_OK,
		    POLICY_REASON_OK, 1, 2, 2, 1 },
		{ "quorum", "ci", "carol", { "alice", "bob" }, 2, KT_OK,
		    POLICY_REASON_OK, 1, 3, 2, 1 },
		{ "quorum", "ci", "bob", { "bob", "bob", "bob" }, 3, KT_OK,
		    POLICY_REASON_OK, 0, 1, 2, 0 },
		/* Recorded approvals that no longer count are not counted. */
		{ "quorum", "ci", "bob", { "ci", "mallory", "admin", "dave" },
		    4, KT_OK, POLICY_REASON_OK, 1, 1, 2, 0 },
		{ "release", "alice", "bob", { "alice", "carol" }, 2, KT_OK,
		    POLICY_REASON_OK, 1, 1, 1, 1 },
		/* Counting only. */
		{ "quorum", "ci", NULL, { "alice", "bob" }, 2, KT_OK,
		    POLICY_REASON_OK, 0, 2, 2, 1 },
		{ "quorum", "ci", NULL, { "carol" }, 1, KT_OK, POLICY_REASON_OK,
		    0, 1, 2, 0 },
		{ "default", "ci", NULL, { NULL }, 0, KT_OK, POLICY_REASON_OK,
		    0, 0, 0, 1 },
		/* Refusals still describe what is recorded. */
		{ "quorum", "ci", "ci", { "alice" }, 1, KT_EPOLICY,
		    POLICY_REASON_SELF_APPROVAL, 0, 1, 2, 0 },
	};
	struct policy *p = parse_ok(good_doc);
	struct policy_approval a;
	const char *nul[] = { "alice", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = policy_check_approval(p, cases[i].key,
		    cases[i].requester, cases[i].approver, cases[i].already,
		    cases[i].nalready, &a);

		if (rc != cases[i].rc || a.reason != cases[i].reason)
			fail_msg("case %zu: rc %d %s (%s)", i, rc,
			    policy_reason_name(a.reason), a.detail);
		assert_int_equal(a.counted, cases[i].counted);
		assert_int_equal(a.have, cases[i].have);
		assert_int_equal(a.required, cases[i].required);
		assert_int_equal(a.complete, cases[i].complete);
		assert_true(a.detail[0] != '\0');
	}
	assert_int_equal(
	    policy_check_approval(p, NULL, "ci", "alice", NULL, 0, &a),
	    KT_EINVAL);
	assert_int_equal(
	    policy_check_approval(p, "release", NULL, "alice", NULL, 0, &a),
	    KT_EINVAL);
	assert_int_equal(
	    policy_check_approval(p, "release", "ci", "bob", nul, 2, &a),
	    KT_EINVAL);
	assert_int_equal(
	    policy_check_approval(p, "release", "ci", "bob", NULL, 1, &a),
	    KT_EINVAL);
	assert_int_equal(a.reason, POLICY_REASON_INVALID);
	policy_free(p);
}

static void
test_policy_rate_take_limits_and_recovers(void **state)
{
	struct policy *p = parse_ok(good_doc);
	struct policy_rate *r;
	int64_t retry = 0, t = NOW;

	(void)state;
	assert_int_equal(policy_rate_new(0, &r), KT_OK);
	/* Three an hour: a full bucket gives exactly three. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    policy_rate_take(r, p, "ci", "limited", t, &retry), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t, &retry), KT_EPOLICY);
	assert_int_equal(retry, 1200);
	/* Other pairs and unlimited keys are unaffected. */
	assert_int_equal(
	    policy_rate_take(r, p, "alice", "limited", t, NULL), KT_OK);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(
		    policy_rate_take(r, p, "ci", "default", t, NULL), KT_OK);
	/* One token is back after 1200 seconds, not before. */
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t + 1199, &retry),
	    KT_EPOLICY);
	assert_int_equal(retry, 1);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t + 1200, &retry), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t + 1200, &retry),
	    KT_EPOLICY);
	assert_int_equal(retry, 1200);
	/* A clock that goes back refills nothing. */
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t, &retry), KT_EPOLICY);
	/* After a long pause the bucket is full, and no fuller. */
	t += 10 * 3600;
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    policy_rate_take(r, p, "ci", "limited", t, NULL), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", t, NULL), KT_EPOLICY);

	assert_int_equal(
	    policy_rate_take(r, p, "ci", "nope", t, NULL), KT_ENOTFOUND);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", -1, NULL), KT_EINVAL);
	assert_int_equal(
	    policy_rate_take(r, p, NULL, "limited", t, NULL), KT_EINVAL);
	policy_rate_free(r);
	policy_rate_free(NULL);
	policy_free(p);
}

static void
test_policy_rate_take_survives_reload(void **state)
{
	struct policy *p = parse_ok(good_doc), *p2;
	struct policy_rate *r;
	int64_t retry = 0;

	(void)state;
	p2 = parse_ok(KEY("") /* no "limited" key */);
	policy_free(p2);
	p2 = parse_ok("{" PRINCIPALS ",'keys':{'limited':{'requesters':"
		      "['ci'],'rate':{'per_hour':3600}}}}");
	assert_int_equal(policy_rate_new(0, &r), KT_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    policy_rate_take(r, p, "ci", "limited", NOW, NULL), KT_OK);
	/* The empty bucket stays empty under the new limit... */
	assert_int_equal(
	    policy_rate_take(r, p2, "ci", "limited", NOW, &retry), KT_EPOLICY);
	assert_int_equal(retry, 1);
	/* ...and refills at the new rate. */
	assert_int_equal(
	    policy_rate_take(r, p2, "ci", "limited", NOW + 1, NULL), KT_OK);
	policy_rate_free(r);
	policy_free(p2);
	policy_free(p);
}

static void
test_policy_rate_take_bounded_memory(void **state)
{
	struct policy *p = parse_ok(good_doc);
	struct policy_rate *r;

	(void)state;
	assert_int_equal(policy_rate_new(2, &r), KT_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    policy_rate_take(r, p, "ci", "limited", NOW, NULL), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, "p1", "limited", NOW, NULL), KT_OK);
	/* Full table: p2 replaces p1 (fuller), not ci (empty). */
	assert_int_equal(
	    policy_rate_take(r, p, "p2", "limited", NOW, NULL), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", NOW, NULL), KT_EPOLICY);
	/* Many more pairs never grow the table or lose ci's limit... */
	for (int i = 0; i < 100; i++) {
		char name[16];

		snprintf(name, sizeof(name), "x%d", i);
		assert_int_equal(
		    policy_rate_take(r, p, name, "limited", NOW, NULL), KT_OK);
	}
	assert_int_equal(
	    policy_rate_take(r, p, "ci", "limited", NOW, NULL), KT_EPOLICY);
	policy_rate_free(r);
	policy_free(p);
}

struct rate_thread {
	struct policy_rate *r;
	const struct policy *p;
	int ok;
};

static void *
rate_worker(void *arg)
{
	struct rate_thread *t = arg;

	for (int i = 0; i < 500; i++)
		t->ok += policy_rate_take(
			     t->r, t->p, "ci", "busy", NOW, NULL) == KT_OK;
	return NULL;
}

static void
test_policy_rate_take_concurrent(void **state)
{
	struct policy *p = parse_ok(good_doc);
	struct policy_rate *r;
	struct rate_thread t[4];
	pthread_t th[4];
	int total = 0;

	(void)state;
	assert_int_equal(policy_rate_new(0, &r), KT_OK);
	for (int i = 0; i < 4; i++) {
		t[i].r = r;
		t[i].p = p;
		t[i].ok = 0;
		assert_int_equal(
		    pthread_create(&th[i], NULL, rate_worker, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += t[i].ok;
	}
	/* 2,000 tries at one instant, 1,000 an hour: exactly 1,000 pass. */
	assert_int_equal(total, 1000);
	policy_rate_free(r);
	policy_free(p);
}

static void
test_policy_throttle_backs_off(void **state)
{
	struct policy_throttle *t;
	int64_t now = NOW;

	(void)state;
	assert_int_equal(policy_throttle_new(0, &t), KT_OK);
	assert_int_equal(policy_throttle_wait(t, "192.0.2.1", now), 0);
	/* Four failures in a burst are free. */
	for (int i = 0; i < POLICY_THROTTLE_FREE - 1; i++) {
		policy_throttle_fail(t, "192.0.2.1", now);
		assert_int_equal(policy_throttle_wait(t, "192.0.2.1", now), 0);
	}
	/* Then 1, 2, 4, 8 seconds... */
	for (int64_t want = 1; want <= 8; want *= 2) {
		policy_throttle_fail(t, "192.0.2.1", now);
		assert_int_equal(
		    policy_throttle_wait(t, "192.0.2.1", now), want);
	}
	assert_int_equal(policy_throttle_wait(t, "192.0.2.1", now + 3), 5);
	assert_int_equal(policy_throttle_wait(t, "192.0.2.1", now + 8), 0);
	/* Other peers are not affected. */
	assert_int_equal(policy_throttle_wait(t, "192.0.2.2", now), 0);
	/* ... up to the cap. */
	for (int i = 0; i < 40; i++)
		policy_throttle_fail(t, "192.0.2.1", now);
	assert_int_equal(policy_throttle_wait(t, "192.0.2.1", now),
	    POLICY_THROTTLE_WAIT_MAX);
	policy_throttle_free(t);
	policy_throttle_free(NULL);
}

static void
test_policy_throttle_drains(void **state)
{
	struct policy_throttle *t;
	int64_t now = NOW;

	(void)state;
	assert_int_equal(policy_throttle_new(0, &t), KT_OK);
	/* One failure per drain period is never held up. */
	for (int i = 0; i < 100; i++) {
		policy_throttle_fail(t, "a", now);
		assert_int_equal(policy_throttle_wait(t, "a", now), 0);
		now += POLICY_THROTTLE_DRAIN;
	}
	/* A burst, then a pause long enough to drain it: free again. */
	for (int i = 0; i < POLICY_THROTTLE_FREE; i++)
		policy_throttle_fail(t, "b", now);
	assert_int_equal(policy_throttle_wait(t, "b", now), 1);
	now += POLICY_THROTTLE_FREE * POLICY_THROTTLE_DRAIN;
	policy_throttle_fail(t, "b", now);
	assert_int_equal(policy_throttle_wait(t, "b", now), 0);
	/* A partial drain: five failures, one period, then one more. */
	for (int i = 0; i < POLICY_THROTTLE_FREE; i++)
		policy_throttle_fail(t, "c", now);
	policy_throttle_fail(t, "c", now + POLICY_THROTTLE_DRAIN);
	assert_int_equal(
	    policy_throttle_wait(t, "c", now + POLICY_THROTTLE_DRAIN), 1);
	policy_throttle_free(t);
}

static void
test_policy_throttle_bounded_memory(void **state)
{
	struct policy_throttle *t;
	char a[100], b[100];

	(void)state;
	assert_int_equal(policy_throttle_new(2, &t), KT_OK);
	for (int i = 0; i < 6; i++)
		policy_throttle_fail(t, "old", NOW);
	for (int i = 0; i < 6; i++)
		policy_throttle_fail(t, "new", NOW + 1);
	assert_int_equal(policy_throttle_wait(t, "old", NOW + 1), 1);
	/* A third peer replaces the one whose latest failure is oldest. */
	policy_throttle_fail(t, "third", NOW + 1);
	assert_int_equal(policy_throttle_wait(t, "old", NOW + 1), 0);
	assert_int_equal(policy_throttle_wait(t, "new", NOW + 1), 2);
	policy_throttle_free(t);

	/* Only the first POLICY_PEER_MAX bytes name a peer. */
	assert_int_equal(policy_throttle_new(0, &t), KT_OK);
	memset(a, 'p', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[POLICY_PEER_MAX] = 'q';
	for (int i = 0; i < POLICY_THROTTLE_FREE; i++)
		policy_throttle_fail(t, a, NOW);
	assert_int_equal(policy_throttle_wait(t, b, NOW), 1);
	b[POLICY_PEER_MAX - 1] = 'q';
	assert_int_equal(policy_throttle_wait(t, b, NOW), 0);
	policy_throttle_free(t);
}

static void
test_policy_alg_strength_order(void **state)
{
	static const struct {
		const char *alg;
		unsigned bits;
	} cases[] = {
		{ "ed25519", 128 },
		{ "ecdsa-p256-sha256", 128 },
		{ "rsa3072-pss-sha256", 128 },
		{ "rsa4096-pss-sha256", 152 },
		{ "ecdsa-p384-sha256", 192 },
		{ "ecdsa-p224-sha256", 0 },
		{ "rsa2048-pss-sha256", 0 },
		{ "ecdsa-p256-sha1", 0 },
		{ "ED25519", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		    policy_alg_strength(cases[i].alg), cases[i].bits);
}

static void
test_policy_reason_name_all(void **state)
{
	static const char *const names[] = { "ok", "needs_approval",
		"invalid_request", "unknown_key", "unknown_principal",
		"not_requester", "key_revoked", "weak_algorithm",
		"certificate_expired", "outside_validity",
		"artifact_not_allowed", "outside_hours", "rate_limited",
		"self_approval", "not_approver" };

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(
		    policy_reason_name((enum policy_reason)i), names[i]);
	assert_string_equal(
	    policy_reason_name((enum policy_reason)99), "unknown");
}

/* The development policy and the three requests of docs/policy.md. */
static void
test_policy_worked_example(void **state)
{
	static const char example[] =
	    "{'principals':{" P_ADMIN "," P_CI ","
	    "'alice':{'token_sha256':'" H_ALICE "','roles':['approver']}," P_BOB
	    "},"
	    "'keys':{'default':{'requesters':['ci'],"
	    "'min_alg':'ecdsa-p256-sha256','rate':{'per_hour':3600}},"
	    "'release':{'requesters':['ci'],"
	    "'artifacts':['*.tar.gz','*.deb','release-*'],"
	    "'approvals':{'required':1,'from':['alice','bob']}}},"
	    "'requests':{'expire_seconds':86400}}";
	struct policy *p = parse_ok(example);
	const struct policy_principal *ci, *alice;
	struct policy_sign_request req = { NULL, "default", P256, ACT, 0,
		"app-1.4.2.tar.gz", NOW };
	struct policy_decision d;
	struct policy_approval a;
	struct policy_rate *r;
	const char *none[1] = { NULL };

	(void)state;
	assert_int_equal(policy_rate_new(0, &r), KT_OK);
	ci = policy_authenticate(p, (const uint8_t *)"ci-token", 8);
	assert_non_null(ci);

	/* 1: ci signs with default: allowed at once. */
	req.principal = ci->name;
	assert_int_equal(policy_check_sign(p, &req, &d), KT_OK);
	assert_int_equal(
	    policy_rate_take(r, p, ci->name, "default", NOW, NULL), KT_OK);

	/* 2: ci signs with release: pending until alice approves. */
	req.key = "release";
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_int_equal(d.verdict, POLICY_NEEDS_APPROVAL);
	assert_int_equal(d.required, 1);
	assert_int_equal(d.napprovers, 2);
	assert_string_equal(d.approvers[0], "alice");
	assert_string_equal(d.approvers[1], "bob");
	alice = policy_authenticate(p, (const uint8_t *)"alice-token", 11);
	assert_non_null(alice);
	assert_int_equal(policy_check_approval(
			     p, "release", ci->name, alice->name, none, 0, &a),
	    KT_OK);
	assert_true(a.complete);
	/* Decided again when complete: still only approvals missing. */
	assert_int_equal(policy_check_sign(p, &req, &d), KT_EPOLICY);
	assert_int_equal(d.verdict, POLICY_NEEDS_APPROVAL);

	/* 3: ci tries to approve its own request: refused. */
	assert_int_equal(policy_check_approval(
			     p, "release", ci->name, ci->name, none, 0, &a),
	    KT_EPOLICY);
	assert_int_equal(a.reason, POLICY_REASON_SELF_APPROVAL);
	assert_string_equal(
	    a.detail, "principal \"ci\" cannot approve their own request");
	policy_rate_free(r);
	policy_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_parse_rejects_bad_documents),
		cmocka_unit_test(test_policy_parse_enforces_limits),
		cmocka_unit_test(test_policy_parse_keeps_document),
		cmocka_unit_test(test_policy_load_file_reads_and_refuses),
		cmocka_unit_test(test_policy_authenticate_tokens),
		cmocka_unit_test(test_policy_check_sign_decisions),
		cmocka_unit_test(test_policy_check_sign_details),
		cmocka_unit_test(test_policy_check_sign_rejects_bad_requests),
		cmocka_unit_test(test_policy_check_approval_cases),
		cmocka_unit_test(test_policy_rate_take_limits_and_recovers),
		cmocka_unit_test(test_policy_rate_take_survives_reload),
		cmocka_unit_test(test_policy_rate_take_bounded_memory),
		cmocka_unit_test(test_policy_rate_take_concurrent),
		cmocka_unit_test(test_policy_throttle_backs_off),
		cmocka_unit_test(test_policy_throttle_drains),
		cmocka_unit_test(test_policy_throttle_bounded_memory),
		cmocka_unit_test(test_policy_alg_strength_order),
		cmocka_unit_test(test_policy_reason_name_all),
		cmocka_unit_test(test_policy_worked_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
