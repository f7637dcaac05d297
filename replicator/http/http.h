/*
 * http.h — the one libmicrohttpd layer of syncqd (http.c), under the
 * control API (control.c) and `syncqd serve` (serve.c). Only http/ includes
 * microhttpd.h.
 */
#ifndef SYNCQD_HTTP_H
#define SYNCQD_HTTP_H

#include <stdarg.h>

/* libmicrohttpd's own messages, to the log at debug level; cls names the
 * server ("control API", "serve"). */
void		log_mhd(void *cls, const char *fmt, va_list ap);

#endif							/* SYNCQD_HTTP_H */
