/*
 * link_http.h — the hub reached through `syncqd serve` over HTTP(S)
 * (link_http.c, docs/http.md).
 */
#ifndef SYNCQD_LINK_HTTP_H
#define SYNCQD_LINK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "link/link.h"

/* --cacert: the CA certificates serve's certificate is checked against. */
extern const char *link_http_cacert;

/* Connect to serve at url for client client_id (and say hello); listen:
 * long-poll for the hub's wake-ups too. */
Link	   *link_http_connect(const char *url, const char *client_id, bool listen,
							  char *err, size_t errlen);

#endif							/* SYNCQD_LINK_HTTP_H */
