/*
 * The HTTP API handlers (DESIGN.md section 5): the read API served from
 * short read sessions of the store, and the write API, which validates and
 * authenticates a request, builds its entry, and hands it to the
 * sequencer.  Handlers never block and never open a write transaction.
 */
#ifndef LOGD_API_H
#define LOGD_API_H

#include <stddef.h>

#include "conf.h"
#include "http.h"
#include "keytrail/note.h"
#include "seq.h"
#include "store.h"
#include "keytrail/sig.h"
#include "pool.h"

/* Slots of the key cache (direct-mapped by key ID). */
#define API_KEY_CACHE 1024

/* A registered key as the write path needs it. */
struct api_key {
	char id[65]; /* "" when the slot is empty */
	int active;
	struct kt_pubkey *pk;
};

struct api {
	struct conf *conf;
	struct store *st;
	struct seq *seq;
	struct pool *pool;
	struct tilecache *tiles;
	struct api_key keys[API_KEY_CACHE];
	struct kt_note_vkey log_vkey; /* the checkpoint key */
	char vkey_str[512];	      /* its vkey string */
	char policy_hex[65]; /* SHA-256 of the policy (principals) in force */
	struct http *http;
	int shutting_down;
	/* Counters for /metrics. */
	uint64_t entries_submitted;
	uint64_t auth_failures;
	double latency_sum;
	uint64_t latency_hist[12]; /* <=1ms, 2, 5, 10, 20, 50, 100, ... */
	uint64_t latency_count;
};

/* Frees the key cache. */
void api_keys_free(struct api *a);

/* The route table (static; lives as long as the program). */
extern const struct http_route api_routes[];
extern const size_t api_nroutes;

#endif
