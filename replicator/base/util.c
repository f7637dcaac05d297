/*
 * util.c — memory that never comes back NULL, and clocks (base.h).
 *
 *   xmalloc, xcalloc, xrealloc   as malloc & co.; out of memory ends syncqd
 *   xstrdup, xstrndup            copies of strings
 *   now_us                       the wall clock, µs since 1970
 *   mono_us                      a clock for deadlines, never jumps
 *   nap_us                       sleep (a signal cuts it short)
 *   utf8_cut                     a prefix that ends between two characters
 *   jitter01                     a random double in [0, 1), for backoff
 *   arg_take_secret              a copy of a command-line argument, hidden there
 */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

char *
xstrndup(const char *s, size_t n)
{
	char	   *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
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

/*
 * The length of the longest prefix of s of at most max bytes that does not
 * end inside a UTF-8 character, for "%.*s": a message cut inside one is
 * text PostgreSQL refuses (invalid byte sequence for encoding "UTF8").
 */
int
utf8_cut(const char *s, size_t max)
{
	size_t		n = strnlen(s, max);

	if (n == max)
		while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
			n--;
	return (int) n;
}

void
nap_us(int64_t us)
{
	struct timespec ts = {(time_t) (us / 1000000), (long) (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
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

/*
 * A copy of arg, a command-line argument holding a secret, which is
 * overwritten with '*' where it stands: /proc/PID/cmdline (ps) no longer
 * shows it. Any local user could read it until now; the caller says so.
 */
char *
arg_take_secret(char *arg)
{
	char	   *copy = xstrdup(arg);

	memset(arg, '*', strlen(arg));
	return copy;
}
