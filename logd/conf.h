/*
 * keytrail-logd configuration: the config file (JSON, DIR/keytrail.json
 * unless --config names another).  Who may do what is not here but in the
 * policy file it names (signer/policy.h), which reloads on SIGHUP.
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

struct conf {
	char data_dir[CONF_PATH_MAX];
	char origin[CONF_ORIGIN_MAX + 1];
	char listen_host[256];
	uint16_t listen_port;
	uint64_t map_size;
	/* Entries whose index rows wait in memory (store_set_ixbuf_entries). */
	uint64_t ixbuf_entries;

	/* HSM holding the log's checkpoint key. */
	char hsm_module[CONF_PATH_MAX];
	char hsm_softhsm_conf[CONF_PATH_MAX]; /* "" = leave SOFTHSM2_CONF */
	char hsm_token[CONF_NAME_MAX + 1];
	char hsm_pin_file[CONF_PATH_MAX];
	char log_key_label[CONF_NAME_MAX + 1];
	/* Token holding the signing keys ("" = no signing, log only). */
	char hsm_keys_token[CONF_NAME_MAX + 1];
	/* Sign with session copies of the keys (struct hsm_config). */
	int hsm_session_copies;

	/* Sequencer batching. */
	unsigned batch_max;
	unsigned batch_interval_us;

	/* HTTP limits. */
	size_t max_body;
	size_t max_headers;
	unsigned max_connections;
	unsigned timeout_s;

	char policy_file[CONF_PATH_MAX];
};

/* Default config file name inside the data directory. */
#define CONF_FILE "keytrail.json"
/* Default policy file name inside the data directory. */
#define CONF_POLICY_FILE "policy.json"

/*
 * Loads the configuration: the file at path (or DIR/keytrail.json when
 * path is NULL), with data_dir as the base of relative paths.  On error writes
 * one readable line (naming the offending field, e.g. "hsm.module: must be a
 * string") to err and returns KT_EPARSE / KT_ENOTFOUND / KT_EIO; *out is then
 * untouched.
 */
int conf_load(const char *data_dir, const char *path, struct conf *out,
    char *err, size_t errlen) KT_MUST_CHECK;

/* Parses "host:port" (port 1..65535).  KT_EPARSE on anything else. */
int conf_parse_listen(
    const char *s, char *host, size_t hostlen, uint16_t *port) KT_MUST_CHECK;

/* Makes path absolute against base when it is relative. */
int conf_resolve(
    const char *base, const char *path, char *out, size_t outlen) KT_MUST_CHECK;

#endif
