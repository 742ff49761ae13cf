/*
 * keytrail-logd configuration: the config file (JSON, DIR/keytrail.json
 * unless --config names another) and the principals file it points to.
 * Relative paths in the file are relative to the data directory.  The
 * format is documented in docs/operations.md.
 */
#ifndef LOGD_CONF_H
#define LOGD_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

#define CONF_PATH_MAX 1024
#define CONF_ORIGIN_MAX 255
#define CONF_NAME_MAX 64
#define CONF_PRINCIPALS_MAX 256

/* Roles a principal can hold (DESIGN.md section 7). */
enum {
	ROLE_REQUESTER = 1 << 0,
	ROLE_APPROVER = 1 << 1,
	ROLE_SUBMITTER = 1 << 2,
	ROLE_ADMIN = 1 << 3
};

struct principal {
	char name[CONF_NAME_MAX + 1];
	struct kt_hash token_sha256; /* SHA-256 of the bearer token */
	unsigned roles;
};

struct conf {
	char data_dir[CONF_PATH_MAX];
	char origin[CONF_ORIGIN_MAX + 1];
	char listen_host[256];
	uint16_t listen_port;
	uint64_t map_size;

	/* HSM holding the log's checkpoint key. */
	char hsm_module[CONF_PATH_MAX];
	char hsm_softhsm_conf[CONF_PATH_MAX]; /* "" = leave SOFTHSM2_CONF */
	char hsm_token[CONF_NAME_MAX + 1];
	char hsm_pin_file[CONF_PATH_MAX];
	char log_key_label[CONF_NAME_MAX + 1];
	/* Token holding the signing keys ("" = no signing, log only). */
	char hsm_keys_token[CONF_NAME_MAX + 1];

	/* Sequencer batching. */
	unsigned batch_max;
	unsigned batch_interval_us;

	/* HTTP limits. */
	size_t max_body;
	size_t max_headers;
	unsigned max_connections;
	unsigned timeout_s;

	char principals_file[CONF_PATH_MAX];
	char principals_sha256[65]; /* hex SHA-256 of the file's bytes */
	struct principal principals[CONF_PRINCIPALS_MAX];
	size_t nprincipals;
};

/* Default config file name inside the data directory. */
#define CONF_FILE "keytrail.json"
/* Default principals file name inside the data directory. */
#define CONF_PRINCIPALS_FILE "principals.json"

/*
 * Loads the configuration: the file at path (or DIR/keytrail.json when
 * path is NULL) and the principals file it names, with data_dir as the
 * base of relative paths.  On error writes one readable line (naming the
 * offending field, e.g. "hsm.module: must be a string") to err and
 * returns KT_EPARSE / KT_ENOTFOUND / KT_EIO; *out is then untouched.
 */
int conf_load(const char *data_dir, const char *path, struct conf *out,
    char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Re-reads only the principals file of c into a fresh table (for
 * SIGHUP).  On error c is unchanged.
 */
int conf_reload_principals(
    struct conf *c, char *err, size_t errlen) KT_MUST_CHECK;

/*
 * Finds the principal whose token hashes to SHA-256(token): every entry is
 * compared, in constant time, whatever matches.  Returns it or NULL.
 */
const struct principal *conf_authenticate(
    const struct conf *c, const uint8_t *token, size_t len);

/* Parses "host:port" (port 1..65535).  KT_EPARSE on anything else. */
int conf_parse_listen(
    const char *s, char *host, size_t hostlen, uint16_t *port) KT_MUST_CHECK;

/* Makes path absolute against base when it is relative. */
int conf_resolve(
    const char *base, const char *path, char *out, size_t outlen) KT_MUST_CHECK;

#endif
