/*
 * upload.c — a client's upload on the hub, in three steps so that memory
 * stays bounded whatever the backlog (hub.h; docs/replication.md).
 *
 *   hub_upload_begin   open the hub transaction, read where the hub stands
 *                      for this client
 *   hub_upload_chunk   a page of the client's changes: skip what the hub
 *                      has (checking its digest), apply the rest (apply.c),
 *                      set the refused ones aside (so many per client at
 *                      most: room_to_set_aside)
 *   hub_upload_end     check the node's history, store the new position,
 *                      NOTIFY, commit
 *
 * h->up keeps, until the next upload, where the client may acknowledge
 * (marks), the changes set aside (notes) and, of those, the ones whose key
 * met another record (met: note_met, met_resent), for the link to hand
 * back.
 */
#include "base/base.h"
#include "hub/apply.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Changes between two places the client may acknowledge at. */
#define MARK_EVERY 2000

/* Set-aside changes named one by one in the log per upload; then a count. */
#define LOG_PARKED_MAX 10

/*
 * Log what was set aside: the first few one by one, then a count. The lines
 * are kept in u->notes too, for serve to hand to the client.
 */
static void
log_parked(HubUpload *u, Change **cs, const Outcome *out, int n, const char *what)
{
	int			more = 0;
	char		line[1024];

	for (int i = 0; i < n; i++)
	{
		if (out[i].done != DONE_FAILED)
			continue;
		if (u->nnotes < LOG_PARKED_MAX)
		{
			snprintf(line, sizeof(line), "change %" PRId64 " of \"%s\" (%c %s) %s: %s",
					 cs[i]->seq, cs[i]->table, cs[i]->op, cs[i]->pk_json, what, out[i].why);
			logmsg(LOG_WARNING, "%s", line);
			u->notes[u->nnotes++] = xstrdup(line);
		}
		else
			more++;
	}
	if (more)
		logmsg(LOG_WARNING, "%d more changes %s", more, what);
	u->notes_more += more;
}

/* Change seq of the upload, set aside as meeting another record, for the reply. */
static void
push_met(HubUpload *u, int64_t seq, const char *error)
{
	u->met = xrealloc(u->met, sizeof(MetChange) * (size_t) (u->nmet + 1));
	u->met[u->nmet].seq = seq;
	u->met[u->nmet++].error = xstrdup(error);
}

/*
 * The changes of out[0..n) set aside because their key met another record
 * (MET_SQLSTATE), for the reply: the client keeps each in its own
 * sync_errors, with the message for it (note).
 */
static void
note_met(HubUpload *u, Change **cs, const Outcome *out, int n)
{
	for (int i = 0; i < n; i++)
		if (out[i].done == DONE_FAILED && strcmp(out[i].sqlstate, MET_SQLSTATE) == 0)
			push_met(u, cs[i]->seq, out[i].note ? out[i].note : out[i].why);
}

/*
 * An upload sent again after the hub committed it (the client's
 * acknowledgement was lost): the changes it skips that were set aside as
 * meeting another record, and wait in sync_errors still, are named again,
 * so that the client keeps them as it would have (their first message is
 * gone: the hub's reason stands in for it).
 */
static int
met_resent(Hub *h, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	char		from[32],
				to[32];
	const char *params[3] = {u->client_id, from, to};
	PGresult   *res;

	snprintf(from, sizeof(from), "%" PRId64, u->ack_seq);
	snprintf(to, sizeof(to), "%" PRId64, u->hub_seq);
	res = hub_run(h, "SELECT seq, error FROM sync_errors"
				  " WHERE node_id = $1::uuid AND seq > $2::bigint AND seq <= $3::bigint"
				  "   AND sqlstate = '" MET_SQLSTATE "' ORDER BY seq",
				  3, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		char		note[1200];

		snprintf(note, sizeof(note), "set aside on the hub, whose reason is: %.*s; kept here as it was sent, this entry goes once the hub's copy of this change goes",
				 utf8_cut(PQgetvalue(res, r, 1), 900), PQgetvalue(res, r, 1));
		push_met(u, strtoll(PQgetvalue(res, r, 0), NULL, 10), note);
	}
	PQclear(res);
	return 0;
}

/*
 * Uploads of different clients apply side by side, each locking the rows
 * it changes; two that lock rows in opposite orders (an app table's rows,
 * or a version row read out of order: apply.c) wait for each other until
 * PostgreSQL ends one with deadlock_detected. That one is marked overtaken:
 * rolled back, and sent again at once (sync.c), as a lost race it is.
 */
static void
mark_contended(Hub *h, char *err, size_t errlen)
{
	if (strcmp(h->sqlstate, "40P01") != 0 && strcmp(h->sqlstate, "40001") != 0)
		return;
	h->up.overtaken = true;
	snprintf(err, errlen, "hub: this upload and another transaction waited for each other's rows (SQLSTATE %s); the upload is sent again",
			 h->sqlstate);
}

/*
 * Upload, in three steps so that memory stays bounded whatever the backlog:
 * hub_upload_begin opens the hub transaction and reads where the hub stands
 * for this client; hub_upload_chunk takes the client's pending changes a
 * page at a time (seq order); hub_upload_end checks the node's history,
 * stores the new position and commits. All of it is one hub transaction.
 */
int
hub_upload_begin(Hub *h, const char *client_id, int64_t ack_seq, uint64_t ack_digest,
				 int64_t client_now_us, char *err, size_t errlen)
{
	PGresult   *res;
	const char *params[1] = {client_id};
	HubUpload  *u = &h->up;

	hub_upload_forget(u);
	snprintf(u->client_id, sizeof(u->client_id), "%s", client_id);
	u->digest = ack_digest;
	u->ack_seq = ack_seq;
	if (hub_apply_begin(h, client_now_us, err, errlen) < 0)
	{
		mark_contended(h, err, errlen);	/* the fold's own transaction too */
		return -1;
	}
	res = hub_prep(h, "INSERT INTO sync_clients (node_id) VALUES ($1) ON CONFLICT (node_id) DO NOTHING",
			  1, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	res = hub_prep(h, "SELECT up_seq, up_digest FROM sync_clients WHERE node_id = $1 FOR UPDATE",
			  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		goto fail;
	u->hub_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	u->hub_digest = strtoull(PQgetvalue(res, 0, 1), NULL, 16);
	PQclear(res);
	if (u->hub_seq < ack_seq)
	{
		snprintf(err, errlen, "hub: the hub knows changes of node %s only up to seq %" PRId64 ", but this node had them acknowledged up to %" PRId64 " (was the hub restored from an older backup?)",
				 client_id, u->hub_seq, ack_seq);
		goto fail;
	}
	/* nothing re-sent yet: the history check is due once we pass hub_seq */
	u->checked = u->hub_seq == ack_seq && u->digest == u->hub_digest;
	if (u->hub_seq == ack_seq && !u->checked)
		goto clone;
	u->new_seq = u->hub_seq;
	if (hub_keys_load(h, client_id, ack_seq, err, errlen) < 0 ||
		(u->hub_seq > ack_seq && met_resent(h, err, errlen) < 0))
		goto fail;
	return 0;
clone:
	snprintf(err, errlen, "node %s was already used by another copy of this database: the hub holds changes of this node that this file does not have (run syncqd --reidentify on this copy)",
			 client_id);
	u->stats.clone = true;
fail:
	mark_contended(h, err, errlen);
	hub_rollback(h);
	return -1;
}

/* The re-sent part must hash to what the hub recorded; else: a clone. */
static int
check_history(Hub *h, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;

	if (u->checked)
		return 0;
	if (u->digest != u->hub_digest)
	{
		snprintf(err, errlen, "node %s was already used by another copy of this database: the hub holds changes of this node that this file does not have (run syncqd --reidentify on this copy)",
				 u->client_id);
		u->stats.clone = true;
		return -1;
	}
	u->checked = true;
	return 0;
}

/*
 * Remember where the client may acknowledge the upload (once the hub has
 * committed it): after every MARK_EVERY changes and at the end of every
 * page, so that no acknowledgement holds the client's write lock long.
 */
static void
add_mark(HubUpload *u, int64_t seq)
{
	u->since_mark = 0;
	if (u->nmarks == u->capmarks)
	{
		u->capmarks = u->capmarks ? u->capmarks * 2 : 16;
		u->marks = xrealloc(u->marks, sizeof(UploadMark) * (size_t) u->capmarks);
	}
	u->marks[u->nmarks].seq = seq;
	u->marks[u->nmarks].digest = u->digest;
	u->nmarks++;
}

/*
 * Is there room in sync_errors for the nfailed changes of out[0..m) just
 * refused? A client's set-aside changes are bounded (h->max_set_aside): a
 * client cannot fill the hub with refused changes, nor make every retry of
 * them long (docs/security.md). -1 with err (and stats.full) if not.
 */
static int
room_to_set_aside(Hub *h, const Outcome *out, int m, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	long		max = h->max_set_aside > 0 ? h->max_set_aside : HUB_SET_ASIDE_MAX;
	long		held;
	int			nfailed = 0;

	for (int i = 0; i < m; i++)
		nfailed += out[i].done == DONE_FAILED;
	if (nfailed == 0)
		return 0;
	held = hub_count_errors(h, u->client_id, err, errlen);
	if (held < 0)
		return -1;
	if (held + nfailed <= max)
		return 0;
	snprintf(err, errlen, "hub: node %s has %ld changes set aside in the hub's sync_errors, and %d more were refused now: at most %ld are kept; its uploads wait until they are dealt with there (fix their cause, or delete them)",
			 u->client_id, held, nfailed, max);
	u->stats.full = true;
	return -1;
}

/*
 * Apply one page of pending changes (seq order) inside the upload. What the
 * hub already has is skipped after checking its digest (exactly once);
 * what the hub refuses is set aside in sync_errors; the position moves past
 * both.
 */
int
hub_upload_chunk(Hub *h, const ChangeList *page, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	int			first_new = 0,
				m;
	Change	  **cs;
	Outcome    *out;
	int			rc = -1;

	while (first_new < page->n && page->c[first_new].seq <= u->hub_seq)
	{
		u->digest = change_digest(u->digest, &page->c[first_new]);
		if (++u->since_mark >= MARK_EVERY)
			add_mark(u, page->c[first_new].seq);
		first_new++;
	}
	u->stats.skipped += first_new;
	if (first_new == page->n)
	{
		if (page->n > 0)
			add_mark(u, page->c[page->n - 1].seq);
		return 0;
	}
	if (check_history(h, err, errlen) < 0)
	{
		hub_rollback(h);
		return -1;
	}
	m = page->n - first_new;
	cs = xmalloc(sizeof(Change *) * (size_t) m);
	out = xcalloc((size_t) m, sizeof(Outcome));
	for (int i = 0; i < m; i++)
	{
		cs[i] = &page->c[first_new + i];
		u->digest = change_digest(u->digest, cs[i]);
		u->new_seq = cs[i]->seq;
		if (++u->since_mark >= MARK_EVERY && i < m - 1)
			add_mark(u, u->new_seq);
	}
	if (hub_apply_changes(h, cs, m, out, false, &u->notify, err, errlen) < 0 ||
		room_to_set_aside(h, out, m, err, errlen) < 0 ||
		hub_park_changes(h, u->client_id, cs, out, m, err, errlen) < 0)
		goto out;
	for (int i = 0; i < m; i++)
	{
		if (out[i].done == DONE_APPLIED)
			u->stats.applied++;
		else if (out[i].done == DONE_OVERRULED)
			u->stats.conflicts++;
		else if (out[i].done == DONE_FAILED)
			u->stats.parked++;
	}
	log_parked(u, cs, out, m, "set aside in the hub's sync_errors");
	note_met(u, cs, out, m);
	add_mark(u, u->new_seq);
	rc = 0;
out:
	free(cs);
	outcomes_free(out, m);
	if (rc < 0)
	{
		mark_contended(h, err, errlen);
		hub_rollback(h);
	}
	return rc;
}

/*
 * Finish the upload: check the node's history, store the new position,
 * NOTIFY the other clients if an immediate change went through, commit.
 * h->up.marks then holds where the client may acknowledge, page by page.
 */
int
hub_upload_end(Hub *h, UploadStats *stats, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	PGresult   *res;
	char		seqtxt[32],
				dig[32];
	const char *params[3];

	if (check_history(h, err, errlen) < 0)
		goto fail;
	snprintf(seqtxt, sizeof(seqtxt), "%" PRId64, u->new_seq);
	snprintf(dig, sizeof(dig), "%016" PRIx64, u->digest);
	params[0] = u->client_id;
	params[1] = seqtxt;
	params[2] = dig;
	res = hub_prep(h, "UPDATE sync_clients SET up_seq = $2, up_digest = $3, last_seen = now() WHERE node_id = $1",
				  3, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (hub_keys_store(h, err, errlen) < 0 || hub_overtaken(h, err, errlen) != 0)
		goto fail;
	if (u->notify && hub_notify_upload(h, u->client_id, err, errlen) < 0)
		goto fail;
	if (hub_exec(h, "COMMIT", err, errlen) < 0)
		goto fail;
	*stats = u->stats;
	return 0;
fail:
	*stats = u->stats;
	mark_contended(h, err, errlen);
	hub_rollback(h);
	return -1;
}

