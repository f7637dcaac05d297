/*
 * errors.c — the hub's changes this file refused, set aside in sync_errors
 * (client.h; docs/daemon.md).
 *
 *   client_retry_errors    try them again, oldest first
 *   client_forget_errors   drop them all (a first sync makes them moot)
 *   client_has_errors      are there any?
 */
#include "base/base.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Inside the apply transaction: try the changes set aside in sync_errors
 * again, oldest first. Those that go through now, or that a later change
 * overruled, leave sync_errors; the rest stay with the new reason.
 * *applied counts the first kind. -1 on an error that ends the download.
 */
int
client_retry_errors(Client *cl, const HubTypes *types, int *applied, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "SELECT id, hub_seq, table_name, op, pk, row_data, ver_us, origin, priority"
							" FROM sync_errors ORDER BY id", err, errlen);
	sqlite3_stmt *upd = NULL,
			   *del = NULL;
	ChangeList	l = {0};
	int64_t    *ids = NULL;
	char	  **bad = NULL;		/* rows that no longer read: why */
	int			n = 0,
				rc = 0,
				step;

	if (st == NULL)
		return -1;
	/* read them all first: the loop below writes to sync_errors */
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
	{
		Change	   *c = changes_push(&l);
		char		why[512];

		ids = xrealloc(ids, sizeof(int64_t) * (size_t) l.n);
		bad = xrealloc(bad, sizeof(char *) * (size_t) l.n);
		ids[n] = sqlite3_column_int64(st, 0);
		bad[n] = NULL;
		if (change_init(c, sqlite3_column_int64(st, 1), (const char *) sqlite3_column_text(st, 2),
						(const char *) sqlite3_column_text(st, 3), (const char *) sqlite3_column_text(st, 4),
						(const char *) sqlite3_column_text(st, 5), sqlite3_column_int64(st, 6),
						(const char *) sqlite3_column_text(st, 7),
						strcmp((const char *) sqlite3_column_text(st, 8), "immediate") == 0,
						why, sizeof(why)) < 0)
		{
			memset(c, 0, sizeof(*c));
			bad[n] = xstrdup(why);
		}
		n++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_errors");
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < n; i++)
	{
		const Change *c = &l.c[i];
		char		why[1024];
		int			r;

		if (bad[i])
		{
			snprintf(why, sizeof(why), "%s", bad[i]);
			r = -2;
		}
		else
		{
			r = client_try_change(cl, c, types, true, why, sizeof(why), err, errlen);
			if (r >= 0)
				logmsg(LOG_INFO, "set-aside change %" PRId64 " from the hub (%c \"%s\" %s) %s", c->seq, c->op,
					   c->table, c->pk_json,
					   r == 1 ? "went through" : r == 0 ? "was overruled by a later change" :
					   "was superseded by a later change of its row");
		}
		if (r == -1)
		{
			rc = -1;
			break;
		}
		if (r == -2)
		{
			if (upd == NULL &&
				(upd = client_prep(cl, "UPDATE sync_errors SET error = ?2, attempts = attempts + 1,"
							" last_failed = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1", err, errlen)) == NULL)
			{
				rc = -1;
				break;
			}
			sqlite3_bind_int64(upd, 1, ids[i]);
			sqlite3_bind_text(upd, 2, client_short_reason(cl, why), -1, SQLITE_TRANSIENT);
			step = sqlite3_step(upd);
			sqlite3_reset(upd);
		}
		else
		{
			if (r == 1)
				(*applied)++;
			if (del == NULL &&
				(del = client_prep(cl, "DELETE FROM sync_errors WHERE id = ?1", err, errlen)) == NULL)
			{
				rc = -1;
				break;
			}
			sqlite3_bind_int64(del, 1, ids[i]);
			step = sqlite3_step(del);
			sqlite3_reset(del);
		}
		if (step != SQLITE_DONE)
		{
			client_db_err(err, errlen, cl, "writing sync_errors");
			rc = -1;
		}
	}
	sqlite3_finalize(upd);
	sqlite3_finalize(del);
	for (int i = 0; i < n; i++)
		free(bad[i]);
	free(bad);
	free(ids);
	changes_free(&l);
	return rc;
}

/* A first sync: the set-aside hub changes are moot (in the apply transaction). */
int
client_forget_errors(Client *cl, char *err, size_t errlen)
{
	return client_exec(cl, "DELETE FROM sync_errors", err, errlen);
}

/* Has the file set aside changes from the hub? */
bool
client_has_errors(Client *cl)
{
	sqlite3_stmt *st = NULL;
	bool		any = false;

	if (sqlite3_prepare_v2(cl->db, "SELECT 1 FROM sync_errors LIMIT 1", -1, &st, NULL) == SQLITE_OK)
		any = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return any;
}

