/*
 * hub.c — the PostgreSQL side of a sync, over libpq: the connection, the
 * tracked tables, downloads. Uploads are in hub_upload.c.
 *
 * Download: one REPEATABLE READ transaction whose snapshot becomes the
 * client's new position (docs/replication.md). Every identifier is quoted
 * with PQescapeIdentifier and every value is a parameter.
 */
#include "syncqd.h"
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
 * Run a statement; on failure fill err, remember the SQLSTATE in
 * h->sqlstate and return NULL.
 */
PGresult *
hub_run(Hub *h, const char *sql, int nparams, const char *const *params,
	ExecStatusType want, char *err, size_t errlen)
{
	PGresult   *res = PQexecParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0);

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

int
hub_exec(Hub *h, const char *sql, char *err, size_t errlen)
{
	PGresult   *res = hub_run(h, sql, 0, NULL, PGRES_COMMAND_OK, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
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

/* Free n tables' descriptions and the array. */
void
hub_tables_free(HubTable *tables, int n)
{
	for (int i = 0; i < n; i++)
	{
		HubTable   *t = &tables[i];

		free(t->schema);
		free(t->name);
		free(t->qname);
		for (int c = 0; c < t->ncols; c++)
		{
			free(t->cols[c]);
			free(t->types[c]);
		}
		free(t->cols);
		free(t->types);
		free(t->is_pk);
		free(t->pk_pos);
	}
	free(tables);
}

static void
free_tables(Hub *h)
{
	hub_tables_free(h->tables, h->ntables);
	h->tables = NULL;
	h->ntables = 0;
}

/*
 * Load the tracked tables with their columns, types and primary keys.
 */
int
hub_load_tables(Hub *h, char *err, size_t errlen)
{
	PGresult   *res;

	free_tables(h);
	res = hub_run(h,
			  "SELECT t.table_schema, t.table_name, a.attname, format_type(a.atttypid, NULL),"
			  "       coalesce((SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n)"
			  "                  WHERE k.att = a.attnum), 0)"
			  "  FROM sync_tables t"
			  "  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped"
			  "  LEFT JOIN pg_index i ON i.indrelid = t.relid AND i.indisprimary"
			  " ORDER BY t.table_name, t.table_schema, a.attnum",
			  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *schema = PQgetvalue(res, r, 0),
				   *name = PQgetvalue(res, r, 1);
		HubTable   *t = h->ntables ? &h->tables[h->ntables - 1] : NULL;

		if (t == NULL || strcmp(t->schema, schema) != 0 || strcmp(t->name, name) != 0)
		{
			h->tables = xrealloc(h->tables, (size_t) (h->ntables + 1) * sizeof(HubTable));
			t = &h->tables[h->ntables++];
			memset(t, 0, sizeof(*t));
			t->schema = xstrdup(schema);
			t->name = xstrdup(name);
			{
				char	   *qs = hub_quote_ident(h, schema),
						   *qn = hub_quote_ident(h, name);
				Buf			b = {0};

				buf_printf(&b, "%s.%s", qs, qn);
				t->qname = b.p;
				free(qs);
				free(qn);
			}
		}
		t->cols = xrealloc(t->cols, (size_t) (t->ncols + 1) * sizeof(char *));
		t->types = xrealloc(t->types, (size_t) (t->ncols + 1) * sizeof(char *));
		t->is_pk = xrealloc(t->is_pk, (size_t) (t->ncols + 1) * sizeof(bool));
		t->pk_pos = xrealloc(t->pk_pos, (size_t) (t->ncols + 1) * sizeof(int));
		t->cols[t->ncols] = xstrdup(PQgetvalue(res, r, 2));
		t->types[t->ncols] = xstrdup(PQgetvalue(res, r, 3));
		t->pk_pos[t->ncols] = atoi(PQgetvalue(res, r, 4));
		t->is_pk[t->ncols] = t->pk_pos[t->ncols] > 0;
		if (t->is_pk[t->ncols])
			t->npk++;
		t->ncols++;
	}
	PQclear(res);
	for (int i = 1; i < h->ntables; i++)
		if (strcmp(h->tables[i].name, h->tables[i - 1].name) == 0)
		{
			snprintf(err, errlen, "hub: table name \"%s\" is tracked in two schemas (\"%s\" and \"%s\"); a client cannot tell them apart",
					 h->tables[i].name, h->tables[i - 1].schema, h->tables[i].schema);
			return -1;
		}
	return 0;
}

HubTable *
hub_table(Hub *h, const char *name)
{
	int			lo = 0,
				hi = h->ntables - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(h->tables[mid].name, name);

		if (c == 0)
			return &h->tables[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

int
hub_col(const HubTable *t, const char *col)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i], col) == 0)
			return i;
	return -1;
}

/*
 * Connect, check that the syncq extension is there, learn the hub's node id
 * and its tracked tables.
 */
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
 * Connect, check that the syncq extension is there, learn the hub's node id
 * and its tracked tables; with listen, LISTEN for the hub's wake-ups too.
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
	if (listen && hub_exec(h, "LISTEN sync_queue", err, errlen) < 0)
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
	res = hub_run(h, "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
			  " WHERE e.extname = 'syncq'", 0, NULL, PGRES_TUPLES_OK, err, errlen);
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
	res = hub_run(h, "SELECT sync_node_id()::text", 0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
	{
		hub_close(h);
		return NULL;
	}
	snprintf(h->node_id, sizeof(h->node_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (hub_load_tables(h, err, errlen) < 0)
	{
		hub_close(h);
		return NULL;
	}
	return h;
}

void
hub_close(Hub *h)
{
	if (h == NULL)
		return;
	free_tables(h);
	hub_upload_forget(&h->up);
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

/*
 * Read what the hub sent while we were not asking: count the wake-ups of
 * channel sync_queue from other sessions (our own uploads NOTIFY too):
 * "request" is sync_trigger(), anything else committed immediate changes.
 * -1 if the connection is gone.
 */
int
hub_consume(Hub *h, int *changes, int *requests, char *err, size_t errlen)
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
		if (n->be_pid != me && strcmp(n->relname, "sync_queue") == 0)
		{
			if (strcmp(n->extra, "request") == 0)
				(*requests)++;
			else
				(*changes)++;
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

void
hub_rollback(Hub *h)
{
	PGresult   *res = PQexec(h->conn, "ROLLBACK");

	PQclear(res);
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

	snprintf(payload, sizeof(payload), "upload:%s", client_id);
	res = hub_run(h, "SELECT pg_notify('sync_queue', $1)", 1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* ---- download ----------------------------------------------------------- */

/*
 * Start a download: a REPEATABLE READ transaction; *snapshot gets its
 * snapshot (the client's next position, malloc'd). *behind is set when the
 * client's position lies below the pruned horizon (it needs a first sync).
 */
int
hub_download_begin(Hub *h, const char *position, char **snapshot, bool *behind,
				   char *err, size_t errlen)
{
	PGresult   *res;
	const char *params[1] = {position};

	*snapshot = NULL;
	*behind = false;
	if (hub_exec(h, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) < 0)
		return -1;
	res = hub_run(h, "SELECT pg_current_snapshot()::text,"
			  "       $1::pg_snapshot IS NOT NULL AND s.horizon_xmin IS NOT NULL"
			  "       AND pg_snapshot_xmin($1::pg_snapshot) < s.horizon_xmin"
			  "  FROM sync_hub_state s",
			  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
	{
		hub_rollback(h);
		return -1;
	}
	*snapshot = xstrdup(PQgetvalue(res, 0, 0));
	*behind = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return 0;
}

/*
 * Open the cursor of the hub's changes a client at position has not seen
 * (never its own), up to snapshot target, after seq done (a download cut
 * short: docs/daemon.md), in seq order. Column 8 is the greatest seq of the
 * row's transaction among these rows: a download may be committed in parts
 * wherever no transaction straddles the cut. Fetch with hub_fetch().
 */
int
hub_changes_open(Hub *h, const char *position, const char *target, int64_t done,
				 const char *client_id, char *err, size_t errlen)
{
	char		donetxt[32];
	const char *params[4] = {position, client_id, target, donetxt};
	PGresult   *res;

	snprintf(donetxt, sizeof(donetxt), "%" PRId64, done);
	res = hub_run(h,
				  "DECLARE syncq_down NO SCROLL CURSOR FOR"
				  " SELECT seq, table_name, op, pk::text, row_data::text,"
				  "        (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority,"
				  "        max(seq) OVER (PARTITION BY txid)"
				  "   FROM sync_queue"
				  "  WHERE sync_xid_value(txid) >= sync_xid_value(pg_snapshot_xmin($1::pg_snapshot))"
				  "    AND NOT pg_visible_in_snapshot(txid, $1::pg_snapshot)"
				  "    AND pg_visible_in_snapshot(txid, $3::pg_snapshot)"
				  "    AND seq > $4::bigint"
				  "    AND origin <> $2::uuid"
				  "  ORDER BY seq",
				  4, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Fetch the next page of the cursor; NULL on error (a result with 0 rows
 * at the end). */
PGresult *
hub_fetch(Hub *h, const char *cursor, int n, char *err, size_t errlen)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM %s", n, cursor);
	return hub_run(h, sql, 0, NULL, PGRES_TUPLES_OK, err, errlen);
}

/* Open a cursor over every row of table t as JSON (first sync). */
int
hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen)
{
	Buf			sql = {0};
	PGresult   *res;

	buf_printf(&sql, "DECLARE syncq_snap NO SCROLL CURSOR FOR SELECT row_to_json(syncq_row)::text FROM ONLY %s AS syncq_row",
			   t->qname);
	res = hub_run(h, sql.p, 0, NULL, PGRES_COMMAND_OK, err, errlen);
	buf_free(&sql);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
hub_close_cursor(Hub *h, const char *cursor, char *err, size_t errlen)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "CLOSE %s", cursor);
	return hub_exec(h, sql, err, errlen);
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

/*
 * Prune the hub queue (sync_prune) if nobody did for a while; returns the
 * rows deleted, or -1.
 */
long
hub_prune_if_due(Hub *h, char *err, size_t errlen)
{
	return hub_number(h, "SELECT CASE WHEN pruned_at IS NULL OR pruned_at < now() - interval '10 minutes'"
					  " THEN sync_prune() END FROM sync_hub_state", NULL, err, errlen);
}

int
hub_download_end(Hub *h, const char *client_id, const char *snapshot, char *err, size_t errlen)
{
	if (hub_exec(h, "COMMIT", err, errlen) < 0)
		return -1;
	return hub_note_position(h, client_id, snapshot, err, errlen);
}

/* Remember where a client stands (its download position), for housekeeping. */
int
hub_note_position(Hub *h, const char *client_id, const char *snapshot, char *err, size_t errlen)
{
	const char *params[2] = {client_id, snapshot};
	PGresult   *res;

	res = hub_run(h, "INSERT INTO sync_clients AS c (node_id, down_snapshot) VALUES ($1, $2)"
			  " ON CONFLICT (node_id) DO UPDATE SET down_snapshot = EXCLUDED.down_snapshot, last_seen = now()",
			  2, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}
