/*
 * sync.c — one full sync between a client file and the hub, over a Link:
 * up (local changes to the hub), then down (the hub's changes, or a first
 * sync). docs/replication.md is the model.
 *
 *   sync_once         one full sync
 *   sync_stats_text   what it did, for the log line
 */
#include "base/base.h"
#include "client/client.h"
#include "link/link.h"
#include "sync/sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An upload a hub transaction overtook is sent again, this often at most. */
#define OVERTAKEN_TRIES 5

/*
 * A download is applied in parts: a part ends at the first clean cut after
 * DOWN_PART rows, or once syncqd has held the file's write lock long enough
 * (client_pace_due); the lock is then left alone for a pause longer than
 * the sleeps of SQLite's busy handler, in which the app waits, before the
 * next part (client.c, client_begin_write). The app waits at most about
 * one such hold and one sleep.
 */
#define DOWN_PART 5000

/*
 * Between the short write transactions of an upload (reading rows into the
 * queue, acknowledging what the hub committed: a few ms each), a shorter
 * pause while the app writes to the file (client_app_writes): the lock is
 * free most of the time anyway. While it does not, none: the pacing
 * (client_begin_write) still pauses once syncqd held the lock a while.
 */
#define SHORT_PAUSE_US 25000

/*
 * End a part of a download at a clean cut: commit what is applied with the
 * position it reaches (target, last). 0, 1 if a stop was asked for (the
 * download ends here), -1 on error.
 */
static int
end_part(Client *cl, const char *target, int64_t last, char *err, size_t errlen)
{
	if (client_commit_apply(cl, NULL, target, last, err, errlen) < 0)
		return -1;
	return stop_requested ? 1 : 0;
}

static void
load_hub_types(Link *l, HubTypes *ht)
{
	for (int i = 0; i < l->ntables; i++)
		for (int c = 0; c < l->tables[i].ncols; c++)
			hubtypes_add(ht, l->tables[i].name, l->tables[i].cols[c], l->tables[i].types[c]);
}

/*
 * Was the upload rolled back on the hub because a hub transaction or
 * another upload overtook it (l->overtaken)? Then it is sent again at once,
 * up to OVERTAKEN_TRIES times in one sync; err is logged and cleared.
 */
static bool
send_again(Link *l, int *tries, char *err)
{
	if (!l->overtaken || ++*tries > OVERTAKEN_TRIES || stop_requested)
		return false;
	logmsg(LOG_INFO, "%s", err);
	err[0] = '\0';
	return true;
}

/*
 * Up: send pending local changes to the hub, a page at a time. A hub
 * transaction ends, and what it covers is acknowledged here, wherever a
 * page ends between two local transactions: a long backlog makes progress
 * that survives a crash or a lost link, and the app never waits long for
 * the acknowledgement's write lock. (Rows of plain connections carry no
 * txid; a run of them stays in one hub transaction.)
 */
static int
sync_up(Link *l, Client *cl, const HubTypes *types, SyncStats *st, char *err, size_t errlen)
{
	ChangeList	page = {0};
	int			overtaken = 0;

	/* read the queued changes' rows from their tables, a part at a time */
	for (int rc = client_fill_queue(cl, true, err, errlen); rc != 0;
		 rc = client_fill_queue(cl, false, err, errlen))
	{
		if (rc < 0)
			return -1;
		if (client_app_writes(cl))
			nap_us(SHORT_PAUSE_US);	/* let a waiting app in */
	}
	for (;;)
	{
		int64_t		ack_seq;
		uint64_t	ack_digest;
		UploadStats us = {0};
		bool		boundary,
					more,
					resend = false;
		int			n;

		client_respell_clear(cl);
		client_get_up(cl, &ack_seq, &ack_digest);
		if (client_pending_open(cl, ack_seq, err, errlen) < 0)
			return -1;
		n = client_pending_next(cl, &page, UPLOAD_PAGE, &boundary, err, errlen);
		if (n > 0)
			client_respell_note(cl, &page, types);
		if (n <= 0)
		{
			/* nothing (more) to send, or a read error */
			changes_free(&page);
			client_pending_close(cl);
			/* malformed rows at the queue's end: set aside */
			if (n == 0 && client_set_aside_malformed(cl, INT64_MAX, err, errlen) < 0)
				return -1;
			return n;
		}
		l->overtaken = false;
		if (l->ops->up_begin(l, client_node_id(cl), ack_seq, ack_digest, now_us(), err, errlen) < 0)
		{
			st->clone = l->clone;
			if (send_again(l, &overtaken, err))
			{
				client_pending_close(cl);
				changes_free(&page);
				continue;		/* rolled back on the hub: send it again */
			}
			goto fail;
		}
		for (;;)
		{
			st->pending += n;
			if (l->ops->up_chunk(l, &page, err, errlen) < 0)
			{
				st->clone = l->clone;
				if (!send_again(l, &overtaken, err))
					goto fail;
				resend = true;
				break;
			}
			if (boundary)
				break;
			n = client_pending_next(cl, &page, UPLOAD_PAGE, &boundary, err, errlen);
			if (n < 0)
			{
				l->ops->abort(l);
				goto fail;
			}
			client_respell_note(cl, &page, types);
		}
		more = client_pending_more(cl);
		client_pending_close(cl);
		changes_free(&page);
		if (resend)
			continue;			/* rolled back on the hub: send it again */
		if (l->ops->up_end(l, &us, err, errlen) < 0)
		{
			st->clone = us.clone;
			if (send_again(l, &overtaken, err))
				continue;		/* rolled back on the hub: send it again */
			return -1;
		}
		st->up_applied += us.applied;
		st->up_conflicts += us.conflicts;
		st->up_skipped += us.skipped;
		st->up_parked += us.parked;
		for (int i = 0, acks = 0; i < l->nmarks; i++)
		{
			const UploadMark *m = &l->marks[i];

			/* rows the hub renamed: the whole upload in one acknowledgement */
			if (m->seq <= ack_seq || (l->nrenames > 0 && i < l->nmarks - 1))
				continue;
			if (acks++ > 0 && client_app_writes(cl))
				nap_us(SHORT_PAUSE_US);	/* let a waiting app in */
			if (client_ack_upload(cl, ack_seq, m->seq, m->digest, l->marks[l->nmarks - 1].seq,
								  l->renames, l->nrenames,
								  l->met, l->nmet, err, errlen) < 0)
				return -1;
			st->renamed += l->nrenames;
			ack_seq = m->seq;
			/* this node's values, spelt as the hub's reach the others */
			if (client_respell_apply(cl, ack_seq, types, err, errlen) < 0)
			{
				logmsg(LOG_WARNING, "values keep the app's spelling: %s", err);
				err[0] = '\0';
			}
		}
		logmsg(LOG_DEBUG, "upload up to seq %" PRId64 " committed on the hub and acknowledged here", ack_seq);
		if (!more || stop_requested)
			/* malformed rows after the last change sent: set aside */
			return client_set_aside_malformed(cl, INT64_MAX, err, errlen);
	}
fail:
	client_pending_close(cl);
	changes_free(&page);
	return -1;
}

/*
 * This node's changes its sync_errors keeps while the hub holds them set
 * aside (their key met another record: client_ack_upload) leave once the
 * hub's copy is gone (client_settle_met). Asked only while there are some;
 * a failure is logged, and the next sync asks again.
 */
static void
settle_met(Link *l, Client *cl)
{
	int64_t    *seqs = NULL;
	bool	   *held = NULL;
	char		err[1024];
	int			n = client_met_seqs(cl, &seqs, err, sizeof(err));

	if (n > 0)
	{
		held = xcalloc((size_t) n, sizeof(bool));
		if (l->ops->held(l, client_node_id(cl), seqs, n, held, err, sizeof(err)) < 0)
			n = -1;
		else
			n = client_settle_met(cl, seqs, held, n, err, sizeof(err));
	}
	if (n < 0)
		logmsg(LOG_WARNING, "this node's changes the hub set aside: which it holds still, unknown: %s", err);
	free(held);
	free(seqs);
}

/*
 * Every tracked hub table must exist on the client with every hub column
 * (stored or generated here: a generated one is computed by SQLite; the
 * hub's own generated columns are not shipped at all).
 */
static int
check_client_schema(Link *l, Client *cl, char *err, size_t errlen)
{
	for (int i = 0; i < l->ntables; i++)
	{
		const HubTable *ht = &l->tables[i];
		ClientTable *t = client_table(cl, ht->name);

		if (t == NULL)
		{
			snprintf(err, errlen, "first sync: table \"%s\" is tracked on the hub but does not exist in \"%s\"; create it with the hub's columns",
					 ht->name, cl->path);
			return -1;
		}
		for (int c = 0; c < ht->ncols; c++)
			if (client_col(t, ht->cols[c]) < 0 && !client_col_generated(t, ht->cols[c]))
			{
				snprintf(err, errlen, "first sync: column \"%s\" of table \"%s\" exists on the hub but not in \"%s\"",
						 ht->cols[c], ht->name, cl->path);
				return -1;
			}
	}
	return 0;
}

/*
 * Say in the log how far this machine's clock is off the hub's, when it is
 * more than a second (the hub's clock of the snapshot step against ours
 * as the reply came: good to the round trip). The hub re-stamps a change
 * stamped too far ahead by it (docs/replication.md, Clock skew).
 */
/*
 * "1 h 02 min ahead of the hub" (status JSON, status page and log); within
 * a second: "in step with the hub".
 */
void
sync_clock_text(int64_t off, char *buf, size_t len)
{
	int64_t		a = off < 0 ? -off : off;

	if (a < 1000000)
		snprintf(buf, len, "in step with the hub");
	else if (a < 60000000)
		snprintf(buf, len, "%" PRId64 " s %s the hub", a / 1000000, off > 0 ? "ahead of" : "behind");
	else
		snprintf(buf, len, "%" PRId64 " h %02" PRId64 " min %s the hub",
				 a / 3600000000, a / 60000000 % 60, off > 0 ? "ahead of" : "behind");
}

static void
log_clock_offset(const Link *l, SyncStats *st)
{
	int64_t		off,
				a;
	if (l->hub_clock_us == 0)
		return;
	/* against the hub's wall clock: its clock may stand ahead of it, by a
	 * version kept within max_offset (docs/replication.md) */
	off = now_us() - (l->hub_wall_us != 0 ? l->hub_wall_us : l->hub_clock_us);
	st->clock_known = true;
	st->clock_offset_us = off;
	a = off < 0 ? -off : off;
	if (a < 1000000)
		return;
	logmsg(LOG_INFO, "this machine's clock is %" PRId64 " h %02" PRId64 " min %02" PRId64 " s %s the hub's",
		   a / 3600000000, a / 60000000 % 60, a / 1000000 % 60, off > 0 ? "ahead of" : "behind");
}

/*
 * First sync: the hub's tracked tables replace ours, in SQLite transactions
 * of DOWN_PART rows or a hold of the write lock at most, a pause apart, as
 * a download's, so that an app writing to the file waits for one part at
 * most (docs/replication.md, First sync). The first part
 * empties the tables and remembers the snapshot (first_snapshot: the
 * position the first sync ends at, whatever snapshot the rows were then
 * read in) and each part the table it is in (first_table). A first sync
 * cut short (a crash, a lost link) goes on from the start of that table,
 * writing over the rows it wrote (no table is emptied again: the app's
 * rows since are kept); rows read in a later snapshot than the position
 * are no harm, as the changes after the position are applied next, in
 * order. The last part is left open, first_* gone, for the caller to
 * commit with *stored (malloc'd), the position.
 */
static int
sync_first(Link *l, Client *cl, const HubTypes *types, const char *snap, char **stored, SyncStats *st,
		   char *err, size_t errlen)
{
	LinkPage	page = {0};
	char	   *resume = client_state_get(cl, "first_snapshot"),
			   *at = client_state_get(cl, "first_table");
	int			from = 0,
				in_part = 0;

	*stored = NULL;
	if (check_client_schema(l, cl, err, errlen) < 0 ||
		client_begin_apply(cl, err, errlen) < 0)
		goto out;
	if (resume == NULL)
	{
		/* what was set aside is in the hub's tables as they are now, or moot */
		if (client_forget_errors(cl, err, errlen) < 0 ||
			client_state_set(cl, "first_snapshot", snap, err, errlen) < 0)
			goto fail;
		for (int i = 0; i < l->ntables; i++)
			if (client_clear_table(cl, client_table(cl, l->tables[i].name), err, errlen) < 0)
				goto fail;
	}
	else
	{
		for (int i = 0; at && i < l->ntables; i++)
			if (strcmp(l->tables[i].name, at) == 0)
				from = i;
		logmsg(LOG_INFO, "going on with the first sync cut short, from table \"%s\"", l->tables[from].name);
	}
	for (int i = from; i < l->ntables; i++)
	{
		const HubTable *ht = &l->tables[i];
		ClientTable *t = client_table(cl, ht->name);

		if (client_state_set(cl, "first_table", ht->name, err, errlen) < 0 ||
			l->ops->rows_open(l, ht, err, errlen) < 0)
			goto fail;
		do
		{
			if (l->ops->rows_next(l, &page, err, errlen) < 0)
				goto fail;
			for (int r = 0; r < page.nrows; r++)
			{
				if (client_write_row(cl, t, false, &page.rows[r], types, err, errlen) < 0)
					goto fail;
				st->down_rows++;
				if (++in_part < DOWN_PART && !client_pace_due(cl))
					continue;
				/* a part ends: let a waiting app in (client_begin_apply pauses) */
				if (client_commit_apply(cl, NULL, NULL, 0, err, errlen) < 0 ||
					client_begin_apply(cl, err, errlen) < 0)
					goto out;
				in_part = 0;
			}
		} while (page.more);
		if (l->ops->rows_close(l, err, errlen) < 0)
			goto fail;
	}
	if (client_exec(cl, "DELETE FROM syncqd_state WHERE key IN ('first_snapshot', 'first_table')", err, errlen) < 0)
		goto fail;
	*stored = xstrdup(resume ? resume : snap);
	st->first_sync = true;
	goto out;
fail:
	client_rollback(cl);
out:
	link_page_free(&page);
	free(resume);
	free(at);
	return *stored ? 0 : -1;
}

/*
 * Down: the hub's changes after position pos up to snapshot target (after
 * seq done, when an earlier download was cut short), applied in SQLite
 * transactions of about DOWN_PART rows, so that the app never waits long
 * for the write lock. A part ends only where no hub transaction straddles
 * the cut (column 8: the last seq of the row's transaction), and stores
 * (target, its last seq) with what it applied. The last part's
 * transaction is left open for the caller to commit with the position. A
 * stop request ends the download after a part (*stopped).
 */
static int
sync_down_changes(Link *l, Client *cl, const char *pos, const char *target, int64_t done,
				  const HubTypes *types, const SyncOptions *o, SyncStats *st, bool *stopped,
				  char *err, size_t errlen)
{
	int64_t		last = done,	/* the last seq applied */
				reach = done;	/* the last seq of the transactions applied */
	int			in_part = 0;	/* rows in the open SQLite transaction */
	LinkPage	page = {0};

	*stopped = false;
	if (l->ops->changes_open(l, pos, target, done, client_node_id(cl), err, errlen) < 0)
		return -1;
	/* the file's write lock only if there is something to write */
	if (o->retry_client_errors && client_has_errors(cl))
	{
		if (client_begin_apply(cl, err, errlen) < 0)
			return -1;
		if (client_retry_errors(cl, types, &st->down_retried, err, errlen) < 0)
			goto fail;
	}
	do
	{
		/*
		 * A clean cut before the next page: commit what is applied, so that
		 * the app does not wait while the page comes (a page that ends
		 * inside a hub transaction, over HTTP too, holds the part open
		 * across it). Such a gap is no pause (client_pace_due):
		 * the next part pauses first if syncqd has held the lock long enough.
		 */
		if (in_part > 0 && reach <= last)
		{
			int			rc = end_part(cl, target, last, err, errlen);

			in_part = 0;
			if (rc != 0)
			{
				link_page_free(&page);
				*stopped = rc > 0;
				return rc > 0 ? 0 : -1;
			}
		}
		if (l->ops->changes_next(l, &page, err, errlen) < 0)
			goto fail;
		for (int r = 0; r < page.changes.n; r++)
		{
			Change	   *c = &page.changes.c[r];
			int			rc;

			if (in_part > 0 && reach <= last &&
				(in_part >= DOWN_PART || client_pace_due(cl)))
			{
				/* a clean cut: commit this part (the next one pauses first) */
				int			end = end_part(cl, target, last, err, errlen);

				in_part = 0;
				if (end != 0)
				{
					link_page_free(&page);
					*stopped = end > 0;
					return end > 0 ? 0 : -1;
				}
			}
			if (!client_in_apply(cl))
			{
				if (client_begin_apply(cl, err, errlen) < 0)
				{
					link_page_free(&page);
					return -1;
				}
			}
			rc = client_apply_change(cl, c, types, err, errlen);
			if (rc < 0)
				goto fail;
			if (rc == 2)
				st->down_parked++;
			else if (rc == 1)
				st->down_applied++;
			else if (rc == 0)
				st->down_conflicts++;
			/* 4, held for its parent: counted as it settles (take_settled) */
			st->down_rows++;
			in_part++;
			last = c->seq;
			if (page.txn_end[r] > reach)
				reach = page.txn_end[r];
		}
	} while (page.more);
	link_page_free(&page);
	return 0;
fail:
	link_page_free(&page);
	client_rollback(cl);
	return -1;
}

/*
 * The held changes (client_apply_change's 4) that settled as their parts
 * were committed, counted into st.
 */
static void
take_settled(Client *cl, SyncStats *st)
{
	int			applied,
				overruled,
				parked;

	client_take_settled(cl, &applied, &overruled, &parked);
	st->down_applied += applied;
	st->down_conflicts += overruled;
	st->down_parked += parked;
}

/*
 * The download of a sync: from position pos to the hub's snapshot snap, or
 * first to target if an earlier download to it was cut short. *stored is
 * the position stored at the end (for the hub's housekeeping).
 */
static int
sync_down(Link *l, Client *cl, const HubTypes *types, const SyncOptions *o, SyncStats *st,
		  const char *pos, const char *target, int64_t done, const char *snap,
		  const char **stored, char *err, size_t errlen)
{
	const char *from = pos,
			   *to = target ? target : snap;
	bool		stopped;

	*stored = pos;
	for (;;)
	{
		if (sync_down_changes(l, cl, from, to, done, types, o, st, &stopped, err, errlen) < 0)
			return -1;
		if (stopped)
		{
			st->stopped = true;
			return 0;			/* cut short: the position stays */
		}

		/*
		 * The new position is stored with what it covers. Nothing came: the
		 * old one is as good, and stays unless it is getting old (the hub
		 * prunes by where clients stand), so that an empty download writes
		 * nothing here.
		 */
		if (client_in_apply(cl) || to != snap || client_position_stale(cl))
		{
			if (client_commit_apply(cl, to, NULL, 0, err, errlen) < 0)
				return -1;
			*stored = to;
		}
		if (to == snap)
			return 0;
		/* that finished a download cut short; now on to the hub's snapshot */
		if (l->ops->changes_close(l, err, errlen) < 0)
			return -1;
		from = to;
		to = snap;
		done = 0;
	}
}

/*
 * One full sync. Upload failures do not stop the download (pending local
 * changes never block downloads), except a cloned node, which stops all.
 * A stop request after the upload skips the download (st->stopped).
 */
static int
sync_try(Link *l, Client *cl, const SyncOptions *o, SyncStats *st, char *err, size_t errlen)
{
	HubTypes	types = {0};
	char		uperr[1024] = "";
	char	   *pos = NULL,
			   *snap = NULL,
			   *first_pos = NULL,
			   *target = NULL;
	int64_t		done = 0;
	const char *stored;
	bool		behind = false;
	int			up,
				rc = -1;

	memset(st, 0, sizeof(*st));
	{
		UploadStats us = {0};

		if (l->ops->hello(l, client_node_id(cl), o->retry_hub_errors, &us, err, errlen) < 0)
			return -1;
		st->up_retried += us.retried;
		st->up_conflicts += us.conflicts;
	}
	client_reset_cache(cl);
	load_hub_types(l, &types);
	up = sync_up(l, cl, &types, st, uperr, sizeof(uperr));
	client_respell_clear(cl);
	if (up < 0)
	{
		if (st->clone || l->tables_changed)
		{
			snprintf(err, errlen, "%s", uperr);
			goto out;
		}
		logmsg(LOG_WARNING, "upload failed, downloading anyway: %s", uperr);
	}
	if (stop_requested && uperr[0] == '\0')
	{
		st->stopped = true;
		rc = 0;
		goto out;
	}

	pos = client_get_down(cl);
	client_get_down_partial(cl, &target, &done);
	if (l->ops->down_begin(l, pos, &snap, &behind, err, errlen) < 0)
		goto out;
	client_observe_clock(cl, l->hub_clock_us);
	log_clock_offset(l, st);
	if (behind)
		logmsg(LOG_WARNING, "this client's position is older than the hub's retained queue: taking a fresh first sync");
	if (pos == NULL || behind)
	{
		rc = sync_first(l, cl, &types, snap, &first_pos, st, err, errlen);
		if (rc == 0)
			rc = client_commit_apply(cl, first_pos, NULL, 0, err, errlen);
		stored = first_pos;
		/* a first sync that went on from an earlier snapshot: catch up */
		if (rc == 0 && strcmp(first_pos, snap) != 0)
			rc = sync_down(l, cl, &types, o, st, first_pos, NULL, 0, snap, &stored, err, errlen);
	}
	else
		rc = sync_down(l, cl, &types, o, st, pos, target, done, snap, &stored, err, errlen);
	if (rc < 0)
	{
		client_rollback(cl);
		l->ops->abort(l);
		goto out;
	}
	take_settled(cl, st);
	{
		long		pruned = 0;

		rc = l->ops->down_end(l, client_node_id(cl), stored, &pruned, err, errlen);
		if (rc == 0 && pruned > 0)
			logmsg(LOG_INFO, "pruned %ld hub queue rows every active client has", pruned);
	}
	/* after the download, not before: it waits for nothing of this */
	if (rc == 0 && up == 0)
		settle_met(l, cl);
	if (rc == 0 && uperr[0])
	{
		snprintf(err, errlen, "%s", uperr);
		rc = -1;
	}
out:
	/* what a hello that went with the upload or snapshot retried */
	st->up_retried += l->late_retried.retried;
	st->up_conflicts += l->late_retried.conflicts;
	memset(&l->late_retried, 0, sizeof(l->late_retried));
	free(pos);
	free(snap);
	free(first_pos);
	free(target);
	hubtypes_free(&types);
	return rc;
}

/*
 * A sync; once more (twice at most) if the hub's tables changed under a
 * hello that went with its first request: that request did nothing, and
 * the link now holds the hub's tables (docs/http.md, A sync in two
 * requests).
 */
int
sync_once(Link *l, Client *cl, const SyncOptions *o, SyncStats *st, char *err, size_t errlen)
{
	for (int tries = 0;; tries++)
	{
		int			rc;

		l->tables_changed = false;
		rc = sync_try(l, cl, o, st, err, errlen);
		if (rc == 0 || !l->tables_changed || tries == 2)
			return rc;
		logmsg(LOG_INFO, "%s", err);
	}
}

/* What a sync did, for its log line. */
void
sync_stats_text(const SyncStats *st, char *buf, size_t len)
{
	int			n = snprintf(buf, len, "up %d applied, %d overruled, %d already there; down %d%s rows, %d applied, %d overruled",
							 st->up_applied, st->up_conflicts, st->up_skipped, st->down_rows,
							 st->first_sync ? " (first sync)" : "", st->down_applied, st->down_conflicts);

	if (n > 0 && (size_t) n < len &&
		(st->up_parked || st->down_parked || st->up_retried || st->down_retried))
		snprintf(buf + n, len - (size_t) n, "; set aside %d up, %d down; set-aside changes through now %d up, %d down",
				 st->up_parked, st->down_parked, st->up_retried, st->down_retried);
	n = (int) strlen(buf);
	if (st->renamed && (size_t) n < len)
		snprintf(buf + n, len - (size_t) n, "; %d row%s renamed to the key the hub gave",
				 st->renamed, st->renamed == 1 ? "" : "s");
}
