/*
 * The signing policy: parsing, authentication, sign and approval
 * decisions, rate limits and the failed-authentication throttle.  See
 * policy.h for the contract and docs/policy.md for the file format.
 *
 * Shape.  A parsed policy keeps a copy of the document (its SHA-256 names
 * it in the log), the principals sorted by name, and the keys sorted by
 * label; lookups are binary searches.  A key's requesters and approvers
 * are bit sets over principal indexes, so "counts once" is a bit test.
 * Nothing in a parsed policy changes afterwards, which is what lets
 * threads share it without a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "keytrail/encoding.h"
#include "keytrail/merkle.h"
#include "policy.h"

/* Hard invariant checks: a broken invariant aborts even in release builds. */
#define POL_ASSERT(c) \
	do { \
		if (!(c)) \
			abort(); \
	} while (0)

/* Room for a JSON path in an error message. */
#define POL_PATH_SIZE 256
/* Room for a name quoted in a message (longer ones are cut with "..."). */
#define POL_SAFE_SIZE 72
/* Every key's algorithm must be at least this strong: P-256, RSA-3072. */
#define POL_FLOOR_BITS 128
/* Seconds in an hour and a day. */
#define POL_HOUR 3600
#define POL_DAY 86400

/*
 * Known signing algorithms and the strength of their keys in bits
 * (NIST SP 800-57 Part 1 Rev. 5, Table 2; RSA-4096 from the formula of
 * SP 800-56B Rev. 2, Appendix D).  Every one signs a SHA-256 digest, so
 * collision resistance caps each at 128 bits: the order ranks the keys,
 * which is what a key-recovery attack, the one that forges anything, faces.
 */
static const struct {
	const char *name;
	unsigned bits;
} pol_algs[] = {
	{ "ed25519", 128 },
	{ "ecdsa-p256-sha256", 128 },
	{ "rsa3072-pss-sha256", 128 },
	{ "rsa4096-pss-sha256", 152 },
	{ "ecdsa-p384-sha256", 192 },
};
#define POL_NALGS (sizeof(pol_algs) / sizeof(pol_algs[0]))

static const struct {
	const char *name;
	unsigned bit;
} pol_roles[] = {
	{ "requester", POLICY_ROLE_REQUESTER },
	{ "approver", POLICY_ROLE_APPROVER },
	{ "submitter", POLICY_ROLE_SUBMITTER },
	{ "admin", POLICY_ROLE_ADMIN },
};
#define POL_NROLES (sizeof(pol_roles) / sizeof(pol_roles[0]))

/* Index 0 is Sunday, as for struct tm's tm_wday. */
static const char *const pol_days[7] = { "sun", "mon", "tue", "wed", "thu",
	"fri", "sat" };

static const char *const pol_reasons[] = {
	[POLICY_REASON_OK] = "ok",
	[POLICY_REASON_NEEDS_APPROVAL] = "needs_approval",
	[POLICY_REASON_INVALID] = "invalid_request",
	[POLICY_REASON_UNKNOWN_KEY] = "unknown_key",
	[POLICY_REASON_UNKNOWN_PRINCIPAL] = "unknown_principal",
	[POLICY_REASON_NOT_REQUESTER] = "not_requester",
	[POLICY_REASON_KEY_REVOKED] = "key_revoked",
	[POLICY_REASON_WEAK_ALGORITHM] = "weak_algorithm",
	[POLICY_REASON_CERTIFICATE_EXPIRED] = "certificate_expired",
	[POLICY_REASON_OUTSIDE_VALIDITY] = "outside_validity",
	[POLICY_REASON_ARTIFACT_NOT_ALLOWED] = "artifact_not_allowed",
	[POLICY_REASON_OUTSIDE_HOURS] = "outside_hours",
	[POLICY_REASON_RATE_LIMITED] = "rate_limited",
	[POLICY_REASON_SELF_APPROVAL] = "self_approval",
	[POLICY_REASON_NOT_APPROVER] = "not_approver",
};

/* A set of principals, by index into the sorted principal table. */
#define POL_SET_WORDS (POLICY_PRINCIPALS_MAX / 64)
struct pol_set {
	uint64_t w[POL_SET_WORDS];
};

struct pol_principal {
	struct policy_principal pub; /* what callers see */
	struct kt_hash token;	     /* SHA-256 of the bearer token */
};

struct pol_key {
	char label[POLICY_LABEL_MAX + 1];
	struct pol_set requesters;
	struct pol_set approvers;
	unsigned required;
	char (*patterns)[POLICY_PATTERN_MAX + 1];
	size_t npatterns;
	int any_artifact; /* one pattern is exactly "*" */
	int has_hours;
	int offset_min;	   /* local time = UTC + offset_min minutes */
	unsigned days;	   /* bit d set: day d (0 = Sunday) allowed */
	unsigned from_min; /* minutes after local midnight */
	unsigned to_min;   /* exclusive; below from_min: wraps midnight */
	uint32_t per_hour; /* 0: no rate limit */
	int64_t not_before;
	int64_t not_after; /* exclusive */
	size_t min_alg;	   /* index into pol_algs */
};

struct policy {
	uint8_t *doc;
	size_t len;
	char sha256[POLICY_SHA256_LEN + 1];
	struct pol_principal *principals; /* sorted by name */
	size_t nprincipals;
	struct pol_key *keys; /* sorted by label */
	size_t nkeys;
	uint32_t expire_seconds;
};

/* Where parse errors go. */
struct pol_parse {
	char *err;
	size_t errlen;
	struct policy *p;
};

static int pol_fail(struct pol_parse *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pol_decide(struct policy_decision *out, int rc,
    enum policy_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pol_refuse(struct policy_approval *out, int rc,
    enum policy_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a parse error and returns code. */
static int
pol_fail(struct pol_parse *ps, int code, const char *fmt, ...)
{
	va_list ap;

	/* Truncation is fine: the message is for people. */
	if (ps->err != NULL && ps->errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(ps->err, ps->errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * Copies s into out for quoting in a message: bytes outside printable
 * ASCII become '?', and a long s is cut and ends in "...".  Returns out.
 */
static const char *
pol_safe(const char *s, char out[POL_SAFE_SIZE])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < POL_SAFE_SIZE - 1; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i] != '\0')
		memcpy(out + POL_SAFE_SIZE - 4, "...", 3);
	out[i] = '\0';
	return out;
}

/* A path cut short by snprintf() ends in "..." to say so. */
static const char *
pol_path_end(char out[POL_PATH_SIZE], int n)
{
	if (n < 0 || n >= POL_PATH_SIZE)
		memcpy(out + POL_PATH_SIZE - 4, "...", 4);
	return out;
}

/* Writes the path of field name inside path ("" is the document). */
static const char *
pol_child(char out[POL_PATH_SIZE], const char *path, const char *name)
{
	char s[POL_SAFE_SIZE];

	return pol_path_end(out,
	    snprintf(out, POL_PATH_SIZE, "%s%s%s", path,
		path[0] != '\0' ? "." : "", pol_safe(name, s)));
}

/* Writes the path of element i of the array at path. */
static const char *
pol_elem(char out[POL_PATH_SIZE], const char *path, size_t i)
{
	return pol_path_end(
	    out, snprintf(out, POL_PATH_SIZE, "%s[%zu]", path, i));
}

/* Refuses any field of obj not in allowed (NULL-terminated). */
static int
pol_fields(struct pol_parse *ps, json_t *obj, const char *path,
    const char *const *allowed)
{
	char where[POL_PATH_SIZE];
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		size_t i;

		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(k, allowed[i]) == 0)
				break;
		}
		if (allowed[i] == NULL)
			return pol_fail(ps, KT_EPARSE, "%s: unknown field",
			    pol_child(where, path, k));
	}
	return KT_OK;
}

/*
 * Checks that v is an object with min to max entries; too many is
 * KT_ETOOBIG.
 */
static int
pol_object(
    struct pol_parse *ps, json_t *v, const char *path, size_t min, size_t max)
{
	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "%s: must be an object", path);
	if (json_object_size(v) < min || json_object_size(v) > max)
		return pol_fail(ps,
		    json_object_size(v) > max ? KT_ETOOBIG : KT_EPARSE,
		    "%s: must have %zu to %zu entries", path, min, max);
	return KT_OK;
}

/* Checks that v is an array of min to max strings. */
static int
pol_strings(
    struct pol_parse *ps, json_t *v, const char *path, size_t min, size_t max)
{
	char where[POL_PATH_SIZE];
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) < min ||
	    json_array_size(v) > max)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be an array of %zu to %zu strings", path, min,
		    max);
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return pol_fail(ps, KT_EPARSE, "%s: must be a string",
			    pol_elem(where, path, i));
	}
	return KT_OK;
}

/* Reads an integer from min to max. */
static int
pol_uint(struct pol_parse *ps, json_t *v, const char *path, uint64_t min,
    uint64_t max, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be an integer from %llu to %llu", path,
		    (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return KT_OK;
}

/*
 * Names: a letter or digit, then letters, digits, '.', '_' or '-'.
 * Principals are lowercase only; key labels, which name objects in the
 * HSM, may use uppercase too.  Either way a name is safe in a URL path, a
 * log line and a JSON path, and is never "." or "..".
 */
static int
pol_name_ok(const char *s, size_t max, int upper)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (upper && c >= 'A' && c <= 'Z');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

static void
pol_set_add(struct pol_set *s, size_t i)
{
	POL_ASSERT(i < POLICY_PRINCIPALS_MAX);
	s->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static int
pol_set_has(const struct pol_set *s, size_t i)
{
	return i < POLICY_PRINCIPALS_MAX && (s->w[i / 64] >> (i % 64) & 1) != 0;
}

static int
pol_principal_cmp(const void *a, const void *b)
{
	const struct pol_principal *x = a, *y = b;

	return strcmp(x->pub.name, y->pub.name);
}

static int
pol_key_cmp(const void *a, const void *b)
{
	const struct pol_key *x = a, *y = b;

	return strcmp(x->label, y->label);
}

/* The index of the principal called name, or SIZE_MAX. */
static size_t
pol_principal_index(const struct policy *p, const char *name)
{
	size_t lo = 0, hi = p->nprincipals;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, p->principals[mid].pub.name);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

static const struct pol_key *
pol_key_find(const struct policy *p, const char *label)
{
	size_t lo = 0, hi = p->nkeys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(label, p->keys[mid].label);

		if (c == 0)
			return &p->keys[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static size_t
pol_alg_index(const char *name)
{
	for (size_t i = 0; i < POL_NALGS; i++) {
		if (strcmp(name, pol_algs[i].name) == 0)
			return i;
	}
	return SIZE_MAX;
}

/* Two decimal digits at s, or -1. */
static int
pol_digits2(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * "HH:MM", 00:00 to 23:59, or "24:00" when end is set (the end of a day).
 * Stores minutes after midnight.
 */
static int
pol_hhmm(const char *s, int end, unsigned *out)
{
	int h, m;

	if (strlen(s) != 5 || s[2] != ':')
		return KT_EPARSE;
	h = pol_digits2(s);
	m = pol_digits2(s + 3);
	if (h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (!end || m)))
		return KT_EPARSE;
	*out = (unsigned)(h * 60 + m);
	return KT_OK;
}

/*
 * "Z" or "+HH:MM" / "-HH:MM" up to 14:00 (the widest offsets in use).
 * "-00:00" is refused: RFC 3339 section 4.3 gives it the meaning "offset
 * unknown".
 */
static int
pol_offset(const char *s, int *out)
{
	int h, m;

	if (strcmp(s, "Z") == 0) {
		*out = 0;
		return KT_OK;
	}
	if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
		return KT_EPARSE;
	h = pol_digits2(s + 1);
	m = pol_digits2(s + 4);
	if (h < 0 || m < 0 || m > 59 || h * 60 + m > 14 * 60 ||
	    (s[0] == '-' && h == 0 && m == 0))
		return KT_EPARSE;
	*out = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
	return KT_OK;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, y >= 0 (Howard
 * Hinnant, "chrono-Compatible Low-Level Date Algorithms",
 * days_from_civil).
 */
static int64_t
pol_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of pol_days_from_civil(), for z >= 0. */
static void
pol_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = z / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/*
 * RFC 3339 in UTC, whole seconds only: "YYYY-MM-DDTHH:MM:SSZ", years 1970
 * to 9999, no leap second.  One spelling per instant keeps the file easy
 * to read and compare.
 */
static int
pol_rfc3339(const char *s, int64_t *out)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };
	int c, yy, mo, d, h, mi, sec;
	int64_t y;
	unsigned dim;

	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return KT_EPARSE;
	c = pol_digits2(s);
	yy = pol_digits2(s + 2);
	mo = pol_digits2(s + 5);
	d = pol_digits2(s + 8);
	h = pol_digits2(s + 11);
	mi = pol_digits2(s + 14);
	sec = pol_digits2(s + 17);
	if (c < 0 || yy < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return KT_EPARSE;
	y = c * 100 + yy;
	dim = mdays[mo - 1];
	if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		dim = 29;
	if (y < 1970 || (unsigned)d > dim)
		return KT_EPARSE;
	*out = pol_days_from_civil(y, (unsigned)mo, (unsigned)d) * POL_DAY +
	    h * 3600 + mi * 60 + sec;
	return KT_OK;
}

/* Formats t (0 to POLICY_TIME_MAX) as RFC 3339 UTC. */
static const char *
pol_format_time(int64_t t, char out[32])
{
	int64_t y;
	unsigned m, d, s = (unsigned)(t % POL_DAY);
	int n;

	POL_ASSERT(t >= 0 && t <= POLICY_TIME_MAX);
	pol_civil_from_days(t / POL_DAY, &y, &m, &d);
	n = snprintf(out, 32, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y,
	    m, d, s / 3600, s / 60 % 60, s % 60);
	POL_ASSERT(n == 20);
	return out;
}

/*
 * Shell-style matching of a whole name: '*' matches any run of bytes,
 * '/' included, '?' exactly one byte, every other byte itself.  This is
 * fnmatch(3) with no flags, for the patterns the parser lets through (no
 * brackets, no backslashes), but it does not depend on the locale, and
 * going back only to the latest '*' keeps it at O(len(pat) * len(s)).
 */
static int
pol_glob(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '?' || (*pat != '*' && *pat == *s)) {
			pat++;
			s++;
		} else if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static int
pol_time_ok(int64_t t)
{
	return t >= 0 && t <= POLICY_TIME_MAX;
}

/* Floor division and remainder for a positive divisor. */
static int64_t
pol_floordiv(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static int
pol_parse_principal(struct pol_parse *ps, const char *name, json_t *v,
    struct pol_principal *out)
{
	static const char *const fields[] = { "token_sha256", "roles", NULL };
	char path[POL_PATH_SIZE], where[POL_PATH_SIZE], elem[POL_PATH_SIZE];
	char s[POL_SAFE_SIZE];
	json_t *tok, *roles, *r;
	size_t i;
	int rc;

	pol_child(path, "principals", name);
	if (!pol_name_ok(name, POLICY_NAME_MAX, 0))
		return pol_fail(ps, KT_EPARSE,
		    "%s: a principal name is 1 to %d of a-z 0-9 . _ -, "
		    "starting with a letter or digit",
		    path, POLICY_NAME_MAX);
	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "%s: must be an object", path);
	if ((rc = pol_fields(ps, v, path, fields)) != KT_OK)
		return rc;
	memcpy(out->pub.name, name, strlen(name) + 1);

	pol_child(where, path, "token_sha256");
	if ((tok = json_object_get(v, "token_sha256")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if (!json_is_string(tok) ||
	    kt_hex_decode_exact(json_string_value(tok), json_string_length(tok),
		out->token.b, KT_HASH_SIZE) != KT_OK)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be 64 lowercase hex digits (the SHA-256 of the "
		    "token)",
		    where);

	pol_child(where, path, "roles");
	if ((roles = json_object_get(v, "roles")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if ((rc = pol_strings(ps, roles, where, 1, POL_NROLES)) != KT_OK)
		return rc;
	json_array_foreach(roles, i, r)
	{
		const char *rs = json_string_value(r);
		size_t k;

		for (k = 0; k < POL_NROLES; k++) {
			if (strcmp(rs, pol_roles[k].name) == 0)
				break;
		}
		if (k == POL_NROLES)
			return pol_fail(ps, KT_EPARSE,
			    "%s: unknown role \"%s\" (requester, approver, "
			    "submitter or admin)",
			    pol_elem(elem, where, i), pol_safe(rs, s));
		if (out->pub.roles & pol_roles[k].bit)
			return pol_fail(ps, KT_EPARSE,
			    "%s: role \"%s\" is listed twice",
			    pol_elem(elem, where, i), rs);
		out->pub.roles |= pol_roles[k].bit;
	}
	return KT_OK;
}

static int
pol_parse_principals(struct pol_parse *ps, json_t *v)
{
	struct policy *p = ps->p;
	char path[POL_PATH_SIZE], where[POL_PATH_SIZE], other[POL_PATH_SIZE];
	const char *name;
	json_t *pv;
	int rc;

	if ((rc = pol_object(ps, v, "principals", 1, POLICY_PRINCIPALS_MAX)) !=
	    KT_OK)
		return rc;
	p->principals = calloc(json_object_size(v), sizeof(*p->principals));
	if (p->principals == NULL)
		return KT_ENOMEM;
	json_object_foreach(v, name, pv)
	{
		struct pol_principal *pr = &p->principals[p->nprincipals];

		if ((rc = pol_parse_principal(ps, name, pv, pr)) != KT_OK)
			return rc;
		/*
		 * Two principals with one token would make authentication
		 * ambiguous: whoever holds it is both.
		 */
		for (size_t j = 0; j < p->nprincipals; j++) {
			if (kt_hash_equal(&pr->token, &p->principals[j].token))
				return pol_fail(ps, KT_EPARSE,
				    "%s: the same token hash as %s",
				    pol_child(where,
					pol_child(path, "principals", name),
					"token_sha256"),
				    pol_child(other, "principals",
					p->principals[j].pub.name));
		}
		p->nprincipals++;
	}
	qsort(p->principals, p->nprincipals, sizeof(*p->principals),
	    pol_principal_cmp);
	return KT_OK;
}

/*
 * Reads a list of principal names into set: each declared, holding role,
 * listed once.  Stores how many in *count.
 */
static int
pol_parse_names(struct pol_parse *ps, json_t *v, const char *path,
    unsigned role, size_t min, size_t max, struct pol_set *set, size_t *count)
{
	char where[POL_PATH_SIZE], s[POL_SAFE_SIZE];
	const char *role_name =
	    role == POLICY_ROLE_REQUESTER ? "requester" : "approver";
	size_t i;
	json_t *e;
	int rc;

	if ((rc = pol_strings(ps, v, path, min, max)) != KT_OK)
		return rc;
	json_array_foreach(v, i, e)
	{
		const char *name = json_string_value(e);
		size_t idx = pol_principal_index(ps->p, name);

		pol_elem(where, path, i);
		if (idx == SIZE_MAX)
			return pol_fail(ps, KT_EPARSE,
			    "%s: \"%s\" is not a declared principal", where,
			    pol_safe(name, s));
		if (!(ps->p->principals[idx].pub.roles & role))
			return pol_fail(ps, KT_EPARSE,
			    "%s: principal \"%s\" does not hold the %s role",
			    where, name, role_name);
		if (pol_set_has(set, idx))
			return pol_fail(ps, KT_EPARSE,
			    "%s: \"%s\" is listed twice", where, name);
		pol_set_add(set, idx);
	}
	*count = json_array_size(v);
	return KT_OK;
}

static int
pol_parse_artifacts(
    struct pol_parse *ps, json_t *v, const char *path, struct pol_key *k)
{
	char where[POL_PATH_SIZE];
	size_t i;
	json_t *e;
	int rc;

	if ((rc = pol_strings(ps, v, path, 1, POLICY_PATTERNS_MAX)) != KT_OK)
		return rc;
	k->patterns = calloc(json_array_size(v), sizeof(*k->patterns));
	if (k->patterns == NULL)
		return KT_ENOMEM;
	json_array_foreach(v, i, e)
	{
		const char *pat = json_string_value(e);
		size_t n = json_string_length(e);

		pol_elem(where, path, i);
		if (n == 0 || n > POLICY_PATTERN_MAX)
			return pol_fail(ps, KT_EPARSE,
			    "%s: a pattern is 1 to %d bytes", where,
			    POLICY_PATTERN_MAX);
		for (size_t j = 0; j < n; j++) {
			unsigned char c = (unsigned char)pat[j];

			/*
			 * Brackets and backslashes would mean something to
			 * fnmatch(3) and nothing here: refuse them rather
			 * than let a pattern mean less than it seems to.
			 */
			if (c < 0x20 || c == 0x7f || c == '[' || c == ']' ||
			    c == '\\')
				return pol_fail(ps, KT_EPARSE,
				    "%s: control characters, '[', ']' and "
				    "'\\' are not allowed in patterns",
				    where);
		}
		for (size_t j = 0; j < k->npatterns; j++) {
			if (strcmp(k->patterns[j], pat) == 0)
				return pol_fail(ps, KT_EPARSE,
				    "%s: pattern listed twice", where);
		}
		memcpy(k->patterns[k->npatterns++], pat, n + 1);
		if (strcmp(pat, "*") == 0)
			k->any_artifact = 1;
	}
	return KT_OK;
}

static int
pol_parse_approvals(struct pol_parse *ps, json_t *v, const char *path,
    struct pol_key *k, const struct pol_set *requesters)
{
	static const char *const fields[] = { "required", "from", NULL };
	char where[POL_PATH_SIZE], s[POL_SAFE_SIZE];
	json_t *req, *from;
	uint64_t m = 0;
	size_t n = 0;
	int rc;

	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "%s: must be an object", path);
	if ((rc = pol_fields(ps, v, path, fields)) != KT_OK)
		return rc;
	pol_child(where, path, "required");
	if ((req = json_object_get(v, "required")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if ((rc = pol_uint(ps, req, where, 0, POLICY_APPROVALS_MAX, &m)) !=
	    KT_OK)
		return rc;
	if ((from = json_object_get(v, "from")) != NULL &&
	    (rc = pol_parse_names(ps, from, pol_child(where, path, "from"),
		 POLICY_ROLE_APPROVER, 0, POLICY_APPROVERS_MAX, &k->approvers,
		 &n)) != KT_OK)
		return rc;
	k->required = (unsigned)m;
	pol_child(where, path, "required");
	if (m > n)
		return pol_fail(ps, KT_EPARSE,
		    "%s: %u approval%s required, but approvals.from names "
		    "only %zu",
		    where, k->required, k->required == 1 ? "" : "s", n);
	/*
	 * A requester never approves its own request, so a requester who is
	 * also in the approver set leaves one approver fewer: if that is too
	 * few, the key could never sign for them.
	 */
	for (size_t i = 0; i < ps->p->nprincipals && m > 0; i++) {
		if (pol_set_has(requesters, i) &&
		    pol_set_has(&k->approvers, i) && m > n - 1)
			return pol_fail(ps, KT_EPARSE,
			    "%s: %u approval%s can never be given to "
			    "requester \"%s\", who may not approve their own "
			    "requests: approvals.from names only %zu others",
			    where, k->required, k->required == 1 ? "" : "s",
			    pol_safe(ps->p->principals[i].pub.name, s), n - 1);
	}
	return KT_OK;
}

static int
pol_parse_hours(
    struct pol_parse *ps, json_t *v, const char *path, struct pol_key *k)
{
	static const char *const fields[] = { "utc_offset", "days", "from",
		"to", NULL };
	char where[POL_PATH_SIZE], elem[POL_PATH_SIZE];
	json_t *off, *days, *from, *to, *e;
	size_t i;
	int rc;

	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "%s: must be an object", path);
	if ((rc = pol_fields(ps, v, path, fields)) != KT_OK)
		return rc;

	pol_child(where, path, "utc_offset");
	if ((off = json_object_get(v, "utc_offset")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if (!json_is_string(off) ||
	    pol_offset(json_string_value(off), &k->offset_min) != KT_OK)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be \"Z\" or \"+HH:MM\" / \"-HH:MM\" up to 14:00 "
		    "(not \"-00:00\")",
		    where);

	k->days = 0x7f;
	if ((days = json_object_get(v, "days")) != NULL) {
		pol_child(where, path, "days");
		if ((rc = pol_strings(ps, days, where, 1, 7)) != KT_OK)
			return rc;
		k->days = 0;
		json_array_foreach(days, i, e)
		{
			size_t d;

			for (d = 0; d < 7; d++) {
				if (strcmp(json_string_value(e), pol_days[d]) ==
				    0)
					break;
			}
			if (d == 7 || (k->days >> d & 1))
				return pol_fail(ps, KT_EPARSE, "%s: %s",
				    pol_elem(elem, where, i),
				    d == 7 ? "must be one of mon tue wed thu "
					     "fri sat sun"
					   : "day listed twice");
			k->days |= 1u << d;
		}
	}

	pol_child(where, path, "from");
	if ((from = json_object_get(v, "from")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if (!json_is_string(from) ||
	    pol_hhmm(json_string_value(from), 0, &k->from_min) != KT_OK)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be \"HH:MM\" from 00:00 to 23:59", where);
	pol_child(where, path, "to");
	if ((to = json_object_get(v, "to")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if (!json_is_string(to) ||
	    pol_hhmm(json_string_value(to), 1, &k->to_min) != KT_OK)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be \"HH:MM\" from 00:00 to 24:00", where);
	if (k->to_min == k->from_min)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must differ from from (for whole days use \"00:00\" "
		    "to \"24:00\")",
		    where);
	k->has_hours = 1;
	return KT_OK;
}

static int
pol_parse_time(struct pol_parse *ps, json_t *v, const char *path, int64_t *out)
{
	if (!json_is_string(v) ||
	    pol_rfc3339(json_string_value(v), out) != KT_OK)
		return pol_fail(ps, KT_EPARSE,
		    "%s: must be \"YYYY-MM-DDTHH:MM:SSZ\" (RFC 3339, UTC, "
		    "1970 to 9999)",
		    path);
	return KT_OK;
}

static int
pol_parse_key(
    struct pol_parse *ps, const char *label, json_t *v, struct pol_key *k)
{
	static const char *const fields[] = { "requesters", "artifacts",
		"approvals", "hours", "rate", "not_before", "not_after",
		"min_alg", NULL };
	static const char *const rate_fields[] = { "per_hour", NULL };
	char path[POL_PATH_SIZE], where[POL_PATH_SIZE], sub[POL_PATH_SIZE];
	json_t *f;
	size_t n;
	uint64_t u = 0;
	int rc;

	pol_child(path, "keys", label);
	if (!pol_name_ok(label, POLICY_LABEL_MAX, 1))
		return pol_fail(ps, KT_EPARSE,
		    "%s: a key label is 1 to %d of A-Z a-z 0-9 . _ -, "
		    "starting with a letter or digit",
		    path, POLICY_LABEL_MAX);
	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "%s: must be an object", path);
	if ((rc = pol_fields(ps, v, path, fields)) != KT_OK)
		return rc;
	memcpy(k->label, label, strlen(label) + 1);
	k->not_before = 0;
	k->not_after = INT64_MAX;
	k->min_alg = 0;

	pol_child(where, path, "requesters");
	if ((f = json_object_get(v, "requesters")) == NULL)
		return pol_fail(ps, KT_EPARSE, "%s: missing", where);
	if ((rc = pol_parse_names(ps, f, where, POLICY_ROLE_REQUESTER, 1,
		 POLICY_PRINCIPALS_MAX, &k->requesters, &n)) != KT_OK)
		return rc;

	if ((f = json_object_get(v, "artifacts")) != NULL) {
		rc = pol_parse_artifacts(
		    ps, f, pol_child(where, path, "artifacts"), k);
		if (rc != KT_OK)
			return rc;
	} else {
		if ((k->patterns = calloc(1, sizeof(*k->patterns))) == NULL)
			return KT_ENOMEM;
		memcpy(k->patterns[0], "*", 2);
		k->npatterns = 1;
		k->any_artifact = 1;
	}

	if ((f = json_object_get(v, "approvals")) != NULL &&
	    (rc = pol_parse_approvals(ps, f,
		 pol_child(where, path, "approvals"), k, &k->requesters)) !=
		KT_OK)
		return rc;

	if ((f = json_object_get(v, "hours")) != NULL &&
	    (rc = pol_parse_hours(ps, f, pol_child(where, path, "hours"), k)) !=
		KT_OK)
		return rc;

	if ((f = json_object_get(v, "rate")) != NULL) {
		pol_child(where, path, "rate");
		if (!json_is_object(f))
			return pol_fail(
			    ps, KT_EPARSE, "%s: must be an object", where);
		if ((rc = pol_fields(ps, f, where, rate_fields)) != KT_OK)
			return rc;
		pol_child(sub, where, "per_hour");
		if ((f = json_object_get(f, "per_hour")) == NULL)
			return pol_fail(ps, KT_EPARSE, "%s: missing", sub);
		if ((rc = pol_uint(ps, f, sub, 1, POLICY_RATE_MAX, &u)) !=
		    KT_OK)
			return rc;
		k->per_hour = (uint32_t)u;
	}

	if ((f = json_object_get(v, "not_before")) != NULL &&
	    (rc = pol_parse_time(ps, f, pol_child(where, path, "not_before"),
		 &k->not_before)) != KT_OK)
		return rc;
	if ((f = json_object_get(v, "not_after")) != NULL) {
		pol_child(where, path, "not_after");
		if ((rc = pol_parse_time(ps, f, where, &k->not_after)) != KT_OK)
			return rc;
		if (k->not_after <= k->not_before)
			return pol_fail(ps, KT_EPARSE,
			    "%s: must be later than not_before", where);
	}

	if ((f = json_object_get(v, "min_alg")) != NULL) {
		pol_child(where, path, "min_alg");
		if (!json_is_string(f) ||
		    (k->min_alg = pol_alg_index(json_string_value(f))) ==
			SIZE_MAX)
			return pol_fail(ps, KT_EPARSE,
			    "%s: must be one of ed25519, ecdsa-p256-sha256, "
			    "rsa3072-pss-sha256, rsa4096-pss-sha256, "
			    "ecdsa-p384-sha256",
			    where);
	}
	return KT_OK;
}

static int
pol_parse_keys(struct pol_parse *ps, json_t *v)
{
	struct policy *p = ps->p;
	const char *label;
	json_t *kv;
	int rc;

	if ((rc = pol_object(ps, v, "keys", 1, POLICY_KEYS_MAX)) != KT_OK)
		return rc;
	if ((p->keys = calloc(json_object_size(v), sizeof(*p->keys))) == NULL)
		return KT_ENOMEM;
	json_object_foreach(v, label, kv)
	{
		/* Counted first, so policy_free() sees every allocation. */
		struct pol_key *k = &p->keys[p->nkeys++];

		if ((rc = pol_parse_key(ps, label, kv, k)) != KT_OK)
			return rc;
	}
	qsort(p->keys, p->nkeys, sizeof(*p->keys), pol_key_cmp);
	return KT_OK;
}

static int
pol_parse_requests(struct pol_parse *ps, json_t *v)
{
	static const char *const fields[] = { "expire_seconds", NULL };
	json_t *e;
	uint64_t u = 0;
	int rc;

	if (!json_is_object(v))
		return pol_fail(ps, KT_EPARSE, "requests: must be an object");
	if ((rc = pol_fields(ps, v, "requests", fields)) != KT_OK)
		return rc;
	if ((e = json_object_get(v, "expire_seconds")) != NULL) {
		if ((rc = pol_uint(ps, e, "requests.expire_seconds",
			 POLICY_EXPIRE_MIN, POLICY_EXPIRE_MAX, &u)) != KT_OK)
			return rc;
		ps->p->expire_seconds = (uint32_t)u;
	}
	return KT_OK;
}

int
policy_parse(const uint8_t *doc, size_t len, struct policy **out, char *err,
    size_t errlen)
{
	static const char *const fields[] = { "principals", "keys", "requests",
		NULL };
	struct pol_parse ps = { err, errlen, NULL };
	struct kt_hash h;
	json_error_t jerr;
	json_t *j = NULL, *v;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (doc == NULL)
		return pol_fail(&ps, KT_EINVAL, "$: no document");
	if (len > POLICY_FILE_MAX)
		return pol_fail(&ps, KT_ETOOBIG, "$: larger than %d bytes",
		    POLICY_FILE_MAX);
	if ((ps.p = calloc(1, sizeof(*ps.p))) == NULL)
		return KT_ENOMEM;
	ps.p->expire_seconds = POLICY_EXPIRE_DEFAULT;

	/* Duplicate keys are refused: which of two would be meant? */
	j = json_loadb((const char *)doc, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		rc = pol_fail(&ps, KT_EPARSE, "$: line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(j)) {
		rc = pol_fail(&ps, KT_EPARSE, "$: must be a JSON object");
		goto out;
	}
	if ((rc = pol_fields(&ps, j, "", fields)) != KT_OK)
		goto out;
	if ((v = json_object_get(j, "principals")) == NULL) {
		rc = pol_fail(&ps, KT_EPARSE, "principals: missing");
		goto out;
	}
	if ((rc = pol_parse_principals(&ps, v)) != KT_OK)
		goto out;
	if ((v = json_object_get(j, "keys")) == NULL) {
		rc = pol_fail(&ps, KT_EPARSE, "keys: missing");
		goto out;
	}
	if ((rc = pol_parse_keys(&ps, v)) != KT_OK)
		goto out;
	if ((v = json_object_get(j, "requests")) != NULL &&
	    (rc = pol_parse_requests(&ps, v)) != KT_OK)
		goto out;

	if ((ps.p->doc = malloc(len > 0 ? len : 1)) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	if (len > 0)
		memcpy(ps.p->doc, doc, len);
	ps.p->len = len;
	SHA256(doc, len, h.b);
	kt_hex_encode(h.b, KT_HASH_SIZE, ps.p->sha256);
	*out = ps.p;
	ps.p = NULL;
	rc = KT_OK;
out:
	if (rc == KT_ENOMEM)
		(void)pol_fail(&ps, rc, "$: out of memory");
	json_decref(j);
	policy_free(ps.p);
	return rc;
}

int
policy_load_file(
    const char *path, struct policy **out, char *err, size_t errlen)
{
	struct pol_parse ps = { err, errlen, NULL };
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* O_NONBLOCK: a FIFO must not hang a reload; fstat() refuses it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return pol_fail(&ps, errno == ENOENT ? KT_ENOTFOUND : KT_EIO,
		    "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = pol_fail(&ps, KT_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = pol_fail(&ps, KT_EIO, "%s: not a regular file", path);
		goto out;
	}
	/* One byte more than allowed tells "too big" from "exactly full". */
	if ((buf = malloc(POLICY_FILE_MAX + 1)) == NULL) {
		rc = KT_ENOMEM;
		goto out;
	}
	while (len < POLICY_FILE_MAX + 1) {
		ssize_t n = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = pol_fail(
			    &ps, KT_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > POLICY_FILE_MAX) {
		rc = pol_fail(&ps, KT_ETOOBIG, "%s: larger than %d bytes", path,
		    POLICY_FILE_MAX);
		goto out;
	}
	rc = policy_parse(buf, len, out, err, errlen);
out:
	close(fd);
	free(buf);
	return rc;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nkeys; i++)
		free(p->keys[i].patterns);
	free(p->keys);
	if (p->principals != NULL)
		kt_wipe(p->principals, p->nprincipals * sizeof(*p->principals));
	free(p->principals);
	free(p->doc);
	free(p);
}

const char *
policy_sha256(const struct policy *p)
{
	return p->sha256;
}

struct kt_bytes
policy_document(const struct policy *p)
{
	struct kt_bytes b = { p->doc, p->len };

	return b;
}

uint32_t
policy_request_expire(const struct policy *p)
{
	return p->expire_seconds;
}

const struct policy_principal *
policy_principal_find(const struct policy *p, const char *name)
{
	size_t i = name != NULL ? pol_principal_index(p, name) : SIZE_MAX;

	return i == SIZE_MAX ? NULL : &p->principals[i].pub;
}

const struct policy_principal *
policy_authenticate(const struct policy *p, const uint8_t *token, size_t len)
{
	struct kt_hash h;
	size_t match = 0; /* index + 1 of the matching principal */

	if (token == NULL || len == 0)
		return NULL;
	kt_sha256(token, len, &h);
	/*
	 * Every principal is compared, and the match is picked with a mask
	 * rather than a branch, so the time does not depend on which one
	 * matched.  Token hashes are unique (policy_parse() checks), so at
	 * most one does.
	 */
	for (size_t i = 0; i < p->nprincipals; i++) {
		size_t eq =
		    (size_t)(CRYPTO_memcmp(h.b, p->principals[i].token.b,
				 KT_HASH_SIZE) == 0);

		match |= (i + 1) & ((size_t)0 - eq);
	}
	kt_wipe(&h, sizeof(h));
	return match == 0 ? NULL : &p->principals[match - 1].pub;
}

unsigned
policy_alg_strength(const char *alg)
{
	size_t i = alg != NULL ? pol_alg_index(alg) : SIZE_MAX;

	return i == SIZE_MAX ? 0 : pol_algs[i].bits;
}

const char *
policy_reason_name(enum policy_reason r)
{
	if ((size_t)r >= sizeof(pol_reasons) / sizeof(pol_reasons[0]) ||
	    pol_reasons[r] == NULL)
		return "unknown";
	return pol_reasons[r];
}

static int
pol_decide(struct policy_decision *out, int rc, enum policy_reason reason,
    const char *fmt, ...)
{
	va_list ap;

	out->verdict = rc == KT_OK		     ? POLICY_ALLOW
	    : reason == POLICY_REASON_NEEDS_APPROVAL ? POLICY_NEEDS_APPROVAL
						     : POLICY_DENY;
	out->reason = reason;
	va_start(ap, fmt);
	(void)vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	return rc;
}

/* Whether now falls inside k's hours. */
static int
pol_in_hours(const struct pol_key *k, int64_t now)
{
	int64_t local = now + (int64_t)k->offset_min * 60;
	int64_t day = pol_floordiv(local, POL_DAY);
	unsigned minute = (unsigned)((local - day * POL_DAY) / 60);
	/* 1970-01-01 was a Thursday. */
	unsigned wday = (unsigned)((day % 7 + 7 + 4) % 7);
	unsigned yday = (wday + 6) % 7;

	if (k->from_min < k->to_min)
		return (k->days >> wday & 1) && minute >= k->from_min &&
		    minute < k->to_min;
	/*
	 * The window wraps midnight and belongs to the day it starts on:
	 * "fri 22:00 to 06:00" covers Friday night into Saturday morning.
	 */
	return ((k->days >> wday & 1) && minute >= k->from_min) ||
	    ((k->days >> yday & 1) && minute < k->to_min);
}

/* Writes k's hours as "mon,tue 08:00-18:00 UTC+01:00". */
static const char *
pol_format_hours(const struct pol_key *k, char *out, size_t outlen)
{
	char days[32] = "";
	size_t n = 0;

	for (unsigned i = 0; i < 7; i++) {
		/* Monday first, as people write weeks. */
		unsigned d = (i + 1) % 7;

		if (!(k->days >> d & 1))
			continue;
		if (n > 0)
			days[n++] = ',';
		memcpy(days + n, pol_days[d], 4);
		n += 3;
	}
	(void)snprintf(out, outlen, "%s %02u:%02u-%02u:%02u UTC%c%02d:%02d",
	    days, k->from_min / 60, k->from_min % 60, k->to_min / 60,
	    k->to_min % 60, k->offset_min < 0 ? '-' : '+',
	    abs(k->offset_min) / 60, abs(k->offset_min) % 60);
	return out;
}

int
policy_check_sign(const struct policy *p, const struct policy_sign_request *req,
    struct policy_decision *out)
{
	const struct pol_key *k;
	char a[POL_SAFE_SIZE], b[POL_SAFE_SIZE], t[32];
	char hours[96];
	size_t pi, alg;

	POL_ASSERT(p != NULL && req != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if (req->principal == NULL || req->key == NULL || req->alg == NULL ||
	    (req->key_state != POLICY_KEY_ACTIVE &&
		req->key_state != POLICY_KEY_REVOKED) ||
	    !pol_time_ok(req->now) ||
	    (req->cert_not_after != 0 && !pol_time_ok(req->cert_not_after)))
		return pol_decide(out, KT_EINVAL, POLICY_REASON_INVALID,
		    "the sign request is incomplete");

	if ((k = pol_key_find(p, req->key)) == NULL)
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_UNKNOWN_KEY,
		    "key \"%s\" is not in the policy", pol_safe(req->key, a));
	pol_safe(k->label, b);
	if ((pi = pol_principal_index(p, req->principal)) == SIZE_MAX)
		return pol_decide(out, KT_EPOLICY,
		    POLICY_REASON_UNKNOWN_PRINCIPAL,
		    "principal \"%s\" is not in the policy",
		    pol_safe(req->principal, a));
	if (!(p->principals[pi].pub.roles & POLICY_ROLE_REQUESTER))
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_NOT_REQUESTER,
		    "principal \"%s\" does not hold the requester role",
		    req->principal);
	if (!pol_set_has(&k->requesters, pi))
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_NOT_REQUESTER,
		    "principal \"%s\" may not request signatures with key "
		    "\"%s\"",
		    req->principal, b);

	if (req->key_state == POLICY_KEY_REVOKED)
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_KEY_REVOKED,
		    "key \"%s\" is revoked", b);
	alg = pol_alg_index(req->alg);
	if (alg == SIZE_MAX || pol_algs[alg].bits < POL_FLOOR_BITS)
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_WEAK_ALGORITHM,
		    "algorithm \"%s\" never signs (at least P-256 or "
		    "RSA-3072, never SHA-1)",
		    pol_safe(req->alg, a));
	if (pol_algs[alg].bits < pol_algs[k->min_alg].bits)
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_WEAK_ALGORITHM,
		    "algorithm \"%s\" is weaker than the min_alg \"%s\" of "
		    "key \"%s\"",
		    pol_algs[alg].name, pol_algs[k->min_alg].name, b);
	/* X.509 notAfter is inclusive (RFC 5280 section 4.1.2.5). */
	if (req->cert_not_after != 0 && req->now > req->cert_not_after)
		return pol_decide(out, KT_EPOLICY,
		    POLICY_REASON_CERTIFICATE_EXPIRED,
		    "the certificate of key \"%s\" expired at %s", b,
		    pol_format_time(req->cert_not_after, t));
	if (req->now < k->not_before)
		return pol_decide(out, KT_EPOLICY,
		    POLICY_REASON_OUTSIDE_VALIDITY,
		    "key \"%s\" may not sign before %s", b,
		    pol_format_time(k->not_before, t));
	if (req->now >= k->not_after)
		return pol_decide(out, KT_EPOLICY,
		    POLICY_REASON_OUTSIDE_VALIDITY,
		    "key \"%s\" may not sign from %s on", b,
		    pol_format_time(k->not_after, t));

	if (req->artifact == NULL || req->artifact[0] == '\0') {
		if (!k->any_artifact)
			return pol_decide(out, KT_EPOLICY,
			    POLICY_REASON_ARTIFACT_NOT_ALLOWED,
			    "key \"%s\" signs only named artifacts", b);
	} else {
		size_t i = 0;

		/* Longer names match nothing: matching costs their length. */
		if (strnlen(req->artifact, POLICY_ARTIFACT_MAX + 1) >
		    POLICY_ARTIFACT_MAX)
			i = k->npatterns;
		while (i < k->npatterns &&
		    !pol_glob(k->patterns[i], req->artifact))
			i++;
		if (i == k->npatterns)
			return pol_decide(out, KT_EPOLICY,
			    POLICY_REASON_ARTIFACT_NOT_ALLOWED,
			    "artifact \"%s\" matches no pattern of key \"%s\"",
			    pol_safe(req->artifact, a), b);
	}

	if (k->has_hours && !pol_in_hours(k, req->now))
		return pol_decide(out, KT_EPOLICY, POLICY_REASON_OUTSIDE_HOURS,
		    "key \"%s\" signs only %s", b,
		    pol_format_hours(k, hours, sizeof(hours)));

	if (k->required == 0)
		return pol_decide(out, KT_OK, POLICY_REASON_OK, "allowed");
	out->required = k->required;
	for (size_t i = 0; i < p->nprincipals; i++) {
		if (i != pi && pol_set_has(&k->approvers, i)) {
			POL_ASSERT(out->napprovers < POLICY_APPROVERS_MAX);
			out->approvers[out->napprovers++] =
			    p->principals[i].pub.name;
		}
	}
	/* policy_parse() made sure the quorum is reachable. */
	POL_ASSERT(out->napprovers >= out->required);
	return pol_decide(out, KT_EPOLICY, POLICY_REASON_NEEDS_APPROVAL,
	    "key \"%s\" needs %u approval%s", b, k->required,
	    k->required == 1 ? "" : "s");
}

static int
pol_refuse(struct policy_approval *out, int rc, enum policy_reason reason,
    const char *fmt, ...)
{
	va_list ap;

	out->reason = reason;
	va_start(ap, fmt);
	(void)vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	return rc;
}

int
policy_check_approval(const struct policy *p, const char *key,
    const char *requester, const char *approver, const char *const *already,
    size_t nalready, struct policy_approval *out)
{
	const struct pol_key *k;
	struct pol_set seen = { { 0 } };
	char a[POL_SAFE_SIZE], b[POL_SAFE_SIZE];
	size_t ai;

	POL_ASSERT(p != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if (key == NULL || requester == NULL ||
	    (already == NULL && nalready > 0))
		return pol_refuse(out, KT_EINVAL, POLICY_REASON_INVALID,
		    "the approval is incomplete");
	for (size_t i = 0; i < nalready; i++) {
		if (already[i] == NULL)
			return pol_refuse(out, KT_EINVAL, POLICY_REASON_INVALID,
			    "the approval is incomplete");
	}
	if ((k = pol_key_find(p, key)) == NULL)
		return pol_refuse(out, KT_EPOLICY, POLICY_REASON_UNKNOWN_KEY,
		    "key \"%s\" is not in the policy", pol_safe(key, a));
	pol_safe(k->label, b);

	/*
	 * Count what is recorded under this policy: a principal once, never
	 * the requester, only members of the key's approver set (who all
	 * hold the approver role: policy_parse() checked).
	 */
	for (size_t i = 0; i < nalready; i++) {
		size_t idx = pol_principal_index(p, already[i]);

		if (idx != SIZE_MAX && strcmp(already[i], requester) != 0 &&
		    pol_set_has(&k->approvers, idx) &&
		    !pol_set_has(&seen, idx)) {
			pol_set_add(&seen, idx);
			out->have++;
		}
	}
	out->required = k->required;
	out->complete = out->have >= out->required;
	if (approver == NULL)
		return pol_refuse(out, KT_OK, POLICY_REASON_OK,
		    "%u of %u approvals", out->have, out->required);

	if (strcmp(approver, requester) == 0)
		return pol_refuse(out, KT_EPOLICY, POLICY_REASON_SELF_APPROVAL,
		    "principal \"%s\" cannot approve their own request",
		    pol_safe(approver, a));
	if ((ai = pol_principal_index(p, approver)) == SIZE_MAX)
		return pol_refuse(out, KT_EPOLICY,
		    POLICY_REASON_UNKNOWN_PRINCIPAL,
		    "principal \"%s\" is not in the policy",
		    pol_safe(approver, a));
	if (!(p->principals[ai].pub.roles & POLICY_ROLE_APPROVER))
		return pol_refuse(out, KT_EPOLICY, POLICY_REASON_NOT_APPROVER,
		    "principal \"%s\" does not hold the approver role",
		    approver);
	if (!pol_set_has(&k->approvers, ai))
		return pol_refuse(out, KT_EPOLICY, POLICY_REASON_NOT_APPROVER,
		    "principal \"%s\" may not approve requests for key "
		    "\"%s\"",
		    approver, b);
	if (!pol_set_has(&seen, ai)) {
		out->have++;
		out->counted = 1;
		out->complete = out->have >= out->required;
	}
	return pol_refuse(out, KT_OK, POLICY_REASON_OK, "%u of %u approvals%s",
	    out->have, out->required,
	    out->counted ? "" : " (already approved)");
}

int
policy_key_rate(const struct policy *p, const char *key, const char **label,
    uint32_t *per_hour)
{
	const struct pol_key *k;

	if (p == NULL || key == NULL)
		return KT_EINVAL;
	if ((k = pol_key_find(p, key)) == NULL)
		return KT_ENOTFOUND;
	*label = k->label;
	*per_hour = k->per_hour;
	return KT_OK;
}
