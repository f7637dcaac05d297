/*
 * client.c — the SQLite side of a sync.
 *
 * syncqd opens the client file with the syncq functions registered on its
 * own connection (the extension is linked in), reads the pending local
 * changes from sync_queue in one read transaction (a snapshot, so every
 * SQLite transaction is wholly in or out), and applies the hub's changes in
 * one write transaction together with the new position. Its own tables:
 *
 *   syncqd_state    key/value: up_seq, up_digest, down_snapshot, hub_node
 *   sync_versions   (table_name, pk) -> version of the row's current state
 *   sync_conflicts  every change overruled here
 *   sync_errors     hub changes this file refused (a constraint, a missing
 *                   table or column), set aside and retried (docs/daemon.md)
 */
#include "syncqd.h"
#include "client/client.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

/*
 * How long syncqd waits for the app's write lock before it gives up this
 * sync and retries later (with backoff): short, so that a busy app is never
 * made to wait behind a queue of syncqd's attempts.
 */
#define CLIENT_BUSY_MS 2000

/*
 * A download that brought nothing leaves the stored position as it is (no
 * write, no lock for the app to wait on) unless it is older than this.
 */
#define POSITION_MAX_AGE_US (60 * INT64_C(1000000))

/* Transaction boundaries the watch saw, kept for splitting uploads. */
#define BOUNDS_MAX 65536

/* Registers the syncq SQL functions (sqlite_ext/syncq.c, linked in). */
int			sqlite3_syncq_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

static const char *client_schema =
"CREATE TABLE IF NOT EXISTS syncqd_state("
"  key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
"CREATE TABLE IF NOT EXISTS sync_versions("
"  table_name TEXT NOT NULL, pk TEXT NOT NULL, ver_us INTEGER NOT NULL,"
"  ver_origin TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
"  PRIMARY KEY(table_name, pk)) WITHOUT ROWID;"
"CREATE TABLE IF NOT EXISTS sync_conflicts("
"  id INTEGER PRIMARY KEY, detected_at TEXT NOT NULL, table_name TEXT NOT NULL,"
"  pk TEXT NOT NULL, loser_op TEXT NOT NULL, loser_row TEXT,"
"  loser_changed_at TEXT NOT NULL, loser_origin TEXT NOT NULL,"
"  winner_changed_at TEXT NOT NULL, winner_origin TEXT NOT NULL);"
"CREATE TABLE IF NOT EXISTS sync_errors("
"  id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, op TEXT NOT NULL,"
"  pk TEXT NOT NULL, row_data TEXT, changed_at TEXT NOT NULL,"
"  ver_us INTEGER NOT NULL, origin TEXT NOT NULL, priority TEXT NOT NULL,"
"  hub_seq INTEGER NOT NULL, error TEXT NOT NULL, first_failed TEXT NOT NULL,"
"  last_failed TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1);";

static void
db_err(char *err, size_t errlen, Client *cl, const char *what)
{
	snprintf(err, errlen, "client \"%s\": %s: %s", cl->path, what, sqlite3_errmsg(cl->db));
}

static int
exec(Client *cl, const char *sql, char *err, size_t errlen)
{
	char	   *msg = NULL;

	if (sqlite3_exec(cl->db, sql, NULL, NULL, &msg) != SQLITE_OK)
	{
		snprintf(err, errlen, "client \"%s\": %s", cl->path, msg ? msg : sqlite3_errmsg(cl->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
prep(Client *cl, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(cl->db, sql, -1, &st, NULL) != SQLITE_OK)
	{
		db_err(err, errlen, cl, "prepare");
		return NULL;
	}
	return st;
}

/* ---- state -------------------------------------------------------------- */

static int
state_set(Client *cl, const char *key, const char *value, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(cl, "INSERT INTO syncqd_state(key, value) VALUES(?1, ?2)"
							" ON CONFLICT(key) DO UPDATE SET value = excluded.value", err, errlen);
	int			rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
	{
		db_err(err, errlen, cl, "writing syncqd_state");
		return -1;
	}
	return 0;
}

/* The value of key (malloc'd), or NULL. */
static char *
state_get(Client *cl, const char *key)
{
	sqlite3_stmt *st = NULL;
	char	   *v = NULL;

	if (sqlite3_prepare_v2(cl->db, "SELECT value FROM syncqd_state WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = xstrdup((const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* ---- SQL functions of syncqd's own connection --------------------------- */

/* syncqd_canon(json): the canonical compact spelling of a JSON object. */
static void
fn_canon(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *z = (const char *) sqlite3_value_text(argv[0]);
	JObject		o;
	char		e[128];
	Buf			b = {0};

	(void) argc;
	if (z == NULL)
		return;
	if (jobj_parse(z, (size_t) sqlite3_value_bytes(argv[0]), &o, e, sizeof(e)) < 0)
	{
		sqlite3_result_error(ctx, e, -1);
		return;
	}
	buf_json_object(&b, &o);
	jobj_free(&o);
	sqlite3_result_text(ctx, b.p, (int) b.len, free);
}

/* syncqd_us(instant): microseconds since 1970 of a queue changed_at. */
static void
fn_us(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *z = (const char *) sqlite3_value_text(argv[0]);
	int64_t		sec;
	int32_t		usec;

	(void) argc;
	if (z == NULL)
		return;
	if (syncq_parse_instant(z, sqlite3_value_bytes(argv[0]), &sec, &usec) != 0)
	{
		char	   *m = sqlite3_mprintf("syncqd_us: invalid timestamp \"%s\"", z);

		sqlite3_result_error(ctx, m, -1);
		sqlite3_free(m);
		return;
	}
	sqlite3_result_int64(ctx, sec * 1000000 + usec);
}

/* ---- open --------------------------------------------------------------- */

Client *
client_open(const char *path, char *err, size_t errlen)
{
	Client	   *cl = xcalloc(1, sizeof(Client));
	char	   *msg = NULL;
	sqlite3_stmt *st;

	cl->path = xstrdup(path);
	if (sqlite3_open_v2(path, &cl->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
	{
		db_err(err, errlen, cl, "cannot open");
		client_close(cl);
		return NULL;
	}
	sqlite3_busy_timeout(cl->db, CLIENT_BUSY_MS);
	if (sqlite3_syncq_init(cl->db, &msg, NULL) != SQLITE_OK)
	{
		snprintf(err, errlen, "client \"%s\": registering the syncq functions: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		client_close(cl);
		return NULL;
	}
	if (sqlite3_create_function(cl->db, "syncqd_canon", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_canon, NULL, NULL) != SQLITE_OK ||
		sqlite3_create_function(cl->db, "syncqd_us", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_us, NULL, NULL) != SQLITE_OK)
	{
		db_err(err, errlen, cl, "registering functions");
		client_close(cl);
		return NULL;
	}
	if (exec(cl, "PRAGMA journal_mode = WAL", err, errlen) < 0 ||
		exec(cl, client_schema, err, errlen) < 0)
	{
		client_close(cl);
		return NULL;
	}
	{
		/* sync_queue exists once a table is tracked */
		sqlite3_stmt *q = prep(cl, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_queue'", err, errlen);

		if (q == NULL)
		{
			client_close(cl);
			return NULL;
		}
		if (sqlite3_step(q) != SQLITE_ROW)
		{
			sqlite3_finalize(q);
			snprintf(err, errlen, "client \"%s\": no sync_queue: track a table first (SELECT sync_track('TABLE') with the syncq extension loaded)", path);
			client_close(cl);
			return NULL;
		}
		sqlite3_finalize(q);
	}
	st = prep(cl, "SELECT sync_node_id()", err, errlen);
	if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
	{
		if (st)
			db_err(err, errlen, cl, "sync_node_id()");
		sqlite3_finalize(st);
		client_close(cl);
		return NULL;
	}
	snprintf(cl->node_id, sizeof(cl->node_id), "%s", (const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return cl;
}

static void
free_tables(Client *cl)
{
	for (int i = 0; i < cl->ntables; i++)
	{
		ClientTable *t = &cl->tables[i];

		free(t->name);
		for (int c = 0; c < t->ncols; c++)
			free(t->cols[c]);
		free(t->cols);
		free(t->is_pk);
		free(t->hubtype);
	}
	free(cl->tables);
	cl->tables = NULL;
	cl->ntables = 0;
}

static void
free_stmts(Client *cl)
{
	for (int i = 0; i < cl->nstmts; i++)
	{
		free(cl->stmts[i].key);
		sqlite3_finalize(cl->stmts[i].st);
	}
	free(cl->stmts);
	cl->stmts = NULL;
	cl->nstmts = 0;
}

void
client_close(Client *cl)
{
	if (cl == NULL)
		return;
	free_stmts(cl);
	free_tables(cl);
	vermap_free(&cl->local);
	free(cl->bounds);
	sqlite3_finalize(cl->pending);
	sqlite3_finalize(cl->get_version);
	sqlite3_finalize(cl->put_version);
	sqlite3_finalize(cl->put_conflict);
	sqlite3_close(cl->db);
	free(cl->path);
	free(cl);
}

/* ---- tables ------------------------------------------------------------- */

/* The client table called name, read from the schema once; NULL if absent. */
ClientTable *
client_table(Client *cl, const char *name)
{
	sqlite3_stmt *st;
	ClientTable *t;

	for (int i = 0; i < cl->ntables; i++)
		if (strcmp(cl->tables[i].name, name) == 0)
			return &cl->tables[i];
	if (sqlite3_prepare_v2(cl->db, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	cl->tables = xrealloc(cl->tables, (size_t) (cl->ntables + 1) * sizeof(ClientTable));
	t = &cl->tables[cl->ntables];
	memset(t, 0, sizeof(*t));
	while (sqlite3_step(st) == SQLITE_ROW)
	{
		t->cols = xrealloc(t->cols, (size_t) (t->ncols + 1) * sizeof(char *));
		t->is_pk = xrealloc(t->is_pk, (size_t) (t->ncols + 1) * sizeof(int));
		t->cols[t->ncols] = xstrdup((const char *) sqlite3_column_text(st, 0));
		t->is_pk[t->ncols] = sqlite3_column_int(st, 1);
		if (t->is_pk[t->ncols])
			t->npk++;
		t->ncols++;
	}
	sqlite3_finalize(st);
	if (t->ncols == 0)
		return NULL;
	t->name = xstrdup(name);
	cl->ntables++;
	return t;
}

int
client_col(const ClientTable *t, const char *col)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i], col) == 0)
			return i;
	return -1;
}

/* Forget cached tables and statements (after a schema change). */
void
client_reset_cache(Client *cl)
{
	free_stmts(cl);
	free_tables(cl);
	vermap_free(&cl->local);
	cl->local_seen = 0;
}

/* ---- positions ---------------------------------------------------------- */

int
client_get_up(Client *cl, int64_t *seq, uint64_t *digest)
{
	char	   *s = state_get(cl, "up_seq"),
			   *d = state_get(cl, "up_digest");

	*seq = s ? strtoll(s, NULL, 10) : 0;
	*digest = d ? strtoull(d, NULL, 16) : 0;
	free(s);
	free(d);
	return 0;
}

char *
client_get_down(Client *cl)
{
	return state_get(cl, "down_snapshot");
}

/*
 * A download cut short: *target (malloc'd) is the snapshot it was going to,
 * *done the greatest seq applied of it; NULL and 0 if none.
 */
void
client_get_down_partial(Client *cl, char **target, int64_t *done)
{
	char	   *d = state_get(cl, "down_done");

	*target = state_get(cl, "down_target");
	*done = d ? strtoll(d, NULL, 10) : 0;
	free(d);
	if (*target == NULL)
		*done = 0;
}

/* Parse a queue changed_at (ISO text or Unix seconds) into microseconds. */
static int
instant_us(sqlite3_stmt *st, int col, int64_t *us)
{
	if (sqlite3_column_type(st, col) == SQLITE_TEXT)
	{
		int64_t		sec;
		int32_t		usec;
		const char *z = (const char *) sqlite3_column_text(st, col);

		if (syncq_parse_instant(z, sqlite3_column_bytes(st, col), &sec, &usec) != 0)
			return -1;
		*us = sec * 1000000 + usec;
		return 0;
	}
	if (sqlite3_column_type(st, col) == SQLITE_INTEGER)
	{
		*us = sqlite3_column_int64(st, col) * 1000000;
		return 0;
	}
	if (sqlite3_column_type(st, col) == SQLITE_FLOAT)
	{
		*us = (int64_t) (sqlite3_column_double(st, col) * 1e6);
		return 0;
	}
	return -1;
}

/*
 * Read this node's pending changes a page at a time, in seq order, inside
 * one read transaction: every SQLite transaction is wholly in or out.
 */
int
client_pending_open(Client *cl, int64_t after_seq, char *err, size_t errlen)
{
	if (exec(cl, "BEGIN", err, errlen) < 0)
		return -1;
	/*
	 * Rows at or below the acknowledged seq are on the hub already; the
	 * capture keeps the newest queue row (so its seq is never reused), which
	 * may be one of them.
	 */
	cl->pending = prep(cl, "SELECT seq, table_name, op, pk, row_data, changed_at, priority, txid"
					   " FROM sync_queue WHERE origin = ?1 AND seq > ?2 ORDER BY seq", err, errlen);
	if (cl->pending == NULL)
	{
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	sqlite3_bind_text(cl->pending, 1, cl->node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(cl->pending, 2, after_seq);
	cl->pending_done = false;
	cl->pending_held = false;
	cl->pending_txid = -1;
	return 0;
}

/*
 * About max pending changes into page (emptied first); 0 at the end.
 * *boundary: the page ends where a transaction ends (the queue's end, the
 * next row has another txid, or a seq the watch saw as the last of the
 * queue), so what was read so far may go to the hub as one transaction.
 * Rows of a connection that did not load syncq have no txid: between two
 * of them there is no telling but the watch's, so a page goes on until a
 * known boundary, up to 4 * max rows a call.
 */
int
client_pending_next(Client *cl, ChangeList *page, int max, bool *boundary, char *err, size_t errlen)
{
	int			rc = SQLITE_DONE;
	sqlite3_stmt *st = cl->pending;

	changes_free(page);
	*boundary = true;
	if (cl->pending_done)
		return 0;				/* stepping again would restart the query */
	if (cl->pending_held)
	{
		/* the row that stopped the last page */
		rc = SQLITE_ROW;
		cl->pending_held = false;
	}
	else
		rc = sqlite3_step(st);
	for (; rc == SQLITE_ROW; rc = sqlite3_step(st))
	{
		int64_t		us;
		int64_t		txid = sqlite3_column_int64(st, 7);	/* NULL: 0 */
		Change	   *c;

		if (page->n >= max)
		{
			bool		ends = txid != cl->pending_txid ||
				client_is_boundary(cl, page->c[page->n - 1].seq);

			if (ends || page->n >= max * 4)
			{
				/* stop here; this row starts the next page */
				*boundary = ends;
				cl->pending_held = true;
				break;
			}
		}
		if (instant_us(st, 5, &us) < 0)
		{
			snprintf(err, errlen, "client \"%s\": queue row %lld has a bad changed_at \"%s\"", cl->path,
					 sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 5));
			return -1;
		}
		c = changes_push(page);
		if (change_init(c, sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
						(const char *) sqlite3_column_text(st, 2), (const char *) sqlite3_column_text(st, 3),
						(const char *) sqlite3_column_text(st, 4), us, cl->node_id,
						strcmp((const char *) sqlite3_column_text(st, 6), "immediate") == 0,
						err, errlen) < 0)
		{
			page->n--;
			return -1;
		}
		cl->pending_txid = txid;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
	{
		db_err(err, errlen, cl, "reading sync_queue");
		return -1;
	}
	cl->pending_done = rc == SQLITE_DONE;
	return page->n;
}

/*
 * seq was the queue's last row in some snapshot (the watch saw it): a
 * transaction ends after it. Kept sorted; the oldest half is forgotten
 * when the list is full.
 */
void
client_note_boundary(Client *cl, int64_t seq)
{
	if (cl->nbounds > 0 && seq <= cl->bounds[cl->nbounds - 1])
		return;
	if (cl->nbounds == BOUNDS_MAX)
	{
		memmove(cl->bounds, cl->bounds + BOUNDS_MAX / 2, sizeof(int64_t) * (BOUNDS_MAX / 2));
		cl->nbounds = BOUNDS_MAX / 2;
	}
	if (cl->bounds == NULL)
		cl->bounds = xmalloc(sizeof(int64_t) * BOUNDS_MAX);
	cl->bounds[cl->nbounds++] = seq;
}

bool
client_is_boundary(Client *cl, int64_t seq)
{
	int			lo = 0,
				hi = cl->nbounds - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (cl->bounds[mid] == seq)
			return true;
		if (cl->bounds[mid] < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* Are there rows the pending read has not returned yet? */
bool
client_pending_more(Client *cl)
{
	return cl->pending && !cl->pending_done;
}

void
client_pending_close(Client *cl)
{
	sqlite3_finalize(cl->pending);
	cl->pending = NULL;
	if (!sqlite3_get_autocommit(cl->db))
		sqlite3_exec(cl->db, "COMMIT", NULL, NULL, NULL);
}

/* Raise the stored version of (table, pk) to v. */
static int
put_version(Client *cl, const char *table, const char *pk, const Version *v, bool deleted,
			char *err, size_t errlen)
{
	if (cl->put_version == NULL &&
		(cl->put_version = prep(cl, "INSERT INTO sync_versions(table_name, pk, ver_us, ver_origin, deleted)"
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
		db_err(err, errlen, cl, "writing sync_versions");
		sqlite3_reset(cl->put_version);
		return -1;
	}
	sqlite3_reset(cl->put_version);
	return 0;
}

/*
 * The hub acknowledged this node's changes after from_seq up to up_seq:
 * remember their versions, delete them from the queue, store the position
 * — one transaction. A long upload is acknowledged in several of these
 * (one per page), so the app never waits long for its write lock.
 */
int
client_ack_upload(Client *cl, int64_t from_seq, int64_t up_seq, uint64_t up_digest,
				  char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char		num[32],
				dig[32];
	static const char *const steps[] = {
		"INSERT INTO sync_versions(table_name, pk, ver_us, ver_origin, deleted)"
		" SELECT table_name, syncqd_canon(pk), syncqd_us(changed_at), origin, op = 'D'"
		"   FROM sync_queue WHERE origin = ?1 AND seq <= ?2 AND seq > ?3 ORDER BY seq"
		" ON CONFLICT(table_name, pk) DO UPDATE"
		" SET ver_us = excluded.ver_us, ver_origin = excluded.ver_origin, deleted = excluded.deleted"
		" WHERE (ver_us, ver_origin) <= (excluded.ver_us, excluded.ver_origin)",
		"DELETE FROM sync_queue WHERE origin = ?1 AND seq <= ?2",
	};

	if (exec(cl, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
	{
		st = prep(cl, steps[i], err, errlen);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, cl->node_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, up_seq);
		if (i == 0)
			sqlite3_bind_int64(st, 3, from_seq);
		if (sqlite3_step(st) != SQLITE_DONE)
		{
			db_err(err, errlen, cl, "acknowledging uploaded changes");
			sqlite3_finalize(st);
			goto fail;
		}
		sqlite3_finalize(st);
	}
	snprintf(num, sizeof(num), "%" PRId64, up_seq);
	snprintf(dig, sizeof(dig), "%016" PRIx64, up_digest);
	if (state_set(cl, "up_seq", num, err, errlen) < 0 ||
		state_set(cl, "up_digest", dig, err, errlen) < 0)
		goto fail;
	return exec(cl, "COMMIT", err, errlen);
fail:
	sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- applying the hub's changes ---------------------------------------- */

/*
 * Begin the write transaction of a download, with capture paused: what
 * syncqd writes came from the hub and must not travel back.
 */
int
client_begin_apply(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st;

	if (exec(cl, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;

	/*
	 * Every local change not yet on the hub — including ones committed after
	 * the upload read the queue — must win over older hub changes. The map
	 * is added to, not rebuilt, by each part of a download (rows the sync
	 * acknowledged meanwhile have their version in sync_versions, so an
	 * entry that stays is harmless); client_reset_cache() empties it.
	 */
	st = prep(cl, "SELECT table_name, syncqd_canon(pk), syncqd_us(changed_at), seq FROM sync_queue"
			  " WHERE origin = ?1 AND seq > max(?2, coalesce((SELECT CAST(value AS INTEGER)"
			  "       FROM syncqd_state WHERE key = 'up_seq'), 0))",
			  err, errlen);
	if (st == NULL)
	{
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
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
		db_err(err, errlen, cl, "reading pending changes");
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (capture_pause(cl, err, errlen) < 0)
	{
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
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
		if (exec(cl, "BEGIN IMMEDIATE", err, errlen) < 0)
			return -1;
	}
	else if (capture_resume(cl, err, errlen) < 0)
		goto fail;
	snprintf(num, sizeof(num), "%" PRId64, done);
	if (target == NULL)
	{
		if ((down_snapshot && state_set(cl, "down_snapshot", down_snapshot, err, errlen) < 0) ||
			exec(cl, "DELETE FROM syncqd_state WHERE key IN ('down_target', 'down_done')", err, errlen) < 0)
			goto fail;
	}
	else if (state_set(cl, "down_target", target, err, errlen) < 0 ||
			 state_set(cl, "down_done", num, err, errlen) < 0)
		goto fail;
	if (exec(cl, "COMMIT", err, errlen) < 0)
		goto fail;
	if (target == NULL)
		cl->down_stored_at = mono_us();
	return 0;
fail:
	sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
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
	if (!sqlite3_get_autocommit(cl->db))
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
}

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
			db_err(err, errlen, cl, "bind");
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
		db_err(err, errlen, cl, "bind");
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
		db_err(err, errlen, cl, "preparing an apply statement");
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

/* Check a change's table and columns against the client's schema. */
static ClientTable *
check_change(Client *cl, const Change *c, char *err, size_t errlen)
{
	ClientTable *t = client_table(cl, c->table);
	const JObject *o = c->op == 'D' ? &c->pk : &c->row;

	if (t == NULL)
	{
		snprintf(err, errlen, "client \"%s\": table \"%s\" does not exist here (change %" PRId64 " from the hub); create it with the hub's columns",
				 cl->path, c->table, c->seq);
		return NULL;
	}
	for (int i = 0; i < o->n; i++)
		if (client_col(t, o->f[i].key) < 0)
		{
			snprintf(err, errlen, "client \"%s\": column \"%s\" of table \"%s\" does not exist here (change %" PRId64 " from the hub)",
					 cl->path, o->f[i].key, c->table, c->seq);
			return NULL;
		}
	return t;
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

/* The stored version of (table, pk), if any. */
static int
get_version(Client *cl, const char *table, const char *pk, Version *v, char *err, size_t errlen)
{
	int			rc;

	v->known = false;
	if (cl->get_version == NULL &&
		(cl->get_version = prep(cl, "SELECT ver_us, ver_origin FROM sync_versions WHERE table_name = ?1 AND pk = ?2",
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
		db_err(err, errlen, cl, "reading sync_versions");
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
		(cl->put_conflict = prep(cl, "INSERT INTO sync_conflicts(detected_at, table_name, pk, loser_op, loser_row,"
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
		db_err(err, errlen, cl, "writing sync_conflicts");
		return -1;
	}
	return 0;
}

/*
 * Apply one change from the hub inside the apply transaction: last writer
 * wins against the row's stored version and any pending local change
 * (cl->local, the newest pending local version of each row). Returns 1 if
 * applied, 0 if overruled (in sync_conflicts), 3 if superseded (retry: a
 * later change of the same node is there already), -2 if this file refused
 * it (why says why), -1 on an error that ends the download (err).
 */
static int
apply_one(Client *cl, const Change *c, const HubTypes *types, bool retry,
		  char *why, size_t whylen, char *err, size_t errlen)
{
	ClientTable *t = check_change(cl, c, why, whylen);
	Version		cur,
				v = {c->ver_us, "", true};
	char	   *k;
	Version    *pend;
	int			rc;

	if (t == NULL)
		return -2;
	memcpy(v.origin, c->origin, sizeof(v.origin));
	if (get_version(cl, c->table, c->pk_json, &cur, err, errlen) < 0)
		return -1;
	k = row_key(c->table, c->pk_json);
	pend = vermap_get(&cl->local, k);
	free(k);
	if (pend && version_cmp(pend, &cur) > 0)
		cur = *pend;
	if (cur.known && version_cmp(&v, &cur) < 0)
	{
		if (retry && strcmp(cur.origin, c->origin) == 0)
			return 3;
		return put_conflict(cl, c, &cur, err, errlen) < 0 ? -1 : 0;
	}
	rc = client_write_row(cl, t, c->op == 'D', c->op == 'D' ? &c->pk : &c->row, types, why, whylen);
	if (rc == -1)
	{
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (rc == -2)
		return -2;
	if (put_version(cl, c->table, c->pk_json, &v, c->op == 'D', err, errlen) < 0)
		return -1;
	return 1;
}

/* Drop the "client "<path>": " a reason starts with: sync_errors is in it. */
static const char *
short_reason(Client *cl, const char *why)
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
	sqlite3_stmt *st = prep(cl, "INSERT INTO sync_errors(table_name, op, pk, row_data, changed_at, ver_us, origin,"
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
	sqlite3_bind_text(st, 8, c->immediate ? "immediate" : "batched", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, c->seq);
	sqlite3_bind_text(st, 10, short_reason(cl, why), -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
	{
		db_err(err, errlen, cl, "writing sync_errors");
		return -1;
	}
	return 0;
}

/*
 * Apply one change from the hub (apply_one); one this file refuses is set
 * aside in sync_errors and the download goes on. Returns 1 if applied, 0 if
 * overruled, 2 if set aside, -1 on an error that ends the download.
 */
int
client_apply_change(Client *cl, const Change *c, const HubTypes *types, char *err, size_t errlen)
{
	char		why[1024];
	int			rc = apply_one(cl, c, types, false, why, sizeof(why), err, errlen);

	if (rc != -2)
		return rc;
	if (park_change(cl, c, why, err, errlen) < 0)
		return -1;
	logmsg(LOG_WARNING, "change %" PRId64 " from the hub (%c \"%s\" %s) set aside in sync_errors: %s",
		   c->seq, c->op, c->table, c->pk_json, short_reason(cl, why));
	return 2;
}

/*
 * Inside the apply transaction: try the changes set aside in sync_errors
 * again, oldest first. Those that go through now, or that a later change
 * overruled, leave sync_errors; the rest stay with the new reason.
 * *applied counts the first kind. -1 on an error that ends the download.
 */
int
client_retry_errors(Client *cl, const HubTypes *types, int *applied, char *err, size_t errlen)
{
	sqlite3_stmt *st = prep(cl, "SELECT id, hub_seq, table_name, op, pk, row_data, ver_us, origin, priority"
							" FROM sync_errors ORDER BY id", err, errlen);
	sqlite3_stmt *upd = NULL,
			   *del = NULL;
	ChangeList	l = {0};
	int64_t    *ids = NULL;
	char	  **bad = NULL;		/* rows that no longer read: why */
	int			n = 0,
				rc = 0,
				step;

	if (st == NULL)
		return -1;
	/* read them all first: the loop below writes to sync_errors */
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
	{
		Change	   *c = changes_push(&l);
		char		why[512];

		ids = xrealloc(ids, sizeof(int64_t) * (size_t) l.n);
		bad = xrealloc(bad, sizeof(char *) * (size_t) l.n);
		ids[n] = sqlite3_column_int64(st, 0);
		bad[n] = NULL;
		if (change_init(c, sqlite3_column_int64(st, 1), (const char *) sqlite3_column_text(st, 2),
						(const char *) sqlite3_column_text(st, 3), (const char *) sqlite3_column_text(st, 4),
						(const char *) sqlite3_column_text(st, 5), sqlite3_column_int64(st, 6),
						(const char *) sqlite3_column_text(st, 7),
						strcmp((const char *) sqlite3_column_text(st, 8), "immediate") == 0,
						why, sizeof(why)) < 0)
		{
			memset(c, 0, sizeof(*c));
			bad[n] = xstrdup(why);
		}
		n++;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
	{
		db_err(err, errlen, cl, "reading sync_errors");
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < n; i++)
	{
		const Change *c = &l.c[i];
		char		why[1024];
		int			r;

		if (bad[i])
		{
			snprintf(why, sizeof(why), "%s", bad[i]);
			r = -2;
		}
		else
		{
			r = apply_one(cl, c, types, true, why, sizeof(why), err, errlen);
			if (r >= 0)
				logmsg(LOG_INFO, "set-aside change %" PRId64 " from the hub (%c \"%s\" %s) %s", c->seq, c->op,
					   c->table, c->pk_json,
					   r == 1 ? "went through" : r == 0 ? "was overruled by a later change" :
					   "was superseded by a later change of its row");
		}
		if (r == -1)
		{
			rc = -1;
			break;
		}
		if (r == -2)
		{
			if (upd == NULL &&
				(upd = prep(cl, "UPDATE sync_errors SET error = ?2, attempts = attempts + 1,"
							" last_failed = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1", err, errlen)) == NULL)
			{
				rc = -1;
				break;
			}
			sqlite3_bind_int64(upd, 1, ids[i]);
			sqlite3_bind_text(upd, 2, short_reason(cl, why), -1, SQLITE_TRANSIENT);
			step = sqlite3_step(upd);
			sqlite3_reset(upd);
		}
		else
		{
			if (r == 1)
				(*applied)++;
			if (del == NULL &&
				(del = prep(cl, "DELETE FROM sync_errors WHERE id = ?1", err, errlen)) == NULL)
			{
				rc = -1;
				break;
			}
			sqlite3_bind_int64(del, 1, ids[i]);
			step = sqlite3_step(del);
			sqlite3_reset(del);
		}
		if (step != SQLITE_DONE)
		{
			db_err(err, errlen, cl, "writing sync_errors");
			rc = -1;
		}
	}
	sqlite3_finalize(upd);
	sqlite3_finalize(del);
	for (int i = 0; i < n; i++)
		free(bad[i]);
	free(bad);
	free(ids);
	changes_free(&l);
	return rc;
}

/* A first sync: the set-aside hub changes are moot (in the apply transaction). */
int
client_forget_errors(Client *cl, char *err, size_t errlen)
{
	return exec(cl, "DELETE FROM sync_errors", err, errlen);
}

/* Has the file set aside changes from the hub? */
bool
client_has_errors(Client *cl)
{
	sqlite3_stmt *st = NULL;
	bool		any = false;

	if (sqlite3_prepare_v2(cl->db, "SELECT 1 FROM sync_errors LIMIT 1", -1, &st, NULL) == SQLITE_OK)
		any = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return any;
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
	rc = exec(cl, sql, err, errlen);
	sqlite3_free(sql);
	return rc;
}

const char *
client_node_id(Client *cl)
{
	return cl->node_id;
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
