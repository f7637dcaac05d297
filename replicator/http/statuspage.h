/*
 * statuspage.h — the status page, GET / (statuspage.c).
 */
#ifndef SYNCQD_STATUSPAGE_H
#define SYNCQD_STATUSPAGE_H

#include <jansson.h>

/*
 * The status document of GET /api/sync/status (a client's, role "client",
 * or a hub's, role "hub") as a small HTML page that refreshes itself every
 * few seconds. Any field may be missing or null; NULL or a non-object
 * gives a page that says so. Returns a malloc'd NUL-terminated string the
 * caller frees; status is not changed or released.
 */
char	   *status_page_html(json_t *status);

#endif							/* SYNCQD_STATUSPAGE_H */
