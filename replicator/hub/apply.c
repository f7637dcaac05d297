/*
 * apply.c — a run of one client's changes decided and applied inside a hub
 * transaction (apply.h; docs/replication.md): the core both an upload
 * (upload.c) and a retry of set-aside changes (errors.c) run.
 *
 * One hub transaction per upload. Uploads of different clients apply side
 * by side: each first locks the version rows (sync_versions) of the keys it
 * changes, in (table, key) order, making a placeholder for a key that has
 * none (lock_versions), and only then reads their versions, so two uploads
 * that change one row take turns on it and the second compares with what
 * the first applied. The hub's own changes are folded into sync_versions
 * just before the transaction, in one of the fold's own; those the fold did
 * not see are read with the versions (versions_of); one that commits after
 * that read makes the upload start again (hub_overtaken). Values
 * travel as JSON arrays that PostgreSQL turns into rows with
 * json_populate_recordset, one statement per run of changes.
 *
 * Capture stays on (apply mode, pg_ext/apply.c): each statement first
 * says what it applies (sync_apply_expect), so the capture queues each row
 * as PostgreSQL stored it with the change's version and origin, and every
 * row a foreign key action or a trigger changed as a change of the hub's
 * own, relayed to every client. sync_apply_report() then says what needs
 * an answer: the uploader gets the row as stored where it would hold
 * another value than it sent (a correction: model/value.c).
 *
 * Poison changes. A change the hub refuses for a reason of its own data (a
 * constraint, a column or table it lacks, a value its type rejects) must not
 * hold up every change behind it. Each run is applied inside a savepoint; a
 * refused run is undone and bisected until the refused changes stand alone;
 * those are set aside in sync_errors, in the same transaction that moves the
 * client's position past them, and tried again on later syncs
 * (hub_retry_errors); but a delete that rows still refer to is overruled
 * (keep_referenced). Deferred constraints are checked at the end of each
 * call, not at COMMIT (apply_checked). An error of the link or the server (lost connection,
 * deadlock, shutdown) fails the whole upload instead, to be retried.
 *
 *   hub_apply_begin     fold the hub's changes, open the transaction
 *   (change_for_hub)    spell each change as the hub reads it (model/value.c)
 *   hub_apply_changes   decide (last writer wins) and apply; corrections, conflicts;
 *                       the key sequences kept ahead of the keys that arrived
 *   hub_park_changes    set the refused ones aside in sync_errors
 *   hub_overtaken       did a hub transaction overtake this one?
 *   outcomes_free       free what hub_apply_changes said of each change
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "hub/apply.h"
#include "hub/hub.h"
#include "model/value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ver_us of a placeholder version row (lock_versions). */
#define PLACEHOLDER_US "-1"

/* sync_clock rows: an upload raises the row of its connection's slot. */
#define CLOCK_SLOTS "16"

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
	free(o->note);
	o->note = NULL;
	snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", sqlstate ? sqlstate : "");
	o->done = DONE_FAILED;
}

void
outcomes_free(Outcome *o, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(o[i].why);
		free(o[i].note);
	}
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
 * Is field f the text of a json or jsonb column (SQLite holds JSON as its
 * text)? That text goes into the array json_populate_recordset reads as it
 * is: check_json_values() makes sure it is exactly one JSON value.
 */
static bool
is_json_text(const JField *f, const char *typ)
{
	return f->type == JV_STRING && typ != NULL &&
		(strcmp(typ, "json") == 0 || strcmp(typ, "jsonb") == 0);
}

/*
 * The JSON value of field f as PostgreSQL should read it for a column of
 * type typ: blobs become bytea hex strings, and so does the base64 text a
 * bytea value is on the wire (docs/queue.md).
 */
static void
pg_json_value(JsonOut *w, const JField *f, const char *typ)
{
	bool		bytea = typ && strcmp(typ, "bytea") == 0;
	Buf			bytes = {0},
				t = {0};

	if (is_json_text(f, typ))
		jout_raw(w, f->text, f->len);	/* one JSON value: check_json_values() */
	else if (f->type == JV_STRING && bytea && f->len % 4 == 0 &&
			 !(f->len >= 2 && f->text[0] == '\\' && f->text[1] == 'x') &&
			 base64_decode(f->text, f->len, &bytes) == 0)
	{
		buf_puts(&t, "\\x");
		buf_hex(&t, (const unsigned char *) bytes.p, bytes.len);
		jout_stringn(w, t.p, t.len);
	}
	else if (f->type == JV_BLOB && bytea)
	{
		buf_puts(&t, "\\x");
		buf_hex(&t, (const unsigned char *) f->text, f->len);
		jout_stringn(w, t.p, t.len);
	}
	else if (f->type == JV_BLOB)
		jout_stringn(w, f->text, f->len);
	else
		jout_field(w, f);
	buf_free(&bytes);
	buf_free(&t);
}

/*
 * Columns of the change the hub table has no more (sync_columns_gone):
 * renamed ones take their new name, dropped ones leave the change, and the
 * rest applies. Said in the log once per column.
 */
static void
follow_gone_columns(Hub *h, const HubTable *t, Change *c)
{
	for (int g = 0; g < t->gone.n; g++)
	{
		const char *col = t->gone.from[g],
				   *to = t->gone.to[g];
		char		key[512];
		bool		logged = false;

		if (hub_col(t, col) >= 0 || !change_follow_column(c, col, to))
			continue;
		snprintf(key, sizeof(key), "%s.%s", t->name, col);
		for (int i = 0; i < h->ngone_logged && !logged; i++)
			logged = strcmp(h->gone_logged[i], key) == 0;
		if (logged)
			continue;
		if (to)
			logmsg(LOG_INFO, "column \"%s\" of table \"%s\" was renamed to \"%s\" on the hub: changes that carry it are applied to \"%s\"",
				   col, t->name, to, to);
		else
			logmsg(LOG_INFO, "column \"%s\" of table \"%s\" was dropped on the hub: it is left out of changes that carry it, the rest applies",
				   col, t->name);
		h->gone_logged = xrealloc(h->gone_logged, (size_t) (h->ngone_logged + 1) * sizeof(char *));
		h->gone_logged[h->ngone_logged++] = xstrdup(key);
	}
}

/*
 * A change that names a table by a name it had on the hub
 * (sync_tables_renamed) takes the table's name now. Said in the log once
 * per name. The table, or NULL if the name is no old one either.
 */
static const HubTable *
follow_renamed_table(Hub *h, Change *c)
{
	const HubTable *t = NULL;
	char		key[512];
	bool		logged = false;
	int			r = namemap_find(&h->renamed, c->table);

	if (r < 0 || (t = hub_table(h, h->renamed.to[r])) == NULL)
		return NULL;
	snprintf(key, sizeof(key), "\x1f%s", c->table);
	for (int i = 0; i < h->ngone_logged && !logged; i++)
		logged = strcmp(h->gone_logged[i], key) == 0;
	if (!logged)
	{
		logmsg(LOG_INFO, "table \"%s\" was renamed to \"%s\" on the hub: changes that name it are applied to \"%s\"",
			   c->table, t->name, t->name);
		h->gone_logged = xrealloc(h->gone_logged, (size_t) (h->ngone_logged + 1) * sizeof(char *));
		h->gone_logged[h->ngone_logged++] = xstrdup(key);
	}
	free(c->table);
	c->table = xstrdup(t->name);
	return t;
}

/*
 * Spell change c as the hub reads it (docs/replication.md, Types): each
 * value in its column type's canonical form (value_for_hub), a generated
 * column's value left out (the hub computes its own), pk_json and row_json
 * spelt again. Done after the change counted in the node's digest (which
 * covers what the client sent) and before any version lookup, so that a
 * row has one key however a client spelt it, and what is relayed to the
 * other clients is what the hub reads. -1 with why: a value the hub could
 * only misread.
 */
static int
change_for_hub(const HubTable *t, Change *c, char *why, size_t whylen)
{
	JObject    *objs[2] = {&c->pk, c->has_row ? &c->row : NULL};
	bool		changed = false;

	for (int k = 0; k < 2 && objs[k]; k++)
	{
		JObject    *o = objs[k];

		for (int i = 0; i < o->n;)
		{
			JField	   *f = &o->f[i];
			int			col = hub_col(t, f->key);
			int			rc;

			if (col < 0 && k == 1 && hub_col_generated(t, f->key))
			{
				jfield_release(f);
				memmove(f, f + 1, sizeof(JField) * (size_t) (o->n - i - 1));
				o->n--;
				changed = true;
				continue;
			}
			if (col >= 0)
			{
				rc = value_for_hub(f, t->kinds[col], why, whylen);
				if (rc < 0)
					return -1;
				if (rc > 0)
					changed = true;
			}
			i++;
		}
	}
	if (changed)
		change_respell(c);
	return 0;
}

/* Check the change's columns against the hub table; name the first stranger. */
static int
check_columns(const HubTable *t, const Change *c, char *err, size_t errlen)
{
	const JObject *o = c->op == SYNCQ_OP_DELETE ? &c->pk : &c->row;

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

/* Are a blob's bytes UTF-8 text without a NUL (a JSON string can hold them)? */
static bool
blob_is_text(const JField *f)
{
	const unsigned char *p = (const unsigned char *) f->text;

	for (size_t i = 0; i < f->len;)
	{
		size_t		k = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, f->len - i);

		if (k == 0 || p[i] == 0)
			return false;
		i += k;
	}
	return true;
}

/*
 * The text of a json or jsonb column goes into the array
 * json_populate_recordset reads as it is (pg_json_value): it must be
 * exactly one JSON value, or it could end its row and add keys or rows of
 * its own ({"x":1}},{"id":666} ...). A blob for a column that is not
 * bytea goes as a JSON string of its bytes: they must be text. -1 naming
 * the column otherwise.
 */
static int
check_json_values(const HubTable *t, const Change *c, char *err, size_t errlen)
{
	const JObject *objs[2] = {&c->row, &c->pk};

	for (int k = 0; k < 2; k++)
		for (int i = 0; i < objs[k]->n; i++)
		{
			const JField *f = &objs[k]->f[i];
			int			col = hub_col(t, f->key);
			const char *typ = col >= 0 ? t->types[col] : NULL;
			char		e[160];

			if (f->type == JV_BLOB && col >= 0 && strcmp(typ, "bytea") != 0 &&
				!blob_is_text(f))
			{
				/* its bytes would go as a JSON string: none holds a NUL */
				snprintf(err, errlen, "the value of column \"%s\" (%s) of table \"%s\" is a blob that is not text (a NUL byte, or not UTF-8): only a bytea column takes one (change %" PRId64 ")",
						 f->key, typ, c->table, c->seq);
				return -1;
			}
			if (!is_json_text(f, typ))
				continue;
			if (json_check(f->text, f->len, e, sizeof(e)) < 0)
			{
				snprintf(err, errlen, "the value of column \"%s\" (%s) of table \"%s\" is not one JSON value: %s (change %" PRId64 ")",
						 f->key, typ, c->table, e, c->seq);
				return -1;
			}
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

/* Run one statement of a JSON parameter. */
static int
run_json(Hub *h, const char *sql, const Buf *json, char *err, size_t errlen)
{
	const char *params[1] = {json->p};
	PGresult   *res = hub_run(h, sql, 1, params, PGRES_COMMAND_OK, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * DELETE of the keys in $1 (columns qcols[0..ncols), quoted), saying first
 * what it applies ($2: sync_apply_expect, an InitPlan run before any row).
 */
static void
delete_sql(const HubTable *t, char **qcols, int ncols, Buf *sql)
{
	buf_printf(sql, "DELETE FROM %s AS t USING json_populate_recordset(NULL::%s, $1) AS k"
			   " WHERE (SELECT sync_apply_expect($2::jsonb))", t->qname, t->qname);
	for (int i = 0; i < ncols; i++)
		buf_printf(sql, " AND t.%s = k.%s", qcols[i], qcols[i]);
}

/*
 * Upsert of the rows in $1 (columns shape's, qcols quoted); $2 as above.
 * A GENERATED ALWAYS identity column takes the client's value too
 * (OVERRIDING SYSTEM VALUE: the key the client made, or the hub gave it);
 * it is never updated (PostgreSQL allows only DEFAULT there).
 */
static void
upsert_sql(Hub *h, const HubTable *t, const JObject *shape, char **qcols, Buf *sql)
{
	bool		any_set = false;

	buf_printf(sql, "INSERT INTO %s AS t (", t->qname);
	for (int i = 0; i < shape->n; i++)
		buf_printf(sql, "%s%s", i ? ", " : "", qcols[i]);
	buf_printf(sql, ")%s SELECT ", t->always ? " OVERRIDING SYSTEM VALUE" : "");
	for (int i = 0; i < shape->n; i++)
		buf_printf(sql, "%sk.%s", i ? ", " : "", qcols[i]);
	buf_printf(sql, " FROM json_populate_recordset(NULL::%s, $1) AS k"
			   " WHERE (SELECT sync_apply_expect($2::jsonb)) ON CONFLICT (", t->qname);
	for (int i = 0, k = 0; i < t->ncols; i++)
		if (t->is_pk[i])
		{
			char	   *q = hub_quote_ident(h, t->cols[i]);

			buf_printf(sql, "%s%s", k++ ? ", " : "", q);
			free(q);
		}
	buf_puts(sql, ")");
	for (int i = 0; i < shape->n; i++)
	{
		if (t->is_pk[hub_col(t, shape->f[i].key)] ||
			(t->always && strcmp(t->always, shape->f[i].key) == 0))
			continue;
		buf_printf(sql, "%s%s = EXCLUDED.%s", any_set ? ", " : " DO UPDATE SET ", qcols[i], qcols[i]);
		any_set = true;
	}
	if (!any_set)
		buf_puts(sql, " DO NOTHING");	/* a table of key columns only */
}

/* What hub_apply_changes works with, phase after phase. */
typedef struct
{
	Change	  **cs;				/* the changes, in seq order */
	Outcome    *out;			/* what became of each */
	int			n;
	char	  **key;			/* of each: its key as the hub stores it
								 * (sync_normalize_keys), NULL if failed */
	char	  **sent_pk;		/* ... its pk and row as the client sent them */
	char	  **sent_row;		/* (before change_for_hub), NULL if none */
	VerMap		vers;			/* (table, hub key) -> the hub's version, as decided */
	VerMap		before;			/* ... as it was before this call */
	bool		retry;			/* set-aside changes tried again */
	int64_t    *replaced;		/* of each: the version it came with, if the
								 * hub re-stamped it (0: not) */
	int		   *win;			/* the winners (indexes into cs), in order */
	int			nwin;
	Buf			confl;			/* the overruled: sync_conflicts rows (JSON) */
	JsonOut		cw;				/* ... written so (an array, open until record) */
	int			nconfl;
	bool	   *kept;			/* of each: a delete the hub refused, its row
								 * still referenced (keep_referenced): overruled */
	bool	   *exists;			/* of each insert of a keyseq table: its key
								 * has a row on the hub (read_existing) */
	int64_t    *floor;			/* per hub table: the greatest key of it the
								 * changes carry (keyseq tables) */
	VerMap		live;			/* keyseq and app-key rows this upload changed:
								 * us 1 live, 0 deleted; origin: whose */
	bool	   *follows;		/* of each: a change of a row whose insert by
								 * its node met another record (read_follows) */
	bool	   *met;			/* of each: set aside as an insert that met
								 * another record (meets_record), or a later
								 * change of that row: answered with the
								 * hub's row (add_corrections) */
	VerMap		metkeys;		/* (table, hub key) of those rows */
	VerMap		overkeys;		/* (table, hub key) of rows a change was
								 * re-stamped above in (restamp_over) */
	char	  **held;			/* row_key of each placeholder version row
								 * this call made (lock_versions) */
	int			nheld;
	VerMap		tent;			/* (table, hub key) -> the version a row of
								 * held carries for now (.known while no
								 * other write of this call touched it) */
} Decision;

/*
 * Are table t's keys the app's own, each insert a new record (docs/
 * replication.md, "Keys the app sets")? So for a key that is not one
 * integer column with a sequence behind it, unless the table's policy is
 * 'natural' (one key, one record everywhere: last writer wins).
 */
static bool
app_keys(const HubTable *t)
{
	return t != NULL && t->keyseq == NULL && !t->natural;
}

/*
 * What a statement applies, for sync_apply_expect(): each change's number,
 * table, key as the hub stores it, version and origin (no hash of the row
 * as sent: every row comes back in the report, and value.c decides).
 */
static void
run_expect(const Decision *d, const int *idx, int n, Buf *out)
{
	JsonOut		w;

	jout_init(&w, out);
	jout_array(&w);
	for (int r = 0; r < n; r++)
	{
		const Change *c = d->cs[idx[r]];

		jout_object(&w);
		jout_kint(&w, "n", idx[r]);
		jout_kstring(&w, "t", c->table);
		jout_kstring(&w, "p", d->key[idx[r]]);
		jout_kint(&w, "v", c->ver_us);
		jout_kstring(&w, "o", c->origin);
		jout_key(&w, "h");
		jout_null(&w);
		jout_object_end(&w);
	}
	jout_array_end(&w);
}

/* The rows of a run as a JSON array, each value as its column's type wants. */
static void
run_rows(const HubTable *t, const Decision *d, const int *idx, int n, bool del, Buf *arr)
{
	JsonOut		w;

	jout_init(&w, arr);
	jout_array(&w);
	for (int r = 0; r < n; r++)
	{
		const JObject *o = del ? &d->cs[idx[r]]->pk : &d->cs[idx[r]]->row;

		jout_object(&w);
		for (int i = 0; i < o->n; i++)
		{
			jout_key(&w, o->f[i].key);
			pg_json_value(&w, &o->f[i], t->types[hub_col(t, o->f[i].key)]);
		}
		jout_object_end(&w);
	}
	jout_array_end(&w);
}

/*
 * Apply the changes idx[0..n) of d — one table, one kind (upsert or
 * delete), one column set, distinct keys — as one statement.
 */
static int
apply_run(Hub *h, const HubTable *t, const Decision *d, const int *idx, int n,
		  char *err, size_t errlen)
{
	Buf			sql = {0},
				arr = {0},
				exp = {0};
	const Change *first = d->cs[idx[0]];
	bool		del = first->op == SYNCQ_OP_DELETE;
	const JObject *shape = del ? &first->pk : &first->row;
	char	  **qcols = xcalloc((size_t) shape->n + 1, sizeof(char *));
	const char *params[2];
	PGresult   *res;
	int			rc = 0;

	for (int i = 0; i < shape->n; i++)
		qcols[i] = hub_quote_ident(h, shape->f[i].key);
	run_rows(t, d, idx, n, del, &arr);
	run_expect(d, idx, n, &exp);
	if (del)
		delete_sql(t, qcols, shape->n, &sql);
	else
		upsert_sql(h, t, shape, qcols, &sql);
	params[0] = arr.p;
	params[1] = exp.p;
	res = hub_run(h, sql.p, 2, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
	{
		size_t		l = strlen(err);

		snprintf(err + l, errlen - l, " (applying changes %" PRId64 "..%" PRId64 " to \"%s\")",
				 first->seq, d->cs[idx[n - 1]]->seq, t->name);
		rc = -1;
	}
	PQclear(res);
	for (int i = 0; i < shape->n; i++)
		free(qcols[i]);
	free(qcols);
	buf_free(&sql);
	buf_free(&arr);
	buf_free(&exp);
	return rc;
}

/*
 * Apply the changes idx[0..n) inside a savepoint. If the hub refuses them
 * for a reason of the data, undo it and try each half, down to single
 * changes; a single change refused is marked failed. -1 only for an error
 * that ends the upload (err says which).
 */
static int
apply_guarded(Hub *h, const HubTable *t, Decision *d, const int *idx, int n,
			  char *err, size_t errlen)
{
	char		why[2048];
	char		state[6];

	if (hub_exec(h, "SAVEPOINT syncq_run", err, errlen) < 0)
		return -1;
	if (apply_run(h, t, d, idx, n, why, sizeof(why)) == 0)
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
		set_failed(&d->out[idx[0]], why, state);
	else if (apply_guarded(h, t, d, idx, n / 2, err, errlen) < 0 ||
			 apply_guarded(h, t, d, idx + n / 2, n - n / 2, err, errlen) < 0)
		return -1;
	return hub_exec(h, "RELEASE SAVEPOINT syncq_run", err, errlen);
}

/* Apply the winning changes in order, grouped into runs. */
static int
apply_winners(Hub *h, Decision *d, char *err, size_t errlen)
{
	int			i = 0;
	VerMap		seen = {0};

	while (i < d->nwin)
	{
		const Change *c0 = d->cs[d->win[i]];
		HubTable   *t = hub_table(h, c0->table);
		bool		del = c0->op == SYNCQ_OP_DELETE;
		int			j = i;
		Version		mark = {0, "", true};

		while (j < d->nwin && j - i < RUN_MAX)
		{
			const Change *c = d->cs[d->win[j]];
			char	   *k;
			bool		again;

			if (strcmp(c->table, c0->table) != 0 || (c->op == SYNCQ_OP_DELETE) != del ||
				!same_columns(del ? &c->pk : &c->row, del ? &c0->pk : &c0->row))
				break;
			k = row_key(c->table, d->key[d->win[j]]);
			again = vermap_get(&seen, k) != NULL;
			if (!again)
				vermap_put(&seen, k, &mark);
			free(k);
			if (again)
				break;			/* the same row twice: next statement */
			j++;
		}
		vermap_free(&seen);
		if (apply_guarded(h, t, d, &d->win[i], j - i, err, errlen) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/*
 * Apply the winners with the hub's deferrable constraints (a foreign key
 * DEFERRABLE INITIALLY DEFERRED, as Django declares every one) checked
 * when all are applied, so that their order among themselves does not
 * matter, and checked here, not at COMMIT: a change they refuse there
 * would fail the whole upload, every sync. If the check fails, the
 * winners are undone and applied again with every constraint checked
 * after each statement (SET CONSTRAINTS ALL IMMEDIATE), so that
 * apply_guarded finds the changes refused. The check leaves the
 * constraints immediate for the rest of the transaction: nothing of this
 * call is left for COMMIT to check.
 */
static int
apply_checked(Hub *h, Decision *d, char *err, size_t errlen)
{
	char		why[2048];

	if (hub_exec(h, "SET CONSTRAINTS ALL DEFERRED", err, errlen) < 0 ||
		hub_exec(h, "SAVEPOINT syncq_apply", err, errlen) < 0 ||
		apply_winners(h, d, err, errlen) < 0)
		return -1;
	if (hub_exec(h, "SET CONSTRAINTS ALL IMMEDIATE", why, sizeof(why)) == 0)
		return hub_exec(h, "RELEASE SAVEPOINT syncq_apply", err, errlen);
	if (transient_error(h))
	{
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	logmsg(LOG_DEBUG, "a deferred constraint refused changes of this call (%s): applying them again, checked one statement at a time", why);
	if (hub_exec(h, "ROLLBACK TO SAVEPOINT syncq_apply", err, errlen) < 0 ||
		hub_exec(h, "SET CONSTRAINTS ALL IMMEDIATE", err, errlen) < 0)
		return -1;
	for (int i = 0; i < d->nwin; i++)
	{
		Outcome    *o = &d->out[d->win[i]];

		free(o->why);
		o->why = NULL;
		o->sqlstate[0] = '\0';
		o->done = DONE_APPLIED;
	}
	if (apply_winners(h, d, err, errlen) < 0)
		return -1;
	return hub_exec(h, "RELEASE SAVEPOINT syncq_apply", err, errlen);
}

/* The JSON of one of a change's objects (pk or row), or null. */
static void
put_object(JsonOut *w, const char *key, const char *json)
{
	jout_key(w, key);
	if (json)
		jout_raw(w, json, strlen(json));
	else
		jout_null(w);
}

/*
 * Validate: what the hub cannot even try (an untracked table, a stranger
 * column, json text that is not one JSON value) fails at once. What the
 * client sent is kept for its corrections (act_on_report). Returns how many
 * are left to try.
 */
static int
validate(Hub *h, Decision *d)
{
	char		why[1024];
	int			left = 0;

	for (int i = 0; i < d->n; i++)
	{
		Change	   *c = d->cs[i];
		const HubTable *t = hub_table(h, c->table);

		if (t == NULL)
			t = follow_renamed_table(h, c);
		if (t == NULL)
		{
			snprintf(why, sizeof(why), "table \"%s\" is not tracked on the hub (run SELECT sync_track('%s') there)",
					 c->table, c->table);
			set_failed(&d->out[i], why, NULL);
			continue;
		}
		follow_gone_columns(h, t, c);
		d->sent_pk[i] = xstrdup(c->pk_json);
		d->sent_row[i] = c->row_json ? xstrdup(c->row_json) : NULL;
		if (change_for_hub(t, c, why, sizeof(why)) < 0 ||
			check_columns(t, c, why, sizeof(why)) < 0 ||
			check_json_values(t, c, why, sizeof(why)) < 0)
		{
			set_failed(&d->out[i], why, NULL);
			continue;
		}
		left++;
	}
	/* the greatest key of each keyseq table the changes carry, set-aside
	 * ones included (a new key given to one must be none of these) */
	for (int i = 0; i < d->n; i++)
	{
		const HubTable *t = hub_table(h, d->cs[i]->table);
		int64_t		v;

		if (t && t->keyseq && d->cs[i]->op != SYNCQ_OP_DELETE &&
			change_int_field(d->cs[i], t->keycol, &v) && v > d->floor[t - h->tables])
			d->floor[t - h->tables] = v;
	}
	return left;
}

/* The primary key columns of o (a change's row or pk) as a JSON object. */
static void
key_object(JsonOut *w, const HubTable *t, const JObject *o)
{
	jout_object(w);
	for (int i = 0; i < o->n; i++)
	{
		int			col = hub_col(t, o->f[i].key);

		if (col < 0 || !t->is_pk[col])
			continue;
		jout_key(w, o->f[i].key);
		pg_json_value(w, &o->f[i], t->types[col]);
	}
	jout_object_end(w);
}

/*
 * Is key (a change's key as read_keys spells it) already as the hub spells
 * it, without asking the hub? So for a table keyed by one column of type
 * smallint, integer or bigint (no domain, whose checks the hub must make):
 * {"col":N}, N an integer in the type's range written as PostgreSQL writes
 * it back (no leading zero, no "-0"). Anything else is read by the hub
 * (sync_normalize_keys), which names what is wrong with it.
 */
static bool
plain_int_key(const HubTable *t, const Buf *key)
{
	const char *name = NULL,
			   *typ = NULL,
			   *p;
	char		num[24];
	size_t		nlen,
				dlen;
	int64_t		v,
				lo,
				hi;
	char	   *end;

	if (t == NULL || t->npk != 1 || t->key_domain)
		return false;
	for (int c = 0; c < t->ncols; c++)
		if (t->is_pk[c])
		{
			name = t->cols[c];
			typ = t->types[c];
		}
	if (name == NULL)
		return false;
	if (strcmp(typ, "smallint") == 0)
		lo = INT16_MIN, hi = INT16_MAX;
	else if (strcmp(typ, "integer") == 0)
		lo = INT32_MIN, hi = INT32_MAX;
	else if (strcmp(typ, "bigint") == 0)
		lo = INT64_MIN, hi = INT64_MAX;
	else
		return false;
	for (p = name; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return false;
	nlen = (size_t) (p - name);
	/* {"name":digits} */
	if (key->len < nlen + 6 || memcmp(key->p, "{\"", 2) != 0 ||
		memcmp(key->p + 2, name, nlen) != 0 || memcmp(key->p + 2 + nlen, "\":", 2) != 0 ||
		key->p[key->len - 1] != '}')
		return false;
	p = key->p + nlen + 4;
	dlen = key->len - nlen - 5;
	if (dlen == 0 || dlen >= sizeof(num))
		return false;
	memcpy(num, p, dlen);
	num[dlen] = '\0';
	p = num[0] == '-' ? num + 1 : num;
	if (*p == '\0' || (*p == '0' && (p[1] != '\0' || p != num)))
		return false;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	errno = 0;
	v = strtoll(num, &end, 10);
	return errno == 0 && *end == '\0' && v >= lo && v <= hi;
}

/*
 * A change's two keys as sync_normalize_keys() read them (rows rr: from its
 * row, rp: from its pk; -1: none): a change whose row and pk name different
 * rows, or whose key the hub's types refuse, is refused; the rest take the
 * hub's spelling of their key as d->key[i] (an upper-case uuid is the
 * lower-case row). Columns: i, pk, error.
 */
static void
take_key(Decision *d, int i, PGresult *res, int rr, int rp)
{
	Change	   *c = d->cs[i];
	char		why[1024];

	if (rr < 0 || rp < 0 || PQgetisnull(res, rr, 1) || PQgetisnull(res, rp, 1))
	{
		int			r = (rr < 0 || PQgetisnull(res, rr, 1)) ? rr : rp;

		snprintf(why, sizeof(why), "%s (reading the key of change %" PRId64 " of \"%s\" from its %s)",
				 r < 0 || PQgetisnull(res, r, 2) ? "no key" : PQgetvalue(res, r, 2),
				 c->seq, c->table, r == rr ? (c->op == SYNCQ_OP_DELETE ? "pk" : "row") : "pk");
		set_failed(&d->out[i], why, NULL);
		return;
	}
	if (strcmp(PQgetvalue(res, rr, 1), PQgetvalue(res, rp, 1)) != 0)
	{
		snprintf(why, sizeof(why), "change %" PRId64 " of \"%s\" names the row %.*s in its pk, but carries the row %.*s",
				 c->seq, c->table, utf8_cut(PQgetvalue(res, rp, 1), 200), PQgetvalue(res, rp, 1),
				 utf8_cut(PQgetvalue(res, rr, 1), 200), PQgetvalue(res, rr, 1));
		set_failed(&d->out[i], why, NULL);
		return;
	}
	d->key[i] = xstrdup(PQgetvalue(res, rr, 1));
}

/*
 * Lock the version rows of the keys in keys ([{"t": table, "p": key as the
 * hub spells it}, ...]) until the transaction ends, in (table, key) order
 * so that two uploads never wait for each other in a circle, and make a
 * placeholder row (ver_us PLACEHOLDER_US) for a key that has none: an
 * upload that changes a row waits here for one that changes it too, and
 * then reads the version that one left (READ COMMITTED: the next statement
 * sees it). ON CONFLICT DO UPDATE ... WHERE false locks a row it does not
 * update. The placeholders made are remembered (d->held): record() deletes
 * those it did not fill. *all_new (unless NULL): every key got a placeholder
 * here, so none has a version row yet (the one row with a NULL table counts
 * the keys).
 *
 * A key may come with the version its change would leave ("u", "o": the
 * greatest given for it; read_versions): its placeholder carries that one
 * instead of PLACEHOLDER_US, a tentative version (d->tent), so that the
 * version row of a new row that wins as sent is written once, not made
 * and then updated (record). Until record() settles it, this call treats
 * the row as none (versions_of; claim_key draws keys above every key of
 * the call, d->floor, so never one of these), writes over it where it
 * would write a placeholder (VersionWrites), and deletes it if no version
 * filled it (drop_placeholders); no other transaction sees it before the
 * commit.
 */
static int
lock_versions(Hub *h, Decision *d, const char *keys, bool *all_new, char *err, size_t errlen)
{
	const char *params[1] = {keys};
	PGresult   *res;

	int			n;

	res = hub_prep(h, "WITH k AS (SELECT DISTINCT ON (1, 2) x.t COLLATE \"C\" AS t, x.p COLLATE \"C\" AS p, x.u, x.o"
				  "              FROM json_to_recordset($1::json) AS x(t text, p text, u bigint, o uuid)"
				  "             ORDER BY 1, 2, x.u DESC NULLS LAST, x.o::text DESC),"
				  " made AS (INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin)"
				  "          SELECT k.t, k.p, coalesce(k.u, " PLACEHOLDER_US "),"
				  "                 coalesce(k.o, '00000000-0000-0000-0000-000000000000')"
				  "            FROM k ORDER BY k.t, k.p"
				  "          ON CONFLICT (table_name, pk) DO UPDATE SET ver_us = v.ver_us WHERE false"
				  "          RETURNING table_name, pk, ver_us, ver_origin::text)"
				  " SELECT table_name, pk, ver_us, ver_origin FROM made"
				  " UNION ALL SELECT NULL, count(*)::text, NULL, NULL FROM k",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	n = PQntuples(res) - 1;		/* placeholders made: every row but the count */
	if (all_new)
		*all_new = false;
	if (n > 0)
		d->held = xrealloc(d->held, sizeof(char *) * (size_t) (d->nheld + n));
	for (int r = 0; r <= n; r++)
	{
		if (PQgetisnull(res, r, 0))
		{
			if (all_new)
				*all_new = n == atoi(PQgetvalue(res, r, 1));
			continue;
		}
		d->held[d->nheld] = row_key(PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		if (strcmp(PQgetvalue(res, r, 2), PLACEHOLDER_US) != 0)
		{
			Version		t = {strtoll(PQgetvalue(res, r, 2), NULL, 10), "", true};

			snprintf(t.origin, sizeof(t.origin), "%s", PQgetvalue(res, r, 3));
			vermap_put(&d->tent, d->held[d->nheld], &t);
		}
		d->nheld++;
	}
	PQclear(res);
	return 0;
}

/* Is the version row of k one this call made with a tentative version
 * that nothing has written over yet (lock_versions)? */
static bool
tentative(const Decision *d, const char *k)
{
	const Version *t = vermap_get(&d->tent, k);

	return t != NULL && t->known;
}

/* Is change c stamped no further ahead of the hub's clock than
 * sync_hub_state.max_offset (so restamp() leaves its version)? */
static bool
within_offset(const Hub *h, const Change *c)
{
	return c->ver_us <= h->apply_now_us + h->max_offset_us;
}

/* One key as versions_of and lock_versions take keys: [{"t": table, "p": pk}]. */
static void
one_key(Buf *out, const char *table, const char *pk)
{
	JsonOut		w;

	jout_init(&w, out);
	jout_array(&w);
	jout_object(&w);
	jout_kstring(&w, "t", table);
	jout_kstring(&w, "p", pk);
	jout_object_end(&w);
	jout_array_end(&w);
}

/*
 * The versions of the keys in keys ([{"t": table, "p": key as the hub
 * spells it}, ...]) into d->vers and d->before (a key already there is
 * left as it is if keep), their version rows locked first (lock_versions).
 * A key's version is the greater of its sync_versions row and the newest
 * change of the hub's own to it that the fold the upload relied on
 * (h->folded) did not see: a hub transaction that committed while this one
 * waited for its locks is compared with it as a folded one would be. That
 * is read once, with the upload's first versions (the queue since the fold
 * is not read again for every page); the snapshot of that read is h->seen,
 * which hub_overtaken checks against: a hub change a later page did not
 * compare with is one that committed after it. On a later page, keys that
 * all got their placeholder just now have no version to read (an upload
 * of new rows).
 *
 * Plain statements, planned for the size sync_versions has at each run: a
 * prepared one's generic plan, made while the table held 687 rows, read
 * all of it for every upload once it held 300,000 (a sequential scan, 30-50
 * ms an upload of one row until autovacuum analyzed the table; bench part
 * 52). Planning costs about 0.4 ms.
 */
static int
versions_of(Hub *h, Decision *d, const char *keys, bool keep, char *err, size_t errlen)
{
	const char *params[2] = {keys, h->folded};
	PGresult   *res;
	bool		all_new;

	if (lock_versions(h, d, keys, &all_new, err, errlen) < 0)
		return -1;
	if (h->seen != NULL && all_new)
		return 0;
	if (h->seen != NULL)
		res = hub_run(h, "SELECT k.t, k.p, v.ver_us, v.ver_origin::text, NULL::bigint, NULL::text"
					  "  FROM (SELECT DISTINCT x.t, x.p FROM json_to_recordset($1::json) AS x(t text, p text)) k"
					  "  JOIN sync_versions v ON v.table_name = k.t AND v.pk = k.p"
					  "       AND v.ver_us <> " PLACEHOLDER_US,
					  1, params, PGRES_TUPLES_OK, err, errlen);
	else
		res = hub_run(h, "WITH late AS ("
					  "  SELECT q.table_name AS t, q.pk::text AS p, max(q.changed_at) AS at"
					  "    FROM sync_queue q"
					  "   WHERE sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin($2::pg_snapshot))"
					  "     AND NOT pg_visible_in_snapshot(q.txid, $2::pg_snapshot)"
					  "     AND q.txid <> pg_current_xact_id()"
					  "     AND q.origin = (SELECT sync_node_id()) AND q.for_node IS NULL"
					  "   GROUP BY 1, 2)"
					  " SELECT k.t, k.p, v.ver_us, v.ver_origin::text,"
					  "        (extract(epoch FROM l.at) * 1000000)::bigint, sync_node_id()::text"
					  "   FROM (SELECT DISTINCT x.t, x.p FROM json_to_recordset($1::json) AS x(t text, p text)) k"
					  "   LEFT JOIN sync_versions v ON v.table_name = k.t AND v.pk = k.p"
					  "        AND v.ver_us <> " PLACEHOLDER_US
					  "   LEFT JOIN late l ON l.t = k.t AND l.p = k.p"
					  "  WHERE v.pk IS NOT NULL OR l.p IS NOT NULL"
					  " UNION ALL SELECT NULL, NULL, NULL, NULL,"
					  "        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,"
					  "        pg_current_snapshot()::text",
					  2, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		Version		v = {0, "", true},
					late = {0, "", true};
		char	   *k;
		bool		has;

		if (PQgetisnull(res, r, 0))
		{
			/*
			 * the snapshot these versions were read in, and the hub's clock
			 * then: a change re-stamped (restamp) is stamped after every
			 * change this upload waited for, as it was when one upload at a
			 * time applied
			 */
			if (h->seen == NULL)
				h->seen = xstrdup(PQgetvalue(res, r, 5));
			if (!PQgetisnull(res, r, 4))
			{
				int64_t		now = strtoll(PQgetvalue(res, r, 4), NULL, 10);

				if (now > h->apply_now_us)
				{
					h->apply_now_us = now;
					if (h->offset_known)
						h->offset_us = h->client_now_us - now;
				}
			}
			continue;
		}
		k = row_key(PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		/* (a tentative version row is none yet: lock_versions) */
		has = !PQgetisnull(res, r, 2) && !tentative(d, k);
		if (has)
		{
			v.us = strtoll(PQgetvalue(res, r, 2), NULL, 10);
			snprintf(v.origin, sizeof(v.origin), "%s", PQgetvalue(res, r, 3));
		}
		if (!PQgetisnull(res, r, 4))
		{
			/* a change of the hub's own the fold did not see */
			late.us = strtoll(PQgetvalue(res, r, 4), NULL, 10);
			snprintf(late.origin, sizeof(late.origin), "%s", PQgetvalue(res, r, 5));
			if (!has || version_cmp(&late, &v) > 0)
				v = late;
			has = true;
		}
		if (has && (!keep || vermap_get(&d->vers, k) == NULL))
		{
			vermap_put(&d->vers, k, &v);
			vermap_put(&d->before, k, &v);
		}
		free(k);
	}
	PQclear(res);
	return 0;
}

/* Versions: the hub's current version of every row the changes left name. */
static int
read_versions(Hub *h, Decision *d, char *err, size_t errlen)
{
	Buf			keys = {0};
	JsonOut		w;
	int			m = 0,
				rc = 0;

	jout_init(&w, &keys);
	jout_array(&w);
	for (int i = 0; i < d->n; i++)
	{
		if (d->out[i].done == DONE_FAILED)
			continue;
		jout_object(&w);
		jout_kstring(&w, "t", d->cs[i]->table);
		jout_kstring(&w, "p", d->key[i]);
		/*
		 * the version it would leave, for a new key's version row
		 * (lock_versions): not a delete's (a tentative row is never
		 * marked deleted), nor one restamp() would change
		 */
		if (d->cs[i]->op != SYNCQ_OP_DELETE && within_offset(h, d->cs[i]))
		{
			jout_kint(&w, "u", d->cs[i]->ver_us);
			jout_kstring(&w, "o", d->cs[i]->origin);
		}
		jout_object_end(&w);
		m++;
	}
	jout_array_end(&w);
	if (m > 0)
		rc = versions_of(h, d, keys.p, false, err, errlen);
	buf_free(&keys);
	return rc;
}

/*
 * Keys and versions: each change's key derived from the row it carries (its
 * pk, for a delete) and spelt as the hub's capture writes it, before any
 * version lookup; a change whose pk names another row than its row is
 * refused (its version would be compared with the wrong row's, and the
 * other row overwritten: docs/security.md). sync_normalize_keys() reads
 * both keys of each change by its columns' types ("i" 2n: from the row,
 * 2n + 1: the pk; the pk alone when the two are spelt alike, as a delete's
 * always are and most others' are); then the hub's current version of every
 * row they name.
 * (Two plain statements: one joining the function's rows with each other
 * was planned as a nested loop, quadratic in the page: an upload of 100,000
 * rows took 2.4 times as long.)
 */
static int
read_keys(Hub *h, Decision *d, char *err, size_t errlen)
{
	Buf			arr = {0};
	JsonOut		w;
	const char *params[1];
	PGresult   *res;
	int			m = 0,
				nfast = 0,
			   *row;
	bool	   *same = xcalloc((size_t) d->n + 1, sizeof(bool));
	bool	   *fast = xcalloc((size_t) d->n + 1, sizeof(bool));
	Buf			kb[2] = {{0}, {0}};

	jout_init(&w, &arr);
	jout_array(&w);
	for (int i = 0; i < d->n; i++)
	{
		const Change *c = d->cs[i];
		const HubTable *t;

		if (d->out[i].done == DONE_FAILED)
			continue;
		t = hub_table(h, c->table);
		for (int k = 0; k < 2; k++)
		{
			JsonOut		kw;

			buf_reset(&kb[k]);
			jout_init(&kw, &kb[k]);
			key_object(&kw, t, k == 0 && c->op != SYNCQ_OP_DELETE ? &c->row : &c->pk);
		}
		/* the two keys spelt alike (a delete's always): read once */
		same[i] = kb[0].len == kb[1].len && memcmp(kb[0].p, kb[1].p, kb[0].len) == 0;
		/* an integer key as the hub spells it: nothing to read */
		if (same[i] && plain_int_key(t, &kb[0]))
		{
			d->key[i] = xstrndup(kb[0].p, kb[0].len);
			fast[i] = true;
			nfast++;
			continue;
		}
		for (int k = 0; k < (same[i] ? 1 : 2); k++)
		{
			jout_object(&w);
			jout_kint(&w, "i", 2 * i + k);
			jout_kstring(&w, "t", c->table);
			jout_key(&w, "p");
			jout_raw(&w, kb[k].p, kb[k].len);
			jout_object_end(&w);
		}
		m++;
	}
	buf_free(&kb[0]);
	buf_free(&kb[1]);
	jout_array_end(&w);
	if (m == 0)
	{
		buf_free(&arr);
		free(same);
		free(fast);
		return nfast > 0 ? read_versions(h, d, err, errlen) : 0;
	}
	params[0] = arr.p;
	res = hub_run(h, "SELECT i, pk, error FROM sync_normalize_keys($1::jsonb)",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&arr);
	if (res == NULL)
	{
		free(same);
		free(fast);
		return -1;
	}
	row = xmalloc(sizeof(int) * 2 * (size_t) d->n);
	for (int k = 0; k < 2 * d->n; k++)
		row[k] = -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		int			k = atoi(PQgetvalue(res, r, 0));

		if (k >= 0 && k < 2 * d->n)
			row[k] = r;
	}
	for (int i = 0; i < d->n; i++)
		if (d->out[i].done != DONE_FAILED && !fast[i])
			take_key(d, i, res, row[2 * i], same[i] ? row[2 * i] : row[2 * i + 1]);
	free(row);
	free(same);
	free(fast);
	PQclear(res);
	return read_versions(h, d, err, errlen);
}

/*
 * The statement read_existing runs for an app-key table t: which of the
 * keys in $1 ([{"i": n, "p": key as the hub spells it}]) have a row.
 */
static void
existing_sql(Hub *h, const HubTable *t, Buf *sql)
{
	Buf			cols = {0},
				match = {0};

	for (int c = 0; c < t->ncols; c++)
	{
		char	   *q;

		if (!t->is_pk[c])
			continue;
		q = hub_quote_ident(h, t->cols[c]);
		buf_printf(&cols, "%s%s text", cols.len ? ", " : "", q);
		/* format_type() without a typmod: character and bit are (1) */
		buf_printf(&match, "%sx.%s = CAST(y.%s AS %s)", match.len ? " AND " : "", q, q,
				   strcmp(t->types[c], "character") == 0 ? "bpchar" :
				   strcmp(t->types[c], "bit") == 0 ? "varbit" : t->types[c]);
		free(q);
	}
	buf_printf(sql, "SELECT k.i FROM json_to_recordset($1::json) AS k(i int, p json),"
			   " LATERAL json_to_record(k.p) AS y(%s)"
			   " WHERE EXISTS (SELECT FROM %s x WHERE %s)", cols.p, t->qname, match.p);
	buf_free(&cols);
	buf_free(&match);
}

/*
 * Does the key of each insert into a table whose keys the hub assigns
 * (keyseq), or the app sets (app_keys), have a row on the hub? Into
 * d->exists: an insert that meets another record there is given a new key,
 * or set aside (decide).
 */
static int
read_existing(Hub *h, Decision *d, char *err, size_t errlen)
{
	for (int ti = 0; ti < h->ntables; ti++)
	{
		const HubTable *t = &h->tables[ti];
		bool		app = app_keys(t);
		Buf			keys = {0},
					sql = {0};
		JsonOut		w;
		int			n = 0;
		const char *params[1];
		PGresult   *res;

		if ((t->keyseq == NULL || t->natural) && !app)
			continue;
		jout_init(&w, &keys);
		jout_array(&w);
		for (int i = 0; i < d->n; i++)
		{
			int64_t		v;

			if (d->cs[i]->op != SYNCQ_OP_INSERT || strcmp(d->cs[i]->table, t->name) != 0 ||
				(app ? d->key[i] == NULL : !change_int_field(d->cs[i], t->keycol, &v)))
				continue;
			jout_object(&w);
			jout_kint(&w, "i", i);
			if (app)
				put_object(&w, "p", d->key[i]);
			else
				jout_kint(&w, "v", v);
			jout_object_end(&w);
			n++;
		}
		jout_array_end(&w);
		if (n == 0)
		{
			buf_free(&keys);
			continue;
		}
		if (app)
			existing_sql(h, t, &sql);
		else
		{
			char	   *qcol = hub_quote_ident(h, t->keycol);

			buf_printf(&sql, "SELECT k.i FROM json_to_recordset($1::json) AS k(i int, v bigint)"
					   " WHERE EXISTS (SELECT FROM %s x WHERE x.%s = k.v)", t->qname, qcol);
			free(qcol);
		}
		params[0] = keys.p;
		res = hub_run(h, sql.p, 1, params, PGRES_TUPLES_OK, err, errlen);
		buf_free(&keys);
		buf_free(&sql);
		if (res == NULL)
			return -1;
		for (int r = 0; r < PQntuples(res); r++)
			d->exists[atoi(PQgetvalue(res, r, 0))] = true;
		PQclear(res);
	}
	return 0;
}

/*
 * The hub's version of the row of table with key (a change's key followed),
 * its version row locked first (lock_versions; out of the order of the
 * others: a wait in a circle is a deadlock PostgreSQL breaks, and the upload
 * is sent again).
 */
static int
fetch_version(Hub *h, Decision *d, const char *table, const char *key, char *err, size_t errlen)
{
	Buf			one = {0};
	int			rc;

	one_key(&one, table, key);
	rc = versions_of(h, d, one.p, true, err, errlen);
	buf_free(&one);
	return rc;
}

/*
 * Is key k of t, just drawn from its sequence (hub_keys_assign), free to
 * take? Its version row is locked first (lock_versions): an upload side by
 * side that inserted that key, above the sequence, holds it until it
 * commits; then whether a row or a version of that key exists is read
 * again. 1 free (and held), 0 taken, -1 error.
 */
typedef struct
{
	Hub		   *h;
	Decision   *d;
} KeyClaimArg;

static int
claim_key(void *arg, const HubTable *t, int64_t k, char *err, size_t errlen)
{
	KeyClaimArg *a = arg;
	Buf			pk = {0},
				keys = {0},
				sql = {0};
	JsonOut		w;
	char	   *qcol = hub_quote_ident(a->h, t->keycol);
	char		num[32];
	const char *params[3] = {t->name, NULL, num};
	PGresult   *res;
	int			rc = -1;

	jout_init(&w, &pk);
	jout_object(&w);
	jout_kint(&w, t->keycol, k);
	jout_object_end(&w);
	one_key(&keys, t->name, pk.p);
	snprintf(num, sizeof(num), "%" PRId64, k);
	params[1] = pk.p;
	buf_printf(&sql, "SELECT EXISTS (SELECT FROM %s WHERE %s = $3::bigint)"
			   "    OR EXISTS (SELECT FROM sync_versions WHERE table_name = $1 AND pk = $2"
			   "                  AND ver_us <> " PLACEHOLDER_US ")", t->qname, qcol);
	if (lock_versions(a->h, a->d, keys.p, NULL, err, errlen) == 0 &&
		(res = hub_run(a->h, sql.p, 3, params, PGRES_TUPLES_OK, err, errlen)) != NULL)
	{
		rc = strcmp(PQgetvalue(res, 0, 0), "f") == 0 ? 1 : 0;
		PQclear(res);
	}
	free(qcol);
	buf_free(&pk);
	buf_free(&keys);
	buf_free(&sql);
	return rc;
}

/*
 * An insert into a table whose keys the hub assigns, from the client:
 * does its key meet another record on the hub (a row there that the
 * client's own changes did not make, or that is the new key of a rename
 * the client has not acknowledged: its own row of that key is another
 * record still)? Then it gets a new key (hub_keys_assign). 1 if it is a
 * new record (renamed, or its key free on the hub: no older version of
 * another record overrules it), 0 if it is the client's own row again
 * (last writer wins), -1 on error. key: the change's key as the hub spells
 * it.
 */
static int
insert_meets(Hub *h, Decision *d, int i, const HubTable *t, const char *key_json, Version *cur,
			 char *err, size_t errlen)
{
	Change	   *c = d->cs[i];
	char	   *k = row_key(c->table, key_json);
	Version    *st = vermap_get(&d->live, k);
	bool		live = st ? st->us != 0 : d->exists[i];
	const char *who = st ? st->origin : cur ? cur->origin : "";
	int64_t		key;

	free(k);
	if (!change_int_field(c, t->keycol, &key))
		return 0;
	if (!live)
		return 1;
	if (h->up.keep_keys)
		return 0;				/* a 0.1.0 client: it could not follow a rename */
	if (strcmp(who, c->origin) == 0 && !hub_keys_unacked(h, t, key, c->seq))
		return 0;
	{
		KeyClaimArg a = {h, d};

		if (hub_keys_assign(h, t, c, key, d->floor[t - h->tables], claim_key, &a, err, errlen) < 0)
			return -1;
	}
	return 1;
}

/* An overruled change, as a sync_conflicts row: it lost to cur. */
static void
add_conflict(Decision *d, int i, const Version *cur)
{
	const Change *c = d->cs[i];
	char		op[2] = {c->op, '\0'};
	JsonOut    *w = &d->cw;

	jout_object(w);
	jout_kstring(w, "t", c->table);
	put_object(w, "pk", d->key[i]);
	jout_kstring(w, "op", op);
	put_object(w, "r", c->row_json);
	jout_kstring(w, "at", c->changed_at);
	jout_kstring(w, "o", c->origin);
	jout_kint(w, "wat", cur->us);
	jout_kstring(w, "wo", cur->origin);
	jout_object_end(w);
	d->nconfl++;
}

/*
 * Give change c the version to (a re-stamp: restamp, restamp_over), the
 * highest of the uploader's given in this transaction if it is above them.
 */
static void
stamp_change(Hub *h, Change *c, int64_t to)
{
	if (to > h->restamped_to)
		h->restamped_to = to;
	c->ver_us = to;
	free(c->changed_at);
	c->changed_at = format_instant_us(to);
}

/*
 * Re-stamp change i if it is stamped further ahead of the hub's clock than
 * sync_hub_state.max_offset (docs/replication.md, Clock skew): to its
 * version minus the uploader's clock offset (when in the hub's time it was
 * made), or to the hub's clock if that is still ahead or the offset is not
 * known; never below a version of the uploader's kept or given earlier in
 * this transaction (h->restamped_to), nor below the row's version if that
 * is the uploader's own (an earlier upload's change kept within
 * max_offset), so that the uploader's changes keep their order. The
 * uploader gets a correction with the new version (act_on_report).
 */
static void
restamp(Hub *h, Decision *d, int i)
{
	Change	   *c = d->cs[i];
	int64_t		to;
	char	   *k;
	Version    *cur;

	if (within_offset(h, c))
	{
		if (c->ver_us > h->restamped_to)
			h->restamped_to = c->ver_us;
		return;
	}
	to = h->offset_known ? c->ver_us - h->offset_us : h->apply_now_us;
	if (to > h->apply_now_us)
		to = h->apply_now_us;
	if (to <= h->restamped_to)
		to = h->restamped_to + 1;
	k = row_key(c->table, d->key[i]);
	cur = vermap_get(&d->vers, k);
	free(k);
	if (cur != NULL && strcmp(cur->origin, c->origin) == 0 && to <= cur->us)
		to = cur->us + 1;
	if (to >= c->ver_us)
		return;					/* nothing gained */
	d->replaced[i] = c->ver_us;
	stamp_change(h, c, to);
}

/*
 * The key columns of a sent object (its pk or row JSON, *json) that the
 * hub renamed in change c (keys.c: the table's own key, columns that
 * reference a renamed key) take c's new integer: the client renames them
 * too when the reply reaches it, so that is what it will hold.
 */
static void
rename_sent(const HubTable *t, const Change *c, char **json)
{
	JObject		o = {0};
	const JObject *now = c->has_row ? &c->row : &c->pk;
	char		e[128];
	bool		changed = false;

	if (*json == NULL || jobj_parse(*json, strlen(*json), &o, e, sizeof(e)) < 0)
		return;
	for (int f = 0; f < o.n; f++)
	{
		const JField *to = jobj_get(now, o.f[f].key);
		bool		keyish = t->keycol && strcmp(o.f[f].key, t->keycol) == 0;

		for (int r = 0; r < t->refs.n && !keyish; r++)
			keyish = strcmp(o.f[f].key, t->refs.from[r]) == 0;
		if (!keyish || to == NULL || to->type != JV_NUMBER || o.f[f].type != JV_NUMBER ||
			(o.f[f].len == to->len && memcmp(o.f[f].text, to->text, to->len) == 0))
			continue;
		jfield_set_text(&o.f[f], o.f[f].type, xmalloc(to->len + 1), to->len);
		memcpy(o.f[f].text, to->text, to->len);
		o.f[f].text[to->len] = '\0';
		changed = true;
	}
	if (changed)
	{
		Buf			b = {0};

		buf_json_object(&b, &o);
		free(*json);
		*json = xstrdup(b.p);
		buf_free(&b);
	}
	jobj_free(&o);
}

/*
 * Change i names keys the hub renamed (hub_keys_follow) or was given a new
 * key (hub_keys_assign): its key is the new one, and what the client sent
 * is compared with the row as the client will hold it after renaming.
 */
static void
take_renamed_key(const HubTable *t, Decision *d, int i)
{
	free(d->key[i]);
	d->key[i] = xstrdup(d->cs[i]->pk_json);
	rename_sent(t, d->cs[i], &d->sent_pk[i]);
	rename_sent(t, d->cs[i], &d->sent_row[i]);
}

/*
 * Change i was set aside before it was decided (validate: a column the hub
 * lacks yet, ...). It still takes the keys the hub renamed before it
 * (hub_keys_follow), so that it waits in sync_errors as the client's rows
 * will be once renamed, and an insert of it that meets another record
 * under its key gets its new key now, in this upload's reply: its retry
 * is then the new record it is. (An insert of an old key ends that key's
 * rename here too.)
 */
static int
park_keys(Hub *h, Decision *d, int i, const HubTable *t, char *err, size_t errlen)
{
	Change	   *c = d->cs[i];
	char	   *k;
	int			rc = 0;

	if (h->up.nrenames > 0)
		hub_keys_follow(h, t, c);
	if (!t->keyseq || t->natural || c->op != SYNCQ_OP_INSERT || c->pk.n != 1 || !d->exists[i])
		return 0;
	k = row_key(c->table, c->pk_json);
	if (fetch_version(h, d, c->table, c->pk_json, err, errlen) < 0 ||
		insert_meets(h, d, i, t, c->pk_json, vermap_get(&d->vers, k), err, errlen) < 0)
		rc = -1;
	free(k);
	return rc;
}

/*
 * A retried insert (set aside earlier) into a table whose keys the hub
 * assigns, whose key another record took on the hub meanwhile (a row there
 * whose version is not its node's): it stays set aside, with a reason; last
 * writer wins would overwrite that record, or lose this one. True if so.
 */
static bool
retry_meets(Decision *d, int i, const HubTable *t, const Version *cur)
{
	const Change *c = d->cs[i];
	char		why[1024];
	int64_t		key;

	if (!t->keyseq || t->natural || c->op != SYNCQ_OP_INSERT || c->pk.n != 1 || !d->exists[i] ||
		(cur && strcmp(cur->origin, c->origin) == 0) || !change_int_field(c, t->keycol, &key))
		return false;
	snprintf(why, sizeof(why), "%s %" PRId64 " of \"%s\" is another record on the hub now (%s%s) than this insert, set aside before: it stays set aside rather than overwrite that record; give this node's row another key, then delete this change from sync_errors",
			 t->keycol, key, t->name, cur ? "its last change by node " : "made there",
			 cur ? cur->origin : "");
	set_failed(&d->out[i], why, NULL);
	return true;
}

/*
 * Which updates and deletes of app-key tables (app_keys) are of a row
 * whose insert by their node waits in sync_errors because it met another
 * record (meets_record), and so are that node's own record's changes, not
 * the hub's record's: retried, any such change after that insert; as
 * sent, one made before the node took the hub's record in its place: the
 * node has not had that insert acknowledged (this upload sends it again),
 * so it held the hub's record back (client/apply.c, own_new_record), or
 * the correction the hub queued for it then is past the node's download
 * position. Into d->follows; one look at sync_errors first, which finds
 * nothing but where a node's insert met another record.
 */
static int
read_follows(Hub *h, Decision *d, char *err, size_t errlen)
{
	Buf			keys = {0};
	JsonOut		w;
	const char *params[3] = {NULL, NULL, NULL};
	char		ack[32];
	PGresult   *res;
	bool		any;

	for (int i = 0; i < d->n && params[1] == NULL; i++)
		if (d->cs[i]->op != SYNCQ_OP_INSERT && d->key[i] != NULL && app_keys(hub_table(h, d->cs[i]->table)))
			params[1] = d->cs[i]->origin;
	if (params[1] == NULL)
		return 0;
	res = hub_prep(h, "SELECT EXISTS (SELECT FROM sync_errors WHERE node_id = $1::uuid AND op = 'I'"
				  "               AND sqlstate = '" MET_SQLSTATE "')",
				  1, params + 1, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	any = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!any)
		return 0;
	jout_init(&w, &keys);
	jout_array(&w);
	for (int i = 0; i < d->n; i++)
	{
		const Change *c = d->cs[i];

		if (c->op == SYNCQ_OP_INSERT || d->key[i] == NULL || !app_keys(hub_table(h, c->table)) ||
			strcmp(params[1], c->origin) != 0)
			continue;
		jout_object(&w);
		jout_kint(&w, "i", i);
		jout_kstring(&w, "t", c->table);
		jout_kstring(&w, "p", d->key[i]);
		jout_kstring(&w, "q", c->pk_json);	/* as sync_errors keeps it */
		jout_kint(&w, "s", c->seq);
		jout_object_end(&w);
	}
	jout_array_end(&w);
	params[0] = keys.p;
	snprintf(ack, sizeof(ack), "%" PRId64, h->up.ack_seq);
	params[2] = ack;
	res = hub_run(h, d->retry ?
				  "SELECT k.i FROM json_to_recordset($1::json) AS k(i int, t text, p text, q text, s bigint)"
				  " WHERE EXISTS (SELECT FROM sync_errors e WHERE e.node_id = $2::uuid AND e.table_name = k.t"
				  "               AND e.op = 'I' AND e.sqlstate = '" MET_SQLSTATE "' AND e.seq < k.s"
				  "               AND e.pk::jsonb IN (k.p::jsonb, k.q::jsonb))" :
				  "SELECT k.i FROM json_to_recordset($1::json) AS k(i int, t text, p text, q text, s bigint)"
				  " WHERE EXISTS (SELECT FROM sync_errors e WHERE e.node_id = $2::uuid AND e.table_name = k.t"
				  "               AND e.op = 'I' AND e.sqlstate = '" MET_SQLSTATE "' AND e.seq < k.s"
				  "               AND e.pk::jsonb IN (k.p::jsonb, k.q::jsonb)"
				  "               AND (e.seq > $3::bigint"
				  "                    OR EXISTS (SELECT FROM sync_queue q LEFT JOIN sync_clients c ON c.node_id = $2::uuid"
				  "                               WHERE q.for_node = $2::uuid AND q.table_name = k.t"
				  "                                 AND q.pk::jsonb IN (k.p::jsonb, k.q::jsonb)"
				  "                                 AND (c.down_snapshot IS NULL"
				  "                                      OR NOT pg_visible_in_snapshot(q.txid, c.down_snapshot)))))",
				  d->retry ? 2 : 3, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&keys);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		d->follows[atoi(PQgetvalue(res, r, 0))] = true;
	PQclear(res);
	return 0;
}

/*
 * What the uploader's own sync_errors says of its insert of key into table,
 * set aside because another record holds that key on the hub, whose last
 * change was who's (the hub's node id: its app; "": a row from before the
 * table was tracked): the uploader keeps its row there (client/queue.c) while
 * the hub's copy of the change waits.
 */
static void
met_note(Hub *h, Outcome *o, const char *key, const char *table, const char *who)
{
	char		how[160],
				note[1024];

	if (who[0] == '\0')
		snprintf(how, sizeof(how), "was on the hub already, a row from before the table was tracked");
	else if (strcmp(who, h->node_id) == 0)
		snprintf(how, sizeof(how), "was also created by the hub's app, before this node's row reached the hub");
	else
		snprintf(how, sizeof(how), "was also created on another node, and that record reached the hub first (its last change: node %s)",
				 who);
	snprintf(note, sizeof(note), "row %.*s of \"%s\" %s: this node's row is set aside, kept here as it was sent, and the hub's record took its place. To keep this row, insert it again under another key; this entry goes once the hub's copy of this change leaves the hub's sync_errors (deleted there, or applied once that record left the key)",
			 utf8_cut(key, 300), key, table, how);
	free(o->note);
	o->note = xstrdup(note);
}

/*
 * Change i of an app-key table (app_keys), not decided yet: set aside if
 * it is an insert whose key names another record on the hub, a live row
 * whose last change is not this node's (another node's insert reached the
 * hub first, or the hub's app made it): an insert is a new record, and
 * last writer wins would write one record over the other. Also a later
 * change of such a row (this node's record, not the hub's), in this call
 * or while that insert waits in sync_errors (read_follows). A row that is
 * all key (an association table's) is the same record whoever made it. The
 * uploader gets the hub's row back (add_corrections), and its own waits
 * in sync_errors. 1 if set aside; 2 if an insert whose key is free on the
 * hub: a new record, which no older version of another record (a
 * tombstone) overrules; 0 otherwise (last writer wins).
 */
static int
meets_record(Hub *h, Decision *d, int i, const HubTable *t, const char *k, const Version *cur)
{
	const Change *c = d->cs[i];
	const Version *st = vermap_get(&d->live, k);
	bool		live = st ? st->us != 0 : d->exists[i];
	const char *who = st ? st->origin : cur ? cur->origin : "";
	char		why[1024];
	Version		mark = {1, "", true};

	if (c->op != SYNCQ_OP_INSERT && vermap_get(&d->metkeys, k) == NULL)
	{
		if (!d->follows[i])
			return 0;
		/* an insert of the row earlier in this call was decided already */
		for (int j = 0; j < i; j++)
			if (d->cs[j]->op == SYNCQ_OP_INSERT && d->key[j] != NULL &&
				strcmp(d->cs[j]->table, c->table) == 0 && strcmp(d->key[j], d->key[i]) == 0)
				return 0;
	}
	if (c->op != SYNCQ_OP_INSERT || vermap_get(&d->metkeys, k) != NULL)
	{
		snprintf(why, sizeof(why), "row %.*s of \"%s\" is this node's own record, whose insert was set aside (it met another record of that key on the hub): this change of it waits with it in sync_errors (delete both, or neither)",
				 utf8_cut(d->key[i], 300), d->key[i], c->table);
		set_failed(&d->out[i], why, MET_SQLSTATE);
		snprintf(why, sizeof(why), "row %.*s of \"%s\" is this node's own record, whose insert was set aside (another record of that key reached the hub first): this change of it waits with that insert in the hub's sync_errors, and is kept here as it was sent; this entry goes once the hub's copy of it goes",
				 utf8_cut(d->key[i], 300), d->key[i], c->table);
		d->out[i].note = xstrdup(why);
		d->met[i] = true;
		vermap_put(&d->metkeys, k, &mark);
		return 1;
	}
	if (!live)
		return 2;
	if (t->npk == t->ncols)
		return 0;
	/*
	 * A live row of this node's own is its record again (keep_keys: a 0.1.0
	 * client, last writer wins): as sent, or retried when set aside for
	 * another reason (a column the hub lacked yet; this node's later change
	 * may have made the row meanwhile). Retried after it met another record,
	 * a live row is that record, even if this node has edited it since it
	 * took it.
	 */
	if (d->retry ? strcmp(d->out[i].sqlstate, MET_SQLSTATE) != 0 && strcmp(who, c->origin) == 0
		: strcmp(who, c->origin) == 0 || h->up.keep_keys)
		return 0;
	snprintf(why, sizeof(why), "row %.*s of \"%s\" is another record on the hub (%s%s), made before this node's insert of that key reached it: an insert never writes over another record. The hub's record replaces this node's row here, and this insert waits in sync_errors; to keep it, insert it again under a key of its own, then delete this change and this node's later changes of that row from sync_errors",
			 utf8_cut(d->key[i], 300), d->key[i], c->table,
			 who[0] == '\0' ? "a row of the hub's from before it was tracked" :
			 strcmp(who, h->node_id) == 0 ? "made by the hub's app" : "its last change by node ",
			 who[0] == '\0' || strcmp(who, h->node_id) == 0 ? "" : who);
	set_failed(&d->out[i], why, MET_SQLSTATE);
	met_note(h, &d->out[i], d->key[i], c->table, who);
	d->met[i] = true;
	vermap_put(&d->metkeys, k, &mark);
	return 1;
}

/*
 * Re-stamp change i above the row's version cur on the hub: an insert
 * taken as a new record (its key free on the hub: meets_record,
 * insert_meets) over the newer tombstone of another record, or a later
 * change of the uploader's own row that an earlier such re-stamp put
 * behind. Every node then takes it by last writer wins, the node whose delete made the tombstone too;
 * the uploader gets a correction with the new version (add_corrections),
 * as after restamp().
 */
static void
restamp_over(Hub *h, Decision *d, int i, const char *k, const Version *cur)
{
	Change	   *c = d->cs[i];
	Version		mark = {1, "", true};

	/*
	 * (retried: the uploader has the hub's row in place of its change
	 * already, and gets the new version only if it applies)
	 */
	if (d->replaced[i] == 0 && !d->retry)
		d->replaced[i] = c->ver_us;
	stamp_change(h, c, cur->us + 1);
	vermap_put(&d->overkeys, k, &mark);
}

/*
 * Decide, last writer wins, in order: a change stamped too far ahead is
 * re-stamped first; a change older than the row's version is overruled
 * (or, retried, superseded by its own node's later change); the rest win,
 * and become the row's version for the changes after them. Keys the hub
 * renamed are followed first (keys.c), and an insert into a table whose
 * keys the hub assigns that meets another record is given a new key
 * (insert_meets), one into a table whose keys the app sets is set aside
 * (meets_record): it is never an overwrite.
 */
static int
decide(Hub *h, Decision *d, bool retry, char *err, size_t errlen)
{
	int			rc = 0;

	for (int i = 0; i < d->n && rc == 0; i++)
	{
		Change	   *c = d->cs[i];
		const HubTable *t = hub_table(h, c->table);
		char	   *k;
		Version		v = {c->ver_us, "", true};
		Version    *cur;
		int			fresh = 0,
					met = 0;

		if (d->out[i].done == DONE_FAILED)
		{
			if (!retry && t != NULL && park_keys(h, d, i, t, err, errlen) < 0)
				rc = -1;
			continue;
		}
		if (!retry && h->up.nrenames > 0)
		{
			bool		own = hub_keys_follow(h, t, c);

			rename_sent(t, c, &d->sent_row[i]);	/* a reference renamed */
			if (own)
				take_renamed_key(t, d, i);
			if (own && fetch_version(h, d, c->table, d->key[i], err, errlen) < 0)
			{
				rc = -1;
				break;
			}
		}
		restamp(h, d, i);
		v.us = c->ver_us;
		k = row_key(c->table, d->key[i]);
		cur = vermap_get(&d->vers, k);
		if (retry && retry_meets(d, i, t, cur))
		{
			free(k);
			continue;
		}
		if (app_keys(t) && (met = meets_record(h, d, i, t, k, cur)) == 1)
		{
			free(k);
			continue;
		}
		if (!retry && t->keyseq && !t->natural && c->op == SYNCQ_OP_INSERT && c->pk.n == 1 &&
			(fresh = insert_meets(h, d, i, t, d->key[i], cur, err, errlen)) != 0)
		{
			free(k);
			if (fresh < 0)
			{
				rc = -1;
				break;
			}
			take_renamed_key(t, d, i);
			k = row_key(c->table, d->key[i]);
			cur = vermap_get(&d->vers, k);
		}
		memcpy(v.origin, c->origin, sizeof(v.origin));
		/*
		 * A new record (its key free on the hub, or given a new one) over
		 * another's tombstone, and a change after a change of the
		 * uploader's own that was re-stamped ahead of it (sent: in its
		 * node's order; retried: re-stamped in this call), are the latest
		 * of the row.
		 */
		if (cur && version_cmp(&v, cur) < 0 &&
			(met == 2 || fresh > 0 ||
			 (strcmp(cur->origin, c->origin) == 0 && (!retry || vermap_get(&d->overkeys, k) != NULL))))
		{
			restamp_over(h, d, i, k, cur);
			v.us = c->ver_us;
		}
		if (cur && version_cmp(&v, cur) < 0)
		{
			free(k);
			if (retry && strcmp(cur->origin, c->origin) == 0)
				d->out[i].done = DONE_SUPERSEDED;
			else
			{
				d->out[i].done = DONE_OVERRULED;
				add_conflict(d, i, cur);
			}
			continue;
		}
		vermap_put(&d->vers, k, &v);
		if (t->keyseq || app_keys(t))
		{
			Version		st = {c->op == SYNCQ_OP_DELETE ? 0 : 1, "", true};

			memcpy(st.origin, c->origin, sizeof(st.origin));
			vermap_put(&d->live, k, &st);
		}
		free(k);
		d->out[i].done = DONE_APPLIED;
		d->win[d->nwin++] = i;
	}
	return rc;
}

/*
 * The version change i's row holds on the hub, as this call left it
 * before change i: that of the last change of it applied earlier in this
 * call, or the row's from before. False if the hub has none.
 */
static bool
row_version(const Decision *d, int i, Version *v)
{
	const Version *before;
	char	   *k;

	for (int j = i - 1; j >= 0; j--)
		if (d->out[j].done == DONE_APPLIED && d->key[j] != NULL &&
			strcmp(d->cs[j]->table, d->cs[i]->table) == 0 && strcmp(d->key[j], d->key[i]) == 0)
		{
			v->us = d->cs[j]->ver_us;
			snprintf(v->origin, sizeof(v->origin), "%s", d->cs[j]->origin);
			return true;
		}
	k = row_key(d->cs[i]->table, d->key[i]);
	before = vermap_get(&d->before, k);
	free(k);
	if (before != NULL)
		*v = *before;
	return before != NULL;
}

/*
 * A delete the hub's foreign keys refused (SQLSTATE 23503: ON DELETE
 * RESTRICT or NO ACTION, rows of another table still refer to the row: a
 * child added on another node meanwhile) is overruled, not set aside: the
 * row stands on the hub with its children, and trying again would change
 * nothing until someone deletes them, while the uploader alone would lack
 * the row. It goes into sync_conflicts, lost to the row's version on the
 * hub, and the uploader gets the row back as a correction (add_corrections).
 * A retried one (set aside before) too. why stays, saying what refused it.
 */
static void
keep_referenced(Hub *h, Decision *d)
{
	for (int i = 0; i < d->n; i++)
	{
		Outcome    *o = &d->out[i];
		Version		v = {0, "", true};

		if (o->done != DONE_FAILED || d->cs[i]->op != SYNCQ_OP_DELETE || d->key[i] == NULL ||
			strcmp(o->sqlstate, "23503") != 0)
			continue;
		if (!row_version(d, i, &v))
			snprintf(v.origin, sizeof(v.origin), "%s", h->node_id);
		logmsg(LOG_INFO, "change %" PRId64 " of node %s (D \"%s\" %s) overruled: the hub keeps the row, %s",
			   d->cs[i]->seq, d->cs[i]->origin, d->cs[i]->table, d->key[i], o->why);
		o->done = DONE_OVERRULED;	/* why stays: settle logs it */
		add_conflict(d, i, &v);
		d->kept[i] = true;
	}
}

/* A sync_versions row (t, p, u, o, d) into the array w writes (PUT_VERSIONS_SQL). */
static void
add_version(JsonOut *w, const char *table, const char *pk, int64_t us, const char *origin, bool deleted)
{
	jout_object(w);
	jout_kstring(w, "t", table);
	jout_kstring(w, "p", pk);
	jout_kint(w, "u", us);
	jout_kstring(w, "o", origin);
	jout_kbool(w, "d", deleted);
	jout_object_end(w);
}

/* (a row named twice, as a cascade and a trigger may: its greatest version) */
#define PUT_VERSIONS_OVER_SQL \
	"INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)" \
	" SELECT DISTINCT ON (x.t, x.p) x.t, x.p, x.u, x.o, x.d" \
	"   FROM json_to_recordset($1::json) AS x(t text, p text, u bigint, o uuid, d boolean)" \
	"  ORDER BY x.t, x.p, x.u DESC, x.o::text DESC" \
	" ON CONFLICT (table_name, pk) DO UPDATE" \
	"   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted"
/* (...over a version row unless it holds a greater version: OVER is for
 * tentative ones, lock_versions) */
#define PUT_VERSIONS_SQL PUT_VERSIONS_OVER_SQL \
	" WHERE (v.ver_us, v.ver_origin::text) <= (EXCLUDED.ver_us, EXCLUDED.ver_origin::text)"

/*
 * Version rows to write (PUT_VERSIONS_SQL), and those over tentative rows
 * (lock_versions), which are written whatever they hold
 * (PUT_VERSIONS_OVER_SQL) and are tentative no more.
 */
typedef struct
{
	Buf			rows,
				over_rows;
	JsonOut		w,
				over;
	int			n,
				nover;
} VersionWrites;

static void
vwrites_init(VersionWrites *v)
{
	memset(v, 0, sizeof(*v));
	jout_init(&v->w, &v->rows);
	jout_array(&v->w);
	jout_init(&v->over, &v->over_rows);
	jout_array(&v->over);
}

/* The version (us, origin, deleted) of row pk of table, for key k (row_key). */
static void
vwrites_add(VersionWrites *v, Decision *d, const char *k, const char *table, const char *pk,
			int64_t us, const char *origin, bool deleted)
{
	Version    *t = vermap_get(&d->tent, k);

	if (t != NULL && t->known)
	{
		t->known = false;
		add_version(&v->over, table, pk, us, origin, deleted);
		v->nover++;
	}
	else
	{
		add_version(&v->w, table, pk, us, origin, deleted);
		v->n++;
	}
}

/* Write them (over the tentative rows first: a key in both gets the greater). */
static int
vwrites_run(Hub *h, VersionWrites *v, char *err, size_t errlen)
{
	jout_array_end(&v->w);
	jout_array_end(&v->over);
	if (v->nover > 0 && run_json(h, PUT_VERSIONS_OVER_SQL, &v->over_rows, err, errlen) < 0)
		return -1;
	if (v->n > 0 && run_json(h, PUT_VERSIONS_SQL, &v->rows, err, errlen) < 0)
		return -1;
	return 0;
}

static void
vwrites_free(VersionWrites *v)
{
	buf_free(&v->rows);
	buf_free(&v->over_rows);
}

/* A queue row syncqd writes itself (a relay, or a correction's delete). */
#define PUT_QUEUE_SQL \
	"INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority," \
	"                        for_node, for_seq, replaces)" \
	" SELECT pg_current_xact_id(), x.s, x.t, x.op, x.pk, x.r, x.at, x.o, x.pr, x.fn, x.fs," \
	"        to_timestamp(0) + x.rep * interval '1 microsecond'" \
	"   FROM ROWS FROM (json_to_recordset($1::json)" \
	"        AS (s text, t text, op text, pk json, r json, at timestamptz, o uuid, pr text, fn uuid, fs bigint, rep bigint))" \
	"        WITH ORDINALITY AS x(s, t, op, pk, r, at, o, pr, fn, fs, rep, n)" \
	"  ORDER BY x.n"

/*
 * A queue row into w: change c, as op with key pk; a correction (for c's
 * node alone) if correction, replacing version rep if not 0.
 */
static void
add_queue_row(JsonOut *w, Hub *h, const Change *c, char op, const char *pk, bool correction,
			  int64_t rep)
{
	char		ops[2] = {op, '\0'};

	jout_object(w);
	jout_kstring(w, "s", hub_table(h, c->table)->schema);
	jout_kstring(w, "t", c->table);
	jout_kstring(w, "op", ops);
	put_object(w, "pk", pk);
	put_object(w, "r", op == SYNCQ_OP_DELETE ? NULL : c->row_json);
	jout_kstring(w, "at", c->changed_at);
	jout_kstring(w, "o", c->origin);
	jout_kstring(w, "pr", c->immediate ? SYNCQ_PRIORITY_IMMEDIATE : SYNCQ_PRIORITY_BATCHED);
	jout_key(w, "fn");
	if (correction)
		jout_string(w, c->origin);
	else
		jout_null(w);
	jout_key(w, "fs");
	if (correction)
		jout_int(w, c->seq);
	else
		jout_null(w);
	jout_key(w, "rep");
	if (rep != 0)
		jout_int(w, rep);
	else
		jout_null(w);
	jout_object_end(w);
}

/*
 * The kind of a column of table arg, and whether the client gives its
 * value the hub's form itself (not a key column: client/respell.c), for
 * value.c.
 */
static ValueKind
column_kind(const void *arg, const char *col, bool *respelt)
{
	const HubTable *t = arg;
	int			i = hub_col(t, col);

	*respelt = i >= 0 && !t->is_pk[i];
	return i < 0 ? VK_OTHER : t->kinds[i];
}

/*
 * Does the hub store the row of change i under another spelling of the key
 * than the uploader sent (as the client would hold it: value.c)?
 */
static bool
key_differs(Hub *h, const Decision *d, int i)
{
	const HubTable *t = hub_table(h, d->cs[i]->table);
	JObject		key = {0},
				sent_pk = {0};
	char		e[256];
	bool		differs = false;

	if (t != NULL && d->sent_pk[i] != NULL &&
		jobj_parse(d->key[i], strlen(d->key[i]), &key, e, sizeof(e)) == 0 &&
		jobj_parse(d->sent_pk[i], strlen(d->sent_pk[i]), &sent_pk, e, sizeof(e)) == 0)
		differs = row_differs_for_client(&sent_pk, &key, column_kind, t);
	jobj_free(&key);
	jobj_free(&sent_pk);
	return differs;
}

/*
 * Does the uploader of change i need the row as the hub stored it
 * (stored, JSON text)? Yes where it would hold another value than it sent
 * (value.c): a BEFORE trigger's write, a type's rounding; *other_key when
 * the hub stores the row under another spelling of the key it sent.
 */
static bool
needs_correction(Hub *h, const Decision *d, int i, const char *stored, bool *other_key)
{
	const HubTable *t = hub_table(h, d->cs[i]->table);
	JObject		row = {0},
				sent_row = {0};
	char		e[256];
	bool		differs = true;

	*other_key = key_differs(h, d, i);
	if (d->sent_row[i] != NULL &&
		jobj_parse(stored, strlen(stored), &row, e, sizeof(e)) == 0 &&
		jobj_parse(d->sent_row[i], strlen(d->sent_row[i]), &sent_row, e, sizeof(e)) == 0)
		differs = row_differs_for_client(&sent_row, &row, column_kind, t);
	jobj_free(&row);
	jobj_free(&sent_row);
	return differs || *other_key;
}

/*
 * Queue the corrections in fixes: each the row as the hub holds it now
 * (sync_queue_row), with version v and origin o, for node fn alone.
 */
static int
queue_corrections(Hub *h, const Buf *fixes, char *err, size_t errlen)
{
	const char *params[1] = {fixes->p};
	PGresult   *res = hub_run(h, "SELECT sync_queue_row(x.q::regclass, x.pk::jsonb, x.v, x.o, x.fn, x.fs, x.rep)"
							  "  FROM (SELECT * FROM ROWS FROM (json_to_recordset($1::json)"
							  "        AS (q text, pk text, v bigint, o uuid, fn uuid, fs bigint, rep bigint))"
							  "        WITH ORDINALITY AS y(q, pk, v, o, fn, fs, rep, n) ORDER BY y.n) AS x",
							  1, params, PGRES_TUPLES_OK, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* What act_on_report works out for the uploader's corrections. */
typedef struct
{
	VerMap		last;			/* (table, hub key) -> the change of the row that
								 * answers for it (.us): its last (retried: the
								 * last that went through: answering) */
	bool	   *fix;			/* of each change: stored otherwise than sent */
	bool	   *fix_key;		/* ... under another spelling of its key */
	int64_t    *restamped;		/* of each: the version the capture stamped
								 * it with afresh (0: none) */
	VerMap		queued;			/* rows the capture queued in this call */
} Answers;

/*
 * Does change i answer for its row in a retry (set-aside changes tried
 * again): it went through, or it is a delete overruled because rows still
 * refer to its row (keep_referenced)? Its node gets the hub's row then
 * (add_corrections). The others of a retry have been answered already,
 * when they came.
 */
static bool
answering(const Decision *d, int i)
{
	return d->out[i].done == DONE_APPLIED || d->kept[i];
}

/*
 * Is change i the one that answers for its row in this call (Answers.last)?
 * Its last change; in a retry, its last that answers (answering), where one
 * does: a later one refused again, superseded or overruled gets no
 * correction, and the node would never get the row that went through.
 */
static bool
is_last(const Decision *d, const Answers *a, int i)
{
	char	   *k = row_key(d->cs[i]->table, d->key[i]);
	Version    *at = vermap_get(&a->last, k);

	free(k);
	return at != NULL && at->us == i;
}

/*
 * Did the hub refuse change i, as it came (not retried: the uploader was
 * answered then), because a row it refers to is missing (a foreign key:
 * the parent was deleted meanwhile)?
 */
static bool
orphan(const Decision *d, int i)
{
	return !d->retry && d->out[i].done == DONE_FAILED && strcmp(d->out[i].sqlstate, "23503") == 0;
}

/*
 * Was change i, as it came (not retried: the uploader was answered then),
 * set aside as this node's own record where the hub holds another one
 * (meets_record)?
 */
static bool
met_now(const Decision *d, int i)
{
	return !d->retry && d->met[i];
}

/*
 * The corrections (docs/replication.md) into qw (a delete of the key as
 * sent) and fw (the row as the hub holds it): for the last change of each
 * row, if the hub stored it otherwise than sent (or not at all: a BEFORE
 * trigger dropped it or moved it to another key), or re-stamped it (on
 * arrival, or the capture afresh after a cascade or trigger changed the
 * row earlier in the upload), or a set-aside change now went through (the
 * uploader may have dropped it); the version is the row's on the hub (the
 * change's own if it won, the capture's if it stamped it afresh), and a
 * re-stamp on arrival says which version of the uploader's it replaces.
 * And for a change refused for a missing parent, the hub's row as it is
 * (none), replacing the change's version: the uploader drops its orphan
 * too, and the change waits in sync_errors. Likewise for an insert set
 * aside because another record holds its key (meets_record), and the
 * changes of that row after it: the uploader gets the hub's record in place
 * of its own, which waits in sync_errors. A failed change's correction
 * carries the row's version from before this call (it never applied). And
 * for a delete overruled because rows still refer to its row
 * (keep_referenced), the hub's row as it is, replacing the delete's
 * version: the uploader has it back. In a retry, "the last change of each
 * row" is its last that went through (is_last): the node holds the hub's
 * row in place of its set-aside changes, and gets no relay of its own, so
 * a later one refused again must not keep the correction from it.
 */
static int
add_corrections(Hub *h, const Decision *d, const Answers *a, JsonOut *qw, JsonOut *fw, int *nf)
{
	int			nq = 0;

	for (int i = 0; i < d->n; i++)
	{
		const Change *c = d->cs[i];
		bool		failed = d->out[i].done == DONE_FAILED;
		char	   *k;
		Version    *v;
		Version		now = {0, "", true};
		int64_t		ver = c->ver_us;
		const char *origin = c->origin;
		int64_t		rep = d->replaced[i];

		if (d->key[i] == NULL || !is_last(d, a, i) ||
			(!a->fix[i] && rep == 0 && a->restamped[i] == 0 && !orphan(d, i) && !d->kept[i] &&
			 !met_now(d, i) && !(d->retry && d->out[i].done == DONE_APPLIED)))
			continue;
		k = row_key(c->table, d->key[i]);
		v = vermap_get(failed ? &d->before : &d->vers, k);
		free(k);
		if (d->out[i].done == DONE_APPLIED)
		{
			/*
			 * its own version, as record() keeps it (d->vers has that of a
			 * later change decided to win but refused when applied)
			 */
			now.us = c->ver_us;
			snprintf(now.origin, sizeof(now.origin), "%s", c->origin);
			v = &now;
		}
		if (d->kept[i])
			v = row_version(d, i, &now) ? &now : NULL;
		if (failed || d->kept[i])
		{
			ver = 0;			/* the hub has no version of it */
			origin = h->node_id;
			if (rep == 0)
				rep = c->ver_us;
		}
		if (v != NULL)
		{
			ver = v->us;
			origin = v->origin;
		}
		if (a->restamped[i] != 0)
		{
			ver = a->restamped[i];
			origin = c->origin;
		}
		if (a->fix_key[i] || ((orphan(d, i) || d->kept[i] || met_now(d, i)) && key_differs(h, d, i)))
		{
			add_queue_row(qw, h, c, SYNCQ_OP_DELETE, d->sent_pk[i], true, rep);
			nq++;
		}
		jout_object(fw);
		jout_kstring(fw, "q", hub_table(h, c->table)->qname);
		jout_kstring(fw, "pk", d->key[i]);
		jout_kint(fw, "v", ver);
		jout_kstring(fw, "o", origin);
		jout_kstring(fw, "fn", c->origin);
		jout_kint(fw, "fs", c->seq);
		jout_key(fw, "rep");
		if (rep != 0)
			jout_int(fw, rep);
		else
			jout_null(fw);
		jout_object_end(fw);
		(*nf)++;
	}
	return nq;
}

/*
 * What the capture did with the changes applied (sync_apply_report), acted
 * on: the versions of rows a cascade or a trigger changed, or stamped
 * afresh, into sync_versions (so that later changes of this upload compare
 * with them); a relay of the winners nothing captured (a delete of a row
 * the hub lacks); and the corrections for the uploader (add_corrections).
 */
static int
act_on_report(Hub *h, Decision *d, char *err, size_t errlen)
{
	PGresult   *res = hub_prep(h, "SELECT n, t, op, pk, row_data, ver, origin::text, what FROM sync_apply_report()",
							  0, NULL, PGRES_TUPLES_OK, err, errlen);
	Answers		a = {0};
	VersionWrites vw;
	Buf			qrows = {0},
				fixes = {0};
	JsonOut		qw,
				fw;
	int			nq = 0,
				nf = 0,
				rc = 0;

	if (res == NULL)
		return -1;
	a.fix = xcalloc((size_t) d->n + 1, sizeof(bool));
	a.fix_key = xcalloc((size_t) d->n + 1, sizeof(bool));
	a.restamped = xcalloc((size_t) d->n + 1, sizeof(int64_t));
	for (int i = 0; i < d->n; i++)
	{
		Version		at = {i, "", true};
		Version    *was;
		char	   *k;

		if (d->key[i] == NULL)
			continue;
		k = row_key(d->cs[i]->table, d->key[i]);
		was = vermap_get(&a.last, k);
		if (!d->retry || answering(d, i) || was == NULL || !answering(d, (int) was->us))
			vermap_put(&a.last, k, &at);
		free(k);
	}
	/* the rows the capture queued in this call (a relay after them would
	 * be a write with a lower version than theirs) */
	for (int r = 0; r < PQntuples(res); r++)
		if (strcmp(PQgetvalue(res, r, 7), "missing") != 0)
		{
			Version		mark = {0, "", true};
			char	   *k = row_key(PQgetvalue(res, r, 1), PQgetvalue(res, r, 3));

			vermap_put(&a.queued, k, &mark);
			free(k);
		}
	vwrites_init(&vw);
	jout_init(&qw, &qrows);
	jout_array(&qw);
	jout_init(&fw, &fixes);
	jout_array(&fw);
	for (int r = 0; r < PQntuples(res); r++)
	{
		int			n = atoi(PQgetvalue(res, r, 0));
		const char *what = PQgetvalue(res, r, 7);
		const Change *c = n >= 0 && n < d->n ? d->cs[n] : NULL;
		bool		last = c != NULL && d->key[n] != NULL &&
			d->out[n].done == DONE_APPLIED && is_last(d, &a, n);

		if (strcmp(what, "consequence") == 0 || strcmp(what, "restamped") == 0)
		{
			char	   *k = row_key(PQgetvalue(res, r, 1), PQgetvalue(res, r, 3));

			vwrites_add(&vw, d, k, PQgetvalue(res, r, 1), PQgetvalue(res, r, 3),
						strtoll(PQgetvalue(res, r, 5), NULL, 10), PQgetvalue(res, r, 6),
						PQgetvalue(res, r, 2)[0] == SYNCQ_OP_DELETE);
			free(k);
		}
		if (c == NULL || d->key[n] == NULL)
			continue;
		if (strcmp(what, "missing") == 0)
		{
			char	   *k = row_key(c->table, d->key[n]);
			bool		queued = vermap_get(&a.queued, k) != NULL;

			free(k);
			if (queued)
				continue;		/* a cascade got there first: that is relayed */
			if (c->op == SYNCQ_OP_DELETE)
			{
				/* a delete of a row the hub lacks: the others delete it too */
				add_queue_row(&qw, h, c, c->op, d->key[n], false, 0);
				nq++;
			}
			else if (last)
			{
				/* a BEFORE trigger dropped the row or moved it to another
				 * key (captured as the hub's own): the uploader gets the
				 * hub's row of this key as it is (none, or as before) */
				a.fix[n] = true;
				a.fix_key[n] = key_differs(h, d, n);
			}
			continue;
		}
		if (last && !PQgetisnull(res, r, 4))
			a.fix[n] = needs_correction(h, d, n, PQgetvalue(res, r, 4), &a.fix_key[n]);
		if (last && strcmp(what, "restamped") == 0)
			a.restamped[n] = strtoll(PQgetvalue(res, r, 5), NULL, 10);
	}
	nq += add_corrections(h, d, &a, &qw, &fw, &nf);
	jout_array_end(&qw);
	jout_array_end(&fw);
	PQclear(res);
	if (vwrites_run(h, &vw, err, errlen) < 0 ||
		(nq > 0 && run_json(h, PUT_QUEUE_SQL, &qrows, err, errlen) < 0) ||
		(nf > 0 && queue_corrections(h, &fixes, err, errlen) < 0))
		rc = -1;
	vermap_free(&a.last);
	vermap_free(&a.queued);
	free(a.fix);
	free(a.fix_key);
	free(a.restamped);
	vwrites_free(&vw);
	buf_free(&qrows);
	buf_free(&fixes);
	return rc;
}

/*
 * Raise the hub's clock (sync_clock, the greatest of its rows) to the
 * greatest version applied, in the transaction that applies it: a change
 * the hub's app makes after it is stamped later (pg_ext/clock.c,
 * docs/replication.md). The row of this connection's slot: uploads side by
 * side raise different rows, and do not wait for each other's.
 */
static int
raise_clock(Hub *h, const Decision *d, char *err, size_t errlen)
{
	int64_t		top = INT64_MIN;
	char		num[32];
	const char *params[1] = {num};
	PGresult   *res;

	for (int i = 0; i < d->nwin; i++)
		if (d->out[d->win[i]].done == DONE_APPLIED && d->cs[d->win[i]]->ver_us > top)
			top = d->cs[d->win[i]]->ver_us;
	if (top == INT64_MIN)
		return 0;
	snprintf(num, sizeof(num), "%" PRId64, top);
	res = hub_prep(h, "UPDATE sync_clock SET hlc = to_timestamp(0) + $1::bigint * interval '1 microsecond'"
				  " WHERE slot = pg_backend_pid() % " CLOCK_SLOTS
				  "   AND hlc < to_timestamp(0) + $1::bigint * interval '1 microsecond'",
				  1, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * Delete the placeholder version rows this call made (lock_versions) that
 * no version filled: the keys in done got one. A row a consequence
 * versioned meanwhile is not a placeholder any more, and stays. A
 * tentative one (d->tent) nothing wrote over is deleted by its version.
 */
static int
drop_placeholders(Hub *h, Decision *d, const VerMap *done, char *err, size_t errlen)
{
	Buf			arr = {0};
	JsonOut		w;
	int			n = 0,
				rc = 0;

	jout_init(&w, &arr);
	jout_array(&w);
	for (int i = 0; i < d->nheld; i++)
	{
		const char *sep = strchr(d->held[i], '\x1f');
		const Version *t = vermap_get(&d->tent, d->held[i]);

		if (vermap_get(done, d->held[i]) != NULL || sep == NULL || (t != NULL && !t->known))
			continue;
		jout_object(&w);
		jout_key(&w, "t");
		jout_stringn(&w, d->held[i], (size_t) (sep - d->held[i]));
		jout_kstring(&w, "p", sep + 1);
		if (t != NULL)
			jout_kint(&w, "u", t->us);
		jout_object_end(&w);
		n++;
	}
	jout_array_end(&w);
	if (n > 0)
		rc = run_json(h, "DELETE FROM sync_versions v USING json_to_recordset($1::json) AS k(t text, p text, u bigint)"
					  " WHERE v.table_name = k.t AND v.pk = k.p AND v.ver_us = coalesce(k.u, " PLACEHOLDER_US ")",
					  &arr, err, errlen);
	buf_free(&arr);
	for (int i = 0; i < d->nheld; i++)
		free(d->held[i]);
	d->nheld = 0;
	return rc;
}

/*
 * Record: the versions of what went through (*notify if one is
 * immediate), the hub's clock raised past them, and the overruled changes.
 * (The capture queued the winners as the hub stored them.)
 */
static int
record(Hub *h, Decision *d, bool *notify, char *err, size_t errlen)
{
	VerMap		done = {0};
	Version		mark = {0, "", true};
	VersionWrites vw;
	int			rc;

	vwrites_init(&vw);
	for (int i = d->nwin - 1; i >= 0; i--)
	{
		const Change *c = d->cs[d->win[i]];
		char	   *k;

		if (d->out[d->win[i]].done != DONE_APPLIED)
			continue;
		if (c->immediate)
			*notify = true;
		k = row_key(c->table, d->key[d->win[i]]);
		if (vermap_get(&done, k) == NULL)
		{
			Version    *t = vermap_get(&d->tent, k);

			vermap_put(&done, k, &mark);
			/* a tentative row that holds this version already: kept */
			if (t != NULL && t->known && c->op != SYNCQ_OP_DELETE && t->us == c->ver_us &&
				strcasecmp(t->origin, c->origin) == 0)
				t->known = false;
			else
				vwrites_add(&vw, d, k, c->table, d->key[d->win[i]], c->ver_us, c->origin,
							c->op == SYNCQ_OP_DELETE);
		}
		free(k);
	}
	rc = vwrites_run(h, &vw, err, errlen);
	if (rc == 0)
		rc = drop_placeholders(h, d, &done, err, errlen);
	vermap_free(&done);
	if (rc == 0)
		rc = raise_clock(h, d, err, errlen);
	jout_array_end(&d->cw);
	if (rc == 0 && d->nconfl > 0)
		rc = run_json(h, "INSERT INTO sync_conflicts (table_name, pk, loser_op, loser_row, loser_changed_at, loser_origin, winner_changed_at, winner_origin)"
					  " SELECT x.t, x.pk, x.op, x.r, x.at, x.o, to_timestamp(0) + x.wat * interval '1 microsecond', x.wo"
					  "   FROM json_to_recordset($1::json) AS x(t text, pk json, op text, r json, at timestamptz, o uuid, wat bigint, wo uuid)"
					  "",
					  &d->confl, err, errlen);
	vwrites_free(&vw);
	return rc;
}

/*
 * Keep the hub's key sequences ahead of every key that arrived: for each
 * table whose one integer key column has a sequence (HubTable.keyseq), the
 * greatest key an applied insert or update carried becomes the sequence's
 * last value where the sequence stands below it, so the hub's own app never
 * draws a key a client already used (hub_seqs_ahead).
 */
static int
keep_sequences_ahead(Hub *h, const Decision *d, char *err, size_t errlen)
{
	const HubTable **tabs = xmalloc(sizeof(HubTable *) * (size_t) (d->nwin + 1));
	int64_t    *maxk = xmalloc(sizeof(int64_t) * (size_t) (d->nwin + 1));
	int			ntabs = 0,
				rc = 0;
	Buf			arr = {0};
	JsonOut		w;

	for (int i = 0; i < d->nwin; i++)
	{
		const Change *c = d->cs[d->win[i]];
		const HubTable *t;
		const JField *f = c->pk.n == 1 ? &c->pk.f[0] : NULL;
		char	   *end;
		long long	k;
		int			j;

		if (d->out[d->win[i]].done != DONE_APPLIED || c->op == SYNCQ_OP_DELETE || f == NULL ||
			f->type != JV_NUMBER || (t = hub_table(h, c->table)) == NULL || t->keyseq == NULL)
			continue;
		errno = 0;
		k = strtoll(f->text, &end, 10);
		if (errno != 0 || end != f->text + f->len)
			continue;
		for (j = 0; j < ntabs && tabs[j] != t; j++)
			;
		if (j == ntabs)
		{
			tabs[ntabs] = t;
			maxk[ntabs++] = k;
		}
		else if (k > maxk[j])
			maxk[j] = k;
	}
	if (ntabs > 0)
	{
		jout_init(&w, &arr);
		jout_array(&w);
		for (int j = 0; j < ntabs; j++)
		{
			jout_object(&w);
			jout_kstring(&w, "s", tabs[j]->keyseq);
			jout_kint(&w, "k", maxk[j]);
			jout_object_end(&w);
		}
		jout_array_end(&w);
		rc = hub_seqs_ahead(h, arr.p, err, errlen);
	}
	free(tabs);
	free(maxk);
	buf_free(&arr);
	return rc;
}

/*
 * Decide and apply changes cs[0..n) (one client's, in seq order) inside the
 * open upload transaction, in seven steps: validate, read the keys (from
 * each change's row, as the hub stores them) and their versions, decide
 * (last writer wins against sync_versions; keys the hub assigns), apply the winners (guarded, with capture on: the queue
 * gets each row as PostgreSQL stored it, with the change's version and
 * origin, and every row it changed as a consequence as a change of the
 * hub's own), act on what the capture reports (the consequences' versions,
 * relays, the uploader's corrections), record (the winners' versions, the
 * hub's clock, the overruled in sync_conflicts), keep the key sequences
 * ahead of the keys that arrived. out[i] says what became
 * of cs[i]; *notify is set when an immediate change was applied. retry:
 * these are set-aside changes tried again, and one its own node has
 * changed since is superseded, not a conflict.
 */
int
hub_apply_changes(Hub *h, Change **cs, int n, Outcome *out, bool retry, bool *notify,
				  char *err, size_t errlen)
{
	Decision	d = {.cs = cs, .out = out, .n = n, .retry = retry};
	int			rc = -1;

	d.win = xmalloc(sizeof(int) * (size_t) (n + 1));
	d.key = xcalloc((size_t) n + 1, sizeof(char *));
	d.sent_pk = xcalloc((size_t) n + 1, sizeof(char *));
	d.sent_row = xcalloc((size_t) n + 1, sizeof(char *));
	d.replaced = xcalloc((size_t) n + 1, sizeof(int64_t));
	d.exists = xcalloc((size_t) n + 1, sizeof(bool));
	d.floor = xcalloc((size_t) h->ntables + 1, sizeof(int64_t));
	d.kept = xcalloc((size_t) n + 1, sizeof(bool));
	d.met = xcalloc((size_t) n + 1, sizeof(bool));
	d.follows = xcalloc((size_t) n + 1, sizeof(bool));
	jout_init(&d.cw, &d.confl);
	jout_array(&d.cw);
	if ((validate(h, &d) > 0 && read_keys(h, &d, err, errlen) < 0) ||
		read_existing(h, &d, err, errlen) < 0 || read_follows(h, &d, err, errlen) < 0)
		goto out;
	if (decide(h, &d, retry, err, errlen) < 0 ||
		apply_checked(h, &d, err, errlen) < 0)
		goto out;
	keep_referenced(h, &d);
	if (act_on_report(h, &d, err, errlen) < 0 ||
		record(h, &d, notify, err, errlen) < 0 ||
		keep_sequences_ahead(h, &d, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	for (int i = 0; i < n; i++)
	{
		free(d.key[i]);
		free(d.sent_pk[i]);
		free(d.sent_row[i]);
	}
	free(d.key);
	free(d.sent_pk);
	free(d.sent_row);
	free(d.replaced);
	free(d.win);
	free(d.exists);
	free(d.floor);
	free(d.kept);
	free(d.met);
	free(d.follows);
	vermap_free(&d.metkeys);
	vermap_free(&d.overkeys);
	for (int i = 0; i < d.nheld; i++)
		free(d.held[i]);
	free(d.held);
	vermap_free(&d.tent);
	vermap_free(&d.vers);
	vermap_free(&d.before);
	vermap_free(&d.live);
	buf_free(&d.confl);
	return rc;
}

/* Set the failed changes aside in sync_errors, in the upload transaction. */
int
hub_park_changes(Hub *h, const char *client_id, Change **cs, const Outcome *out, int n,
			 char *err, size_t errlen)
{
	Buf			rows = {0};
	JsonOut		w;
	int			nrows = 0;
	const char *params[2];
	PGresult   *res;

	jout_init(&w, &rows);
	jout_array(&w);
	for (int i = 0; i < n; i++)
	{
		const Change *c = cs[i];
		char		op[2] = {c->op, '\0'};

		if (out[i].done != DONE_FAILED)
			continue;
		nrows++;
		jout_object(&w);
		jout_kint(&w, "seq", c->seq);
		jout_kstring(&w, "t", c->table);
		jout_kstring(&w, "op", op);
		put_object(&w, "pk", c->pk_json);
		put_object(&w, "r", c->row_json);
		jout_kstring(&w, "at", c->changed_at);
		jout_kstring(&w, "o", c->origin);
		jout_kstring(&w, "pr", c->immediate ? SYNCQ_PRIORITY_IMMEDIATE : SYNCQ_PRIORITY_BATCHED);
		jout_kstring(&w, "e", out[i].why);
		jout_kstring(&w, "st", out[i].sqlstate);
		jout_object_end(&w);
	}
	jout_array_end(&w);
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

/*
 * Open an apply transaction, the hub's own changes folded into
 * sync_versions first in a transaction of the fold's own (its lock on
 * sync_hub_state is held for the fold alone, not for the upload). The
 * upload remembers the fold it relies on (h->folded): sync_overtaken()
 * checks against it. Capture stays on: the changes are applied in apply
 * mode (sync_apply_expect).
 */
int
hub_apply_begin(Hub *h, int64_t client_now_us, char *err, size_t errlen)
{
	PGresult   *res;

	if (hub_exec(h, "SELECT sync_fold_local()", err, errlen) < 0)
		return -1;
	if (hub_exec(h, "BEGIN", err, errlen) < 0)
		return -1;
	res = hub_prep(h, "SELECT fold_snapshot::text,"
				  "       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,"
				  "       (extract(epoch FROM max_offset) * 1000000)::bigint"
				  "  FROM sync_hub_state",
				  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto fail;
	free(h->folded);
	h->folded = xstrdup(PQgetvalue(res, 0, 0));
	free(h->seen);
	h->seen = NULL;
	h->apply_now_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	h->max_offset_us = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	h->offset_known = client_now_us != 0;
	h->client_now_us = client_now_us;
	h->offset_us = client_now_us != 0 ? client_now_us - h->apply_now_us : 0;
	h->restamped_to = 0;
	PQclear(res);
	return 0;
fail:
	hub_rollback(h);
	return -1;
}

/*
 * Was this upload overtaken? A hub transaction that committed after the
 * upload read its first versions (h->seen: with them, the hub's changes
 * the fold had not seen; versions_of) was not compared with it; if it
 * changed a row this upload wrote, the upload may have overwritten a newer
 * hub change (its row lock made the upload wait, then the upload wrote
 * over it). Such an upload is rolled back and tried again, when the fold
 * sees the hub's change. (A hub transaction that writes one of these
 * rows later waits for this one and writes over it, with a later
 * changed_at: it is newer, and wins everywhere.) 1 yes, 0 no, -1 error.
 */
int
hub_overtaken(Hub *h, char *err, size_t errlen)
{
	long		n = hub_number(h, "SELECT sync_overtaken($1::pg_snapshot)",
								   h->seen != NULL ? h->seen : h->folded, err, errlen);

	if (n > 0)
	{
		h->up.overtaken = true;
		snprintf(err, errlen, "hub: a hub transaction changed %ld row%s of this upload while it was applied; the upload is sent again",
				 n, n == 1 ? "" : "s");
		return 1;
	}
	return n < 0 ? -1 : 0;
}

