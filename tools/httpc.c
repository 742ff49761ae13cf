#include "httpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "monotonic.h"

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
	w->resp->seconds = monotonic_seconds() - w->t0;
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
	struct httpc_wait w = { resp, c->base, monotonic_seconds(), 0 };
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

struct httpc_many;
struct httpc_slot {
	struct httpc_many *m;
	struct evhttp_connection *conn;
	size_t cur;
	double t0;
};
struct httpc_many {
	struct httpc *c;
	const char *token;
	struct httpc_call *calls;
	size_t n, next, done;
};

static void httpc_slot_send(struct httpc_slot *s);

static void
httpc_slot_done(struct evhttp_request *req, void *arg)
{
	struct httpc_slot *s = arg;
	struct httpc_many *m = s->m;

	httpc_fill(req, &m->calls[s->cur].resp);
	m->calls[s->cur].resp.seconds = monotonic_seconds() - s->t0;
	if (m->calls[s->cur].resp.status == 0) {
		evhttp_connection_free(s->conn);
		s->conn = httpc_conn(m->c);
	}
	if (++m->done == m->n)
		event_base_loopbreak(m->c->base);
	else
		httpc_slot_send(s);
}

static void
httpc_slot_send(struct httpc_slot *s)
{
	struct httpc_many *m = s->m;
	struct httpc_call *call;
	struct evhttp_request *req;
	char full[2048];

	while (m->next < m->n) {
		s->cur = m->next++;
		call = &m->calls[s->cur];
		memset(&call->resp, 0, sizeof(call->resp));
		snprintf(full, sizeof(full), "%s%s", m->c->prefix, call->path);
		req = httpc_req(
		    m->c, httpc_slot_done, s, m->token, call->body, call->len);
		s->t0 = monotonic_seconds();
		if (req != NULL && s->conn != NULL &&
		    evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, full) ==
			0)
			return;
		kt_buf_init(&call->resp.body, 0);
		if (++m->done == m->n)
			event_base_loopbreak(m->c->base);
	}
}

void
httpc_post_many(struct httpc *c, const char *token, struct httpc_call *calls,
    size_t n, size_t nconn)
{
	struct httpc_many m = { c, token, calls, n, 0, 0 };
	struct httpc_slot *slots;

	if (n == 0)
		return;
	if ((slots = calloc(nconn, sizeof(*slots))) == NULL)
		return;
	for (size_t i = 0; i < nconn; i++) {
		slots[i].m = &m;
		slots[i].conn = httpc_conn(c);
	}
	for (size_t i = 0; i < nconn; i++)
		httpc_slot_send(&slots[i]);
	while (m.done < n)
		event_base_dispatch(c->base);
	for (size_t i = 0; i < nconn; i++) {
		if (slots[i].conn != NULL)
			evhttp_connection_free(slots[i].conn);
	}
	free(slots);
}
