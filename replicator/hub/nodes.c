/*
 * nodes.c — which user a client node id belongs to (sync_http_nodes;
 * docs/security.md).
 *
 *   hub_bind_node   bind a node id to its user the first time the hub sees
 *                   it, over either transport, and say whose it is
 *
 * A node id is bound when it is first seen: over HTTP to the serve user
 * that names it, over libpq to "libpq:" and the database role (a user name
 * of serve never holds a ':', so the two cannot meet). The hub's own node
 * id is never bound to anyone, and a node the hub already knows of
 * (sync_clients) without a binding is not bound over HTTP: it was seen
 * before bindings were kept, or the admin acted for it.
 */
#include "base/base.h"
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Bind node_id to user (NULL: the libpq client of this connection) unless
 * it is bound already. *owner gets the user it belongs to now (malloc'd),
 * NULL when it may not be bound to anyone (the hub's own node id, or a node
 * seen before without a binding). -1 on a hub error.
 */
int
hub_bind_node(Hub *h, const char *node_id, const char *user, char **owner,
			  char *err, size_t errlen)
{
	const char *params[2] = {node_id, user};
	PGresult   *res;

	*owner = NULL;
	if (user == NULL)
		res = hub_prep(h, "WITH b AS (INSERT INTO sync_http_nodes (node_id, http_user)"
					  "   SELECT $1::uuid, 'libpq:' || session_user WHERE $1::uuid <> sync_node_id()"
					  "   ON CONFLICT (node_id) DO NOTHING RETURNING http_user)"
					  " SELECT http_user FROM b UNION ALL"
					  " SELECT http_user FROM sync_http_nodes WHERE node_id = $1::uuid",
					  1, params, PGRES_TUPLES_OK, err, errlen);
	else
		res = hub_prep(h, "WITH b AS (INSERT INTO sync_http_nodes (node_id, http_user)"
					  "   SELECT $1::uuid, $2 WHERE $1::uuid <> sync_node_id()"
					  "     AND NOT EXISTS (SELECT 1 FROM sync_clients c WHERE c.node_id = $1::uuid)"
					  "   ON CONFLICT (node_id) DO NOTHING RETURNING http_user)"
					  " SELECT http_user FROM b UNION ALL"
					  " SELECT http_user FROM sync_http_nodes WHERE node_id = $1::uuid",
					  2, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0)
		*owner = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}
