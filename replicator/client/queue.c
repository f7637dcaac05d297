/*
 * queue.c — this node's pending changes, read from sync_queue for an
 * upload and deleted once the hub has them (client.h).
 *
 *   client_fill_queue      read the queued changes' rows from their tables
 *                          first (sync_fill(), a part at a time)
 *   client_pending_open    a read transaction over the changes after a seq
 *   client_pending_next    the next page, and whether a transaction ends there
 *   client_pending_more    rows not returned yet?
 *   client_pending_close   end the read
 *   client_note_boundary   a seq the watch saw end a transaction
 *   client_is_boundary     ... and whether one did
 *   client_ack_upload      the hub has changes up to a seq: versions kept,
 *                          queue rows deleted, position stored; those it
 *                          set aside as meeting another record kept in
 *                          sync_errors (keep_met)
 */
#include "base/base.h"
#include "base/encode.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

/* Transaction boundaries the watch saw, kept for splitting uploads. */
#define BOUNDS_MAX 65536

static void note_malformed(Client *cl, int64_t seq, const char *why);

/* Queued changes read from their tables per transaction (sync_fill(n)). */
#define FILL_PART_S "5000"

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
 * The rows changed more than once in what is to be shipped, with the seq of
 * their last change (fill_again): a hub transaction must not end between
 * two changes of one of them, since the fill read the row as the later
 * change's transaction left it.
 */
static int
note_changed_again(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "SELECT table_name, pk, max(seq) FROM sync_queue"
								   " WHERE origin = ?1 AND seq <= ?2 AND (op = 'D' OR row_data IS NOT NULL)"
								   " GROUP BY table_name, pk HAVING count(*) > 1", err, errlen);
	int			rc;

	vermap_free(&cl->fill_again);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, cl->node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cl->fill_upto);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
	{
		char	   *k = row_key((const char *) sqlite3_column_text(st, 0),
								(const char *) sqlite3_column_text(st, 1));
		Version		last = {sqlite3_column_int64(st, 2), "", true};

		vermap_put(&cl->fill_again, k, &last);
		free(k);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_queue");
		return -1;
	}
	return 0;
}

/*
 * Queue rows written since the last fill whose key or row is no JSON at
 * all (written by hand or by a broken tool): set aside before anything
 * reads them with SQLite's JSON functions, which would stop at them (the
 * pending read sets aside the rest of what it cannot ship).
 */
static int
sweep_malformed(Client *cl, char *err, size_t errlen)
{
	sqlite3_stmt *st = client_prep(cl, "SELECT q.seq, CASE WHEN json_valid(q.pk) THEN 'bad row JSON' ELSE 'bad pk JSON' END"
								   "  FROM sync_queue q, syncq_state s WHERE q.seq > s.filled_upto"
								   "   AND NOT (json_valid(q.pk) AND (q.row_data IS NULL OR json_valid(q.row_data)))",
								   err, errlen);
	int			rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		note_malformed(cl, sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_queue");
		return -1;
	}
	return client_set_aside_malformed(cl, INT64_MAX, err, errlen);
}

/*
 * Before the queue is read: follow the schema (first call: first), then read
 * the rows of the queued changes from their tables into the queue
 * (sync_fill(): the capture triggers queue the key only,
 * docs/sqlite_capture.md), FILL_PART_S of them, in a transaction of its own.
 * Returns 1 if more are to be read (call again after a pause, so that the
 * app is not kept waiting), 0 when the queue is read up to where it ended
 * at the first call, -1 with err. The pending read goes no further than
 * the fill did, so every change it ships carries its row, the same row if
 * it is sent again.
 */
int
client_fill_queue(Client *cl, bool first, char *err, size_t errlen)
{
	int64_t		v[2];

	if (first)
	{
		if (client_follow_schema(cl, err, errlen) < 0 ||
			sweep_malformed(cl, err, errlen) < 0 ||
			client_forget_unshipped(cl, err, errlen) < 0)
			return -1;
		cl->fill_goal = -1;
	}
	if (client_write_call(cl, "SELECT sync_fill(" FILL_PART_S "), (SELECT coalesce(max(seq), 0) FROM sync_queue)",
						  "sync_fill()", v, 2, err, errlen) < 0)
		return -1;
	cl->fill_upto = v[0];
	if (cl->fill_goal < 0)
		cl->fill_goal = v[1];
	if (cl->fill_upto < cl->fill_goal)
		return 1;
	return note_changed_again(cl, err, errlen);
}

/*
 * The offset of the first byte of s[0..n) that is not UTF-8, or -1 if all
 * are. SQLite keeps an app's text as the app gave it, and its JSON
 * functions copy it so; the hub takes UTF-8 only, and an upload it refuses
 * would stop every change behind it.
 */
static long
not_utf8_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n;)
	{
		size_t		k = (unsigned char) s[i] < 0x80 ? 1 : utf8_seq_len((const unsigned char *) s + i, n - i);

		if (k == 0)
			return (long) i;
		i += k;
	}
	return -1;
}

/*
 * Are the table name, key and row text of the pending row at st all
 * UTF-8? If not, why says where, as change_init says what else is wrong
 * with them. (The hub cannot even set such a change aside: its
 * sync_errors takes UTF-8 only, and the whole upload would fail there.)
 */
static bool
all_utf8(sqlite3_stmt *st, char *why, size_t whylen)
{
	static const struct
	{
		int			col;
		const char *what;
	}			parts[] = {{1, "table name"}, {3, "pk JSON"}, {4, "row JSON"}};

	for (int k = 0; k < 3; k++)
	{
		const char *text = (const char *) sqlite3_column_text(st, parts[k].col);
		long		at = text ? not_utf8_at(text, (size_t) sqlite3_column_bytes(st, parts[k].col)) : -1;

		if (at >= 0)
		{
			snprintf(why, whylen, "bad %s (text that is not UTF-8 at offset %ld)", parts[k].what, at);
			return false;
		}
	}
	return true;
}

/*
 * A queue row the pending read cannot ship: malformed (written by hand or
 * by a broken tool, never by the capture), or holding a value of the app's
 * that syncq cannot send (text that is not UTF-8, all_utf8; a NUL, which
 * jobj_parse refuses as \u0000). Remembered with why, to be set aside in
 * sync_errors (client_set_aside_malformed) instead of stopping every
 * upload behind it.
 */
static void
note_malformed(Client *cl, int64_t seq, const char *why)
{
	for (int i = 0; i < cl->nmalformed; i++)
		if (cl->malformed[i] == seq)
			return;
	cl->malformed = xrealloc(cl->malformed, sizeof(int64_t) * (size_t) (cl->nmalformed + 1));
	cl->malformed_why = xrealloc(cl->malformed_why, sizeof(char *) * (size_t) (cl->nmalformed + 1));
	cl->malformed[cl->nmalformed] = seq;
	cl->malformed_why[cl->nmalformed++] = xstrdup(why);
}

/*
 * Set aside the queue rows noted as not to be shipped (note_malformed), up
 * to seq upto, in sync_errors: hub_seq is minus their queue seq (so they are
 * never tried as hub changes), ver_us 0, the error says why; and take them out of
 * the queue, where the key renames' JSON functions would stop at them (the
 * newest row, which the queue keeps, is emptied: docs/queue.md). In the
 * caller's transaction (an acknowledgement), or in one of its own.
 */
int
client_set_aside_malformed(Client *cl, int64_t upto, char *err, size_t errlen)
{
	static const char *const steps[] = {
		"INSERT INTO sync_errors(table_name, op, pk, row_data, changed_at, ver_us, origin,"
		" priority, hub_seq, error, first_failed, last_failed)"
		" SELECT ifnull(table_name, ''), ifnull(op, ''), ifnull(pk, ''), row_data,"
		"        ifnull(changed_at, ''), 0, ifnull(origin, ''), ifnull(priority, ''), -seq, ?2,"
		"        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
		"   FROM sync_queue WHERE seq = ?1"
		"    AND NOT EXISTS (SELECT 1 FROM sync_errors WHERE hub_seq = -?1)",
		"UPDATE sync_queue SET table_name = '', op = 'U', pk = '{}', row_data = NULL, origin = ''"
		" WHERE seq = ?1",
		"DELETE FROM sync_queue WHERE seq = ?1",
	};
	sqlite3_stmt *st[3] = {NULL, NULL, NULL};
	bool		own = sqlite3_get_autocommit(cl->db);
	int			kept = 0,
				rc = -1;

	if (cl->nmalformed == 0)
		return 0;
	if (own && client_begin_write(cl, err, errlen) < 0)
		return -1;
	for (int k = 0; k < 3; k++)
		if ((st[k] = client_prep(cl, steps[k], err, errlen)) == NULL)
			goto out;
	for (int i = 0; i < cl->nmalformed; i++)
	{
		char		why[600];
		int64_t		seq = cl->malformed[i];

		if (seq > upto)
			continue;
		snprintf(why, sizeof(why), "this node's queue row %" PRId64 " cannot be sent: %s", seq,
				 cl->malformed_why[i]);
		for (int k = 0; k < 3; k++)
		{
			sqlite3_bind_int64(st[k], 1, seq);
			if (k == 0)
				sqlite3_bind_text(st[k], 2, why, -1, SQLITE_STATIC);
			if (sqlite3_step(st[k]) != SQLITE_DONE)
			{
				client_db_err(err, errlen, cl, "setting a queue row that cannot be sent aside in sync_errors");
				goto out;
			}
			sqlite3_reset(st[k]);
			if (k == 0 && sqlite3_changes(cl->db) > 0)
				logmsg(LOG_WARNING, "%s; set aside in sync_errors", why);
		}
	}
	/* (on an error they stay listed; the next read lists them again anyway) */
	for (int i = 0; i < cl->nmalformed; i++)
	{
		if (cl->malformed[i] <= upto)
		{
			free(cl->malformed_why[i]);
			continue;
		}
		cl->malformed[kept] = cl->malformed[i];
		cl->malformed_why[kept++] = cl->malformed_why[i];
	}
	cl->nmalformed = kept;
	rc = 0;
out:
	for (int k = 0; k < 3; k++)
		sqlite3_finalize(st[k]);
	if (own)
	{
		if (rc == 0)
			rc = client_commit_write(cl, err, errlen);
		else
			client_rollback_write(cl);
	}
	return rc;
}

/*
 * Read this node's pending changes a page at a time, in seq order, inside
 * one read transaction: every SQLite transaction is wholly in or out. Only
 * rows the last client_fill_queue() covered are read; a change it could
 * not read a row for (its table is gone) is not shipped.
 */
int
client_pending_open(Client *cl, int64_t after_seq, char *err, size_t errlen)
{
	if (client_exec(cl, "BEGIN", err, errlen) < 0)
		return -1;
	/*
	 * Rows at or below the acknowledged seq are on the hub already; the
	 * capture keeps the newest queue row (so its seq is never reused), which
	 * may be one of them.
	 */
	cl->pending = client_prep(cl, "SELECT seq, table_name, op, pk, row_data, changed_at, priority, txid"
							  " FROM sync_queue WHERE origin = ?1 AND seq > ?2 AND seq <= ?3"
							  " AND (op = 'D' OR row_data IS NOT NULL) ORDER BY seq", err, errlen);
	if (cl->pending == NULL)
	{
		sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	sqlite3_bind_text(cl->pending, 1, cl->node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(cl->pending, 2, after_seq);
	sqlite3_bind_int64(cl->pending, 3, cl->fill_upto);
	cl->pending_done = false;
	cl->pending_held = false;
	cl->pending_txid = -1;
	cl->pending_reach = 0;
	{
		char	   *h = client_state_get(cl, "up_hub_seq");

		cl->pending_hub_seq = h ? strtoll(h, NULL, 10) : 0;
		free(h);
	}
	return 0;
}

/*
 * About max pending changes into page (emptied first); 0 at the end.
 * *boundary: the page ends where a transaction ends (the queue's end, the
 * next row has another txid, or a seq the watch saw as the last of the
 * queue), so what was read so far may go to the hub as one transaction.
 * Otherwise (a local transaction larger than a page, or rows of a
 * connection that did not load syncq, which have no txid, so that between
 * two of them there is no telling but the watch's) the next page goes on
 * in the same hub transaction: a page never holds more than max changes,
 * which bounds syncqd's memory (a page's rows are parsed, about 1.8 kB a
 * change for four columns).
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
		char		why[256];

		if (page->n >= max)
		{
			/*
			 * A hub transaction ends between two local ones, and not before
			 * a later change of a row it holds: that change's transaction
			 * wrote the row the fill read for both.
			 */
			bool		ends = (txid != cl->pending_txid ||
								client_is_boundary(cl, page->c[page->n - 1].seq)) &&
				cl->pending_reach < sqlite3_column_int64(st, 0) &&
				page->c[page->n - 1].seq >= cl->pending_hub_seq;

			/* stop here; this row starts the next page */
			*boundary = ends;
			if (ends)
				cl->pending_reach = 0;
			cl->pending_held = true;
			break;
		}
		if (instant_us(st, 5, &us) < 0)
		{
			snprintf(why, sizeof(why), "bad changed_at \"%.100s\"", (const char *) sqlite3_column_text(st, 5));
			note_malformed(cl, sqlite3_column_int64(st, 0), why);
			continue;
		}
		if (!all_utf8(st, why, sizeof(why)))
		{
			note_malformed(cl, sqlite3_column_int64(st, 0), why);
			continue;
		}
		c = changes_push(page);
		if (change_init(c, sqlite3_column_int64(st, 0), (const char *) sqlite3_column_text(st, 1),
						(const char *) sqlite3_column_text(st, 2), (const char *) sqlite3_column_text(st, 3),
						(const char *) sqlite3_column_text(st, 4), us, cl->node_id,
						sqlite3_column_type(st, 6) == SQLITE_TEXT &&
						strcmp((const char *) sqlite3_column_text(st, 6), SYNCQ_PRIORITY_IMMEDIATE) == 0,
						err, errlen) < 0)
		{
			const char *cause = strstr(err, "\": ");

			page->n--;
			/* (change_init's "change N of "t": " says again what the row says) */
			note_malformed(cl, sqlite3_column_int64(st, 0), strncmp(err, "change ", 7) == 0 && cause ? cause + 3 : err);
			err[0] = '\0';
			continue;
		}
		cl->pending_txid = txid;
		if (cl->fill_again.n > 0)
		{
			char	   *k = row_key((const char *) sqlite3_column_text(st, 1),
									(const char *) sqlite3_column_text(st, 3));
			const Version *last = vermap_get(&cl->fill_again, k);

			free(k);
			if (last && last->us > cl->pending_reach)
				cl->pending_reach = last->us;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
	{
		client_db_err(err, errlen, cl, "reading sync_queue");
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

/*
 * The changes after from_seq up to up_seq that the hub set aside because
 * their key met another record (met[0..nmet), in seq order): kept in
 * sync_errors as this node's queue holds them (as sent, renamed by the
 * renames of this acknowledgement), hub_seq minus their seq, ver_us their
 * version (a queue row that could not be sent has 0), the hub's message
 * (docs/replication.md, "Keys the app sets"). client_settle_met lets each
 * go once the hub's copy of it is gone. In the acknowledgement's
 * transaction, before the queue rows go.
 */
static int
keep_met(Client *cl, int64_t from_seq, int64_t up_seq, const MetChange *met, int nmet,
		 char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int			rc = 0;

	for (int i = 0; i < nmet && rc == 0; i++)
	{
		if (met[i].seq <= from_seq || met[i].seq > up_seq)
			continue;
		if (st == NULL &&
			(st = client_prep(cl, "INSERT INTO sync_errors(table_name, op, pk, row_data, changed_at, ver_us,"
							  " origin, priority, hub_seq, error, first_failed, last_failed)"
							  " SELECT table_name, op, pk, row_data, changed_at, syncqd_us(changed_at), origin,"
							  "        ifnull(priority, '" SYNCQ_PRIORITY_BATCHED "'), -seq, ?3,"
							  "        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
							  "   FROM sync_queue WHERE seq = ?1 AND origin = ?2"
							  "    AND NOT EXISTS (SELECT 1 FROM sync_errors WHERE hub_seq = -?1)",
							  err, errlen)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, met[i].seq);
		sqlite3_bind_text(st, 2, cl->node_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, met[i].error, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
		{
			client_db_err(err, errlen, cl, "keeping a change the hub set aside in sync_errors");
			rc = -1;
		}
		else if (sqlite3_changes(cl->db) > 0)
			logmsg(LOG_INFO, "change %" PRId64 ", set aside on the hub, is kept in this file's sync_errors too (hub_seq -%" PRId64 ")",
				   met[i].seq, met[i].seq);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The hub acknowledged this node's changes after from_seq up to up_seq:
 * rename the rows the hub gave new keys (keys.c), keep the changes it set
 * aside because their key met another record (keep_met), remember their
 * versions, delete them from the queue, store the position — one
 * transaction. A long upload is acknowledged in several of these (one per
 * page), so the app never waits long for its write lock; one with
 * renames, in one.
 */
int
client_ack_upload(Client *cl, int64_t from_seq, int64_t up_seq, uint64_t up_digest,
				  int64_t hub_seq, const KeyRename *renames, int nrenames, const MetChange *met, int nmet,
				  char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char		num[32],
				dig[32];
	static const char *const steps[] = {
		"INSERT INTO sync_versions(table_name, pk, ver_us, ver_origin, deleted)"
		" SELECT table_name, syncqd_canon(pk), syncqd_us(changed_at), origin, op = 'D'"	/* SYNCQ_OP_DELETE */
		"   FROM sync_queue WHERE origin = ?1 AND seq <= ?2 AND seq > ?3 ORDER BY seq"
		" ON CONFLICT(table_name, pk) DO UPDATE"
		" SET ver_us = excluded.ver_us, ver_origin = excluded.ver_origin, deleted = excluded.deleted"
		" WHERE (ver_us, ver_origin) <= (excluded.ver_us, excluded.ver_origin)",
		"DELETE FROM sync_queue WHERE origin = ?1 AND seq <= ?2",
	};

	if (client_begin_write(cl, err, errlen) < 0)
		return -1;
	if (client_set_aside_malformed(cl, up_seq, err, errlen) < 0 ||
		client_rename_keys(cl, renames, nrenames, err, errlen) < 0 ||
		keep_met(cl, from_seq, up_seq, met, nmet, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
	{
		st = client_prep(cl, steps[i], err, errlen);
		if (st == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, cl->node_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, up_seq);
		if (i == 0)
			sqlite3_bind_int64(st, 3, from_seq);
		if (sqlite3_step(st) != SQLITE_DONE)
		{
			client_db_err(err, errlen, cl, "acknowledging uploaded changes");
			sqlite3_finalize(st);
			goto fail;
		}
		sqlite3_finalize(st);
	}
	snprintf(num, sizeof(num), "%" PRId64, up_seq);
	snprintf(dig, sizeof(dig), "%016" PRIx64, up_digest);
	if (client_state_set(cl, "up_seq", num, err, errlen) < 0 ||
		client_state_set(cl, "up_digest", dig, err, errlen) < 0)
		goto fail;
	/* where the hub stands: a re-sent upload ends no earlier (pending_next) */
	snprintf(num, sizeof(num), "%" PRId64, hub_seq > up_seq ? hub_seq : up_seq);
	if (client_state_set(cl, "up_hub_seq", num, err, errlen) < 0)
		goto fail;
	return client_commit_write(cl, err, errlen);
fail:
	client_rollback_write(cl);
	return -1;
}

