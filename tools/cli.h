/*
 * The keytrail command-line tool: one file per subcommand, each with an
 * entry point taking the arguments after its name (argv[0] is the name).
 * Subcommands print one readable line and return non-zero on failure.
 */
#ifndef KT_CLI_H
#define KT_CLI_H

#include <stddef.h>

int bench_merkle(int argc, char **argv);
int bench_append(int argc, char **argv);
int bench_sign(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_mirror(int argc, char **argv);

/*
 * Reads a token or PIN file: first line, at most cap-1 bytes.  The caller
 * wipes out (kt_wipe) when done with it.
 */
int cli_read_secret(const char *path, char *out, size_t cap);

#endif
