/*
 * link_pg.h — the hub as a Link, reached over libpq (link_pg.c).
 */
#ifndef SYNCQD_LINK_PG_H
#define SYNCQD_LINK_PG_H

#include <stdbool.h>
#include <stddef.h>

#include "link/link.h"

/* Connect to the hub at conninfo; listen: watch for its wake-ups too. */
Link	   *link_pg_connect(const char *conninfo, bool listen, char *err, size_t errlen);

#endif							/* SYNCQD_LINK_PG_H */
