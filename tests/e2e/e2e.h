/*
 * End-to-end test harness: starts the real keytrail-logd on 127.0.0.1
 * with a data directory (and so a real SoftHSM token) in a temp dir, and
 * talks HTTP to it with libevent's client.  Every network call is bounded
 * by a timeout and goes only to the loopback address.
 */
#ifndef KT_E2E_H
#define KT_E2E_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>

#include "keytrail/checkpoint.h"
#include "keytrail/common.h"
#include "keytrail/note.h"

struct e2e {
	char dir[256];	/* temp dir holding data/ and logd.log */
	char data[300]; /* the daemon's --data */
	uint16_t port;
	pid_t pid;
	struct event_base *base;
	struct evhttp_connection *conn;
};

struct e2e_resp {
	int status;
	struct kt_buf body;
	char ctype[128];
	char cache[128];
	char encoding[64];
	char retry_after[32];
};

/* Creates the temp dir (does not start the daemon). */
void e2e_init(struct e2e *e);
/* Starts the daemon on a fresh port and waits until /healthz answers. */
void e2e_start(struct e2e *e);
/* Stops it with sig (SIGTERM: checks a clean exit; SIGKILL: a crash). */
void e2e_stop(struct e2e *e, int sig);
/* Stops the daemon if running and removes the temp dir. */
void e2e_cleanup(struct e2e *e);

/* Reads DIR/data/tokens/<name> (without the newline). */
void e2e_token(const struct e2e *e, const char *name, char *out, size_t outlen);

/*
 * One request over the harness's keep-alive connection.  token may be
 * NULL (no Authorization header), body NULL for none.  Fails the test on
 * a transport error or timeout.  resp->body must be freed by the caller
 * (e2e_resp_free).
 */
void e2e_http(struct e2e *e, const char *method, const char *path,
    const char *token, const char *body, size_t bodylen, struct e2e_resp *resp);
/* Same with extra raw headers ("Name: value" lines, NULL-terminated). */
void e2e_http_h(struct e2e *e, const char *method, const char *path,
    const char *const *headers, const char *body, size_t bodylen,
    struct e2e_resp *resp);
void e2e_resp_free(struct e2e_resp *resp);
/* The body parsed as JSON (fails the test if it is not). */
json_t *e2e_json(const struct e2e_resp *resp);

/* One request of a concurrent run. */
struct e2e_call {
	const char *path;
	const char *token;
	char *body;
	size_t bodylen;
	struct e2e_resp resp; /* filled; status 0 if the connection failed */
};

/*
 * POSTs calls[0..n) over nconn parallel connections, as fast as the
 * daemon answers.  Fails the test on timeout.
 */
void e2e_post_many(
    struct e2e *e, struct e2e_call *calls, size_t n, size_t nconn);

/*
 * The log's trust as a client pins it on first use: the verifier key and
 * origin from GET /v1/log, ready for kt_checkpoint_open and
 * kt_tlogproof_verify (t points into the struct: do not copy it).
 */
struct e2e_trust {
	struct kt_note_vkey vkey;
	char origin[256];
	struct kt_checkpoint_trust t;
};
void e2e_trust_get(struct e2e *e, struct e2e_trust *tr);

/* Reads a file whole (at most 1 MiB), NUL-terminated; caller frees. */
uint8_t *e2e_file_read(const char *path, size_t *len);
/* Writes a file (mode 0600), renamed into place so no reader sees half. */
void e2e_file_write(const char *path, const void *p, size_t len);
/*
 * Sets field (in section, or at the top when NULL) of the daemon's config
 * file to v (reference stolen); the daemon sees it at its next start or
 * SIGHUP.
 */
void e2e_conf_set(
    struct e2e *e, const char *section, const char *field, json_t *v);
/* Lowercase hex SHA-256 of p[0..len). */
void e2e_sha256_hex(const void *p, size_t len, char out[65]);
/* A JSON object's string field; fails the test when absent. */
const char *e2e_jstr(const json_t *j, const char *key);

/* Runs a shell-free command (argv) and returns its exit status. */
int e2e_run(char *const argv[]);

#endif
