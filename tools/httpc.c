#define _GNU_SOURCE /* memmem */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

/* Largest response body the CLI accepts (a full entry bundle is ~16 MiB). */
#define HTTPC_BODY_MAX (64u << 20)

struct httpc {
	struct event_base *base;
	struct evhttp_connection *conn;
	char host[256];
	uint16_t port;
	char prefix[512];
	unsigned timeout_s;
};

int
httpc_new(const char *url, unsigned timeout_s, struct httpc **out, char *err,
    size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	struct httpc *c;
	const char *scheme, *host, *path;
	int port;

	if (u == NULL || (scheme = evhttp_uri_get_scheme(u)) == NULL ||
	    strcmp(scheme, "http") != 0 ||
	    (host = evhttp_uri_get_host(u)) == NULL || strlen(host) >= 256) {
		snprintf(err, errlen, "%s: not an http://host[:port] URL", url);
		if (u != NULL)
			evhttp_uri_free(u);
		return KT_EINVAL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->base = event_base_new()) == NULL) {
		free(c);
		evhttp_uri_free(u);
		return KT_ENOMEM;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	port = evhttp_uri_get_port(u);
	c->port = (uint16_t)(port > 0 ? port : 80);
	path = evhttp_uri_get_path(u);
	snprintf(c->prefix, sizeof(c->prefix), "%s",
	    path != NULL && strcmp(path, "/") != 0 ? path : "");
	c->timeout_s = timeout_s ? timeout_s : 60;
	evhttp_uri_free(u);
	*out = c;
	return KT_OK;
}

void
httpc_free(struct httpc *c)
{
	if (c == NULL)
		return;
	if (c->conn != NULL)
		evhttp_connection_free(c->conn);
	event_base_free(c->base);
	free(c);
}

const char *
httpc_prefix(const struct httpc *c)
{
	return c->prefix;
}

void
httpc_resp_free(struct httpc_resp *r)
{
	kt_buf_free(&r->body);
}

static struct evhttp_connection *
httpc_conn(struct httpc *c)
{
	struct evhttp_connection *k =
	    evhttp_connection_base_new(c->base, NULL, c->host, c->port);

	if (k != NULL)
		evhttp_connection_set_timeout(k, (int)c->timeout_s);
	return k;
}

/* Copies a finished request into resp. */
static void
httpc_fill(struct evhttp_request *req, struct httpc_resp *resp)
{
	struct evbuffer *b;
	size_t n;
	uint8_t *p;

	kt_buf_init(&resp->body, HTTPC_BODY_MAX);
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		resp->status = 0;
		return;
	}
	resp->status = evhttp_request_get_response_code(req);
	b = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(b);
	if (n > 0 && kt_buf_extend(&resp->body, n, &p) == KT_OK)
		evbuffer_remove(b, p, n);
}

struct httpc_wait {
	struct httpc_resp *resp;
	struct event_base *base;
	double t0;
	int done;
};

static void
httpc_done(struct evhttp_request *req, void *arg)
{
	struct httpc_wait *w = arg;

	httpc_fill(req, w->resp);
	w->resp->seconds = kt_monotonic_seconds() - w->t0;
	w->done = 1;
	event_base_loopbreak(w->base);
}

static struct evhttp_request *
httpc_req(struct httpc *c, void (*cb)(struct evhttp_request *, void *),
    void *arg, const char *token, const uint8_t *body, size_t len)
{
	struct evhttp_request *req = evhttp_request_new(cb, arg);
	struct evkeyvalq *h;
	char auth[512];

	if (req == NULL)
		return NULL;
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", c->host);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		evhttp_add_header(h, "Authorization", auth);
		kt_wipe(auth, sizeof(auth));
	}
	if (body != NULL) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	}
	return req;
}

int
httpc_do(struct httpc *c, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t len, struct httpc_resp *resp)
{
	struct httpc_wait w = { resp, c->base, kt_monotonic_seconds(), 0 };
	struct evhttp_request *req;
	char full[2048];

	memset(resp, 0, sizeof(*resp));
	if (snprintf(full, sizeof(full), "%s%s", c->prefix, path) >=
	    (int)sizeof(full))
		return KT_EINVAL;
	if (c->conn == NULL && (c->conn = httpc_conn(c)) == NULL)
		return KT_ENOMEM;
	if ((req = httpc_req(c, httpc_done, &w, token, body, len)) == NULL)
		return KT_ENOMEM;
	if (evhttp_make_request(c->conn, req,
		strcmp(method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET,
		full) != 0)
		return KT_EIO;
	while (!w.done)
		event_base_dispatch(c->base);
	if (resp->status == 0) {
		evhttp_connection_free(c->conn);
		c->conn = NULL;
		return KT_EIO;
	}
	return KT_OK;
}

/*
 * The pipelined mode is the load generator of `keytrail bench`, which
 * runs on the same cores as the daemon it measures: it keeps its own cost
 * down with plain non-blocking sockets and one epoll set instead of
 * evhttp.  Each connection sends a request prepared in full and reads one
 * answer with a Content-Length (what keytrail-logd sends) before the next.
 */
struct httpc_slot {
	int fd;
	size_t cur; /* the call in flight */
	int busy;
	double t0, last;
	struct kt_buf out; /* the request being sent */
	size_t sent;
	struct kt_buf in; /* the answer so far */
};

struct httpc_many {
	struct httpc *c;
	const char *token;
	struct httpc_call *calls;
	size_t n, next, done;
	int ep;
	struct addrinfo *ai;
};

/* The value of header name in the answer's head, or NULL. */
static const char *
httpc_head_value(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i + nl + 2 < len; i++) {
		if (head[i] == '\n' &&
		    strncasecmp(head + i + 1, name, nl) == 0 &&
		    head[i + 1 + nl] == ':') {
			const char *v = head + i + 2 + nl;

			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

static void
httpc_slot_close(struct httpc_many *m, struct httpc_slot *s)
{
	if (s->fd >= 0) {
		epoll_ctl(m->ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	s->fd = -1;
}

static int
httpc_slot_connect(struct httpc_many *m, struct httpc_slot *s)
{
	struct epoll_event ev;
	int one = 1;

	s->fd = socket(m->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, m->ai->ai_addr, m->ai->ai_addrlen) != 0 &&
	    errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
	ev.data.ptr = s;
	if (epoll_ctl(m->ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	return 0;
}

/* Ends the call in flight on s with status (0: failed). */
static void
httpc_slot_finish(struct httpc_many *m, struct httpc_slot *s, int status,
    const uint8_t *body, size_t len)
{
	struct httpc_resp *r = &m->calls[s->cur].resp;

	kt_buf_init(&r->body, HTTPC_BODY_MAX);
	r->status = status;
	if (status != 0 && len > 0 && kt_buf_append(&r->body, body, len) != 0)
		r->status = 0;
	r->seconds = kt_monotonic_seconds() - s->t0;
	s->busy = 0;
	m->done++;
}

/* Writes what is left of the request; -1 when the connection failed. */
static int
httpc_slot_write(struct httpc_slot *s)
{
	while (s->sent < s->out.len) {
		ssize_t k = send(s->fd, s->out.p + s->sent,
		    s->out.len - s->sent, MSG_NOSIGNAL);

		if (k < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		s->sent += (size_t)k;
	}
	return 0;
}

/* Starts the next call on s, if any is left. */
static void
httpc_slot_next(struct httpc_many *m, struct httpc_slot *s)
{
	struct httpc_call *call;
	char head[1024];
	int hl, ok;

	while (m->next < m->n) {
		s->cur = m->next++;
		call = &m->calls[s->cur];
		memset(&call->resp, 0, sizeof(call->resp));
		s->t0 = s->last = kt_monotonic_seconds();
		s->busy = 1;
		kt_buf_reset(&s->out);
		kt_buf_reset(&s->in);
		s->sent = 0;
		hl = snprintf(head, sizeof(head),
		    "POST %s%s HTTP/1.1\r\nHost: %s\r\n%s%s%s"
		    "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\n\r\n",
		    m->c->prefix, call->path, m->c->host,
		    m->token ? "Authorization: Bearer " : "",
		    m->token ? m->token : "", m->token ? "\r\n" : "",
		    call->len);
		ok = hl > 0 && (size_t)hl < sizeof(head) &&
		    (s->fd >= 0 || httpc_slot_connect(m, s) == 0) &&
		    kt_buf_append(&s->out, head, (size_t)hl) == 0 &&
		    kt_buf_append(&s->out, call->body, call->len) == 0 &&
		    httpc_slot_write(s) == 0;
		/* The head holds the bearer token. */
		kt_wipe(head, sizeof(head));
		if (ok)
			return;
		httpc_slot_close(m, s);
		httpc_slot_finish(m, s, 0, NULL, 0);
	}
}

/* Reads what arrived; finishes the call once its answer is complete. */
static void
httpc_slot_read(struct httpc_many *m, struct httpc_slot *s)
{
	for (;;) {
		uint8_t *p;
		ssize_t k;
		const char *h, *v;
		char *end;
		long long cl;
		size_t hlen;
		int status;

		if (kt_buf_extend(&s->in, 16384, &p) != 0)
			goto fail;
		k = recv(s->fd, p, 16384, 0);
		kt_buf_truncate(
		    &s->in, s->in.len - 16384 + (k > 0 ? (size_t)k : 0));
		if (k == 0)
			goto fail;
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			goto fail;
		}
		s->last = kt_monotonic_seconds();
		if (!s->busy)
			goto fail; /* an answer nobody asked for */
		h = (const char *)s->in.p;
		end = memmem(h, s->in.len, "\r\n\r\n", 4);
		if (end == NULL)
			continue;
		hlen = (size_t)(end - h) + 4;
		if (s->in.len < 12 || memcmp(h, "HTTP/1.", 7) != 0)
			goto fail;
		status = atoi(h + 9);
		v = httpc_head_value(h, hlen, "content-length");
		if (v == NULL || (cl = strtoll(v, NULL, 10)) < 0)
			goto fail;
		if (s->in.len < hlen + (size_t)cl)
			continue;
		httpc_slot_finish(m, s, status, s->in.p + hlen, (size_t)cl);
		v = httpc_head_value(h, hlen, "connection");
		if (v != NULL && strncasecmp(v, "close", 5) == 0)
			httpc_slot_close(m, s);
		httpc_slot_next(m, s);
		return;
	}
fail:
	httpc_slot_close(m, s);
	if (s->busy)
		httpc_slot_finish(m, s, 0, NULL, 0);
	httpc_slot_next(m, s);
}

void
httpc_post_many(struct httpc *c, const char *token, struct httpc_call *calls,
    size_t n, size_t nconn)
{
	struct httpc_many m = { c, token, calls, n, 0, 0, -1, NULL };
	struct httpc_slot *slots;
	struct addrinfo hints;
	struct epoll_event evs[64];
	char port[8];

	if (n == 0)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)c->port);
	slots = calloc(nconn, sizeof(*slots));
	if (slots == NULL || (m.ep = epoll_create1(0)) < 0 ||
	    getaddrinfo(c->host, port, &hints, &m.ai) != 0) {
		for (size_t i = 0; i < n; i++) {
			memset(&calls[i].resp, 0, sizeof(calls[i].resp));
			kt_buf_init(&calls[i].resp.body, 0);
		}
		goto out;
	}
	for (size_t i = 0; i < nconn; i++) {
		slots[i].fd = -1;
		kt_buf_init(&slots[i].out, 1 << 20);
		kt_buf_init(&slots[i].in, HTTPC_BODY_MAX);
	}
	for (size_t i = 0; i < nconn; i++)
		httpc_slot_next(&m, &slots[i]);
	while (m.done < n) {
		int k = epoll_wait(m.ep, evs, 64, 1000);
		double now = kt_monotonic_seconds();

		for (int i = 0; i < k; i++) {
			struct httpc_slot *s = evs[i].data.ptr;

			if (s->fd >= 0 && (evs[i].events & EPOLLOUT) &&
			    httpc_slot_write(s) != 0)
				evs[i].events |= EPOLLERR;
			if (s->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				httpc_slot_read(&m, s);
		}
		/* A call that heard nothing for the timeout fails. */
		for (size_t i = 0; i < nconn; i++) {
			if (slots[i].busy &&
			    now - slots[i].last > (double)c->timeout_s) {
				httpc_slot_close(&m, &slots[i]);
				httpc_slot_finish(&m, &slots[i], 0, NULL, 0);
				httpc_slot_next(&m, &slots[i]);
			}
		}
	}
out:
	for (size_t i = 0; slots != NULL && i < nconn; i++) {
		httpc_slot_close(&m, &slots[i]);
		if (slots[i].out.p != NULL) /* requests carry the token */
			kt_wipe(slots[i].out.p, slots[i].out.cap);
		kt_buf_free(&slots[i].out);
		kt_buf_free(&slots[i].in);
	}
	free(slots);
	if (m.ai != NULL)
		freeaddrinfo(m.ai);
	if (m.ep >= 0)
		close(m.ep);
}
