/*
 * base.h — what every room of syncqd stands on: memory that never comes
 * back NULL, one log, two clocks, and the flags the signals set.
 *
 *   util.c      xmalloc, xcalloc, xrealloc, xstrdup, xstrndup; now_us,
 *               mono_us, nap_us, utf8_cut, jitter01, arg_take_secret
 *   log.c       logmsg, log_open, log_level_set
 *   signals.c   signals_install; stop_requested, reopen_requested
 *
 * Growable buffers are in buf.h, base64 and hex in encode.h.
 */
#ifndef SYNCQD_BASE_H
#define SYNCQD_BASE_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncq_contract.h"

#define SYNCQD_VERSION SYNCQ_VERSION

/* ---- util.c: memory (out of memory ends the process) and clocks ---------- */

void	   *xmalloc(size_t n);
void	   *xcalloc(size_t n, size_t size);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
char	   *xstrndup(const char *s, size_t n);

/* Wall clock, and a clock for deadlines that never jumps; microseconds. */
int64_t		now_us(void);
int64_t		mono_us(void);

/* Sleep for us microseconds; a signal (a stop request) cuts it short. */
void		nap_us(int64_t us);

/* How much of s to print in at most max bytes, not cutting a UTF-8
 * character: printf("%.*s", utf8_cut(s, max), s). */
int			utf8_cut(const char *s, size_t max);

/* A uniformly random double in [0, 1), for backoff jitter. */
double		jitter01(void);

/* A copy of a command-line argument holding a secret, overwritten with '*'
 * where it stands (/proc/PID/cmdline). */
char	   *arg_take_secret(char *arg);

/* ---- log.c: one line per event on stderr --------------------------------- */

typedef enum
{
	LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR
} LogLevel;

extern LogLevel log_level;
void		logmsg(LogLevel level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			log_open(const char *path, char *err, size_t errlen);
int			log_level_set(const char *name);

/* ---- signals.c: handlers only set these; the loops act on them ----------- */

/* Set by SIGTERM/SIGINT: finish the work at hand, then exit 0. */
extern volatile sig_atomic_t stop_requested;

/* Set by SIGHUP: reopen the log file. */
extern volatile sig_atomic_t reopen_requested;

/* SIGTERM and SIGINT stop, SIGHUP reopens the log, SIGPIPE is ignored. */
void		signals_install(void);

#endif							/* SYNCQD_BASE_H */
