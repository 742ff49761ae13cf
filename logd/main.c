/*
 * keytrail-logd: the transparency log daemon.
 *
 * Startup: parse arguments, set up a development data directory on first
 * start, load the configuration, open the HSM (the log's Ed25519 key),
 * open the store, make sure a checkpoint exists, start the sequencer and
 * the HTTP server, print the banner, run the event loop.  SIGTERM/SIGINT
 * stop accepting, finish in-flight batches and close cleanly; SIGHUP
 * reloads the principals.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/sha.h>

#include "api.h"
#include "conf.h"
#include "hsm.h"
#include "keytrail/checkpoint.h"
#include "keytrail/note.h"
#include "log.h"
#include "seq.h"
#include "setup.h"
#include "sign.h"
#include "store.h"
#include "tilecache.h"
#include "policy.h"
#include "pool.h"

#define LOGD_DEFAULT_LISTEN "127.0.0.1:8080"
#define LOGD_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
/* The worker threads' nice value (docs/operations.md, "Threads"). */
#define LOGD_WORKER_NICE 10

struct logd {
	struct conf conf;
	struct hsm *hsm;
	struct hsm_key *key;
	struct hsm *keys_hsm; /* the signing keys' token */
	struct kt_note_signer signer;
	struct store *st;
	struct event_base *base;
	struct seq *seq;
	struct http *http;
	struct api api;
	struct event *sigterm, *sigint, *sighup;
	char config[PATH_MAX]; /* --config, "" for DIR/keytrail.json */
	int listen_flag;       /* --listen overrides the file's listen */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: keytrail-logd --data DIR [--listen HOST:PORT] "
	    "[--config FILE]\n"
	    "                     [--check-config] [--upgrade-storage] "
	    "[--quiet]\n"
	    "\n"
	    "Runs the keytrail signing service and its transparency log.  On "
	    "an empty\n"
	    "(or missing) DIR with no --config it sets up a development log: "
	    "SoftHSM\n"
	    "tokens in DIR/hsm/ holding the log's Ed25519 key and the signing "
	    "keys\n"
	    "default and release (ECDSA P-256), principals admin, ci, alice "
	    "and "
	    "bob\n"
	    "with bearer tokens in DIR/tokens/, a policy (DIR/policy.json) and "
	    "a\n"
	    "config (DIR/keytrail.json).  Later starts reuse it.\n"
	    "\n"
	    "  --data DIR        data directory (required)\n"
	    "  --listen H:P      listen address (default %s; overrides the "
	    "config)\n"
	    "  --config FILE     config file (default DIR/keytrail.json)\n"
	    "  --check-config    load and check the configuration, then exit\n"
	    "  --upgrade-storage bring the log storage up to this program's "
	    "schema, then\n"
	    "                    exit (older programs cannot read it "
	    "afterwards)\n"
	    "  --quiet           log warnings and errors only\n"
	    "  --help            this text\n"
	    "\n"
	    "Signals: TERM/INT stop cleanly, HUP reloads the configuration "
	    "(batching and\nHTTP limits; other changes wait for a restart) and "
	    "the policy file.\n",
	    LOGD_DEFAULT_LISTEN);
}

/* The note signer callback: Ed25519 inside the HSM (CKM_EDDSA). */
static int
logd_hsm_sign(
    void *ctx, const uint8_t *msg, size_t len, uint8_t sig[KT_ED25519_SIG_SIZE])
{
	struct logd *d = ctx;
	char err[256];
	size_t siglen;
	int rc;

	rc = hsm_sign(d->hsm, d->key, msg, len, sig, KT_ED25519_SIG_SIZE,
	    &siglen, err, sizeof(err));
	if (rc != KT_OK) {
		log_err("checkpoint signing failed: %s", err);
		return rc;
	}
	return siglen == KT_ED25519_SIG_SIZE ? KT_OK : KT_EINTERNAL;
}

/* seq_set_feed: entries are on their way while workers have jobs. */
static unsigned
logd_pool_busy(void *ctx)
{
	return pool_busy(ctx);
}

/* store_sign_fn: the signed note of a checkpoint text. */
static int
logd_sign_checkpoint(
    void *ctx, const uint8_t *text, size_t len, struct kt_buf *out)
{
	struct logd *d = ctx;

	return kt_note_sign(text, len, &d->signer, 1, 0, out);
}

static void
logd_on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct logd *d = arg;
	struct timeval tv = { 0, 200000 };

	(void)what;
	if (d->api.shutting_down)
		return;
	log_info("signal %d: stopping (finishing in-flight batches)", (int)sig);
	d->api.shutting_down = 1;
	http_stop_accepting(d->http);
	/* Drains the queue; its completions are delivered by the loop. */
	seq_stop(d->seq);
	event_base_loopexit(d->base, &tv);
}

/*
 * SIGHUP, first half: the configuration file again.  Batching and the
 * HTTP body, header and timeout limits change in place; a change to
 * anything else (origin, listen, map size, HSM, policy file, connection
 * cap) is reported and waits for a restart.  A file that does not load
 * changes nothing.
 */
static void
logd_reload_conf(struct logd *d)
{
	struct conf *c = &d->conf;
	struct conf n;
	struct http_limits lim;
	char err[512] = "";
	const char *later[12];
	size_t nl = 0;

	if (conf_load(c->data_dir, d->config[0] ? d->config : NULL, &n, err,
		sizeof(err)) != KT_OK) {
		log_err("configuration reload refused, the old configuration "
			"stays: %s",
		    err);
		return;
	}
	if (strcmp(n.origin, c->origin) != 0)
		later[nl++] = "origin";
	if (!d->listen_flag &&
	    (strcmp(n.listen_host, c->listen_host) != 0 ||
		n.listen_port != c->listen_port))
		later[nl++] = "listen";
	if (n.map_size != c->map_size)
		later[nl++] = "map_size_mib";
	if (n.ixbuf_entries != c->ixbuf_entries)
		later[nl++] = "index_buffer_entries";
	if (strcmp(n.hsm_module, c->hsm_module) != 0 ||
	    strcmp(n.hsm_softhsm_conf, c->hsm_softhsm_conf) != 0 ||
	    strcmp(n.hsm_token, c->hsm_token) != 0 ||
	    strcmp(n.hsm_pin_file, c->hsm_pin_file) != 0 ||
	    strcmp(n.log_key_label, c->log_key_label) != 0 ||
	    strcmp(n.hsm_keys_token, c->hsm_keys_token) != 0 ||
	    n.hsm_session_copies != c->hsm_session_copies)
		later[nl++] = "hsm";
	if (strcmp(n.policy_file, c->policy_file) != 0)
		later[nl++] = "policy_file";
	if (n.max_connections != c->max_connections)
		later[nl++] = "limits.max_connections";
	for (size_t i = 0; i < nl; i++)
		log_warn(
		    "configuration: %s changed; it takes effect on restart",
		    later[i]);
	if (n.batch_max != c->batch_max ||
	    n.batch_interval_us != c->batch_interval_us) {
		seq_set_batch(d->seq, n.batch_max, n.batch_interval_us);
		log_info("configuration: batches of up to %u entries, %u us",
		    n.batch_max, n.batch_interval_us);
		c->batch_max = n.batch_max;
		c->batch_interval_us = n.batch_interval_us;
	}
	if (n.max_body != c->max_body || n.max_headers != c->max_headers ||
	    n.timeout_s != c->timeout_s) {
		lim.max_body = n.max_body;
		lim.max_headers = n.max_headers;
		lim.max_connections = c->max_connections;
		lim.timeout_s = n.timeout_s;
		http_set_limits(d->http, &lim);
		log_info("configuration: body %zu bytes, headers %zu bytes, "
			 "timeout %u s",
		    n.max_body, n.max_headers, n.timeout_s);
		c->max_body = n.max_body;
		c->max_headers = n.max_headers;
		c->timeout_s = n.timeout_s;
	}
}

static void
logd_on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct logd *d = arg;
	char err[512] = "";

	(void)sig;
	(void)what;
	struct policy *fresh = NULL;

	logd_reload_conf(d);

	if (policy_load_file(d->conf.policy_file, &fresh, err, sizeof(err)) !=
	    KT_OK) {
		log_err("policy reload refused, the old policy stays: %s", err);
		return;
	}
	if (strcmp(policy_sha256(fresh), policy_sha256(d->api.policy)) == 0) {
		policy_free(fresh);
		log_info("policy unchanged");
		return;
	}
	/* Handlers use the policy only synchronously: swap and free. */
	policy_free(d->api.policy);
	d->api.policy = fresh;
	api_log_policy(&d->api, "operator");
}

/* The log's verifier key from the HSM key's SPKI (RFC 8410: 12 + 32). */
static int
logd_vkey(struct logd *d, char *err, size_t errlen)
{
	struct kt_bytes spki = hsm_key_spki(d->key);
	struct kt_buf b;
	int rc;

	if (hsm_key_alg(d->key) != HSM_ED25519 || spki.len != 44) {
		snprintf(err, errlen, "log key %s is not an Ed25519 key",
		    d->conf.log_key_label);
		return KT_EINVAL;
	}
	rc = kt_note_vkey_init(d->conf.origin, strlen(d->conf.origin),
	    KT_NOTE_ED25519, spki.p + 12, &d->signer.key);
	if (rc != KT_OK) {
		snprintf(err, errlen, "origin %s is not a valid key name",
		    d->conf.origin);
		return rc;
	}
	d->signer.sign = logd_hsm_sign;
	d->signer.ctx = d;
	d->api.log_vkey = d->signer.key;
	kt_buf_init(&b, sizeof(d->api.vkey_str) - 1);
	rc = kt_note_vkey_format(&d->signer.key, &b);
	if (rc == KT_OK) {
		memcpy(d->api.vkey_str, b.p, b.len);
		d->api.vkey_str[b.len] = 0;
	}
	kt_buf_free(&b);
	return rc;
}

static void
logd_banner(const struct logd *d, uint64_t size)
{
	const struct conf *c = &d->conf;

	fprintf(stderr,
	    "\n"
	    "keytrail-logd is serving the log %s\n"
	    "  listening   http://%s:%u/  (tree size %llu)\n"
	    "  log key     %s\n"
	    "  tokens      %s/tokens/<principal>  (admin, ci, alice, bob)\n"
	    "\n"
	    "Sign a file (key \"default\"; \"release\" waits for alice or "
	    "bob to approve):\n"
	    "  LOG=http://%s:%u T=%s/tokens\n"
	    "  curl -s -H \"Authorization: Bearer $(cat $T/ci)\" $LOG/v1/sign "
	    "\\\n"
	    "    -d '{\"key\":\"default\",\"digest\":\"'$(sha256sum FILE "
	    "| cut -c1-64)'\",\n"
	    "         \"artifact\":{\"name\":\"FILE\"}}' > FILE.json\n"
	    "  jq -r .signature FILE.json | base64 -d > FILE.sig; "
	    "jq -r .proof FILE.json > FILE.tlog-proof\n"
	    "Verify it with the public key from $LOG/v1/keys:\n"
	    "  curl -s $LOG/v1/keys | jq -r '.keys[] | "
	    "select(.label==\"default\").spki' |\n"
	    "    base64 -d | openssl pkey -pubin -inform DER -out "
	    "default.pem\n"
	    "  openssl dgst -sha256 -verify default.pem -signature FILE.sig "
	    "FILE\n"
	    "Approve a release signature: curl -s -X POST -H "
	    "\"Authorization: Bearer $(cat $T/alice)\" \\\n"
	    "    $LOG/v1/requests/<request>/approve\n"
	    "See docs/api.md.\n\n",
	    c->origin, c->listen_host, c->listen_port, (unsigned long long)size,
	    d->api.vkey_str, c->data_dir, c->listen_host, c->listen_port,
	    c->data_dir);
}

/*
 * The event loop.  With epoll, libevent's change list folds the read and
 * write interest changes a request makes into at most one epoll_ctl per
 * descriptor and loop turn (it must not be used with dup'd descriptors,
 * which the daemon never has).
 */
static struct event_base *
logd_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	if (cfg == NULL)
		return NULL;
	(void)event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "upgrade-storage", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct logd *d;
	const char *data = NULL, *listen = NULL, *config = NULL;
	char dir[PATH_MAX], err[512] = "";
	int check = 0, upgrade = 0, ch, rc = 1;
	struct hsm_config hc;
	struct http_limits lim;
	struct store_rd *rd;
	struct kt_buf note;
	uint64_t size = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			data = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = 1;
			break;
		case 'u':
			upgrade = 1;
			break;
		case 'q':
			log_set_quiet(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (data == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return 1;
	kt_buf_init(&note, KT_NOTE_MAX);
	if (config == NULL && !check && !upgrade) {
		int need = setup_needed(data, err, sizeof(err));

		if (need < 0)
			goto fail;
		if (need == 1) {
			log_info(
			    "%s is empty: setting up a development log", data);
			if (setup_dev(data,
				listen ? listen : LOGD_DEFAULT_LISTEN,
				LOGD_DEFAULT_MODULE, err, sizeof(err)) != 0)
				goto fail;
		}
	}
	if (realpath(data, dir) == NULL) {
		snprintf(err, sizeof(err), "%s: %s", data, strerror(errno));
		goto fail;
	}
	if (conf_load(dir, config, &d->conf, err, sizeof(err)) != KT_OK)
		goto fail;
	if (config != NULL &&
	    snprintf(d->config, sizeof(d->config), "%s", config) >=
		(int)sizeof(d->config)) {
		snprintf(err, sizeof(err), "--config: path too long");
		goto fail;
	}
	d->listen_flag = listen != NULL;
	{
		/*
		 * The policy clock hook (api_now()): only test builds take
		 * it, and a production build refuses to start rather than
		 * ignore it silently.
		 */
		const char *clock = getenv("KEYTRAIL_TEST_CLOCK");

		if (clock != NULL && clock[0] != 0) {
#ifdef KT_TEST_HOOKS
			if (snprintf(d->api.test_clock,
				sizeof(d->api.test_clock), "%s",
				clock) >= (int)sizeof(d->api.test_clock)) {
				snprintf(err, sizeof(err),
				    "KEYTRAIL_TEST_CLOCK: path too long");
				goto fail;
			}
			log_warn("KEYTRAIL_TEST_CLOCK is set: the policy clock "
				 "is shifted by the seconds in %s",
			    d->api.test_clock);
#else
			snprintf(err, sizeof(err),
			    "KEYTRAIL_TEST_CLOCK is set, but this build has no "
			    "test hooks");
			goto fail;
#endif
		}
	}
	if (listen != NULL &&
	    conf_parse_listen(listen, d->conf.listen_host,
		sizeof(d->conf.listen_host), &d->conf.listen_port) != KT_OK) {
		snprintf(err, sizeof(err), "--listen: must be host:port");
		goto fail;
	}
	if (policy_load_file(
		d->conf.policy_file, &d->api.policy, err, sizeof(err)) != KT_OK)
		goto fail;
	if (check) {
		printf("keytrail-logd: configuration and policy %s OK\n",
		    policy_sha256(d->api.policy));
		rc = 0;
		goto out;
	}
	if (upgrade) {
		if (store_upgrade(dir, d->conf.origin, d->conf.map_size, err,
			sizeof(err)) != KT_OK)
			goto fail;
		printf("keytrail-logd: log storage is at schema %d\n",
		    STORE_SCHEMA_VERSION);
		rc = 0;
		goto out;
	}
	if (policy_throttle_new(
		POLICY_THROTTLE_PEERS_DEFAULT, &d->api.throttle) != KT_OK ||
	    policy_rate_new(POLICY_RATE_PAIRS_DEFAULT, &d->api.rate) != KT_OK) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}

	memset(&hc, 0, sizeof(hc));
	hc.module = d->conf.hsm_module;
	hc.token_label = d->conf.hsm_token;
	hc.pin_file = d->conf.hsm_pin_file;
	hc.softhsm_conf =
	    d->conf.hsm_softhsm_conf[0] ? d->conf.hsm_softhsm_conf : NULL;
	hc.max_sessions = 2;
	hc.session_copies = d->conf.hsm_session_copies;
	if (hsm_open(&hc, &d->hsm, err, sizeof(err)) != KT_OK ||
	    hsm_find(d->hsm, d->conf.log_key_label, &d->key, err,
		sizeof(err)) != KT_OK ||
	    logd_vkey(d, err, sizeof(err)) != KT_OK)
		goto fail;
	if (store_open(dir, d->conf.origin, d->conf.map_size, &d->st, err,
		sizeof(err)) != KT_OK)
		goto fail;
	store_set_ixbuf_entries(d->st, d->conf.ixbuf_entries);
	if (store_init_checkpoint(d->st, logd_sign_checkpoint, d, NULL, err,
		sizeof(err)) != KT_OK)
		goto fail;

	d->api.st = d->st;
	if (api_log_policy_now(
		&d->api, logd_sign_checkpoint, d, err, sizeof(err)) != KT_OK)
		goto fail;
	/* The signing keys: a token of their own, named in the config. */
	if (d->conf.hsm_keys_token[0] != 0) {
		hc.token_label = d->conf.hsm_keys_token;
		if (hsm_open(&hc, &d->keys_hsm, err, sizeof(err)) != KT_OK ||
		    sign_init(&d->api, d->keys_hsm, logd_sign_checkpoint, d,
			err, sizeof(err)) != KT_OK)
			goto fail;
	}

	if (evthread_use_pthreads() != 0 ||
	    (d->base = logd_base_new()) == NULL) {
		snprintf(err, sizeof(err), "cannot start the event loop");
		goto fail;
	}
	if (seq_new(d->base, d->st, logd_sign_checkpoint, d, d->conf.batch_max,
		d->conf.batch_interval_us, &d->seq) != KT_OK) {
		snprintf(err, sizeof(err), "cannot start the sequencer");
		goto fail;
	}
	{
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		/*
		 * One worker per core: HSM signing and signature checks
		 * are the CPU-heavy steps; the HTTP and sequencer threads
		 * mostly wait.  The workers run at a lower priority, so a
		 * woken sequencer or HTTP thread never queues behind them:
		 * every request's latency, and with it the throughput a
		 * given number of clients gets, depends on those two.
		 */
		if (pool_new(d->base, ncpu > 1 ? (unsigned)ncpu : 1,
			LOGD_WORKER_NICE, &d->api.pool) != KT_OK) {
			snprintf(err, sizeof(err),
			    "cannot start the verification threads");
			goto fail;
		}
		seq_set_feed(d->seq, logd_pool_busy, d->api.pool);
	}
	/* 64 MiB of tiles and bundles: hundreds of full bundles. */
	if (tilecache_new(64u << 20, &d->api.tiles) != KT_OK) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	d->api.conf = &d->conf;
	d->api.st = d->st;
	d->api.log_hsm = d->hsm;
	d->api.seq = d->seq;
	lim.max_body = d->conf.max_body;
	lim.max_headers = d->conf.max_headers;
	lim.max_connections = d->conf.max_connections;
	lim.timeout_s = d->conf.timeout_s;
	if (http_new(d->base, &lim, api_routes, api_nroutes, &d->api,
		d->conf.listen_host, d->conf.listen_port, &d->http, err,
		sizeof(err)) != KT_OK)
		goto fail;
	d->api.http = d->http;

	signal(SIGPIPE, SIG_IGN);
	d->sigterm = evsignal_new(d->base, SIGTERM, logd_on_stop, d);
	d->sigint = evsignal_new(d->base, SIGINT, logd_on_stop, d);
	d->sighup = evsignal_new(d->base, SIGHUP, logd_on_hup, d);
	if (d->sigterm == NULL || d->sigint == NULL || d->sighup == NULL ||
	    evsignal_add(d->sigterm, NULL) != 0 ||
	    evsignal_add(d->sigint, NULL) != 0 ||
	    evsignal_add(d->sighup, NULL) != 0) {
		snprintf(err, sizeof(err), "cannot install signal handlers");
		goto fail;
	}
	if (store_rd_begin(d->st, &rd) == KT_OK) {
		size = store_rd_size(rd);
		store_rd_end(rd);
	}
	logd_banner(d, size);
	log_info("serving %s on %s:%u", d->conf.origin, d->conf.listen_host,
	    d->conf.listen_port);
	event_base_dispatch(d->base);
	log_info("stopped");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "keytrail-logd: %s\n", err[0] ? err : "failed");
out:
	/*
	 * Jobs still verifying finish (and answer 503) before the server
	 * goes.  The sequencer stops asking the pool about them first (it
	 * may still be running on a failed start).
	 */
	if (d->seq != NULL)
		seq_set_feed(d->seq, NULL, NULL);
	pool_free(d->api.pool);
	d->api.pool = NULL;
	if (d->seq != NULL)
		seq_stop(d->seq);
	if (d->http != NULL)
		http_free(d->http);
	api_keys_free(&d->api);
	tilecache_free(d->api.tiles);
	policy_free(d->api.policy);
	policy_throttle_free(d->api.throttle);
	policy_rate_free(d->api.rate);
	if (d->sigterm)
		event_free(d->sigterm);
	if (d->sigint)
		event_free(d->sigint);
	if (d->sighup)
		event_free(d->sighup);
	seq_free(d->seq);
	if (d->base != NULL)
		event_base_free(d->base);
	store_close(d->st);
	sign_free(&d->api);
	hsm_close(d->keys_hsm);
	hsm_key_free(d->key);
	hsm_close(d->hsm);
	kt_buf_free(&note);
	free(d);
	return rc;
}
