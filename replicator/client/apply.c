/*
 * apply.c — the hub's changes applied to the client file (client.h): in
 * one write transaction with capture paused (capture.c) and the position
 * they reach; last writer wins against the row's stored version and any
 * pending local change.
 *
 *   client_begin_apply      open the write transaction; note pending versions
 *   client_commit_apply     store the position and commit
 *   client_in_apply         is one open?
 *   client_observe_clock    a version the hub has: this file's clock goes past it
 *   client_position_stale   has the stored position not moved for a while?
 *   client_rollback         give up an open transaction
 *   client_apply_change     apply one change (or hold it for its parent, or
 *                           set it aside in sync_errors)
 *   client_take_settled     what became of the held changes
 *   client_try_change       apply one, saying why if the file refused it
 *   client_short_reason     a reason without the file's name in front
 */
#include "base/base.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A download that brought nothing leaves the stored position as it is (no
 * write, no lock for the app to wait on) unless it is older than this.
 */
#define POSITION_MAX_AGE_US (60 * INT64_C(1000000))

static int	settle_held(Client *cl, char *err, size_t errlen);

/*
 * Set the stored version of (table, pk) to v, where it is lower (and,
 * force: a correction replacing it, whatever it is).
 */
static int
put_version(Client *cl, const char *table, const char *pk, const Version *v, bool deleted,
			bool force, char *err, size_t errlen)
{
	if (force)
	{
		sqlite3_stmt *st = client_prep(cl, "DELETE FROM sync_versions WHERE table_name = ?1 AND pk = ?2",
									   err, errlen);
		int			rc;

		if (st == NULL)
			return -1;
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, pk, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
		{
			client_db_err(err, errlen, cl, "writing sync_versions");
			return -1;
		}
	}
	if (cl->put_version == NULL &&
		(cl->put_version = client_prep(cl, "INSERT INTO sync_versions(table_name, pk, ver_us, ver_origin, deleted)"
								" VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(table_name, pk) DO UPDATE"
								" SET ver_us = excluded.ver_us, ver_origin = excluded.ver_origin, deleted = excluded.deleted"
								" WHERE (ver_us, ver_origin) <= (excluded.ver_us, excluded.ver_origin)",
								err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(cl->put_version, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_version, 2, pk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(cl->put_version, 3, v->us);
	sqlite3_bind_text(cl->put_version, 4, v->origin, -1, SQLITE_STATIC);
	sqlite3_bind_int(cl->put_version, 5, deleted);
	if (sqlite3_step(cl->put_version) != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "writing sync_versions");
		sqlite3_reset(cl->put_version);
		return -1;
	}
	sqlite3_reset(cl->put_version);
	return 0;
}

/*
 * Begin the write transaction of a download, with capture paused: what
 * syncqd writes came from the hub and must not travel back.
 */
int
client_begin_apply(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	if (client_begin_write(cl, err, errlen) < 0)
		return -1;

	/*
	 * Every local change not yet on the hub — including ones committed after
	 * the upload read the queue — must win over older hub changes. The map
	 * is added to, not rebuilt, by each part of a download (rows the sync
	 * acknowledged meanwhile have their version in sync_versions, so an
	 * entry that stays is harmless); client_reset_cache() empties it.
	 */
	st = client_prep(cl, "SELECT table_name, syncqd_canon(pk), syncqd_us(changed_at), seq FROM sync_queue"
			  " WHERE origin = ?1 AND seq > max(?2, coalesce((SELECT CAST(value AS INTEGER)"
			  "       FROM syncqd_state WHERE key = 'up_seq'), 0))",
			  err, errlen);
	if (st == NULL)
	{
		client_rollback_write(cl);
		return -1;
	}
	sqlite3_bind_text(st, 1, cl->node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cl->local_seen);
	while (sqlite3_step(st) == SQLITE_ROW)
	{
		char	   *k = row_key((const char *) sqlite3_column_text(st, 0), (const char *) sqlite3_column_text(st, 1));
		Version		v = {sqlite3_column_int64(st, 2), "", true};

		memcpy(v.origin, cl->node_id, sizeof(v.origin));
		vermap_max(&cl->local, k, &v);
		free(k);
		if (sqlite3_column_int64(st, 3) > cl->local_seen)
			cl->local_seen = sqlite3_column_int64(st, 3);
	}
	if (sqlite3_finalize(st) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "reading pending changes");
		client_rollback_write(cl);
		return -1;
	}
	if (capture_pause(cl, err, errlen) < 0)
	{
		client_rollback_write(cl);
		return -1;
	}
	return 0;
}

/*
 * A version the hub holds (its clock at a download, a change applied): the
 * file's clock (syncq_state.next, which every capture trigger stamps at
 * least) is raised past it when the apply transaction commits, so that a
 * change made here after it is the later one, whatever this machine's
 * wall clock says (docs/replication.md).
 */
void
client_observe_clock(Client *cl, int64_t us)
{
	if (us > cl->clock_us)
		cl->clock_us = us;
}

/* Raise syncq_state.next past cl->clock_us, inside the open transaction. */
static int
raise_clock(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char	   *next;
	int			rc;

	if (cl->clock_us <= 0)
		return 0;
	st = client_prep(cl, "UPDATE syncq_state SET next = ?1 WHERE next < ?1", err, errlen);
	if (st == NULL)
		return -1;
	next = format_instant_us(cl->clock_us + 1);
	sqlite3_bind_text(st, 1, next, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	free(next);
	if (rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "raising syncq_state.next");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Store the download position and commit the apply transaction; with none
 * open (nothing came), store it in one of its own. target NULL: the
 * download reached snapshot down_snapshot. Else it was cut after seq done
 * on its way to snapshot target; the position stays where it was.
 */
int
client_commit_apply(Client *cl, const char *down_snapshot, const char *target, int64_t done,
					char *err, size_t errlen)
{
	char		num[32];

	if (sqlite3_get_autocommit(cl->db))
	{
		if (client_begin_write(cl, err, errlen) < 0)
			return -1;
	}
	else if (settle_held(cl, err, errlen) < 0 || capture_resume(cl, err, errlen) < 0)
		goto fail;
	if (raise_clock(cl, err, errlen) < 0)
		goto fail;
	snprintf(num, sizeof(num), "%" PRId64, done);
	if (target == NULL)
	{
		if ((down_snapshot && client_state_set(cl, "down_snapshot", down_snapshot, err, errlen) < 0) ||
			client_exec(cl, "DELETE FROM syncqd_state WHERE key IN ('down_target', 'down_done')", err, errlen) < 0)
			goto fail;
	}
	else if (client_state_set(cl, "down_target", target, err, errlen) < 0 ||
			 client_state_set(cl, "down_done", num, err, errlen) < 0)
		goto fail;
	if (client_commit_write(cl, err, errlen) < 0)
		goto fail;
	if (target == NULL)
		cl->down_stored_at = mono_us();
	return 0;
fail:
	client_rollback(cl);
	return -1;
}

/* Is an apply transaction open? */
bool
client_in_apply(Client *cl)
{
	return !sqlite3_get_autocommit(cl->db);
}

/* Has the stored download position not been moved for a while? */
bool
client_position_stale(Client *cl)
{
	return cl->down_stored_at == 0 || mono_us() - cl->down_stored_at > POSITION_MAX_AGE_US;
}

void
client_rollback(Client *cl)
{
	client_rollback_write(cl);
	changes_free(&cl->held);
	cl->held_applied = cl->held_overruled = cl->held_parked = 0;	/* (a failed sync's) */
}

/*
 * Columns of the change this file's table has no more (syncq_columns_gone):
 * renamed ones take their new name, dropped ones leave the change, and the
 * rest applies. Said in the log once per column and run.
 */
static void
follow_gone_columns(Client *cl, ClientTable *t, Change *c)
{
	for (int g = 0; g < t->gone.n; g++)
	{
		const char *col = t->gone.from[g],
				   *to = t->gone.to[g];

		if (client_col(t, col) >= 0 || !change_follow_column(c, col, to))
			continue;
		if (t->gone_logged == NULL)
			t->gone_logged = xcalloc((size_t) t->gone.n, sizeof(bool));
		if (t->gone_logged[g])
			continue;
		t->gone_logged[g] = true;
		if (to)
			logmsg(LOG_INFO, "client \"%s\": column \"%s\" of table \"%s\" was renamed to \"%s\" here: the hub's changes that carry it are applied to \"%s\"",
				   cl->path, col, t->name, to, to);
		else
			logmsg(LOG_INFO, "client \"%s\": column \"%s\" of table \"%s\" was dropped here: it is left out of the hub's changes that carry it, the rest applies",
				   cl->path, col, t->name);
	}
}

/*
 * A change that names a table by a name it had in this file
 * (syncq_tables_renamed, kept by sync_repair()) takes the table's name now.
 * Said in the log once per table and run. The table, or NULL.
 */
static ClientTable *
follow_renamed_table(Client *cl, Change *c)
{
	sqlite3_stmt *st = NULL;
	ClientTable *t = NULL;

	if (sqlite3_prepare_v2(cl->db, "SELECT renamed_to FROM syncq_tables_renamed WHERE table_name = ?1",
						   -1, &st, NULL) != SQLITE_OK)
		return NULL;			/* a file of an older syncq: no renames known */
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		t = client_table(cl, (const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (t == NULL)
		return NULL;
	if (!t->renamed_logged)
		logmsg(LOG_INFO, "client \"%s\": table \"%s\" was renamed to \"%s\" here: the hub's changes that name it are applied to \"%s\"",
			   cl->path, c->table, t->name, t->name);
	t->renamed_logged = true;
	free(c->table);
	c->table = xstrdup(t->name);
	return t;
}

/* Check a change's table and columns against the client's schema. */
static ClientTable *
check_change(Client *cl, Change *c, char *err, size_t errlen)
{
	ClientTable *t = client_table(cl, c->table);
	const JObject *o = c->op == SYNCQ_OP_DELETE ? &c->pk : &c->row;

	if (t == NULL)
		t = follow_renamed_table(cl, c);
	if (t == NULL)
	{
		snprintf(err, errlen, "client \"%s\": table \"%s\" does not exist here (change %" PRId64 " from the hub); create it with the hub's columns",
				 cl->path, c->table, c->seq);
		return NULL;
	}
	follow_gone_columns(cl, t, c);
	for (int i = 0; i < o->n; i++)
		if (client_col(t, o->f[i].key) < 0 && !client_col_generated(t, o->f[i].key))
		{
			snprintf(err, errlen, "client \"%s\": column \"%s\" of table \"%s\" does not exist here (change %" PRId64 " from the hub)",
					 cl->path, o->f[i].key, c->table, c->seq);
			return NULL;
		}
	return t;
}

/* The stored version of (table, pk), if any. */
static int
get_version(Client *cl, const char *table, const char *pk, Version *v, char *err, size_t errlen)
{
	int			rc;

	v->known = false;
	if (cl->get_version == NULL &&
		(cl->get_version = client_prep(cl, "SELECT ver_us, ver_origin FROM sync_versions WHERE table_name = ?1 AND pk = ?2",
								err, errlen)) == NULL)
		return -1;
	sqlite3_bind_text(cl->get_version, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->get_version, 2, pk, -1, SQLITE_STATIC);
	rc = sqlite3_step(cl->get_version);
	if (rc == SQLITE_ROW)
	{
		v->known = true;
		v->us = sqlite3_column_int64(cl->get_version, 0);
		snprintf(v->origin, sizeof(v->origin), "%s", (const char *) sqlite3_column_text(cl->get_version, 1));
	}
	sqlite3_reset(cl->get_version);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_versions");
		return -1;
	}
	return 0;
}

static int
put_conflict(Client *cl, const Change *c, const Version *winner, char *err, size_t errlen)
{
	char	   *wat = format_instant_us(winner->us);
	int			rc;

	if (cl->put_conflict == NULL &&
		(cl->put_conflict = client_prep(cl, "INSERT INTO sync_conflicts(detected_at, table_name, pk, loser_op, loser_row,"
								 " loser_changed_at, loser_origin, winner_changed_at, winner_origin)"
								 " VALUES(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
								 err, errlen)) == NULL)
	{
		free(wat);
		return -1;
	}
	sqlite3_bind_text(cl->put_conflict, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_conflict, 2, c->pk_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_conflict, 3, (char[2]) {c->op, 0}, 1, SQLITE_TRANSIENT);
	if (c->row_json)
		sqlite3_bind_text(cl->put_conflict, 4, c->row_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(cl->put_conflict, 4);
	sqlite3_bind_text(cl->put_conflict, 5, c->changed_at, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_conflict, 6, c->origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_conflict, 7, wat, -1, SQLITE_STATIC);
	sqlite3_bind_text(cl->put_conflict, 8, winner->origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(cl->put_conflict);
	sqlite3_reset(cl->put_conflict);
	free(wat);
	if (rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "writing sync_conflicts");
		return -1;
	}
	return 0;
}

/*
 * A statement over this node's queue rows of change c's row: sql (with
 * ?1 the table, ?2 c's pk JSON), then " AND" a match of every key column of
 * t between the row's pk and ?2 (json_extract of each, the paths bound
 * from ?3 on), then tail. NULL if c's pk lacks a key column of t (it names
 * no row here) or on no memory; *err set only for an error.
 */
static sqlite3_stmt *
own_rows_stmt(Client *cl, const ClientTable *t, const Change *c, const char *sql, const char *tail,
			  char *err, size_t errlen)
{
	char	   *q = sqlite3_mprintf("%s", sql);
	char	  **paths = sqlite3_malloc64(sizeof(char *) * ((size_t) t->npk + 1));
	int			npath = 0;
	sqlite3_stmt *st = NULL;

	for (int i = 0; i < t->ncols && q != NULL && paths != NULL; i++)
	{
		if (!t->is_pk[i])
			continue;
		if (npath == t->npk || jobj_get(&c->pk, t->cols[i]) == NULL)
		{
			sqlite3_free(q);
			q = NULL;
			break;
		}
		paths[npath++] = sqlite3_mprintf("$.\"%w\"", t->cols[i]);
		q = sqlite3_mprintf("%z AND json_extract(pk, ?%d) = json_extract(?2, ?%d)", q, npath + 2, npath + 2);
	}
	if (q != NULL && paths != NULL && npath > 0)
	{
		q = sqlite3_mprintf("%z%s", q, tail);
		if (q != NULL && (st = client_prep(cl, q, err, errlen)) != NULL)
		{
			sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, c->pk_json, -1, SQLITE_STATIC);
			for (int i = 0; i < npath; i++)
				sqlite3_bind_text(st, i + 3, paths[i], -1, SQLITE_TRANSIENT);
		}
	}
	for (int i = 0; i < npath; i++)
		sqlite3_free(paths[i]);
	sqlite3_free(paths);
	sqlite3_free(q);
	return st;
}

/*
 * Does change c of table t name a row this node made itself and has not
 * had acknowledged yet (an insert of its key in the queue)? Then the hub's
 * row of that key is another record until the upload says what became of
 * this node's: under a key the hub assigns it may get a new key, under a
 * key the app sets it is set aside if the hub's record came first
 * (docs/replication.md, "Keys the hub assigns", "Keys the app sets"): 1
 * with why, and the hub's change waits in sync_errors until then (the
 * next sync retries it after its upload); 0 if not (also for a table
 * whose key policy here is 'natural': one key, one record, last writer
 * wins); -1 on error (err). Asked only of rows with a pending local change.
 */
static int
own_new_record(Client *cl, const ClientTable *t, const Change *c, char *why, size_t whylen,
			   char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int			rc;

	err[0] = '\0';
	st = own_rows_stmt(cl, t, c, "SELECT 1 FROM sync_queue WHERE table_name = ?1 AND op = 'I'"
					   "   AND NOT EXISTS (SELECT 1 FROM syncq_tracked"
					   "                    WHERE table_name = ?1 AND keys = 'natural')",
					   " LIMIT 1", err, errlen);
	if (st == NULL)
		return err[0] ? -1 : 0;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_queue");
		return -1;
	}
	if (rc == SQLITE_DONE)
		return 0;
	snprintf(why, whylen, "row %.*s of \"%s\" is this node's own new record, not yet acknowledged by the hub: the hub's change of that key waits for the next upload (the hub may give this node's row a new key, or hold another record under that key)",
			 utf8_cut(c->pk_json, 300), c->pk_json, c->table);
	return 1;
}

/*
 * Change c is a correction that replaces this node's last uploaded change
 * of its row (cur: the row's stored version, that change's) with another
 * node's version: the hub set that change aside (an insert that met
 * another record, a row whose parent is gone: docs/replication.md) and
 * gives back its own row. This node's changes of the row not read for an
 * upload yet (past the fill: no upload, not even one cut off, can have
 * carried them, so the queue's history the hub checks stays whole) were
 * made on the row the hub refused: they are dropped from the queue, said
 * in the log, and the correction applies. Shipped, they would change the
 * hub's row as if they were its edits (the fill would read the row as this
 * node holds it). Those read already the hub sets aside (hub/apply.c,
 * read_follows). 1 if so, 0 if not, -1 on error.
 */
static int
drop_after_refused(Client *cl, const ClientTable *t, const Change *c, const Version *cur,
				   Version *pend, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int			n;

	if (c->replaces_us == 0 || pend == NULL || !cur->known || cur->us != c->replaces_us ||
		strcmp(cur->origin, cl->node_id) != 0 || strcmp(c->origin, cl->node_id) == 0 ||
		version_cmp(pend, cur) <= 0)
		return 0;
	err[0] = '\0';
	/* the newest queue row stays (the capture keeps it): left with no table */
	st = own_rows_stmt(cl, t, c, "UPDATE sync_queue SET table_name = '', op = 'U', pk = '{}', row_data = NULL, origin = ''"
					   " WHERE table_name = ?1 AND origin = (SELECT node_id FROM syncq_state)"
					   "   AND seq > (SELECT filled_upto FROM syncq_state)",
					   "", err, errlen);
	if (st == NULL)
		return err[0] ? -1 : 0;
	if (sqlite3_step(st) != SQLITE_DONE)
	{
		sqlite3_finalize(st);
		client_db_err(err, errlen, cl, "dropping changes of a row the hub refused");
		return -1;
	}
	sqlite3_finalize(st);
	n = sqlite3_changes(cl->db);
	if (client_exec(cl, "DELETE FROM sync_queue WHERE table_name = ''", err, errlen) < 0)
		return -1;
	if (n > 0)
		logmsg(LOG_WARNING, "client \"%s\": %d change%s of row %s of \"%s\" not uploaded yet dropped: made on this node's row that the hub set aside (see syncqd status), which the hub's row replaces here",
			   cl->path, n, n == 1 ? "" : "s", c->pk_json, c->table);
	pend->us = 0;				/* no pending change of the row now */
	return 1;
}

/* Do two fields of a change hold the same value? */
static bool
same_value(const JField *a, const JField *b)
{
	return a->type == b->type && a->len == b->len && a->b == b->b &&
		(a->len == 0 || memcmp(a->text, b->text, a->len) == 0);
}

/* Append value f to why, as the app would write it. */
static void
say_value(char *why, size_t whylen, const JField *f)
{
	size_t		n = strlen(why);

	if (n >= whylen)
		return;
	if (f->type == JV_STRING)
		snprintf(why + n, whylen - n, "'%.*s'", f->len > 200 ? 200 : (int) f->len, f->text);
	else if (f->type == JV_BOOL)
		snprintf(why + n, whylen - n, "%s", f->b ? "true" : "false");
	else if (f->type == JV_BLOB)
		snprintf(why + n, whylen - n, "(a blob of %zu bytes)", f->len);
	else
		snprintf(why + n, whylen - n, "%.*s", f->len > 200 ? 200 : (int) f->len, f->text);
}

/*
 * The reason a row waits for its parent: which key, which values, where.
 * "part {"id":7}: its machine_id 3 is not in "machine" here ..."
 */
static void
say_missing_parent(char *why, size_t whylen, const ClientTable *t, const Change *c,
				   const ClientFk *fk, const JField **v)
{
	size_t		n;

	snprintf(why, whylen, "\"%s\" %s: its %s", t->name, c->pk_json, fk->n > 1 ? "(" : "");
	for (int k = 0; k < fk->n; k++)
	{
		n = strlen(why);
		snprintf(why + n, whylen - n, "%s%s", k ? ", " : "", t->cols[fk->col[k]]);
	}
	n = strlen(why);
	snprintf(why + n, whylen - n, "%s", fk->n > 1 ? ") (" : " ");
	for (int k = 0; k < fk->n; k++)
	{
		if (k)
		{
			n = strlen(why);
			snprintf(why + n, whylen - n, ", ");
		}
		say_value(why, whylen, v[k]);
	}
	n = strlen(why);
	snprintf(why + n, whylen - n, "%s is not in \"%s\" here (deleted here and not yet uploaded?): the hub's change waits for its parent row",
			 fk->n > 1 ? ")" : "", fk->parent);
}

/*
 * One probe of has_parents: is the parent row of fk, whose values in the
 * child are v, there? Returns as has_parents.
 */
static int
has_parent(Client *cl, ClientTable *t, const Change *c, const ClientFk *fk, const JField **v,
		   char *why, size_t whylen, char *err, size_t errlen)
{
	int			rc;

	sqlite3_reset(fk->probe);
	for (int k = 0; k < fk->n; k++)
	{
		int			col = fk->col[k];

		if ((rc = client_bind_value(cl, fk->probe, k + 1, v[k], t->typed ? t->kind[col] : VK_OTHER,
									t->typed ? t->form[col] : FORM_DEFAULT, err, errlen)) < 0)
		{
			sqlite3_clear_bindings(fk->probe);
			if (rc == -2)
				snprintf(why, whylen, "%s", err);
			return rc;
		}
	}
	rc = sqlite3_step(fk->probe);
	sqlite3_reset(fk->probe);
	sqlite3_clear_bindings(fk->probe);
	if (rc == SQLITE_DONE)
	{
		say_missing_parent(why, whylen, t, c, fk, v);
		return 0;
	}
	if (rc != SQLITE_ROW)
	{
		client_db_err(err, errlen, cl, "looking up a parent row");
		return -1;
	}
	return 1;
}

/*
 * Has the row change c writes to t every parent its declared foreign keys
 * name (client_table_fks; checked whatever PRAGMA foreign_keys says)? A
 * key with a NULL in it needs none, as in SQLite; a row that refers to
 * itself is its own parent. One indexed probe per key. 1 if so, 0 if a
 * parent is missing (why names it), -2 if a value cannot be written here
 * (the write says why), -1 on error (err).
 */
static int
has_parents(Client *cl, ClientTable *t, const Change *c, const HubTypes *types,
			char *why, size_t whylen, char *err, size_t errlen)
{
	int			nfks,
				most = 0,
				rc = 1;
	const ClientFk *fks = client_table_fks(cl, t, &nfks);
	const JField **v;

	if (nfks == 0)
		return 1;
	if (!t->typed && types)
		client_table_typed(cl, t, types);
	for (int i = 0; i < nfks; i++)
		if (fks[i].n > most)
			most = fks[i].n;
	v = xcalloc((size_t) most + 1, sizeof(*v));
	for (int i = 0; i < nfks && rc == 1; i++)
	{
		const ClientFk *fk = &fks[i];
		bool		check = true,
					self = strcmp(fk->parent, t->name) == 0;

		for (int k = 0; check && k < fk->n; k++)
		{
			v[k] = jobj_get(&c->row, t->cols[fk->col[k]]);
			/* not in the change (the row keeps its value), or NULL: no parent needed */
			check = v[k] != NULL && v[k]->type != JV_NULL;
		}
		if (check && self)
		{
			const JField *own;

			/* a row that names its own key */
			self = true;
			for (int k = 0; self && k < fk->n; k++)
				self = (own = jobj_get(&c->row, fk->pcol[k])) != NULL && same_value(own, v[k]);
			check = !self;
		}
		if (check)
			rc = has_parent(cl, t, c, fk, v, why, whylen, err, errlen);
	}
	free(v);
	return rc;
}

/*
 * Apply one change from the hub inside the apply transaction: last writer
 * wins against the row's stored version and any pending local change
 * (cl->local, the newest pending local version of each row), and a row
 * is written only with the parents its foreign keys name (has_parents).
 * Returns 1 if applied, 0 if overruled (in sync_conflicts), 3 if
 * superseded (retried or held: a later change of the row is there
 * already), -3 if a parent row is missing (why names it), -2 if this
 * file refused it (why says why), -1 on an error that ends the download
 * (err).
 */
int
client_try_change(Client *cl, Change *c, const HubTypes *types, TryMode how,
				  char *why, size_t whylen, char *err, size_t errlen)
{
	ClientTable *t = check_change(cl, c, why, whylen);
	Version		cur,
				v = {c->ver_us, "", true};
	char	   *k;
	Version    *pend;
	bool		replaced,
				mine = false;
	int			rc;

	if (t == NULL)
		return -2;
	memcpy(v.origin, c->origin, sizeof(v.origin));
	if (get_version(cl, c->table, c->pk_json, &cur, err, errlen) < 0)
		return -1;
	k = row_key(c->table, c->pk_json);
	pend = vermap_get(&cl->local, k);
	free(k);
	/* (a correction is the hub's answer to this node's upload: never held) */
	if (pend != NULL && c->replaces_us == 0 &&
		(rc = own_new_record(cl, t, c, why, whylen, err, errlen)) != 0)
		return rc < 0 ? -1 : -2;
	if (drop_after_refused(cl, t, c, &cur, pend, err, errlen) < 0)
		return -1;
	if (pend && version_cmp(pend, &cur) > 0)
	{
		cur = *pend;
		mine = true;
	}
	/*
	 * A correction that replaces exactly the version this node's change
	 * of the row had (the hub re-stamped it: docs/replication.md) is
	 * applied whatever that version was, and replaces it.
	 */
	replaced = c->replaces_us != 0 && cur.known && cur.us == c->replaces_us &&
		strcmp(cur.origin, cl->node_id) == 0;
	if (cur.known && !replaced && version_cmp(&v, &cur) < 0)
	{
		/* a held change met a later one of the hub's: as if it came first */
		if ((how == TRY_RETRY && strcmp(cur.origin, c->origin) == 0) || (how == TRY_HELD && !mine))
			return 3;
		return put_conflict(cl, c, &cur, err, errlen) < 0 ? -1 : 0;
	}
	if (c->op != SYNCQ_OP_DELETE && (rc = has_parents(cl, t, c, types, why, whylen, err, errlen)) <= 0)
		return rc == 0 ? -3 : rc;
	rc = client_write_row(cl, t, c->op == SYNCQ_OP_DELETE, c->op == SYNCQ_OP_DELETE ? &c->pk : &c->row, types, why, whylen);
	if (rc == -1)
	{
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (rc == -2)
		return -2;
	if (put_version(cl, c->table, c->pk_json, &v, c->op == SYNCQ_OP_DELETE, replaced, err, errlen) < 0)
		return -1;
	client_observe_clock(cl, v.us);
	return 1;
}

/* Drop the "client "<path>": " a reason starts with: sync_errors is in it. */
const char *
client_short_reason(Client *cl, const char *why)
{
	size_t		n = strlen(cl->path);

	if (strncmp(why, "client \"", 8) == 0 && strncmp(why + 8, cl->path, n) == 0 &&
		strncmp(why + 8 + n, "\": ", 3) == 0)
		return why + 8 + n + 3;
	return why;
}

/* Set a refused hub change aside in sync_errors (in the apply transaction). */
static int
park_change(Client *cl, const Change *c, const char *why, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "INSERT INTO sync_errors(table_name, op, pk, row_data, changed_at, ver_us, origin,"
							" priority, hub_seq, error, first_failed, last_failed)"
							" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
							" strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
							err, errlen);
	int			rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, c->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, (char[2]) {c->op, 0}, 1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, c->pk_json, -1, SQLITE_STATIC);
	if (c->row_json)
		sqlite3_bind_text(st, 4, c->row_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->changed_at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, c->ver_us);
	sqlite3_bind_text(st, 7, c->origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, c->immediate ? SYNCQ_PRIORITY_IMMEDIATE : SYNCQ_PRIORITY_BATCHED, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, c->seq);
	sqlite3_bind_text(st, 10, client_short_reason(cl, why), -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "writing sync_errors");
		return -1;
	}
	return 0;
}

/*
 * Hold change c, whose parent row is missing, to the end of this part of
 * the download (settle_held): the parent may come later in the same hub
 * transaction (the hub may write the child first, under deferred keys).
 */
static void
hold_change(Client *cl, const Change *c, const HubTypes *types)
{
	Change	   *h = changes_push(&cl->held);
	char		e[256];

	if (change_init(h, c->seq, c->table, (char[2]) {c->op, 0}, c->pk_json, c->row_json, c->ver_us,
					c->origin, c->immediate, e, sizeof(e)) < 0)
	{
		/* it read once: cannot happen */
		cl->held.n--;
		logmsg(LOG_WARNING, "change %" PRId64 " from the hub could not be held: %s", c->seq, e);
		return;
	}
	h->replaces_us = c->replaces_us;
	cl->held_types = types;
}

/* Set change c aside in sync_errors, said in the log. */
static int
set_aside(Client *cl, const Change *c, const char *why, char *err, size_t errlen)
{
	if (park_change(cl, c, why, err, errlen) < 0)
		return -1;
	logmsg(LOG_WARNING, "change %" PRId64 " from the hub (%c \"%s\" %s) set aside in sync_errors: %s",
		   c->seq, c->op, c->table, c->pk_json, client_short_reason(cl, why));
	return 0;
}

/*
 * At the end of a part of a download (which always ends between hub
 * transactions): the held changes, in the order they came, tried again;
 * those whose parent is still missing are set aside in sync_errors, to be
 * retried with the set-aside changes (errors.c). What became of each is
 * counted for client_take_settled; one a later change of its row
 * superseded counts as overruled.
 */
static int
settle_held(Client *cl, char *err, size_t errlen)
{
	int			rc = 0;

	for (int i = 0; rc == 0 && i < cl->held.n; i++)
	{
		Change	   *c = &cl->held.c[i];
		char		why[1024];
		int			r = client_try_change(cl, c, cl->held_types, TRY_HELD, why, sizeof(why), err, errlen);

		if (r == -1)
			rc = -1;
		else if (r <= -2)
		{
			rc = set_aside(cl, c, why, err, errlen);
			cl->held_parked++;
		}
		else if (r == 1)
			cl->held_applied++;
		else
			cl->held_overruled++;
	}
	changes_free(&cl->held);
	return rc;
}

/*
 * What became of the held changes settled since the last call (applied,
 * overruled, set aside); the counts start again from 0.
 */
void
client_take_settled(Client *cl, int *applied, int *overruled, int *parked)
{
	*applied = cl->held_applied;
	*overruled = cl->held_overruled;
	*parked = cl->held_parked;
	cl->held_applied = cl->held_overruled = cl->held_parked = 0;
}

/*
 * Apply one change from the hub (client_try_change); one whose parent row
 * is missing is held to the end of the part (settle_held), one this file
 * refuses is set aside in sync_errors and the download goes on. Returns 1
 * if applied, 0 if overruled, 2 if set aside, 4 if held (what became of it
 * is known when the part is committed: client_take_settled), -1 on an
 * error that ends the download.
 */
int
client_apply_change(Client *cl, Change *c, const HubTypes *types, char *err, size_t errlen)
{
	char		why[1024];
	int			rc = client_try_change(cl, c, types, TRY_LIVE, why, sizeof(why), err, errlen);

	if (rc == -3)
	{
		hold_change(cl, c, types);
		return 4;
	}
	if (rc != -2)
		return rc;
	return set_aside(cl, c, why, err, errlen) < 0 ? -1 : 2;
}
