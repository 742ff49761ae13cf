/*
 * keytrail-bench-store: growth of the log's storage, without HTTP.
 *
 * Bulk-loads signature-sized entries into a fresh store (logd/store.c, the
 * same code the daemon runs) in batches, exactly as the sequencer does:
 * durable commits and a signed checkpoint per batch (Ed25519 in memory
 * instead of the HSM).  At each milestone it reports the append rate of the
 * last window, the latency of inclusion proofs at that size (fresh read
 * session each, like an HTTP request), disk bytes per entry against the
 * entries' own bytes, and the process's resident memory.
 *
 *   keytrail-bench-store DIR [N] [BATCH]     (defaults 1000000, 1024)
 *   keytrail-bench-store DIR 0               proof latency of an existing
 *                                            store: a cold pass, then the
 *                                            same proofs again (warm)
 *   keytrail-bench-store --logd DATADIR N [BATCH]
 *                                            adds N entries to the log of a
 *                                            stopped keytrail-logd, with
 *                                            checkpoints signed by its key
 *                                            in its HSM, so the daemon can
 *                                            be measured at any size
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/rand.h>

#include "conf.h"
#include "hsm.h"
#include "keytrail/encoding.h"
#include "keytrail/merkle.h"
#include "keytrail/note.h"
#include "store.h"

static int
sign_cb(void *ctx, const uint8_t *text, size_t len, struct kt_buf *out)
{
	return kt_note_sign(text, len, ctx, 1, 0, out);
}

/* The daemon's log key in its HSM, for --logd. */
struct bench_hsm {
	struct hsm *h;
	struct hsm_key *k;
};

static int
bench_hsm_sign(
    void *ctx, const uint8_t *msg, size_t len, uint8_t sig[KT_ED25519_SIG_SIZE])
{
	struct bench_hsm *b = ctx;
	char err[256];
	size_t siglen;

	if (hsm_sign(b->h, b->k, msg, len, sig, KT_ED25519_SIG_SIZE, &siglen,
		err, sizeof(err)) != KT_OK) {
		fprintf(stderr, "keytrail-bench-store: %s\n", err);
		return KT_EIO;
	}
	return siglen == KT_ED25519_SIG_SIZE ? KT_OK : KT_EINTERNAL;
}

/*
 * Opens the log of the daemon whose data directory is dir, as the daemon
 * does (its config, its HSM key, its origin), with signer signing in the
 * HSM.  The daemon must be stopped: LMDB has one writer.
 */
static int
bench_open_logd(const char *dir, struct bench_hsm *b,
    struct kt_note_signer *signer, struct store **st)
{
	struct hsm_config hc;
	struct conf c;
	struct kt_bytes spki;
	char err[512] = "";

	if (conf_load(dir, NULL, &c, err, sizeof(err)) != KT_OK)
		goto fail;
	memset(&hc, 0, sizeof(hc));
	hc.module = c.hsm_module;
	hc.token_label = c.hsm_token;
	hc.pin_file = c.hsm_pin_file;
	hc.softhsm_conf = c.hsm_softhsm_conf[0] ? c.hsm_softhsm_conf : NULL;
	if (hsm_open(&hc, &b->h, err, sizeof(err)) != KT_OK ||
	    hsm_find(b->h, c.log_key_label, &b->k, err, sizeof(err)) != KT_OK)
		goto fail;
	spki = hsm_key_spki(b->k);
	if (hsm_key_alg(b->k) != HSM_ED25519 || spki.len != 44 ||
	    kt_note_vkey_init(c.origin, strlen(c.origin), KT_NOTE_ED25519,
		spki.p + 12, &signer->key) != KT_OK) {
		snprintf(err, sizeof(err), "the log key is not Ed25519");
		goto fail;
	}
	signer->sign = bench_hsm_sign;
	signer->ctx = b;
	if (store_open(dir, c.origin, c.map_size, st, err, sizeof(err)) !=
	    KT_OK)
		goto fail;
	/* Runs and tables of the size the daemon will use on this log. */
	store_set_ixbuf_entries(*st, c.ixbuf_entries);
	return 0;
fail:
	fprintf(stderr, "keytrail-bench-store: %s\n", err);
	return -1;
}

/* Bytes used by the files of dir (not recursive: LMDB keeps two files). */
static uint64_t
dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t total = 0;
	char p[1024];
	struct stat st;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		int len = snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);

		if (len > 0 && (size_t)len < sizeof(p) && stat(p, &st) == 0 &&
		    S_ISREG(st.st_mode))
			total += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return total;
}

/* Resident anonymous memory in KiB (LMDB's map is file-backed). */
static long
rss_anon_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "RssAnon:", 8) == 0)
			v = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	return v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * p50 and p99 of 2000 inclusion proofs at indexes below size, drawn from
 * seed (the same seed gives the same indexes: a second pass is warm).
 */
static void
proof_latency(
    struct store *st, uint64_t size, uint64_t seed, double *p50, double *p99)
{
	enum {
		K = 2000
	};
	static double lat[K];

	for (int i = 0; i < K; i++) {
		struct kt_hash proof[KT_PROOF_MAX];
		struct store_rd *rd;
		uint64_t idx;
		size_t np;
		double t0 = kt_monotonic_seconds();

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		idx = (seed >> 11) % size;
		if (store_rd_begin(st, &rd) != KT_OK ||
		    kt_prove_inclusion(size, idx, store_rd_read_hashes, rd,
			proof, &np) != KT_OK)
			exit(1);
		store_rd_end(rd);
		lat[i] = kt_monotonic_seconds() - t0;
	}
	qsort(lat, K, sizeof(lat[0]), cmp_double);
	*p50 = lat[K / 2];
	*p99 = lat[K * 99 / 100];
}

int
main(int argc, char **argv)
{
	int logd = argc > 1 && strcmp(argv[1], "--logd") == 0;
	const char *dir = argv[logd ? 2 : 1];
	uint64_t n =
	    argc > 2 + logd ? strtoull(argv[2 + logd], NULL, 10) : 1000000;
	size_t batch =
	    argc > 3 + logd ? strtoul(argv[3 + logd], NULL, 10) : 1024;
	const uint64_t marks[] = { 10000, 100000, 1000000, 10000000,
		100000000 };
	struct kt_note_ed25519 *key = NULL;
	struct kt_note_signer signer;
	struct bench_hsm bh = { NULL, NULL };
	struct store *st = NULL;
	struct store_item *items;
	char(*ent)[520], (*digests)[65], err[256], logdir[1024];
	uint8_t(*raw)[32], keyraw[32];
	uint8_t seed[32];
	uint64_t done = 0, entry_bytes = 0, win_start = 0, size0 = 0;
	double t_win, t0;
	size_t mi = 0;

	if (argc < 2 + 2 * logd || dir == NULL || batch == 0 ||
	    batch > STORE_BATCH_MAX || (logd && n == 0)) {
		fprintf(stderr,
		    "usage: keytrail-bench-store DIR [N] [BATCH]\n"
		    "       keytrail-bench-store --logd DATADIR N [BATCH]\n");
		return 2;
	}
	memset(&signer, 0, sizeof(signer));
	if (logd) {
		if (bench_open_logd(dir, &bh, &signer, &st) != 0)
			return 1;
	} else {
		uint8_t pub[32];

		if (RAND_bytes(seed, sizeof(seed)) != 1 ||
		    kt_note_ed25519_new(seed, &key) != KT_OK)
			return 1;
		kt_note_ed25519_public(key, pub);
		if (kt_note_vkey_init("bench.example/log", 17, KT_NOTE_ED25519,
			pub, &signer.key) != KT_OK)
			return 1;
		signer.sign = kt_note_ed25519_sign;
		signer.ctx = key;
		if (store_open(dir, "bench.example/log", UINT64_C(64) << 30,
			&st, err, sizeof(err)) != KT_OK) {
			fprintf(stderr, "keytrail-bench-store: %s\n", err);
			return 1;
		}
	}
	if (store_init_checkpoint(
		st, sign_cb, &signer, NULL, err, sizeof(err)) != KT_OK) {
		fprintf(stderr, "keytrail-bench-store: %s\n", err);
		return 1;
	}
	{
		struct store_rd *rd;

		if (store_rd_begin(st, &rd) == KT_OK) {
			size0 = store_rd_size(rd);
			store_rd_end(rd);
		}
	}
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	if (n == 0) {
		struct store_rd *rd;
		uint64_t size = 0;
		double c50, c99, w50, w99;

		if (store_rd_begin(st, &rd) == KT_OK) {
			size = store_rd_size(rd);
			store_rd_end(rd);
		}
		if (size == 0)
			return 1;
		proof_latency(st, size, 7, &c50, &c99);
		proof_latency(st, size, 7, &w50, &w99);
		printf("%llu entries: proofs cold p50 %.1fus p99 %.1fus, warm "
		       "p50 %.1fus p99 %.1fus; disk %.0f B/entry\n",
		    (unsigned long long)size, c50 * 1e6, c99 * 1e6, w50 * 1e6,
		    w99 * 1e6, (double)dir_bytes(logdir) / (double)size);
		store_close(st);
		return 0;
	}
	items = calloc(batch, sizeof(*items));
	ent = calloc(batch, sizeof(*ent));
	digests = calloc(batch, sizeof(*digests));
	raw = calloc(batch, sizeof(*raw));
	if (items == NULL || ent == NULL || digests == NULL || raw == NULL ||
	    RAND_bytes(keyraw, sizeof(keyraw)) != 1)
		return 1;
	printf("%12s %12s %10s %10s %12s %10s\n", "entries", "appends/s",
	    "proof p50", "proof p99", "disk B/entry", "RSS anon");
	while (mi < sizeof(marks) / sizeof(marks[0]) && size0 >= marks[mi])
		mi++;
	t_win = t0 = kt_monotonic_seconds();
	while (done < n) {
		size_t k = n - done < batch ? (size_t)(n - done) : batch;

		for (size_t i = 0; i < k; i++) {
			uint8_t d[32], sig[64];
			char sig64[100];
			int len;

			if (RAND_bytes(d, 32) != 1 || RAND_bytes(sig, 64) != 1)
				return 1;
			kt_hex_encode(d, 32, digests[i]);
			if (kt_b64_encode(sig, 64, sig64, sizeof(sig64)) < 0)
				return 1;
			/* The shape and size of a real signature entry. */
			len = snprintf(ent[i], sizeof(ent[i]),
			    "{\"alg\":\"ed25519\",\"approvers\":[],"
			    "\"artifact\":"
			    "{\"name\":\"pkg-%llu.tar.gz\",\"size\":%llu},"
			    "\"digest\":\"%s\",\"key\":\"%064d\",\"kind\":"
			    "\"signature\",\"policy\":\"%064d\",\"principal\":"
			    "\"ci\",\"sig\":\"%s\",\"time\":"
			    "\"2026-11-29T10:00:00Z\"}",
			    (unsigned long long)((done + i) % 5000),
			    (unsigned long long)(done + i), digests[i], 7, 9,
			    sig64);
			memset(&items[i], 0, sizeof(items[i]));
			items[i].entry.p = (const uint8_t *)ent[i];
			items[i].entry.len = (size_t)len;
			kt_leaf_hash(items[i].entry.p, items[i].entry.len,
			    &items[i].leaf);
			/*
			 * Indexed as the daemon indexes a submitted signature:
			 * raw key ID and digest, and a dedup key.
			 */
			memcpy(raw[i], d, 32);
			items[i].by_digest.p = raw[i];
			items[i].by_digest.len = 32;
			items[i].by_key.p = keyraw;
			items[i].by_key.len = 32;
			if (RAND_bytes(items[i].dedup.b, 32) != 1)
				return 1;
			items[i].has_dedup = 1;
			entry_bytes += (uint64_t)len;
		}
		if (store_append(st, items, k, sign_cb, &signer, NULL, NULL,
			err, sizeof(err)) != KT_OK) {
			fprintf(stderr, "keytrail-bench-store: %s\n", err);
			return 1;
		}
		done += k;
		if (mi < sizeof(marks) / sizeof(marks[0]) &&
		    size0 + done >= marks[mi]) {
			double rate = (double)(done - win_start) /
			    (kt_monotonic_seconds() - t_win);
			double p50, p99;

			proof_latency(st, size0 + done, done, &p50, &p99);
			printf("%12llu %12.0f %8.1fus %8.1fus %12.0f %8ldKiB"
			       "   (entries avg %.0f B)\n",
			    (unsigned long long)(size0 + done), rate, p50 * 1e6,
			    p99 * 1e6,
			    (double)dir_bytes(logdir) / (double)(size0 + done),
			    rss_anon_kib(), (double)entry_bytes / (double)done);
			fflush(stdout);
			mi++;
			win_start = done;
			t_win = kt_monotonic_seconds();
		}
	}
	printf("added %llu entries (%.0f/s) to a log of %llu: %llu now, "
	       "%.0f disk bytes per entry\n",
	    (unsigned long long)n, (double)n / (kt_monotonic_seconds() - t0),
	    (unsigned long long)size0, (unsigned long long)(size0 + done),
	    (double)dir_bytes(logdir) / (double)(size0 + done));
	store_close(st);
	kt_note_ed25519_free(key);
	hsm_key_free(bh.k);
	hsm_close(bh.h);
	free(items);
	free(ent);
	free(digests);
	free(raw);
	return 0;
}
