/*
 * sync.c — one full sync between a client file and the hub:
 * up (local changes to the hub), then down (the hub's changes, or a first
 * sync). docs/replication.md is the model.
 */
#include "syncqd.h"
#include "client.h"
#include "hub.h"
#include "sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_ROWS 5000
#define UPLOAD_PAGE 5000

static void
load_hub_types(Hub *h, HubTypes *ht)
{
	for (int i = 0; i < h->ntables; i++)
		for (int c = 0; c < h->tables[i].ncols; c++)
			hubtypes_add(ht, h->tables[i].name, h->tables[i].cols[c], h->tables[i].types[c]);
}

/*
 * Up: send pending local changes a page at a time in one hub transaction;
 * once the hub committed, drop them locally with the acknowledgement.
 */
static int
sync_up(Hub *h, Client *cl, SyncStats *st, char *err, size_t errlen)
{
	int64_t		ack_seq,
				new_seq;
	uint64_t	ack_digest,
				new_digest;
	UploadStats us = {0};
	ChangeList	page = {0};
	int			n;

	client_get_up(cl, &ack_seq, &ack_digest);
	if (client_pending_open(cl, ack_seq, err, errlen) < 0)
		return -1;
	n = client_pending_next(cl, &page, UPLOAD_PAGE, err, errlen);
	if (n <= 0)
	{
		/* nothing to send (or a read error) */
		changes_free(&page);
		client_pending_close(cl);
		return n;
	}
	if (hub_upload_begin(h, client_node_id(cl), ack_seq, ack_digest, err, errlen) < 0)
	{
		st->clone = h->up.stats.clone;
		goto fail;
	}
	while (n > 0)
	{
		st->pending += n;
		if (hub_upload_chunk(h, &page, err, errlen) < 0)
		{
			st->clone = h->up.stats.clone;
			goto fail;
		}
		n = client_pending_next(cl, &page, UPLOAD_PAGE, err, errlen);
		if (n < 0)
		{
			hub_rollback(h);
			goto fail;
		}
	}
	client_pending_close(cl);
	changes_free(&page);
	if (hub_upload_end(h, &new_seq, &new_digest, &us, err, errlen) < 0)
	{
		st->clone = us.clone;
		return -1;
	}
	st->up_applied += us.applied;
	st->up_conflicts += us.conflicts;
	st->up_skipped += us.skipped;
	logmsg(LOG_DEBUG, "upload committed on the hub");
	if (client_ack_upload(cl, new_seq, new_digest, err, errlen) < 0)
		return -1;
	logmsg(LOG_DEBUG, "upload acknowledged locally");
	return 0;
fail:
	client_pending_close(cl);
	changes_free(&page);
	return -1;
}

/* Every tracked hub table must exist on the client with every hub column. */
static int
check_client_schema(Hub *h, Client *cl, char *err, size_t errlen)
{
	for (int i = 0; i < h->ntables; i++)
	{
		const HubTable *ht = &h->tables[i];
		ClientTable *t = client_table(cl, ht->name);

		if (t == NULL)
		{
			snprintf(err, errlen, "first sync: table \"%s\" is tracked on the hub but does not exist in \"%s\"; create it with the hub's columns",
					 ht->name, cl->path);
			return -1;
		}
		for (int c = 0; c < ht->ncols; c++)
			if (client_col(t, ht->cols[c]) < 0)
			{
				snprintf(err, errlen, "first sync: column \"%s\" of table \"%s\" exists on the hub but not in \"%s\"",
						 ht->cols[c], ht->name, cl->path);
				return -1;
			}
	}
	return 0;
}

/* First sync: the hub's tracked tables, as of one snapshot, replace ours. */
static int
sync_first(Hub *h, Client *cl, const HubTypes *types, SyncStats *st, char *err, size_t errlen)
{
	JObject		row;
	char		e[128];

	if (check_client_schema(h, cl, err, errlen) < 0)
		return -1;
	if (client_begin_apply(cl, err, errlen) < 0)
		return -1;
	for (int i = 0; i < h->ntables; i++)
	{
		const HubTable *ht = &h->tables[i];
		ClientTable *t = client_table(cl, ht->name);

		if (client_clear_table(cl, t, err, errlen) < 0 ||
			hub_table_open(h, ht, err, errlen) < 0)
			goto fail;
		for (;;)
		{
			PGresult   *res = hub_fetch(h, "syncq_snap", FETCH_ROWS, err, errlen);
			int			n;

			if (res == NULL)
				goto fail;
			n = PQntuples(res);
			for (int r = 0; r < n; r++)
			{
				const char *json = PQgetvalue(res, r, 0);

				if (jobj_parse(json, (size_t) PQgetlength(res, r, 0), &row, e, sizeof(e)) < 0)
				{
					snprintf(err, errlen, "first sync: a row of \"%s\" is not a JSON object (%s)", ht->name, e);
					PQclear(res);
					goto fail;
				}
				if (client_write_row(cl, t, false, &row, types, err, errlen) < 0)
				{
					jobj_free(&row);
					PQclear(res);
					goto fail;
				}
				jobj_free(&row);
				st->down_rows++;
			}
			PQclear(res);
			if (n < FETCH_ROWS)
				break;
		}
		if (hub_close_cursor(h, "syncq_snap", err, errlen) < 0)
			goto fail;
	}
	st->first_sync = true;
	return 0;
fail:
	client_rollback(cl);
	return -1;
}

/* Down: the hub's changes since our position, in one client transaction. */
static int
sync_down_changes(Hub *h, Client *cl, const char *pos, const HubTypes *types,
				  SyncStats *st, char *err, size_t errlen)
{
	if (hub_changes_open(h, pos, client_node_id(cl), err, errlen) < 0)
		return -1;
	if (client_begin_apply(cl, err, errlen) < 0)
		return -1;
	for (;;)
	{
		PGresult   *res = hub_fetch(h, "syncq_down", FETCH_ROWS, err, errlen);
		int			n;

		if (res == NULL)
			goto fail;
		n = PQntuples(res);
		for (int r = 0; r < n; r++)
		{
			Change		c;
			int			rc;

			if (change_init(&c, strtoll(PQgetvalue(res, r, 0), NULL, 10), PQgetvalue(res, r, 1),
							PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
							PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4),
							strtoll(PQgetvalue(res, r, 5), NULL, 10), PQgetvalue(res, r, 6),
							strcmp(PQgetvalue(res, r, 7), "immediate") == 0, err, errlen) < 0)
			{
				PQclear(res);
				goto fail;
			}
			rc = client_apply_change(cl, &c, types, err, errlen);
			change_free(&c);
			if (rc < 0)
			{
				PQclear(res);
				goto fail;
			}
			if (rc > 0)
				st->down_applied++;
			else
				st->down_conflicts++;
			st->down_rows++;
		}
		PQclear(res);
		if (n < FETCH_ROWS)
			break;
	}
	return 0;
fail:
	client_rollback(cl);
	return -1;
}

/*
 * One full sync. Upload failures do not stop the download (pending local
 * changes never block downloads), except a cloned node, which stops all.
 */
int
sync_once(Hub *h, Client *cl, SyncStats *st, char *err, size_t errlen)
{
	HubTypes	types = {0};
	char		uperr[1024] = "";
	char	   *pos = NULL,
			   *snap = NULL;
	bool		behind = false;
	int			rc = -1;

	memset(st, 0, sizeof(*st));
	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	client_reset_cache(cl);
	if (sync_up(h, cl, st, uperr, sizeof(uperr)) < 0)
	{
		if (st->clone)
		{
			snprintf(err, errlen, "%s", uperr);
			return -1;
		}
		logmsg(LOG_WARNING, "upload failed, downloading anyway: %s", uperr);
	}

	load_hub_types(h, &types);
	pos = client_get_down(cl);
	if (hub_download_begin(h, pos, &snap, &behind, err, errlen) < 0)
		goto out;
	if (behind)
		logmsg(LOG_WARNING, "this client's position is older than the hub's retained queue: taking a fresh first sync");
	if (pos == NULL || behind)
		rc = sync_first(h, cl, &types, st, err, errlen);
	else
		rc = sync_down_changes(h, cl, pos, &types, st, err, errlen);
	if (rc < 0)
	{
		hub_rollback(h);
		goto out;
	}
	if (client_commit_apply(cl, snap, err, errlen) < 0)
	{
		hub_rollback(h);
		rc = -1;
		goto out;
	}
	rc = hub_download_end(h, client_node_id(cl), snap, err, errlen);
	if (rc == 0)
	{
		long		pruned = hub_prune_if_due(h, err, errlen);

		if (pruned < 0)
			rc = -1;
		else if (pruned > 0)
			logmsg(LOG_INFO, "pruned %ld hub queue rows every active client has", pruned);
	}
	if (rc == 0 && uperr[0])
	{
		snprintf(err, errlen, "%s", uperr);
		rc = -1;
	}
out:
	free(pos);
	free(snap);
	hubtypes_free(&types);
	return rc;
}

/*
 * Give this client a new node id (a copied file): its pending changes move
 * to the new id, and it starts over with a first sync.
 */
int
sync_reidentify(Client *cl, char *err, size_t errlen)
{
	return client_reidentify(cl, err, errlen);
}
