/*
 * write.c — one row written to the client file the way SQLite apps read it
 * (client.h; docs/replication.md, Types): values converted by the hub
 * column's type, one cached upsert or delete statement per table and
 * column set.
 *
 *   client_table_typed  learn a table's kinds (the hub's types) and forms
 *   client_bind_value   bind one value in its column's form
 *   client_write_row    upsert a row, or delete a key
 *   client_clear_table  empty a table (first sync)
 *   hubtypes_add, hubtypes_get, hubtypes_free   the hub's column types
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "client/client.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The form of column col by forms (syncq_tracked.forms: NULL, a form's
 * name, or a JSON object of column names or "*" to forms' names).
 */
static ValueForm
column_form(const JObject *byname, const char *forms, const char *col)
{
	ValueForm	form = FORM_DEFAULT;
	const JField *f;

	if (byname == NULL)
	{
		if (forms == NULL || value_form(forms, &form) < 0)
			form = FORM_DEFAULT;
		return form;
	}
	f = jobj_get(byname, col);
	if (f == NULL)
		f = jobj_get(byname, "*");
	if (f && f->type == JV_STRING && value_form(f->text, &form) == 0)
		return form;
	return FORM_DEFAULT;
}

/* Learn how t's values are written: the hub's types and the table's forms. */
void
client_table_typed(Client *cl, ClientTable *t, const HubTypes *types)
{
	JObject		byname = {0};
	bool		object = false;
	char		e[128];

	if (t->forms && t->forms[0] == '{')
	{
		object = jobj_parse(t->forms, strlen(t->forms), &byname, e, sizeof(e)) == 0;
		if (!object)
			logmsg(LOG_WARNING, "client \"%s\": syncq_tracked.forms of \"%s\" is not a JSON object (%s); the default forms are used",
				   cl->path, t->name, e);
	}
	t->kind = xcalloc((size_t) t->ncols, sizeof(ValueKind));
	t->form = xcalloc((size_t) t->ncols, sizeof(ValueForm));
	t->nuuidkey = 0;
	for (int i = 0; i < t->ncols; i++)
	{
		t->kind[i] = value_kind(hubtypes_get(types, t->name, t->cols[i]));
		t->form[i] = column_form(object ? &byname : NULL, object ? NULL : t->forms, t->cols[i]);
		if (t->is_pk[i] && t->kind[i] == VK_UUID)
			t->nuuidkey++;
	}
	if (object)
		jobj_free(&byname);
	t->typed = true;
}

/*
 * Bind the hub's value f to parameter idx, in the form SQLite apps read
 * (value_for_sqlite; docs/replication.md, Types). -2 if this file cannot
 * take the value (why), -1 on an error of SQLite.
 */
int
client_bind_value(Client *cl, sqlite3_stmt *st, int idx, const JField *f, ValueKind kind,
		   ValueForm form, char *err, size_t errlen)
{
	SqlValue	v;
	char		why[512];
	int			rc;

	if (value_for_sqlite(f, kind, form, &v, why, sizeof(why)) < 0)
	{
		snprintf(err, errlen, "client \"%s\": %s", cl->path, why);
		sqlvalue_free(&v);
		return -2;
	}
	switch (v.type)
	{
		case SQLITE_INTEGER:
			rc = sqlite3_bind_int64(st, idx, v.i);
			break;
		case SQLITE_FLOAT:
			rc = sqlite3_bind_double(st, idx, v.d);
			break;
		case SQLITE_TEXT:
			rc = sqlite3_bind_text64(st, idx, v.p, v.n, SQLITE_TRANSIENT, SQLITE_UTF8);
			break;
		case SQLITE_BLOB:
			rc = sqlite3_bind_blob64(st, idx, v.p, v.n, SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_null(st, idx);
			break;
	}
	sqlvalue_free(&v);
	if (rc != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "bind");
		return -1;
	}
	return 0;
}

/* The cached upsert/delete statement for this table and column set. */
static sqlite3_stmt *
apply_stmt(Client *cl, const ClientTable *t, bool del, const JObject *shape, char *err, size_t errlen)
{
	Buf			key = {0};
	sqlite3_stmt *st;
	char	   *sql;

	buf_printf(&key, "%c%s", del ? 'D' : 'U', t->name);
	for (int i = 0; i < shape->n; i++)
		buf_printf(&key, "\x1f%s", shape->f[i].key);
	for (int i = 0; i < cl->nstmts; i++)
		if (strcmp(cl->stmts[i].key, key.p) == 0)
		{
			buf_free(&key);
			sqlite3_reset(cl->stmts[i].st);
			return cl->stmts[i].st;
		}

	{
		Buf			b = {0};

		if (del)
		{
			char	   *q = sqlite3_mprintf("DELETE FROM \"%w\" WHERE ", t->name);

			buf_puts(&b, q);
			sqlite3_free(q);
			for (int i = 0; i < shape->n; i++)
			{
				q = sqlite3_mprintf("%s\"%w\" = ?%d", i ? " AND " : "", shape->f[i].key, i + 1);
				buf_puts(&b, q);
				sqlite3_free(q);
			}
		}
		else
		{
			char	   *q = sqlite3_mprintf("INSERT INTO \"%w\"(", t->name);
			bool		any = false;

			buf_puts(&b, q);
			sqlite3_free(q);
			for (int i = 0; i < shape->n; i++)
			{
				q = sqlite3_mprintf("%s\"%w\"", i ? ", " : "", shape->f[i].key);
				buf_puts(&b, q);
				sqlite3_free(q);
			}
			buf_puts(&b, ") VALUES(");
			for (int i = 0; i < shape->n; i++)
				buf_printf(&b, "%s?%d", i ? ", " : "", i + 1);
			buf_puts(&b, ") ON CONFLICT(");
			for (int i = 0, k = 0; i < t->ncols; i++)
				if (t->is_pk[i])
				{
					q = sqlite3_mprintf("%s\"%w\"", k++ ? ", " : "", t->cols[i]);
					buf_puts(&b, q);
					sqlite3_free(q);
				}
			buf_puts(&b, ") DO UPDATE SET ");
			for (int i = 0; i < shape->n; i++)
			{
				if (t->is_pk[client_col(t, shape->f[i].key)])
					continue;
				q = sqlite3_mprintf("%s\"%w\" = excluded.\"%w\"", any ? ", " : "", shape->f[i].key, shape->f[i].key);
				buf_puts(&b, q);
				sqlite3_free(q);
				any = true;
			}
			if (!any)
			{
				char	   *p = strstr(b.p, " DO UPDATE SET ");

				b.len = (size_t) (p - b.p);
				b.p[b.len] = '\0';
				buf_puts(&b, " DO NOTHING");
			}
		}
		sql = b.p;
	}
	if (sqlite3_prepare_v2(cl->db, sql, -1, &st, NULL) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "preparing an apply statement");
		free(sql);
		buf_free(&key);
		return NULL;
	}
	free(sql);
	cl->stmts = xrealloc(cl->stmts, (size_t) (cl->nstmts + 1) * sizeof(*cl->stmts));
	cl->stmts[cl->nstmts].key = key.p;
	cl->stmts[cl->nstmts].st = st;
	cl->nstmts++;
	return st;
}

/* Does this SQLite result code say the change itself was refused? */
static bool
refused(int rc)
{
	switch (rc & 0xff)
	{
		case SQLITE_CONSTRAINT:
		case SQLITE_MISMATCH:
		case SQLITE_TOOBIG:
		case SQLITE_RANGE:
		case SQLITE_ERROR:
			return true;
		default:
			return false;
	}
}

/* Number of spellings of a uuid rekey_uuid() looks for, canonical included. */
#define UUID_SPELLINGS 6

/*
 * The statement that gives a row keyed by a uuid in another spelling the
 * canonical key: UPDATE OR IGNORE t SET u = ?1 WHERE u IN (?1, ..., ?6)
 * AND k = ?7 ... AND NOT (u = ?1), per key column in key order, each with
 * UUID_SPELLINGS parameters.
 */
static sqlite3_stmt *
rekey_stmt(Client *cl, const ClientTable *t, char *err, size_t errlen)
{
	Buf			key = {0},
				sql = {0},
				same = {0};
	sqlite3_stmt *st;
	char	   *q;

	buf_printf(&key, "K%s", t->name);
	for (int i = 0; i < cl->nstmts; i++)
		if (strcmp(cl->stmts[i].key, key.p) == 0)
		{
			buf_free(&key);
			sqlite3_reset(cl->stmts[i].st);
			return cl->stmts[i].st;
		}
	q = sqlite3_mprintf("UPDATE OR IGNORE \"%w\" SET ", t->name);
	buf_puts(&sql, q);
	sqlite3_free(q);
	for (int k = 1, n = 0; k <= t->npk; k++)
		for (int c = 0; c < t->ncols; c++)
			if (t->is_pk[c] == k && t->kind[c] == VK_UUID)
			{
				q = sqlite3_mprintf("%s\"%w\" = ?%d", n++ ? ", " : "", t->cols[c], (k - 1) * UUID_SPELLINGS + 1);
				buf_puts(&sql, q);
				sqlite3_free(q);
			}
	buf_puts(&sql, " WHERE ");
	for (int k = 1; k <= t->npk; k++)
		for (int c = 0; c < t->ncols; c++)
			if (t->is_pk[c] == k)
			{
				int			b = (k - 1) * UUID_SPELLINGS + 1;

				if (t->kind[c] == VK_UUID)
				{
					q = sqlite3_mprintf("\"%w\" IN (?%d, ?%d, ?%d, ?%d, ?%d, ?%d) AND ", t->cols[c],
										b, b + 1, b + 2, b + 3, b + 4, b + 5);
					buf_puts(&sql, q);
					sqlite3_free(q);
					q = sqlite3_mprintf("%s\"%w\" = ?%d", same.len ? " AND " : "", t->cols[c], b);
					buf_puts(&same, q);
				}
				else
				{
					q = sqlite3_mprintf("\"%w\" = ?%d AND ", t->cols[c], b);
					buf_puts(&sql, q);
				}
				sqlite3_free(q);
			}
	buf_printf(&sql, "NOT (%s)", same.p);
	buf_free(&same);
	if (sqlite3_prepare_v2(cl->db, sql.p, -1, &st, NULL) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "preparing a uuid key statement");
		buf_free(&sql);
		buf_free(&key);
		return NULL;
	}
	buf_free(&sql);
	cl->stmts = xrealloc(cl->stmts, (size_t) (cl->nstmts + 1) * sizeof(*cl->stmts));
	cl->stmts[cl->nstmts].key = key.p;
	cl->stmts[cl->nstmts].st = st;
	cl->nstmts++;
	return st;
}

/*
 * A row this file keyed by a uuid in another spelling than the hub's (upper
 * case, no hyphens, braces: what apps write, and PostgreSQL reads as the
 * same uuid) is the row the hub's key names: it is given the hub's
 * spelling before the hub's change is written, so that the change finds it
 * rather than making a second row. Capture is paused during an apply: the
 * new key is not queued. 0, -2 if the file refused it, -1 on an error.
 */
static int
rekey_uuid(Client *cl, const ClientTable *t, const JObject *o, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int			rc;

	/* every key column must be there, every uuid a uuid */
	for (int c = 0; c < t->ncols; c++)
		if (t->is_pk[c])
		{
			const JField *f = jobj_get(o, t->cols[c]);
			char		canon[37];

			if (f == NULL || (t->kind[c] == VK_UUID &&
							  (f->type != JV_STRING || !uuid_canonical(f->text, f->len, canon))))
				return 0;
		}
	if ((st = rekey_stmt(cl, t, err, errlen)) == NULL)
		return -1;
	for (int c = 0; c < t->ncols; c++)
		if (t->is_pk[c])
		{
			const JField *f = jobj_get(o, t->cols[c]);
			int			b = (t->is_pk[c] - 1) * UUID_SPELLINGS + 1;
			char		sp[UUID_SPELLINGS][48];

			if (t->kind[c] != VK_UUID)
			{
				if ((rc = client_bind_value(cl, st, b, f, t->kind[c], t->form[c], err, errlen)) < 0)
				{
					sqlite3_clear_bindings(st);
					return rc;
				}
				continue;
			}
			/* canonical, upper case, no hyphens (both cases), braces (both) */
			uuid_canonical(f->text, f->len, sp[0]);
			for (int k = 0; k <= 36; k++)
				sp[1][k] = (char) (sp[0][k] >= 'a' && sp[0][k] <= 'f' ? sp[0][k] - 32 : sp[0][k]);
			for (int k = 0, o2 = 0; k <= 36; k++)
				if (sp[0][k] != '-')
				{
					sp[2][o2] = sp[0][k];
					sp[3][o2] = sp[1][k];
					o2++;
				}
			for (int k = 4; k <= 5; k++)
			{
				sp[k][0] = '{';
				memcpy(sp[k] + 1, sp[k - 4], 36);
				sp[k][37] = '}';
				sp[k][38] = '\0';
			}
			for (int k = 0; k < UUID_SPELLINGS; k++)
				sqlite3_bind_text(st, b + k, sp[k], -1, SQLITE_TRANSIENT);
		}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
	{
		snprintf(err, errlen, "client \"%s\": giving a row of \"%s\" the hub's spelling of its uuid key: %s",
				 cl->path, t->name, sqlite3_errmsg(cl->db));
		return refused(rc) ? -2 : -1;
	}
	return 0;
}

/*
 * Write one row (upsert) or delete one key; no version logic. Returns 0,
 * -2 if the file refused this row (a constraint, a value it will not take:
 * the statement was undone, the transaction goes on), -1 on any other error.
 */
int
client_write_row(Client *cl, ClientTable *t, bool del, const JObject *o, const HubTypes *types,
				 char *err, size_t errlen)
{
	JObject		shape = *o;
	sqlite3_stmt *st;
	int			rc = 0;

	if (!t->typed && types)
		client_table_typed(cl, t, types);
	if (t->ngen > 0)
	{
		/* the hub may ship a column this file generates: SQLite computes it */
		shape.f = xmalloc(sizeof(JField) * (size_t) (o->n + 1));
		shape.n = 0;
		for (int i = 0; i < o->n; i++)
			if (!client_col_generated(t, o->f[i].key))
				shape.f[shape.n++] = o->f[i];
	}
	if (t->typed && t->nuuidkey > 0 && (rc = rekey_uuid(cl, t, &shape, err, errlen)) < 0)
		goto out;
	st = apply_stmt(cl, t, del, &shape, err, errlen);
	if (st == NULL)
	{
		rc = refused(sqlite3_errcode(cl->db)) ? -2 : -1;
		goto out;
	}
	for (int i = 0; i < shape.n; i++)
	{
		int			c = client_col(t, shape.f[i].key);

		if ((rc = client_bind_value(cl, st, i + 1, &shape.f[i], t->typed ? t->kind[c] : VK_OTHER,
							 t->typed ? t->form[c] : FORM_DEFAULT, err, errlen)) < 0)
		{
			sqlite3_clear_bindings(st);
			rc = rc == -2 || refused(sqlite3_errcode(cl->db)) ? -2 : -1;
			goto out;
		}
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
	{
		snprintf(err, errlen, "client \"%s\": writing table \"%s\": %s", cl->path, t->name, sqlite3_errmsg(cl->db));
		sqlite3_reset(st);
		if (!refused(rc))
			rc = -1;
		else if (sqlite3_get_autocommit(cl->db))
		{
			/* RAISE(ROLLBACK) in an app trigger: the whole apply is gone */
			size_t		n = strlen(err);

			snprintf(err + n, errlen - n, " (the apply transaction was rolled back)");
			rc = -1;
		}
		else
			rc = -2;
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	if (shape.f != o->f)
		free(shape.f);
	return rc;
}

/*
 * Empty a table for a first sync (inside the apply transaction), but for
 * the rows this node changed and has not had acknowledged yet (written
 * after the upload read the queue, or before a failed upload): the hub
 * has not seen them, and their queued changes still read them to be
 * shipped.
 */
int
client_clear_table(Client *cl, const ClientTable *t, char *err, size_t errlen)
{
	sqlite3_str *s = sqlite3_str_new(cl->db);
	char	   *sql;
	int			rc,
				n = 0;

	sqlite3_str_appendf(s, "DELETE FROM \"%w\" WHERE (", t->name);
	for (int i = 0; i < t->ncols; i++)
		if (t->is_pk[i])
			sqlite3_str_appendf(s, "%s\"%w\"", n++ ? ", " : "", t->cols[i]);
	sqlite3_str_appendall(s, ") NOT IN (SELECT ");
	n = 0;
	for (int i = 0; i < t->ncols; i++)
		if (t->is_pk[i])
			sqlite3_str_appendf(s, "%sjson_extract(q.pk, '$.\"%w\"')", n++ ? ", " : "", t->cols[i]);
	sqlite3_str_appendf(s, " FROM sync_queue q WHERE q.table_name = %Q AND q.origin = %Q"
						" AND q.seq > coalesce((SELECT CAST(value AS INTEGER) FROM syncqd_state"
						"                       WHERE key = 'up_seq'), 0)", t->name, cl->node_id);
	for (int i = 0; i < t->ncols; i++)
		if (t->is_pk[i])
			sqlite3_str_appendf(s, " AND json_extract(q.pk, '$.\"%w\"') IS NOT NULL", t->cols[i]);
	sqlite3_str_appendall(s, ")");
	sql = sqlite3_str_finish(s);
	if (sql == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = client_exec(cl, sql, err, errlen);
	sqlite3_free(sql);
	return rc;
}

/* ---- hub column types, for conversions ----------------------------------- */

void
hubtypes_add(HubTypes *ht, const char *table, const char *col, const char *type)
{
	ht->e = xrealloc(ht->e, (size_t) (ht->n + 1) * sizeof(*ht->e));
	ht->e[ht->n].table = xstrdup(table);
	ht->e[ht->n].col = xstrdup(col);
	ht->e[ht->n].type = xstrdup(type);
	ht->n++;
}

const char *
hubtypes_get(const HubTypes *ht, const char *table, const char *col)
{
	if (ht == NULL)
		return NULL;
	for (int i = 0; i < ht->n; i++)
		if (strcmp(ht->e[i].col, col) == 0 && strcmp(ht->e[i].table, table) == 0)
			return ht->e[i].type;
	return NULL;
}

void
hubtypes_free(HubTypes *ht)
{
	for (int i = 0; i < ht->n; i++)
	{
		free(ht->e[i].table);
		free(ht->e[i].col);
		free(ht->e[i].type);
	}
	free(ht->e);
	memset(ht, 0, sizeof(*ht));
}

