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
 *                          queue rows deleted, position stored
 */
#include "base/base.h"
#include "client/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

/* Transaction boundaries the watch saw, kept for splitting uploads. */
#define BOUNDS_MAX 65536

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

		if (page->n >= max)
		{
			/*
			 * A hub transaction ends between two local ones, and not before
			 * a later change of a row it holds: that change's transaction
			 * wrote the row the fill read for both.
			 */
			bool		ends = (txid != cl->pending_txid ||
								client_is_boundary(cl, page->c[page->n - 1].seq)) &&
				cl->pending_reach < sqlite3_column_int64(st, 0);

			/* stop here; this row starts the next page */
			*boundary = ends;
			if (ends)
				cl->pending_reach = 0;
			cl->pending_held = true;
			break;
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
						strcmp((const char *) sqlite3_column_text(st, 6), SYNCQ_PRIORITY_IMMEDIATE) == 0,
						err, errlen) < 0)
		{
			page->n--;
			return -1;
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
 * The hub acknowledged this node's changes after from_seq up to up_seq:
 * rename the rows the hub gave new keys (keys.c), remember their versions,
 * delete them from the queue, store the position — one transaction. A long
 * upload is acknowledged in several of these (one per page), so the app
 * never waits long for its write lock; one with renames, in one.
 */
int
client_ack_upload(Client *cl, int64_t from_seq, int64_t up_seq, uint64_t up_digest,
				  const KeyRename *renames, int nrenames, char *err, size_t errlen)
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

	if (client_exec(cl, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (client_rename_keys(cl, renames, nrenames, err, errlen) < 0)
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
	return client_exec(cl, "COMMIT", err, errlen);
fail:
	sqlite3_exec(cl->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

