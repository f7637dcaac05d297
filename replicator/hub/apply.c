/*
 * apply.c — a run of one client's changes decided and applied inside a hub
 * transaction (apply.h; docs/replication.md): the core both an upload
 * (upload.c) and a retry of set-aside changes (errors.c) run.
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
 *
 *   hub_apply_begin     open the transaction: capture off, the upload lock, fold
 *   hub_apply_changes   decide (last writer wins) and apply; relay, conflicts
 *   hub_park_changes    set the refused ones aside in sync_errors
 *   hub_overtaken       did a hub transaction overtake this one?
 *   outcomes_free       free what hub_apply_changes said of each change
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "hub/apply.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key of the upload lock ('syncq' in ASCII). */
#define APPLY_LOCK_KEY "495891476849"

/* Rows per statement when applying a run of changes. */
#define RUN_MAX 2000

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

void
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
int
hub_apply_changes(Hub *h, Change **cs, int n, Outcome *out, bool retry, bool *notify,
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

/* Set the failed changes aside in sync_errors, in the upload transaction. */
int
hub_park_changes(Hub *h, const char *client_id, Change **cs, const Outcome *out, int n,
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
int
hub_apply_begin(Hub *h, char *err, size_t errlen)
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
int
hub_overtaken(Hub *h, char *err, size_t errlen)
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

