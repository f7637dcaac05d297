/*
 * log.c — one line per event on stderr (base.h): time, level, message.
 *
 *   logmsg          write one line, if its level is wanted
 *   log_level_set   --log-level: the least level written
 *   log_open        --log-file: point stderr at a file (again on SIGHUP)
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

LogLevel	log_level = LOG_INFO;

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
