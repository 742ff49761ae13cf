/*
 * Monotonic seconds: the clock of the benchmarks and of the HTTP client's
 * request timings.
 */
#ifndef KT_TOOLS_MONOTONIC_H
#define KT_TOOLS_MONOTONIC_H

#include <time.h>

static inline double
monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
