/*
 * connect.c — which link --online names (sync.h): a postgresql:// URL or a
 * libpq conninfo reaches the hub directly (hub/link_pg.c), an http:// or
 * https:// URL through `syncqd serve` (link/link_http.c).
 *
 *   online_is_libpq   is it a libpq target?
 *   online_is_http    is it the URL of a serve?
 *   online_has_password  does a libpq target hold a password?
 *   sync_connect      connect to the hub it names
 */
#include "base/base.h"
#include "hub/hub.h"
#include "hub/link_pg.h"
#include "link/link_http.h"
#include "sync/sync.h"

#include <string.h>

bool
online_is_http(const char *online)
{
	return strncmp(online, "http://", 7) == 0 || strncmp(online, "https://", 8) == 0;
}

bool
online_is_libpq(const char *online)
{
	return strncmp(online, "postgresql://", 13) == 0 || strncmp(online, "postgres://", 11) == 0 ||
		(strchr(online, '=') != NULL && !online_is_http(online));
}

bool
online_has_password(const char *online)
{
	return online_is_libpq(online) && hub_conninfo_has_password(online);
}

/*
 * Connect to the hub for client client_id; listen: watch for the hub's
 * wake-ups too.
 */
Link *
sync_connect(const char *online, const char *client_id, bool listen, char *err, size_t errlen)
{
	if (online_is_http(online))
		return link_http_connect(online, client_id, listen, err, errlen);
	return link_pg_connect(online, listen, err, errlen);
}
