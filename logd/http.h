/*
 * The HTTP server (libevent evhttp): the only file that includes
 * event2/http.h.  It sets every limit itself, routes every request through
 * one table, and replies through one set of helpers, so each request gets
 * exactly one reply with the right status and content type.
 */
#ifndef LOGD_HTTP_H
#define LOGD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "keytrail/common.h"

struct event_base;
struct http;
struct http_req;

enum http_method {
	HTTP_GET = 1,
	HTTP_HEAD = 2,
	HTTP_POST = 4
};

typedef void (*http_handler_fn)(struct http_req *r, void *arg);

/*
 * A route: requests whose path equals path (exact) or starts with it
 * (prefix) go to fn, if their method is in methods; otherwise 405.
 */
struct http_route {
	const char *path;
	int prefix;
	unsigned methods;
	http_handler_fn fn;
};

struct http_limits {
	size_t max_body;
	size_t max_headers;
	unsigned max_connections;
	unsigned timeout_s;
};

/*
 * Creates a server on base that serves routes (the array must outlive the
 * server; arg is passed to every handler), and binds host:port.  Returns
 * KT_OK or KT_EIO with a reason in err.
 */
int http_new(struct event_base *base, const struct http_limits *lim,
    const struct http_route *routes, size_t nroutes, void *arg,
    const char *host, uint16_t port, struct http **out, char *err,
    size_t errlen) KT_MUST_CHECK;
/*
 * Takes new body, header and timeout limits (max_connections is sized at
 * start and ignored here).  The body limit holds at once for every
 * request; libevent's header limit and timeouts apply to connections
 * accepted from now on.
 */
void http_set_limits(struct http *h, const struct http_limits *lim);
/* Stops accepting connections (for shutdown); pending replies go out. */
void http_stop_accepting(struct http *h);
void http_free(struct http *h);

/* Adds a header to the reply to come. */
void http_add_header(struct http_req *r, const char *name, const char *value);

/* Request accessors, valid until the reply. */
enum http_method http_req_method(const struct http_req *r);
/* The path without the query, percent-decoding refused (raw bytes). */
const char *http_req_path(const struct http_req *r);
/* The value of query parameter name, or NULL (also when repeated). */
const char *http_req_query(const struct http_req *r, const char *name);
/* 1 when the query has any parameter not in allowed (NULL-terminated). */
int http_req_query_unknown(
    const struct http_req *r, const char *const *allowed);
/* A request header, or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
/* The body (bounded by max_body; NUL-terminated copy owned by r). */
struct kt_bytes http_req_body(struct http_req *r);
/* The peer's address, for logs. */
const char *http_req_peer(const struct http_req *r);

/* Replies (each request exactly once). */
void http_reply_bytes(struct http_req *r, int status, const char *ctype,
    const char *cache, const uint8_t *p, size_t len);
struct blob;
/*
 * Replies with the bytes of b without copying them, taking over the
 * caller's reference.  encoding, if not NULL, is the Content-Encoding
 * ("" for identity) of a response that varies with Accept-Encoding.
 */
void http_reply_blob(struct http_req *r, int status, const char *ctype,
    const char *cache, const char *encoding, struct blob *b);
/* 1 when the request accepts a gzip-encoded answer. */
int http_req_accepts_gzip(const struct http_req *r);
/* Appends the gzip (RFC 1952) compression of p[0..len) to out. */
int http_gzip(const uint8_t *p, size_t len, struct kt_buf *out) KT_MUST_CHECK;
/* Replies with JSON (steals the reference to j). */
void http_reply_json(struct http_req *r, int status, json_t *j);
/*
 * A JSON object written directly, for the replies on the write paths
 * (thousands a second), without building a jansson tree.  Members come
 * in the order added; callers add them in sorted order, as the jansson
 * replies (JSON_SORT_KEYS) have them.  Strings must be UTF-8; quotes,
 * backslashes and control characters are escaped.
 */
struct http_jw {
	struct kt_buf b;
	int rc;
	int n;
};
void http_jw_init(struct http_jw *w, size_t cap);
void http_jw_str(struct http_jw *w, const char *key, const char *s, size_t len);
void http_jw_u64(struct http_jw *w, const char *key, uint64_t v);
/* Adds a value that is already JSON text (such as "true" or "[]"). */
void http_jw_raw(struct http_jw *w, const char *key, const char *json);
/* Replies with the object (500 if writing it failed) and frees w. */
void http_reply_jw(struct http_req *r, int status, struct http_jw *w);

/* Replies {"error": error, "detail": detail} with status. */
void http_reply_error(
    struct http_req *r, int status, const char *error, const char *detail);
/* The HTTP status for a KT_E* code (the one mapping table). */
int http_status_for(int kt_err);

/* Per-status reply counters for /metrics. */
struct http_stats {
	uint64_t by_status[600];
	uint64_t requests;
};
void http_get_stats(const struct http *h, struct http_stats *out);

#endif
