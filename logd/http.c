/*
 * evhttp with every default replaced: header and body limits, timeouts,
 * only GET/HEAD/POST, a connection cap, JSON errors instead of libevent's
 * HTML pages, and one catch-all callback with keytrail's own route table
 * (evhttp_set_cb matches whole paths only; tiles are prefixes).
 */
/* memfd_create(2) */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <zlib.h>

#include "http.h"
#include "keytrail/encoding.h"
#include "tilecache.h"
#include "log.h"

/* Bodies above this are cut off by libevent itself (see http_new). */
#define HTTP_BODY_HARD_MAX (4 * 1024 * 1024)

/* Most bytes one socket write or read may move. */
#define HTTP_SINGLE_WRITE_MAX (1024 * 1024)

/* Longest request URI accepted (paths and queries are short here). */
#define HTTP_URI_MAX 2048

struct http {
	struct evhttp *ev;
	struct evhttp_bound_socket *sock;
	const struct http_route *routes;
	size_t nroutes;
	void *arg;
	struct http_limits lim;
	struct http_stats stats;
	/* Open connections (open addressing over evcon pointers). */
	void **conns;
	size_t nconns_slots;
	unsigned nconns;
};

struct http_req {
	struct http *h;
	struct evhttp_request *ev;
	struct evhttp_uri *uri;
	struct evkeyvalq query;
	int query_ok;
	char *path;
	uint8_t *body;
	size_t bodylen;
	char peer[64];
};

int
http_status_for(int kt_err)
{
	switch (kt_err) {
	case KT_OK:
		return 200;
	case KT_EPARSE:
	case KT_EINVAL:
		return 400;
	case KT_EAUTH:
		return 401;
	case KT_EPOLICY:
		return 403;
	case KT_ENOTFOUND:
		return 404;
	case KT_EEXIST:
		return 409;
	case KT_ETOOBIG:
		return 413;
	case KT_EVERIFY:
		return 422;
	case KT_EUNAVAIL:
	case KT_EIO:
		return 503;
	default:
		return 500;
	}
}

static const char *
http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status < 500 ? "Client Error" : "Internal Server Error";
	}
}

/* Pointer-set helpers for the connection table. */
static size_t
conn_slot(const struct http *h, const void *p)
{
	uintptr_t v = (uintptr_t)p;

	v ^= v >> 17;
	v *= (uintptr_t)0x9e3779b97f4a7c15ull;
	return (size_t)(v % h->nconns_slots);
}

static int
conn_has(const struct http *h, const void *p)
{
	for (size_t i = conn_slot(h, p), k = 0; k < h->nconns_slots;
	     k++, i = (i + 1) % h->nconns_slots) {
		if (h->conns[i] == p)
			return 1;
		if (h->conns[i] == NULL)
			return 0;
	}
	return 0;
}

static void
conn_remove(struct http *h, const void *p)
{
	size_t i = conn_slot(h, p);

	for (size_t k = 0; k < h->nconns_slots;
	     k++, i = (i + 1) % h->nconns_slots) {
		if (h->conns[i] == NULL)
			return;
		if (h->conns[i] == p)
			break;
	}
	if (h->conns[i] != p)
		return;
	h->conns[i] = NULL;
	h->nconns--;
	/* Re-insert the rest of the cluster (linear probing delete). */
	for (size_t j = (i + 1) % h->nconns_slots; h->conns[j] != NULL;
	     j = (j + 1) % h->nconns_slots) {
		void *q = h->conns[j];
		size_t s;

		h->conns[j] = NULL;
		for (s = conn_slot(h, q); h->conns[s] != NULL;
		     s = (s + 1) % h->nconns_slots)
			;
		h->conns[s] = q;
	}
}

static void
conn_add(struct http *h, void *p)
{
	size_t i;

	for (i = conn_slot(h, p); h->conns[i] != NULL;
	     i = (i + 1) % h->nconns_slots)
		;
	h->conns[i] = p;
	h->nconns++;
}

static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	conn_remove(arg, evcon);
}

static void
http_req_free(struct http_req *r)
{
	if (r == NULL)
		return;
	if (r->query_ok)
		evhttp_clear_headers(&r->query);
	if (r->uri != NULL)
		evhttp_uri_free(r->uri);
	free(r->path);
	free(r->body);
	free(r);
}

static void
http_finish(struct http_req *r, int status, struct evbuffer *body)
{
	if (status >= 0 && status < 600)
		r->h->stats.by_status[status]++;
	evhttp_send_reply(r->ev, status, http_reason(status), body);
	http_req_free(r);
}

void
http_reply_bytes(struct http_req *r, int status, const char *ctype,
    const char *cache, const uint8_t *p, size_t len)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(oh, "Content-Type", ctype);
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	if (cache != NULL)
		evhttp_add_header(oh, "Cache-Control", cache);
	if (b == NULL || (len > 0 && evbuffer_add(b, p, len) != 0)) {
		if (b != NULL)
			evbuffer_free(b);
		evhttp_send_error(r->ev, 500, NULL);
		r->h->stats.by_status[500]++;
		http_req_free(r);
		return;
	}
	if (http_req_method(r) == HTTP_HEAD)
		evbuffer_drain(b, evbuffer_get_length(b));
	http_finish(r, status, b);
	evbuffer_free(b);
}

/* 1 when the Accept-Encoding header allows gzip (q=0 means no). */
static int
http_accepts_gzip(const struct http_req *r)
{
	const char *ae = http_req_header(r, "Accept-Encoding");
	const char *g;

	if (ae == NULL || (g = strstr(ae, "gzip")) == NULL)
		return 0;
	g += 4;
	while (*g == ' ')
		g++;
	if (strncmp(g, ";q=0", 4) == 0 &&
	    (g[4] == 0 || g[4] == ',' ||
		(g[4] == '.' && strspn(g + 5, "0") == strcspn(g + 5, ", "))))
		return 0;
	return 1;
}

int
http_gzip(const uint8_t *p, size_t len, struct kt_buf *out)
{
	z_stream z;
	uint8_t *dst;
	uLong cap;
	size_t start;
	int rc = KT_EINTERNAL;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper (RFC 1952). */
	if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
		Z_DEFAULT_STRATEGY) != Z_OK)
		return KT_ENOMEM;
	cap = deflateBound(&z, (uLong)len);
	start = out->len;
	if (kt_buf_extend(out, cap, &dst) != KT_OK) {
		deflateEnd(&z);
		return KT_ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)len;
	z.next_out = dst;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
		kt_buf_truncate(out, start + z.total_out);
		rc = KT_OK;
	} else {
		kt_buf_truncate(out, start);
	}
	deflateEnd(&z);
	return rc;
}

int
http_req_accepts_gzip(const struct http_req *r)
{
	return http_accepts_gzip(r);
}

/*
 * Large cached answers (entry bundles are ~128 KiB) go out with sendfile(2)
 * from an in-memory file: the kernel then moves pages instead of copying
 * every byte from user space, as a static web server does.
 */
#define HTTP_SENDFILE_MIN (16 * 1024)

static void
http_seg_free(void *seg)
{
	evbuffer_file_segment_free(seg);
}

/* The blob's in-memory file segment, made on first use; NULL if none. */
static struct evbuffer_file_segment *
http_blob_seg(struct blob *b)
{
	struct evbuffer_file_segment *seg;
	size_t off = 0;
	int fd;

	if (b->seg != NULL)
		return b->seg;
	if ((fd = memfd_create("keytrail-tile", MFD_CLOEXEC)) < 0)
		return NULL;
	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);

		if (n <= 0) {
			close(fd);
			return NULL;
		}
		off += (size_t)n;
	}
	seg = evbuffer_file_segment_new(
	    fd, 0, (ev_off_t)b->len, EVBUF_FS_CLOSE_ON_FREE);
	if (seg == NULL) {
		close(fd);
		return NULL;
	}
	b->seg = seg;
	b->seg_free = http_seg_free;
	return seg;
}

static void
http_blob_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	blob_release(arg);
}

void
http_reply_blob(struct http_req *r, int status, const char *ctype,
    const char *cache, const char *encoding, struct blob *b)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->ev);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(oh, "Content-Type", ctype);
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	if (cache != NULL)
		evhttp_add_header(oh, "Cache-Control", cache);
	if (encoding != NULL) {
		evhttp_add_header(oh, "Vary", "Accept-Encoding");
		if (encoding[0] != 0)
			evhttp_add_header(oh, "Content-Encoding", encoding);
	}
	if (buf == NULL) {
		blob_release(b);
		evhttp_send_error(r->ev, 500, NULL);
		r->h->stats.by_status[500]++;
		http_req_free(r);
		return;
	}
	/* No copy: the buffer keeps a reference until the bytes are sent. */
	if (http_req_method(r) == HTTP_HEAD || b->len == 0) {
		blob_release(b);
	} else if (b->len >= HTTP_SENDFILE_MIN && http_blob_seg(b) != NULL) {
		if (evbuffer_add_file_segment(
			buf, b->seg, 0, (ev_off_t)b->len) != 0)
			evbuffer_add(buf, b->data, b->len);
		blob_release(b);
	} else if (evbuffer_add_reference(
		       buf, b->data, b->len, http_blob_cleanup, b) != 0) {
		blob_release(b);
	}
	http_finish(r, status, buf);
	evbuffer_free(buf);
}

void
http_reply_json(struct http_req *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	if (s == NULL) {
		http_reply_bytes(r, 500, "application/json", "no-store",
		    (const uint8_t *)"{\"error\":\"internal\"}", 20);
		return;
	}
	http_reply_bytes(r, status, "application/json", "no-store",
	    (const uint8_t *)s, strlen(s));
	free(s);
}

void
http_jw_init(struct http_jw *w, size_t cap)
{
	kt_buf_init(&w->b, cap);
	w->n = 0;
	w->rc = kt_buf_append_byte(&w->b, '{');
}

/* Writes the separator and "key": of the next member. */
static int
http_jw_key(struct http_jw *w, const char *key)
{
	if (w->rc != KT_OK)
		return w->rc;
	if (w->n++ > 0 && (w->rc = kt_buf_append_byte(&w->b, ',')) != KT_OK)
		return w->rc;
	if ((w->rc = kt_json_quote(&w->b, key, strlen(key))) != KT_OK)
		return w->rc;
	return w->rc = kt_buf_append_byte(&w->b, ':');
}

void
http_jw_str(struct http_jw *w, const char *key, const char *s, size_t len)
{
	if (http_jw_key(w, key) == KT_OK)
		w->rc = kt_json_quote(&w->b, s, len);
}

void
http_jw_u64(struct http_jw *w, const char *key, uint64_t v)
{
	if (http_jw_key(w, key) == KT_OK)
		w->rc = kt_buf_append_u64(&w->b, v);
}

void
http_jw_raw(struct http_jw *w, const char *key, const char *json)
{
	if (http_jw_key(w, key) == KT_OK)
		w->rc = kt_buf_append_str(&w->b, json);
}

void
http_reply_jw(struct http_req *r, int status, struct http_jw *w)
{
	if (w->rc == KT_OK)
		w->rc = kt_buf_append_byte(&w->b, '}');
	if (w->rc != KT_OK)
		http_reply_bytes(r, 500, "application/json", "no-store",
		    (const uint8_t *)"{\"error\":\"internal\"}", 20);
	else
		http_reply_bytes(r, status, "application/json", "no-store",
		    w->b.p, w->b.len);
	kt_buf_free(&w->b);
}

void
http_reply_error(
    struct http_req *r, int status, const char *error, const char *detail)
{
	json_t *j = json_pack(
	    "{s:s, s:s}", "error", error, "detail", detail ? detail : "");

	http_reply_json(r, status, j);
}

void
http_add_header(struct http_req *r, const char *name, const char *value)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->ev), name, value);
}

enum http_method
http_req_method(const struct http_req *r)
{
	switch (evhttp_request_get_command(r->ev)) {
	case EVHTTP_REQ_GET:
		return HTTP_GET;
	case EVHTTP_REQ_HEAD:
		return HTTP_HEAD;
	case EVHTTP_REQ_POST:
		return HTTP_POST;
	default:
		return 0;
	}
}

const char *
http_req_path(const struct http_req *r)
{
	return r->path;
}

const char *
http_req_query(const struct http_req *r, const char *name)
{
	const struct evkeyval *kv;
	const char *found = NULL;

	if (!r->query_ok)
		return NULL;
	TAILQ_FOREACH(kv, &r->query, next)
	{
		if (strcmp(kv->key, name) == 0) {
			if (found != NULL)
				return NULL;
			found = kv->value;
		}
	}
	return found;
}

int
http_req_query_unknown(const struct http_req *r, const char *const *allowed)
{
	const struct evkeyval *kv;

	if (!r->query_ok)
		return 0;
	TAILQ_FOREACH(kv, &r->query, next)
	{
		int ok = 0;

		for (size_t i = 0; allowed[i] != NULL; i++)
			ok |= strcmp(kv->key, allowed[i]) == 0;
		if (!ok)
			return 1;
	}
	return 0;
}

const char *
http_req_header(const struct http_req *r, const char *name)
{
	return evhttp_find_header(
	    evhttp_request_get_input_headers(r->ev), name);
}

struct kt_bytes
http_req_body(struct http_req *r)
{
	struct kt_bytes b = { r->body, r->bodylen };

	return b;
}

const char *
http_req_peer(const struct http_req *r)
{
	return r->peer;
}

/* The one callback: limits, parsing, routing. */
static void
http_gencb(struct evhttp_request *ev, void *arg)
{
	struct http *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct http_req *r;
	const char *uri = evhttp_request_get_uri(ev);
	const char *path, *q;
	struct evbuffer *in;
	size_t i;

	h->stats.requests++;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(ev, 500, NULL);
		return;
	}
	r->h = h;
	r->ev = ev;
	if (evcon != NULL) {
		char *addr = NULL;
		ev_uint16_t port = 0;

		evhttp_connection_get_peer(evcon, &addr, &port);
		snprintf(
		    r->peer, sizeof(r->peer), "%s:%u", addr ? addr : "?", port);
		if (!conn_has(h, evcon)) {
			if (h->nconns >= h->lim.max_connections) {
				evhttp_add_header(
				    evhttp_request_get_output_headers(ev),
				    "Connection", "close");
				http_reply_error(r, 503, "overloaded",
				    "too many connections");
				return;
			}
			conn_add(h, evcon);
			evhttp_connection_set_closecb(
			    evcon, http_conn_closed, h);
		}
	}
	if (uri == NULL || strlen(uri) > HTTP_URI_MAX) {
		http_reply_error(
		    r, 414, "uri_too_long", "request URI too long");
		return;
	}
	if ((r->uri = evhttp_uri_parse_with_flags(uri, 0)) == NULL ||
	    (path = evhttp_uri_get_path(r->uri)) == NULL || path[0] != '/') {
		http_reply_error(r, 400, "bad_request", "malformed URI");
		return;
	}
	/* keytrail's paths never need escapes: refuse them outright. */
	if (strchr(path, '%') != NULL || (r->path = strdup(path)) == NULL) {
		http_reply_error(r, 404, "not_found", "no such path");
		return;
	}
	q = evhttp_uri_get_query(r->uri);
	TAILQ_INIT(&r->query);
	r->query_ok = 1;
	if (q != NULL && evhttp_parse_query_str(q, &r->query) != 0) {
		http_reply_error(r, 400, "bad_request", "malformed query");
		return;
	}
	in = evhttp_request_get_input_buffer(ev);
	r->bodylen = evbuffer_get_length(in);
	if (r->bodylen > h->lim.max_body) {
		http_reply_error(r, 413, "too_large", "request body too large");
		return;
	}
	if ((r->body = malloc(r->bodylen + 1)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	evbuffer_remove(in, r->body, r->bodylen);
	r->body[r->bodylen] = 0;

	for (i = 0; i < h->nroutes; i++) {
		const struct http_route *rt = &h->routes[i];
		size_t n = strlen(rt->path);

		if (rt->prefix ? strncmp(r->path, rt->path, n) == 0
			       : strcmp(r->path, rt->path) == 0)
			break;
	}
	if (i == h->nroutes) {
		http_reply_error(r, 404, "not_found", "no such path");
		return;
	}
	if ((http_req_method(r) & h->routes[i].methods) == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(ev),
		    "Allow",
		    (h->routes[i].methods & HTTP_POST) ? "POST" : "GET, HEAD");
		/*
		 * libevent may not have read the body of a method it does not
		 * expect one for; close so nothing left over is taken for the
		 * next request.
		 */
		evhttp_add_header(evhttp_request_get_output_headers(ev),
		    "Connection", "close");
		http_reply_error(r, 405, "method_not_allowed",
		    "method not allowed on this path");
		return;
	}
	h->routes[i].fn(r, h->arg);
}

/*
 * Each connection's bufferevent: libevent writes at most 16 KiB per loop
 * iteration by default, which makes a 128 KiB entry bundle take eight
 * trips through epoll; let one write take a whole answer.
 */
static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	(void)arg;
	if (bev != NULL) {
		bufferevent_set_max_single_write(bev, HTTP_SINGLE_WRITE_MAX);
		bufferevent_set_max_single_read(bev, HTTP_SINGLE_WRITE_MAX);
	}
	return bev;
}

void
http_set_limits(struct http *h, const struct http_limits *lim)
{
	h->lim.max_body = lim->max_body;
	h->lim.max_headers = lim->max_headers;
	h->lim.timeout_s = lim->timeout_s;
	evhttp_set_max_headers_size(h->ev, (ev_ssize_t)lim->max_headers);
	/*
	 * libevent answers bodies past its own limit with an HTML page, so
	 * its limit sits well above ours and http_gencb gives the JSON 413;
	 * only bodies beyond HTTP_BODY_HARD_MAX get libevent's page (still a
	 * 413).
	 */
	evhttp_set_max_body_size(h->ev,
	    (ev_ssize_t)(lim->max_body > HTTP_BODY_HARD_MAX / 4
		    ? lim->max_body
		    : HTTP_BODY_HARD_MAX));
	evhttp_set_timeout(h->ev, (int)lim->timeout_s);
}

int
http_new(struct event_base *base, const struct http_limits *lim,
    const struct http_route *routes, size_t nroutes, void *arg,
    const char *host, uint16_t port, struct http **out, char *err,
    size_t errlen)
{
	struct http *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return KT_ENOMEM;
	h->routes = routes;
	h->nroutes = nroutes;
	h->arg = arg;
	h->lim = *lim;
	h->nconns_slots = 2 * (size_t)lim->max_connections + 1;
	h->conns = calloc(h->nconns_slots, sizeof(*h->conns));
	if (h->conns == NULL || (h->ev = evhttp_new(base)) == NULL) {
		http_free(h);
		return KT_ENOMEM;
	}
	http_set_limits(h, lim);
	evhttp_set_allowed_methods(h->ev,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->ev, "application/json");
	evhttp_set_gencb(h->ev, http_gencb, h);
	evhttp_set_bevcb(h->ev, http_bevcb, h);
	h->sock = evhttp_bind_socket_with_handle(h->ev, host, port);
	if (h->sock == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u", host, port);
		http_free(h);
		return KT_EIO;
	}
	*out = h;
	return KT_OK;
}

void
http_stop_accepting(struct http *h)
{
	if (h != NULL && h->sock != NULL) {
		evhttp_del_accept_socket(h->ev, h->sock);
		h->sock = NULL;
	}
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->ev != NULL)
		evhttp_free(h->ev);
	free(h->conns);
	free(h);
}

void
http_get_stats(const struct http *h, struct http_stats *out)
{
	*out = h->stats;
}
