/*
 * respell.c — this node's own values, once the hub has them, in the form
 * the hub's values reach this file (docs/replication.md, Types): a column
 * never mixes forms (client.h).
 *
 * The capture triggers are plain SQL and keep what the app wrote; an app
 * may write an instant with a 'T', an offset or as Unix seconds, +-Infinity
 * as text, a uuid in upper case. The hub reads all of those (value_for_hub)
 * and the other clients receive its spelling (value_for_sqlite); here the
 * writing client's row is given the same spelling after the upload was
 * acknowledged, so that its column compares and sorts as on the hub. The
 * value is the same, so nothing is queued (capture is paused) and no
 * version changes; a value the app changed since is left alone (the update
 * names the old value). Key columns are left to the hub's correction: a
 * delete of the key as the app spelt it and the row under the hub's
 * spelling (docs/replication.md, Corrections).
 *
 *   client_respell_note    while a page is uploaded: its values spelt other
 *                          than the hub's values would be
 *   client_respell_apply   after the acknowledgement up to a seq: write them
 *   client_respell_clear   forget the rest (a failed upload)
 */
#include "base/base.h"
#include "client/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Are two SQLite values the same value of the same storage class? */
static bool
same_sqlvalue(const SqlValue *a, const SqlValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case SQLITE_INTEGER:
			return a->i == b->i;
		case SQLITE_FLOAT:
			return a->d == b->d;
		case SQLITE_TEXT:
		case SQLITE_BLOB:
			return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
		default:
			return true;
	}
}

static void
jfield_copy(JField *to, const JField *f)
{
	to->key = xstrdup(f->key);
	to->type = f->type;
	to->len = f->len;
	to->b = f->b;
	to->text = xmalloc(f->len + 1);
	memcpy(to->text, f->text, f->len);
	to->text[f->len] = '\0';
	to->own = JF_OWN_KEY | JF_OWN_TEXT;
}

/*
 * Would value f of column c of t be written otherwise by a download? Then
 * *hub holds it as the hub spells it (free it with jfield_release).
 */
static bool
needs_respell(const ClientTable *t, int c, const JField *f, JField *hub)
{
	SqlValue	now,
				then = {0};
	char		why[256];
	bool		differs;

	if (f->type == JV_NULL ||
		(f->type != JV_STRING && t->kind[c] != VK_TIMESTAMPTZ && t->kind[c] != VK_TIMESTAMP))
		return false;			/* only text, and instants as numbers, are spelt otherwise */
	jfield_copy(hub, f);
	if (value_for_hub(hub, t->kind[c], why, sizeof(why)) < 0 ||
		value_for_sqlite(hub, t->kind[c], t->form[c], &then, why, sizeof(why)) < 0)
	{
		sqlvalue_free(&then);
		jfield_release(hub);
		return false;
	}
	value_for_sqlite(f, VK_OTHER, FORM_DEFAULT, &now, why, sizeof(why));
	differs = !same_sqlvalue(&now, &then);
	sqlvalue_free(&now);
	sqlvalue_free(&then);
	if (!differs)
		jfield_release(hub);
	return differs;
}

/*
 * Note the values of page's changes that this file holds in another
 * spelling than a download of them would write (key columns aside).
 */
void
client_respell_note(Client *cl, const ChangeList *page, const HubTypes *types)
{
	for (int i = 0; i < page->n; i++)
	{
		const Change *c = &page->c[i];
		ClientTable *t;

		if (!c->has_row || (t = client_table(cl, c->table)) == NULL)
			continue;
		if (!t->typed)
			client_table_typed(cl, t, types);
		for (int k = 0; k < c->row.n; k++)
		{
			const JField *f = &c->row.f[k];
			int			col = client_col(t, f->key);
			JField		hub;
			Respell    *r;

			if (col < 0 || t->is_pk[col] || !value_respelt_kind(t->kind[col]) ||
				!needs_respell(t, col, f, &hub))
				continue;
			cl->respell = xrealloc(cl->respell, (size_t) (cl->nrespell + 1) * sizeof(Respell));
			r = &cl->respell[cl->nrespell++];
			r->seq = c->seq;
			r->table = xstrdup(c->table);
			r->pk_json = xstrdup(c->pk_json);
			jfield_copy(&r->old, f);
			r->hub = hub;
		}
	}
}

/* The update of one respelt value: column r's to ?1 where it is ?2 and the
 * key is r's (?3...); NULL if the table or a column is not there. */
static sqlite3_stmt *
respell_stmt(Client *cl, const ClientTable *t, const Respell *r, const JObject *pk)
{
	Buf			b = {0};
	sqlite3_stmt *st = NULL;
	char	   *q = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" IS ?2",
									t->name, r->old.key, r->old.key);

	buf_puts(&b, q);
	sqlite3_free(q);
	for (int i = 0; i < pk->n; i++)
	{
		q = sqlite3_mprintf(" AND \"%w\" IS ?%d", pk->f[i].key, i + 3);
		buf_puts(&b, q);
		sqlite3_free(q);
	}
	if (sqlite3_prepare_v2(cl->db, b.p, -1, &st, NULL) != SQLITE_OK)
		st = NULL;
	buf_free(&b);
	return st;
}

/* Write one respelt value; 0, or -1 with why (the value stays as it was). */
static int
respell_one(Client *cl, const Respell *r, const HubTypes *types, char *why, size_t whylen)
{
	ClientTable *t = client_table(cl, r->table);
	JObject		pk = {0};
	sqlite3_stmt *st;
	int			c,
				rc = -1;

	if (t && !t->typed)
		client_table_typed(cl, t, types);
	if (t == NULL || (c = client_col(t, r->old.key)) < 0)
	{
		snprintf(why, whylen, "table \"%s\" or its column \"%s\" changed", r->table, r->old.key);
		return -1;
	}
	if (jobj_parse(r->pk_json, strlen(r->pk_json), &pk, why, whylen) < 0)
		return -1;
	st = respell_stmt(cl, t, r, &pk);
	if (st == NULL)
		snprintf(why, whylen, "%s", sqlite3_errmsg(cl->db));
	else if (client_bind_value(cl, st, 1, &r->hub, t->kind[c], t->form[c], why, whylen) == 0 &&
			 client_bind_value(cl, st, 2, &r->old, VK_OTHER, FORM_DEFAULT, why, whylen) == 0)
	{
		rc = 0;
		for (int i = 0; i < pk.n && rc == 0; i++)
			rc = client_bind_value(cl, st, i + 3, &pk.f[i], VK_OTHER, FORM_DEFAULT, why, whylen);
		if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
		{
			snprintf(why, whylen, "%s", sqlite3_errmsg(cl->db));
			rc = -1;
		}
	}
	sqlite3_finalize(st);
	jobj_free(&pk);
	return rc < 0 ? -1 : 0;
}

static void
respell_free(Respell *r)
{
	free(r->table);
	free(r->pk_json);
	jfield_release(&r->old);
	jfield_release(&r->hub);
}

/*
 * The hub has this node's changes up to up_seq: give the values noted for
 * them the hub's spelling, in one transaction with capture paused. A value
 * the file will not take (a CHECK of the app's) keeps the app's spelling,
 * with a warning; -1 only if the transaction failed (nothing is lost: the
 * values keep the app's spelling).
 */
int
client_respell_apply(Client *cl, int64_t up_seq, const HubTypes *types, char *err, size_t errlen)
{
	int			n = 0,
				kept = 0;

	for (int i = 0; i < cl->nrespell; i++)
		if (cl->respell[i].seq <= up_seq)
			n++;
	if (n == 0)
		return 0;
	if (client_begin_write(cl, err, errlen) < 0)
	{
		n = -1;
		goto out;
	}
	if (capture_pause(cl, err, errlen) < 0)
	{
		client_rollback_write(cl);
		n = -1;
		goto out;
	}
	for (int i = 0; i < cl->nrespell; i++)
	{
		char		why[512];

		if (cl->respell[i].seq > up_seq)
			continue;
		if (respell_one(cl, &cl->respell[i], types, why, sizeof(why)) < 0)
			logmsg(LOG_WARNING, "client \"%s\": column \"%s\" of table \"%s\" keeps the app's spelling: %s",
				   cl->path, cl->respell[i].old.key, cl->respell[i].table, why);
	}
	if (capture_resume(cl, err, errlen) < 0 || client_commit_write(cl, err, errlen) < 0)
	{
		client_rollback_write(cl);
		n = -1;
	}
out:
	for (int i = 0; i < cl->nrespell; i++)
		if (cl->respell[i].seq <= up_seq)
			respell_free(&cl->respell[i]);
		else
			cl->respell[kept++] = cl->respell[i];
	cl->nrespell = kept;
	return n < 0 ? -1 : 0;
}

/* Forget every noted value (an upload that failed: the next one notes
 * them again). */
void
client_respell_clear(Client *cl)
{
	for (int i = 0; i < cl->nrespell; i++)
		respell_free(&cl->respell[i]);
	free(cl->respell);
	cl->respell = NULL;
	cl->nrespell = 0;
}
