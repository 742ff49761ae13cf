/*
 * keytrail-logd: the key lifecycle (DESIGN.md sections 4 and 5).
 *
 * POST /v1/keys (role admin) changes the key registry, one `key` entry per
 * change, committed with the registry record in one write transaction:
 *   "create"       a new key pair inside the signing keys' HSM token;
 *   "import"       an external public key;
 *   "certificate"  an X.509 certificate for a registered key;
 *   "revoke"       a key that must never sign again.
 * POST /v1/keys/<id>/csr (role admin) answers a PKCS#10 request for an
 * HSM key, signed inside the HSM.  It is not logged: it changes no key,
 * and the certificate a CA makes from it is logged when it is attached.
 *
 * docs/api.md describes the requests and answers, docs/operations.md the
 * lifecycle of a key.
 */
#ifndef LOGD_KEYS_H
#define LOGD_KEYS_H

#include "api.h"

/* Handlers (the route table in api.c names them). */
void keys_post(struct http_req *r, void *arg);
void keys_post_csr(struct http_req *r, void *arg);

#endif
