/*
 * identity.c — a copied client file gets a node id of its own
 * (syncqd --reidentify; client.h, docs/replication.md).
 *
 *   client_reidentify   a new node id; pending changes move to it, and the
 *                       next sync is a first sync
 */
#include "base/base.h"
#include "client/client.h"

#include <stdio.h>
#include <string.h>

/* A fresh random (version 4) UUID. */
static int
new_uuid(char out[NODE_ID_LEN + 1])
{
	unsigned char b[16];
	FILE	   *f = fopen("/dev/urandom", "rb");

	if (f == NULL || fread(b, 1, sizeof(b), f) != sizeof(b))
	{
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
	snprintf(out, NODE_ID_LEN + 1,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
			 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/*
 * Give a copied client file a node id of its own: pending changes move to
 * the new id, positions are forgotten, so the next sync uploads them under
 * the new id and takes a first sync.
 */
int
client_reidentify(Client *cl, char *err, size_t errlen)
{
	char		id[NODE_ID_LEN + 1];
	sqlite3_stmt *st = NULL;
	int			rc;

	if (new_uuid(id) < 0)
	{
		snprintf(err, errlen, "cannot read /dev/urandom for a new node id");
		return -1;
	}
	if (sqlite3_exec(cl->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (sqlite3_prepare_v2(cl->db, "UPDATE sync_queue SET origin = ?1 WHERE origin = ?2", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cl->node_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto dberr;
	/* the capture triggers hold the node id: sync_reidentify rewrites them */
	if (sqlite3_prepare_v2(cl->db, "SELECT sync_reidentify(?1)", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_ROW)
		goto dberr;
	if (sqlite3_exec(cl->db, "DELETE FROM syncqd_state WHERE key IN ('up_seq', 'up_digest', 'up_hub_seq', 'down_snapshot', 'down_target', 'down_done');"
					 "DELETE FROM sync_versions;"
					 /* the original's changes the hub set aside are the original's */
					 "DELETE FROM sync_errors WHERE hub_seq < 0 AND ver_us <> 0; COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	logmsg(LOG_INFO, "node id of \"%s\" changed from %s to %s", cl->path, cl->node_id, id);
	memcpy(cl->node_id, id, sizeof(id));
	return 0;
dberr:
	snprintf(err, errlen, "client \"%s\": re-identifying: %s", cl->path, sqlite3_errmsg(cl->db));
	sqlite3_finalize(st);
	client_rollback(cl);
	return -1;
}

