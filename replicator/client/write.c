/*
 * write.c — one row written to the client file the way SQLite apps read it
 * (client.h; docs/replication.md, Types): values converted by the hub
 * column's type, one cached upsert or delete statement per table and
 * column set.
 *
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

/* How many significant digits a decimal number text has. */
static int
sig_digits(const char *s)
{
	int			n = 0;
	bool		started = false;
	int			trailing_zeros = 0;

	for (; *s && *s != 'e' && *s != 'E'; s++)
	{
		if (*s < '0' || *s > '9')
			continue;
		if (*s == '0' && !started)
			continue;
		started = true;
		n++;
		trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
	}
	return n - trailing_zeros;
}

/*
 * Bind one JSON value to a SQLite parameter the way SQLite apps read it
 * (docs/replication.md, Types). hubtype: the hub column's type, or NULL.
 */
static int
bind_value(Client *cl, sqlite3_stmt *st, int idx, const JField *f, const char *hubtype,
		   char *err, size_t errlen)
{
	int			rc = SQLITE_OK;

	/* json and jsonb are held in SQLite as their JSON text */
	if (hubtype && (strcmp(hubtype, "json") == 0 || strcmp(hubtype, "jsonb") == 0) &&
		f->type != JV_NULL && f->type != JV_RAW)
	{
		Buf			b = {0};

		buf_json_value(&b, f);
		rc = sqlite3_bind_text64(st, idx, b.p, b.len, SQLITE_TRANSIENT, SQLITE_UTF8);
		buf_free(&b);
		if (rc != SQLITE_OK)
		{
			client_db_err(err, errlen, cl, "bind");
			return -1;
		}
		return 0;
	}
	switch (f->type)
	{
		case JV_NULL:
			rc = sqlite3_bind_null(st, idx);
			break;
		case JV_BOOL:
			rc = sqlite3_bind_int(st, idx, f->b);
			break;
		case JV_NUMBER:
			{
				const char *s = f->text;
				bool		integral = strpbrk(s, ".eE") == NULL;
				char	   *end;

				if (integral)
				{
					long long	v = strtoll(s, &end, 10);

					if (*end == '\0' && !(v == LLONG_MAX && strcmp(s, "9223372036854775807") != 0) &&
						!(v == LLONG_MIN && strcmp(s, "-9223372036854775808") != 0))
					{
						rc = sqlite3_bind_int64(st, idx, v);
						break;
					}
				}
				if ((hubtype && (strcmp(hubtype, "double precision") == 0 || strcmp(hubtype, "real") == 0)) ||
					sig_digits(s) <= 15)
					rc = sqlite3_bind_double(st, idx, strtod(s, NULL));
				else
					rc = sqlite3_bind_text(st, idx, s, (int) f->len, SQLITE_TRANSIENT);
				break;
			}
		case JV_STRING:
			if (hubtype && strcmp(hubtype, "bytea") == 0)
			{
				Buf			b = {0};
				int			bad;

				if (f->len >= 2 && f->text[0] == '\\' && f->text[1] == 'x')
					bad = hex_decode(f->text + 2, f->len - 2, &b);
				else
					bad = base64_decode(f->text, f->len, &b);
				if (bad)
				{
					buf_free(&b);
					snprintf(err, errlen, "client \"%s\": a bytea value of column \"%s\" is neither base64 nor hex",
							 cl->path, f->key);
					return -2;
				}
				rc = sqlite3_bind_blob64(st, idx, b.p ? b.p : "", b.len, SQLITE_TRANSIENT);
				buf_free(&b);
			}
			else
				rc = sqlite3_bind_text64(st, idx, f->text, f->len, SQLITE_TRANSIENT, SQLITE_UTF8);
			break;
		case JV_RAW:
			rc = sqlite3_bind_text64(st, idx, f->text, f->len, SQLITE_TRANSIENT, SQLITE_UTF8);
			break;
		case JV_BLOB:
			rc = sqlite3_bind_blob64(st, idx, f->text, f->len, SQLITE_TRANSIENT);
			break;
	}
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

/*
 * Write one row (upsert) or delete one key; no version logic. Returns 0,
 * -2 if the file refused this row (a constraint, a value it will not take:
 * the statement was undone, the transaction goes on), -1 on any other error.
 */
int
client_write_row(Client *cl, ClientTable *t, bool del, const JObject *o, const HubTypes *types,
				 char *err, size_t errlen)
{
	sqlite3_stmt *st = apply_stmt(cl, t, del, o, err, errlen);
	int			rc;

	if (st == NULL)
		return refused(sqlite3_errcode(cl->db)) ? -2 : -1;
	if (types && t->hubtype == NULL)
	{
		t->hubtype = xcalloc((size_t) t->ncols, sizeof(char *));
		for (int i = 0; i < t->ncols; i++)
			t->hubtype[i] = hubtypes_get(types, t->name, t->cols[i]);
	}
	for (int i = 0; i < o->n; i++)
		if ((rc = bind_value(cl, st, i + 1, &o->f[i],
							 t->hubtype ? t->hubtype[client_col(t, o->f[i].key)] : NULL, err, errlen)) < 0)
		{
			sqlite3_clear_bindings(st);
			return rc == -2 || refused(sqlite3_errcode(cl->db)) ? -2 : -1;
		}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
	{
		snprintf(err, errlen, "client \"%s\": writing table \"%s\": %s", cl->path, t->name, sqlite3_errmsg(cl->db));
		sqlite3_reset(st);
		if (!refused(rc))
			return -1;
		if (sqlite3_get_autocommit(cl->db))
		{
			/* RAISE(ROLLBACK) in an app trigger: the whole apply is gone */
			size_t		n = strlen(err);

			snprintf(err + n, errlen - n, " (the apply transaction was rolled back)");
			return -1;
		}
		return -2;
	}
	sqlite3_reset(st);
	return 0;
}

/* Empty a table for a first sync (inside the apply transaction). */
int
client_clear_table(Client *cl, const ClientTable *t, char *err, size_t errlen)
{
	char	   *sql = sqlite3_mprintf("DELETE FROM \"%w\"", t->name);
	int			rc;

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

