/*
 * The CLI's HTTP client: one keep-alive connection for sequential
 * requests (libevent's evhttp client), and the load generator of
 * `keytrail bench`, which keeps many requests in flight over several
 * connections with plain sockets.  Every request is bounded by a timeout.
 * URLs are http://host:port only.
 */
#ifndef KT_HTTPC_H
#define KT_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "keytrail/common.h"

struct httpc;

struct httpc_resp {
	int status; /* 0: the connection failed */
	struct kt_buf body;
	double seconds; /* request sent to answer received */
};

/* Parses "http://host[:port][/prefix]" and prepares a client. */
int httpc_new(const char *url, unsigned timeout_s, struct httpc **out,
    char *err, size_t errlen);
void httpc_free(struct httpc *c);
/* The path prefix of the URL ("" or "/something"), to put before paths. */
const char *httpc_prefix(const struct httpc *c);

/*
 * One request; body may be NULL.  token, if not NULL, is sent as a bearer
 * token.  Returns KT_OK with *resp filled (free with httpc_resp_free), or
 * KT_EIO if the connection failed.
 */
int httpc_do(struct httpc *c, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t len,
    struct httpc_resp *resp);
void httpc_resp_free(struct httpc_resp *r);

/* One POST of a concurrent run. */
struct httpc_call {
	const char *path;
	const uint8_t *body;
	size_t len;
	struct httpc_resp resp;
};

/*
 * POSTs calls[0..n) with token over nconn connections, keeping each busy,
 * and fills every call's resp (with its latency).  Answers must carry a
 * Content-Length, as keytrail-logd's do; a call without a complete answer
 * within the timeout, or on a connection that failed, gets status 0.
 */
void httpc_post_many(struct httpc *c, const char *token,
    struct httpc_call *calls, size_t n, size_t nconn);

#endif
