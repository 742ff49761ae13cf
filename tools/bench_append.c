/*
 * keytrail bench append: durable appends through POST /v1/entries.
 * keytrail bench sign: signatures through POST /v1/sign (--key LABEL).
 *
 * Registers a fresh Ed25519 key, prepares N signed submissions, then posts
 * them over C connections as fast as the log answers, timing each request
 * from send to the answer that carries its inclusion proof.  Afterwards it
 * verifies every returned tlog-proof offline against the log's key, and
 * measures in the same process the raw OpenSSL rate of verifying the same
 * signatures (the log verifies each one before logging it) as a baseline.
 *
 * In sign mode every request asks the service to sign a fresh digest with
 * the HSM key LABEL; afterwards each returned signature is checked with
 * the key's public key and each proof offline.  Its baseline, the raw
 * HSM signing rate, comes from keytrail-bench-hsm in the same run
 * (tools/bench-logd.sh).
 */
#include <getopt.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cli.h"
#include "httpc.h"
#include "keytrail/checkpoint.h"
#include "keytrail/encoding.h"
#include "keytrail/note.h"
#include "keytrail/sig.h"
#include "keytrail/tlogproof.h"

/* This process's CPU time (user and system) so far, in seconds. */
static double
bench_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The public key of signing key label, from GET /v1/keys. */
static int
bench_sign_key(struct httpc *c, const char *label, struct kt_pubkey **out)
{
	struct httpc_resp r;
	json_t *j, *k;
	size_t i;
	int rc = -1;

	if (httpc_do(c, "GET", "/v1/keys", NULL, NULL, 0, &r) != KT_OK)
		return -1;
	j = json_loadb((const char *)r.body.p, r.body.len, 0, NULL);
	httpc_resp_free(&r);
	json_array_foreach(json_object_get(j, "keys"), i, k)
	{
		const char *l = json_string_value(json_object_get(k, "label"));
		const char *s = json_string_value(json_object_get(k, "spki"));
		uint8_t der[KT_SPKI_MAX];
		size_t n;

		if (l != NULL && s != NULL && strcmp(l, label) == 0 &&
		    kt_b64_decode(s, strlen(s), der, sizeof(der), &n) ==
			KT_OK &&
		    kt_pubkey_parse(der, n, out) == KT_OK) {
			rc = 0;
			break;
		}
	}
	json_decref(j);
	return rc;
}

/* 1 when sig64 is a valid signature of digest with k. */
static int
bench_sig_ok(
    const struct kt_pubkey *k, const uint8_t digest[32], const char *sig64)
{
	uint8_t sig[KT_SIG_MAX];
	size_t n;

	return sig64 != NULL &&
	    kt_b64_decode(sig64, strlen(sig64), sig, sizeof(sig), &n) ==
	    KT_OK &&
	    kt_pubkey_verify(k, digest, sig, n) == KT_OK;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct sub {
	char body[512];
	uint8_t digest[32];
	uint8_t sig[64];
};

/* Shared by bench append and bench sign: signkey NULL means append. */
static int bench_post(int argc, char **argv, int sign_mode);

int
bench_append(int argc, char **argv)
{
	return bench_post(argc, argv, 0);
}

int
bench_sign(int argc, char **argv)
{
	return bench_post(argc, argv, 1);
}

static int
bench_post(int argc, char **argv, int sign_mode)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "data", required_argument, NULL, 'd' },
		{ "n", required_argument, NULL, 'n' },
		{ "conns", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *data = NULL, *signkey = "default";
	struct kt_pubkey *spk = NULL;
	size_t n = 20000, conns = 64, ok = 0;
	char admin[256], ci[256], path[1024], err[256], keyid[65];
	char spki64[128], body[512];
	struct httpc *c = NULL;
	struct httpc_call *calls = NULL;
	struct httpc_resp r;
	struct sub *subs = NULL;
	double *lat = NULL, t0, wall, vrate, trate, ucpu;
	EVP_PKEY_CTX *kc = NULL;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	struct kt_note_vkey vkey;
	struct kt_checkpoint_trust trust;
	char origin[256];
	uint8_t *der = NULL;
	int ch, dlen = 0, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			conns = strtoul(optarg, NULL, 10);
			break;
		case 'k':
			signkey = optarg;
			break;
		default:
			fprintf(stderr,
			    "usage: keytrail bench append --url URL "
			    "--data DIR [-n N] [-c CONNS]\n");
			return 2;
		}
	}
	if (url == NULL || data == NULL || n == 0 || conns == 0 ||
	    n > 10000000 || conns > 4096) {
		fprintf(stderr,
		    "keytrail bench append: need --url and --data "
		    "(the log's data dir, for its tokens)\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/tokens/admin", data);
	if (cli_read_secret(path, admin, sizeof(admin)) != 0) {
		fprintf(stderr, "keytrail: cannot read %s\n", path);
		kt_wipe(admin, sizeof(admin));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/tokens/ci", data);
	if (cli_read_secret(path, ci, sizeof(ci)) != 0) {
		fprintf(stderr, "keytrail: cannot read %s\n", path);
		kt_wipe(admin, sizeof(admin));
		kt_wipe(ci, sizeof(ci));
		return 1;
	}
	if (httpc_new(url, 120, &c, err, sizeof(err)) != KT_OK) {
		fprintf(stderr, "keytrail: %s\n", err);
		return 1;
	}
	/* The log's key and origin. */
	if (httpc_do(c, "GET", "/v1/log", NULL, NULL, 0, &r) != KT_OK ||
	    r.status != 200) {
		fprintf(stderr, "keytrail: %s/v1/log unreachable\n", url);
		goto out;
	}
	{
		json_t *j =
		    json_loadb((const char *)r.body.p, r.body.len, 0, NULL);
		const char *vk = json_string_value(json_object_get(j, "vkey"));
		const char *o = json_string_value(json_object_get(j, "origin"));

		if (vk == NULL || o == NULL ||
		    kt_note_vkey_parse(vk, strlen(vk), &vkey) != KT_OK) {
			json_decref(j);
			httpc_resp_free(&r);
			fprintf(stderr, "keytrail: bad /v1/log answer\n");
			goto out;
		}
		snprintf(origin, sizeof(origin), "%s", o);
		json_decref(j);
		httpc_resp_free(&r);
	}
	memset(&trust, 0, sizeof(trust));
	trust.log = &vkey;
	trust.origin.p = (const uint8_t *)origin;
	trust.origin.len = strlen(origin);

	if (sign_mode) {
		if (bench_sign_key(c, signkey, &spk) != 0) {
			fprintf(stderr, "keytrail: no signing key %s at %s\n",
			    signkey, url);
			goto out;
		}
	} else {
		/* A fresh Ed25519 key, registered with the log. */
		if ((kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) ==
			NULL ||
		    EVP_PKEY_keygen_init(kc) != 1 ||
		    EVP_PKEY_keygen(kc, &pk) != 1 ||
		    (dlen = i2d_PUBKEY(pk, &der)) <= 0)
			goto out;
		{
			struct kt_hash h;

			SHA256(der, (size_t)dlen, h.b);
			kt_hex_encode(h.b, 32, keyid);
			if (kt_b64_encode(
				der, (size_t)dlen, spki64, sizeof(spki64)) < 0)
				goto out;
		}
		snprintf(body, sizeof(body),
		    "{\"action\":\"import\",\"label\":\"bench-%.8s\",\"spki\":"
		    "\"%s\"}",
		    keyid, spki64);
		if (httpc_do(c, "POST", "/v1/keys", admin,
			(const uint8_t *)body, strlen(body), &r) != KT_OK ||
		    r.status != 200) {
			fprintf(stderr, "keytrail: key import failed (%d)\n",
			    r.status);
			httpc_resp_free(&r);
			goto out;
		}
		httpc_resp_free(&r);
	}

	/* Prepare every submission before the clock starts. */
	subs = calloc(n, sizeof(*subs));
	calls = calloc(n, sizeof(*calls));
	lat = calloc(n, sizeof(*lat));
	md = EVP_MD_CTX_new();
	if (subs == NULL || calls == NULL || lat == NULL || md == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char hex[65], sig64[100];
		size_t siglen = 64;

		if (RAND_bytes(subs[i].digest, 32) != 1)
			goto out;
		if (sign_mode) {
			kt_hex_encode(subs[i].digest, 32, hex);
			snprintf(subs[i].body, sizeof(subs[i].body),
			    "{\"key\":\"%s\",\"digest\":\"%s\","
			    "\"artifact\":{\"name\":\"bench-%zu.bin\","
			    "\"size\":%zu}}",
			    signkey, hex, i % 1000, i);
			calls[i].path = "/v1/sign";
			calls[i].body = (const uint8_t *)subs[i].body;
			calls[i].len = strlen(subs[i].body);
			continue;
		}
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
		    EVP_DigestSign(
			md, subs[i].sig, &siglen, subs[i].digest, 32) != 1)
			goto out;
		kt_hex_encode(subs[i].digest, 32, hex);
		if (kt_b64_encode(subs[i].sig, 64, sig64, sizeof(sig64)) < 0)
			goto out;
		snprintf(subs[i].body, sizeof(subs[i].body),
		    "{\"key\":\"%s\",\"digest\":\"%s\",\"sig\":\"%s\","
		    "\"artifact\":{\"name\":\"bench-%zu.bin\",\"size\":%zu}}",
		    keyid, hex, sig64, i % 1000, i);
		calls[i].path = "/v1/entries";
		calls[i].body = (const uint8_t *)subs[i].body;
		calls[i].len = strlen(subs[i].body);
	}

	ucpu = bench_cpu_seconds();
	t0 = kt_monotonic_seconds();
	httpc_post_many(c, ci, calls, n, conns);
	wall = kt_monotonic_seconds() - t0;
	ucpu = bench_cpu_seconds() - ucpu;

	/* Every answer: 200, and a proof that verifies offline. */
	for (size_t i = 0; i < n; i++) {
		json_t *j;
		const char *proof;

		lat[i] = calls[i].resp.seconds;
		if (calls[i].resp.status != 200)
			continue;
		j = json_loadb((const char *)calls[i].resp.body.p,
		    calls[i].resp.body.len, 0, NULL);
		proof = json_string_value(json_object_get(j, "proof"));
		if (proof != NULL &&
		    kt_tlogproof_verify((const uint8_t *)proof, strlen(proof),
			&trust, NULL, NULL, NULL) == KT_OK &&
		    (!sign_mode ||
			bench_sig_ok(spk, subs[i].digest,
			    json_string_value(
				json_object_get(j, "signature")))))
			ok++;
		json_decref(j);
	}
	qsort(lat, n, sizeof(*lat), cmp_double);

	if (sign_mode) {
		printf("keytrail bench sign: %zu signatures with %s over %zu "
		       "connections to %s\n",
		    n, signkey, conns, url);
		printf("  signed, logged, proven  %zu of %zu (every signature "
		       "and proof verified)\n",
		    ok, n);
		printf("  signatures            %.0f /s\n", (double)n / wall);
		printf("  latency p50 / p99     %.1f / %.1f ms (max %.1f ms)\n",
		    lat[n / 2] * 1e3, lat[(size_t)((double)n * 0.99)] * 1e3,
		    lat[n - 1] * 1e3);
		printf("  client CPU            %.0f us per request (on the "
		       "same cores)\n",
		    ucpu * 1e6 / (double)n);
		rc = ok == n ? 0 : 1;
		goto out;
	}
	/* Baseline: verifying the same signatures, one core, no I/O. */
	{
		size_t m = n < 20000 ? n : 20000;
		double v0 = kt_monotonic_seconds();

		for (size_t i = 0; i < m; i++) {
			if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) !=
				1 ||
			    EVP_DigestVerify(
				md, subs[i].sig, 64, subs[i].digest, 32) != 1)
				goto out;
		}
		vrate = (double)m / (kt_monotonic_seconds() - v0);
		/* The log's own check of the same signatures (edverify.h). */
		if (kt_pubkey_parse(der, (size_t)dlen, &spk) != KT_OK)
			goto out;
		v0 = kt_monotonic_seconds();
		for (size_t i = 0; i < m; i++) {
			if (kt_pubkey_verify(
				spk, subs[i].digest, subs[i].sig, 64) != KT_OK)
				goto out;
		}
		trate = (double)m / (kt_monotonic_seconds() - v0);
	}

	printf("keytrail bench append: %zu entries over %zu connections to "
	       "%s\n",
	    n, conns, url);
	printf("  appended and proven   %zu of %zu (every proof verified "
	       "offline)\n",
	    ok, n);
	printf("  durable appends       %.0f /s\n", (double)n / wall);
	printf("  latency p50 / p99     %.1f / %.1f ms (max %.1f ms)\n",
	    lat[n / 2] * 1e3, lat[(size_t)((double)n * 0.99)] * 1e3,
	    lat[n - 1] * 1e3);
	printf("  client CPU            %.0f us per request (on the same "
	       "cores)\n",
	    ucpu * 1e6 / (double)n);
	printf("  baseline: raw Ed25519 verifications %.0f /s (one core)\n",
	    vrate);
	printf(
	    "  appends / raw verifications  %.2f\n", (double)n / wall / vrate);
	printf("  the log's own check (tables for the key) %.0f /s, %.2fx "
	       "raw\n",
	    trate, trate / vrate);
	rc = ok == n ? 0 : 1;
	if (rc != 0)
		fprintf(stderr,
		    "keytrail: %zu answers failed or did not "
		    "verify\n",
		    n - ok);
out:
	if (calls != NULL) {
		for (size_t i = 0; i < n; i++)
			httpc_resp_free(&calls[i].resp);
	}
	free(calls);
	free(subs);
	free(lat);
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
	kt_pubkey_free(spk);
	httpc_free(c);
	/* The bearer tokens are secrets: wipe them on every path out. */
	kt_wipe(admin, sizeof(admin));
	kt_wipe(ci, sizeof(ci));
	return rc;
}
