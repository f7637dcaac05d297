/*
 * download.c — the hub's side of a download (hub.h, docs/replication.md).
 *
 *   hub_download_begin   a REPEATABLE READ transaction; its snapshot is
 *                        the client's next position
 *   hub_changes_open     the cursor of the changes a client has not seen
 *   hub_table_open       the cursor of a table's rows (first sync)
 *   hub_changes_read     a page of those changes without a cursor, each
 *                        with the end of its transaction
 *   hub_changes_free     free it
 *   hub_fetch            the next page of a cursor
 *   hub_close_cursor     close one
 *   hub_download_end     commit; note where the client stands
 *   hub_note_position    note where a client stands (for housekeeping)
 *   hub_prune_if_due     prune the hub's queue if nobody did for a while
 */
#include "base/base.h"
#include "base/buf.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- download ----------------------------------------------------------- */

/*
 * The queue rows a client sees in a download: those of the transactions
 * between its position ($1) and the target ($3), after seq $4, never its
 * own ($2) but the corrections for it (sync_download_floor() reads them
 * too).
 */
#define CHANGES_FOR_CLIENT \
	" WHERE sync_xid_value(txid) >= sync_xid_value(pg_snapshot_xmin($1::pg_snapshot))" \
	"   AND NOT pg_visible_in_snapshot(txid, $1::pg_snapshot)" \
	"   AND pg_visible_in_snapshot(txid, $3::pg_snapshot)" \
	"   AND seq > $4::bigint" \
	"   AND CASE WHEN for_node IS NULL THEN origin <> $2::uuid ELSE for_node = $2::uuid END"

/*
 * Start a download: a REPEATABLE READ transaction; *snapshot gets its
 * snapshot (the client's next position, malloc'd). *behind is set when the
 * client's position lies below the pruned horizon (it needs a first sync).
 * h->clock_us gets the hub's clock (docs/replication.md): the greater of
 * its wall clock and sync_clock + 1 us, above every version the snapshot
 * holds, which the client's own clock then never stamps below; h->wall_us
 * its wall clock alone (what the client's clock offset is measured by).
 */
int
hub_download_begin(Hub *h, const char *position, char **snapshot, bool *behind,
				   char *err, size_t errlen)
{
	PGresult   *res;
	const char *params[1] = {position};

	*snapshot = NULL;
	*behind = false;
	if (hub_exec(h, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) < 0)
		return -1;
	res = hub_prep(h, "SELECT pg_current_snapshot()::text,"
			  "       $1::pg_snapshot IS NOT NULL AND s.horizon_xmin IS NOT NULL"
			  "       AND pg_snapshot_xmin($1::pg_snapshot) < s.horizon_xmin,"
			  "       (extract(epoch FROM greatest(clock_timestamp(), c.hlc + interval '1 microsecond'))"
			  "        * 1000000)::bigint,"
			  "       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
			  "  FROM sync_hub_state s, (SELECT max(hlc) AS hlc FROM sync_clock) c",
			  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
	{
		hub_rollback(h);
		return -1;
	}
	*snapshot = xstrdup(PQgetvalue(res, 0, 0));
	*behind = PQgetvalue(res, 0, 1)[0] == 't';
	h->clock_us = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	h->wall_us = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return 0;
}

/*
 * Where a download from position (node client_id) up to target can start:
 * *floor is below the seq of every row it is to read, and at most the
 * greatest seq there is when it has none. The rows not yet visible in a
 * snapshot are those of its transactions from its xmin on, which
 * sync_queue_txid finds without reading the rows before them. Read
 * along the queue's key, a download from seq 0 reads every row of the
 * queue before it comes to them: a client one change behind, with 200,000
 * rows queued, waited 100 ms for each page so read (the statement of a page
 * is prepared, and its generic plan walks sync_queue_pkey from `after`).
 * sync_download_floor() reads it through that index, with sequential
 * scans off (sql/src/20_replication.sql says why).
 */
static int
changes_floor(Hub *h, const char *position, const char *target, const char *client_id,
			  int64_t *floor, char *err, size_t errlen)
{
	const char *params[3] = {position, client_id, target};
	PGresult   *res;

	res = hub_run(h, "SELECT sync_download_floor($1::pg_snapshot, $2::uuid, $3::pg_snapshot)",
				  3, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	*floor = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/*
 * Open the cursor of the hub's changes a client at position has not seen
 * (never its own, but the corrections for it), up to snapshot target, after seq done (a download cut
 * short: docs/daemon.md), in seq order. Column 8 is the greatest seq of the
 * row's transaction among these rows: a download may be committed in parts
 * wherever no transaction straddles the cut; column 9 the version a
 * correction replaces (microseconds, or null). Fetch with hub_fetch().
 */
int
hub_changes_open(Hub *h, const char *position, const char *target, int64_t done,
				 const char *client_id, char *err, size_t errlen)
{
	char		donetxt[32];
	const char *params[4] = {position, client_id, target, donetxt};
	PGresult   *res;

	if (done == 0 && changes_floor(h, position, target, client_id, &done, err, errlen) < 0)
		return -1;
	snprintf(donetxt, sizeof(donetxt), "%" PRId64, done);
	res = hub_run(h,
				  "DECLARE syncq_down NO SCROLL CURSOR FOR"
				  " SELECT seq, table_name, op, pk::text, row_data::text,"
				  "        (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority,"
				  "        max(seq) OVER (PARTITION BY txid),"
				  "        (extract(epoch FROM replaces) * 1000000)::bigint"
				  "   FROM sync_queue"
				  CHANGES_FOR_CLIENT
				  "  ORDER BY seq",
				  4, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * The rows a client at position sees between position and target (as
 * hub_changes_open's, same columns but for column 8, each row's transaction:
 * sync_xid_value(txid)) after seq `after`: at most limit of them, in seq
 * order, read along the queue's key with nothing sorted. A page of a
 * download over HTTP is read on its own, so a cursor's window over every
 * row left (max(seq) OVER (PARTITION BY txid)) would sort all the rest of a
 * download for every page: a transaction of 300,000 rows took 15 such
 * sorts, 4.8 s on the hub. txn_ends_after says where its transactions end
 * instead.
 *
 * The limit is a subquery so that the planner cannot see its value: it then
 * plans for the first tenth of the rows and walks sync_queue_pkey from
 * `after`, stopping at the limit. Given the number, a custom plan (every
 * first five runs of the statement on a connection) took the limit for more
 * rows than its filter leaves and chose to read every row after `after`,
 * format them all and sort them: 140-300 ms a page of 20,000 with 100,000
 * queued, 20 ms along the key.
 */
static PGresult *
changes_page(Hub *h, const char *position, const char *target, int64_t after,
			 const char *client_id, int limit, char *err, size_t errlen)
{
	char		aftertxt[32],
				limittxt[16];
	const char *params[5] = {position, client_id, target, aftertxt, limittxt};

	snprintf(aftertxt, sizeof(aftertxt), "%" PRId64, after);
	snprintf(limittxt, sizeof(limittxt), "%d", limit);
	return hub_prep(h,
					"SELECT seq, table_name, op, pk::text, row_data::text,"
					"       (extract(epoch FROM changed_at) * 1000000)::bigint, origin::text, priority,"
					"       sync_xid_value(txid),"
					"       (extract(epoch FROM replaces) * 1000000)::bigint"
					"  FROM sync_queue"
					CHANGES_FOR_CLIENT
					" ORDER BY seq LIMIT (SELECT $5::int)",
					5, params, PGRES_TUPLES_OK, err, errlen);
}

/*
 * Where each transaction xids[0..n) (sync_xid_value, ascending) goes on
 * after seq last, among the rows a client sees: ends[i] its greatest seq
 * there, 0 if it has none after last. All of a transaction's rows lie
 * between the same two snapshots, so a page's position and target need no
 * checking again. Read by the transactions (sync_queue_txid) or by seq, as
 * the planner finds cheaper: a plain statement, planned for its values.
 */
static int
txn_ends_after(Hub *h, const char *client_id, int64_t last, const int64_t *xids, int n,
			   int64_t *ends, char *err, size_t errlen)
{
	Buf			arr = {0};
	char		lasttxt[32],
				lo[32],
				hi[32];
	const char *params[5] = {lasttxt, NULL, lo, hi, client_id};
	PGresult   *res;
	int			j = 0;

	for (int i = 0; i < n; i++)
	{
		buf_printf(&arr, "%c%" PRId64, i == 0 ? '{' : ',', xids[i]);
		ends[i] = 0;
	}
	if (n == 0)
		buf_putc(&arr, '{');
	buf_putc(&arr, '}');
	snprintf(lasttxt, sizeof(lasttxt), "%" PRId64, last);
	snprintf(lo, sizeof(lo), "%" PRId64, n > 0 ? xids[0] : 0);
	snprintf(hi, sizeof(hi), "%" PRId64, n > 0 ? xids[n - 1] : 0);
	params[1] = arr.p;
	res = hub_run(h,
				  "SELECT sync_xid_value(q.txid), max(q.seq)"
				  "  FROM sync_queue q"
				  " WHERE q.txid BETWEEN $3::xid8 AND $4::xid8"
				  "   AND q.txid = ANY ($2::xid8[])"
				  "   AND q.seq > $1::bigint"
				  "   AND CASE WHEN q.for_node IS NULL THEN q.origin <> $5::uuid ELSE q.for_node = $5::uuid END"
				  " GROUP BY 1 ORDER BY 1",
				  5, params, PGRES_TUPLES_OK, err, errlen);
	buf_free(&arr);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		int64_t		x = strtoll(PQgetvalue(res, r, 0), NULL, 10);

		while (j < n && xids[j] < x)
			j++;
		if (j < n && xids[j] == x)
			ends[j] = strtoll(PQgetvalue(res, r, 1), NULL, 10);
	}
	PQclear(res);
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/* The index of x in the ascending xs[0..n); n if it is not there. */
static int
find_i64(const int64_t *xs, int n, int64_t x)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (xs[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && xs[lo] == x ? lo : n;
}

/*
 * The ends of the transactions xids[0..nx) (ascending) of a page of changes
 * for node that ends at seq last with more to come: into ends[i], which
 * holds each one's greatest seq in the page; those that go on past the
 * page get their greatest seq after it, from the connection's memory of
 * earlier pages (HubTxnEnd) or the hub (txn_ends_after), and are
 * remembered.
 */
static int
txn_ends(Hub *h, const char *node, int64_t last, const int64_t *xids, int nx, int64_t *ends,
		 char *err, size_t errlen)
{
	int64_t    *ask = xmalloc(sizeof(int64_t) * ((size_t) nx + 1)),
			   *after = xmalloc(sizeof(int64_t) * ((size_t) nx + 1));
	int			nask = 0,
				rc = 0;

	for (int i = 0; i < nx; i++)
	{
		bool		known = false;

		for (int k = 0; k < HUB_TXN_ENDS && !known; k++)
			if (h->txn_ends[k].xid == xids[i] && strcmp(h->txn_ends[k].node_id, node) == 0)
			{
				known = true;
				if (h->txn_ends[k].end > ends[i])
					ends[i] = h->txn_ends[k].end;
			}
		if (!known)
			ask[nask++] = xids[i];
	}
	if (nask > 0 && (rc = txn_ends_after(h, node, last, ask, nask, after, err, errlen)) == 0)
		for (int a = 0; a < nask; a++)
		{
			int			i = find_i64(xids, nx, ask[a]);
			HubTxnEnd  *e;

			if (after[a] == 0 || i == nx)
				continue;		/* ends in the page */
			ends[i] = after[a];
			e = &h->txn_ends[h->txn_ends_next];
			h->txn_ends_next = (h->txn_ends_next + 1) % HUB_TXN_ENDS;
			snprintf(e->node_id, sizeof(e->node_id), "%s", node);
			e->xid = ask[a];
			e->end = after[a];
		}
	free(ask);
	free(after);
	return rc;
}

/*
 * A page of the changes a client at position (node client_id) has not seen,
 * up to target, after seq `after`, in the download's transaction: at most
 * limit changes into c (c->res, columns as hub_changes_open's but for
 * column 8, the row's transaction; c->n of its rows are the page's), each
 * with the end of its transaction among the changes after `after`
 * (c->txn_end[r], what hub_changes_open's column 8 holds), c->more if more
 * follow. Free with hub_changes_free.
 */
int
hub_changes_read(Hub *h, const char *position, const char *target, int64_t after,
				 const char *client_id, int limit, HubChanges *c, char *err, size_t errlen)
{
	int64_t    *rowx,			/* each row's transaction */
			   *xids,			/* the page's transactions, ascending */
			   *ends;			/* ... and where each ends */
	int			nx = 0,
				rc = 0;

	memset(c, 0, sizeof(*c));
	/* a page after `after` starts after a row of the download: above the floor */
	if (after == 0 && changes_floor(h, position, target, client_id, &after, err, errlen) < 0)
		return -1;
	c->res = changes_page(h, position, target, after, client_id, limit + 1, err, errlen);
	if (c->res == NULL)
		return -1;
	c->more = PQntuples(c->res) > limit;
	c->n = c->more ? limit : PQntuples(c->res);
	rowx = xmalloc(sizeof(int64_t) * ((size_t) c->n + 1));
	xids = xmalloc(sizeof(int64_t) * ((size_t) c->n + 1));
	for (int r = 0; r < c->n; r++)
		xids[r] = rowx[r] = strtoll(PQgetvalue(c->res, r, 8), NULL, 10);
	qsort(xids, (size_t) c->n, sizeof(int64_t), cmp_i64);
	for (int r = 0; r < c->n; r++)
		if (nx == 0 || xids[nx - 1] != xids[r])
			xids[nx++] = xids[r];
	ends = xcalloc((size_t) nx + 1, sizeof(int64_t));
	/* rows come in seq order: a transaction's last row in the page is its end there */
	for (int r = 0; r < c->n; r++)
		ends[find_i64(xids, nx, rowx[r])] = strtoll(PQgetvalue(c->res, r, 0), NULL, 10);
	/* the last page: nothing of its transactions comes after it */
	if (c->more)
		rc = txn_ends(h, client_id, strtoll(PQgetvalue(c->res, c->n - 1, 0), NULL, 10),
					  xids, nx, ends, err, errlen);
	c->txn_end = xmalloc(sizeof(int64_t) * ((size_t) c->n + 1));
	for (int r = 0; r < c->n; r++)
		c->txn_end[r] = ends[find_i64(xids, nx, rowx[r])];
	free(rowx);
	free(xids);
	free(ends);
	if (rc < 0)
		hub_changes_free(c);
	return rc;
}

void
hub_changes_free(HubChanges *c)
{
	PQclear(c->res);
	free(c->txn_end);
	memset(c, 0, sizeof(*c));
}

/* Fetch the next page of the cursor; NULL on error (a result with 0 rows
 * at the end). */
PGresult *
hub_fetch(Hub *h, const char *cursor, int n, char *err, size_t errlen)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM %s", n, cursor);
	return hub_run(h, sql, 0, NULL, PGRES_TUPLES_OK, err, errlen);
}

/* Open a cursor over every row of table t as JSON (first sync). */
int
hub_table_open(Hub *h, const HubTable *t, char *err, size_t errlen)
{
	Buf			sql = {0};
	PGresult   *res;
	char	   *rows = hub_rows_sql(h, t);

	buf_printf(&sql, "DECLARE syncq_snap NO SCROLL CURSOR FOR %s", rows);
	free(rows);
	res = hub_run(h, sql.p, 0, NULL, PGRES_COMMAND_OK, err, errlen);
	buf_free(&sql);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
hub_close_cursor(Hub *h, const char *cursor, char *err, size_t errlen)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "CLOSE %s", cursor);
	return hub_exec(h, sql, err, errlen);
}

/*
 * Prune the hub queue (sync_prune) if nobody did for a while; returns the
 * rows deleted, or -1.
 */
long
hub_prune_if_due(Hub *h, char *err, size_t errlen)
{
	return hub_number(h, "SELECT CASE WHEN pruned_at IS NULL OR pruned_at < now() - interval '10 minutes'"
					  " THEN sync_prune() END FROM sync_hub_state", NULL, err, errlen);
}

int
hub_download_end(Hub *h, const char *client_id, const char *snapshot, char *err, size_t errlen)
{
	if (hub_exec(h, "COMMIT", err, errlen) < 0)
		return -1;
	return hub_note_position(h, client_id, snapshot, err, errlen);
}

/* Remember where a client stands (its download position), for housekeeping. */
int
hub_note_position(Hub *h, const char *client_id, const char *snapshot, char *err, size_t errlen)
{
	const char *params[2] = {client_id, snapshot};
	PGresult   *res;

	res = hub_prep(h, "INSERT INTO sync_clients AS c (node_id, down_snapshot) VALUES ($1, $2)"
			  " ON CONFLICT (node_id) DO UPDATE SET down_snapshot = EXCLUDED.down_snapshot, last_seen = now()",
			  2, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

