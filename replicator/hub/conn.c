/*
 * conn.c — the hub's connection (hub.h): open it without blocking for long,
 * run statements on it, close it.
 *
 *   hub_connect       connect, check the extension, learn the node id and tables
 *   hub_conninfo_has_password  does a conninfo or URL hold a password?
 *   hub_close         close it (and free what the last upload left)
 *   hub_ok            usable for the next step (connected, no transaction open)
 *   hub_socket        its socket, for poll()
 *   hub_rollback      end an open transaction
 *   hub_run           run a statement with parameters; err and SQLSTATE on failure
 *   hub_prep          the same for a statement every sync runs: prepared once
 *   hub_exec          run a statement that returns nothing
 *   hub_number        run a query of one number
 *   hub_quote_ident   an identifier quoted for SQL text
 *   hub_set_err       err from a libpq failure
 *   hub_upload_forget free the marks, notes, renames and met changes an upload
 *                     left on the connection
 *
 * Every identifier is quoted with PQescapeIdentifier and every value is a
 * parameter.
 */
#include "base/base.h"
#include "base/buf.h"
#include "hub/hub.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a connection attempt may take. */
#define CONNECT_TIMEOUT_S 10

void
hub_set_err(char *err, size_t errlen, const char *what, PGconn *conn)
{
	const char *msg = conn ? PQerrorMessage(conn) : "";
	size_t		n;

	snprintf(err, errlen, "%s: %s", what, msg);
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/*
 * The result of a statement: itself if it is what was wanted; otherwise
 * NULL, with err filled and the SQLSTATE in h->sqlstate.
 */
static PGresult *
checked(Hub *h, PGresult *res, ExecStatusType want, char *err, size_t errlen)
{
	ExecStatusType st = PQresultStatus(res);

	h->sqlstate[0] = '\0';
	if (st != want && !(want == PGRES_COMMAND_OK && st == PGRES_TUPLES_OK))
	{
		const char *msg = PQresultErrorMessage(res);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		size_t		n;

		snprintf(err, errlen, "hub: %s", msg && *msg ? msg : PQerrorMessage(h->conn));
		n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		if (state)
			snprintf(h->sqlstate, sizeof(h->sqlstate), "%s", state);
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Run a statement; on failure fill err, remember the SQLSTATE in
 * h->sqlstate and return NULL.
 */
PGresult *
hub_run(Hub *h, const char *sql, int nparams, const char *const *params,
	ExecStatusType want, char *err, size_t errlen)
{
	return checked(h, PQexecParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0),
				   want, err, errlen);
}

/* SQLSTATEs of a prepared statement hub_prep cannot rely on (below). */
static bool
prep_lost(const char *state)
{
	return strcmp(state, "26000") == 0 ||	/* invalid_sql_statement_name */
		strcmp(state, "42P05") == 0 ||	/* duplicate_prepared_statement */
		strcmp(state, "08P01") == 0;	/* protocol_violation */
}

static bool
prep_stale(const char *state)
{
	return strcmp(state, "0A000") == 0 ||	/* cached plan must not change result type */
		strcmp(state, "42804") == 0 ||	/* datatype_mismatch */
		strcmp(state, "42883") == 0;	/* undefined_function */
}

/* One try of hub_prep; *prepared: it used a prepared statement. */
static PGresult *
prep_once(Hub *h, const char *sql, int nparams, const char *const *params,
		  ExecStatusType want, bool *prepared, char *err, size_t errlen)
{
	uint64_t	key = digest_step(UINT64_C(0xcbf29ce484222325), sql, strlen(sql));
	char		name[32];
	PGresult   *res;
	int			i;

	*prepared = false;
	if (h->prep_stale && PQtransactionStatus(h->conn) == PQTRANS_IDLE)
	{
		res = PQexec(h->conn, "DEALLOCATE ALL");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			h->prep_off = true;	/* what is left is unknown */
		PQclear(res);
		h->nprepared = 0;
		h->prep_stale = false;
	}
	if (h->prep_off || h->prep_stale)
		return hub_run(h, sql, nparams, params, want, err, errlen);
	for (i = 0; i < h->nprepared && h->prepared[i] != key; i++)
		;
	if (i == HUB_PREPARED_MAX)
		return hub_run(h, sql, nparams, params, want, err, errlen);
	*prepared = true;
	snprintf(name, sizeof(name), "syncq_%016" PRIx64, key);
	if (i == h->nprepared)
	{
		/* an error here is the statement's own, as hub_run would give it */
		res = checked(h, PQprepare(h->conn, name, sql, nparams, NULL), PGRES_COMMAND_OK,
					  err, errlen);
		if (res == NULL)
			return NULL;
		PQclear(res);
		h->prepared[h->nprepared++] = key;
	}
	return checked(h, PQexecPrepared(h->conn, name, nparams, params, NULL, NULL, 0),
				   want, err, errlen);
}

/*
 * hub_run for a statement every sync runs: prepared on this connection the
 * first time, so that the hub plans it once, not every sync; for the
 * tables' catalog queries that was most of a small sync's time on the hub
 * (docs/daemon.md, Latency): for statements whose text is fixed, not
 * those that name the user's tables. Its name is syncq_ and a hash of its
 * text, so that a name means one statement whatever connection made it.
 * The server replans it after a change to what it reads, as it does any
 * prepared statement.
 *
 * Should one come back unknown, or its name taken, or its parameters not
 * as prepared (26000, 42P05, 08P01: a pooler between syncqd and the server
 * that does not keep a session's statements, or a DISCARD ALL), this
 * connection prepares no more. Should its result's shape or its
 * parameters' types change under it (0A000, 42804, 42883: an upgrade of
 * the extension), the statements are dropped (DEALLOCATE ALL) and prepared
 * again once no transaction is open. Either way, outside a transaction
 * the statement is tried again at once (unprepared, or prepared afresh);
 * inside one, the transaction has failed, and so has the step.
 */
PGresult *
hub_prep(Hub *h, const char *sql, int nparams, const char *const *params,
		 ExecStatusType want, char *err, size_t errlen)
{
	bool		prepared;
	PGresult   *res = prep_once(h, sql, nparams, params, want, &prepared, err, errlen);

	if (res == NULL && prepared && (prep_lost(h->sqlstate) || prep_stale(h->sqlstate)))
	{
		if (prep_lost(h->sqlstate))
			h->prep_off = true;
		else
			h->prep_stale = true;
		/* it did not run: once more, unprepared or prepared afresh */
		if (PQtransactionStatus(h->conn) == PQTRANS_IDLE)
			res = prep_once(h, sql, nparams, params, want, &prepared, err, errlen);
	}
	return res;
}

int
hub_exec(Hub *h, const char *sql, char *err, size_t errlen)
{
	PGresult   *res = hub_run(h, sql, 0, NULL, PGRES_COMMAND_OK, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * Run a query that returns one number (NULL counts as 0), with at most one
 * parameter; returns it, or -1 with err set.
 */
long
hub_number(Hub *h, const char *sql, const char *param, char *err, size_t errlen)
{
	const char *params[1] = {param};
	PGresult   *res = hub_run(h, sql, param ? 1 : 0, param ? params : NULL,
							  PGRES_TUPLES_OK, err, errlen);
	long		n;

	if (res == NULL)
		return -1;
	n = PQntuples(res) == 0 || PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

char *
hub_quote_ident(Hub *h, const char *s)
{
	char	   *q = PQescapeIdentifier(h->conn, s, strlen(s));
	char	   *r;

	if (q == NULL)
		return xstrdup("\"\"");
	r = xstrdup(q);
	PQfreemem(q);
	return r;
}

/* libpq's notices (from the hub's functions) go to the log. */
static void
on_notice(void *arg, const char *msg)
{
	size_t		n = strlen(msg);

	(void) arg;
	while (n > 0 && msg[n - 1] == '\n')
		n--;
	logmsg(LOG_DEBUG, "hub: %.*s", (int) n, msg);
}

/*
 * Open the connection without blocking for longer than a moment at a time:
 * a stop request ends the wait, and so does CONNECT_TIMEOUT_S.
 */
static PGconn *
connect_async(const char *const *keys, const char *const *vals, char *err, size_t errlen)
{
	PGconn	   *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	int64_t		deadline = mono_us() + (int64_t) CONNECT_TIMEOUT_S * 1000000;

	if (conn == NULL)
	{
		snprintf(err, errlen, "cannot connect to the hub: out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	while (st != PGRES_POLLING_OK)
	{
		struct pollfd pfd;
		int64_t		left = deadline - mono_us();
		int			rc;

		if (st == PGRES_POLLING_FAILED)
		{
			hub_set_err(err, errlen, "cannot connect to the hub", conn);
			PQfinish(conn);
			return NULL;
		}
		if (stop_requested)
		{
			snprintf(err, errlen, "cannot connect to the hub: stopping");
			PQfinish(conn);
			return NULL;
		}
		if (left <= 0)
		{
			snprintf(err, errlen, "cannot connect to the hub: no answer within %d s", CONNECT_TIMEOUT_S);
			PQfinish(conn);
			return NULL;
		}
		pfd.fd = PQsocket(conn);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 250000 ? 250 : (int) (left / 1000) + 1);
		if (rc < 0 && errno != EINTR)
		{
			snprintf(err, errlen, "cannot connect to the hub: poll: %s", strerror(errno));
			PQfinish(conn);
			return NULL;
		}
		if (rc > 0)
			st = PQconnectPoll(conn);
	}
	return conn;
}

/*
 * Connect, check that the syncq extension is there, learn the hub's node
 * id (its tracked tables: hub_load_tables); with listen, LISTEN for the hub's wake-ups too.
 * The keepalive settings find a dead link within about a minute; the
 * user's conninfo, expanded after them, may override them.
 */
Hub *
hub_connect(const char *conninfo, bool listen, char *err, size_t errlen)
{
	const char *keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"dbname", "fallback_application_name", NULL};
	const char *vals[] = {"10", "1", "20", "10", "3", "60000", conninfo, "syncqd", NULL};
	Hub		   *h = xcalloc(1, sizeof(Hub));
	PGresult   *res;

	h->conn = connect_async(keys, vals, err, errlen);
	if (h->conn == NULL)
	{
		hub_close(h);
		return NULL;
	}
	PQsetNoticeProcessor(h->conn, on_notice, NULL);
	if (listen && hub_exec(h, "LISTEN " SYNCQ_CHANNEL, err, errlen) < 0)
	{
		hub_close(h);
		return NULL;
	}
	if (hub_exec(h, "SET client_encoding = 'UTF8'", err, errlen) < 0 ||
		hub_exec(h, "SET timezone = 'UTC'", err, errlen) < 0 ||
		hub_exec(h, "SET datestyle = 'ISO'", err, errlen) < 0 ||
		hub_exec(h, "SET extra_float_digits = 1", err, errlen) < 0)
	{
		hub_close(h);
		return NULL;
	}
	{
		/* the extension, and a version of it at least as new as this syncqd:
		 * an older hub lacks what this syncqd needs (tests/integration/
		 * release_upgrade.sh) */
		const char *params[] = {SYNCQD_VERSION};

		res = hub_run(h, "SELECT n.nspname, e.extversion,"
				  "       string_to_array(e.extversion, '.')::int[] < string_to_array($1, '.')::int[]"
				  "  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
				  " WHERE e.extname = 'syncq'", 1, params, PGRES_TUPLES_OK, err, errlen);
	}
	if (res == NULL)
	{
		hub_close(h);
		return NULL;
	}
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		snprintf(err, errlen, "hub: the syncq extension is not installed in database \"%s\" (run CREATE EXTENSION syncq there)",
				 PQdb(h->conn));
		hub_close(h);
		return NULL;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "t") == 0)
	{
		snprintf(err, errlen, "hub: the syncq extension in database \"%s\" is at version %s, older than this syncqd (%s): "
				 "run ALTER EXTENSION syncq UPDATE there",
				 PQdb(h->conn), PQgetvalue(res, 0, 1), SYNCQD_VERSION);
		PQclear(res);
		hub_close(h);
		return NULL;
	}
	{
		/* reach the extension's objects whatever the search_path */
		char	   *q = hub_quote_ident(h, PQgetvalue(res, 0, 0));
		Buf			b = {0};

		buf_printf(&b, "SET search_path = %s, pg_catalog", q);
		free(q);
		PQclear(res);
		if (hub_exec(h, b.p, err, errlen) < 0)
		{
			buf_free(&b);
			hub_close(h);
			return NULL;
		}
		buf_free(&b);
	}
	res = hub_run(h, "SELECT sync_node_id()::text,"
				  " to_regprocedure('sync_row_json(regclass, record)') IS NOT NULL",
				  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
	{
		hub_close(h);
		return NULL;
	}
	snprintf(h->node_id, sizeof(h->node_id), "%s", PQgetvalue(res, 0, 0));
	h->row_json_fn = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return h;
}

void
hub_close(Hub *h)
{
	if (h == NULL)
		return;
	hub_tables_free(h->tables, h->ntables);
	namemap_free(&h->renamed);
	hub_upload_forget(&h->up);
	for (int i = 0; i < h->ngone_logged; i++)
		free(h->gone_logged[i]);
	free(h->gone_logged);
	free(h->folded);
	free(h->seen);
	PQfinish(h->conn);
	free(h);
}

/* Is the connection still good (and not inside a transaction)? */
bool
hub_ok(Hub *h)
{
	return h && PQstatus(h->conn) == CONNECTION_OK &&
		PQtransactionStatus(h->conn) == PQTRANS_IDLE;
}

int
hub_socket(Hub *h)
{
	return PQsocket(h->conn);
}

void
hub_rollback(Hub *h)
{
	PGresult   *res = PQexec(h->conn, "ROLLBACK");

	PQclear(res);
}

/*
 * Forget what the last upload left on the connection (its marks and
 * notes): the next upload's begin does, and so does hub_close.
 */
void
hub_upload_forget(HubUpload *u)
{
	for (int i = 0; i < u->nnotes; i++)
		free(u->notes[i]);
	free(u->marks);
	key_renames_free(u->renames, u->nrenames);
	free(u->rename_end);
	met_changes_free(u->met, u->nmet);
	memset(u, 0, sizeof(*u));
}


/* Does conninfo (key=value words or a postgresql:// URL) hold a password? */
bool
hub_conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool		has = false;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			has = true;
	PQconninfoFree(opts);
	return has;
}
