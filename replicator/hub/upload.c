/*
 * hub_upload.c — a client's changes applied on the hub (docs/replication.md,
 * docs/daemon.md).
 *
 * One hub transaction per upload, serialised with every other upload by a
 * transaction-level advisory lock, so versions are compared against a
 * settled state. Values travel as JSON arrays that PostgreSQL turns into
 * rows with json_populate_recordset, one statement per run of changes.
 *
 * Poison changes. A change the hub refuses for a reason of its own data (a
 * constraint, a column or table it lacks, a value its type rejects) must not
 * hold up every change behind it. Each run is applied inside a savepoint; a
 * refused run is undone and bisected until the refused changes stand alone;
 * those are set aside in sync_errors, in the same transaction that moves the
 * client's position past them, and tried again on later syncs
 * (hub_retry_errors). An error of the link or the server (lost connection,
 * deadlock, shutdown) fails the whole upload instead, to be retried.
 */
#include "syncqd.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key of the upload lock ('syncq' in ASCII). */
#define APPLY_LOCK_KEY "495891476849"

/* Rows per statement when applying a run of changes. */
#define RUN_MAX 2000

/* Changes between two places the client may acknowledge at. */
#define MARK_EVERY 2000

/* Set-aside changes named one by one in the log per upload; then a count. */
#define LOG_PARKED_MAX 10

/* What became of one change. */
typedef enum
{
	DONE_APPLIED,
	DONE_OVERRULED,				/* lost to a later change (sync_conflicts) */
	DONE_SUPERSEDED,			/* a retried change its own node changed since */
	DONE_FAILED					/* refused by the hub: why says why */
} Done;

typedef struct
{
	Done		done;
	char	   *why;
	char		sqlstate[6];
} Outcome;

static void
set_failed(Outcome *o, const char *why, const char *sqlstate)
{
	if (strncmp(why, "hub: ", 5) == 0)
		why += 5;
	if (strncmp(why, "ERROR:  ", 8) == 0)
		why += 8;
	free(o->why);
	o->why = xstrdup(why);
	snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", sqlstate ? sqlstate : "");
	o->done = DONE_FAILED;
}

static void
outcomes_free(Outcome *o, int n)
{
	for (int i = 0; i < n; i++)
		free(o[i].why);
	free(o);
}

/*
 * Was the last error one of the link or the server rather than of the
 * change? Those end the upload (to be retried whole); the rest are the
 * change's own.
 */
static bool
transient_error(Hub *h)
{
	static const char *const classes[] = {"08", "25", "40", "53", "55", "57", "58", "XX"};

	if (PQstatus(h->conn) != CONNECTION_OK || h->sqlstate[0] == '\0')
		return true;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(h->sqlstate, classes[i], 2) == 0)
			return true;
	return false;
}

/*
 * The JSON value of field f as PostgreSQL should read it for a column of
 * type typ: blobs become bytea hex strings, and so does the base64 text a
 * bytea value is on the wire (docs/queue.md).
 */
static void
pg_json_value(Buf *b, const JField *f, const char *typ)
{
	bool		bytea = typ && strcmp(typ, "bytea") == 0;

	if (f->type == JV_STRING && typ && (strcmp(typ, "json") == 0 || strcmp(typ, "jsonb") == 0))
	{
		/* SQLite holds json as its text: that text is the value */
		buf_putn(b, f->text, f->len);
		return;
	}
	if (f->type == JV_STRING && bytea && f->len % 4 == 0 &&
		!(f->len >= 2 && f->text[0] == '\\' && f->text[1] == 'x'))
	{
		Buf			bytes = {0};

		if (base64_decode(f->text, f->len, &bytes) == 0)
		{
			Buf			t = {0};

			buf_puts(&t, "\\x");
			buf_hex(&t, (const unsigned char *) bytes.p, bytes.len);
			buf_json_string(b, t.p, t.len);
			buf_free(&t);
			buf_free(&bytes);
			return;
		}
		buf_free(&bytes);
	}
	if (f->type == JV_BLOB)
	{
		Buf			t = {0};

		if (bytea)
		{
			buf_puts(&t, "\\x");
			buf_hex(&t, (const unsigned char *) f->text, f->len);
		}
		else
			buf_putn(&t, f->text, f->len);
		buf_json_string(b, t.p ? t.p : "", t.len);
		buf_free(&t);
	}
	else
		buf_json_value(b, f);
}

/* Check the change's columns against the hub table; name the first stranger. */
static int
check_columns(const HubTable *t, const Change *c, char *err, size_t errlen)
{
	const JObject *o = c->op == 'D' ? &c->pk : &c->row;

	for (int i = 0; i < o->n; i++)
		if (hub_col(t, o->f[i].key) < 0)
		{
			snprintf(err, errlen, "column \"%s\" of table \"%s\" does not exist on the hub (change %" PRId64 ")",
					 o->f[i].key, c->table, c->seq);
			return -1;
		}
	for (int i = 0; i < c->pk.n; i++)
	{
		int			k = hub_col(t, c->pk.f[i].key);

		if (k < 0 || !t->is_pk[k])
		{
			snprintf(err, errlen, "column \"%s\" of table \"%s\" is not in the hub's primary key (change %" PRId64 ")",
					 c->pk.f[i].key, c->table, c->seq);
			return -1;
		}
	}
	if (c->pk.n != t->npk)
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\" names %d key columns, the hub's primary key has %d",
				 c->seq, c->table, c->pk.n, t->npk);
		return -1;
	}
	return 0;
}

/* Same set of columns, in the same order? */
static bool
same_columns(const JObject *a, const JObject *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->f[i].key, b->f[i].key) != 0)
			return false;
	return true;
}

/*
 * Apply changes[from..to) — one table, one kind (upsert or delete), one
 * column set, distinct keys — as one statement.
 */
static int
apply_run(Hub *h, const HubTable *t, Change **run_c, int n, char *err, size_t errlen)
{
	Buf			sql = {0},
				arr = {0};
	const Change *first = run_c[0];
	bool		del = first->op == 'D';
	const JObject *shape = del ? &first->pk : &first->row;
	char	   *qcols[256];
	int			ncols = shape->n;
	int			rc = 0;

	if (ncols > 256)
	{
		snprintf(err, errlen, "hub: table \"%s\" has more than 256 columns", t->name);
		return -1;
	}
	for (int i = 0; i < ncols; i++)
		qcols[i] = hub_quote_ident(h, shape->f[i].key);

	buf_putc(&arr, '[');
	for (int r = 0; r < n; r++)
	{
		const JObject *o = del ? &run_c[r]->pk : &run_c[r]->row;

		if (r)
			buf_putc(&arr, ',');
		buf_putc(&arr, '{');
		for (int i = 0; i < o->n; i++)
		{
			if (i)
				buf_putc(&arr, ',');
			buf_json_string(&arr, o->f[i].key, strlen(o->f[i].key));
			buf_putc(&arr, ':');
			pg_json_value(&arr, &o->f[i], t->types[hub_col(t, o->f[i].key)]);
		}
		buf_putc(&arr, '}');
	}
	buf_putc(&arr, ']');

	if (del)
	{
		buf_printf(&sql, "DELETE FROM %s AS t USING json_populate_recordset(NULL::%s, $1) AS k WHERE ",
				   t->qname, t->qname);
		for (int i = 0; i < ncols; i++)
			buf_printf(&sql, "%st.%s = k.%s", i ? " AND " : "", qcols[i], qcols[i]);
	}
	else
	{
		bool		any_set = false;

		buf_printf(&sql, "INSERT INTO %s AS t (", t->qname);
		for (int i = 0; i < ncols; i++)
			buf_printf(&sql, "%s%s", i ? ", " : "", qcols[i]);
		buf_puts(&sql, ") SELECT ");
		for (int i = 0; i < ncols; i++)
			buf_printf(&sql, "%sk.%s", i ? ", " : "", qcols[i]);
		buf_printf(&sql, " FROM json_populate_recordset(NULL::%s, $1) AS k ON CONFLICT (", t->qname);
		for (int i = 0, k = 0; i < t->ncols; i++)
			if (t->is_pk[i])
			{
				char	   *q = hub_quote_ident(h, t->cols[i]);

				buf_printf(&sql, "%s%s", k++ ? ", " : "", q);
				free(q);
			}
		buf_puts(&sql, ") DO UPDATE SET ");
		for (int i = 0; i < ncols; i++)
		{
			if (t->is_pk[hub_col(t, shape->f[i].key)])
				continue;
			buf_printf(&sql, "%s%s = EXCLUDED.%s", any_set ? ", " : "", qcols[i], qcols[i]);
			any_set = true;
		}
		if (!any_set)
		{
			/* a table of key columns only: nothing to update */
			char	   *p = strstr(sql.p, " DO UPDATE SET ");

			sql.len = (size_t) (p - sql.p);
			sql.p[sql.len] = '\0';
			buf_puts(&sql, " DO NOTHING");
		}
	}
	{
		const char *params[1] = {arr.p};
		PGresult   *res = hub_run(h, sql.p, 1, params, PGRES_COMMAND_OK, err, errlen);

		if (res == NULL)
		{
			size_t		l = strlen(err);

			snprintf(err + l, errlen - l, " (applying changes %" PRId64 "..%" PRId64 " to \"%s\")",
					 run_c[0]->seq, run_c[n - 1]->seq, t->name);
			rc = -1;
		}
		else
			PQclear(res);
	}
	for (int i = 0; i < ncols; i++)
		free(qcols[i]);
	buf_free(&sql);
	buf_free(&arr);
	return rc;
}

/*
 * Apply run c[0..n) inside a savepoint. If the hub refuses it for a reason
 * of the data, undo it and try each half, down to single changes; a single
 * change refused is marked failed in o[]. -1 only for an error that ends
 * the upload (err says which).
 */
static int
apply_guarded(Hub *h, const HubTable *t, Change **c, Outcome **o, int n, char *err, size_t errlen)
{
	char		why[2048];
	char		state[6];

	if (hub_exec(h, "SAVEPOINT syncq_run", err, errlen) < 0)
		return -1;
	if (apply_run(h, t, c, n, why, sizeof(why)) == 0)
		return hub_exec(h, "RELEASE SAVEPOINT syncq_run", err, errlen);
	if (transient_error(h))
	{
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	memcpy(state, h->sqlstate, sizeof(state));
	if (hub_exec(h, "ROLLBACK TO SAVEPOINT syncq_run", err, errlen) < 0)
		return -1;
	if (n == 1)
		set_failed(o[0], why, state);
	else if (apply_guarded(h, t, c, o, n / 2, err, errlen) < 0 ||
			 apply_guarded(h, t, c + n / 2, o + n / 2, n - n / 2, err, errlen) < 0)
		return -1;
	return hub_exec(h, "RELEASE SAVEPOINT syncq_run", err, errlen);
}

/* Apply the winning changes in order, grouped into runs. */
static int
apply_winners(Hub *h, Change **win, Outcome **wout, int nwin, char *err, size_t errlen)
{
	int			i = 0;
	VerMap		seen = {0};

	while (i < nwin)
	{
		HubTable   *t = hub_table(h, win[i]->table);
		bool		del = win[i]->op == 'D';
		int			j = i;
		Version		mark = {0, "", true};

		while (j < nwin && j - i < RUN_MAX)
		{
			Change	   *c = win[j];

			if (strcmp(c->table, win[i]->table) != 0 || (c->op == 'D') != del ||
				!same_columns(del ? &c->pk : &c->row, del ? &win[i]->pk : &win[i]->row))
				break;
			if (vermap_get(&seen, c->pk_json))
				break;			/* the same row twice: next statement */
			vermap_put(&seen, c->pk_json, &mark);
			j++;
		}
		vermap_free(&seen);
		if (apply_guarded(h, t, &win[i], &wout[i], j - i, err, errlen) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/*
 * Decide and apply changes cs[0..n) (one client's, in seq order) inside the
 * open upload transaction: last writer wins against sync_versions; winners
 * are applied (guarded), their versions stored and relayed to every other
 * client with their original version; overruled ones go to sync_conflicts.
 * out[i] says what became of cs[i]; *notify is set when an immediate change
 * was relayed. retry: these are set-aside changes tried again, and one its
 * own node has changed since is superseded, not a conflict.
 */
static int
apply_changes(Hub *h, Change **cs, int n, Outcome *out, bool retry, bool *notify,
			  char *err, size_t errlen)
{
	PGresult   *res;
	Change	  **win = xmalloc(sizeof(Change *) * (size_t) (n + 1));
	Outcome   **wout = xmalloc(sizeof(Outcome *) * (size_t) (n + 1));
	int			nwin = 0;
	VerMap		vers = {0};
	Buf			keys = {0},
				vrows = {0},
				relay = {0},
				confl = {0};
	int			nkeys = 0,
				nconfl = 0,
				nrelay = 0;
	const char *params[1];
	int			rc = -1;
	char		why[1024];

	/* what the hub cannot even try: an untracked table, a stranger column */
	buf_putc(&keys, '[');
	for (int i = 0; i < n; i++)
	{
		const Change *c = cs[i];
		const HubTable *t = hub_table(h, c->table);

		if (t == NULL)
		{
			snprintf(why, sizeof(why), "table \"%s\" is not tracked on the hub (run SELECT sync_track('%s') there)",
					 c->table, c->table);
			set_failed(&out[i], why, NULL);
			continue;
		}
		if (check_columns(t, c, why, sizeof(why)) < 0)
		{
			set_failed(&out[i], why, NULL);
			continue;
		}
		if (nkeys++)
			buf_putc(&keys, ',');
		buf_printf(&keys, "{\"i\":%d,\"t\":", i);
		buf_json_string(&keys, c->table, strlen(c->table));
		buf_puts(&keys, ",\"p\":");
		buf_json_string(&keys, c->pk_json, strlen(c->pk_json));
		buf_putc(&keys, '}');
	}
	buf_putc(&keys, ']');

	/* the current versions of every row they touch */
	if (nkeys > 0)
	{
		params[0] = keys.p;
		res = hub_run(h, "SELECT k.i, v.ver_us, v.ver_origin::text"
					  "  FROM json_to_recordset($1::json) AS k(i int, t text, p text)"
					  "  JOIN sync_versions v ON v.table_name = k.t AND v.pk = k.p",
					  1, params, PGRES_TUPLES_OK, err, errlen);
		if (res == NULL)
			goto out;
		for (int r = 0; r < PQntuples(res); r++)
		{
			const Change *c = cs[atoi(PQgetvalue(res, r, 0))];
			Version		v = {strtoll(PQgetvalue(res, r, 1), NULL, 10), "", true};
			char	   *k = row_key(c->table, c->pk_json);

			snprintf(v.origin, sizeof(v.origin), "%s", PQgetvalue(res, r, 2));
			vermap_put(&vers, k, &v);
			free(k);
		}
		PQclear(res);
	}

	/* decide, last writer wins */
	buf_putc(&confl, '[');
	for (int i = 0; i < n; i++)
	{
		Change	   *c = cs[i];
		char	   *k;
		Version		v = {c->ver_us, "", true};
		Version    *cur;

		if (out[i].done == DONE_FAILED)
			continue;
		k = row_key(c->table, c->pk_json);
		cur = vermap_get(&vers, k);
		memcpy(v.origin, c->origin, sizeof(v.origin));
		if (cur && version_cmp(&v, cur) < 0)
		{
			free(k);
			if (retry && strcmp(cur->origin, c->origin) == 0)
			{
				out[i].done = DONE_SUPERSEDED;
				continue;
			}
			/* overruled by what the hub already has */
			out[i].done = DONE_OVERRULED;
			if (nconfl++)
				buf_putc(&confl, ',');
			buf_puts(&confl, "{\"t\":");
			buf_json_string(&confl, c->table, strlen(c->table));
			buf_printf(&confl, ",\"pk\":%s,\"op\":\"%c\",\"r\":%s,\"at\":\"%s\",\"o\":\"%s\",\"wat\":%" PRId64 ",\"wo\":\"%s\"}",
					   c->pk_json, c->op, c->row_json ? c->row_json : "null",
					   c->changed_at, c->origin, cur->us, cur->origin);
			continue;
		}
		vermap_put(&vers, k, &v);
		free(k);
		out[i].done = DONE_APPLIED;
		wout[nwin] = &out[i];
		win[nwin++] = c;
	}
	buf_putc(&confl, ']');

	if (apply_winners(h, win, wout, nwin, err, errlen) < 0)
		goto out;

	/*
	 * What went through: one sync_versions row per changed row (its last
	 * applied change), and the relay rows in order.
	 */
	{
		VerMap		done = {0};
		Version		mark = {0, "", true};
		bool		first = true;

		buf_putc(&vrows, '[');
		for (int w = nwin - 1; w >= 0; w--)
		{
			const Change *c = win[w];
			char	   *k;

			if (wout[w]->done != DONE_APPLIED)
				continue;
			k = row_key(c->table, c->pk_json);
			if (vermap_get(&done, k) == NULL)
			{
				vermap_put(&done, k, &mark);
				if (!first)
					buf_putc(&vrows, ',');
				first = false;
				buf_puts(&vrows, "{\"t\":");
				buf_json_string(&vrows, c->table, strlen(c->table));
				buf_puts(&vrows, ",\"p\":");
				buf_json_string(&vrows, c->pk_json, strlen(c->pk_json));
				buf_printf(&vrows, ",\"u\":%" PRId64 ",\"o\":\"%s\",\"d\":%s}", c->ver_us, c->origin,
						   c->op == 'D' ? "true" : "false");
			}
			free(k);
		}
		buf_putc(&vrows, ']');
		vermap_free(&done);
	}
	buf_putc(&relay, '[');
	for (int w = 0; w < nwin; w++)
	{
		const Change *c = win[w];
		const HubTable *t = hub_table(h, c->table);

		if (wout[w]->done != DONE_APPLIED)
			continue;
		if (nrelay++)
			buf_putc(&relay, ',');
		buf_puts(&relay, "{\"s\":");
		buf_json_string(&relay, t->schema, strlen(t->schema));
		buf_puts(&relay, ",\"t\":");
		buf_json_string(&relay, c->table, strlen(c->table));
		buf_printf(&relay, ",\"op\":\"%c\",\"pk\":%s,\"r\":%s,\"at\":\"%s\",\"o\":\"%s\",\"pr\":\"%s\"}",
				   c->op, c->pk_json, c->row_json ? c->row_json : "null", c->changed_at,
				   c->origin, c->immediate ? "immediate" : "batched");
		if (c->immediate)
			*notify = true;
	}
	buf_putc(&relay, ']');

	if (nrelay > 0)
	{
		params[0] = vrows.p;
		res = hub_run(h, "INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)"
					  " SELECT x.t, x.p, x.u, x.o, x.d"
					  "   FROM json_to_recordset($1::json) AS x(t text, p text, u bigint, o uuid, d boolean)"
					  " ON CONFLICT (table_name, pk) DO UPDATE"
					  "   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted"
					  " WHERE (v.ver_us, v.ver_origin::text) <= (EXCLUDED.ver_us, EXCLUDED.ver_origin::text)",
					  1, params, PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
		/* relay to every other client, with the original version */
		params[0] = relay.p;
		res = hub_run(h, "INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)"
					  " SELECT pg_current_xact_id(), x.s, x.t, x.op, x.pk, x.r, x.at, x.o, x.pr"
					  "   FROM ROWS FROM (json_to_recordset($1::json)"
					  "        AS (s text, t text, op text, pk json, r json, at timestamptz, o uuid, pr text))"
					  "        WITH ORDINALITY AS x(s, t, op, pk, r, at, o, pr, n)"
					  "  ORDER BY x.n",
					  1, params, PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
	}
	if (nconfl > 0)
	{
		params[0] = confl.p;
		res = hub_run(h, "INSERT INTO sync_conflicts (table_name, pk, loser_op, loser_row, loser_changed_at, loser_origin, winner_changed_at, winner_origin)"
					  " SELECT x.t, x.pk, x.op, x.r, x.at, x.o, to_timestamp(0) + x.wat * interval '1 microsecond', x.wo"
					  "   FROM json_to_recordset($1::json) AS x(t text, pk json, op text, r json, at timestamptz, o uuid, wat bigint, wo uuid)",
					  1, params, PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
	}
	rc = 0;
out:
	free(win);
	free(wout);
	vermap_free(&vers);
	buf_free(&keys);
	buf_free(&vrows);
	buf_free(&relay);
	buf_free(&confl);
	return rc;
}

/*
 * Log what was set aside: the first few one by one, then a count. The lines
 * are kept in u->notes too, for serve to hand to the client.
 */
static void
log_parked(HubUpload *u, Change **cs, const Outcome *out, int n, const char *what)
{
	int			more = 0;
	char		line[1024];

	for (int i = 0; i < n; i++)
	{
		if (out[i].done != DONE_FAILED)
			continue;
		if (u->nnotes < LOG_PARKED_MAX)
		{
			snprintf(line, sizeof(line), "change %" PRId64 " of \"%s\" (%c %s) %s: %s",
					 cs[i]->seq, cs[i]->table, cs[i]->op, cs[i]->pk_json, what, out[i].why);
			logmsg(LOG_WARNING, "%s", line);
			u->notes[u->nnotes++] = xstrdup(line);
		}
		else
			more++;
	}
	if (more)
		logmsg(LOG_WARNING, "%d more changes %s", more, what);
	u->notes_more += more;
}

/* Forget an upload's notes. */
void
hub_upload_forget(HubUpload *u)
{
	for (int i = 0; i < u->nnotes; i++)
		free(u->notes[i]);
	free(u->marks);
	memset(u, 0, sizeof(*u));
}

/* Set the failed changes aside in sync_errors, in the upload transaction. */
static int
park_changes(Hub *h, const char *client_id, Change **cs, const Outcome *out, int n,
			 char *err, size_t errlen)
{
	Buf			rows = {0};
	int			nrows = 0;
	const char *params[2];
	PGresult   *res;

	buf_putc(&rows, '[');
	for (int i = 0; i < n; i++)
	{
		const Change *c = cs[i];

		if (out[i].done != DONE_FAILED)
			continue;
		if (nrows++)
			buf_putc(&rows, ',');
		buf_printf(&rows, "{\"seq\":%" PRId64 ",\"t\":", c->seq);
		buf_json_string(&rows, c->table, strlen(c->table));
		buf_printf(&rows, ",\"op\":\"%c\",\"pk\":%s,\"r\":%s,\"at\":\"%s\",\"o\":\"%s\",\"pr\":\"%s\",\"e\":",
				   c->op, c->pk_json, c->row_json ? c->row_json : "null", c->changed_at,
				   c->origin, c->immediate ? "immediate" : "batched");
		buf_json_string(&rows, out[i].why, strlen(out[i].why));
		buf_printf(&rows, ",\"st\":\"%s\"}", out[i].sqlstate);
	}
	buf_putc(&rows, ']');
	if (nrows == 0)
	{
		buf_free(&rows);
		return 0;
	}
	params[0] = client_id;
	params[1] = rows.p;
	res = hub_run(h, "INSERT INTO sync_errors AS e (node_id, seq, table_name, op, pk, row_data, changed_at, origin, priority, error, sqlstate)"
				  " SELECT $1::uuid, x.seq, x.t, x.op, x.pk, x.r, x.at, x.o, x.pr, x.e, nullif(x.st, '')"
				  "   FROM json_to_recordset($2::json)"
				  "        AS x(seq bigint, t text, op text, pk json, r json, at timestamptz, o uuid, pr text, e text, st text)"
				  " ON CONFLICT (node_id, seq) DO UPDATE"
				  "   SET error = EXCLUDED.error, sqlstate = EXCLUDED.sqlstate,"
				  "       last_failed = now(), attempts = e.attempts + 1",
				  2, params, PGRES_COMMAND_OK, err, errlen);
	buf_free(&rows);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Open an apply transaction: capture off, the upload lock, hub changes folded. */
static int
begin_apply(Hub *h, char *err, size_t errlen)
{
	PGresult   *res;

	if (hub_exec(h, "BEGIN", err, errlen) < 0)
		return -1;
	if (hub_exec(h, "SET LOCAL syncq.capture = off", err, errlen) < 0 ||
		hub_exec(h, "SELECT pg_advisory_xact_lock(" APPLY_LOCK_KEY ")", err, errlen) < 0)
		goto fail;
	res = hub_run(h, "SELECT sync_fold_local()", 0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	return 0;
fail:
	hub_rollback(h);
	return -1;
}

/*
 * Was this upload overtaken? A hub transaction that committed after the
 * fold at the start of the upload (sync_fold_local) was not compared with
 * it; if it changed a row this upload wrote, the upload may have overwritten
 * a newer hub change (its row lock made the upload wait, then the upload
 * wrote over it). Such an upload is rolled back and tried again, when the
 * fold sees the hub's change. (A hub transaction that writes one of these
 * rows later waits for this one and writes over it, with a later
 * changed_at: it is newer, and wins everywhere.) 1 yes, 0 no, -1 error.
 */
static int
overtaken(Hub *h, char *err, size_t errlen)
{
	long		n = hub_number(h,
							   "WITH late AS ("
							   "  SELECT q.table_name, q.pk::text AS pk FROM sync_queue q, sync_hub_state s"
							   "   WHERE sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(s.fold_snapshot))"
							   "     AND NOT pg_visible_in_snapshot(q.txid, s.fold_snapshot)"
							   "     AND q.origin = sync_node_id())"
							   " SELECT count(*) FROM late WHERE EXISTS ("
							   "  SELECT 1 FROM sync_queue m"
							   "   WHERE sync_xid_value(m.txid) = sync_xid_value(pg_current_xact_id())"
							   "     AND m.table_name = late.table_name AND m.pk::text = late.pk)",
							   NULL, err, errlen);

	if (n > 0)
	{
		h->up.overtaken = true;
		snprintf(err, errlen, "hub: a hub transaction changed %ld row%s of this upload while it was applied; the upload is sent again",
				 n, n == 1 ? "" : "s");
		return 1;
	}
	return n < 0 ? -1 : 0;
}

/*
 * Upload, in three steps so that memory stays bounded whatever the backlog:
 * hub_upload_begin opens the hub transaction and reads where the hub stands
 * for this client; hub_upload_chunk takes the client's pending changes a
 * page at a time (seq order); hub_upload_end checks the node's history,
 * stores the new position and commits. All of it is one hub transaction.
 */
int
hub_upload_begin(Hub *h, const char *client_id, int64_t ack_seq, uint64_t ack_digest,
				 char *err, size_t errlen)
{
	PGresult   *res;
	const char *params[1] = {client_id};
	HubUpload  *u = &h->up;

	hub_upload_forget(u);
	snprintf(u->client_id, sizeof(u->client_id), "%s", client_id);
	u->digest = ack_digest;
	if (begin_apply(h, err, errlen) < 0)
		return -1;
	res = hub_run(h, "INSERT INTO sync_clients (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING",
			  1, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	res = hub_run(h, "SELECT up_seq, up_digest FROM sync_clients WHERE node_id = $1 FOR UPDATE",
			  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto fail;
	u->hub_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	u->hub_digest = strtoull(PQgetvalue(res, 0, 1), NULL, 16);
	PQclear(res);
	if (u->hub_seq < ack_seq)
	{
		snprintf(err, errlen, "hub: the hub knows changes of node %s only up to seq %" PRId64 ", but this node had them acknowledged up to %" PRId64 " (was the hub restored from an older backup?)",
				 client_id, u->hub_seq, ack_seq);
		goto fail;
	}
	/* nothing re-sent yet: the history check is due once we pass hub_seq */
	u->checked = u->hub_seq == ack_seq && u->digest == u->hub_digest;
	if (u->hub_seq == ack_seq && !u->checked)
		goto clone;
	u->new_seq = u->hub_seq;
	return 0;
clone:
	snprintf(err, errlen, "node %s was already used by another copy of this database: the hub holds changes of this node that this file does not have (run syncqd --reidentify on this copy)",
			 client_id);
	u->stats.clone = true;
fail:
	hub_rollback(h);
	return -1;
}

/* The re-sent part must hash to what the hub recorded; else: a clone. */
static int
check_history(Hub *h, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;

	if (u->checked)
		return 0;
	if (u->digest != u->hub_digest)
	{
		snprintf(err, errlen, "node %s was already used by another copy of this database: the hub holds changes of this node that this file does not have (run syncqd --reidentify on this copy)",
				 u->client_id);
		u->stats.clone = true;
		return -1;
	}
	u->checked = true;
	return 0;
}

/*
 * Remember where the client may acknowledge the upload (once the hub has
 * committed it): after every MARK_EVERY changes and at the end of every
 * page, so that no acknowledgement holds the client's write lock long.
 */
static void
add_mark(HubUpload *u, int64_t seq)
{
	u->since_mark = 0;
	if (u->nmarks == u->capmarks)
	{
		u->capmarks = u->capmarks ? u->capmarks * 2 : 16;
		u->marks = xrealloc(u->marks, sizeof(UploadMark) * (size_t) u->capmarks);
	}
	u->marks[u->nmarks].seq = seq;
	u->marks[u->nmarks].digest = u->digest;
	u->nmarks++;
}

/*
 * Apply one page of pending changes (seq order) inside the upload. What the
 * hub already has is skipped after checking its digest (exactly once);
 * what the hub refuses is set aside in sync_errors; the position moves past
 * both.
 */
int
hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	int			first_new = 0,
				m;
	Change	  **cs;
	Outcome    *out;
	int			rc = -1;

	while (first_new < page->n && page->c[first_new].seq <= u->hub_seq)
	{
		u->digest = change_digest(u->digest, &page->c[first_new]);
		if (++u->since_mark >= MARK_EVERY)
			add_mark(u, page->c[first_new].seq);
		first_new++;
	}
	u->stats.skipped += first_new;
	if (first_new == page->n)
	{
		if (page->n > 0)
			add_mark(u, page->c[page->n - 1].seq);
		return 0;
	}
	if (check_history(h, err, errlen) < 0)
	{
		hub_rollback(h);
		return -1;
	}
	m = page->n - first_new;
	cs = xmalloc(sizeof(Change *) * (size_t) m);
	out = xcalloc((size_t) m, sizeof(Outcome));
	for (int i = 0; i < m; i++)
	{
		cs[i] = &page->c[first_new + i];
		u->digest = change_digest(u->digest, cs[i]);
		u->new_seq = cs[i]->seq;
		if (++u->since_mark >= MARK_EVERY && i < m - 1)
			add_mark(u, u->new_seq);
	}
	if (apply_changes(h, cs, m, out, false, &u->notify, err, errlen) < 0 ||
		park_changes(h, u->client_id, cs, out, m, err, errlen) < 0)
		goto out;
	for (int i = 0; i < m; i++)
	{
		if (out[i].done == DONE_APPLIED)
			u->stats.applied++;
		else if (out[i].done == DONE_OVERRULED)
			u->stats.conflicts++;
		else if (out[i].done == DONE_FAILED)
			u->stats.parked++;
	}
	log_parked(u, cs, out, m, "set aside in the hub's sync_errors");
	add_mark(u, u->new_seq);
	rc = 0;
out:
	free(cs);
	outcomes_free(out, m);
	if (rc < 0)
		hub_rollback(h);
	return rc;
}

/*
 * Finish the upload: check the node's history, store the new position,
 * NOTIFY the other clients if an immediate change went through, commit.
 * h->up.marks then holds where the client may acknowledge, page by page.
 */
int
hub_upload_end(Hub *h, UploadStats *stats, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	PGresult   *res;
	char		seqtxt[32],
				dig[32];
	const char *params[3];

	if (check_history(h, err, errlen) < 0)
		goto fail;
	snprintf(seqtxt, sizeof(seqtxt), "%" PRId64, u->new_seq);
	snprintf(dig, sizeof(dig), "%016" PRIx64, u->digest);
	params[0] = u->client_id;
	params[1] = seqtxt;
	params[2] = dig;
	res = hub_run(h, "UPDATE sync_clients SET up_seq = $2, up_digest = $3, last_seen = now() WHERE node_id = $1",
				  3, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (overtaken(h, err, errlen) != 0)
		goto fail;
	if (u->notify && hub_notify_upload(h, u->client_id, err, errlen) < 0)
		goto fail;
	if (hub_exec(h, "COMMIT", err, errlen) < 0)
		goto fail;
	*stats = u->stats;
	return 0;
fail:
	*stats = u->stats;
	hub_rollback(h);
	return -1;
}

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
	if (begin_apply(h, err, errlen) < 0)
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
	if (apply_changes(h, cs, n, out, true, &notify, err, errlen) < 0)
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
	if (overtaken(h, err, errlen) != 0)
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

void
hub_errors_free(HubError *rows, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(rows[i].table);
		free(rows[i].pk);
		free(rows[i].error);
		free(rows[i].first_failed);
		free(rows[i].last_failed);
	}
	free(rows);
}

/* How many of this client's changes the hub overruled; -1 on error. */
long
hub_count_conflicts(Hub *h, const char *client_id, char *err, size_t errlen)
{
	return hub_number(h, "SELECT count(*) FROM sync_conflicts WHERE loser_origin = $1::uuid",
					  client_id, err, errlen);
}
