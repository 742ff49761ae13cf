#include "e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/sha.h>

#include "keytrail/encoding.h"

/* Every request must finish within this many seconds. */
#define E2E_TIMEOUT 60

void
e2e_init(struct e2e *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/kt-e2e-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
	e->pid = -1;
	assert_non_null(e->base = event_base_new());
}

static uint16_t
e2e_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

void
e2e_start(struct e2e *e)
{
	const char *bin = getenv("KT_LOGD");
	char listen[64], log[300];
	pid_t pid;

	if (bin == NULL)
		fail_msg("KT_LOGD is not set");
	e->port = e2e_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", e->port);
	snprintf(log, sizeof(log), "%s/logd.log", e->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* A failed test must not leave a daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		execl(bin, "keytrail-logd", "--data", e->data, "--listen",
		    listen, (char *)NULL);
		_exit(127);
	}
	e->pid = pid;
	if (e->conn != NULL) {
		evhttp_connection_free(e->conn);
		e->conn = NULL;
	}
	/* Wait for /healthz (first start makes a token and keys). */
	for (int i = 0; i < 600; i++) {
		struct e2e_resp r;
		int status;
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons(e->port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			e2e_http(e, "GET", "/healthz", NULL, NULL, 0, &r);
			status = r.status;
			e2e_resp_free(&r);
			if (status == 200)
				return;
		} else {
			close(fd);
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			e->pid = -1;
			fail_msg(
			    "keytrail-logd exited during start (see %s)", log);
		}
		usleep(50000);
	}
	fail_msg("keytrail-logd did not come up (see %s)", log);
}

void
e2e_stop(struct e2e *e, int sig)
{
	int status = 0;

	if (e->conn != NULL) {
		evhttp_connection_free(e->conn);
		e->conn = NULL;
	}
	if (e->pid <= 0)
		return;
	kill(e->pid, sig);
	for (int i = 0; i < 300; i++) {
		if (waitpid(e->pid, &status, WNOHANG) == e->pid)
			break;
		usleep(50000);
		if (i == 299) {
			kill(e->pid, SIGKILL);
			waitpid(e->pid, &status, 0);
			e->pid = -1;
			fail_msg(
			    "keytrail-logd did not stop on signal %d", sig);
		}
	}
	e->pid = -1;
	if (sig == SIGTERM && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		fail_msg(
		    "keytrail-logd did not exit cleanly (status %d)", status);
}

void
e2e_cleanup(struct e2e *e)
{
	char *argv[] = { "rm", "-rf", e->dir, NULL };

	if (e->pid > 0)
		e2e_stop(e, SIGKILL);
	if (getenv("KT_E2E_KEEP") == NULL)
		(void)e2e_run(argv);
	if (e->conn != NULL)
		evhttp_connection_free(e->conn);
	if (e->base != NULL)
		event_base_free(e->base);
	e->conn = NULL;
	e->base = NULL;
}

void
e2e_token(const struct e2e *e, const char *name, char *out, size_t outlen)
{
	char path[400];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tokens/%s", e->data, name);
	assert_non_null(f = fopen(path, "r"));
	n = fread(out, 1, outlen - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = 0;
}

struct e2e_pending {
	struct e2e_resp *resp;
	int done;
	struct event_base *base;
};

static void
e2e_copy_header(
    struct evhttp_request *req, const char *name, char *out, size_t outlen)
{
	const char *v =
	    evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(out, outlen, "%s", v ? v : "");
}

static void
e2e_fill(struct evhttp_request *req, struct e2e_resp *resp)
{
	struct evbuffer *b;
	size_t n;

	kt_buf_init(&resp->body, 64 << 20);
	if (req == NULL) {
		resp->status = 0;
		return;
	}
	resp->status = evhttp_request_get_response_code(req);
	e2e_copy_header(req, "Content-Type", resp->ctype, sizeof(resp->ctype));
	e2e_copy_header(req, "Cache-Control", resp->cache, sizeof(resp->cache));
	e2e_copy_header(
	    req, "Content-Encoding", resp->encoding, sizeof(resp->encoding));
	e2e_copy_header(
	    req, "Retry-After", resp->retry_after, sizeof(resp->retry_after));
	b = evhttp_request_get_input_buffer(req);
	n = evbuffer_get_length(b);
	if (n > 0) {
		uint8_t *p;

		assert_int_equal(kt_buf_extend(&resp->body, n, &p), KT_OK);
		evbuffer_remove(b, p, n);
	}
}

static void
e2e_done(struct evhttp_request *req, void *arg)
{
	struct e2e_pending *p = arg;

	e2e_fill(req, p->resp);
	p->done = 1;
	event_base_loopbreak(p->base);
}

static enum evhttp_cmd_type
e2e_cmd(const char *method)
{
	if (strcmp(method, "GET") == 0)
		return EVHTTP_REQ_GET;
	if (strcmp(method, "HEAD") == 0)
		return EVHTTP_REQ_HEAD;
	if (strcmp(method, "POST") == 0)
		return EVHTTP_REQ_POST;
	if (strcmp(method, "PUT") == 0)
		return EVHTTP_REQ_PUT;
	if (strcmp(method, "DELETE") == 0)
		return EVHTTP_REQ_DELETE;
	return EVHTTP_REQ_PATCH;
}

static struct evhttp_connection *
e2e_conn(struct e2e *e)
{
	struct evhttp_connection *c =
	    evhttp_connection_base_new(e->base, NULL, "127.0.0.1", e->port);

	assert_non_null(c);
	evhttp_connection_set_timeout(c, E2E_TIMEOUT);
	return c;
}

void
e2e_http_h(struct e2e *e, const char *method, const char *path,
    const char *const *headers, const char *body, size_t bodylen,
    struct e2e_resp *resp)
{
	struct e2e_pending p = { resp, 0, e->base };
	struct evhttp_request *req;
	struct evkeyvalq *h;
	char host[32];

	memset(resp, 0, sizeof(*resp));
	if (e->conn == NULL)
		e->conn = e2e_conn(e);
	assert_non_null(req = evhttp_request_new(e2e_done, &p));
	h = evhttp_request_get_output_headers(req);
	snprintf(host, sizeof(host), "127.0.0.1:%u", e->port);
	evhttp_add_header(h, "Host", host);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		char name[128];
		const char *colon = strchr(headers[i], ':');

		assert_non_null(colon);
		snprintf(name, sizeof(name), "%.*s", (int)(colon - headers[i]),
		    headers[i]);
		evhttp_add_header(h, name, colon + 2);
	}
	if (body != NULL)
		evbuffer_add(
		    evhttp_request_get_output_buffer(req), body, bodylen);
	assert_int_equal(
	    evhttp_make_request(e->conn, req, e2e_cmd(method), path), 0);
	while (!p.done)
		event_base_dispatch(e->base);
	if (resp->status == 0) {
		/* The daemon closed the connection: start a new one. */
		evhttp_connection_free(e->conn);
		e->conn = NULL;
	}
}

void
e2e_http(struct e2e *e, const char *method, const char *path, const char *token,
    const char *body, size_t bodylen, struct e2e_resp *resp)
{
	char auth[400];
	const char *headers[2] = { NULL, NULL };

	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[0] = auth;
	}
	e2e_http_h(e, method, path, headers, body, bodylen, resp);
}

void
e2e_resp_free(struct e2e_resp *resp)
{
	kt_buf_free(&resp->body);
}

json_t *
e2e_json(const struct e2e_resp *resp)
{
	json_error_t err;
	json_t *j =
	    json_loadb((const char *)resp->body.p, resp->body.len, 0, &err);

	if (j == NULL)
		fail_msg("response is not JSON (status %d): %.*s", resp->status,
		    (int)(resp->body.len > 200 ? 200 : resp->body.len),
		    resp->body.p ? (const char *)resp->body.p : "");
	return j;
}

/* State of a concurrent run. */
struct e2e_many {
	struct e2e *e;
	struct e2e_call *calls;
	size_t n, next, done;
};

struct e2e_slot {
	struct e2e_many *m;
	struct evhttp_connection *conn;
	size_t current;
};

static void e2e_slot_send(struct e2e_slot *s);

static void
e2e_slot_done(struct evhttp_request *req, void *arg)
{
	struct e2e_slot *s = arg;
	struct e2e_many *m = s->m;

	e2e_fill(req, &m->calls[s->current].resp);
	m->done++;
	if (req == NULL) {
		/* Connection failed: later calls use a fresh one. */
		evhttp_connection_free(s->conn);
		s->conn = e2e_conn(m->e);
	}
	if (m->done == m->n)
		event_base_loopbreak(m->e->base);
	else
		e2e_slot_send(s);
}

static void
e2e_slot_send(struct e2e_slot *s)
{
	struct e2e_many *m = s->m;
	struct e2e_call *c;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	char auth[400];

	if (m->next >= m->n)
		return;
	s->current = m->next++;
	c = &m->calls[s->current];
	memset(&c->resp, 0, sizeof(c->resp));
	assert_non_null(req = evhttp_request_new(e2e_slot_done, s));
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	if (c->token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", c->token);
		evhttp_add_header(h, "Authorization", auth);
	}
	if (c->body != NULL)
		evbuffer_add(
		    evhttp_request_get_output_buffer(req), c->body, c->bodylen);
	assert_int_equal(
	    evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, c->path), 0);
}

void
e2e_post_many(struct e2e *e, struct e2e_call *calls, size_t n, size_t nconn)
{
	struct e2e_many m = { e, calls, n, 0, 0 };
	struct e2e_slot *slots = calloc(nconn, sizeof(*slots));

	assert_non_null(slots);
	for (size_t i = 0; i < nconn; i++) {
		slots[i].m = &m;
		slots[i].conn = e2e_conn(e);
	}
	for (size_t i = 0; i < nconn; i++)
		e2e_slot_send(&slots[i]);
	while (m.done < n)
		event_base_dispatch(e->base);
	for (size_t i = 0; i < nconn; i++)
		evhttp_connection_free(slots[i].conn);
	free(slots);
}

int
e2e_run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void
e2e_trust_get(struct e2e *e, struct e2e_trust *tr)
{
	struct e2e_resp r;
	json_t *j;
	const char *vk, *origin;

	e2e_http(e, "GET", "/v1/log", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	j = e2e_json(&r);
	vk = json_string_value(json_object_get(j, "vkey"));
	origin = json_string_value(json_object_get(j, "origin"));
	assert_non_null(vk);
	assert_non_null(origin);
	assert_int_equal(kt_note_vkey_parse(vk, strlen(vk), &tr->vkey), KT_OK);
	snprintf(tr->origin, sizeof(tr->origin), "%s", origin);
	memset(&tr->t, 0, sizeof(tr->t));
	tr->t.log = &tr->vkey;
	tr->t.origin.p = (const uint8_t *)tr->origin;
	tr->t.origin.len = strlen(tr->origin);
	json_decref(j);
	e2e_resp_free(&r);
}

uint8_t *
e2e_file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = malloc(1 << 20);
	size_t n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_non_null(p);
	n = fread(p, 1, (1 << 20) - 1, f);
	fclose(f);
	p[n] = 0;
	if (len != NULL)
		*len = n;
	return p;
}

void
e2e_file_write(const char *path, const void *p, size_t len)
{
	char tmp[512];
	FILE *f;

	/* Renamed into place: the daemon never reads half a file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_non_null(f = fopen(tmp, "wb"));
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tmp, 0600), 0);
	assert_int_equal(rename(tmp, path), 0);
}

void
e2e_conf_set(struct e2e *e, const char *section, const char *field, json_t *v)
{
	char path[400];
	size_t len;
	uint8_t *doc;
	json_t *j, *obj;
	char *text;

	snprintf(path, sizeof(path), "%s/keytrail.json", e->data);
	doc = e2e_file_read(path, &len);
	assert_non_null(j = json_loadb((const char *)doc, len, 0, NULL));
	obj = section != NULL ? json_object_get(j, section) : j;
	assert_non_null(obj);
	assert_int_equal(json_object_set_new(obj, field, v), 0);
	assert_non_null(text = json_dumps(j, JSON_INDENT(2)));
	e2e_file_write(path, text, strlen(text));
	free(text);
	json_decref(j);
	free(doc);
}

void
e2e_sha256_hex(const void *p, size_t len, char out[65])
{
	uint8_t h[32];

	SHA256(p, len, h);
	kt_hex_encode(h, 32, out);
}

const char *
e2e_jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("answer has no string \"%s\"", key);
	return s;
}
