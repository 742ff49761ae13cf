/*
 * keytrail-bench-hsm: the raw signing rate of the HSM, the baseline for
 * `keytrail bench sign`.  Opens the signing keys' token of a keytrail data
 * directory (its softhsm2.conf and PIN file) and signs fresh SHA-256
 * digests with one key from T threads sharing one session pool, as the
 * daemon does: raw C_SignInit + C_Sign calls (hsm_bench_raw_sign) with the
 * token's key object, as any PKCS#11 client would sign, and with a session
 * copy of it (hsm.session_copies, the daemon's default); then hsm_sign
 * calls with the signature checked against the public key through
 * OpenSSL's EVP_PKEY_verify(), and hsm_sign calls as the daemon makes them
 * (session copy, P-256 checked with the key's precomputed table,
 * signer/ecverify.h).
 *
 *   keytrail-bench-hsm DIR [LABEL] [SECONDS] [THREADS] [TOKEN]
 *       defaults: default, 3, 2, keytrail-keys
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "hsm.h"

struct worker {
	struct hsm *h;
	struct hsm_key *k;
	double until;
	int checked;
	unsigned long n;
	int failed;
};

static void *
work(void *arg)
{
	struct worker *w = arg;
	uint8_t digest[32], sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	size_t siglen;

	while (kt_monotonic_seconds() < w->until) {
		int rc;

		if (RAND_bytes(digest, sizeof(digest)) != 1) {
			w->failed = 1;
			break;
		}
		rc = w->checked ? hsm_sign(w->h, w->k, digest, 32, sig,
				      sizeof(sig), &siglen, err, sizeof(err))
				: hsm_bench_raw_sign(
				      w->h, w->k, digest, 32, err, sizeof(err));
		if (rc != KT_OK) {
			fprintf(stderr, "keytrail-bench-hsm: %s\n", err);
			w->failed = 1;
			break;
		}
		w->n++;
	}
	return NULL;
}

static double
run(struct hsm *h, struct hsm_key *k, int checked, double secs, int threads)
{
	struct worker w[16];
	pthread_t t[16];
	unsigned long total = 0;
	double t0 = kt_monotonic_seconds();

	for (int i = 0; i < threads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].h = h;
		w[i].k = k;
		w[i].checked = checked;
		w[i].until = t0 + secs;
		if (pthread_create(&t[i], NULL, work, &w[i]) != 0)
			exit(1);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failed)
			exit(1);
		total += w[i].n;
	}
	return (double)total / (kt_monotonic_seconds() - t0);
}

int
main(int argc, char **argv)
{
	const char *label = argc > 2 ? argv[2] : "default";
	double secs = argc > 3 ? atof(argv[3]) : 3;
	int threads = argc > 4 ? atoi(argv[4]) : 2;
	char pin[1024], conf[1024], err[HSM_ERR_SIZE];
	struct hsm_config hc;
	struct hsm_stats st;
	struct hsm *h = NULL;
	struct hsm_key *k = NULL;
	double raw, copy, checked, evp;

	if (argc < 2 || secs <= 0 || threads < 1 || threads > 16) {
		fprintf(stderr,
		    "usage: keytrail-bench-hsm DIR [LABEL] [SECONDS] "
		    "[THREADS] [TOKEN]\n"
		    "  raw C_Sign with the token's key object, then with "
		    "a session copy,\n"
		    "  then hsm_sign checked through EVP, then hsm_sign as "
		    "the daemon calls it\n"
		    "  (defaults: default, 3, 2, keytrail-keys)\n");
		return 2;
	}
	snprintf(pin, sizeof(pin), "%s/hsm/pin", argv[1]);
	snprintf(conf, sizeof(conf), "%s/hsm/softhsm2.conf", argv[1]);
	memset(&hc, 0, sizeof(hc));
	hc.token_label = argc > 5 ? argv[5] : "keytrail-keys";
	hc.pin_file = pin;
	hc.softhsm_conf = conf;
	hc.max_sessions = (unsigned)threads;
	if (hsm_open(&hc, &h, err, sizeof(err)) != KT_OK ||
	    hsm_find(h, label, &k, err, sizeof(err)) != KT_OK) {
		fprintf(stderr, "keytrail-bench-hsm: %s\n", err);
		hsm_close(h);
		return 1;
	}
	hsm_bench_set_copies(h, 0);
	raw = run(h, k, 0, secs, threads);
	hsm_bench_set_copies(h, 1);
	copy = run(h, k, 0, secs, threads);
	hsm_bench_set_fast_check(h, 0);
	evp = run(h, k, 1, secs, threads);
	hsm_bench_set_fast_check(h, 1);
	checked = run(h, k, 1, secs, threads);
	hsm_stats(h, &st);
	if (st.copies == 0 || st.copies_refused) {
		fprintf(stderr,
		    "keytrail-bench-hsm: the token made no session copy\n");
		hsm_key_free(k);
		hsm_close(h);
		return 1;
	}
	printf("keytrail-bench-hsm: key %s (%s), %d threads, %.1f s each\n",
	    label, hsm_alg_name(hsm_key_alg(k)), threads, secs);
	printf("  raw C_Sign, token object    %10.0f /s\n", raw);
	printf("  raw C_Sign, session copy    %10.0f /s  %.2fx token object\n",
	    copy, copy / raw);
	printf("  hsm_sign (copy, EVP check)  %10.0f /s  %.2fx token object\n",
	    evp, evp / raw);
	printf(
	    "  hsm_sign (copy, checked)    %10.0f /s  %.2fx token object%s\n",
	    checked, checked / raw,
	    hsm_key_alg(k) == HSM_ECDSA_P256
		? ", P-256 check with the key's table"
		: "");
	hsm_key_free(k);
	hsm_close(h);
	return 0;
}
