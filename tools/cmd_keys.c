/*
 * keytrail keys: the key lifecycle from the command line, over the
 * daemon's HTTP API (docs/api.md, "POST /v1/keys"):
 *
 *   list                      GET /v1/keys, one line per key
 *   show KEY                  the key's registry record, as JSON
 *   create LABEL [--alg ALG]  a new key in the HSM (action "create")
 *   import-cert KEY FILE      attach a certificate (action "certificate")
 *   revoke KEY --reason TEXT  action "revoke"
 *   csr KEY --subject DN      POST /v1/keys/<id>/csr, the PEM on stdout
 *
 * KEY is a key ID, a unique prefix of one (8 hex digits or more), or a
 * label.  Changes need an admin token: --token-file FILE, or the file
 * named by $KEYTRAIL_TOKEN_FILE.  The daemon is --url URL or
 * $KEYTRAIL_URL.  Every failure is one line on stderr and a non-zero exit
 * status: 1 when the daemon or a file says no, 2 for a usage error.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "httpc.h"
#include "keytrail/encoding.h"

/* Largest certificate file read (PEM or DER). */
#define KEYS_CERT_FILE_MAX (64 * 1024)
/* Longest bearer token read from a token file. */
#define KEYS_TOKEN_MAX 512
/* Seconds to wait for an answer: an RSA-4096 key takes a while. */
#define KEYS_TIMEOUT_S 300
/* Shortest key ID prefix accepted in place of the whole ID. */
#define KEYS_PREFIX_MIN 8

struct keys_cli {
	const char *sub; /* the subcommand's name */
	const char *url;
	const char *token_file;
	const char *alg;
	const char *reason;
	const char *subject;
	char *args[2]; /* positional arguments */
	size_t nargs;
	char token[KEYS_TOKEN_MAX];
	struct httpc *c;
};

struct keys_sub {
	const char *name;
	size_t nargs;	 /* positional arguments it takes */
	int admin;	 /* needs the admin token */
	const char *use; /* its usage line */
	const char *help;
	int (*fn)(struct keys_cli *k);
};

static void keys_fail(struct keys_cli *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line on stderr: "keytrail keys <sub>: <message>". */
static void
keys_fail(struct keys_cli *k, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keytrail keys %s: ", k->sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * One request; body (a JSON object, taken over) may be NULL.  Returns the
 * answer parsed as JSON when the status is 200, or NULL after saying why.
 */
static json_t *
keys_call(struct keys_cli *k, const char *method, const char *path,
    json_t *body, int auth)
{
	struct httpc_resp resp;
	char *s = NULL;
	json_t *j = NULL;
	int rc;

	if (body != NULL &&
	    (s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(body);
		keys_fail(k, "out of memory");
		return NULL;
	}
	json_decref(body);
	rc = httpc_do(k->c, method, path, auth ? k->token : NULL,
	    (const uint8_t *)s, s ? strlen(s) : 0, &resp);
	free(s);
	if (rc != KT_OK) {
		keys_fail(k, "%s: no answer (%s)", k->url, kt_strerror(rc));
		return NULL;
	}
	j = json_loadb((const char *)resp.body.p, resp.body.len, 0, NULL);
	if (resp.status != 200) {
		const char *err =
		    json_string_value(json_object_get(j, "error"));
		const char *detail =
		    json_string_value(json_object_get(j, "detail"));

		keys_fail(k, "%d %s: %s", resp.status, err ? err : "error",
		    detail ? detail : "(no detail)");
		json_decref(j);
		j = NULL;
	} else if (j == NULL || !json_is_object(j)) {
		keys_fail(k, "the answer is not a JSON object");
		json_decref(j);
		j = NULL;
	}
	httpc_resp_free(&resp);
	return j;
}

/* The registry (GET /v1/keys): the "keys" array, or NULL after failing. */
static json_t *
keys_fetch(struct keys_cli *k)
{
	json_t *j = keys_call(k, "GET", "/v1/keys", NULL, 0), *arr;

	if (j == NULL)
		return NULL;
	arr = json_incref(json_object_get(j, "keys"));
	json_decref(j);
	if (!json_is_array(arr)) {
		json_decref(arr);
		keys_fail(k, "the answer has no key list");
		return NULL;
	}
	return arr;
}

/*
 * The record of the key named by name (an ID, a unique prefix of one, or
 * a label), with its "key", or NULL after failing.
 */
static json_t *
keys_find(struct keys_cli *k, const char *name)
{
	json_t *arr = keys_fetch(k), *v, *hit = NULL;
	size_t i, n = strlen(name), nhits = 0;
	int prefix = n >= KEYS_PREFIX_MIN && n <= 64 &&
	    strspn(name, "0123456789abcdef") == n;

	if (arr == NULL)
		return NULL;
	/* An exact ID, then an exact label, then an ID prefix. */
	for (int pass = 0; pass < 3 && nhits == 0; pass++) {
		json_array_foreach(arr, i, v)
		{
			const char *id =
			    json_string_value(json_object_get(v, "key"));
			const char *label =
			    json_string_value(json_object_get(v, "label"));
			int match = 0;

			if (pass == 0)
				match = id != NULL && strcmp(id, name) == 0;
			else if (pass == 1)
				match =
				    label != NULL && strcmp(label, name) == 0;
			else
				match = prefix && id != NULL &&
				    strncmp(id, name, n) == 0;
			if (match) {
				hit = v;
				nhits++;
			}
		}
	}
	if (nhits != 1) {
		keys_fail(k,
		    nhits == 0 ? "%s: no such key (an ID, an ID prefix of 8 "
				 "or more hex digits, or a label)"
			       : "%s: names more than one key; use the key ID",
		    name);
		json_decref(arr);
		return NULL;
	}
	json_incref(hit);
	json_decref(arr);
	return hit;
}

/* A record's string field, or def. */
static const char *
keys_str(const json_t *rec, const char *field, const char *def)
{
	const char *s = json_string_value(json_object_get(rec, field));

	return s != NULL ? s : def;
}

/* Unix seconds as RFC 3339 UTC. */
static void
keys_time(json_int_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

/* ---- subcommands ------------------------------------------------------- */

static int
keys_list(struct keys_cli *k)
{
	json_t *arr = keys_fetch(k), *v;
	size_t i;

	if (arr == NULL)
		return 1;
	json_array_foreach(arr, i, v)
	{
		json_t *na = json_object_get(v, "not_after");
		char cert[64], when[32];

		if (json_is_integer(na)) {
			keys_time(json_integer_value(na), when);
			snprintf(cert, sizeof(cert), "cert-expires=%s%s", when,
			    json_integer_value(na) < (json_int_t)time(NULL)
				? "(expired)"
				: "");
		} else {
			snprintf(cert, sizeof(cert), "no-cert");
		}
		printf("%.16s  %-24s  %-18s  %-7s  %s\n",
		    keys_str(v, "key", "?"), keys_str(v, "label", "-"),
		    keys_str(v, "alg", "?"), keys_str(v, "state", "?"), cert);
	}
	json_decref(arr);
	return 0;
}

static int
keys_show(struct keys_cli *k)
{
	json_t *rec = keys_find(k, k->args[0]);
	char *s;

	if (rec == NULL)
		return 1;
	s = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(rec);
	if (s == NULL) {
		keys_fail(k, "out of memory");
		return 1;
	}
	printf("%s\n", s);
	free(s);
	return 0;
}

/* Prints what a logged change answered. */
static int
keys_logged(struct keys_cli *k, json_t *j, const char *what)
{
	json_t *index = json_object_get(j, "index");

	if (j == NULL)
		return 1;
	if (!json_is_integer(index) ||
	    json_string_value(json_object_get(j, "key")) == NULL) {
		keys_fail(k, "the answer has no key or index");
		json_decref(j);
		return 1;
	}
	printf("%s %s, logged at index %lld\n", what, keys_str(j, "key", "?"),
	    (long long)json_integer_value(index));
	json_decref(j);
	return 0;
}

static int
keys_create(struct keys_cli *k)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "action", "create", "label",
	    k->args[0], "alg", k->alg ? k->alg : "ecdsa-p256-sha256");

	if (body == NULL) {
		keys_fail(k, "out of memory");
		return 1;
	}
	return keys_logged(
	    k, keys_call(k, "POST", "/v1/keys", body, 1), "created key");
}

/*
 * Reads a certificate file, PEM or DER, and appends its DER to der.
 * Returns 0, or -1 after failing.
 */
static int
keys_cert_read(struct keys_cli *k, const char *path, struct kt_buf *der)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *p = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	size_t n;
	int len, rc = -1;

	if (f == NULL) {
		keys_fail(k, "%s: cannot open", path);
		return -1;
	}
	if ((buf = malloc(KEYS_CERT_FILE_MAX + 1)) == NULL) {
		keys_fail(k, "out of memory");
		goto out;
	}
	n = fread(buf, 1, KEYS_CERT_FILE_MAX + 1, f);
	if (ferror(f) || n == 0 || n > KEYS_CERT_FILE_MAX) {
		keys_fail(
		    k, "%s: must hold 1 to %d bytes", path, KEYS_CERT_FILE_MAX);
		goto out;
	}
	if (n >= 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		/* PEM: the first certificate, as DER. */
		if ((b = BIO_new_mem_buf(buf, (int)n)) == NULL ||
		    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
		    (len = i2d_X509(x, &p)) <= 0) {
			keys_fail(k, "%s: not a PEM certificate", path);
			goto out;
		}
		if (kt_buf_append(der, p, (size_t)len) != KT_OK) {
			keys_fail(k, "%s: certificate too large", path);
			goto out;
		}
	} else if (kt_buf_append(der, buf, n) != KT_OK) {
		keys_fail(k, "%s: certificate too large", path);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(p);
	X509_free(x);
	BIO_free(b);
	free(buf);
	fclose(f);
	return rc;
}

static int
keys_import_cert(struct keys_cli *k)
{
	struct kt_buf der, b64;
	json_t *rec = NULL, *body = NULL;
	int rc = 1;

	kt_buf_init(&der, KEYS_CERT_FILE_MAX);
	kt_buf_init(&b64, KT_B64_ENCLEN(KEYS_CERT_FILE_MAX) + 1);
	if (keys_cert_read(k, k->args[1], &der) != 0 ||
	    (rec = keys_find(k, k->args[0])) == NULL)
		goto out;
	if (kt_b64_append(&b64, der.p, der.len) != KT_OK ||
	    kt_buf_terminate(&b64) != KT_OK ||
	    (body = json_pack("{s:s, s:s, s:s}", "action", "certificate", "key",
		 keys_str(rec, "key", ""), "cert", (const char *)b64.p)) ==
		NULL) {
		keys_fail(k, "out of memory");
		goto out;
	}
	rc = keys_logged(k, keys_call(k, "POST", "/v1/keys", body, 1),
	    "certificate attached to key");
out:
	json_decref(rec);
	kt_buf_free(&der);
	kt_buf_free(&b64);
	return rc;
}

static int
keys_revoke(struct keys_cli *k)
{
	json_t *rec, *body;

	if ((rec = keys_find(k, k->args[0])) == NULL)
		return 1;
	body = json_pack("{s:s, s:s, s:s}", "action", "revoke", "key",
	    keys_str(rec, "key", ""), "reason", k->reason);
	json_decref(rec);
	if (body == NULL) {
		keys_fail(k, "out of memory");
		return 1;
	}
	return keys_logged(
	    k, keys_call(k, "POST", "/v1/keys", body, 1), "revoked key");
}

static int
keys_csr(struct keys_cli *k)
{
	json_t *rec, *j;
	const char *pem;
	char path[128];

	if ((rec = keys_find(k, k->args[0])) == NULL)
		return 1;
	snprintf(
	    path, sizeof(path), "/v1/keys/%.64s/csr", keys_str(rec, "key", ""));
	json_decref(rec);
	j = keys_call(
	    k, "POST", path, json_pack("{s:s}", "subject", k->subject), 1);
	if (j == NULL)
		return 1;
	if ((pem = json_string_value(json_object_get(j, "csr"))) == NULL) {
		keys_fail(k, "the answer has no csr");
		json_decref(j);
		return 1;
	}
	fputs(pem, stdout);
	json_decref(j);
	return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct keys_sub keys_subs[] = {
	{ "list", 0, 0, "list",
	    "one line per key: ID prefix, label, algorithm, state and\n"
	    "        certificate expiry",
	    keys_list },
	{ "show", 1, 0, "show KEY", "the key's registry record, as JSON",
	    keys_show },
	{ "create", 1, 1, "create LABEL [--alg ALG]",
	    "make a key in the HSM and log it; ALG is ecdsa-p256-sha256\n"
	    "        (the default), ecdsa-p384-sha256, rsa3072-pss-sha256,\n"
	    "        rsa4096-pss-sha256 or ed25519",
	    keys_create },
	{ "import-cert", 2, 1, "import-cert KEY FILE",
	    "attach the certificate in FILE (PEM or DER) and log it",
	    keys_import_cert },
	{ "revoke", 1, 1, "revoke KEY --reason TEXT",
	    "revoke the key, which never signs again, and log it",
	    keys_revoke },
	{ "csr", 1, 1, "csr KEY --subject DN",
	    "print a PKCS#10 request for the key, signed in the HSM;\n"
	    "        DN is like \"CN=build,O=Example\" (C, ST, L, O, OU, "
	    "CN)",
	    keys_csr },
};

#define KEYS_NSUBS (sizeof(keys_subs) / sizeof(keys_subs[0]))

static void
keys_usage(FILE *f, const struct keys_sub *s)
{
	static const char *common =
	    "  --url URL          the daemon (default: $KEYTRAIL_URL)\n";
	static const char *token =
	    "  --token-file FILE  an admin token (default: "
	    "$KEYTRAIL_TOKEN_FILE)\n";

	if (s != NULL) {
		fprintf(f,
		    "usage: keytrail keys %s [--url URL]%s\n        %s\n%s%s",
		    s->use, s->admin ? " [--token-file FILE]" : "", s->help,
		    common, s->admin ? token : "");
		return;
	}
	fprintf(f, "usage: keytrail keys <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < KEYS_NSUBS; i++)
		fprintf(f, "  %s\n        %s\n", keys_subs[i].use,
		    keys_subs[i].help);
	fprintf(f,
	    "\nKEY is a key ID, a unique ID prefix (8+ hex digits) or a "
	    "label.\noptions:\n%s%s",
	    common, token);
}

int
cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token-file", required_argument, NULL, 't' },
		{ "alg", required_argument, NULL, 'a' },
		{ "reason", required_argument, NULL, 'r' },
		{ "subject", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct keys_sub *s = NULL;
	struct keys_cli k;
	char err[256] = "";
	int ch, rc = 2;

	memset(&k, 0, sizeof(k));
	if (argc < 2) {
		fprintf(stderr,
		    "keytrail keys: which command? (try keytrail "
		    "keys --help)\n");
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		keys_usage(stdout, NULL);
		return 0;
	}
	for (size_t i = 0; i < KEYS_NSUBS; i++)
		if (strcmp(argv[1], keys_subs[i].name) == 0)
			s = &keys_subs[i];
	if (s == NULL) {
		fprintf(stderr,
		    "keytrail keys: unknown command \"%s\" (try keytrail keys "
		    "--help)\n",
		    argv[1]);
		return 2;
	}
	k.sub = s->name;
	k.url = getenv("KEYTRAIL_URL");
	k.token_file = getenv("KEYTRAIL_TOKEN_FILE");
	argc--;
	argv++;
	optind = 1;
	opterr = 0; /* one line of our own instead */
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			k.url = optarg;
			break;
		case 't':
			k.token_file = optarg;
			break;
		case 'a':
			k.alg = optarg;
			break;
		case 'r':
			k.reason = optarg;
			break;
		case 's':
			k.subject = optarg;
			break;
		case 'h':
			keys_usage(stdout, s);
			return 0;
		default:
			keys_fail(&k,
			    "%s: unknown option or missing value; usage: "
			    "keytrail keys %s",
			    argv[optind - 1], s->use);
			return 2;
		}
	}
	/* Options that belong to another subcommand are mistakes. */
	if ((k.alg != NULL && s->fn != keys_create) ||
	    (k.reason != NULL && s->fn != keys_revoke) ||
	    (k.subject != NULL && s->fn != keys_csr) ||
	    (s->fn == keys_revoke && k.reason == NULL) ||
	    (s->fn == keys_csr && k.subject == NULL) ||
	    (size_t)(argc - optind) != s->nargs) {
		keys_fail(&k, "usage: keytrail keys %s (see --help)", s->use);
		return 2;
	}
	for (size_t i = 0; i < s->nargs; i++)
		k.args[k.nargs++] = argv[optind + (int)i];
	if (k.url == NULL || k.url[0] == 0) {
		keys_fail(&k, "no daemon: give --url URL or set KEYTRAIL_URL");
		return 2;
	}
	if (s->admin) {
		if (k.token_file == NULL || k.token_file[0] == 0) {
			keys_fail(&k,
			    "no admin token: give --token-file FILE "
			    "or set KEYTRAIL_TOKEN_FILE");
			return 2;
		}
		if (cli_read_secret(k.token_file, k.token, sizeof(k.token)) !=
		    0) {
			keys_fail(&k, "%s: cannot read a token from it",
			    k.token_file);
			rc = 1;
			goto out;
		}
	}
	if (httpc_new(k.url, KEYS_TIMEOUT_S, &k.c, err, sizeof(err)) != KT_OK) {
		keys_fail(&k, "%s", err[0] ? err : "out of memory");
		rc = 2;
		goto out;
	}
	rc = s->fn(&k);
out:
	httpc_free(k.c);
	OPENSSL_cleanse(k.token, sizeof(k.token));
	return rc;
}
