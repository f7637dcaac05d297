/*
 * client.c — the client file as syncqd holds it (client.h): opening it
 * (the syncq functions registered on syncqd's own connection: the
 * extension is linked in), syncqd's own tables, the schema of the app's
 * tables, the stored positions.
 *
 *   syncqd_state    key/value: up_seq, up_digest, down_snapshot, hub_node
 *   sync_versions   (table_name, pk) -> version of the row's current state
 *   sync_conflicts  every change overruled here
 *   sync_errors     hub changes this file refused (a constraint, a missing
 *                   table or column), set aside and retried (docs/daemon.md)
 *
 *   client_open, client_close   open the file, make syncqd's tables
 *   client_node_id              this file's node id
 *   client_table, client_col    a table's columns, read from the schema once
 *   client_col_generated        is it a generated column there
 *   client_table_fks            the foreign keys it declares, read once
 *   client_reset_cache          forget them (after a schema change)
 *   client_follow_schema        the schema moved: sync_repair() (which also
 *                               queues writes a rebuild's gap missed), the
 *                               row sums' watch, forget the tables
 *   client_get_up               the acknowledged upload position
 *   client_get_down             the download position
 *   client_get_down_partial     a download cut short: its target, how far
 *   client_begin_write, client_commit_write, client_rollback_write,
 *   client_pace_due             syncqd's write transactions, paced so that
 *                               a waiting app always gets in
 *   client_exec, client_prep, client_db_err, client_query_int,
 *   client_write_call, client_state_set,
 *   client_state_get            shared by the client files
 */
#include "base/base.h"
#include "base/buf.h"
#include "client/client.h"

#include <inttypes.h>
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
 * syncqd checkpoints the WAL itself (docs/daemon.md, Checkpoints are
 * syncqd's): SQLite's automatic checkpoint runs in the commit that takes
 * the WAL past 1,000 frames, whichever connection's, and with an app
 * writing one row per transaction, each synced at once, that was an app's
 * commit or one of syncqd's in the middle of a sync (4 MB written and two
 * fsyncs, in the latency of a change). Once the WAL holds
 * CLIENT_CHECKPOINT_IDLE_FRAMES frames after a commit of syncqd's, the
 * daemon checkpoints after the sync (client_checkpoint), when nothing
 * waits for it; at CLIENT_CHECKPOINT_FRAMES, SQLite's own threshold, at
 * once, as SQLite would (a long download or first sync).
 */
#define CLIENT_CHECKPOINT_IDLE_FRAMES 250
#define CLIENT_CHECKPOINT_FRAMES 1000

/*
 * The pace of syncqd's write transactions (docs/daemon.md, The app always
 * gets in): once syncqd has held the file's write lock for a while, in one
 * transaction or in several, it leaves the lock alone for PACE_PAUSE_US
 * before it takes it again. SQLite's busy handler, in which the app waits,
 * sleeps up to 100 ms between tries: the pause is longer, so a waiting app
 * is sure to get in. The while is PACE_HOLD_APP_US once another connection
 * (the app) has committed in the last PACE_APP_US, so that a writing app
 * waits little more than one of its sleeps; PACE_HOLD_US when none has, so
 * that a sync with nobody else writing goes fast, and an app that begins
 * to write waits one longer hold, once. A shorter gap between two
 * transactions (a commit at the end of a download's page while the next
 * page comes, 25 ms between an upload's parts, the time between two small
 * syncs) takes half its length off the time held, but is no pause: an app
 * sleeping 100 ms at a time can miss such gaps one after another (it
 * waited over a second behind a download's pages of 40 ms held, 10 ms
 * free, when each commit was taken for the end of a part:
 * daemon_app_waits). Small syncs, a few ms long and tens of ms apart, never
 * pause.
 */
#define PACE_HOLD_US 200000
#define PACE_HOLD_APP_US 50000
#define PACE_APP_US 5000000
#define PACE_PAUSE_US 110000

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
"  last_failed TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1);"
"CREATE TABLE IF NOT EXISTS syncqd_key_renames("
"  seq INTEGER PRIMARY KEY, table_name TEXT NOT NULL, key_column TEXT NOT NULL,"
"  old_key INTEGER NOT NULL, new_key INTEGER NOT NULL, renamed_at TEXT NOT NULL);";

void
client_db_err(char *err, size_t errlen, Client *cl, const char *what)
{
	snprintf(err, errlen, "client \"%s\": %s: %s", cl->path, what, sqlite3_errmsg(cl->db));
}

int
client_exec(Client *cl, const char *sql, char *err, size_t errlen)
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

sqlite3_stmt *
client_prep(Client *cl, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(cl->db, sql, -1, &st, NULL) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "prepare");
		return NULL;
	}
	return st;
}

/* The integer a one-row query (a PRAGMA) returns; *rc is SQLite's code. */
int64_t
client_query_int(sqlite3 *db, const char *sql, int *rc)
{
	sqlite3_stmt *st = NULL;
	int64_t		v = -1;

	*rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (*rc == SQLITE_OK)
	{
		*rc = sqlite3_step(st);
		if (*rc == SQLITE_ROW)
		{
			v = sqlite3_column_int64(st, 0);
			*rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return v;
}

/* How long syncqd may hold the lock before it pauses, now. */
static int64_t
pace_hold_us(const Client *cl)
{
	return client_app_writes(cl) ? PACE_HOLD_APP_US : PACE_HOLD_US;
}

/*
 * Begin a write transaction of syncqd's: first the pause, if syncqd held
 * the lock long enough (a gap as long as the pause counts as one); then
 * see whether another connection wrote since syncqd last took the lock.
 */
int
client_begin_write(Client *cl, char *err, size_t errlen)
{
	int64_t		dv;
	int			rc;

	if (cl->freed_at != 0)
	{
		int64_t		free_for = mono_us() - cl->freed_at;

		if (cl->held_us >= pace_hold_us(cl) && free_for < PACE_PAUSE_US)
		{
			nap_us(PACE_PAUSE_US - free_for);
			free_for = PACE_PAUSE_US;
		}
		cl->held_us = free_for >= PACE_PAUSE_US ? 0 :
			cl->held_us > free_for / 2 ? cl->held_us - free_for / 2 : 0;
	}
	if (client_exec(cl, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	cl->taken_at = mono_us();
	dv = client_query_int(cl->db, "PRAGMA data_version", &rc);
	if (rc == SQLITE_OK)
	{
		if (cl->data_version != 0 && dv != cl->data_version)
			cl->app_wrote_at = cl->taken_at;
		cl->data_version = dv;
	}
	return 0;
}

/* The lock goes: what it was held for counts. */
static void
pace_freed(Client *cl)
{
	cl->freed_at = mono_us();
	if (cl->taken_at != 0)
		cl->held_us += cl->freed_at - cl->taken_at;
	cl->taken_at = 0;
}

int
client_commit_write(Client *cl, char *err, size_t errlen)
{
	int			rc = client_exec(cl, "COMMIT", err, errlen);

	if (rc == 0)
		pace_freed(cl);
	return rc;
}

/* Give up the open write transaction, if any. */
void
client_rollback_write(Client *cl)
{
	if (!sqlite3_get_autocommit(cl->db))
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
	if (cl->taken_at != 0)
		pace_freed(cl);
}

/*
 * Has syncqd held the lock long enough that the open part should end at its
 * next cut (the next one then pauses first)?
 */
bool
client_pace_due(const Client *cl)
{
	return cl->held_us + (cl->taken_at != 0 ? mono_us() - cl->taken_at : 0) >= pace_hold_us(cl);
}

/*
 * Has another connection (the app) written to the file in the last
 * PACE_APP_US, as syncqd saw when it last took the lock?
 */
bool
client_app_writes(const Client *cl)
{
	return cl->app_wrote_at != 0 && mono_us() - cl->app_wrote_at < PACE_APP_US;
}

/*
 * Run sql, a one-row SELECT of syncq functions that write (sync_repair(),
 * sync_fill()), in a write transaction of its own taken first (a read
 * upgraded to a write could not wait for the app), and keep its first n
 * integer columns in v. 0, or -1 with err naming what.
 */
int
client_write_call(Client *cl, const char *sql, const char *what, int64_t *v, int n,
				  char *err, size_t errlen)
{
	sqlite3_stmt *st;

	if (client_begin_write(cl, err, errlen) < 0)
		return -1;
	st = client_prep(cl, sql, err, errlen);
	if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
	{
		if (st)
			client_db_err(err, errlen, cl, what);
		sqlite3_finalize(st);
		client_rollback_write(cl);
		return -1;
	}
	for (int i = 0; i < n; i++)
		v[i] = sqlite3_column_int64(st, i);
	sqlite3_finalize(st);
	if (client_commit_write(cl, err, errlen) < 0)
	{
		client_rollback_write(cl);
		return -1;
	}
	return 0;
}

int
client_state_set(Client *cl, const char *key, const char *value, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "INSERT INTO syncqd_state(key, value) VALUES(?1, ?2)"
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
		client_db_err(err, errlen, cl, "writing syncqd_state");
		return -1;
	}
	return 0;
}

/* The value of key (malloc'd), or NULL. */
char *
client_state_get(Client *cl, const char *key)
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

/*
 * A passive checkpoint: it takes no lock the app waits for, and copies what
 * no reader still needs. Busy (another checkpoint) or locked (a statement
 * of syncqd's still reading) is no error: a later one goes on.
 */
static void
checkpoint(const Client *cl, const char *schema)
{
	int			rc = sqlite3_wal_checkpoint_v2(cl->db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
		logmsg(LOG_DEBUG, "checkpoint of \"%s\": %s", cl->path, sqlite3_errmsg(cl->db));
}

/*
 * The WAL hook of syncqd's connection, in place of SQLite's automatic
 * checkpoint: after a commit of syncqd's, a checkpoint at once from
 * CLIENT_CHECKPOINT_FRAMES frames, and one due after the sync from
 * CLIENT_CHECKPOINT_IDLE_FRAMES.
 */
static int
on_wal_commit(void *arg, sqlite3 *db, const char *schema, int frames)
{
	Client	   *cl = arg;

	(void) db;					/* cl->db */
	if (frames >= CLIENT_CHECKPOINT_FRAMES)
	{
		checkpoint(cl, schema);
		cl->checkpoint_due = false;
	}
	else if (frames >= CLIENT_CHECKPOINT_IDLE_FRAMES)
		cl->checkpoint_due = true;
	return SQLITE_OK;
}

/*
 * After a sync: the checkpoint the WAL hook found due, so that the app's
 * commits find the WAL short and do not checkpoint in the app's time.
 */
void
client_checkpoint(Client *cl)
{
	if (!cl->checkpoint_due)
		return;
	cl->checkpoint_due = false;
	checkpoint(cl, "main");
}

/* ---- open --------------------------------------------------------------- */

Client *
client_open(const char *path, char *err, size_t errlen)
{
	Client	   *cl = xcalloc(1, sizeof(Client));
	char	   *msg = NULL;
	sqlite3_stmt *st;

	cl->path = xstrdup(path);
	cl->schema_version = -1;
	if (sqlite3_open_v2(path, &cl->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "cannot open");
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
		client_db_err(err, errlen, cl, "registering functions");
		client_close(cl);
		return NULL;
	}
	if (client_exec(cl, "PRAGMA journal_mode = WAL", err, errlen) < 0 ||
		client_exec(cl, client_schema, err, errlen) < 0)
	{
		client_close(cl);
		return NULL;
	}
	sqlite3_wal_hook(cl->db, on_wal_commit, cl);
	{
		/* sync_queue exists once a table is tracked */
		sqlite3_stmt *q = client_prep(cl, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '" SYNCQ_QUEUE_TABLE "'", err, errlen);

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
	st = client_prep(cl, "SELECT sync_node_id()", err, errlen);
	if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
	{
		if (st)
			client_db_err(err, errlen, cl, "sync_node_id()");
		sqlite3_finalize(st);
		client_close(cl);
		return NULL;
	}
	snprintf(cl->node_id, sizeof(cl->node_id), "%s", (const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return cl;
}

static void
free_fks(ClientTable *t)
{
	for (int i = 0; i < t->nfks; i++)
	{
		ClientFk   *fk = &t->fks[i];

		free(fk->parent);
		for (int c = 0; c < fk->n; c++)
			free(fk->pcol[c]);
		free(fk->pcol);
		free(fk->col);
		sqlite3_finalize(fk->probe);
	}
	free(t->fks);
	t->fks = NULL;
	t->nfks = 0;
	t->fks_read = false;
}

static void
free_tables(Client *cl)
{
	for (int i = 0; i < cl->ntables; i++)
	{
		ClientTable *t = &cl->tables[i];

		free_fks(t);
		free(t->name);
		for (int c = 0; c < t->ncols; c++)
			free(t->cols[c]);
		for (int c = 0; c < t->ngen; c++)
			free(t->gencols[c]);
		free(t->cols);
		free(t->is_pk);
		namemap_free(&t->gone);
		free(t->gone_logged);
		free(t->gencols);
		free(t->forms);
		free(t->kind);
		free(t->form);
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
	vermap_free(&cl->fill_again);
	changes_free(&cl->held);
	namemap_free(&cl->fk_warned);
	free(cl->bounds);
	for (int i = 0; i < cl->nmalformed; i++)
		free(cl->malformed_why[i]);
	free(cl->malformed);
	free(cl->malformed_why);
	sqlite3_finalize(cl->pending);
	sqlite3_finalize(cl->get_version);
	sqlite3_finalize(cl->put_version);
	sqlite3_finalize(cl->put_conflict);
	sqlite3_close(cl->db);
	free(cl->path);
	free(cl);
}

const char *
client_node_id(Client *cl)
{
	return cl->node_id;
}

/* ---- tables ------------------------------------------------------------- */

/* syncq_tracked.forms of table name (malloc'd), or NULL. */
static char *
table_forms(Client *cl, const char *name)
{
	sqlite3_stmt *st = NULL;
	char	   *forms = NULL;

	/* a file of an older syncq may lack the column until it is migrated */
	if (sqlite3_prepare_v2(cl->db, "SELECT forms FROM syncq_tracked WHERE table_name = ?1",
						   -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
		forms = xstrdup((const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return forms;
}

/*
 * The client table called name, read from the schema once; NULL if absent.
 * Generated columns (hidden 2 and 3 in table_xinfo) are listed apart.
 */
ClientTable *
client_table(Client *cl, const char *name)
{
	sqlite3_stmt *st;
	ClientTable *t;

	for (int i = 0; i < cl->ntables; i++)
		if (strcmp(cl->tables[i].name, name) == 0)
			return &cl->tables[i];
	if (sqlite3_prepare_v2(cl->db, "SELECT name, pk, hidden IN (2, 3) FROM pragma_table_xinfo(?1)"
						   " WHERE hidden IN (0, 2, 3) ORDER BY cid", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	cl->tables = xrealloc(cl->tables, (size_t) (cl->ntables + 1) * sizeof(ClientTable));
	t = &cl->tables[cl->ntables];
	memset(t, 0, sizeof(*t));
	while (sqlite3_step(st) == SQLITE_ROW)
	{
		if (sqlite3_column_int(st, 2))
		{
			t->gencols = xrealloc(t->gencols, (size_t) (t->ngen + 1) * sizeof(char *));
			t->gencols[t->ngen++] = xstrdup((const char *) sqlite3_column_text(st, 0));
			continue;
		}
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
	{
		for (int c = 0; c < t->ngen; c++)
			free(t->gencols[c]);
		free(t->gencols);
		return NULL;
	}
	/* the columns it had and has no more (sync_repair() keeps them) */
	if (sqlite3_prepare_v2(cl->db, "SELECT column_name, renamed_to FROM syncq_columns_gone WHERE table_name = ?1",
						   -1, &st, NULL) == SQLITE_OK)
	{
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			namemap_add(&t->gone, (const char *) sqlite3_column_text(st, 0),
						(const char *) sqlite3_column_text(st, 1));
		sqlite3_finalize(st);
	}
	t->name = xstrdup(name);
	t->forms = table_forms(cl, name);
	cl->ntables++;
	return t;
}

/* Is col a generated column of t? */
bool
client_col_generated(const ClientTable *t, const char *col)
{
	for (int i = 0; i < t->ngen; i++)
		if (strcmp(t->gencols[i], col) == 0)
			return true;
	return false;
}

int
client_col(const ClientTable *t, const char *col)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i], col) == 0)
			return i;
	return -1;
}

/*
 * The probe of a foreign key: is there a parent row with these values?
 * SQLite compares by the parent columns' affinity and collation, as its
 * own foreign key check does. NULL (and said in the log) if the parent
 * table or its columns are not there: the key cannot be checked.
 */
static sqlite3_stmt *
fk_probe(Client *cl, const ClientTable *t, const ClientFk *fk)
{
	Buf			b = {0};
	sqlite3_stmt *st = NULL;
	char	   *q = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE ", fk->parent);

	buf_puts(&b, q);
	sqlite3_free(q);
	for (int c = 0; c < fk->n; c++)
	{
		q = sqlite3_mprintf("%s\"%w\" = ?%d", c ? " AND " : "", fk->pcol[c], c + 1);
		buf_puts(&b, q);
		sqlite3_free(q);
	}
	buf_puts(&b, " LIMIT 1");
	if (sqlite3_prepare_v2(cl->db, b.p, -1, &st, NULL) != SQLITE_OK)
	{
		if (namemap_find(&cl->fk_warned, t->name) < 0)
			logmsg(LOG_WARNING, "client \"%s\": a foreign key of table \"%s\" refers to \"%s\", which cannot be read (%s): the hub's changes are not checked against it",
			   cl->path, t->name, fk->parent, sqlite3_errmsg(cl->db));
		sqlite3_finalize(st);
		st = NULL;
	}
	buf_free(&b);
	return st;
}

/*
 * The parent columns of a key declared without them: the parent's primary
 * key, in order. How many (0 if none).
 */
static int
parent_key(Client *cl, const char *parent, char ***pcol)
{
	sqlite3_stmt *st = NULL;
	int			n = 0;

	*pcol = NULL;
	if (sqlite3_prepare_v2(cl->db, "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
						   -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, parent, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
	{
		*pcol = xrealloc(*pcol, (size_t) (n + 1) * sizeof(char *));
		(*pcol)[n++] = xstrdup((const char *) sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return n;
}

/*
 * The foreign keys table t declares (PRAGMA foreign_key_list, whatever
 * PRAGMA foreign_keys says), each with its probe; read once per table and
 * schema (client_reset_cache forgets them). A key whose columns or parent
 * cannot be resolved is left out, said in the log once per table and run.
 */
const ClientFk *
client_table_fks(Client *cl, ClientTable *t, int *n)
{
	sqlite3_stmt *st = NULL;
	int			id = -1,
				step;
	bool		left_out = false;

	if (t->fks_read)
	{
		*n = t->nfks;
		return t->fks;
	}
	t->fks_read = true;
	if (sqlite3_prepare_v2(cl->db, "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)"
						   " ORDER BY id, seq", -1, &st, NULL) != SQLITE_OK)
	{
		*n = 0;
		return NULL;
	}
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
	{
		ClientFk   *fk;

		if (sqlite3_column_int(st, 0) != id)
		{
			id = sqlite3_column_int(st, 0);
			t->fks = xrealloc(t->fks, (size_t) (t->nfks + 1) * sizeof(ClientFk));
			fk = &t->fks[t->nfks++];
			memset(fk, 0, sizeof(*fk));
			fk->parent = xstrdup((const char *) sqlite3_column_text(st, 1));
		}
		fk = &t->fks[t->nfks - 1];
		fk->col = xrealloc(fk->col, (size_t) (fk->n + 1) * sizeof(int));
		fk->pcol = xrealloc(fk->pcol, (size_t) (fk->n + 1) * sizeof(char *));
		fk->col[fk->n] = client_col(t, (const char *) sqlite3_column_text(st, 2));
		fk->pcol[fk->n] = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL :
			xstrdup((const char *) sqlite3_column_text(st, 3));
		fk->n++;
	}
	sqlite3_finalize(st);
	for (int i = 0; i < t->nfks; i++)
	{
		ClientFk   *fk = &t->fks[i];
		bool		ok = true;

		if (fk->pcol[0] == NULL)
		{
			/* REFERENCES parent: its primary key */
			char	  **pk;
			int			npk = parent_key(cl, fk->parent, &pk);

			for (int c = 0; c < fk->n; c++)
				fk->pcol[c] = c < npk ? xstrdup(pk[c]) : NULL;
			for (int c = 0; c < npk; c++)
				free(pk[c]);
			free(pk);
			ok = npk == fk->n;
		}
		for (int c = 0; c < fk->n; c++)
			ok = ok && fk->col[c] >= 0 && fk->pcol[c] != NULL;
		if (ok)
			fk->probe = fk_probe(cl, t, fk);
		else if (namemap_find(&cl->fk_warned, t->name) < 0)
			logmsg(LOG_WARNING, "client \"%s\": a foreign key of table \"%s\" to \"%s\" does not name its columns as the tables have them: the hub's changes are not checked against it",
				   cl->path, t->name, fk->parent);
		if (fk->probe == NULL)
		{
			left_out = true;
			/* left out */
			free(fk->parent);
			for (int c = 0; c < fk->n; c++)
				free(fk->pcol[c]);
			free(fk->pcol);
			free(fk->col);
			t->fks[i--] = t->fks[--t->nfks];
		}
	}
	/* said once per table and run */
	if (left_out && namemap_find(&cl->fk_warned, t->name) < 0)
		namemap_add(&cl->fk_warned, t->name, NULL);
	*n = t->nfks;
	return t->fks;
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

/*
 * If the schema moved since the last look (or this is the first), bring
 * capture up to date with it: sync_repair() rewrites stale or missing
 * triggers (a table renamed or rebuilt) and records the columns that went;
 * the tables are read again. In a write transaction taken first (a read
 * upgraded to a write could not wait for the app). Returns how many tables
 * it repaired, or -1 with err.
 */
int
client_follow_schema(Client *cl, char *err, size_t errlen)
{
	int			rc;
	int64_t		sv = client_query_int(cl->db, "PRAGMA schema_version", &rc),
				repaired;

	if (rc != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "PRAGMA schema_version");
		return -1;
	}
	if (sv == cl->schema_version)
		return 0;
	/*
	 * sync_repair() also queues what the app wrote to a rebuilt table
	 * before the triggers were back (by the row sums); syncq_sums_watch()
	 * keeps the sums of the rows syncqd itself writes (temporary triggers
	 * of this connection, made again for the tables' shapes now).
	 */
	if (client_write_call(cl, "SELECT sync_repair(), syncq_sums_watch()", "sync_repair()", &repaired, 1, err, errlen) < 0)
		return -1;
	if (repaired > 0)
		logmsg(LOG_INFO, "the schema of \"%s\" changed: capture of %" PRId64 " tables brought up to date",
			   cl->path, repaired);
	client_reset_cache(cl);
	/* the repair moved it again, if it rewrote a trigger */
	cl->schema_version = client_query_int(cl->db, "PRAGMA schema_version", &rc);
	if (rc != SQLITE_OK)
	{
		client_db_err(err, errlen, cl, "PRAGMA schema_version");
		return -1;
	}
	return (int) repaired;
}

/* ---- positions ---------------------------------------------------------- */

int
client_get_up(Client *cl, int64_t *seq, uint64_t *digest)
{
	char	   *s = client_state_get(cl, "up_seq"),
			   *d = client_state_get(cl, "up_digest");

	*seq = s ? strtoll(s, NULL, 10) : 0;
	*digest = d ? strtoull(d, NULL, 16) : 0;
	free(s);
	free(d);
	return 0;
}

char *
client_get_down(Client *cl)
{
	return client_state_get(cl, "down_snapshot");
}

/*
 * A download cut short: *target (malloc'd) is the snapshot it was going to,
 * *done the greatest seq applied of it; NULL and 0 if none.
 */
void
client_get_down_partial(Client *cl, char **target, int64_t *done)
{
	char	   *d = client_state_get(cl, "down_done");

	*target = client_state_get(cl, "down_target");
	*done = d ? strtoll(d, NULL, 10) : 0;
	free(d);
	if (*target == NULL)
		*done = 0;
}

