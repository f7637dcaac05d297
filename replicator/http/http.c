/*
 * http.c — the one libmicrohttpd layer of syncqd (http.h).
 *
 *   log_mhd   libmicrohttpd's messages, to the log
 */
#include "base/base.h"
#include "http/http.h"

#include <stdio.h>
#include <string.h>

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
