/*
 * stderr logging.  Each line is written with one write(2) so lines from
 * the HTTP thread and the sequencer thread never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 1024

static volatile int log_quiet;

void
log_set_quiet(int quiet)
{
	log_quiet = quiet;
}

static void log_line(const char *level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_line(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int k;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
	    ts.tv_nsec / 1000000, level);
	if (k < 0)
		return;
	n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (k < 0)
		return;
	n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	/* Control characters from requests must not forge log lines. */
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)line[i] < 0x20)
			line[i] = '?';
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_quiet)
		return;
	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("warn", fmt, ap);
	va_end(ap);
}

void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("error", fmt, ap);
	va_end(ap);
}
