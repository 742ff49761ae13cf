/*
 * Fuzzes the policy parser: any bytes either parse into a policy whose
 * document is exactly those bytes, or are refused with an error message;
 * a parsed policy must answer decisions without crashing.
 */
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL;
	struct policy_sign_request req;
	struct policy_decision d;
	struct policy_approval ap;
	char err[256];
	struct kt_bytes doc;

	if (policy_parse(data, size, &p, err, sizeof(err)) != KT_OK) {
		if (err[0] == 0)
			abort();
		return 0;
	}
	doc = policy_document(p);
	if (doc.len != size || memcmp(doc.p, data, size) != 0 ||
	    strlen(policy_sha256(p)) != 64)
		abort();
	memset(&req, 0, sizeof(req));
	req.principal = "ci";
	req.key = "default";
	req.alg = "ecdsa-p256-sha256";
	req.key_state = POLICY_KEY_ACTIVE;
	req.artifact = "a.tar.gz";
	req.now = 1800000000;
	(void)!policy_check_sign(p, &req, &d);
	(void)!policy_check_approval(p, "release", "ci", "alice", NULL, 0, &ap);
	(void)!policy_authenticate(p, data, size < 64 ? size : 64);
	policy_free(p);
	return 0;
}
