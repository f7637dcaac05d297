/*
 * errors.c — sync_errors of the client file (client.h; docs/daemon.md): the
 * hub's changes this file refused (hub_seq > 0), and this node's own
 * changes (hub_seq minus their queue seq): queue rows that could not be
 * sent (ver_us 0; queue.c), and changes the hub set aside because their key
 * met another record, kept while the hub's copy waits (queue.c, keep_met).
 *
 *   client_retry_errors    try the hub's again, oldest first
 *   client_forget_errors   drop them all (a first sync makes them moot)
 *   client_has_errors      are there any?
 *   client_met_seqs        the seqs of this node's changes the hub set aside
 *   client_settle_met      drop those the hub holds no more
 */
#include "base/base.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The changes set aside here, read to be tried again. */
typedef struct
{
	ChangeList	l;
	int64_t    *ids;			/* their ids in sync_errors */
	char	  **bad;			/* rows that no longer read: why */
	int			n;
	sqlite3_stmt *upd;			/* still refused: the new reason */
	sqlite3_stmt *del;			/* through, or moot: gone */
} SetAside;

static void
set_aside_free(SetAside *sa)
{
	sqlite3_finalize(sa->upd);
	sqlite3_finalize(sa->del);
	for (int i = 0; i < sa->n; i++)
		free(sa->bad[i]);
	free(sa->bad);
	free(sa->ids);
	changes_free(&sa->l);
}

/* Read them all first (trying them writes to sync_errors), oldest first. */
static int
read_set_aside(Client *cl, SetAside *sa, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "SELECT id, hub_seq, table_name, op, pk, row_data, ver_us, origin, priority"
								   " FROM sync_errors WHERE hub_seq > 0 ORDER BY id", err, errlen);
	int			step;

	if (st == NULL)
		return -1;
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
	{
		Change	   *c = changes_push(&sa->l);
		char		why[512];

		sa->ids = xrealloc(sa->ids, sizeof(int64_t) * (size_t) sa->l.n);
		sa->bad = xrealloc(sa->bad, sizeof(char *) * (size_t) sa->l.n);
		sa->ids[sa->n] = sqlite3_column_int64(st, 0);
		sa->bad[sa->n] = NULL;
		if (change_init(c, sqlite3_column_int64(st, 1), (const char *) sqlite3_column_text(st, 2),
						(const char *) sqlite3_column_text(st, 3), (const char *) sqlite3_column_text(st, 4),
						(const char *) sqlite3_column_text(st, 5), sqlite3_column_int64(st, 6),
						(const char *) sqlite3_column_text(st, 7),
						strcmp((const char *) sqlite3_column_text(st, 8), SYNCQ_PRIORITY_IMMEDIATE) == 0,
						why, sizeof(why)) < 0)
		{
			memset(c, 0, sizeof(*c));
			sa->bad[sa->n] = xstrdup(why);
		}
		sa->n++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_errors");
		return -1;
	}
	return 0;
}

/* Set-aside change i: still refused (why), or gone from sync_errors. */
static int
settle(Client *cl, SetAside *sa, int i, bool refused, const char *why, char *err, size_t errlen)
{
	sqlite3_stmt **st = refused ? &sa->upd : &sa->del;
	int			step;

	if (*st == NULL &&
		(*st = client_prep(cl, refused ?
						   "UPDATE sync_errors SET error = ?2, attempts = attempts + 1,"
						   " last_failed = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1" :
						   "DELETE FROM sync_errors WHERE id = ?1", err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(*st, 1, sa->ids[i]);
	if (refused)
		sqlite3_bind_text(*st, 2, client_short_reason(cl, why), -1, SQLITE_TRANSIENT);
	step = sqlite3_step(*st);
	sqlite3_reset(*st);
	if (step != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "writing sync_errors");
		return -1;
	}
	return 0;
}

/*
 * Inside the apply transaction: try the changes set aside in sync_errors
 * again, oldest first. Those that go through now, or that a later change
 * overruled, leave sync_errors; the rest stay with the new reason.
 * *applied counts the first kind. -1 on an error that ends the download.
 */
int
client_retry_errors(Client *cl, const HubTypes *types, int *applied, char *err, size_t errlen)
{
	SetAside	sa = {0};
	int			rc = read_set_aside(cl, &sa, err, errlen);

	for (int i = 0; rc == 0 && i < sa.n; i++)
	{
		Change	   *c = &sa.l.c[i];
		char		why[1024];
		int			r = -2;

		if (sa.bad[i])
			snprintf(why, sizeof(why), "%s", sa.bad[i]);
		else
		{
			r = client_try_change(cl, c, types, TRY_RETRY, why, sizeof(why), err, errlen);
			if (r == -1)
			{
				rc = -1;
				break;
			}
			if (r >= 0)
				logmsg(LOG_INFO, "set-aside change %" PRId64 " from the hub (%c \"%s\" %s) %s", c->seq, c->op,
					   c->table, c->pk_json,
					   r == 1 ? "went through" : r == 0 ? "was overruled by a later change" :
					   "was superseded by a later change of its row");
		}
		if (r == 1)
			(*applied)++;
		/* -3: its parent row is still missing */
		rc = settle(cl, &sa, i, r <= -2, why, err, errlen);
	}
	set_aside_free(&sa);
	return rc;
}

/* A first sync: the set-aside hub changes are moot (in the apply transaction). */
int
client_forget_errors(Client *cl, char *err, size_t errlen)
{
	return client_exec(cl, "DELETE FROM sync_errors WHERE hub_seq > 0", err, errlen);
}

/* Has the file set aside changes from the hub? */
bool
client_has_errors(Client *cl)
{
	sqlite3_stmt *st = NULL;
	bool		any = false;

	if (sqlite3_prepare_v2(cl->db, "SELECT 1 FROM sync_errors WHERE hub_seq > 0 LIMIT 1", -1, &st, NULL) == SQLITE_OK)
		any = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return any;
}

/*
 * The queue seqs of this node's changes kept in sync_errors while the hub
 * holds them set aside (keep_met: hub_seq < 0, a version of their own), in
 * ascending order, into *seqs (malloc'd). Their number; -1 with err.
 */
int
client_met_seqs(Client *cl, int64_t **seqs, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "SELECT -hub_seq FROM sync_errors WHERE hub_seq < 0 AND ver_us <> 0"
								   " AND origin = ?1 ORDER BY hub_seq DESC", err, errlen);
	int			n = 0,
				step;

	*seqs = NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, cl->node_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
	{
		*seqs = xrealloc(*seqs, sizeof(int64_t) * (size_t) (n + 1));
		(*seqs)[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_errors");
		free(*seqs);
		*seqs = NULL;
		return -1;
	}
	return n;
}

/*
 * Of this node's changes kept in sync_errors while the hub held them
 * (client_met_seqs: seqs[0..n)), those the hub holds no more (held[i]
 * false: a person deleted them there, or a retry applied them) leave, in
 * one write transaction. Their number; -1 with err.
 */
int
client_settle_met(Client *cl, const int64_t *seqs, const bool *held, int n, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int			gone = 0;

	for (int i = 0; i < n; i++)
	{
		if (held[i])
			continue;
		if (st == NULL)
		{
			if (client_begin_write(cl, err, errlen) < 0)
				return -1;
			if ((st = client_prep(cl, "DELETE FROM sync_errors WHERE hub_seq = -?1 AND ver_us <> 0",
								  err, errlen)) == NULL)
				goto fail;
		}
		sqlite3_bind_int64(st, 1, seqs[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
		{
			client_db_err(err, errlen, cl, "deleting from sync_errors");
			goto fail;
		}
		sqlite3_reset(st);
		logmsg(LOG_INFO, "change %" PRId64 " of this node left the hub's sync_errors: its entry in this file's sync_errors is gone too",
			   seqs[i]);
		gone++;
	}
	if (st == NULL)
		return 0;
	sqlite3_finalize(st);
	if (client_commit_write(cl, err, errlen) < 0)
		return -1;
	return gone;
fail:
	sqlite3_finalize(st);
	client_rollback_write(cl);
	return -1;
}
