/*
 * hub.c — the PostgreSQL side of a sync, over libpq.
 *
 * Upload: one hub transaction per upload, serialised with every other
 * upload by a transaction-level advisory lock, so versions are compared
 * against a settled state. Download: one REPEATABLE READ transaction whose
 * snapshot becomes the client's new position (docs/replication.md).
 * Every identifier is quoted with PQescapeIdentifier and every value is a
 * parameter; values travel as JSON arrays that PostgreSQL turns into rows
 * with json_populate_recordset, one statement per run of changes.
 */
#include "syncqd.h"
#include "hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key of the upload lock ('syncq' in ASCII). */
#define APPLY_LOCK_KEY "495891476849"

/* Rows per statement when applying a run of changes. */
#define RUN_MAX 2000

static void
set_err(char *err, size_t errlen, const char *what, PGconn *conn)
{
	const char *msg = conn ? PQerrorMessage(conn) : "";
	size_t		n;

	snprintf(err, errlen, "%s: %s", what, msg);
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/* Run a statement; on failure fill err and return NULL. */
static PGresult *
run(Hub *h, const char *sql, int nparams, const char *const *params,
	ExecStatusType want, char *err, size_t errlen)
{
	PGresult   *res = PQexecParams(h->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	ExecStatusType st = PQresultStatus(res);

	if (st != want && !(want == PGRES_COMMAND_OK && st == PGRES_TUPLES_OK))
	{
		const char *msg = PQresultErrorMessage(res);
		size_t		n;

		snprintf(err, errlen, "hub: %s", msg && *msg ? msg : PQerrorMessage(h->conn));
		n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQclear(res);
		return NULL;
	}
	return res;
}

static int
exec_ok(Hub *h, const char *sql, char *err, size_t errlen)
{
	PGresult   *res = run(h, sql, 0, NULL, PGRES_COMMAND_OK, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static char *
quote_ident(Hub *h, const char *s)
{
	char	   *q = PQescapeIdentifier(h->conn, s, strlen(s));
	char	   *r;

	if (q == NULL)
		return xstrdup("\"\"");
	r = xstrdup(q);
	PQfreemem(q);
	return r;
}

static void
free_tables(Hub *h)
{
	for (int i = 0; i < h->ntables; i++)
	{
		HubTable   *t = &h->tables[i];

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
	}
	free(h->tables);
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
	res = run(h,
			  "SELECT t.table_schema, t.table_name, a.attname, format_type(a.atttypid, NULL),"
			  "       coalesce(a.attnum = ANY (i.indkey::int2[]), false)"
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
				char	   *qs = quote_ident(h, schema),
						   *qn = quote_ident(h, name);
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
		t->cols[t->ncols] = xstrdup(PQgetvalue(res, r, 2));
		t->types[t->ncols] = xstrdup(PQgetvalue(res, r, 3));
		t->is_pk[t->ncols] = PQgetvalue(res, r, 4)[0] == 't';
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
Hub *
hub_connect(const char *conninfo, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
	const char *vals[] = {conninfo, "syncqd", "10", NULL};
	Hub		   *h = xcalloc(1, sizeof(Hub));
	PGresult   *res;

	h->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(h->conn) != CONNECTION_OK)
	{
		set_err(err, errlen, "cannot connect to the hub", h->conn);
		hub_close(h);
		return NULL;
	}
	if (exec_ok(h, "SET client_encoding = 'UTF8'", err, errlen) < 0 ||
		exec_ok(h, "SET timezone = 'UTC'", err, errlen) < 0 ||
		exec_ok(h, "SET datestyle = 'ISO'", err, errlen) < 0 ||
		exec_ok(h, "SET extra_float_digits = 1", err, errlen) < 0)
	{
		hub_close(h);
		return NULL;
	}
	res = run(h, "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
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
		char	   *q = quote_ident(h, PQgetvalue(res, 0, 0));
		Buf			b = {0};

		buf_printf(&b, "SET search_path = %s, pg_catalog", q);
		free(q);
		PQclear(res);
		if (exec_ok(h, b.p, err, errlen) < 0)
		{
			buf_free(&b);
			hub_close(h);
			return NULL;
		}
		buf_free(&b);
	}
	res = run(h, "SELECT sync_node_id()::text", 0, NULL, PGRES_TUPLES_OK, err, errlen);
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
	PQfinish(h->conn);
	free(h);
}

void
hub_rollback(Hub *h)
{
	PGresult   *res = PQexec(h->conn, "ROLLBACK");

	PQclear(res);
}

/* ---- upload ------------------------------------------------------------- */

/* The JSON value of field f as PostgreSQL should read it for a column of
 * type typ: blobs become bytea hex strings. */
static void
pg_json_value(Buf *b, const JField *f, const char *typ)
{
	if (f->type == JV_STRING && typ && (strcmp(typ, "json") == 0 || strcmp(typ, "jsonb") == 0))
	{
		/* SQLite holds json as its text: that text is the value */
		buf_putn(b, f->text, f->len);
		return;
	}
	if (f->type == JV_BLOB)
	{
		Buf			t = {0};

		if (typ && strcmp(typ, "bytea") == 0)
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
			snprintf(err, errlen, "hub: column \"%s\" of table \"%s\" does not exist on the hub (change %" PRId64 ")",
					 o->f[i].key, c->table, c->seq);
			return -1;
		}
	for (int i = 0; i < c->pk.n; i++)
	{
		int			k = hub_col(t, c->pk.f[i].key);

		if (!t->is_pk[k])
		{
			snprintf(err, errlen, "hub: column \"%s\" of table \"%s\" is not in the hub's primary key (change %" PRId64 ")",
					 c->pk.f[i].key, c->table, c->seq);
			return -1;
		}
	}
	if (c->pk.n != t->npk)
	{
		snprintf(err, errlen, "hub: change %" PRId64 " of \"%s\" names %d key columns, the hub's primary key has %d",
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
		qcols[i] = quote_ident(h, shape->f[i].key);

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
				char	   *q = quote_ident(h, t->cols[i]);

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
		PGresult   *res = run(h, sql.p, 1, params, PGRES_COMMAND_OK, err, errlen);

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

/* Apply the winning changes in order, grouped into runs. */
static int
apply_winners(Hub *h, Change **win, int nwin, char *err, size_t errlen)
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
		if (apply_run(h, t, &win[i], j - i, err, errlen) < 0)
		{
			vermap_free(&seen);
			return -1;
		}
		vermap_free(&seen);
		i = j;
	}
	return 0;
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

	memset(u, 0, sizeof(*u));
	snprintf(u->client_id, sizeof(u->client_id), "%s", client_id);
	u->digest = ack_digest;
	if (exec_ok(h, "BEGIN", err, errlen) < 0)
		return -1;
	if (exec_ok(h, "SET LOCAL syncq.capture = off", err, errlen) < 0 ||
		exec_ok(h, "SELECT pg_advisory_xact_lock(" APPLY_LOCK_KEY ")", err, errlen) < 0)
		goto fail;
	res = run(h, "INSERT INTO sync_clients (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING",
			  1, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	res = run(h, "SELECT up_seq, up_digest FROM sync_clients WHERE node_id = $1 FOR UPDATE",
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
	res = run(h, "SELECT sync_fold_local()", 0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
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

/* Apply one page of pending changes (seq order) inside the upload. */
int
hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	PGresult   *res;
	int			first_new = 0;
	Change	  **win = NULL;
	int			nwin = 0;
	VerMap		vers = {0};
	Buf			keys = {0},
				vrows = {0},
				relay = {0},
				confl = {0};
	int			nconfl = 0;
	const char *params[1];
	int			rc = -1;

	/* exactly once: what the hub already has is skipped, after checking it */
	while (first_new < page->n && page->c[first_new].seq <= u->hub_seq)
		u->digest = change_digest(u->digest, &page->c[first_new++]);
	u->stats.skipped += first_new;
	if (first_new == page->n)
		return 0;
	if (check_history(h, err, errlen) < 0)
		goto out;

	/* the current versions of every row the page touches */
	buf_putc(&keys, '[');
	for (int i = first_new; i < page->n; i++)
	{
		const Change *c = &page->c[i];

		if (hub_table(h, c->table) == NULL)
		{
			snprintf(err, errlen, "hub: table \"%s\" is not tracked on the hub (change %" PRId64 "; run SELECT sync_track('%s') there)",
					 c->table, c->seq, c->table);
			goto out;
		}
		if (check_columns(hub_table(h, c->table), c, err, errlen) < 0)
			goto out;
		if (i > first_new)
			buf_putc(&keys, ',');
		buf_printf(&keys, "{\"i\":%d,\"t\":", i);
		buf_json_string(&keys, c->table, strlen(c->table));
		buf_puts(&keys, ",\"p\":");
		buf_json_string(&keys, c->pk_json, strlen(c->pk_json));
		buf_putc(&keys, '}');
	}
	buf_putc(&keys, ']');
	params[0] = keys.p;
	res = run(h, "SELECT k.i, v.ver_us, v.ver_origin::text"
			  "  FROM json_to_recordset($1::json) AS k(i int, t text, p text)"
			  "  JOIN sync_versions v ON v.table_name = k.t AND v.pk = k.p",
			  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto out;
	for (int r = 0; r < PQntuples(res); r++)
	{
		const Change *c = &page->c[atoi(PQgetvalue(res, r, 0))];
		Version		v = {strtoll(PQgetvalue(res, r, 1), NULL, 10), "", true};
		char	   *k = row_key(c->table, c->pk_json);

		snprintf(v.origin, sizeof(v.origin), "%s", PQgetvalue(res, r, 2));
		vermap_put(&vers, k, &v);
		free(k);
	}
	PQclear(res);

	/* decide, last writer wins */
	win = xmalloc(sizeof(Change *) * (size_t) (page->n + 1));
	buf_putc(&relay, '[');
	buf_putc(&confl, '[');
	for (int i = first_new; i < page->n; i++)
	{
		Change	   *c = &page->c[i];
		char	   *k = row_key(c->table, c->pk_json);
		Version		v = {c->ver_us, "", true};
		Version    *cur = vermap_get(&vers, k);
		const HubTable *t = hub_table(h, c->table);

		memcpy(v.origin, c->origin, sizeof(v.origin));
		u->digest = change_digest(u->digest, c);
		u->new_seq = c->seq;
		if (cur && version_cmp(&v, cur) < 0)
		{
			/* overruled by what the hub already has */
			if (nconfl++)
				buf_putc(&confl, ',');
			buf_puts(&confl, "{\"t\":");
			buf_json_string(&confl, c->table, strlen(c->table));
			buf_printf(&confl, ",\"pk\":%s,\"op\":\"%c\",\"r\":%s,\"at\":\"%s\",\"o\":\"%s\",\"wat\":%" PRId64 ",\"wo\":\"%s\"}",
					   c->pk_json, c->op, c->row_json ? c->row_json : "null",
					   c->changed_at, c->origin, cur->us, cur->origin);
			u->stats.conflicts++;
			free(k);
			continue;
		}
		vermap_put(&vers, k, &v);
		free(k);
		win[nwin++] = c;
		if (nwin > 1)
			buf_putc(&relay, ',');
		buf_puts(&relay, "{\"s\":");
		buf_json_string(&relay, t->schema, strlen(t->schema));
		buf_puts(&relay, ",\"t\":");
		buf_json_string(&relay, c->table, strlen(c->table));
		buf_printf(&relay, ",\"op\":\"%c\",\"pk\":%s,\"r\":%s,\"at\":\"%s\",\"o\":\"%s\",\"pr\":\"%s\"}",
				   c->op, c->pk_json, c->row_json ? c->row_json : "null", c->changed_at,
				   c->origin, c->immediate ? "immediate" : "batched");
		if (c->immediate)
			u->notify = true;
	}
	buf_putc(&relay, ']');
	buf_putc(&confl, ']');

	/* one sync_versions row per changed row: its last winning change */
	{
		VerMap		done = {0};
		Version		mark = {0, "", true};
		bool		first = true;

		buf_putc(&vrows, '[');
		for (int w = nwin - 1; w >= 0; w--)
		{
			const Change *c = win[w];
			char	   *k = row_key(c->table, c->pk_json);

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

	if (nwin > 0)
	{
		if (apply_winners(h, win, nwin, err, errlen) < 0)
			goto out;
		params[0] = vrows.p;
		res = run(h, "INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)"
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
		res = run(h, "INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)"
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
		res = run(h, "INSERT INTO sync_conflicts (table_name, pk, loser_op, loser_row, loser_changed_at, loser_origin, winner_changed_at, winner_origin)"
				  " SELECT x.t, x.pk, x.op, x.r, x.at, x.o, to_timestamp(0) + x.wat * interval '1 microsecond', x.wo"
				  "   FROM json_to_recordset($1::json) AS x(t text, pk json, op text, r json, at timestamptz, o uuid, wat bigint, wo uuid)",
				  1, params, PGRES_COMMAND_OK, err, errlen);
		if (res == NULL)
			goto out;
		PQclear(res);
	}
	u->stats.applied += nwin;
	rc = 0;
out:
	free(win);
	vermap_free(&vers);
	buf_free(&keys);
	buf_free(&vrows);
	buf_free(&relay);
	buf_free(&confl);
	if (rc < 0)
		hub_rollback(h);
	return rc;
}

/* Finish the upload: check the history, store the position, commit. */
int
hub_upload_end(Hub *h, int64_t *new_seq, uint64_t *new_digest, UploadStats *stats,
			   char *err, size_t errlen)
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
	res = run(h, "UPDATE sync_clients SET up_seq = $2, up_digest = $3, last_seen = now() WHERE node_id = $1",
			  3, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (u->notify && exec_ok(h, "NOTIFY sync_queue", err, errlen) < 0)
		goto fail;
	if (exec_ok(h, "COMMIT", err, errlen) < 0)
		goto fail;
	*new_seq = u->new_seq;
	*new_digest = u->digest;
	*stats = u->stats;
	return 0;
fail:
	*stats = u->stats;
	hub_rollback(h);
	return -1;
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
	if (exec_ok(h, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) < 0)
		return -1;
	res = run(h, "SELECT pg_current_snapshot()::text,"
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
 * (never its own), in seq order. Fetch with hub_fetch().
 */
int
hub_changes_open(Hub *h, const char *position, const char *client_id, char *err, size_t errlen)
{
	const char *params[2] = {position, client_id};
	PGresult   *res = run(h,
						  "DECLARE syncq_down NO SCROLL CURSOR FOR"
						  " SELECT seq, table_name, op, pk::text, row_data::text,"
						  "        (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority"
						  "   FROM sync_queue"
						  "  WHERE sync_xid_value(txid) >= sync_xid_value(pg_snapshot_xmin($1::pg_snapshot))"
						  "    AND NOT pg_visible_in_snapshot(txid, $1::pg_snapshot)"
						  "    AND origin <> $2::uuid"
						  "  ORDER BY seq",
						  2, params, PGRES_COMMAND_OK, err, errlen);

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
	return run(h, sql, 0, NULL, PGRES_TUPLES_OK, err, errlen);
}

/* Open a cursor over every row of table t as JSON (first sync). */
int
hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen)
{
	Buf			sql = {0};
	PGresult   *res;

	buf_printf(&sql, "DECLARE syncq_snap NO SCROLL CURSOR FOR SELECT row_to_json(syncq_row)::text FROM ONLY %s AS syncq_row",
			   t->qname);
	res = run(h, sql.p, 0, NULL, PGRES_COMMAND_OK, err, errlen);
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
	return exec_ok(h, sql, err, errlen);
}

/*
 * Prune the hub queue (sync_prune) if nobody did for a while; returns the
 * rows deleted, or -1.
 */
long
hub_prune_if_due(Hub *h, char *err, size_t errlen)
{
	PGresult   *res = run(h, "SELECT CASE WHEN pruned_at IS NULL OR pruned_at < now() - interval '10 minutes'"
						  " THEN sync_prune() END FROM sync_hub_state",
						  0, NULL, PGRES_TUPLES_OK, err, errlen);
	long		n;

	if (res == NULL)
		return -1;
	n = PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

int
hub_download_end(Hub *h, const char *client_id, const char *snapshot, char *err, size_t errlen)
{
	const char *params[2] = {client_id, snapshot};
	PGresult   *res;

	if (exec_ok(h, "COMMIT", err, errlen) < 0)
		return -1;
	/* remember where the client stands, for housekeeping */
	res = run(h, "INSERT INTO sync_clients AS c (node_id, down_snapshot) VALUES ($1, $2)"
			  " ON CONFLICT (node_id) DO UPDATE SET down_snapshot = EXCLUDED.down_snapshot, last_seen = now()",
			  2, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}
