/*
 * util.c — memory that never returns NULL, logging, clocks, the digest.
 */
#include "syncqd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

LogLevel	log_level = LOG_INFO;

static void
out_of_memory(void)
{
	fputs("syncqd: out of memory\n", stderr);
	exit(1);
}

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory();
	return q;
}

char *
xstrdup(const char *s)
{
	size_t		n = strlen(s);
	char	   *p = xmalloc(n + 1);

	memcpy(p, s, n + 1);
	return p;
}

/* --log-level: set log_level from its name; -1 if it is none. */
int
log_level_set(const char *name)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
		{
			log_level = (LogLevel) i;
			return 0;
		}
	return -1;
}

/*
 * libmicrohttpd's messages (about clients that misbehave, mostly: not worth
 * a warning each), at debug level; cls is what to say they are about.
 */
void
log_mhd(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];
	size_t		n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	logmsg(LOG_DEBUG, "%s: %s", (const char *) cls, msg);
}

/*
 * One line per event on stderr: time, level, message. The line is written
 * with one write(), so lines from the control thread never interleave.
 */
void
logmsg(LogLevel level, const char *fmt,...)
{
	static const char *names[] = {"debug", "info", "warning", "error"};
	char		line[4096];
	struct timespec ts;
	struct tm	tm;
	va_list		ap;
	int			n;
	size_t		len;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int) strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t) n, ".%03ldZ syncqd %s: ",
				  ts.tv_nsec / 1000000, names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	va_end(ap);
	/* one line: a library's multi-line message is folded */
	len = (size_t) n;
	for (size_t i = (size_t) n; line[i]; i++)
	{
		if (line[i] == '\n' || line[i] == '\r')
		{
			while (line[i + 1] == '\n' || line[i + 1] == '\t' || line[i + 1] == ' ')
				i++;
			if (line[i + 1] == '\0')
				break;
			line[len++] = ' ';
		}
		else
			line[len++] = line[i];
	}
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	for (size_t off = 0; off < len;)
	{
		ssize_t		w = write(STDERR_FILENO, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t) w;
	}
}

/*
 * Point stderr at path (appending), for --log-file and its reopening on
 * SIGHUP. On failure stderr stays where it was and err says why.
 */
int
log_open(const char *path, char *err, size_t errlen)
{
	int			fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
	{
		snprintf(err, errlen, "cannot open log file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (fd != STDERR_FILENO)
	{
		if (dup2(fd, STDERR_FILENO) < 0)
		{
			snprintf(err, errlen, "cannot redirect stderr to \"%s\": %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Wall clock, microseconds since 1970. */
int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A clock for deadlines: never jumps with the wall clock. */
int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A uniformly random double in [0, 1), for backoff jitter. */
double
jitter01(void)
{
	static uint64_t state;

	if (state == 0)
		state = (uint64_t) now_us() ^ ((uint64_t) getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
	/* xorshift64* */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return (double) ((state * UINT64_C(0x2545f4914f6cdd1d)) >> 11) / 9007199254740992.0;
}

uint64_t
digest_step(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64_C(0x100000001b3);
	}
	/* a separator, so that ("ab","c") and ("a","bc") differ */
	h ^= 0xff;
	h *= UINT64_C(0x100000001b3);
	return h;
}
