/*
 * errors.c — a client's changes the hub set aside in sync_errors
 * (hub.h; docs/daemon.md), and its overruled changes.
 *
 *   hub_retry_errors     try them again (RETRY_MAX at most), in hub
 *                        transactions of RETRY_BATCH
 *   hub_count_errors     how many there are
 *   hub_list_errors      the first few, for the status; or those of some seqs
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
 * Set-aside changes tried again per call, at most, and per hub transaction:
 * the ones tried longest ago first, so that every one gets its turn, each
 * batch in seq order. A transaction holds the rows of its batch locked
 * while it tries them (about 1 ms a change, more when they fail again), so
 * another client's upload of one of those rows waits for one batch at
 * most, never for all of them (docs/security.md).
 */
#define RETRY_MAX 200
#define RETRY_BATCH 25

/*
 * A set-aside change still refused after STUCK_TRIES tries over at least
 * STUCK_FOR is stuck: said once in the log (a warning with the reason), and
 * from then on tried once every STUCK_FOR instead of with every sync
 * (docs/daemon.md). It stays: a parent row may yet arrive from a node that
 * was offline, and deleting it is a person's decision.
 */
#define STUCK_TRIES 10
#define STUCK_FOR "1 hour"
#define STUCK_SQL(tries, since) \
	"(" tries " >= " CPP_STR(STUCK_TRIES) " AND " since " >= interval '" STUCK_FOR "')"
#define CPP_STR_(x) #x
#define CPP_STR(x) CPP_STR_(x)

/* This client's set-aside changes, read to be tried again. */
typedef struct
{
	ChangeList	l;
	int64_t    *ids;			/* their ids in sync_errors */
	Change	  **cs;
	Outcome    *out;
	bool	   *was_stuck;		/* stuck as of its last try */
	int			n;
} SetAside;

/*
 * Read a batch of them (RETRY_BATCH tried longest ago), in seq order, locked
 * for the apply transaction.
 */
static int
read_set_aside(Hub *h, const char *client_id, SetAside *sa, char *err, size_t errlen)
{
	const char *params[1] = {client_id};
	PGresult   *res = hub_run(h, "SELECT id, seq, table_name, op, pk::text, row_data::text,"
							  "       (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority,"
							  "       " STUCK_SQL("attempts", "last_failed - first_failed") ", coalesce(sqlstate, '')"
							  "  FROM sync_errors WHERE id IN (SELECT id FROM sync_errors WHERE node_id = $1"
							  "                                   AND (NOT " STUCK_SQL("attempts", "now() - first_failed")
							  "                                        OR last_failed < now() - interval '" STUCK_FOR "')"
							  "                                 ORDER BY last_failed, seq LIMIT " CPP_STR(RETRY_BATCH) ")"
							  " ORDER BY seq FOR UPDATE",
							  1, params, PGRES_TUPLES_OK, err, errlen);

	if (res == NULL)
		return -1;
	sa->n = PQntuples(res);
	sa->ids = xmalloc(sizeof(int64_t) * (size_t) (sa->n + 1));
	sa->cs = xmalloc(sizeof(Change *) * (size_t) (sa->n + 1));
	sa->out = xcalloc((size_t) (sa->n + 1), sizeof(Outcome));
	sa->was_stuck = xcalloc((size_t) (sa->n + 1), sizeof(bool));
	for (int r = 0; r < sa->n; r++)
	{
		Change	   *c = changes_push(&sa->l);
		char		why[512];

		sa->ids[r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		sa->was_stuck[r] = PQgetvalue(res, r, 9)[0] == 't';
		/* why it was set aside, for the apply (hub/apply.c, meets_record) */
		snprintf(sa->out[r].sqlstate, sizeof(sa->out[r].sqlstate), "%s", PQgetvalue(res, r, 10));
		if (change_init(c, strtoll(PQgetvalue(res, r, 1), NULL, 10), PQgetvalue(res, r, 2),
						PQgetvalue(res, r, 3), PQgetvalue(res, r, 4),
						PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
						strtoll(PQgetvalue(res, r, 6), NULL, 10), PQgetvalue(res, r, 7),
						strcmp(PQgetvalue(res, r, 8), SYNCQ_PRIORITY_IMMEDIATE) == 0, why, sizeof(why)) < 0)
		{
			/* a hand-edited row that no longer reads: it stays, with why */
			sa->l.n--;
			PQclear(res);
			snprintf(err, errlen, "hub: sync_errors row %" PRId64 ": %s", sa->ids[r], why);
			return -1;
		}
	}
	PQclear(res);
	for (int i = 0; i < sa->n; i++)
		sa->cs[i] = &sa->l.c[i];	/* the list is whole: no more moves */
	return 0;
}

/* A change that this try made stuck: said once, with the reason. */
static void
report_stuck(const SetAside *sa, int64_t id, bool stuck, const char *since, const char *tries)
{
	for (int i = 0; stuck && i < sa->n; i++)
	{
		const Change *c = sa->cs[i];

		if (sa->ids[i] != id || sa->was_stuck[i])
			continue;
		logmsg(LOG_WARNING, "set-aside change %" PRId64 " of node %s (%c \"%s\" %s) is stuck: refused %s times since %s,"
			   " last: %s; tried once an hour from now on (delete its row of the hub's sync_errors to drop it)",
			   c->seq, c->origin, c->op, c->table, c->pk_json, tries, since, sa->out[i].why);
	}
}

/*
 * What became of them: those that went through, or that a later change
 * overruled or superseded, leave sync_errors; the rest stay, with the new
 * reason. Counted into stats; returns how many left.
 */
static int
settle(Hub *h, SetAside *sa, UploadStats *stats, char *err, size_t errlen)
{
	Buf			del = {0},
				upd = {0};
	JsonOut		w;
	int			gone = 0,
				rc = 0;
	const char *params[1];
	PGresult   *res;

	buf_putc(&del, '{');		/* a bigint[] literal */
	jout_init(&w, &upd);
	jout_array(&w);
	for (int i = 0; i < sa->n; i++)
	{
		const Change *c = sa->cs[i];
		const Outcome *o = &sa->out[i];

		if (o->done == DONE_FAILED)
		{
			jout_object(&w);
			jout_kint(&w, "id", sa->ids[i]);
			jout_kstring(&w, "e", o->why);
			jout_kstring(&w, "st", o->sqlstate);
			jout_object_end(&w);
			continue;
		}
		buf_printf(&del, "%s%" PRId64, gone++ ? "," : "", sa->ids[i]);
		if (o->done == DONE_APPLIED)
			stats->retried++;
		else if (o->done == DONE_OVERRULED)
			stats->conflicts++;
		logmsg(LOG_INFO, "set-aside change %" PRId64 " of \"%s\" (%c %s) %s%s", c->seq, c->table,
			   c->op, c->pk_json,
			   o->done == DONE_APPLIED ? "went through" :
			   o->done == DONE_OVERRULED && o->why ? "was overruled: the hub keeps the row, " :
			   o->done == DONE_OVERRULED ? "was overruled by a later change" :
			   "was superseded by a later change of its row",
			   o->done == DONE_OVERRULED && o->why ? o->why : "");
	}
	buf_putc(&del, '}');
	jout_array_end(&w);
	if (gone > 0)
	{
		params[0] = del.p;
		res = hub_run(h, "DELETE FROM sync_errors WHERE id = ANY ($1::bigint[])", 1, params,
					  PGRES_COMMAND_OK, err, errlen);
		rc = res ? 0 : -1;
		PQclear(res);
	}
	if (rc == 0 && gone < sa->n)
	{
		params[0] = upd.p;
		res = hub_run(h, "UPDATE sync_errors AS e SET error = x.e, sqlstate = nullif(x.st, ''),"
					  "       last_failed = now(), attempts = e.attempts + 1"
					  "  FROM json_to_recordset($1::json) AS x(id bigint, e text, st text)"
					  " WHERE e.id = x.id"
					  " RETURNING e.id, " STUCK_SQL("e.attempts", "e.last_failed - e.first_failed") ","
					  "           to_char(e.first_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
					  "           e.attempts",
					  1, params, PGRES_TUPLES_OK, err, errlen);
		rc = res ? 0 : -1;
		for (int r = 0; res && r < PQntuples(res); r++)
			report_stuck(sa, strtoll(PQgetvalue(res, r, 0), NULL, 10), PQgetvalue(res, r, 1)[0] == 't',
						 PQgetvalue(res, r, 2), PQgetvalue(res, r, 3));
		PQclear(res);
	}
	buf_free(&del);
	buf_free(&upd);
	return rc < 0 ? -1 : gone;
}

/*
 * One batch of set-aside changes tried again, in a hub transaction of its
 * own: read them, apply them (apply.c), settle what became of each, then
 * commit as an upload does (not if overtaken; NOTIFY if an immediate one
 * went through). How many were tried, or -1.
 */
static int
retry_batch(Hub *h, const char *client_id, UploadStats *stats, char *err, size_t errlen)
{
	SetAside	sa = {0};
	bool		notify = false;
	int			gone = 0,
				rc = -1;

	if (hub_apply_begin(h, 0, err, errlen) < 0)
		return -1;
	if (read_set_aside(h, client_id, &sa, err, errlen) < 0)
		goto out;
	if (sa.n > 0 &&
		(hub_apply_changes(h, sa.cs, sa.n, sa.out, true, &notify, err, errlen) < 0 ||
		 (gone = settle(h, &sa, stats, err, errlen)) < 0 ||
		 hub_overtaken(h, err, errlen) != 0 ||
		 (notify && hub_notify_upload(h, client_id, err, errlen) < 0)))
		goto out;
	rc = hub_exec(h, "COMMIT", err, errlen);
	if (rc == 0 && gone < sa.n)
		logmsg(LOG_DEBUG, "%d set-aside changes of this client still refused by the hub", sa.n - gone);
	if (rc == 0)
		rc = sa.n;
out:
	if (rc < 0)
		hub_rollback(h);
	free(sa.ids);
	free(sa.cs);
	free(sa.was_stuck);
	if (sa.out)
		outcomes_free(sa.out, sa.n + 1);
	changes_free(&sa.l);
	return rc;
}

/*
 * Try this client's set-aside changes again, RETRY_MAX of them at most, in
 * batches of RETRY_BATCH (retry_batch): those that go through now (the
 * cause was fixed), or that a later change has overruled, leave
 * sync_errors; the rest stay with the new reason. (Most of the time there
 * are none: that is asked before any transaction begins.)
 */
int
hub_retry_errors(Hub *h, const char *client_id, UploadStats *stats, char *err, size_t errlen)
{
	long		held = hub_count_errors(h, client_id, err, errlen);
	long		tried = 0;

	while (held > 0 && tried < held && tried < RETRY_MAX)
	{
		int			n = retry_batch(h, client_id, stats, err, errlen);

		if (n < RETRY_BATCH)
			return n < 0 ? -1 : 0;	/* no more due (a stuck one waits) */
		tried += n;
	}
	return held < 0 ? -1 : 0;
}

/* How many changes of this client the hub holds set aside; -1 on error. */
long
hub_count_errors(Hub *h, const char *client_id, char *err, size_t errlen)
{
	return hub_number(h, "SELECT count(*) FROM sync_errors WHERE node_id = $1",
					  client_id, err, errlen);
}

/*
 * The first max set-aside changes of this client, for the status; or, with
 * seqs[0..nseqs), those of them the hub holds still (a client's entries of
 * changes set aside there go with them: client/errors.c).
 */
int
hub_list_errors(Hub *h, const char *client_id, int max, const int64_t *seqs, int nseqs,
				HubError **rows, char *err, size_t errlen)
{
	char		lim[16];
	Buf			arr = {0};
	const char *params[3] = {client_id, lim, NULL};
	PGresult   *res;
	int			n;

	snprintf(lim, sizeof(lim), "%d", max);
	buf_puts(&arr, "{");
	for (int i = 0; i < nseqs; i++)
		buf_printf(&arr, "%s%" PRId64, i ? "," : "", seqs[i]);
	buf_puts(&arr, "}");
	params[2] = nseqs > 0 ? arr.p : NULL;
	res = hub_run(h, "SELECT seq, table_name, op, pk::text, error,"
				  "       to_char(first_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
				  "       to_char(last_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), attempts"
				  "  FROM sync_errors WHERE node_id = $1 AND ($3::bigint[] IS NULL OR seq = ANY ($3::bigint[]))"
				  " ORDER BY seq LIMIT $2::int",
				  3, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&arr);
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

