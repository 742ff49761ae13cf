/*
 * The HSM module against a real SoftHSMv2 token in a temporary directory:
 * first-start setup, the PIN file rules, key generation for every
 * algorithm, lookup, signing checked with OpenSSL (and, for the pre-hashed
 * algorithms, with the openssl command line exactly as DESIGN.md section 4
 * promises), the attribute policy, concurrent signing through a small
 * session pool, and recovery after the token drops every session.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hsm.h"
#include "keytrail/encoding.h"
#include "testutil.h"

#define SIGN_TOKEN "kt-sign"
#define LOG_TOKEN "kt-log"
#define POOL_SESSIONS 2
#define THREADS 4
#define SIGNS_PER_THREAD 200

static const struct {
	enum hsm_alg alg;
	const char *label;
	const char *name;
	int pkey_type;
	int bits;
} algs[] = {
	{ HSM_ED25519, "key-ed25519", "ed25519", EVP_PKEY_ED25519, 256 },
	{ HSM_ECDSA_P256, "key-p256", "ecdsa-p256-sha256", EVP_PKEY_EC, 256 },
	{ HSM_ECDSA_P384, "key-p384", "ecdsa-p384-sha256", EVP_PKEY_EC, 384 },
	{ HSM_RSA3072_PSS, "key-rsa3072", "rsa3072-pss-sha256", EVP_PKEY_RSA,
	    3072 },
	{ HSM_RSA4096_PSS, "key-rsa4096", "rsa4096-pss-sha256", EVP_PKEY_RSA,
	    4096 },
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

struct fixture {
	char dir[64];
	char hsmdir[PATH_MAX];
	char conf[PATH_MAX];
	char pin[PATH_MAX];
	struct hsm *h;
	struct hsm_key *keys[NALGS];
};

static void
path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static void
file_put(const char *path, mode_t mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

static void
file_put_bytes(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Removes a directory tree; the token directory is only a few levels. */
static void
rm_rf(const char *path)
{
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		(void)unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			path_join(sub, sizeof(sub), path, de->d_name);
			rm_rf(sub);
		}
		(void)closedir(d);
	}
	(void)rmdir(path);
}

static struct hsm_config
config(struct fixture *fx, const char *token, const char *pin)
{
	struct hsm_config cfg = { NULL, token, pin, fx->conf, POOL_SESSIONS,
		1 };

	return cfg;
}

static int
group_setup(void **state)
{
	static const char *const labels[] = { SIGN_TOKEN, LOG_TOKEN };
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[HSM_ERR_SIZE];
	struct hsm_config cfg;

	if (fx == NULL)
		return -1;
	(void)snprintf(fx->dir, sizeof(fx->dir), "/tmp/kt-hsm-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	path_join(fx->hsmdir, sizeof(fx->hsmdir), fx->dir, "hsm");
	path_join(
	    fx->conf, sizeof(fx->conf), fx->hsmdir, HSM_SOFTHSM_CONF_FILE);
	path_join(fx->pin, sizeof(fx->pin), fx->hsmdir, HSM_SOFTHSM_PIN_FILE);
	if (hsm_softhsm_setup(fx->hsmdir, labels, 2, NULL, err, sizeof(err)) !=
	    KT_OK) {
		print_error("setup: %s\n", err);
		return -1;
	}
	cfg = config(fx, SIGN_TOKEN, fx->pin);
	if (hsm_open(&cfg, &fx->h, err, sizeof(err)) != KT_OK) {
		print_error("open: %s\n", err);
		return -1;
	}
	/* Each key once: RSA-4096 generation takes SoftHSM a while. */
	for (size_t i = 0; i < NALGS; i++)
		if (hsm_generate(fx->h, algs[i].alg, algs[i].label,
			&fx->keys[i], err, sizeof(err)) != KT_OK) {
			print_error("generate %s: %s\n", algs[i].name, err);
			return -1;
		}
	*state = fx;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx == NULL)
		return 0;
	for (size_t i = 0; i < NALGS; i++)
		hsm_key_free(fx->keys[i]);
	hsm_close(fx->h);
	rm_rf(fx->dir);
	free(fx);
	return 0;
}

static EVP_PKEY *
spki_pkey(const struct hsm_key *k)
{
	struct kt_bytes b = hsm_key_spki(k);
	const unsigned char *p = b.p;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)b.len);

	assert_non_null(pk);
	assert_ptr_equal(p, b.p + b.len);
	return pk;
}

/*
 * Verifies sig the way a user would: Ed25519 over the 32 digest bytes,
 * the others over the artifact with SHA-256 (what `openssl dgst -sha256
 * -verify` does).  Returns 1 if it verifies.
 */
static int
verify_artifact(const struct hsm_key *k, const uint8_t *artifact, size_t alen,
    const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk = spki_pkey(k);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	uint8_t digest[32];
	int ok;

	assert_non_null(mc);
	assert_int_equal(
	    EVP_Digest(artifact, alen, digest, NULL, EVP_sha256(), NULL), 1);
	if (hsm_key_alg(k) == HSM_ED25519) {
		assert_int_equal(
		    EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk), 1);
		ok = EVP_DigestVerify(mc, sig, siglen, digest, sizeof(digest));
	} else {
		assert_int_equal(
		    EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, pk), 1);
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(
					     pc, RSA_PKCS1_PSS_PADDING),
			    1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32), 1);
			assert_int_equal(
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()), 1);
		}
		ok = EVP_DigestVerify(mc, sig, siglen, artifact, alen);
	}
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(pk);
	return ok == 1;
}

/* Runs `openssl dgst -sha256 -verify` on the signature in files. */
static void
verify_with_openssl_cli(struct fixture *fx, const struct hsm_key *k,
    const uint8_t *artifact, size_t alen, const uint8_t *sig, size_t siglen)
{
	char pub[PATH_MAX], art[PATH_MAX], sigp[PATH_MAX], cmd[4 * PATH_MAX];
	EVP_PKEY *pk = spki_pkey(k);
	int rsa = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
	FILE *f;
	int st;

	path_join(pub, sizeof(pub), fx->dir, "pub.pem");
	path_join(art, sizeof(art), fx->dir, "artifact");
	path_join(sigp, sizeof(sigp), fx->dir, "artifact.sig");
	assert_non_null(f = fopen(pub, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, pk), 1);
	assert_int_equal(fclose(f), 0);
	EVP_PKEY_free(pk);
	file_put_bytes(art, artifact, alen);
	file_put_bytes(sigp, sig, siglen);
	(void)snprintf(cmd, sizeof(cmd),
	    "openssl dgst -sha256 -verify %s -signature %s %s%s >/dev/null",
	    pub, sigp,
	    rsa ? "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 "
		: "",
	    art);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
test_hsm_softhsm_setup_files(void **state)
{
	struct fixture *fx = *state;
	char tokens[PATH_MAX];
	struct stat st;
	size_t len;
	uint8_t *pin, *conf;

	assert_int_equal(stat(fx->pin, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(fx->hsmdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	path_join(tokens, sizeof(tokens), fx->hsmdir, HSM_SOFTHSM_TOKEN_DIR);
	assert_int_equal(stat(tokens, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(fx->conf, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	/* 32 lowercase hex digits and a newline. */
	assert_non_null(pin = tu_read_file(fx->pin, &len));
	assert_int_equal(len, 33);
	assert_int_equal(pin[32], '\n');
	for (size_t i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", pin[i]));
	free(pin);

	assert_non_null(conf = tu_read_file(fx->conf, &len));
	conf[len] = '\0';
	assert_non_null(strstr((char *)conf, "directories.tokendir = /"));
	assert_non_null(strstr((char *)conf, "objectstore.backend = file"));
	free(conf);
}

static void
test_hsm_softhsm_setup_refuses_second_run(void **state)
{
	struct fixture *fx = *state;
	static const char *const one[] = { "again" };
	static const char *const dup[] = { "a", "a" };
	static const char *const empty[] = { "" };
	static const char *const long33[] = {
		"123456789012345678901234567890123"
	};
	char err[HSM_ERR_SIZE], other[PATH_MAX], half[PATH_MAX];
	char stray[PATH_MAX], file[PATH_MAX];

	assert_int_equal(
	    hsm_softhsm_setup(fx->hsmdir, one, 1, NULL, err, sizeof(err)),
	    KT_EEXIST);
	assert_non_null(strstr(err, "set up already"));

	path_join(other, sizeof(other), fx->dir, "other");
	assert_int_equal(
	    hsm_softhsm_setup(other, dup, 2, NULL, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(
	    hsm_softhsm_setup(other, empty, 1, NULL, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(
	    hsm_softhsm_setup(other, long33, 1, NULL, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(
	    hsm_softhsm_setup(other, one, 0, NULL, err, sizeof(err)),
	    KT_EINVAL);
	/* A token directory without a PIN file: an interrupted setup. */
	path_join(half, sizeof(half), fx->dir, "half");
	path_join(stray, sizeof(stray), half, HSM_SOFTHSM_TOKEN_DIR);
	assert_int_equal(mkdir(half, 0700), 0);
	assert_int_equal(mkdir(stray, 0700), 0);
	path_join(file, sizeof(file), stray, "token");
	file_put(file, 0600, "x");
	assert_int_equal(
	    hsm_softhsm_setup(half, one, 1, NULL, err, sizeof(err)), KT_EEXIST);
	assert_non_null(strstr(err, "did not finish"));

	/* The module is open under another configuration. */
	assert_int_equal(
	    hsm_softhsm_setup(other, one, 1, NULL, err, sizeof(err)),
	    KT_EINVAL);
	assert_non_null(strstr(err, "already in use"));
}

static void
test_hsm_open_refuses_loose_pin_file(void **state)
{
	struct fixture *fx = *state;
	static const mode_t modes[] = { 0640, 0604, 0660, 0644 };
	char path[PATH_MAX], err[HSM_ERR_SIZE];
	struct hsm_config cfg;
	struct hsm *h = NULL;
	size_t len;
	uint8_t *pin;

	assert_non_null(pin = tu_read_file(fx->pin, &len));
	pin[len] = '\0';
	path_join(path, sizeof(path), fx->dir, "pin-loose");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		file_put(path, modes[i], (char *)pin);
		cfg = config(fx, SIGN_TOKEN, path);
		assert_int_equal(
		    hsm_open(&cfg, &h, err, sizeof(err)), KT_EPOLICY);
		assert_null(h);
		assert_non_null(strstr(err, "group or others"));
		assert_null(strstr(err, (char *)pin));
	}
	/* The same PIN with the right mode works. */
	file_put(path, 0400, (char *)pin);
	cfg = config(fx, LOG_TOKEN, path);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_OK);
	hsm_close(h);
	kt_wipe(pin, len);
	free(pin);
	(void)unlink(path);
}

static void
test_hsm_open_wrong_pin(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *text;
		int rc;
	} cases[] = {
		{ "0000000000000000\n", KT_EAUTH },
		{ "", KT_EPARSE },
		{ "\n", KT_EPARSE },
		{ "two\nlines\n", KT_EPARSE },
	};
	char path[PATH_MAX], err[HSM_ERR_SIZE];
	struct hsm_config cfg;
	struct hsm *h = NULL;

	/* The log token: nothing in this process is logged in to it. */
	path_join(path, sizeof(path), fx->dir, "pin-wrong");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		file_put(path, 0600, cases[i].text);
		cfg = config(fx, LOG_TOKEN, path);
		assert_int_equal(
		    hsm_open(&cfg, &h, err, sizeof(err)), cases[i].rc);
		assert_null(h);
		if (cases[i].rc == KT_EAUTH) {
			assert_non_null(strstr(err, "refused the PIN"));
			assert_non_null(strstr(err, "CKR_PIN_INCORRECT"));
			assert_null(strstr(err, "0000000000000000"));
		}
	}
	(void)unlink(path);
}

static void
test_hsm_open_refuses_bad_config(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE], missing[PATH_MAX], otherconf[PATH_MAX];
	struct hsm_config cfg;
	struct hsm *h = NULL;

	cfg = config(fx, "no-such-token", fx->pin);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_ENOTFOUND);
	assert_non_null(strstr(err, "no-such-token"));

	cfg = config(fx, LOG_TOKEN, fx->dir);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_EPOLICY);
	assert_non_null(strstr(err, "not a regular file"));

	path_join(missing, sizeof(missing), fx->dir, "missing-pin");
	cfg = config(fx, SIGN_TOKEN, missing);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_ENOTFOUND);

	cfg = config(fx, SIGN_TOKEN, fx->pin);
	cfg.module = "/nonexistent/libpkcs11.so";
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_ENOTFOUND);
	assert_non_null(strstr(err, "cannot load"));

	cfg = config(fx, SIGN_TOKEN, fx->pin);
	cfg.max_sessions = HSM_SESSIONS_MAX + 1;
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_EINVAL);

	cfg = config(fx, "", fx->pin);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_EINVAL);

	/*
	 * A second handle on an open token would ride on the first one's
	 * login whatever its PIN.
	 */
	cfg = config(fx, SIGN_TOKEN, fx->pin);
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_EEXIST);
	assert_non_null(strstr(err, "already open"));

	/* One module, one configuration per process. */
	path_join(otherconf, sizeof(otherconf), fx->dir, "other.conf");
	cfg = config(fx, SIGN_TOKEN, fx->pin);
	cfg.softhsm_conf = otherconf;
	assert_int_equal(hsm_open(&cfg, &h, err, sizeof(err)), KT_EINVAL);
	assert_null(h);
}

static void
test_hsm_alg_names(void **state)
{
	enum hsm_alg alg;

	(void)state;
	for (size_t i = 0; i < NALGS; i++) {
		assert_string_equal(hsm_alg_name(algs[i].alg), algs[i].name);
		assert_int_equal(hsm_alg_parse(algs[i].name, &alg), KT_OK);
		assert_int_equal(alg, algs[i].alg);
		assert_true(hsm_sig_max(algs[i].alg) <= HSM_SIG_MAX);
	}
	assert_null(hsm_alg_name((enum hsm_alg)0));
	assert_int_equal(hsm_alg_parse("ecdsa-p256", &alg), KT_EPARSE);
	assert_int_equal(hsm_alg_parse("ED25519", &alg), KT_EPARSE);
	assert_int_equal(hsm_alg_parse(NULL, &alg), KT_EPARSE);
}

static void
test_hsm_generate_key_properties(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < NALGS; i++) {
		const struct hsm_key *k = fx->keys[i];
		struct kt_bytes spki = hsm_key_spki(k);
		uint8_t digest[32];
		char id[HSM_KEY_ID_LEN + 1];
		struct hsm_attrs a;
		EVP_PKEY *pk;

		assert_int_equal(hsm_key_alg(k), algs[i].alg);
		assert_string_equal(hsm_key_label(k), algs[i].label);
		/* Key ID: lowercase hex SHA-256 of the DER SPKI. */
		assert_int_equal(EVP_Digest(spki.p, spki.len, digest, NULL,
				     EVP_sha256(), NULL),
		    1);
		kt_hex_encode(digest, sizeof(digest), id);
		assert_string_equal(hsm_key_id(k), id);
		pk = spki_pkey(k);
		assert_int_equal(EVP_PKEY_get_base_id(pk), algs[i].pkey_type);
		assert_int_equal(EVP_PKEY_get_bits(pk), algs[i].bits);
		EVP_PKEY_free(pk);

		hsm_key_attrs(k, &a);
		assert_true(a.sensitive);
		assert_false(a.extractable);
		assert_true(a.always_sensitive);
		assert_true(a.never_extractable);
		assert_true(a.local);
	}
}

static void
test_hsm_sign_verifies(void **state)
{
	struct fixture *fx = *state;
	static const uint8_t artifact[] = "keytrail artifact bytes\n";
	uint8_t digest[32], sig[HSM_SIG_MAX], sig2[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];

	assert_int_equal(EVP_Digest(artifact, sizeof(artifact) - 1, digest,
			     NULL, EVP_sha256(), NULL),
	    1);
	for (size_t i = 0; i < NALGS; i++) {
		struct hsm_key *k = fx->keys[i];
		size_t siglen = 0, siglen2 = 0;

		assert_int_equal(hsm_sign(fx->h, k, digest, sizeof(digest), sig,
				     sizeof(sig), &siglen, err, sizeof(err)),
		    KT_OK);
		assert_true(siglen > 0 && siglen <= hsm_sig_max(algs[i].alg));
		if (algs[i].alg == HSM_ED25519)
			assert_int_equal(siglen, 64);
		if (algs[i].alg == HSM_ECDSA_P256 ||
		    algs[i].alg == HSM_ECDSA_P384)
			assert_int_equal(sig[0], 0x30); /* DER SEQUENCE */
		if (algs[i].pkey_type == EVP_PKEY_RSA)
			assert_int_equal(siglen, (size_t)algs[i].bits / 8);
		assert_true(verify_artifact(
		    k, artifact, sizeof(artifact) - 1, sig, siglen));
		if (algs[i].alg != HSM_ED25519)
			verify_with_openssl_cli(
			    fx, k, artifact, sizeof(artifact) - 1, sig, siglen);

		/* Forged: another artifact, a flipped bit. */
		assert_false(verify_artifact(
		    k, artifact, sizeof(artifact) - 2, sig, siglen));
		sig[siglen / 2] ^= 0x01;
		assert_false(verify_artifact(
		    k, artifact, sizeof(artifact) - 1, sig, siglen));

		/* Ed25519 is deterministic; the others are randomised. */
		assert_int_equal(
		    hsm_sign(fx->h, k, digest, sizeof(digest), sig2,
			sizeof(sig2), &siglen2, err, sizeof(err)),
		    KT_OK);
		assert_true(verify_artifact(
		    k, artifact, sizeof(artifact) - 1, sig2, siglen2));
	}
}

static void
test_hsm_sign_ed25519_message(void **state)
{
	struct fixture *fx = *state;
	static const char note[] =
	    "example.com/log\n42\nq2V5dHJhaWwga2V5dHJhaWwga2V5dHJhaWwga2V5dA=="
	    "\n";
	uint8_t sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	EVP_PKEY *pk = spki_pkey(fx->keys[0]);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	size_t siglen;

	/* A checkpoint note is signed as it is, not hashed first. */
	assert_int_equal(hsm_key_alg(fx->keys[0]), HSM_ED25519);
	assert_int_equal(
	    hsm_sign(fx->h, fx->keys[0], (const uint8_t *)note, strlen(note),
		sig, sizeof(sig), &siglen, err, sizeof(err)),
	    KT_OK);
	assert_int_equal(EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(mc, sig, siglen,
			     (const uint8_t *)note, strlen(note)),
	    1);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(pk);
}

static void
test_hsm_sign_rejects_bad_arguments(void **state)
{
	struct fixture *fx = *state;
	uint8_t digest[33] = { 0 }, sig[HSM_SIG_MAX], *big;
	char err[HSM_ERR_SIZE];
	size_t siglen = 12345;

	for (size_t i = 1; i < NALGS; i++) {
		assert_int_equal(hsm_sign(fx->h, fx->keys[i], digest, 31, sig,
				     sizeof(sig), &siglen, err, sizeof(err)),
		    KT_EINVAL);
		assert_int_equal(hsm_sign(fx->h, fx->keys[i], digest, 33, sig,
				     sizeof(sig), &siglen, err, sizeof(err)),
		    KT_EINVAL);
		/* Too small for the signature: nothing written. */
		assert_int_equal(hsm_sign(fx->h, fx->keys[i], digest, 32, sig,
				     16, &siglen, err, sizeof(err)),
		    KT_ETOOBIG);
		assert_int_equal(siglen, 12345);
	}
	assert_int_equal(hsm_sign(fx->h, fx->keys[0], digest, 0, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_EINVAL);
	assert_non_null(big = calloc(1, HSM_MSG_MAX + 1));
	assert_int_equal(hsm_sign(fx->h, fx->keys[0], big, HSM_MSG_MAX + 1, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(hsm_sign(fx->h, fx->keys[0], big, HSM_MSG_MAX, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_OK);
	free(big);
}

static void
test_hsm_find_matches_generated(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE];

	for (size_t i = 0; i < NALGS; i++) {
		struct hsm_key *k = NULL;
		struct kt_bytes a = hsm_key_spki(fx->keys[i]), b;
		struct hsm_attrs x, y;

		assert_int_equal(
		    hsm_find(fx->h, algs[i].label, &k, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(hsm_key_alg(k), algs[i].alg);
		assert_string_equal(hsm_key_id(k), hsm_key_id(fx->keys[i]));
		b = hsm_key_spki(k);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.p, b.p, a.len);
		hsm_key_attrs(fx->keys[i], &x);
		hsm_key_attrs(k, &y);
		assert_memory_equal(&x, &y, sizeof(x));
		hsm_key_free(k);
	}
}

static void
test_hsm_find_and_generate_errors(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE], longlabel[HSM_KEY_LABEL_MAX + 2];
	struct hsm_key *k = NULL;

	assert_int_equal(
	    hsm_find(fx->h, "absent", &k, err, sizeof(err)), KT_ENOTFOUND);
	assert_non_null(strstr(err, "absent"));
	assert_int_equal(hsm_generate(fx->h, HSM_ECDSA_P256, "key-ed25519", &k,
			     err, sizeof(err)),
	    KT_EEXIST);
	assert_int_equal(
	    hsm_generate(fx->h, HSM_ECDSA_P256, "", &k, err, sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(hsm_generate(fx->h, HSM_ECDSA_P256, "tab\there", &k,
			     err, sizeof(err)),
	    KT_EINVAL);
	memset(longlabel, 'x', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = '\0';
	assert_int_equal(hsm_generate(fx->h, HSM_ECDSA_P256, longlabel, &k, err,
			     sizeof(err)),
	    KT_EINVAL);
	assert_int_equal(
	    hsm_generate(fx->h, (enum hsm_alg)99, "new", &k, err, sizeof(err)),
	    KT_EINVAL);
	assert_null(k);
}

static void
test_hsm_find_refuses_unsafe_key(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE];
	struct hsm_key *k = NULL;

	assert_int_equal(
	    hsm_test_generate_unsafe(fx->h, "unsafe", err, sizeof(err)), KT_OK);
	assert_int_equal(
	    hsm_find(fx->h, "unsafe", &k, err, sizeof(err)), KT_EPOLICY);
	assert_null(k);
	assert_non_null(strstr(err, "CKA_SENSITIVE is false"));
}

static void
test_hsm_secret_unreadable(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE];

	for (size_t i = 0; i < NALGS; i++) {
		int readable = -1;

		assert_int_equal(hsm_test_secret_readable(fx->h, fx->keys[i],
				     &readable, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(readable, 0);
	}
}

static void
test_hsm_sign_refuses_unverifiable(void **state)
{
	struct fixture *fx = *state;
	static const size_t which[] = { 0, 1 }; /* Ed25519, P-256 */
	uint8_t digest[32] = { 9 }, sig[HSM_SIG_MAX], before[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE], label[64];
	struct hsm_stats s0, s1;

	for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		size_t a = which[i], siglen = 777;
		struct hsm_key *k = NULL, *other = NULL;

		(void)snprintf(label, sizeof(label), "%s-other", algs[a].label);
		assert_int_equal(hsm_generate(fx->h, algs[a].alg, label, &other,
				     err, sizeof(err)),
		    KT_OK);
		assert_int_equal(
		    hsm_find(fx->h, algs[a].label, &k, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(hsm_test_key_mismatch(k, other), KT_OK);
		memset(sig, 0xa5, sizeof(sig));
		memcpy(before, sig, sizeof(sig));
		hsm_stats(fx->h, &s0);
		assert_int_equal(hsm_sign(fx->h, k, digest, sizeof(digest), sig,
				     sizeof(sig), &siglen, err, sizeof(err)),
		    KT_EVERIFY);
		assert_non_null(strstr(err, "does not verify"));
		/* Nothing of the refused signature reaches the caller. */
		assert_memory_equal(sig, before, sizeof(sig));
		assert_int_equal(siglen, 777);
		hsm_stats(fx->h, &s1);
		assert_int_equal(s1.sign_failures, s0.sign_failures + 1);
		assert_int_equal(s1.signs, s0.signs);
		/* Both are checked through the key's tables; EVP refuses too.
		 */
		hsm_bench_set_fast_check(fx->h, 0);
		assert_int_equal(hsm_sign(fx->h, k, digest, sizeof(digest), sig,
				     sizeof(sig), &siglen, err, sizeof(err)),
		    KT_EVERIFY);
		hsm_bench_set_fast_check(fx->h, 1);
		assert_memory_equal(sig, before, sizeof(sig));
		hsm_key_free(k);
		hsm_key_free(other);
	}
	assert_int_equal(
	    hsm_test_key_mismatch(fx->keys[0], fx->keys[1]), KT_EINVAL);
}

struct worker {
	struct fixture *fx;
	struct hsm_key *key;
	int failures;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t digest[32], sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	size_t siglen;

	for (int i = 0; i < SIGNS_PER_THREAD; i++) {
		memset(digest, i & 0xff, sizeof(digest));
		if (hsm_sign(w->fx->h, w->key, digest, sizeof(digest), sig,
			sizeof(sig), &siglen, err, sizeof(err)) != KT_OK)
			w->failures++;
	}
	return NULL;
}

static void
test_hsm_sign_concurrent(void **state)
{
	struct fixture *fx = *state;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct hsm_stats before, after;

	hsm_stats(fx->h, &before);
	for (int i = 0; i < THREADS; i++) {
		/* Ed25519 and ECDSA keys of one token, interleaved. */
		w[i] = (struct worker){ fx, fx->keys[i % 2], 0 };
		assert_int_equal(
		    pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	hsm_stats(fx->h, &after);
	assert_int_equal(
	    after.signs - before.signs, THREADS * SIGNS_PER_THREAD);
	assert_int_equal(after.sign_failures, before.sign_failures);
	assert_true(after.sessions_open <= POOL_SESSIONS);
	assert_int_equal(after.sessions_max, POOL_SESSIONS);
}

/* OpenSSL's check of sig over the 32-byte digest, without asserting. */
static int
openssl_ok(
    EVP_PKEY *pk, const uint8_t *digest, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mc = NULL;
	EVP_PKEY_CTX *c = NULL;
	int ok;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519)
		ok = (mc = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk) == 1 &&
		    EVP_DigestVerify(mc, sig, siglen, digest, 32) == 1;
	else
		ok = (c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) != NULL &&
		    EVP_PKEY_verify_init(c) == 1 &&
		    EVP_PKEY_verify(c, sig, siglen, digest, 32) == 1;
	EVP_MD_CTX_free(mc);
	EVP_PKEY_CTX_free(c);
	return ok;
}

/*
 * A key's first signatures, from every thread at once: each may build the
 * key's verification tables, one is kept, and every signature is checked
 * and verifies with OpenSSL against the key's public key.
 */
static void *
first_use_run(void *arg)
{
	struct worker *w = arg;
	EVP_PKEY *pk = spki_pkey(w->key);
	uint8_t digest[32], sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	size_t siglen;

	for (int i = 0; i < 8; i++) {
		memset(digest, 0x40 + i, sizeof(digest));
		if (hsm_sign(w->fx->h, w->key, digest, sizeof(digest), sig,
			sizeof(sig), &siglen, err, sizeof(err)) != KT_OK ||
		    !openssl_ok(pk, digest, sig, siglen))
			w->failures++;
	}
	EVP_PKEY_free(pk);
	return NULL;
}

static void
test_hsm_fast_check_first_use_concurrent(void **state)
{
	struct fixture *fx = *state;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char err[HSM_ERR_SIZE];

	/* Fresh handles of the Ed25519 and P-256 keys: no tables yet. */
	for (size_t a = 0; a < 2; a++) {
		struct hsm_key *k = NULL;

		assert_int_equal(
		    hsm_find(fx->h, algs[a].label, &k, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(hsm_key_alg(k), algs[a].alg);
		for (int i = 0; i < THREADS; i++) {
			w[i] = (struct worker){ fx, k, 0 };
			assert_int_equal(
			    pthread_create(&t[i], NULL, first_use_run, &w[i]),
			    0);
		}
		for (int i = 0; i < THREADS; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			assert_int_equal(w[i].failures, 0);
		}
		hsm_key_free(k);
	}
}

/* Signs a fixed digest with k; returns hsm_sign()'s result. */
static int
sign_once(struct hsm *h, struct hsm_key *k)
{
	uint8_t digest[32] = { 9 }, sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	size_t siglen;

	return hsm_sign(h, k, digest, sizeof(digest), sig, sizeof(sig), &siglen,
	    err, sizeof(err));
}

/*
 * Session copies (hsm_config.session_copies): every key signs through a
 * copy made inside the token, which keeps the secret unreadable, is never
 * taken for a second key of the same label, and goes with the key.
 */
static void
test_hsm_session_copies(void **state)
{
	struct fixture *fx = *state;
	char err[HSM_ERR_SIZE];
	struct hsm_stats before, after;
	struct hsm_key *k = NULL, *again = NULL;

	/* Every key looks its handle up again, and copies it. */
	hsm_bench_set_copies(fx->h, 1);
	hsm_stats(fx->h, &before);
	for (size_t i = 0; i < NALGS; i++) {
		int readable = -1;

		assert_int_equal(sign_once(fx->h, fx->keys[i]), KT_OK);
		/* Asked of the handle signing uses: the copy. */
		assert_int_equal(hsm_test_secret_readable(fx->h, fx->keys[i],
				     &readable, err, sizeof(err)),
		    KT_OK);
		assert_int_equal(readable, 0);
		/* The copy is not a second key of that label. */
		assert_int_equal(
		    hsm_find(fx->h, algs[i].label, &k, err, sizeof(err)),
		    KT_OK);
		assert_string_equal(hsm_key_id(k), hsm_key_id(fx->keys[i]));
		assert_int_equal(sign_once(fx->h, k), KT_OK);
		hsm_key_free(k);
		k = NULL;
	}
	hsm_stats(fx->h, &after);
	assert_true(after.copies >= before.copies + NALGS);
	assert_int_equal(after.copies_refused, 0);
	assert_int_equal(after.sign_failures, before.sign_failures);

	/* Off: the token objects sign, no copy is made. */
	hsm_bench_set_copies(fx->h, 0);
	hsm_stats(fx->h, &before);
	for (size_t i = 0; i < NALGS; i++)
		assert_int_equal(sign_once(fx->h, fx->keys[i]), KT_OK);
	hsm_stats(fx->h, &after);
	assert_int_equal(after.copies, before.copies);
	hsm_bench_set_copies(fx->h, 1);

	/* A destroyed key signs no more, through no copy either. */
	assert_int_equal(hsm_generate(fx->h, HSM_ECDSA_P256, "key-copied", &k,
			     err, sizeof(err)),
	    KT_OK);
	assert_int_equal(
	    hsm_find(fx->h, "key-copied", &again, err, sizeof(err)), KT_OK);
	assert_int_equal(sign_once(fx->h, k), KT_OK);
	assert_int_equal(sign_once(fx->h, again), KT_OK);
	assert_int_equal(hsm_destroy(fx->h, k, err, sizeof(err)), KT_OK);
	assert_int_not_equal(sign_once(fx->h, k), KT_OK);
	assert_int_not_equal(sign_once(fx->h, again), KT_OK);
	hsm_key_free(again);
	again = NULL;
	assert_int_equal(
	    hsm_find(fx->h, "key-copied", &again, err, sizeof(err)),
	    KT_ENOTFOUND);
	hsm_key_free(k);
}

static void
test_hsm_sign_reconnects(void **state)
{
	struct fixture *fx = *state;
	uint8_t digest[32] = { 7 }, sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	struct hsm_stats before, after;
	struct hsm_key *k = NULL;
	size_t siglen;

	hsm_stats(fx->h, &before);
	assert_int_equal(
	    hsm_test_drop_sessions(fx->h, err, sizeof(err)), KT_OK);
	for (size_t i = 0; i < NALGS; i++)
		assert_int_equal(
		    hsm_sign(fx->h, fx->keys[i], digest, sizeof(digest), sig,
			sizeof(sig), &siglen, err, sizeof(err)),
		    KT_OK);
	hsm_stats(fx->h, &after);
	assert_int_equal(after.reconnects, before.reconnects + 1);

	/* Lookups recover too. */
	assert_int_equal(
	    hsm_test_drop_sessions(fx->h, err, sizeof(err)), KT_OK);
	assert_int_equal(
	    hsm_find(fx->h, algs[1].label, &k, err, sizeof(err)), KT_OK);
	hsm_key_free(k);
	hsm_stats(fx->h, &after);
	assert_int_equal(after.reconnects, before.reconnects + 2);
}

static void
test_hsm_two_tokens_share_module(void **state)
{
	struct fixture *fx = *state;
	uint8_t msg[] = "checkpoint text\n", sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE];
	struct hsm_config cfg = config(fx, LOG_TOKEN, fx->pin);
	struct hsm *log = NULL;
	struct hsm_key *k = NULL, *other = NULL;
	size_t siglen;

	assert_int_equal(hsm_open(&cfg, &log, err, sizeof(err)), KT_OK);
	/* Tokens are separate: the signing token's keys are not here. */
	assert_int_equal(hsm_find(log, algs[1].label, &other, err, sizeof(err)),
	    KT_ENOTFOUND);
	assert_int_equal(
	    hsm_generate(log, HSM_ED25519, "log", &k, err, sizeof(err)), KT_OK);
	assert_int_equal(hsm_sign(log, k, msg, sizeof(msg) - 1, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_OK);
	/* A key belongs to the handle that found it. */
	assert_int_equal(hsm_sign(fx->h, k, msg, sizeof(msg) - 1, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_EINVAL);
	hsm_key_free(k);
	hsm_close(log);

	/* Closing one handle leaves the module to the other. */
	assert_int_equal(hsm_sign(fx->h, fx->keys[0], msg, sizeof(msg) - 1, sig,
			     sizeof(sig), &siglen, err, sizeof(err)),
	    KT_OK);
}

static void
test_hsm_reopen_finds_persistent_keys(void **state)
{
	struct fixture *fx = *state;
	struct hsm_config cfg = config(fx, SIGN_TOKEN, fx->pin);
	uint8_t digest[32] = { 1, 2, 3 }, sig[HSM_SIG_MAX];
	char err[HSM_ERR_SIZE], ids[NALGS][HSM_KEY_ID_LEN + 1];
	size_t siglen;

	for (size_t i = 0; i < NALGS; i++) {
		(void)snprintf(
		    ids[i], sizeof(ids[i]), "%s", hsm_key_id(fx->keys[i]));
		hsm_key_free(fx->keys[i]);
		fx->keys[i] = NULL;
	}
	/* The last handle finalises the module... */
	hsm_close(fx->h);
	fx->h = NULL;
	/* ...which leaves the process's own OpenSSL working. */
	assert_int_equal(
	    EVP_Digest("x", 1, digest, NULL, EVP_sha256(), NULL), 1);

	assert_int_equal(hsm_open(&cfg, &fx->h, err, sizeof(err)), KT_OK);
	for (size_t i = 0; i < NALGS; i++) {
		assert_int_equal(hsm_find(fx->h, algs[i].label, &fx->keys[i],
				     err, sizeof(err)),
		    KT_OK);
		assert_string_equal(hsm_key_id(fx->keys[i]), ids[i]);
		assert_int_equal(
		    hsm_sign(fx->h, fx->keys[i], digest, sizeof(digest), sig,
			sizeof(sig), &siglen, err, sizeof(err)),
		    KT_OK);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsm_softhsm_setup_files),
		cmocka_unit_test(test_hsm_softhsm_setup_refuses_second_run),
		cmocka_unit_test(test_hsm_open_refuses_loose_pin_file),
		cmocka_unit_test(test_hsm_open_wrong_pin),
		cmocka_unit_test(test_hsm_open_refuses_bad_config),
		cmocka_unit_test(test_hsm_alg_names),
		cmocka_unit_test(test_hsm_generate_key_properties),
		cmocka_unit_test(test_hsm_sign_verifies),
		cmocka_unit_test(test_hsm_sign_ed25519_message),
		cmocka_unit_test(test_hsm_sign_rejects_bad_arguments),
		cmocka_unit_test(test_hsm_find_matches_generated),
		cmocka_unit_test(test_hsm_find_and_generate_errors),
		cmocka_unit_test(test_hsm_find_refuses_unsafe_key),
		cmocka_unit_test(test_hsm_secret_unreadable),
		cmocka_unit_test(test_hsm_sign_refuses_unverifiable),
		cmocka_unit_test(test_hsm_sign_concurrent),
		cmocka_unit_test(test_hsm_fast_check_first_use_concurrent),
		cmocka_unit_test(test_hsm_session_copies),
		cmocka_unit_test(test_hsm_sign_reconnects),
		cmocka_unit_test(test_hsm_two_tokens_share_module),
		cmocka_unit_test(test_hsm_reopen_finds_persistent_keys),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
