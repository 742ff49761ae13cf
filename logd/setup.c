/*
 * Development setup.  Secrets (the token PIN, bearer tokens) are created
 * with RAND_bytes, written once to 0600 files created with O_EXCL, wiped
 * from memory, and never printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "hsm.h"
#include "conf.h"
#include "keytrail/encoding.h"
#include "setup.h"

#define SETUP_LOG_TOKEN "keytrail-log"
#define SETUP_KEYS_TOKEN "keytrail-keys"

static void setup_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
setup_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
setup_needed(const char *dir, char *err, size_t errlen)
{
	char path[CONF_PATH_MAX];
	struct dirent *de;
	DIR *d;
	int empty = 1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, CONF_FILE) >=
	    (int)sizeof(path)) {
		setup_err(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (access(path, F_OK) == 0)
		return 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 1;
		setup_err(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			empty = 0;
	}
	closedir(d);
	if (!empty) {
		setup_err(err, errlen,
		    "%s: not empty and has no %s; refusing to set up a log "
		    "there (use an empty directory, or --config)",
		    dir, CONF_FILE);
		return -1;
	}
	return 1;
}

/* mkdir -p dir, the last component 0700. */
static int
setup_mkdirs(const char *dir)
{
	char p[CONF_PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *s = p + 1; *s != 0; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Writes len bytes to a new file with mode (O_EXCL: never overwrite). */
static int
setup_write(const char *path, const void *p, size_t len, mode_t mode, char *err,
    size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0) {
		setup_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = write(fd, p, len);
	if (n < 0 || (size_t)n != len || fsync(fd) != 0) {
		setup_err(err, errlen, "%s: write failed", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
setup_json(const char *path, json_t *j, mode_t mode, char *err, size_t errlen)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (s == NULL) {
		setup_err(err, errlen, "out of memory");
		return -1;
	}
	rc = setup_write(path, s, strlen(s), mode, err, errlen);
	free(s);
	return rc;
}

/*
 * Creates a bearer token for principal: 32 random bytes as "kt_" + hex,
 * written alone to tokens/<name> (0600).  Stores its SHA-256 in hash.
 */
static int
setup_token(
    const char *dir, const char *name, char hash[65], char *err, size_t errlen)
{
	uint8_t raw[32];
	char tok[3 + 64 + 2], path[CONF_PATH_MAX];
	struct kt_hash h;
	int rc = -1;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		setup_err(err, errlen, "no randomness for tokens");
		return -1;
	}
	memcpy(tok, "kt_", 3);
	kt_hex_encode(raw, sizeof(raw), tok + 3);
	SHA256((const uint8_t *)tok, 67, h.b);
	kt_hex_encode(h.b, 32, hash);
	tok[67] = '\n';
	if (snprintf(path, sizeof(path), "%s/tokens/%s", dir, name) <
	    (int)sizeof(path))
		rc = setup_write(path, tok, 68, 0600, err, errlen);
	kt_wipe(raw, sizeof(raw));
	kt_wipe(tok, sizeof(tok));
	return rc;
}

int
setup_dev(const char *dir, const char *listen, const char *module, char *err,
    size_t errlen)
{
	static const struct {
		const char *name;
		const char *roles[3];
	} principals[] = {
		{ "admin", { "admin", NULL, NULL } },
		{ "ci", { "requester", "submitter", NULL } },
		{ "alice", { "approver", NULL, NULL } },
		{ "bob", { "approver", NULL, NULL } },
	};
	/*
	 * The log key has a token of its own, apart from the signing keys
	 * (DESIGN.md section 4), so the two can live in different HSMs.
	 */
	const char *labels[] = { SETUP_LOG_TOKEN, SETUP_KEYS_TOKEN };
	static const char *const signing_keys[] = { "default", "release" };
	char path[CONF_PATH_MAX], hsmdir[CONF_PATH_MAX], pin[CONF_PATH_MAX];
	char shc[CONF_PATH_MAX], origin[64], hash[65];
	struct hsm_config hc;
	struct hsm *h = NULL;
	struct hsm_key *k = NULL;
	uint8_t rnd[4];
	json_t *ps = NULL, *cfg = NULL;
	int rc = -1;

	if (setup_mkdirs(dir) != 0) {
		setup_err(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (snprintf(hsmdir, sizeof(hsmdir), "%s/hsm", dir) >=
		(int)sizeof(hsmdir) ||
	    snprintf(pin, sizeof(pin), "%s/hsm/pin", dir) >= (int)sizeof(pin) ||
	    snprintf(shc, sizeof(shc), "%s/hsm/softhsm2.conf", dir) >=
		(int)sizeof(shc)) {
		setup_err(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (hsm_softhsm_setup(hsmdir, labels, 2, module, err, errlen) != KT_OK)
		return -1;
	memset(&hc, 0, sizeof(hc));
	hc.module = module;
	hc.token_label = SETUP_LOG_TOKEN;
	hc.pin_file = pin;
	hc.softhsm_conf = shc;
	hc.max_sessions = 2;
	if (hsm_open(&hc, &h, err, errlen) != KT_OK)
		return -1;
	if (hsm_generate(h, HSM_ED25519, "log", &k, err, errlen) != KT_OK)
		goto out;
	hsm_key_free(k);
	k = NULL;
	hsm_close(h);
	h = NULL;
	/* The development signing keys: ECDSA P-256, generated inside. */
	hc.token_label = SETUP_KEYS_TOKEN;
	if (hsm_open(&hc, &h, err, errlen) != KT_OK)
		goto out;
	for (size_t i = 0; i < 2; i++) {
		if (hsm_generate(h, HSM_ECDSA_P256, signing_keys[i], &k, err,
			errlen) != KT_OK)
			goto out;
		hsm_key_free(k);
		k = NULL;
	}

	if (snprintf(path, sizeof(path), "%s/tokens", dir) >=
		(int)sizeof(path) ||
	    (mkdir(path, 0700) != 0 && errno != EEXIST)) {
		setup_err(err, errlen, "%s: cannot create", path);
		goto out;
	}
	ps = json_object();
	for (size_t i = 0; i < sizeof(principals) / sizeof(principals[0]);
	     i++) {
		json_t *roles = json_array();

		if (setup_token(dir, principals[i].name, hash, err, errlen) !=
		    0)
			goto out;
		for (size_t r = 0; r < 3 && principals[i].roles[r]; r++)
			json_array_append_new(
			    roles, json_string(principals[i].roles[r]));
		json_object_set_new(ps, principals[i].name,
		    json_pack(
			"{s:s, s:o}", "token_sha256", hash, "roles", roles));
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CONF_POLICY_FILE);
	{
		/*
		 * The development policy: ci signs with "default" freely and
		 * with "release" once alice or bob approved (docs/policy.md).
		 */
		json_t *doc = json_pack("{s:O, s:{s:{s:[s], s:[s]}, "
					"s:{s:[s], s:[s], s:{s:i, s:[s, s]}}}, "
					"s:{s:i}}",
		    "principals", ps, "keys", "default", "requesters", "ci",
		    "artifacts", "*", "release", "requesters", "ci",
		    "artifacts", "*", "approvals", "required", 1, "from",
		    "alice", "bob", "requests", "expire_seconds", 86400);

		rc = setup_json(path, doc, 0600, err, errlen);
		json_decref(doc);
		if (rc != 0)
			goto out;
		rc = -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	snprintf(origin, sizeof(origin),
	    "keytrail.localhost/log-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
	    rnd[3]);
	cfg = json_pack("{s:s, s:s, s:I, s:{s:s, s:s, s:s, s:s, s:s, s:s}, "
			"s:{s:i, s:i}, s:{s:i, s:i, s:i, s:i}, s:s}",
	    "origin", origin, "listen", listen, "map_size_mib",
	    (json_int_t)4096, "hsm", "module", module, "softhsm_conf",
	    "hsm/softhsm2.conf", "token", SETUP_LOG_TOKEN, "pin_file",
	    "hsm/pin", "log_key", "log", "keys_token", SETUP_KEYS_TOKEN,
	    "batch", "max_entries", 1024, "interval_us", 2000, "limits",
	    "max_body", 65536, "max_headers", 8192, "max_connections", 1024,
	    "timeout_s", 30, "policy_file", CONF_POLICY_FILE);
	snprintf(path, sizeof(path), "%s/%s", dir, CONF_FILE);
	/* The config is written last: its presence means setup finished. */
	if (cfg == NULL || setup_json(path, cfg, 0600, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	json_decref(ps);
	json_decref(cfg);
	hsm_key_free(k);
	hsm_close(h);
	return rc;
}
