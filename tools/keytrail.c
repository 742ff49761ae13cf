/*
 * keytrail: the client CLI.  Dispatches to one subcommand per file.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: keytrail <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  keys list|show|create|import-cert|revoke|csr [options]\n"
	    "        the signing keys: list them, show one, make one in the "
	    "HSM,\n"
	    "        attach a certificate, revoke one, or get a CSR signed "
	    "in\n"
	    "        the HSM; every change is logged (keytrail keys --help)\n"
	    "  mirror --url URL --out DIR [--vkey VKEY]\n"
	    "        copy a log's checkpoint, tiles and entry bundles into "
	    "DIR,\n"
	    "        verifying every tile against its parent and the signed "
	    "root;\n"
	    "        DIR behind any static web server is a read replica\n"
	    "  bench merkle\n"
	    "        Merkle tree building and proof checks against raw "
	    "SHA-256\n"
	    "  bench append --url URL --data DIR [-n N] [-c CONNS]\n"
	    "        durable appends through POST /v1/entries, with latency\n"
	    "        percentiles and every returned proof verified\n"
	    "  bench sign --url URL --data DIR [--key LABEL] [-n N] [-c "
	    "CONNS]\n"
	    "        signatures through POST /v1/sign, every signature and\n"
	    "        proof verified\n"
	    "\n"
	    "See docs/ for the details of each command.\n");
}

int
cli_read_secret(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	/* Unbuffered: no copy of the secret stays in a stdio buffer. */
	setvbuf(f, NULL, _IONBF, 0);
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	return out[0] ? 0 : -1;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "keys") == 0)
		return cmd_keys(argc - 1, argv + 1);
	if (strcmp(argv[1], "mirror") == 0)
		return cmd_mirror(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0 && argc >= 3) {
		if (strcmp(argv[2], "merkle") == 0)
			return bench_merkle(argc - 2, argv + 2);
		if (strcmp(argv[2], "append") == 0)
			return bench_append(argc - 2, argv + 2);
		if (strcmp(argv[2], "sign") == 0)
			return bench_sign(argc - 2, argv + 2);
	}
	fprintf(stderr, "keytrail: unknown command (try keytrail --help)\n");
	return 2;
}
