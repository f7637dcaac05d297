/*
 * link_pg.c — the hub reached directly over libpq: the Link interface
 * (link/link.h) over the hub code of this folder, run in the client's own
 * process. It lives in hub/ because it is the hub's code; link/ knows only
 * the interface. Downloads read cursors inside one REPEATABLE READ
 * transaction (download.c); uploads are hub transactions of their own
 * (upload.c).
 *
 *   link_pg_connect   connect to the hub at conninfo; the Link's steps are
 *                     the static pg_* functions below
 */
#include "base/base.h"
#include "hub/hub.h"
#include "hub/link_pg.h"
#include "link/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows fetched from a cursor at a time. */
#define FETCH_ROWS 5000

typedef struct
{
	Link		base;
	Hub		   *h;
	const char *table;			/* the table rows_next reads (its name) */
} PgLink;

#define HUB(l) (((PgLink *) (l))->h)

static void
sync_tables(Link *l)
{
	l->tables = HUB(l)->tables;
	l->ntables = HUB(l)->ntables;
}

static int
pg_hello(Link *l, const char *client_id, bool retry_errors, UploadStats *retried,
		 char *err, size_t errlen)
{
	char	   *owner = NULL;

	if (hub_load_tables(HUB(l), err, errlen) < 0)
		return -1;
	sync_tables(l);
	/* bound at first sight, so that no serve user can claim it later */
	if (hub_bind_node(HUB(l), client_id, NULL, &owner, err, errlen) < 0)
		return -1;
	free(owner);
	if (retry_errors)
	{
		char		e[1024];

		if (hub_retry_errors(HUB(l), client_id, retried, e, sizeof(e)) < 0)
			logmsg(LOG_WARNING, "retrying set-aside changes on the hub failed: %s", e);
	}
	return 0;
}

static int
pg_up_begin(Link *l, const char *client_id, int64_t ack_seq, uint64_t ack_digest,
			int64_t now, char *err, size_t errlen)
{
	int			rc = hub_upload_begin(HUB(l), client_id, ack_seq, ack_digest, now, err, errlen);

	l->clone = HUB(l)->up.stats.clone;
	l->overtaken = HUB(l)->up.overtaken;
	return rc;
}

static int
pg_up_chunk(Link *l, const ChangeList *page, char *err, size_t errlen)
{
	int			rc = hub_upload_chunk(HUB(l), page, err, errlen);

	l->clone = HUB(l)->up.stats.clone;
	l->overtaken = HUB(l)->up.overtaken;
	return rc;
}

static int
pg_up_end(Link *l, UploadStats *st, char *err, size_t errlen)
{
	int			rc = hub_upload_end(HUB(l), st, err, errlen);

	l->clone = st->clone;
	l->overtaken = HUB(l)->up.overtaken;
	l->marks = HUB(l)->up.marks;
	l->nmarks = rc < 0 ? 0 : HUB(l)->up.nmarks;
	l->renames = HUB(l)->up.renames;
	l->nrenames = rc < 0 ? 0 : HUB(l)->up.nrenames;
	l->met = HUB(l)->up.met;
	l->nmet = rc < 0 ? 0 : HUB(l)->up.nmet;
	return rc;
}

static int
pg_down_begin(Link *l, const char *position, char **snapshot, bool *behind,
			  char *err, size_t errlen)
{
	int			rc = hub_download_begin(HUB(l), position, snapshot, behind, err, errlen);

	l->hub_clock_us = rc == 0 ? HUB(l)->clock_us : 0;
	l->hub_wall_us = rc == 0 ? HUB(l)->wall_us : 0;
	return rc;
}

static int
pg_changes_open(Link *l, const char *position, const char *target, int64_t done,
				const char *client_id, char *err, size_t errlen)
{
	return hub_changes_open(HUB(l), position, target, done, client_id, err, errlen);
}

/* The next page of the hub's changes, parsed into Changes. */
static int
pg_changes_next(Link *l, LinkPage *p, char *err, size_t errlen)
{
	PGresult   *res = hub_fetch(HUB(l), "syncq_down", FETCH_ROWS, err, errlen);
	int			rc = 0;

	link_page_reset(p);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res) && rc == 0; r++)
	{
		Change	   *c = link_page_push_change(p, strtoll(PQgetvalue(res, r, 8), NULL, 10));

		rc = change_init(c, strtoll(PQgetvalue(res, r, 0), NULL, 10), PQgetvalue(res, r, 1),
						 PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
						 PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4),
						 strtoll(PQgetvalue(res, r, 5), NULL, 10), PQgetvalue(res, r, 6),
						 strcmp(PQgetvalue(res, r, 7), SYNCQ_PRIORITY_IMMEDIATE) == 0, err, errlen);
		if (rc == 0 && !PQgetisnull(res, r, 9))
			c->replaces_us = strtoll(PQgetvalue(res, r, 9), NULL, 10);
	}
	p->more = PQntuples(res) == FETCH_ROWS;
	PQclear(res);
	if (rc < 0)
		link_page_reset(p);
	return rc;
}

static int
pg_changes_close(Link *l, char *err, size_t errlen)
{
	return hub_close_cursor(HUB(l), "syncq_down", err, errlen);
}

static int
pg_rows_open(Link *l, const HubTable *t, char *err, size_t errlen)
{
	((PgLink *) l)->table = t->name;
	return hub_table_open(HUB(l), t, err, errlen);
}

/* The next page of a table's rows, parsed. */
static int
pg_rows_next(Link *l, LinkPage *p, char *err, size_t errlen)
{
	PGresult   *res = hub_fetch(HUB(l), "syncq_snap", FETCH_ROWS, err, errlen);
	char		e[128];
	int			rc = 0;

	link_page_reset(p);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res) && rc == 0; r++)
	{
		JObject    *row = link_page_push_row(p);

		rc = jobj_parse(PQgetvalue(res, r, 0), (size_t) PQgetlength(res, r, 0), row, e, sizeof(e));
		if (rc < 0)
		{
			p->nrows--;
			snprintf(err, errlen, "first sync: a row of \"%s\" is not a JSON object (%s)",
					 ((PgLink *) l)->table, e);
		}
	}
	p->more = PQntuples(res) == FETCH_ROWS;
	PQclear(res);
	if (rc < 0)
		link_page_reset(p);
	return rc;
}

static int
pg_rows_close(Link *l, char *err, size_t errlen)
{
	return hub_close_cursor(HUB(l), "syncq_snap", err, errlen);
}

static int
pg_down_end(Link *l, const char *client_id, const char *stored, long *pruned,
			char *err, size_t errlen)
{
	if (hub_download_end(HUB(l), client_id, stored, err, errlen) < 0)
		return -1;
	*pruned = hub_prune_if_due(HUB(l), err, errlen);
	return *pruned < 0 ? -1 : 0;
}

static int
pg_errors(Link *l, const char *client_id, int max, long *count, HubError **rows, int *nrows,
		  long *conflicts, char *err, size_t errlen)
{
	*rows = NULL;
	*nrows = 0;
	*count = hub_count_errors(HUB(l), client_id, err, errlen);
	if (*count < 0)
		return -1;
	if (*count > 0)
	{
		*nrows = hub_list_errors(HUB(l), client_id, max, NULL, 0, rows, err, errlen);
		if (*nrows < 0)
		{
			*nrows = 0;
			return -1;
		}
	}
	if (conflicts)
	{
		*conflicts = hub_count_conflicts(HUB(l), client_id, err, errlen);
		if (*conflicts < 0)
			return -1;
	}
	return 0;
}

/* Which of this client's changes seqs[0..n) the hub holds set aside still. */
static int
pg_held(Link *l, const char *client_id, const int64_t *seqs, int n, bool *held,
		char *err, size_t errlen)
{
	HubError   *rows = NULL;
	int			nrows = hub_list_errors(HUB(l), client_id, n, seqs, n, &rows, err, errlen);

	if (nrows < 0)
		return -1;
	hub_errors_held(rows, nrows, seqs, n, held);
	hub_errors_free(rows, nrows);
	return 0;
}

static void
pg_abort(Link *l)
{
	PGconn	   *conn = HUB(l)->conn;

	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
		hub_rollback(HUB(l));
}

static bool
pg_ok(Link *l)
{
	return hub_ok(HUB(l));
}

static int
pg_wake_fd(Link *l)
{
	return hub_socket(HUB(l));
}

/* Count the wake-ups: changes[0] changes, changes[1] requests. */
static void
count_wake(void *arg, HubWake wake, const char *origin)
{
	int		   *counts = arg;

	(void) origin;
	counts[wake == HUB_WAKE_REQUEST ? 1 : 0]++;
}

static int
pg_consume(Link *l, int *changes, int *requests, char *err, size_t errlen)
{
	int			counts[2] = {0, 0};
	int			rc = hub_consume(HUB(l), count_wake, counts, err, errlen);

	*changes += counts[0];
	*requests += counts[1];
	return rc;
}

static void
pg_close(Link *l)
{
	hub_close(HUB(l));
	free(l);
}

static const LinkOps pg_ops = {
	.hello = pg_hello,
	.up_begin = pg_up_begin,
	.up_chunk = pg_up_chunk,
	.up_end = pg_up_end,
	.down_begin = pg_down_begin,
	.changes_open = pg_changes_open,
	.changes_next = pg_changes_next,
	.changes_close = pg_changes_close,
	.rows_open = pg_rows_open,
	.rows_next = pg_rows_next,
	.rows_close = pg_rows_close,
	.down_end = pg_down_end,
	.errors = pg_errors,
	.held = pg_held,
	.abort = pg_abort,
	.ok = pg_ok,
	.wake_fd = pg_wake_fd,
	.consume = pg_consume,
	.close = pg_close,
};

Link *
link_pg_connect(const char *conninfo, bool listen, char *err, size_t errlen)
{
	Hub		   *h = hub_connect(conninfo, listen, err, errlen);
	PgLink	   *pl;

	if (h == NULL)
		return NULL;
	if (hub_load_tables(h, err, errlen) < 0)
	{
		hub_close(h);
		return NULL;
	}
	pl = xcalloc(1, sizeof(PgLink));
	pl->base.ops = &pg_ops;
	pl->h = h;
	memcpy(pl->base.hub_node_id, h->node_id, sizeof(pl->base.hub_node_id));
	snprintf(pl->base.where, sizeof(pl->base.where), "database \"%s\" on %s:%s",
			 PQdb(h->conn), PQhost(h->conn), PQport(h->conn));
	sync_tables(&pl->base);
	return &pl->base;
}
