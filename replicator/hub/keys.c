/*
 * keys.c — keys the hub assigns (hub.h; docs/replication.md, "Keys the hub
 * assigns"). A table whose key is one integer column the database assigns
 * (HubTable.keyseq: serial, identity, a nextval default) gets keys made on
 * many nodes: two offline clients both make row 1. When a client's insert
 * meets another record under its key on the hub, the hub gives the row a
 * new key from its own sequence (apply.c decides when); every node then
 * holds it under that key. The client learns it in the upload's reply and
 * renames its row, its references and its queued changes (client/keys.c).
 *
 * Until the client acknowledges the upload, the rename is kept in
 * sync_key_renames: a reply lost in a crash is given again with the
 * re-sent upload, and the client's changes made before it renamed (later
 * updates and deletes of the row, rows that reference it) are followed to
 * the new key here.
 *
 *   hub_keys_load       the client's renames not yet acknowledged
 *   hub_keys_follow     a change that names an old key names the new one
 *   hub_keys_unacked    is a key the new key of a rename not acknowledged?
 *   hub_keys_assign     a new key for a client's insert, from the sequence
 *   hub_seqs_ahead      key sequences moved past keys that arrived
 *   hub_keys_store      this upload's new renames into sync_key_renames
 */
#include "base/base.h"
#include "base/buf.h"
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* New keys tried before giving up (each taken by a row the hub's app made). */
#define ASSIGN_TRIES 1000

static void
push_rename(HubUpload *u, int64_t seq, const char *table, const char *column,
			int64_t old_key, int64_t new_key)
{
	KeyRename  *r;

	u->renames = xrealloc(u->renames, sizeof(KeyRename) * (size_t) (u->nrenames + 1));
	u->rename_end = xrealloc(u->rename_end, sizeof(int64_t) * (size_t) (u->nrenames + 1));
	r = &u->renames[u->nrenames];
	r->seq = seq;
	r->table = xstrdup(table);
	r->column = xstrdup(column);
	r->old_key = old_key;
	r->new_key = new_key;
	u->rename_end[u->nrenames] = INT64_MAX;
	u->nrenames++;
}

/*
 * Begin an upload's renames: forget those the client acknowledged (at or
 * below ack_seq: it renamed its row in the same transaction), read the
 * rest, in seq order.
 */
int
hub_keys_load(Hub *h, const char *client_id, int64_t ack_seq, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	char		seqtxt[32];
	const char *params[2] = {client_id, seqtxt};
	PGresult   *res;

	snprintf(seqtxt, sizeof(seqtxt), "%" PRId64, ack_seq);
	res = hub_prep(h, "DELETE FROM sync_key_renames WHERE node_id = $1 AND seq <= $2",
				  2, params, PGRES_COMMAND_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	res = hub_prep(h, "SELECT seq, table_name, key_column, old_key, new_key FROM sync_key_renames"
				  " WHERE node_id = $1 AND seq > $2 ORDER BY seq",
				  2, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		push_rename(u, strtoll(PQgetvalue(res, r, 0), NULL, 10), PQgetvalue(res, r, 1),
					PQgetvalue(res, r, 2), strtoll(PQgetvalue(res, r, 3), NULL, 10),
					strtoll(PQgetvalue(res, r, 4), NULL, 10));
	u->nstored = u->nrenames;
	PQclear(res);
	return 0;
}

/*
 * The rename that key v of table (as the client named it in its change at
 * seq) stands for: the last one of that old key before seq whose row the
 * client had not made again since (an insert of the old key after the
 * rename is a new record). -1 if none.
 */
static int
rename_of(const HubUpload *u, const char *table, int64_t v, int64_t seq)
{
	for (int i = u->nrenames - 1; i >= 0; i--)
	{
		const KeyRename *r = &u->renames[i];

		if (r->seq < seq && r->old_key == v && seq < u->rename_end[i] &&
			strcmp(r->table, table) == 0)
			return i;
	}
	return -1;
}

/*
 * A change of the client names keys by the names they had on the client
 * when it was made: where the hub renamed a key before it (in this upload
 * or one the client has not acknowledged), the change is made to name the
 * new key: its own key (an update or delete of the renamed row) and the
 * columns that reference one (HubTable.refs). An insert of an old key is a
 * new record: it ends the old key's rename for the changes after it. True
 * if the change's own key changed.
 */
bool
hub_keys_follow(Hub *h, const HubTable *t, Change *c)
{
	HubUpload  *u = &h->up;
	bool		own = false;
	int64_t		v;
	int			i;

	if (u->nrenames == 0)
		return false;
	if (t->keycol && change_int_field(c, t->keycol, &v) &&
		(i = rename_of(u, t->name, v, c->seq)) >= 0)
	{
		if (c->op == SYNCQ_OP_INSERT)
			u->rename_end[i] = c->seq;
		else
			own = change_set_int(c, t->keycol, v, u->renames[i].new_key);
	}
	for (int f = 0; f < t->refs.n; f++)
		if (change_int_field(c, t->refs.from[f], &v) &&
			(i = rename_of(u, t->refs.to[f], v, c->seq)) >= 0 &&
			change_set_int(c, t->refs.from[f], v, u->renames[i].new_key) &&
			jobj_get(&c->pk, t->refs.from[f]) != NULL)
			own = true;
	return own;
}

/*
 * Is key k of table t the new key of a rename made before seq that the
 * client has not acknowledged? Then the client's own row k is another
 * record still (its insert of k meets the renamed row, not itself).
 */
bool
hub_keys_unacked(Hub *h, const HubTable *t, int64_t k, int64_t seq)
{
	const HubUpload *u = &h->up;

	for (int i = 0; i < u->nrenames; i++)
		if (u->renames[i].seq < seq && u->renames[i].new_key == k &&
			strcmp(u->renames[i].table, t->name) == 0)
			return true;
	return false;
}

/*
 * Move key sequences past keys that arrived: seqs is a JSON array of
 * {"s": sequence, "k": key}. A sequence set is locked first
 * (pg_advisory_xact_lock(SEQ_LOCK_KEY, sequence), until the upload
 * commits), then checked again: two uploads side by side could otherwise
 * both see it low and the lower setval land last. Most of the time none is
 * below its key, and nothing is locked. (setval is not undone by a
 * rollback: an upload that fails after it leaves a gap in the keys.)
 */
#define SEQ_LOCK_KEY "1937337955"	/* 'sync' in ASCII */
#define SEQS_BELOW \
	"  FROM json_to_recordset($1::json) AS x(s text, k bigint)" \
	"  JOIN pg_sequence q ON q.seqrelid = x.s::regclass" \
	" WHERE q.seqincrement > 0 AND x.k <= q.seqmax" \
	"   AND x.k > coalesce(pg_sequence_last_value(x.s::regclass), q.seqstart - 1)"

int
hub_seqs_ahead(Hub *h, const char *seqs, char *err, size_t errlen)
{
	const char *params[1] = {seqs};
	PGresult   *res;
	bool		none;

	res = hub_run(h, "SELECT count(pg_advisory_xact_lock(" SEQ_LOCK_KEY ", l.o))"
				  "  FROM (SELECT (q.seqrelid::bigint - 2147483648)::int AS o" SEQS_BELOW
				  "         ORDER BY 1 OFFSET 0) l",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	none = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
	PQclear(res);
	if (none)
		return 0;
	res = hub_run(h, "SELECT setval(x.s::regclass, x.k)" SEQS_BELOW,
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * Give the client's insert c of table t (key old) a new key: t's sequence
 * first moved past floor (the greatest key of t the upload carries, so the
 * new key is no key of the client's own), then drawn until a key no hub
 * row has and claim takes (it holds the key's version row: an upload side
 * by side may have just inserted that key, above the sequence, and not
 * committed yet; claim waits for it, and the key is drawn again). The
 * change takes the new key; the rename is kept for the reply.
 */
int
hub_keys_assign(Hub *h, const HubTable *t, Change *c, int64_t old, int64_t floor,
				KeyClaim claim, void *arg, char *err, size_t errlen)
{
	const char *params[1] = {t->keyseq};
	char	   *qcol = hub_quote_ident(h, t->keycol);
	Buf			sql = {0},
				seq = {0};
	JsonOut		w;
	PGresult   *res;
	int64_t		k = 0;
	bool		found = false;

	jout_init(&w, &seq);
	jout_array(&w);
	jout_object(&w);
	jout_kstring(&w, "s", t->keyseq);
	jout_kint(&w, "k", floor);
	jout_object_end(&w);
	jout_array_end(&w);
	if (hub_seqs_ahead(h, seq.p, err, errlen) < 0)
		goto out;
	buf_printf(&sql, "SELECT n.k, EXISTS (SELECT FROM %s WHERE %s = n.k)"
			   "  FROM (SELECT nextval($1::regclass) AS k) n", t->qname, qcol);
	for (int i = 0; i < ASSIGN_TRIES && !found; i++)
	{
		res = hub_run(h, sql.p, 1, params, PGRES_TUPLES_OK, err, errlen);
		if (res == NULL)
			goto out;
		k = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		found = strcmp(PQgetvalue(res, 0, 1), "f") == 0;
		PQclear(res);
		if (found && claim != NULL)
		{
			int			rc = claim(arg, t, k, err, errlen);

			if (rc < 0)
				goto out;
			found = rc == 1;
		}
	}
	if (!found)
	{
		snprintf(err, errlen, "hub: no free key in %d values of sequence %s for a new row of \"%s\"",
				 ASSIGN_TRIES, t->keyseq, t->name);
		goto out;
	}
	change_set_int(c, t->keycol, old, k);
	push_rename(&h->up, c->seq, t->name, t->keycol, old, k);
	logmsg(LOG_INFO, "row %s = %" PRId64 " of \"%s\" from node %s is another record than the hub's: it is %" PRId64 " now",
		   t->keycol, old, t->name, h->up.client_id, k);
out:
	free(qcol);
	buf_free(&sql);
	buf_free(&seq);
	return found ? 0 : -1;
}

/* Keep this upload's new renames until the client acknowledges them. */
int
hub_keys_store(Hub *h, char *err, size_t errlen)
{
	HubUpload  *u = &h->up;
	Buf			rows = {0};
	JsonOut		w;
	const char *params[2];
	PGresult   *res;

	if (u->nstored == u->nrenames)
		return 0;
	jout_init(&w, &rows);
	jout_array(&w);
	for (int i = u->nstored; i < u->nrenames; i++)
	{
		jout_object(&w);
		jout_kint(&w, "s", u->renames[i].seq);
		jout_kstring(&w, "t", u->renames[i].table);
		jout_kstring(&w, "c", u->renames[i].column);
		jout_kint(&w, "o", u->renames[i].old_key);
		jout_kint(&w, "n", u->renames[i].new_key);
		jout_object_end(&w);
	}
	jout_array_end(&w);
	params[0] = u->client_id;
	params[1] = rows.p;
	res = hub_run(h, "INSERT INTO sync_key_renames (node_id, seq, table_name, key_column, old_key, new_key)"
				  " SELECT $1::uuid, x.s, x.t, x.c, x.o, x.n"
				  "   FROM json_to_recordset($2::json) AS x(s bigint, t text, c text, o bigint, n bigint)"
				  " ON CONFLICT (node_id, seq) DO UPDATE SET new_key = EXCLUDED.new_key, old_key = EXCLUDED.old_key",
				  2, params, PGRES_COMMAND_OK, err, errlen);
	buf_free(&rows);
	if (res == NULL)
		return -1;
	PQclear(res);
	u->nstored = u->nrenames;
	return 0;
}
