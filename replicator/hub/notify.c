/*
 * notify.c — the hub's wake-ups on channel sync_queue, both ways (hub.h).
 *
 *   hub_consume        read what came; each wake-up of another session is
 *                      handed to a callback: a sync request (sync_trigger())
 *                      or committed immediate changes, with the node whose
 *                      upload made them ("" for the hub's own)
 *   hub_notify_upload  announce an upload's immediate changes
 *
 * The one NOTIFY consumer: the libpq link counts the wake-ups
 * (hub/link_pg.c), serve's listener keeps who caused each (http/serve.c).
 */
#include "base/base.h"
#include "hub/hub.h"

#include <stdio.h>
#include <string.h>

/*
 * Read what the hub sent while we were not asking, and hand each wake-up
 * of channel sync_queue from another session (our own uploads NOTIFY too)
 * to on_wake: "request" is sync_trigger(); anything else is committed
 * immediate changes, "upload:<node id>" those of that node's upload.
 * -1 if the connection is gone.
 */
int
hub_consume(Hub *h, HubWakeFn on_wake, void *arg, char *err, size_t errlen)
{
	PGnotify   *n;
	int			me = PQbackendPID(h->conn);

	if (!PQconsumeInput(h->conn))
	{
		hub_set_err(err, errlen, "hub connection lost", h->conn);
		return -1;
	}
	while ((n = PQnotifies(h->conn)) != NULL)
	{
		if (n->be_pid != me && strcmp(n->relname, SYNCQ_CHANNEL) == 0)
		{
			if (strcmp(n->extra, SYNCQ_PAYLOAD_REQUEST) == 0)
				on_wake(arg, HUB_WAKE_REQUEST, "");
			else
				on_wake(arg, HUB_WAKE_CHANGE,
						strncmp(n->extra, SYNCQ_PAYLOAD_UPLOAD, strlen(SYNCQ_PAYLOAD_UPLOAD)) == 0 ?
						n->extra + strlen(SYNCQ_PAYLOAD_UPLOAD) : "");
		}
		PQfreemem(n);
	}
	if (PQstatus(h->conn) != CONNECTION_OK)
	{
		hub_set_err(err, errlen, "hub connection lost", h->conn);
		return -1;
	}
	return 0;
}

/*
 * Wake the other clients after an upload with immediate changes: payload
 * "upload:<node id>", so that serve's long poll need not wake the uploader
 * itself (a libpq client skips its own session's NOTIFYs anyway).
 */
int
hub_notify_upload(Hub *h, const char *client_id, char *err, size_t errlen)
{
	char		payload[64];
	const char *params[1] = {payload};
	PGresult   *res;

	snprintf(payload, sizeof(payload), "%s%s", SYNCQ_PAYLOAD_UPLOAD, client_id);
	res = hub_prep(h, "SELECT pg_notify('" SYNCQ_CHANNEL "', $1)", 1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

