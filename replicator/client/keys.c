/*
 * keys.c — this file's rows renamed to the keys the hub gave them
 * (client.h; docs/replication.md, "Keys the hub assigns").
 *
 * A new row whose integer key was another record's on the hub was given a
 * new key there (hub/keys.c); the upload's reply says so. In the
 * transaction that acknowledges the upload, with capture paused and
 * foreign keys checked at commit, this file moves the row to its new key,
 * with every reference to it (the columns of declared single-column
 * foreign keys in tracked tables) and its queued changes (its later
 * updates and deletes, the rows that reference it): the app never sees a
 * dangling reference, and a crash keeps all of it or none (the hub gives
 * the renames again until the upload is acknowledged).
 *
 * Renames are taken newest first: a later rename's old key can be an
 * earlier one's new key (the client's own row of that key, still another
 * record), never the other way round. A row of this file that holds the
 * new key already (made after the upload) moves out of the way, to a key
 * past every key of the table, and takes its queued changes with it.
 *
 *   client_rename_keys   apply the renames of an upload's reply
 *   client_forget_unshipped  the changes of a row made and deleted here
 *                        before it was ever shipped: not shipped
 *   client_renamed_keys  how many rows were renamed, and the last one, for status
 */
#include "base/base.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A table's references to a key: (child table, its column). */
typedef struct
{
	int			n;
	char	  **table;
	char	  **col;
} Refs;

static void
refs_free(Refs *r)
{
	for (int i = 0; i < r->n; i++)
	{
		free(r->table[i]);
		free(r->col[i]);
	}
	free(r->table);
	free(r->col);
	memset(r, 0, sizeof(*r));
}

/*
 * The columns of tracked tables that reference column col of table: the
 * declared foreign keys of one column (to col, or to the key of a table
 * whose key is col).
 */
static int
find_refs(Client *cl, const char *table, const char *col, Refs *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl,
								   "SELECT t.table_name, f.\"from\" FROM syncq_tracked t,"
								   "       pragma_foreign_key_list(t.table_name) f"
								   " WHERE f.\"table\" = ?1 COLLATE NOCASE AND coalesce(f.\"to\", ?2) = ?2 COLLATE NOCASE"
								   "   AND (SELECT count(*) FROM pragma_foreign_key_list(t.table_name) g WHERE g.id = f.id) = 1",
								   err, errlen);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
	{
		out->table = xrealloc(out->table, sizeof(char *) * (size_t) (out->n + 1));
		out->col = xrealloc(out->col, sizeof(char *) * (size_t) (out->n + 1));
		out->table[out->n] = xstrdup((const char *) sqlite3_column_text(st, 0));
		out->col[out->n] = xstrdup((const char *) sqlite3_column_text(st, 1));
		out->n++;
	}
	if (sqlite3_finalize(st) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "reading foreign keys");
		return -1;
	}
	return 0;
}

/* Run sql (sqlite3_mprintf'd, freed here) with ?1..?4 bound to integers. */
static int
run4(Client *cl, char *sql, int64_t a, int64_t b, int64_t c, int64_t d, int64_t *changes,
	 char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int			rc;

	if (sql == NULL)
	{
		snprintf(err, errlen, "client \"%s\": out of memory", cl->path);
		return -1;
	}
	rc = sqlite3_prepare_v2(cl->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc == SQLITE_OK)
	{
		int			np = sqlite3_bind_parameter_count(st);
		int64_t		v[4] = {a, b, c, d};

		for (int i = 0; i < np && i < 4; i++)
			sqlite3_bind_int64(st, i + 1, v[i]);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
	{
		client_db_err(err, errlen, cl, "renaming a key");
		sqlite3_finalize(st);
		return -1;
	}
	if (changes)
		*changes = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : sqlite3_changes(cl->db);
	sqlite3_finalize(st);
	return 0;
}

/*
 * Queued changes of table that carry from in column col (their key, or
 * their row), seq in [lo, hi): make them carry to.
 */
static int
move_queued(Client *cl, const char *table, const char *col, int64_t from, int64_t to,
			int64_t lo, int64_t hi, char *err, size_t errlen)
{
	char		path[300];

	snprintf(path, sizeof(path), "$.\"%s\"", col);
	return run4(cl, sqlite3_mprintf("UPDATE sync_queue SET"
									"  pk = CASE WHEN json_extract(pk, %Q) = ?1 THEN json_set(pk, %Q, ?2) ELSE pk END,"
									"  row_data = CASE WHEN json_extract(row_data, %Q) = ?1"
									"                  THEN json_set(row_data, %Q, ?2) ELSE row_data END"
									" WHERE table_name = %Q COLLATE NOCASE AND seq >= ?3 AND seq < ?4"
									"   AND (json_extract(pk, %Q) = ?1 OR json_extract(row_data, %Q) = ?1)",
									path, path, path, path, table, path, path),
				from, to, lo, hi, NULL, err, errlen);
}

/*
 * Move row from of table (key column col) to key to, with the rows that
 * reference it and the queued changes of both from seq lo on (up to hi:
 * an insert of the old key there is another record).
 */
static int
move_row(Client *cl, const char *table, const char *col, const Refs *refs, int64_t from,
		 int64_t to, int64_t lo, int64_t hi, bool move_table, char *err, size_t errlen)
{
	if (move_table &&
		run4(cl, sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?2 WHERE \"%w\" = ?1", table, col, col),
			 from, to, 0, 0, NULL, err, errlen) < 0)
		return -1;
	if (move_queued(cl, table, col, from, to, lo, hi, err, errlen) < 0)
		return -1;
	for (int i = 0; i < refs->n; i++)
	{
		if (move_table &&
			run4(cl, sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?2 WHERE \"%w\" = ?1",
									 refs->table[i], refs->col[i], refs->col[i]),
				 from, to, 0, 0, NULL, err, errlen) < 0)
			return -1;
		if (move_queued(cl, refs->table[i], refs->col[i], from, to, lo, hi, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* One integer of a query with ?1..?4 bound (0 if no row). */
static int
query4(Client *cl, char *sql, int64_t a, int64_t b, int64_t c, int64_t d, int64_t *v,
	   char *err, size_t errlen)
{
	return run4(cl, sql, a, b, c, d, v, err, errlen);
}

/*
 * Apply one rename: the row this file made at seq r->seq under old_key is
 * new_key now.
 */
static int
rename_one(Client *cl, const KeyRename *r, char *err, size_t errlen)
{
	char		path[300];
	Refs		refs = {0};
	int64_t		end = 0,
				gone = 0,
				here = 0,
				blocker = 0,
				fresh = 0;
	int			rc = -1;
	ClientTable *t = client_table(cl, r->table);
	int			col = t ? client_col(t, r->column) : -1;
	int64_t		tracked = 0;

	/* only a tracked table's one-column key: a reply may name no other */
	if (t != NULL &&
		query4(cl, sqlite3_mprintf("SELECT count(*) FROM syncq_tracked WHERE table_name = %Q", r->table),
			   0, 0, 0, 0, &tracked, err, errlen) < 0)
		return -1;
	if (t == NULL || !tracked || col < 0 || t->npk != 1 || !t->is_pk[col])
	{
		snprintf(err, errlen, "the hub's reply renames column \"%s\" of table \"%s\", which is not the one-column key of a tracked table here",
				 r->column, r->table);
		return -1;
	}
	snprintf(path, sizeof(path), "$.\"%s\"", r->column);
	if (find_refs(cl, r->table, r->column, &refs, err, errlen) < 0)
		goto out;
	/* an insert of the old key after it: another record (its changes stay) */
	if (query4(cl, sqlite3_mprintf("SELECT coalesce(min(seq), 9223372036854775807) FROM sync_queue"
								   " WHERE table_name = %Q COLLATE NOCASE AND op = 'I' AND seq > ?1"
								   "   AND json_extract(pk, %Q) = ?2", r->table, path),
			   r->seq, r->old_key, 0, 0, &end, err, errlen) < 0 ||
	/* deleted here since: nothing left to move but its queued changes */
		query4(cl, sqlite3_mprintf("SELECT count(*) FROM sync_queue"
								   " WHERE table_name = %Q COLLATE NOCASE AND op = 'D' AND seq > ?1 AND seq < ?3"
								   "   AND json_extract(pk, %Q) = ?2", r->table, path),
			   r->seq, r->old_key, end, 0, &gone, err, errlen) < 0 ||
		query4(cl, sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE \"%w\" = ?1", r->table, r->column),
			   r->old_key, 0, 0, 0, &here, err, errlen) < 0 ||
		query4(cl, sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE \"%w\" = ?1", r->table, r->column),
			   r->new_key, 0, 0, 0, &blocker, err, errlen) < 0)
		goto out;
	if (gone == 0 && end == INT64_MAX && here > 0 && blocker > 0)
	{
		/* a row made here since holds the new key: it moves past them all */
		if (query4(cl, sqlite3_mprintf("SELECT max(\"%w\") + 1 FROM \"%w\"", r->column, r->table),
				   0, 0, 0, 0, &fresh, err, errlen) < 0 ||
			move_row(cl, r->table, r->column, &refs, r->new_key, fresh, r->seq, INT64_MAX, true,
					 err, errlen) < 0)
			goto out;
		logmsg(LOG_INFO, "row %s = %" PRId64 " of \"%s\" made here moves to %" PRId64 " for the row the hub renamed to %" PRId64,
			   r->column, r->new_key, r->table, fresh, r->new_key);
	}
	if (move_row(cl, r->table, r->column, &refs, r->old_key, r->new_key, r->seq, end,
				 gone == 0 && end == INT64_MAX && here > 0, err, errlen) < 0)
		goto out;
	if (run4(cl, sqlite3_mprintf("INSERT OR REPLACE INTO syncqd_key_renames(seq, table_name, key_column,"
								 " old_key, new_key, renamed_at)"
								 " VALUES(?1, %Q, %Q, ?2, ?3, strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now'))",
								 r->table, r->column),
			 r->seq, r->old_key, r->new_key, 0, NULL, err, errlen) < 0)
		goto out;
	logmsg(LOG_INFO, "row %s = %" PRId64 " of \"%s\" is %" PRId64 " now: the hub had another record under its key",
		   r->column, r->old_key, r->table, r->new_key);
	rc = 0;
out:
	refs_free(&refs);
	return rc;
}

/*
 * Inside the transaction that acknowledges an upload: rename this file's
 * rows to the keys the hub gave them (renames[0..n), in seq order), newest
 * first, with capture paused and foreign keys checked at commit.
 */
int
client_rename_keys(Client *cl, const KeyRename *renames, int n, char *err, size_t errlen)
{
	int			rc = 0;

	if (n == 0)
		return 0;
	if (client_exec(cl, "PRAGMA defer_foreign_keys = ON", err, errlen) < 0 ||
		capture_pause(cl, err, errlen) < 0)
		return -1;
	for (int i = n - 1; i >= 0 && rc == 0; i--)
	{
		int64_t		done = 0;

		rc = query4(cl, sqlite3_mprintf("SELECT count(*) FROM syncqd_key_renames WHERE seq = ?1"),
					renames[i].seq, 0, 0, 0, &done, err, errlen);
		if (rc == 0 && done == 0)
			rc = rename_one(cl, &renames[i], err, errlen);
	}
	if (rc == 0)
		rc = capture_resume(cl, err, errlen);
	/* the pending versions were read under the old keys */
	vermap_free(&cl->local);
	cl->local_seen = 0;
	return rc;
}

/*
 * A row this file made and deleted again before its insert was ever read
 * to be shipped (its queue row still unread: past filled_upto) was never
 * on the hub: under its key the hub may hold another record, which its
 * changes must not touch (the fill would ship its insert as a delete of
 * that key). In tables whose key is one INTEGER column (a rowid alias: the
 * keys the hub assigns), such a row's changes, from its insert to its
 * delete, are not shipped: they are deleted from the queue (the newest
 * queue row, which the capture keeps, is left with no table, so that
 * neither the fill nor the upload reads it). Before the fill, in a write
 * transaction of its own.
 */
int
client_forget_unshipped(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int			rc = 0;

	if (client_begin_write(cl, err, errlen) < 0)
		return -1;
	st = client_prep(cl, "SELECT t.table_name, c.name FROM syncq_tracked t, pragma_table_info(t.table_name) c"
					 " WHERE c.pk = 1 AND upper(c.type) = 'INTEGER'"
					 "   AND (SELECT count(*) FROM pragma_table_info(t.table_name) k WHERE k.pk > 0) = 1",
					 err, errlen);
	if (st == NULL)
		goto fail;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
	{
		const char *table = (const char *) sqlite3_column_text(st, 0),
				   *col = (const char *) sqlite3_column_text(st, 1);
		char		path[300];

		int64_t		nborn = 0;

		snprintf(path, sizeof(path), "$.\"%s\"", col);
		/* most of the time there is none: one pass over the unread rows */
		rc = query4(cl, sqlite3_mprintf("SELECT count(*) FROM sync_queue q, syncq_state s"
										" WHERE q.seq > s.filled_upto AND q.table_name = %Q AND q.op = 'I'"
										"   AND q.row_data IS NULL AND q.origin = s.node_id"
										"   AND NOT EXISTS (SELECT 1 FROM \"%w\" t WHERE t.\"%w\" = json_extract(q.pk, %Q))",
										table, table, col, path),
					0, 0, 0, 0, &nborn, err, errlen);
		if (rc < 0 || nborn == 0)
			continue;
		rc = run4(cl, sqlite3_mprintf(
									  "UPDATE sync_queue SET table_name = '', op = 'U', row_data = NULL, origin = ''"
									  " WHERE seq IN ("	/* one list, read before the rows change */
									  "  WITH born(seq, k) AS MATERIALIZED ("
									  "   SELECT q.seq, json_extract(q.pk, %Q) FROM sync_queue q, syncq_state s"
									  "    WHERE q.table_name = %Q AND q.op = 'I' AND q.row_data IS NULL"
									  "      AND q.seq > s.filled_upto AND q.origin = s.node_id"
									  "      AND NOT EXISTS (SELECT 1 FROM \"%w\" t WHERE t.\"%w\" = json_extract(q.pk, %Q)))"
									  "  SELECT c.seq FROM sync_queue c, born b"
									  "   WHERE c.table_name = %Q AND b.k = json_extract(c.pk, %Q) AND c.seq >= b.seq"
									  "     AND c.seq <= coalesce((SELECT min(d.seq) FROM sync_queue d"
									  "          WHERE d.table_name = %Q AND d.op = 'D' AND d.seq > b.seq"
									  "            AND json_extract(d.pk, %Q) = b.k), 9223372036854775807)"
									  "     AND NOT EXISTS (SELECT 1 FROM sync_queue i WHERE i.table_name = %Q"
									  "          AND i.op = 'I' AND i.seq > b.seq AND i.seq <= c.seq"
									  "          AND json_extract(i.pk, %Q) = b.k))",
									  path, table, table, col, path, table, path, table, path, table, path),
				  0, 0, 0, 0, NULL, err, errlen);
	}
	sqlite3_finalize(st);
	if (rc == 0 && client_exec(cl, "DELETE FROM sync_queue WHERE table_name = ''", err, errlen) == 0)
		return client_commit_write(cl, err, errlen);
fail:
	client_rollback_write(cl);
	return -1;
}

/* How many rows were renamed to a key the hub gave, and the last (status). */
int64_t
client_renamed_keys(Client *cl, char *last, size_t lastlen)
{
	sqlite3_stmt *st = NULL;
	int64_t		n = 0;

	if (last && lastlen)
		last[0] = '\0';
	if (sqlite3_prepare_v2(cl->db, "SELECT (SELECT count(*) FROM syncqd_key_renames), table_name,"
						   " key_column, old_key, new_key, renamed_at FROM syncqd_key_renames"
						   " ORDER BY renamed_at DESC, seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
	{
		n = sqlite3_column_int64(st, 0);
		if (last && lastlen)
			snprintf(last, lastlen, "%s.%s %lld -> %lld at %s",
					 (const char *) sqlite3_column_text(st, 1), (const char *) sqlite3_column_text(st, 2),
					 (long long) sqlite3_column_int64(st, 3), (long long) sqlite3_column_int64(st, 4),
					 (const char *) sqlite3_column_text(st, 5));
	}
	sqlite3_finalize(st);
	return n;
}
