/*
 * The daemon's log: one line per event on stderr, with a UTC timestamp
 * and a level.  Never pass a secret (PIN, token) to these functions.
 */
#ifndef LOGD_LOG_H
#define LOGD_LOG_H

#if defined(__GNUC__) || defined(__clang__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)
#endif

void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_err(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Suppresses info lines (for benchmarks); warnings and errors stay. */
void log_set_quiet(int quiet);

#endif
