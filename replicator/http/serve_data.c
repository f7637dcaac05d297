/*
 * serve_data.c — the exchange between a client's HTTP link and the hub
 * (docs/http.md): each POST /api/sync/data is one step of a sync, decoded
 * and checked first (link/proto.c), then run against the hub with the code
 * a libpq client runs (hub/), on a connection of the pool.
 *
 *   serve_data   POST /api/sync/data: who may act for the node, then the step
 *   serve_wait   GET /api/sync/wait: the long poll on the hub's wake-ups
 *
 * The steps (static): do_hello (retry_due: set-aside changes retried at
 * most every RETRY_GAP_S per node), do_upload, do_snapshot, do_changes,
 * do_rows, do_done, do_errors. With --replica, changes and rows are read
 * from a replica that has replayed what they need (read_on_replica), every
 * other step from the primary.
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "http/serve_state.h"
#include "link/proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define WAIT_MAX_S 25			/* a long poll answers after this at the latest */
#define RETRY_GAP_S 2			/* a node retries set-aside changes at most this often */

/*
 * May this node retry its set-aside changes now? At most once per
 * RETRY_GAP_S per node: each retry is a hub transaction; but at once
 * when the hub's tracked tables changed since its last retry (a column the
 * changes were waiting for was added). (The slots are few and shared by
 * hash; a node that meets another in its slot may retry sooner, never more
 * often than the two together.)
 */
static bool
retry_due(Serve *s, const char *node_id, uint64_t tables_digest)
{
	uint64_t	hash = 14695981039346656037ULL;
	int64_t		now = mono_us();
	bool		due;
	RetrySlot  *slot;

	for (const char *p = node_id; *p; p++)
		hash = (hash ^ (unsigned char) (*p | 0x20)) * 1099511628211ULL;
	slot = &s->retry_slots[hash % RETRY_SLOTS];
	pthread_mutex_lock(&s->retry_mu);
	due = strcasecmp(slot->node, node_id) != 0 || now - slot->at_us >= RETRY_GAP_S * 1000000LL ||
		slot->tables_digest != tables_digest;
	if (due)
	{
		snprintf(slot->node, sizeof(slot->node), "%s", node_id);
		slot->at_us = now;
		slot->tables_digest = tables_digest;
	}
	pthread_mutex_unlock(&s->retry_mu);
	return due;
}

/*
 * The hub's tables, and the node's set-aside changes retried if due. 1,
 * and nothing retried, if the request's folded hello names other tables.
 */
static int
hello_work(Serve *s, Hub *h, const ProtoRequest *rq, UploadStats *us, char *err, size_t errlen)
{
	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	if (rq->hello.on && rq->hello.tables != h->tables_digest)
		return 1;				/* the client holds other tables: nothing */
	if (rq->retry_errors && retry_due(s, rq->node_id, h->tables_digest))
	{
		char		e[1024];

		if (hub_retry_errors(h, rq->node_id, us, e, sizeof(e)) < 0)
			logmsg(LOG_WARNING, "node %s: retrying set-aside changes failed: %s", rq->node_id, e);
		if (!hub_ok(h))
			hub_rollback(h);
	}
	return 0;
}

static int
do_hello(Serve *s, Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	UploadStats us = {0};

	if (hello_work(s, h, rq, &us, err, errlen) < 0)
		return -1;
	proto_encode_hello(out, SYNCQD_VERSION, h->node_id, h->tables, h->ntables, h->tables_digest,
					   us.retried, us.conflicts, false);
	return 0;
}

/*
 * A hello folded into an upload or snapshot (docs/http.md, A sync in two
 * requests): its work, done first. 1 if the client holds other tables
 * than the hub's: then out holds a hello's answer saying so, and nothing
 * else is done (the client syncs again with the hub's tables).
 */
static int
folded_hello(Serve *s, Hub *h, const ProtoRequest *rq, ProtoFolded *f, Buf *out,
			 char *err, size_t errlen)
{
	UploadStats us = {0};
	int			rc;

	memset(f, 0, sizeof(*f));
	if (!rq->hello.on)
		return 0;
	if ((rc = hello_work(s, h, rq, &us, err, errlen)) < 0)
		return -1;
	if (rc == 1)
	{
		proto_encode_hello(out, SYNCQD_VERSION, h->node_id, h->tables, h->ntables,
						   h->tables_digest, 0, 0, true);
		return 1;
	}
	f->on = true;
	f->retried = us.retried;
	f->conflicts = us.conflicts;
	return 0;
}

/*
 * The changes of the page of an upload that starts at change i: at most
 * UPLOAD_PAGE of them, and UPLOAD_PAGE_BYTES of their rows' text.
 */
static int
page_size(const ProtoRequest *rq, int i)
{
	size_t		bytes = 0;
	int			n = 0;

	while (i + n < rq->changes.n && n < UPLOAD_PAGE && (n == 0 || bytes < UPLOAD_PAGE_BYTES))
		bytes += proto_upload_row_bytes(rq, i + n++);
	return n;
}

/* 409 for a cloned node, else the usual. */
static int
do_upload(Serve *s, struct MHD_Connection *conn, Hub *h, ProtoRequest *rq, Buf *out, bool *clone,
		  char *err, size_t errlen)
{
	UploadStats us = {0};
	ProtoFolded hello;
	int			rc;

	*clone = false;
	hub_upload_forget(&h->up);	/* nothing of the connection's last upload */
	if ((rc = folded_hello(s, h, rq, &hello, out, err, errlen)) != 0)
		return rc < 0 ? -1 : 0;
	if (!rq->hello.on && hub_load_tables(h, err, errlen) < 0)
		return -1;
	/*
	 * In pages, as the libpq client sends them (page_size): a page's pk
	 * and rows are read from the body only as the hub is about to apply
	 * them, and let go once it has, so what an upload holds is its body
	 * and one page (docs/security.md, Memory per request). The first page
	 * is read before the hub transaction begins: an upload of one page, as
	 * most are, reads nothing while it holds its rows locked.
	 */
	if (proto_upload_rows(rq, 0, page_size(rq, 0), err, errlen) < 0)
		return -1;
	if (hub_upload_begin(h, rq->node_id, rq->ack_seq, rq->ack_digest, rq->now_us, err, errlen) < 0)
	{
		*clone = h->up.stats.clone;
		return -1;
	}
	/* protocol 1's reply has no renames: the hub must not make any */
	h->up.keep_keys = rq->v < 2;
	for (int i = 0; i < rq->changes.n;)
	{
		ChangeList	page = {.c = rq->changes.c + i, .n = page_size(rq, i)};
		int			rc;

		/*
		 * A client that closed its connection (killed, or its request
		 * timed out) never reads the answer and sends the upload again:
		 * applying the rest would only hold the node's row (and its next
		 * upload) for nothing. Checked before each page, once the node's
		 * row is held, since the wait for it can be long.
		 */
		if (conn != NULL && http_peer_gone(conn))
		{
			hub_rollback(h);
			snprintf(err, errlen, "its client closed the connection: upload of %d changes not applied",
					 rq->changes.n);
			return -1;
		}
		rc = proto_upload_rows(rq, i, page.n, err, errlen);
		if (rc < 0)
			hub_rollback(h);
		else
			rc = hub_upload_chunk(h, &page, err, errlen);
		proto_upload_rows_drop(rq, i, page.n);
		if (rc < 0)
		{
			*clone = h->up.stats.clone;
			return -1;
		}
		i += page.n;
	}
	if (hub_upload_end(h, &us, err, errlen) < 0)
	{
		*clone = us.clone;
		return -1;
	}
	proto_encode_uploaded(out, &hello, &us, h->up.marks, h->up.nmarks, h->up.notes, h->up.nnotes,
						  h->up.notes_more, h->up.renames, h->up.nrenames, h->up.met, h->up.nmet);
	return 0;
}

/*
 * The primary's WAL insert position now, into lsn: every transaction
 * visible in a snapshot taken before it committed below it. -1 with err.
 */
static int
primary_lsn(Hub *h, char *lsn, size_t lsnlen, char *err, size_t errlen)
{
	PGresult   *res = hub_run(h, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, PGRES_TUPLES_OK,
							  err, errlen);

	if (res == NULL)
		return -1;
	snprintf(lsn, lsnlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/*
 * The client stands at rq->position; the hub's queue pruned if due. The
 * rows pruned, or -1.
 */
static long
note_position(Hub *h, const ProtoRequest *rq, char *err, size_t errlen)
{
	long		pruned;

	if (hub_note_position(h, rq->node_id, rq->position, err, errlen) < 0)
		return -1;
	pruned = hub_prune_if_due(h, err, errlen);
	if (pruned > 0)
		logmsg(LOG_INFO, "pruned %ld hub queue rows every active client has", pruned);
	return pruned;
}

static int	changes_page(Hub *h, const ProtoRequest *rq, const char *target, JsonOut *w,
						 char *err, size_t errlen);

/*
 * The snapshot a download goes to, always the primary's (a hot standby's
 * pg_current_snapshot() leaves out the transactions in progress there).
 * With replicas, the primary's WAL position just after it is kept, so that
 * the changes up to it can be read from a replica that has replayed that
 * far (snapshot_lsn_keep). The position the client stands at is noted
 * first (what `done` notes at the end of a download: the client sends it
 * here next time, so a sync needs no `done` of its own), before the
 * snapshot and the hub's clock are read. With rq->limit,
 * and no replica to read changes from, the first page of the changes from
 * the position to the snapshot comes along, read in the snapshot's own
 * transaction.
 */
static int
do_snapshot(Serve *s, Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	char	   *snap,
				lsn[32],
				e[512];
	bool		behind;
	ProtoFolded hello;
	JsonOut		w;
	int			rc;

	if ((rc = folded_hello(s, h, rq, &hello, out, err, errlen)) != 0)
		return rc < 0 ? -1 : 0;
	/* before the snapshot: a wait for the node's row (an upload of it
	 * holds it) must not come between the hub's clock and the reply */
	if (rq->position && note_position(h, rq, err, errlen) < 0)
		return -1;
	if (hub_download_begin(h, rq->position, &snap, &behind, err, errlen) < 0)
		return -1;
	if (s->nreplicas > 0)
	{
		if (primary_lsn(h, lsn, sizeof(lsn), e, sizeof(e)) == 0)
			snapshot_lsn_keep(s, rq->node_id, snap, lsn);
		else
			logmsg(LOG_WARNING, "node %s: the primary's WAL position: %s", rq->node_id, e);
	}
	proto_snapshot_open(&w, out, &hello, snap, behind, h->clock_us, h->wall_us);
	if (rq->limit > 0 && rq->position && !behind && s->nreplicas == 0 &&
		changes_page(h, rq, snap, &w, err, errlen) < 0)
	{
		free(snap);
		return -1;
	}
	proto_snapshot_close(&w);
	hub_rollback(h);
	free(snap);
	return 0;
}

/*
 * A page of the hub's changes after seq rq->after: about rq->limit of them
 * (changes_page).
 */
static int
do_changes(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	JsonOut		w;

	if (hub_exec(h, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) < 0)
		return -1;
	jout_init(&w, out);
	jout_object(&w);
	if (changes_page(h, rq, rq->target, &w, err, errlen) < 0)
		return -1;
	jout_object_end(&w);
	return hub_exec(h, "COMMIT", err, errlen);
}

/* Row r of a page of changes (hub_changes_open's columns) into w. */
static void
add_change(JsonOut *w, PGresult *res, int r, int64_t txn_end, int v)
{
	proto_changes_add(w, &(ProtoChangeText) {
		.seq = strtoll(PQgetvalue(res, r, 0), NULL, 10),
		.table = PQgetvalue(res, r, 1),
		.op = PQgetvalue(res, r, 2)[0],
		.pk = PQgetvalue(res, r, 3),
		.row = PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4),
		.ver_us = strtoll(PQgetvalue(res, r, 5), NULL, 10),
		.origin = PQgetvalue(res, r, 6),
		.immediate = strcmp(PQgetvalue(res, r, 7), SYNCQ_PRIORITY_IMMEDIATE) == 0,
		.txn_end = txn_end,
		.replaces_us = PQgetisnull(res, r, 9) ? 0 : strtoll(PQgetvalue(res, r, 9), NULL, 10),
	}, v);
}

/*
 * A page of changes for a client of protocol 2 (changes_page): rq->limit
 * of them at most, read without a cursor, each with the end of its
 * transaction so that the client commits only where none straddles its
 * cut (hub_changes_read).
 */
static int
changes_page_v2(Hub *h, const ProtoRequest *rq, const char *target, JsonOut *w, char *err,
				size_t errlen)
{
	HubChanges	c;

	if (hub_changes_read(h, rq->position, target, rq->after, rq->node_id, rq->limit, &c,
						 err, errlen) < 0)
		return -1;
	proto_changes_array(w);
	for (int r = 0; r < c.n; r++)
		add_change(w, c.res, r, c.txn_end[r], rq->v);
	proto_changes_more(w, c.more);
	hub_changes_free(&c);
	return 0;
}

/*
 * The changes of the page (rq->position to target, after rq->after, about
 * rq->limit) into w's open object, "changes" and "more", in the hub
 * transaction open. For a client of protocol 2 a page ends after
 * rq->limit changes, inside a hub transaction if need be: the client
 * commits only where no transaction straddles the cut (each change's
 * txn_end tells), and asks for the next page while it applies one, so a
 * large transaction comes in pages that overlap with its apply. A 0.1.0
 * client (protocol 1) gets pages that end where a transaction ends, as
 * 0.1.0 serve sent them: it too cuts only at clean points, but was never
 * tested with a page cut inside one.
 */
static int
changes_page(Hub *h, const ProtoRequest *rq, const char *target, JsonOut *w, char *err, size_t errlen)
{
	PGresult   *res;
	int64_t		last = 0,
				need = 0;		/* the last seq of the last transaction begun */
	int			n = 0;
	bool		more = false;

	if (rq->v >= 2)
		return changes_page_v2(h, rq, target, w, err, errlen);
	if (hub_changes_open(h, rq->position, target, rq->after, rq->node_id, err, errlen) < 0)
		return -1;
	proto_changes_array(w);
	for (int want = rq->limit;;)
	{
		res = hub_fetch(h, "syncq_down", want, err, errlen);
		if (res == NULL)
			return -1;
		for (int r = 0; r < PQntuples(res); r++)
		{
			int64_t		seq = strtoll(PQgetvalue(res, r, 0), NULL, 10),
						end = strtoll(PQgetvalue(res, r, 8), NULL, 10);

			if (n >= rq->limit && (last >= need || rq->v >= 2))
			{
				more = true;	/* a row past the end of the page */
				break;
			}
			add_change(w, res, r, end, rq->v);
			n++;
			last = seq;
			if (end > need)
				need = end;
		}
		if (more || PQntuples(res) < want)
		{
			PQclear(res);
			break;
		}
		PQclear(res);
		/* see what follows (protocol 1: finish the transaction first) */
		want = rq->v >= 2 ? 1 : 1000;
	}
	proto_changes_more(w, more);
	return 0;					/* (the cursor ends with the transaction) */
}

/*
 * "after" of a rows request: every primary key column of t once, nothing
 * else. 0, or -1 with err (400).
 */
static int
check_after(const HubTable *t, const char *after_pk, char *err, size_t errlen)
{
	JObject		o;
	char		e[128];
	int			found = 0;

	if (jobj_parse(after_pk, strlen(after_pk), &o, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "\"after\": %s", e);
		return -1;
	}
	for (int i = 0; i < o.n; i++)
	{
		int			c = hub_col(t, o.f[i].key);

		if (c < 0 || !t->is_pk[c])
		{
			snprintf(err, errlen, "\"after\": \"%.64s\" is not a primary key column of \"%s\"", o.f[i].key, t->name);
			jobj_free(&o);
			return -1;
		}
		found++;
	}
	jobj_free(&o);
	if (found != t->npk)
	{
		snprintf(err, errlen, "\"after\" must give every primary key column of \"%s\" once", t->name);
		return -1;
	}
	return 0;
}

/*
 * The rows of t after key after_pk (NULL: from the start), in primary key
 * order (for its index), limit of them, as their capture writes them
 * (hub_rows_sql).
 */
static PGresult *
select_rows(Hub *h, const HubTable *t, const char *after_pk, int limit, char *err, size_t errlen)
{
	Buf			sql = {0},
				keys = {0},
				cols = {0};
	char		lim[16];
	const char *params[2] = {lim, after_pk};
	char	   *rows;
	PGresult   *res;

	for (int k = 1; k <= t->npk; k++)
		for (int c = 0; c < t->ncols; c++)
			if (t->pk_pos[c] == k)
			{
				char	   *q = hub_quote_ident(h, t->cols[c]);

				buf_printf(&keys, "%ssyncq_row.%s", keys.len ? ", " : "", q);
				buf_printf(&cols, "%ssyncq_key.%s", cols.len ? ", " : "", q);
				free(q);
			}
	snprintf(lim, sizeof(lim), "%d", limit);
	rows = hub_rows_sql(h, t);
	buf_puts(&sql, rows);
	free(rows);
	if (after_pk)
		buf_printf(&sql, " WHERE (%s) > (SELECT %s FROM json_populate_record(NULL::%s, $2::json) AS syncq_key)",
				   keys.p, cols.p, t->qname);
	buf_printf(&sql, " ORDER BY %s LIMIT $1::int", keys.p);
	res = hub_run(h, sql.p, after_pk ? 2 : 1, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&sql);
	buf_free(&keys);
	buf_free(&cols);
	return res;
}

/* A bytea value as base64 text turned into \x hex (as it is if not base64). */
static void
bytea_hex(JField *f)
{
	Buf			bytes = {0},
				hex = {0};

	if (base64_decode(f->text, f->len, &bytes) == 0)
	{
		buf_puts(&hex, "\\x");
		buf_hex(&hex, (const unsigned char *) bytes.p, bytes.len);
		jfield_set_text(f, f->type, hex.p, hex.len);
	}
	buf_free(&bytes);
}

/*
 * The key of row (hub_rows_sql's JSON) as canonical JSON text (malloc'd),
 * as json_populate_record reads it for the next page's "after": a bytea
 * as \x hex, not the base64 the row's JSON holds.
 */
static char *
key_of(const HubTable *t, const char *row, size_t len)
{
	JObject		o,
				key = {0};
	Buf			k = {0};
	char		e[128];

	if (jobj_parse(row, len, &o, e, sizeof(e)) < 0)
		return NULL;
	for (int i = 0; i < o.n; i++)
	{
		int			c = hub_col(t, o.f[i].key);

		if (c >= 0 && t->is_pk[c] && t->kinds[c] == VK_BYTEA && o.f[i].type == JV_STRING)
			bytea_hex(&o.f[i]);
		if (c >= 0 && t->is_pk[c])
		{
			if (key.n == key.cap)
			{
				key.cap = key.cap ? key.cap * 2 : 4;
				key.f = xrealloc(key.f, (size_t) key.cap * sizeof(JField));
			}
			key.f[key.n++] = o.f[i];
		}
	}
	buf_json_object(&k, &key);
	free(key.f);
	jobj_free(&o);
	return k.p;
}

/*
 * A page of table rq->table for a first sync, in primary key order after
 * the key rq->after_pk. 404 for a table the hub does not track, 400 for a
 * bad "after".
 */
static int
do_rows(Hub *h, const ProtoRequest *rq, Buf *out, unsigned int *code, char *err, size_t errlen)
{
	const HubTable *t;
	PGresult   *res;
	JsonOut		w;
	char	   *last = NULL;
	int			n;

	if (hub_load_tables(h, err, errlen) < 0)
		return -1;
	t = hub_table(h, rq->table);
	if (t == NULL)
	{
		*code = MHD_HTTP_NOT_FOUND;
		snprintf(err, errlen, "table \"%s\" is not tracked on the hub", rq->table);
		return -1;
	}
	if (rq->after_pk && check_after(t, rq->after_pk, err, errlen) < 0)
	{
		*code = MHD_HTTP_BAD_REQUEST;
		return -1;
	}
	res = select_rows(h, t, rq->after_pk, rq->limit + 1, err, errlen);
	if (res == NULL)
	{
		/* a key value its column's type refuses: the client's mistake */
		if (strncmp(h->sqlstate, "22", 2) == 0)
		{
			*code = MHD_HTTP_BAD_REQUEST;
			snprintf(err + strlen(err), errlen - strlen(err), " (in \"after\")");
		}
		return -1;
	}
	n = PQntuples(res) > rq->limit ? rq->limit : PQntuples(res);
	proto_rows_begin(&w, out);
	for (int r = 0; r < n; r++)
		proto_rows_add(&w, PQgetvalue(res, r, 0), (size_t) PQgetlength(res, r, 0), rq->v);
	if (n > 0)
		last = key_of(t, PQgetvalue(res, n - 1, 0), (size_t) PQgetlength(res, n - 1, 0));
	proto_rows_end(&w, PQntuples(res) > rq->limit, last, rq->v);
	free(last);
	PQclear(res);
	return 0;
}

static int
do_done(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	long		pruned = note_position(h, rq, err, errlen);

	if (pruned < 0)
		return -1;
	proto_encode_done(out, pruned);
	return 0;
}

/* This node's set-aside changes: how many, the first max (or those of
 * rq->seqs still held), the overruled count if asked. */
static int
do_errors(Hub *h, const ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	long		count = hub_count_errors(h, rq->node_id, err, errlen),
				conflicts = -1;
	HubError   *rows = NULL;
	int			n = 0;

	if (count < 0)
		return -1;
	if (count > 0 && rq->max > 0 &&
		(n = hub_list_errors(h, rq->node_id, rq->max, rq->seqs, rq->nseqs, &rows, err, errlen)) < 0)
		return -1;
	if (rq->conflicts && (conflicts = hub_count_conflicts(h, rq->node_id, err, errlen)) < 0)
	{
		hub_errors_free(rows, n);
		return -1;
	}
	proto_encode_errors(out, count, rows, n, conflicts, rq->v);
	hub_errors_free(rows, n);
	return 0;
}

/*
 * May this user act for this node id? Nobody for the hub's own; the admin
 * for any other; another user for the node ids bound to it: a node id is
 * bound to the first user that uses it, over HTTP or libpq
 * (hub_bind_node). 1 yes, 0 no, -1 error.
 */
static int
node_allowed(Serve *s, Hub *h, const HttpRequest *req, const char *node_id, char *err, size_t errlen)
{
	char	   *owner = NULL;
	int			ok = -1;

	if (strcasecmp(node_id, h->node_id) == 0)
		return 0;
	if (req->admin)
		return 1;
	pthread_mutex_lock(&s->bind_mu);
	for (int i = 0; i < s->nbind; i++)
		if (strcmp(s->bind_node[i], node_id) == 0)
			ok = strcmp(s->bind_user[i], req->user) == 0;
	pthread_mutex_unlock(&s->bind_mu);
	if (ok >= 0)
		return ok;
	if (hub_bind_node(h, node_id, req->user, &owner, err, errlen) < 0)
		return -1;
	ok = owner != NULL && strcmp(owner, req->user) == 0;
	pthread_mutex_lock(&s->bind_mu);
	if (s->nbind >= BIND_CACHE_MAX)
	{
		/* forget them all: the hub has them */
		for (int i = 0; i < s->nbind; i++)
		{
			free(s->bind_node[i]);
			free(s->bind_user[i]);
		}
		s->nbind = 0;
	}
	s->bind_node = xrealloc(s->bind_node, (size_t) (s->nbind + 1) * sizeof(char *));
	s->bind_user = xrealloc(s->bind_user, (size_t) (s->nbind + 1) * sizeof(char *));
	s->bind_node[s->nbind] = xstrdup(node_id);
	s->bind_user[s->nbind++] = owner ? owner : xstrdup("");
	pthread_mutex_unlock(&s->bind_mu);
	return ok;
}

/*
 * Uploads apply side by side on the hub (hub/apply.c), but hold at most
 * half the pool's connections at once: a queue of uploads never starves
 * the downloads, which are most of the requests.
 */
static void
upload_turn_take(Serve *s)
{
	int			slots = s->pool.max / UPLOAD_SHARE > 1 ? s->pool.max / UPLOAD_SHARE : 1;

	pthread_mutex_lock(&s->up_mu);
	while (s->up_busy >= slots)
		pthread_cond_wait(&s->up_cv, &s->up_mu);
	s->up_busy++;
	pthread_mutex_unlock(&s->up_mu);
}

static void
upload_turn_give(Serve *s)
{
	pthread_mutex_lock(&s->up_mu);
	s->up_busy--;
	pthread_cond_signal(&s->up_cv);
	pthread_mutex_unlock(&s->up_mu);
}

/* Run the step rq asks for; its reply into out. *code: a 4xx of the step's own. */
static int
run_step(Serve *s, struct MHD_Connection *conn, Hub *h, ProtoRequest *rq, Buf *out,
		 unsigned int *code, bool *clone, char *err, size_t errlen)
{
	switch (rq->op)
	{
		case OP_HELLO:
			return do_hello(s, h, rq, out, err, errlen);
		case OP_UPLOAD:
			return do_upload(s, conn, h, rq, out, clone, err, errlen);
		case OP_SNAPSHOT:
			return do_snapshot(s, h, rq, out, err, errlen);
		case OP_CHANGES:
			return do_changes(h, rq, out, err, errlen);
		case OP_ROWS:
			return do_rows(h, rq, out, code, err, errlen);
		case OP_DONE:
			return do_done(h, rq, out, err, errlen);
		case OP_ERRORS:
			return do_errors(h, rq, out, err, errlen);
	}
	snprintf(err, errlen, "unknown op");
	return -1;
}

/*
 * A download's page (changes, rows) read from a replica (docs/replication.md,
 * Reads from replicas). It needs the primary's WAL position P after which
 * everything the page must see had committed: for changes, the one kept
 * when this process gave the node its target snapshot, else the primary's
 * position now (the target was given before the request came); for rows
 * (a first sync's page must be at least as new as the snapshot the client
 * then stands at, which the request does not name) the position now. A
 * replica that has replayed past P answers; meanwhile the primary's
 * connection *h goes back to the pool. 1 answered there; 0 not (*h is a
 * primary connection again, a failed replica's answer is dropped); -1 no
 * primary connection (err).
 */
static int
read_on_replica(Serve *s, Hub **h, ProtoRequest *rq, Buf *out, char *err, size_t errlen)
{
	char		lsn[32],
				e[2048];
	unsigned int code = MHD_HTTP_OK;
	bool		clone = false;
	Hub		   *rh;
	int			which;

	if (s->nreplicas == 0 || (rq->op != OP_CHANGES && rq->op != OP_ROWS))
		return 0;
	if (!(rq->op == OP_CHANGES && rq->target && snapshot_lsn_find(s, rq->node_id, rq->target, lsn, sizeof(lsn))) &&
		primary_lsn(*h, lsn, sizeof(lsn), e, sizeof(e)) < 0)
	{
		logmsg(LOG_WARNING, "node %s: the primary's WAL position: %s", rq->node_id, e);
		return 0;
	}
	pool_put(&s->pool, *h);
	*h = NULL;
	rh = replica_take(s, rq->node_id, lsn, &which);
	if (rh != NULL)
	{
		if (run_step(s, NULL, rh, rq, out, &code, &clone, e, sizeof(e)) == 0)
		{
			logmsg(LOG_DEBUG, "node %s: %s read from replica %s (it had replayed past %s)",
				   rq->node_id, proto_op_name(rq->op), s->replicas[which].name, lsn);
			replica_give(s, which, rh, false);
			return 1;
		}
		logmsg(code == MHD_HTTP_OK ? LOG_WARNING : LOG_DEBUG, "node %s: %s on replica %s: %s: reading the primary",
			   rq->node_id, proto_op_name(rq->op), s->replicas[which].name, e);
		replica_give(s, which, rh, PQstatus(rh->conn) != CONNECTION_OK);
		buf_reset(out);
	}
	else
		logmsg(LOG_DEBUG, "node %s: %s read from the primary (no replica has replayed past %s)",
			   rq->node_id, proto_op_name(rq->op), lsn);
	*h = pool_get(&s->pool, err, errlen);
	return *h ? 0 : -1;
}

/*
 * An upload a hub transaction overtook: not a failure (counted as served),
 * the client sends it again at once; 503 with "overtaken": true.
 */
static enum MHD_Result
reply_overtaken(Serve *s, struct MHD_Connection *conn, const char *err)
{
	json_t	   *o = json_object();

	pthread_mutex_lock(&s->count_mu);
	s->overtaken++;
	pthread_mutex_unlock(&s->count_mu);
	serve_count(s, MHD_HTTP_OK);
	json_object_set_new(o, "error", http_jtext(err));
	json_object_set_new(o, "status", json_integer(MHD_HTTP_SERVICE_UNAVAILABLE));
	json_object_set_new(o, "overtaken", json_true());
	return http_reply_json(&s->http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, o, NULL, NULL);
}

/*
 * A step that failed: 409 for a clone, 507 for a node with too many
 * changes set aside, the step's own 4xx, else the hub's 5xx.
 */
static enum MHD_Result
reply_failed(Serve *s, struct MHD_Connection *conn, const Hub *h, const ProtoRequest *rq,
			 unsigned int code, bool clone, const char *err)
{
	char		what[128];

	if (clone)
		return serve_error(s, conn, MHD_HTTP_CONFLICT, NULL, NULL, "%s", err);
	if (rq->op == OP_UPLOAD && h->up.stats.full)
	{
		logmsg(LOG_WARNING, "node %s, upload: %s", rq->node_id, err);
		return serve_error(s, conn, MHD_HTTP_INSUFFICIENT_STORAGE, NULL, NULL, "%s", err);
	}
	if (rq->op == OP_UPLOAD && h->up.overtaken)
		return reply_overtaken(s, conn, err);
	if (code != MHD_HTTP_OK)
		return serve_error(s, conn, code, NULL, NULL, "%s", err);
	snprintf(what, sizeof(what), "node %s, %s", rq->node_id, proto_op_name(rq->op));
	return serve_hub_error(s, conn, h, what, err);
}

/*
 * POST /api/sync/data: decode the request (400 if it is wrong), take a hub
 * connection (an upload waits for its turn first), check that the user may
 * act for the node (403), run the step, reply.
 */
enum MHD_Result
serve_data(Serve *s, struct MHD_Connection *conn, HttpRequest *req)
{
	ProtoRequest rq;
	char		err[2048];
	Hub		   *h;
	Buf			out = {0};
	unsigned int code = MHD_HTTP_OK;
	bool		clone = false;
	enum MHD_Result ret;
	int64_t		t0 = mono_us(),
				t1;
	int			allowed,
				replica;
	size_t		body_len;

	/* an upload's pk and rows are read from the body page by page as the
	 * hub applies them (do_upload): the body is kept till the reply */
	if (proto_decode_request(req->body.p ? req->body.p : "", req->body.len, &rq, err, sizeof(err)) < 0)
		return serve_error(s, conn, MHD_HTTP_BAD_REQUEST, NULL, NULL, "%s", err);
	body_len = req->body.len;
	t1 = mono_us();
	if (rq.op == OP_UPLOAD)
		upload_turn_take(s);
	h = pool_get(&s->pool, err, sizeof(err));
	if (h == NULL)
		ret = serve_hub_error(s, conn, NULL, "the hub", err);
	else if ((allowed = node_allowed(s, h, req, rq.node_id, err, sizeof(err))) < 0)
		ret = serve_hub_error(s, conn, h, "the hub", err);
	else if (allowed == 0)
	{
		const char *whose = strcasecmp(rq.node_id, h->node_id) == 0 ? "is the hub's own" :
			"belongs to another user";

		logmsg(LOG_WARNING, "user \"%s\" asked to act for node %s, which %s: refused",
			   req->user, rq.node_id, whose);
		ret = serve_error(s, conn, MHD_HTTP_FORBIDDEN, NULL, NULL, "node %s %s", rq.node_id, whose);
	}
	else if ((replica = read_on_replica(s, &h, &rq, &out, err, sizeof(err))) < 0)
		ret = serve_hub_error(s, conn, NULL, "the hub", err);
	else if (replica == 0 && run_step(s, conn, h, &rq, &out, &code, &clone, err, sizeof(err)) < 0)
	{
		if (rq.op == OP_UPLOAD && http_peer_gone(conn))
		{
			logmsg(LOG_INFO, "node %s, upload: %s", rq.node_id, err);
			ret = MHD_NO;		/* nobody to answer */
		}
		else
			ret = reply_failed(s, conn, h, &rq, code, clone, err);
	}
	else
	{
		serve_count(s, MHD_HTTP_OK);
		logmsg(LOG_DEBUG, "node %s: %s of %zu bytes: decoded in %.1f ms, answered %zu bytes in %.1f ms",
			   rq.node_id, proto_op_name(rq.op), body_len, (double) (t1 - t0) / 1e3,
			   out.len, (double) (mono_us() - t1) / 1e3);
		ret = http_reply_buf(&s->http, conn, MHD_HTTP_OK, &out);
	}
	buf_free(&out);
	if (h)
		pool_put(&s->pool, h);
	if (rq.op == OP_UPLOAD)
		upload_turn_give(s);
	proto_request_free(&rq);
	return ret;
}

/*
 * GET /api/sync/wait?serve=ID&changes=N&requests=M&node=UUID: a long poll.
 * Answers when the hub's wake-up counters pass N or M, except for change
 * wake-ups caused by node's own uploads, or after WAIT_MAX_S; "wake" says
 * why ("change", "request" or null). Counters of another serve process
 * (ID) mean nothing here: it answers at once then.
 */
enum MHD_Result
serve_wait(Serve *s, struct MHD_Connection *conn)
{
	const char *ch = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "changes"),
			   *rq = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "requests"),
			   *id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "serve"),
			   *node = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "node");
	int64_t		c0 = ch ? strtoll(ch, NULL, 10) : 0,
				r0 = rq ? strtoll(rq, NULL, 10) : 0,
				c,
				r;
	bool		fresh = id == NULL || strcmp(id, s->serve_id) != 0 || c0 < 0 || r0 < 0;
	const char *wake = NULL;
	struct timespec until;
	Buf			out = {0};

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MAX_S;
	pthread_mutex_lock(&s->wakes.mu);
	while (!fresh && !s->wakes.stop && !stop_requested)
	{
		if (s->wakes.requests > r0)
		{
			wake = SYNCQ_PAYLOAD_REQUEST;
			break;
		}
		if (s->wakes.changes > c0)
		{
			/* anyone's but this node's own? */
			if (s->wakes.changes - c0 > WAKE_RING - 8 || node == NULL)
				wake = SYNCQ_PAYLOAD_CHANGE;
			for (int64_t g = c0 + 1; wake == NULL && g <= s->wakes.changes; g++)
				if (strcmp(s->wakes.origin[g % WAKE_RING], node) != 0)
					wake = SYNCQ_PAYLOAD_CHANGE;
			if (wake)
				break;
			c0 = s->wakes.changes;
		}
		if (pthread_cond_timedwait(&s->wakes.cv, &s->wakes.mu, &until) == ETIMEDOUT)
			break;
	}
	c = s->wakes.changes;
	r = s->wakes.requests;
	pthread_mutex_unlock(&s->wakes.mu);
	{
		ProtoWait	pw = {.changes = c, .requests = r};

		snprintf(pw.serve, sizeof(pw.serve), "%s", s->serve_id);
		snprintf(pw.wake, sizeof(pw.wake), "%s", wake ? wake : "");
		proto_encode_wait(&out, &pw);
	}
	serve_count(s, MHD_HTTP_OK);
	return http_reply_buf(&s->http, conn, MHD_HTTP_OK, &out);
}

