/*
 * The key lifecycle end to end: the real keytrail-logd with its SoftHSM
 * signing token, driven through POST /v1/keys, POST /v1/keys/<id>/csr and
 * the keytrail CLI.  Keys are made in the HSM and logged (the entry's
 * proof verified offline, the HSM attributes checked), sign once the
 * policy names them (the signatures checked with OpenSSL), get a CSR that
 * OpenSSL verifies, and a certificate from a CA made up here; a
 * certificate for another key is refused, an expired one is recorded and
 * stops its key signing.  A restart keeps every created key usable.  Bad
 * input gets the right status and a JSON error, and changes nothing.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "e2e.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/entry.h"
#include "keytrail/note.h"
#include "keytrail/tlogproof.h"

/* The keys this test makes through the API, and their policy labels. */
enum {
	K_P256,	   /* ECDSA P-256: signs, gets a CSR and a certificate */
	K_ED25519, /* Ed25519: signs, gets a CSR */
	K_OLD,	   /* ECDSA P-256 with an expired certificate */
	K_RSA,	   /* RSA-3072 (PSS): one CSR */
	K_CLI,	   /* made and revoked through the CLI */
	K_COUNT
};

static const struct {
	const char *label;
	const char *alg;
} key_specs[K_COUNT] = {
	{ "build-p256", "ecdsa-p256-sha256" },
	{ "build-ed", "ed25519" },
	{ "build-old", "ecdsa-p256-sha256" },
	{ "build-rsa", "rsa3072-pss-sha256" },
	{ "cli-key", "ed25519" },
};

struct key {
	char id[65];
	EVP_PKEY *pk;
	uint8_t spki[1024];
	size_t spkilen;
};

struct ctx {
	struct e2e e;
	struct kt_note_vkey vkey;
	char origin[256];
	struct kt_checkpoint_trust trust;
	char admin[128];
	char ci[128];
	struct key keys[K_COUNT];
	EVP_PKEY *ca; /* a throwaway certificate authority */
	unsigned serial;
};

/* ---- helpers ------------------------------------------------------------- */

/* The tree size of the latest checkpoint, opened with the log's key. */
static uint64_t
tree_size(struct ctx *c)
{
	struct e2e_resp r;
	struct kt_checkpoint cp;

	e2e_http(&c->e, "GET", "/checkpoint", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(
	    kt_checkpoint_open(r.body.p, r.body.len, &c->trust, NULL, &cp),
	    KT_OK);
	e2e_resp_free(&r);
	return cp.size;
}

/* POSTs body (NULL: none) to path with token; the answer in r. */
static void
post(struct ctx *c, const char *path, const char *token, const char *body,
    struct e2e_resp *r)
{
	e2e_http(&c->e, "POST", path, token, body, body ? strlen(body) : 0, r);
}

/* POSTs a JSON object (taken over) as admin, expecting status. */
static json_t *
post_json(struct ctx *c, const char *path, json_t *body, int status)
{
	struct e2e_resp r;
	char *s;
	json_t *j;

	assert_non_null(body);
	assert_non_null(s = json_dumps(body, JSON_COMPACT));
	json_decref(body);
	post(c, path, c->admin, s, &r);
	if (r.status != status)
		fail_msg("POST %s %s: %d, want %d: %.*s", path, s, r.status,
		    status, (int)r.body.len, (const char *)r.body.p);
	free(s);
	j = e2e_json(&r);
	e2e_resp_free(&r);
	return j;
}

/*
 * Expects a refusal: status, a JSON body with the error word error (when
 * not NULL) and a detail, and no new entry in the log.
 */
static void
expect_error(struct ctx *c, const char *path, const char *token,
    const char *body, int status, const char *error)
{
	uint64_t before = tree_size(c);
	struct e2e_resp r;
	json_t *j;

	post(c, path, token, body, &r);
	if (r.status != status)
		fail_msg("POST %s %s: %d, want %d: %.*s", path, body, r.status,
		    status, (int)r.body.len, (const char *)r.body.p);
	j = e2e_json(&r);
	if (error != NULL)
		assert_string_equal(e2e_jstr(j, "error"), error);
	assert_true(strlen(e2e_jstr(j, "detail")) > 0);
	json_decref(j);
	e2e_resp_free(&r);
	assert_int_equal(tree_size(c), before);
}

/*
 * Checks a logged change's answer: the proof verifies offline against the
 * log's key and holds the entry at the answer's index.  Returns the entry.
 */
static json_t *
logged_entry(struct ctx *c, const json_t *j, const char *keyid)
{
	const char *proof = e2e_jstr(j, "proof");
	struct kt_tlogproof_result res;
	struct kt_buf entry;
	struct kt_hash leaf;
	char hex[65];
	json_t *e = NULL;

	assert_string_equal(e2e_jstr(j, "key"), keyid);
	kt_buf_init(&entry, KT_ENTRY_MAX);
	assert_int_equal(kt_tlogproof_verify((const uint8_t *)proof,
			     strlen(proof), &c->trust, NULL, &entry, &res),
	    KT_OK);
	assert_int_equal(res.index,
	    (uint64_t)json_integer_value(json_object_get(j, "index")));
	assert_true(res.checkpoint.size > res.index);
	kt_leaf_hash(entry.p, entry.len, &leaf);
	kt_hex_encode(leaf.b, 32, hex);
	assert_string_equal(e2e_jstr(j, "leaf_hash"), hex);
	assert_int_equal(kt_entry_parse(entry.p, entry.len, &e), KT_OK);
	assert_string_equal(e2e_jstr(e, "kind"), "key");
	assert_string_equal(e2e_jstr(e, "key"), keyid);
	assert_string_equal(e2e_jstr(e, "principal"), "admin");
	kt_buf_free(&entry);
	return e;
}

/* The record of keyid in GET /v1/keys (NULL if absent). */
static json_t *
registry_get(struct ctx *c, const char *keyid)
{
	struct e2e_resp r;
	json_t *j, *v, *hit = NULL;
	size_t i;

	e2e_http(&c->e, "GET", "/v1/keys", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	json_array_foreach(json_object_get(j, "keys"), i, v)
	{
		if (strcmp(e2e_jstr(v, "key"), keyid) == 0)
			hit = json_incref(v);
	}
	json_decref(j);
	e2e_resp_free(&r);
	return hit;
}

/* Makes key_specs[k] through the API and checks everything logged. */
static void
key_create(struct ctx *c, int k)
{
	struct key *key = &c->keys[k];
	uint64_t before = tree_size(c);
	json_t *j, *e, *attrs, *rec;
	const char *spki;
	const uint8_t *p;
	char want[65];

	j = post_json(c, "/v1/keys",
	    json_pack("{s:s, s:s, s:s}", "action", "create", "label",
		key_specs[k].label, "alg", key_specs[k].alg),
	    200);
	snprintf(key->id, sizeof(key->id), "%s", e2e_jstr(j, "key"));
	assert_int_equal(strlen(key->id), 64);
	assert_int_equal(json_integer_value(json_object_get(j, "index")),
	    (json_int_t)before);
	e = logged_entry(c, j, key->id);
	assert_string_equal(e2e_jstr(e, "action"), "create");
	assert_string_equal(e2e_jstr(e, "alg"), key_specs[k].alg);
	assert_string_equal(e2e_jstr(e, "label"), key_specs[k].label);
	/* The private key was made inside the token and never left it. */
	attrs = json_object_get(e, "attrs");
	assert_string_equal(e2e_jstr(attrs, "sensitive"), "true");
	assert_string_equal(e2e_jstr(attrs, "never_extractable"), "true");
	assert_string_equal(e2e_jstr(attrs, "always_sensitive"), "true");
	assert_string_equal(e2e_jstr(attrs, "local"), "true");
	/* The key ID is the SHA-256 of the DER SPKI logged. */
	spki = e2e_jstr(e, "spki");
	assert_int_equal(kt_b64_decode(spki, strlen(spki), key->spki,
			     sizeof(key->spki), &key->spkilen),
	    KT_OK);
	e2e_sha256_hex(key->spki, key->spkilen, want);
	assert_string_equal(key->id, want);
	p = key->spki;
	assert_non_null(key->pk = d2i_PUBKEY(NULL, &p, (long)key->spkilen));
	/* One entry, and the registry has the key. */
	assert_int_equal(tree_size(c), before + 1);
	assert_non_null(rec = registry_get(c, key->id));
	assert_string_equal(e2e_jstr(rec, "state"), "active");
	assert_string_equal(e2e_jstr(rec, "alg"), key_specs[k].alg);
	assert_string_equal(e2e_jstr(rec, "label"), key_specs[k].label);
	assert_string_equal(e2e_jstr(rec, "spki"), spki);
	assert_true(json_is_true(json_object_get(rec, "hsm")));
	json_decref(rec);
	json_decref(e);
	json_decref(j);
}

/*
 * Rewrites DIR/policy.json from the development policy with a key entry
 * for every label here (ci may sign with each), and puts it in force with
 * SIGHUP.
 */
static void
policy_extend(struct ctx *c)
{
	char path[400], sha[65], url[128];
	json_t *doc, *keys;
	char *old, *s;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/policy.json", c->e.data);
	old = (char *)e2e_file_read(path, NULL);
	assert_non_null(doc = json_loads(old, 0, NULL));
	free(old);
	keys = json_object_get(doc, "keys");
	for (size_t k = 0; k < K_COUNT; k++)
		json_object_set_new(keys, key_specs[k].label,
		    json_pack("{s:[s]}", "requesters", "ci"));
	assert_non_null(s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS));
	json_decref(doc);
	e2e_file_write(path, s, strlen(s));
	e2e_sha256_hex(s, strlen(s), sha);
	free(s);
	assert_int_equal(kill(c->e.pid, SIGHUP), 0);
	snprintf(url, sizeof(url), "/v1/policy/%s", sha);
	for (int i = 0; i < 200 && !ok; i++) {
		struct e2e_resp r;

		e2e_http(&c->e, "GET", url, NULL, NULL, 0, &r);
		ok = r.status == 200;
		e2e_resp_free(&r);
		if (!ok)
			usleep(20000);
	}
	if (!ok)
		fail_msg("the extended policy did not come into force");
}

/*
 * ci signs a fresh digest with key k through /v1/sign, expecting status
 * and, for a refusal, the error word error.  A signature is checked with
 * OpenSSL: ECDSA over the SHA-256 digest, Ed25519 over its 32 bytes.
 */
static void
sign_with(struct ctx *c, int k, int status, const char *error)
{
	struct key *key = &c->keys[k];
	uint8_t digest[32], sig[1024];
	char hex[65], body[256];
	struct e2e_resp r;
	size_t siglen;
	json_t *j;

	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	kt_hex_encode(digest, 32, hex);
	snprintf(body, sizeof(body),
	    "{\"key\":\"%s\",\"digest\":\"%s\",\"artifact\":{\"name\":"
	    "\"a-%u.tar.gz\"}}",
	    key_specs[k].label, hex, c->serial++);
	post(c, "/v1/sign", c->ci, body, &r);
	if (r.status != status)
		fail_msg("sign with %s: %d, want %d: %.*s", key_specs[k].label,
		    r.status, status, (int)r.body.len, (const char *)r.body.p);
	j = e2e_json(&r);
	e2e_resp_free(&r);
	if (status != 200) {
		assert_string_equal(e2e_jstr(j, "error"), error);
		json_decref(j);
		return;
	}
	assert_string_equal(e2e_jstr(j, "key"), key->id);
	assert_string_equal(e2e_jstr(j, "alg"), key_specs[k].alg);
	assert_int_equal(
	    kt_b64_decode(e2e_jstr(j, "signature"),
		strlen(e2e_jstr(j, "signature")), sig, sizeof(sig), &siglen),
	    KT_OK);
	if (EVP_PKEY_get_base_id(key->pk) == EVP_PKEY_ED25519) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		assert_non_null(md);
		assert_int_equal(
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pk), 1);
		assert_int_equal(
		    EVP_DigestVerify(md, sig, siglen, digest, 32), 1);
		digest[0] ^= 1;
		assert_int_not_equal(
		    EVP_DigestVerify(md, sig, siglen, digest, 32), 1);
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new(key->pk, NULL);

		assert_non_null(vc);
		assert_int_equal(EVP_PKEY_verify_init(vc), 1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_signature_md(vc, EVP_sha256()), 1);
		if (EVP_PKEY_get_base_id(key->pk) == EVP_PKEY_RSA) {
			/* RSA-PSS: MGF1 with SHA-256, a 32-byte salt. */
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(
					     vc, RSA_PKCS1_PSS_PADDING),
			    1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_mgf1_md(vc, EVP_sha256()), 1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(vc, 32), 1);
		}
		assert_int_equal(
		    EVP_PKEY_verify(vc, sig, siglen, digest, 32), 1);
		digest[0] ^= 1;
		assert_int_not_equal(
		    EVP_PKEY_verify(vc, sig, siglen, digest, 32), 1);
		EVP_PKEY_CTX_free(vc);
	}
	json_decref(j);
}

/* A CSR for key k with subject: verified and returned (caller frees). */
static X509_REQ *
csr_get(struct ctx *c, int k, const char *subject)
{
	struct key *key = &c->keys[k];
	uint64_t before = tree_size(c);
	char path[128];
	const char *pem;
	uint8_t *der = NULL;
	X509_REQ *req;
	EVP_PKEY *pub;
	BIO *b;
	json_t *j;
	int n;

	snprintf(path, sizeof(path), "/v1/keys/%s/csr", key->id);
	j = post_json(c, path, json_pack("{s:s}", "subject", subject), 200);
	assert_string_equal(e2e_jstr(j, "key"), key->id);
	pem = e2e_jstr(j, "csr");
	assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
	assert_non_null(b = BIO_new_mem_buf(pem, (int)strlen(pem)));
	assert_non_null(req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL));
	BIO_free(b);
	json_decref(j);
	/* Signed by the key itself, for the key itself. */
	assert_non_null(pub = X509_REQ_get0_pubkey(req));
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	assert_int_equal(X509_REQ_verify(req, key->pk), 1);
	n = i2d_PUBKEY(pub, &der);
	assert_int_equal(n, (int)key->spkilen);
	assert_memory_equal(der, key->spki, key->spkilen);
	OPENSSL_free(der);
	/* A CSR changes no key: nothing is logged. */
	assert_int_equal(tree_size(c), before);
	return req;
}

/* The subject of req as "K=V,K=V" in encoding order. */
static void
subject_text(X509_NAME *n, char *out, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;

	assert_non_null(b);
	assert_true(X509_NAME_print_ex(
			b, n, 0, XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV) >= 0);
	len = BIO_get_mem_data(b, &p);
	assert_true(len >= 0 && (size_t)len < cap);
	memcpy(out, p, (size_t)len);
	out[len] = 0;
	BIO_free(b);
}

/*
 * A certificate from the test's CA for the public key pub with subject
 * name, valid from now + from to now + to seconds.  Returns its DER as
 * base64 (caller frees), and its DER in der/derlen if der is not NULL.
 */
static char *
cert_issue(struct ctx *c, EVP_PKEY *pub, X509_NAME *name, long from, long to,
    uint8_t **der, size_t *derlen)
{
	X509 *x = X509_new();
	X509_NAME *issuer = X509_NAME_new();
	uint8_t *d = NULL;
	char *b64;
	int n;

	assert_non_null(x);
	assert_non_null(issuer);
	assert_int_equal(
	    X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_ASC,
		(const unsigned char *)"keytrail test CA", -1, -1, 0),
	    1);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(
	    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)++c->serial), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	assert_true(X509_sign(x, c->ca, EVP_sha256()) > 0);
	assert_true((n = i2d_X509(x, &d)) > 0);
	assert_non_null(b64 = malloc(KT_B64_ENCLEN((size_t)n) + 1));
	assert_true(
	    kt_b64_encode(d, (size_t)n, b64, KT_B64_ENCLEN((size_t)n) + 1) > 0);
	if (der != NULL) {
		*der = d;
		*derlen = (size_t)n;
	} else {
		OPENSSL_free(d);
	}
	X509_NAME_free(issuer);
	X509_free(x);
	return b64;
}

/* Attaches certificate b64 to key k; checks the entry and the record. */
static void
cert_attach(struct ctx *c, int k, const char *b64, const char *subject)
{
	struct key *key = &c->keys[k];
	json_t *j, *e, *rec;

	j = post_json(c, "/v1/keys",
	    json_pack("{s:s, s:s, s:s}", "action", "certificate", "key",
		key->id, "cert", b64),
	    200);
	e = logged_entry(c, j, key->id);
	assert_string_equal(e2e_jstr(e, "action"), "certificate");
	assert_string_equal(e2e_jstr(e, "cert"), b64);
	assert_string_equal(e2e_jstr(e, "alg"), key_specs[k].alg);
	assert_string_equal(e2e_jstr(e, "label"), key_specs[k].label);
	json_decref(e);
	json_decref(j);
	assert_non_null(rec = registry_get(c, key->id));
	assert_string_equal(e2e_jstr(rec, "cert"), b64);
	assert_string_equal(e2e_jstr(rec, "subject"), subject);
	assert_true(json_is_integer(json_object_get(rec, "not_before")));
	assert_true(json_is_integer(json_object_get(rec, "not_after")));
	assert_true(json_integer_value(json_object_get(rec, "not_after")) >
	    json_integer_value(json_object_get(rec, "not_before")));
	assert_string_equal(e2e_jstr(rec, "state"), "active");
	json_decref(rec);
}

/*
 * Runs the keytrail CLI (KT_CLI) with args; its exit status, and its
 * stdout and stderr in out and err (caller frees).
 */
static int
cli(struct ctx *c, char **out, char **err, const char *const *args)
{
	const char *bin = getenv("KT_CLI");
	char url[64], opath[400], epath[400];
	char *argv[16];
	size_t n = 0;
	int status;
	pid_t pid;

	if (bin == NULL)
		fail_msg("KT_CLI is not set");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", c->e.port);
	snprintf(opath, sizeof(opath), "%s/cli.out", c->e.dir);
	snprintf(epath, sizeof(epath), "%s/cli.err", c->e.dir);
	argv[n++] = (char *)bin;
	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(n < 14);
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fo < 0 || fe < 0)
			_exit(126);
		dup2(fo, STDOUT_FILENO);
		dup2(fe, STDERR_FILENO);
		setenv("KEYTRAIL_URL", url, 1);
		unsetenv("KEYTRAIL_TOKEN_FILE");
		execv(bin, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	*out = (char *)e2e_file_read(opath, NULL);
	*err = (char *)e2e_file_read(epath, NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A CLI failure: exit status want, nothing on stdout, one line on stderr. */
static void
cli_fails(struct ctx *c, int want, const char *const *args, const char *say)
{
	char *out, *err;
	int rc = cli(c, &out, &err, args);

	if (rc != want)
		fail_msg("keytrail %s %s: exit %d, want %d: %s", args[0],
		    args[1], rc, want, err);
	assert_string_equal(out, "");
	assert_true(strlen(err) > 0);
	/* Exactly one line. */
	assert_non_null(strchr(err, '\n'));
	assert_int_equal(strchr(err, '\n')[1], 0);
	if (say != NULL && strstr(err, say) == NULL)
		fail_msg("keytrail %s %s: \"%s\" lacks \"%s\"", args[0],
		    args[1], err, say);
	free(out);
	free(err);
}

/* ---- setup ----------------------------------------------------------------
 */

static int
ctx_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	EVP_PKEY_CTX *kc;
	struct e2e_resp r;
	json_t *j;
	const char *vk, *origin;

	assert_non_null(c);
	e2e_init(&c->e);
	e2e_start(&c->e);
	e2e_token(&c->e, "admin", c->admin, sizeof(c->admin));
	e2e_token(&c->e, "ci", c->ci, sizeof(c->ci));
	e2e_http(&c->e, "GET", "/v1/log", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	vk = e2e_jstr(j, "vkey");
	origin = e2e_jstr(j, "origin");
	assert_int_equal(kt_note_vkey_parse(vk, strlen(vk), &c->vkey), KT_OK);
	snprintf(c->origin, sizeof(c->origin), "%s", origin);
	c->trust.log = &c->vkey;
	c->trust.origin.p = (const uint8_t *)c->origin;
	c->trust.origin.len = strlen(c->origin);
	json_decref(j);
	e2e_resp_free(&r);
	/* The CA: a P-256 key of the test's own. */
	assert_non_null(kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL));
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1),
	    1);
	assert_int_equal(EVP_PKEY_keygen(kc, &c->ca), 1);
	EVP_PKEY_CTX_free(kc);
	*state = c;
	return 0;
}

static int
ctx_teardown(void **state)
{
	struct ctx *c = *state;

	if (c == NULL)
		return 0;
	if (c->e.pid > 0)
		e2e_stop(&c->e, SIGTERM);
	e2e_cleanup(&c->e);
	for (size_t k = 0; k < K_COUNT; k++)
		EVP_PKEY_free(c->keys[k].pk);
	EVP_PKEY_free(c->ca);
	free(c);
	return 0;
}

/* ---- the tests (in order; each builds on the ones before) -----------------
 */

/* P-256 and Ed25519 keys made in the HSM, logged, and signing. */
static void
test_keys_create_and_sign(void **state)
{
	struct ctx *c = *state;

	key_create(c, K_P256);
	key_create(c, K_ED25519);
	key_create(c, K_OLD);
	/* Made and registered, but no policy names them yet. */
	sign_with(c, K_P256, 404, "unknown_key");
	policy_extend(c);
	sign_with(c, K_P256, 200, NULL);
	sign_with(c, K_ED25519, 200, NULL);
	sign_with(c, K_OLD, 200, NULL);
}

/* CSRs made in the HSM; a certificate from them, attached and logged. */
static void
test_keys_csr_and_certificate(void **state)
{
	struct ctx *c = *state;
	const char *subject = "CN=build.example,O=Example Corp,C=DE";
	X509_REQ *req;
	char text[256], *b64;
	json_t *j;

	req = csr_get(c, K_P256, subject);
	subject_text(X509_REQ_get_subject_name(req), text, sizeof(text));
	assert_string_equal(text, subject);
	/* The CA signs the CSR's key and name; the key's label stays. */
	b64 = cert_issue(c, X509_REQ_get0_pubkey(req),
	    X509_REQ_get_subject_name(req), 0, 86400, NULL, NULL);
	cert_attach(c, K_P256, b64, subject);
	/* A valid certificate: the key still signs. */
	sign_with(c, K_P256, 200, NULL);

	/* The same certificate for another key: refused. */
	{
		char *s;

		j = json_pack("{s:s, s:s, s:s}", "action", "certificate", "key",
		    c->keys[K_ED25519].id, "cert", b64);
		s = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		expect_error(c, "/v1/keys", c->admin, s, 400, "cert_mismatch");
		free(s);
	}
	free(b64);
	X509_REQ_free(req);

	/* Ed25519: a CSR that OpenSSL verifies too. */
	req = csr_get(c, K_ED25519, "CN=ed");
	subject_text(X509_REQ_get_subject_name(req), text, sizeof(text));
	assert_string_equal(text, "CN=ed");
	X509_REQ_free(req);
}

/* An expired certificate is recorded, and the key then never signs. */
static void
test_keys_expired_certificate(void **state)
{
	struct ctx *c = *state;
	X509_NAME *name = X509_NAME_new();
	json_t *rec;
	char *b64;

	assert_non_null(name);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
			     (const unsigned char *)"old", -1, -1, 0),
	    1);
	b64 = cert_issue(
	    c, c->keys[K_OLD].pk, name, -2 * 86400, -86400, NULL, NULL);
	cert_attach(c, K_OLD, b64, "CN=old");
	assert_non_null(rec = registry_get(c, c->keys[K_OLD].id));
	assert_true(json_integer_value(json_object_get(rec, "not_after")) <
	    (json_int_t)time(NULL));
	json_decref(rec);
	sign_with(c, K_OLD, 403, "certificate_expired");
	/* The other keys are not affected. */
	sign_with(c, K_P256, 200, NULL);
	free(b64);
	X509_NAME_free(name);
}

/*
 * ci logs a signature made outside with the imported P-256 key pk (ID
 * keyid) through /v1/entries, expecting status (and error for a refusal,
 * which must leave the log as it was).
 */
static void
submit_external(struct ctx *c, EVP_PKEY *pk, const char *keyid, int status,
    const char *error)
{
	EVP_PKEY_CTX *sc = EVP_PKEY_CTX_new(pk, NULL);
	uint8_t digest[32], sig[128];
	char hex[65], sig64[200], body[512];
	size_t siglen = sizeof(sig);
	json_t *j;

	assert_non_null(sc);
	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	assert_int_equal(EVP_PKEY_sign_init(sc), 1);
	assert_int_equal(EVP_PKEY_sign(sc, sig, &siglen, digest, 32), 1);
	EVP_PKEY_CTX_free(sc);
	kt_hex_encode(digest, 32, hex);
	assert_true(kt_b64_encode(sig, siglen, sig64, sizeof(sig64)) > 0);
	snprintf(body, sizeof(body),
	    "{\"key\":\"%s\",\"digest\":\"%s\",\"sig\":\"%s\"}", keyid, hex,
	    sig64);
	if (status != 200) {
		expect_error(c, "/v1/entries", c->ci, body, status, error);
		return;
	}
	{
		struct e2e_resp r;

		post(c, "/v1/entries", c->ci, body, &r);
		if (r.status != 200)
			fail_msg("entries: %d: %.*s", r.status, (int)r.body.len,
			    (const char *)r.body.p);
		j = e2e_json(&r);
		e2e_resp_free(&r);
		assert_true(json_is_integer(json_object_get(j, "index")));
		json_decref(j);
	}
}

/*
 * A key registered from outside whose certificate has expired: the log
 * takes no more signatures made with it, as the signer makes none.
 */
static void
test_keys_expired_certificate_entries(void **state)
{
	struct ctx *c = *state;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *pk = NULL;
	uint8_t *der = NULL;
	char spki[256], keyid[65];
	json_t *j;
	char *b64;
	int n;

	assert_non_null(kc);
	assert_non_null(name);
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1),
	    1);
	assert_int_equal(EVP_PKEY_keygen(kc, &pk), 1);
	assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
	assert_true(kt_b64_encode(der, (size_t)n, spki, sizeof(spki)) > 0);
	j = post_json(c, "/v1/keys",
	    json_pack("{s:s, s:s, s:s}", "action", "import", "label",
		"outside-old", "spki", spki),
	    200);
	snprintf(keyid, sizeof(keyid), "%s", e2e_jstr(j, "key"));
	json_decref(j);
	/* Before any certificate, its signatures are logged. */
	submit_external(c, pk, keyid, 200, NULL);

	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
			     (const unsigned char *)"outside-old", -1, -1, 0),
	    1);
	b64 = cert_issue(c, pk, name, -2 * 86400, -86400, NULL, NULL);
	json_decref(post_json(c, "/v1/keys",
	    json_pack("{s:s, s:s, s:s}", "action", "certificate", "key", keyid,
		"cert", b64),
	    200));
	submit_external(c, pk, keyid, 403, "certificate_expired");

	free(b64);
	X509_NAME_free(name);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
}

/* RSA-3072 made in the HSM, with an RSASSA-PSS CSR. */
static void
test_keys_rsa_csr(void **state)
{
	struct ctx *c = *state;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *oid;
	X509_REQ *req;
	char txt[64];

	key_create(c, K_RSA);
	req = csr_get(c, K_RSA, "CN=rsa,OU=Builds");
	X509_REQ_get0_signature(req, NULL, &alg);
	X509_ALGOR_get0(&oid, NULL, NULL, alg);
	OBJ_obj2txt(txt, sizeof(txt), oid, 1);
	assert_string_equal(txt, "1.2.840.113549.1.1.10");
	X509_REQ_free(req);
}

/* The keytrail CLI against the daemon. */
static void
test_keys_cli(void **state)
{
	struct ctx *c = *state;
	char tokfile[400], certfile[400], *out, *err, *line;
	json_t *rec, *j;
	X509_REQ *req;
	char *b64;
	FILE *f;

	snprintf(tokfile, sizeof(tokfile), "%s/tokens/admin", c->e.data);
	{
		const char *args[] = { "keys", "list", NULL };

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_string_equal(err, "");
		/* One line per key: the two of setup and the four here. */
		for (size_t k = 0; k < K_CLI; k++) {
			char prefix[17];

			snprintf(
			    prefix, sizeof(prefix), "%.16s", c->keys[k].id);
			assert_non_null(line = strstr(out, prefix));
			assert_non_null(strstr(line, key_specs[k].label));
			assert_non_null(strstr(line, key_specs[k].alg));
			assert_non_null(strstr(line, "active"));
		}
		assert_non_null(strstr(out, "default"));
		assert_non_null(strstr(out, "(expired)"));
		assert_non_null(strstr(out, "cert-expires="));
		free(out);
		free(err);
	}
	{
		const char *args[] = { "keys", "create", "cli-key", "--alg",
			"ed25519", "--token-file", tokfile, NULL };

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(line = strstr(out, "created key "));
		snprintf(c->keys[K_CLI].id, sizeof(c->keys[K_CLI].id), "%.64s",
		    line + strlen("created key "));
		assert_non_null(strstr(out, "logged at index"));
		free(out);
		free(err);
	}
	assert_non_null(rec = registry_get(c, c->keys[K_CLI].id));
	assert_string_equal(e2e_jstr(rec, "label"), "cli-key");
	assert_string_equal(e2e_jstr(rec, "alg"), "ed25519");
	{
		const char *spki = e2e_jstr(rec, "spki");
		const uint8_t *p = c->keys[K_CLI].spki;

		assert_int_equal(
		    kt_b64_decode(spki, strlen(spki), c->keys[K_CLI].spki,
			sizeof(c->keys[K_CLI].spki), &c->keys[K_CLI].spkilen),
		    KT_OK);
		assert_non_null(c->keys[K_CLI].pk = d2i_PUBKEY(
				    NULL, &p, (long)c->keys[K_CLI].spkilen));
	}
	json_decref(rec);
	/* The policy named cli-key already: it signs at once. */
	sign_with(c, K_CLI, 200, NULL);
	{
		const char *args[] = { "keys", "show", "cli-key", NULL };

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(j = json_loads(out, 0, NULL));
		assert_string_equal(e2e_jstr(j, "key"), c->keys[K_CLI].id);
		assert_string_equal(e2e_jstr(j, "label"), "cli-key");
		assert_string_equal(e2e_jstr(j, "state"), "active");
		json_decref(j);
		free(out);
		free(err);
	}
	/* A renewed certificate for build-p256, from a PEM file. */
	{
		const char *args[] = { "keys", "import-cert",
			c->keys[K_P256].id, certfile, "--token-file", tokfile,
			NULL };
		uint8_t *der;
		size_t derlen;
		const uint8_t *p;
		X509 *x;

		req = csr_get(c, K_P256, "CN=renewed");
		b64 = cert_issue(c, X509_REQ_get0_pubkey(req),
		    X509_REQ_get_subject_name(req), 0, 2 * 86400, &der,
		    &derlen);
		p = der;
		assert_non_null(x = d2i_X509(NULL, &p, (long)derlen));
		snprintf(
		    certfile, sizeof(certfile), "%s/renewed.pem", c->e.dir);
		assert_non_null(f = fopen(certfile, "w"));
		assert_int_equal(PEM_write_X509(f, x), 1);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(strstr(out, "certificate attached to key"));
		free(out);
		free(err);
		assert_non_null(rec = registry_get(c, c->keys[K_P256].id));
		assert_string_equal(e2e_jstr(rec, "cert"), b64);
		assert_string_equal(e2e_jstr(rec, "subject"), "CN=renewed");
		json_decref(rec);
		X509_free(x);
		OPENSSL_free(der);
		free(b64);
		X509_REQ_free(req);
	}
	{
		const char *args[] = { "keys", "csr", "build-ed", "--subject",
			"CN=from-cli,O=Example", "--token-file", tokfile,
			NULL };
		BIO *b;

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(b = BIO_new_mem_buf(out, (int)strlen(out)));
		assert_non_null(
		    req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL));
		assert_int_equal(
		    X509_REQ_verify(req, c->keys[K_ED25519].pk), 1);
		X509_REQ_free(req);
		BIO_free(b);
		free(out);
		free(err);
	}
	{
		const char *args[] = { "keys", "revoke", "cli-key", "--reason",
			"rotated out", "--token-file", tokfile, NULL };

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(strstr(out, "revoked key"));
		free(out);
		free(err);
	}
	assert_non_null(rec = registry_get(c, c->keys[K_CLI].id));
	assert_string_equal(e2e_jstr(rec, "state"), "revoked");
	assert_string_equal(e2e_jstr(rec, "reason"), "rotated out");
	json_decref(rec);
	sign_with(c, K_CLI, 403, "key_revoked");

	/* Failures: an exit status and one line saying why. */
	{
		const char *nokey[] = { "keys", "show", "no-such-key", NULL };
		const char *notoken[] = { "keys", "create", "x", NULL };
		const char *badlabel[] = { "keys", "create", "bad label",
			"--token-file", tokfile, NULL };
		const char *dup[] = { "keys", "create", "cli-key",
			"--token-file", tokfile, NULL };
		const char *again[] = { "keys", "revoke", "cli-key", "--reason",
			"x", "--token-file", tokfile, NULL };
		const char *noreason[] = { "keys", "revoke", "cli-key",
			"--token-file", tokfile, NULL };
		const char *badopt[] = { "keys", "list", "--bogus", NULL };
		const char *badsub[] = { "keys", "explode", NULL };
		const char *nofile[] = { "keys", "import-cert", "build-ed",
			"/nonexistent", "--token-file", tokfile, NULL };
		const char *badsubject[] = { "keys", "csr", "build-ed",
			"--subject", "CN=a,,O=b", "--token-file", tokfile,
			NULL };

		cli_fails(c, 1, nokey, "no such key");
		cli_fails(c, 2, notoken, "no admin token");
		cli_fails(c, 1, badlabel, "400 bad_request");
		cli_fails(c, 1, dup, "409 conflict");
		cli_fails(c, 1, again, "409 conflict");
		cli_fails(c, 2, noreason, "usage");
		cli_fails(c, 2, badopt, "--bogus");
		cli_fails(c, 2, badsub, "unknown command");
		cli_fails(c, 1, nofile, "cannot open");
		cli_fails(c, 1, badsubject, "400 bad_request");
	}
	{
		const char *args[] = { "keys", "create", "--help", NULL };

		assert_int_equal(cli(c, &out, &err, args), 0);
		assert_non_null(strstr(out, "usage: keytrail keys create"));
		free(out);
		free(err);
	}
}

/* Bad requests: the right status, a JSON error, nothing logged. */
static void
test_keys_bad_input(void **state)
{
	struct ctx *c = *state;
	char body[1024], path[256];
	const char *p256 = c->keys[K_P256].id;
	static const char zero[] =
	    "0000000000000000000000000000000000000000000000000000000000000000";

	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"x1\",\"alg\":\"rsa2048\"}", 400,
	    "bad_request");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"x1\",\"alg\":"
	    "\"ecdsa-p256-sha1\"}",
	    400, "bad_request");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"has space\",\"alg\":"
	    "\"ed25519\"}",
	    400, "bad_request");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"-dash\",\"alg\":\"ed25519\"}",
	    400, "bad_request");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"x1\"}", 400, "bad_request");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"x1\",\"alg\":\"ed25519\","
	    "\"extra\":1}",
	    400, "bad_request");
	/* Labels already registered: made here, or at the first start. */
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"build-p256\",\"alg\":"
	    "\"ed25519\"}",
	    409, "conflict");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"create\",\"label\":\"default\",\"alg\":"
	    "\"ed25519\"}",
	    409, "conflict");
	/* A label must never read as a key ID. */
	snprintf(body, sizeof(body),
	    "{\"action\":\"create\",\"label\":\"%s\",\"alg\":"
	    "\"ed25519\"}",
	    zero);
	expect_error(c, "/v1/keys", c->admin, body, 400, "bad_request");
	/* Imported keys share the label space. */
	{
		EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		EVP_PKEY *pk = NULL;
		uint8_t *der = NULL;
		char b64[128];
		int n;

		assert_non_null(kc);
		assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
		assert_int_equal(EVP_PKEY_keygen(kc, &pk), 1);
		assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
		assert_true(
		    kt_b64_encode(der, (size_t)n, b64, sizeof(b64)) > 0);
		snprintf(body, sizeof(body),
		    "{\"action\":\"import\",\"label\":\"build-ed\","
		    "\"spki\":\"%s\"}",
		    b64);
		expect_error(c, "/v1/keys", c->admin, body, 409, "conflict");
		OPENSSL_free(der);
		EVP_PKEY_free(pk);
		EVP_PKEY_CTX_free(kc);
	}
	/* Only admins change keys. */
	expect_error(c, "/v1/keys", c->ci,
	    "{\"action\":\"create\",\"label\":\"x1\",\"alg\":\"ed25519\"}", 403,
	    "forbidden");
	expect_error(c, "/v1/keys", NULL,
	    "{\"action\":\"create\",\"label\":\"x1\",\"alg\":\"ed25519\"}", 401,
	    "unauthenticated");

	/* Certificates that are not. */
	snprintf(body, sizeof(body),
	    "{\"action\":\"certificate\",\"key\":\"%s\",\"cert\":\"not "
	    "base64!\"}",
	    p256);
	expect_error(c, "/v1/keys", c->admin, body, 400, "bad_request");
	snprintf(body, sizeof(body),
	    "{\"action\":\"certificate\",\"key\":\"%s\",\"cert\":"
	    "\"Z2FyYmFnZSBnYXJiYWdl\"}",
	    p256);
	expect_error(c, "/v1/keys", c->admin, body, 400, "bad_request");
	snprintf(body, sizeof(body),
	    "{\"action\":\"certificate\",\"key\":\"%s\",\"cert\":\"\"}", p256);
	expect_error(c, "/v1/keys", c->admin, body, 400, "bad_request");
	snprintf(body, sizeof(body),
	    "{\"action\":\"certificate\",\"key\":\"%s\",\"cert\":\"MAA=\"}",
	    zero);
	expect_error(c, "/v1/keys", c->admin, body, 404, "unknown_key");
	expect_error(c, "/v1/keys", c->admin,
	    "{\"action\":\"certificate\",\"key\":\"short\",\"cert\":\"MAA=\"}",
	    400, "bad_request");
	/* A revoked key gets no certificate. */
	snprintf(body, sizeof(body),
	    "{\"action\":\"certificate\",\"key\":\"%s\",\"cert\":\"MAA=\"}",
	    c->keys[K_CLI].id);
	expect_error(c, "/v1/keys", c->admin, body, 409, "conflict");

	/* CSRs. */
	snprintf(path, sizeof(path), "/v1/keys/%s/csr", zero);
	expect_error(
	    c, path, c->admin, "{\"subject\":\"CN=x\"}", 404, "unknown_key");
	snprintf(path, sizeof(path), "/v1/keys/%s/csr", p256);
	expect_error(c, path, c->admin, "{\"subject\":\"CN=a,,O=b\"}", 400,
	    "bad_request");
	expect_error(c, path, c->admin, "{\"subject\":\"CN=a\\\\,b\"}", 400,
	    "bad_request");
	expect_error(
	    c, path, c->admin, "{\"subject\":\"XX=a\"}", 400, "bad_request");
	expect_error(
	    c, path, c->admin, "{\"subject\":\"\"}", 400, "bad_request");
	expect_error(c, path, c->admin, "{}", 400, "bad_request");
	expect_error(c, path, c->admin, "{\"subject\":\"CN=x\",\"y\":1}", 400,
	    "bad_request");
	expect_error(
	    c, path, c->ci, "{\"subject\":\"CN=x\"}", 403, "forbidden");
	expect_error(
	    c, path, NULL, "{\"subject\":\"CN=x\"}", 401, "unauthenticated");
	snprintf(path, sizeof(path), "/v1/keys/%s/csr", c->keys[K_CLI].id);
	expect_error(
	    c, path, c->admin, "{\"subject\":\"CN=x\"}", 403, "key_revoked");
	snprintf(path, sizeof(path), "/v1/keys/%.63s/csr", p256);
	expect_error(
	    c, path, c->admin, "{\"subject\":\"CN=x\"}", 404, "not_found");
	snprintf(path, sizeof(path), "/v1/keys/%s/cert", p256);
	expect_error(
	    c, path, c->admin, "{\"subject\":\"CN=x\"}", 404, "not_found");
	expect_error(c, "/v1/keys", c->admin, "{\"action\":\"rename\"}", 400,
	    "bad_request");
}

/* After a restart the created keys sign again without a new entry. */
static void
test_keys_restart(void **state)
{
	struct ctx *c = *state;
	uint64_t before;

	e2e_stop(&c->e, SIGTERM);
	e2e_start(&c->e);
	before = tree_size(c);
	sign_with(c, K_ED25519, 200, NULL);
	sign_with(c, K_RSA, 200, NULL);
	sign_with(c, K_OLD, 403, "certificate_expired");
	sign_with(c, K_CLI, 403, "key_revoked");
	/* Two signatures; no key registered again at start. */
	assert_int_equal(tree_size(c), before + 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_create_and_sign),
		cmocka_unit_test(test_keys_csr_and_certificate),
		cmocka_unit_test(test_keys_expired_certificate),
		cmocka_unit_test(test_keys_expired_certificate_entries),
		cmocka_unit_test(test_keys_rsa_csr),
		cmocka_unit_test(test_keys_cli),
		cmocka_unit_test(test_keys_bad_input),
		cmocka_unit_test(test_keys_restart),
	};

	return cmocka_run_group_tests(tests, ctx_setup, ctx_teardown);
}
