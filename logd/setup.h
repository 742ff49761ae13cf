/*
 * First start on an empty data directory: the development setup of
 * DESIGN.md section 5 (SoftHSM token, log key, principals, tokens,
 * config).  Everything it writes is reused by later starts.
 */
#ifndef LOGD_SETUP_H
#define LOGD_SETUP_H

#include <stddef.h>

/* Returns 1 if dir is missing or empty (setup needed), 0 if it holds a
 * config, -1 (err set) if it holds something else. */
int setup_needed(const char *dir, char *err, size_t errlen);

/*
 * Creates the development setup in dir with the daemon listening on
 * listen.  Returns 0, or -1 with one readable line in err; a failed setup
 * leaves files behind for inspection but no config file, so the next
 * start reports it instead of using half a setup.
 */
int setup_dev(const char *dir, const char *listen, const char *module,
    char *err, size_t errlen);

#endif
