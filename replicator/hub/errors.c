/*
 * errors.c — a client's changes the hub set aside in sync_errors
 * (hub.h; docs/daemon.md), and its overruled changes.
 *
 *   hub_retry_errors     try them again, in a hub transaction of their own
 *   hub_count_errors     how many there are
 *   hub_list_errors      the first few, for the status
 *   hub_count_conflicts  how many of the client's changes were overruled
 */
#include "base/base.h"
#include "base/buf.h"
#include "hub/apply.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- set-aside changes -------------------------------------------------- */

/*
 * Try this client's set-aside changes again, in seq order, in one hub
 * transaction of their own: those that go through now (the cause was
 * fixed), or that a later change has overruled, leave sync_errors; the
 * rest stay with the new reason.
 */
int
hub_retry_errors(Hub *h, const char *client_id, UploadStats *stats, char *err, size_t errlen)
{
	const char *params[1] = {client_id};
	PGresult   *res;
	ChangeList	l = {0};
	int64_t    *ids = NULL;
	Change	  **cs = NULL;
	Outcome    *out = NULL;
	int			n = 0,
				gone = 0;
	bool		notify = false;
	Buf			del = {0},
				upd = {0};
	int			rc = -1;

	/* most of the time there is nothing: say so without the apply lock */
	res = hub_run(h, "SELECT EXISTS (SELECT 1 FROM sync_errors WHERE node_id = $1)",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	if (PQgetvalue(res, 0, 0)[0] != 't')
	{
		PQclear(res);
		return 0;
	}
	PQclear(res);
	if (hub_apply_begin(h, err, errlen) < 0)
		return -1;
	res = hub_run(h, "SELECT id, seq, table_name, op, pk::text, row_data::text,"
				  "       (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority"
				  "  FROM sync_errors WHERE node_id = $1 ORDER BY seq FOR UPDATE",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto out;
	n = PQntuples(res);
	ids = xmalloc(sizeof(int64_t) * (size_t) (n + 1));
	cs = xmalloc(sizeof(Change *) * (size_t) (n + 1));
	out = xcalloc((size_t) (n + 1), sizeof(Outcome));
	for (int r = 0; r < n; r++)
	{
		Change	   *c = changes_push(&l);
		char		why[512];

		ids[r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		if (change_init(c, strtoll(PQgetvalue(res, r, 1), NULL, 10), PQgetvalue(res, r, 2),
						PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
						PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
						strtoll(PQgetvalue(res, r, 6), NULL, 10), PQgetvalue(res, r, 7),
						strcmp(PQgetvalue(res, r, 8), "immediate") == 0, why, sizeof(why)) < 0)
		{
			/* a hand-edited row that no longer reads: it stays, with why */
			l.n--;
			PQclear(res);
			snprintf(err, errlen, "hub: sync_errors row %" PRId64 ": %s", ids[r], why);
			goto out;
		}
	}
	PQclear(res);
	if (n == 0)
	{
		rc = hub_exec(h, "COMMIT", err, errlen);
		goto out;
	}
	for (int i = 0; i < n; i++)
		cs[i] = &l.c[i];
	if (hub_apply_changes(h, cs, n, out, true, &notify, err, errlen) < 0)
		goto out;

	buf_puts(&del, "{");
	buf_putc(&upd, '[');
	for (int i = 0; i < n; i++)
	{
		if (out[i].done == DONE_FAILED)
		{
			if (upd.len > 1)
				buf_putc(&upd, ',');
			buf_printf(&upd, "{\"id\":%" PRId64 ",\"e\":", ids[i]);
			buf_json_string(&upd, out[i].why, strlen(out[i].why));
			buf_printf(&upd, ",\"st\":\"%s\"}", out[i].sqlstate);
			continue;
		}
		if (gone++)
			buf_putc(&del, ',');
		buf_printf(&del, "%" PRId64, ids[i]);
		if (out[i].done == DONE_APPLIED)
			stats->retried++;
		else if (out[i].done == DONE_OVERRULED)
			stats->conflicts++;
		logmsg(LOG_INFO, "set-aside change %" PRId64 " of \"%s\" (%c %s) %s", cs[i]->seq, cs[i]->table,
			   cs[i]->op, cs[i]->pk_json,
			   out[i].done == DONE_APPLIED ? "went through" :
			   out[i].done == DONE_OVERRULED ? "was overruled by a later change" :
			   "was superseded by a later change of its row");
	}
	buf_putc(&del, '}');
	buf_putc(&upd, ']');
	if (gone > 0)
	{
		params[0] = del.p;
		res = hub_run(h, "DELETE FROM sync_errors WHERE id = ANY ($1::bigint[])", 1, params,
					  PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
	}
	if (upd.len > 2)
	{
		params[0] = upd.p;
		res = hub_run(h, "UPDATE sync_errors AS e SET error = x.e, sqlstate = nullif(x.st, ''),"
					  "       last_failed = now(), attempts = e.attempts + 1"
					  "  FROM json_to_recordset($1::json) AS x(id bigint, e text, st text)"
					  " WHERE e.id = x.id",
					  1, params, PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
	}
	if (hub_overtaken(h, err, errlen) != 0)
		goto out;
	if (notify && hub_notify_upload(h, client_id, err, errlen) < 0)
		goto out;
	rc = hub_exec(h, "COMMIT", err, errlen);
	if (rc == 0 && gone < n)
		logmsg(LOG_DEBUG, "%d set-aside changes of this client still refused by the hub", n - gone);
out:
	if (rc < 0)
		hub_rollback(h);
	free(ids);
	free(cs);
	outcomes_free(out, n + 1);
	changes_free(&l);
	buf_free(&del);
	buf_free(&upd);
	return rc;
}

/* How many changes of this client the hub holds set aside; -1 on error. */
long
hub_count_errors(Hub *h, const char *client_id, char *err, size_t errlen)
{
	return hub_number(h, "SELECT count(*) FROM sync_errors WHERE node_id = $1",
					  client_id, err, errlen);
}

/* The first max set-aside changes of this client, for the status. */
int
hub_list_errors(Hub *h, const char *client_id, int max, HubError **rows, char *err, size_t errlen)
{
	char		lim[16];
	const char *params[2] = {client_id, lim};
	PGresult   *res;
	int			n;

	snprintf(lim, sizeof(lim), "%d", max);
	res = hub_run(h, "SELECT seq, table_name, op, pk::text, error,"
				  "       to_char(first_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
				  "       to_char(last_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), attempts"
				  "  FROM sync_errors WHERE node_id = $1 ORDER BY seq LIMIT $2::int",
				  2, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	*rows = xcalloc((size_t) (n + 1), sizeof(HubError));
	for (int r = 0; r < n; r++)
	{
		HubError   *e = &(*rows)[r];

		e->seq = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		e->table = xstrdup(PQgetvalue(res, r, 1));
		e->op = PQgetvalue(res, r, 2)[0];
		e->pk = xstrdup(PQgetvalue(res, r, 3));
		e->error = xstrdup(PQgetvalue(res, r, 4));
		e->first_failed = xstrdup(PQgetvalue(res, r, 5));
		e->last_failed = xstrdup(PQgetvalue(res, r, 6));
		e->attempts = atoi(PQgetvalue(res, r, 7));
	}
	PQclear(res);
	return n;
}

/* How many of this client's changes the hub overruled; -1 on error. */
long
hub_count_conflicts(Hub *h, const char *client_id, char *err, size_t errlen)
{
	return hub_number(h, "SELECT count(*) FROM sync_conflicts WHERE loser_origin = $1::uuid",
					  client_id, err, errlen);
}

