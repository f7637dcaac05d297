/*
 * serve_replica.c — the hub's streaming replicas (hot standbys) that
 * `syncqd serve --replica` reads downloads from (docs/replication.md,
 * Reads from replicas; serve_state.h).
 *
 *   replica_open        a pool for each replica; say at start which are used
 *   replica_close       close them
 *   replica_take        a connection of a replica that has replayed at least
 *                       to a WAL position of the primary (NULL: none has)
 *   replica_give        give it back (a replica that failed rests a while)
 *   snapshot_lsn_keep   remember the primary's WAL position when it took the
 *                       snapshot it gave a node ...
 *   snapshot_lsn_find   ... and find it again for that snapshot
 *
 * A replica is read only for what it has replayed: the caller names the
 * primary's WAL insert position taken after everything the request must
 * see had committed, and a replica serves the request only if its replay
 * had passed that position before the request's snapshot is taken there.
 */
#include "base/base.h"
#include "http/serve_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The replica's host:port (or its number), for the log. */
static void
replica_name(const char *conninfo, int i, char *name, size_t len)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL,
			   *port = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
	{
		if (strcmp(o->keyword, "host") == 0 && o->val && o->val[0])
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0 && o->val && o->val[0])
			port = o->val;
	}
	if (host)
		snprintf(name, len, "%s:%s", host, port ? port : "5432");
	else
		snprintf(name, len, "replica %d", i + 1);
	PQconninfoFree(opts);
}

/* Leave replica r alone for REPLICA_REST_S. */
static void
replica_rest(Serve *s, Replica *r)
{
	pthread_mutex_lock(&s->rep_mu);
	r->rest_until_us = mono_us() + REPLICA_REST_S * 1000000LL;
	pthread_mutex_unlock(&s->rep_mu);
}

static bool
replica_resting(Serve *s, Replica *r)
{
	bool		resting;

	pthread_mutex_lock(&s->rep_mu);
	resting = r->rest_until_us > mono_us();
	pthread_mutex_unlock(&s->rep_mu);
	return resting;
}

/*
 * Is h a hot standby of this hub (the same node id), replayed to lsn? Its
 * replay position goes into at. 1 yes, 0 not that far yet, -1 not usable
 * (why in err).
 */
static int
replica_check(Serve *s, Hub *h, const char *lsn, char *at, size_t atlen, char *err, size_t errlen)
{
	const char *params[1] = {lsn};
	PGresult   *res;
	int			rc;

	if (strcmp(h->node_id, s->hub_node_id) != 0)
	{
		snprintf(err, errlen, "it is node %s, not the hub (%s): not a replica of it", h->node_id,
				 s->hub_node_id);
		return -1;
	}
	res = hub_run(h, "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),"
				  "       coalesce(pg_last_wal_replay_lsn()::text, '')",
				  1, params, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	snprintf(at, atlen, "%s", PQgetvalue(res, 0, 2));
	if (PQgetvalue(res, 0, 0)[0] != 't')
	{
		snprintf(err, errlen, "it is not in recovery (promoted?): not a replica");
		rc = -1;
	}
	else
		rc = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return rc;
}

/*
 * A pool for each replica (at most REPLICAS_MAX), as large as the hub's;
 * each is tried once now and said in the log. A replica that is down now
 * is tried again when a request comes. 0, or -1 if there are too many.
 */
int
replica_open(Serve *s, char *const *conninfos, int n)
{
	if (n > REPLICAS_MAX)
	{
		logmsg(LOG_ERROR, "at most %d --replica", REPLICAS_MAX);
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		Replica    *r = &s->replicas[i];
		char		err[1024],
					at[32];
		Hub		   *h;

		pool_init(&r->pool, conninfos[i], s->pool.max, s->pool.max_set_aside);
		replica_name(conninfos[i], i, r->name, sizeof(r->name));
		s->nreplicas++;
		h = pool_take(&r->pool, 0, NULL, err, sizeof(err));
		if (h == NULL || replica_check(s, h, "0/0", at, sizeof(at), err, sizeof(err)) < 0)
		{
			logmsg(LOG_WARNING, "replica %s: %s: downloads go to the primary until it answers", r->name, err);
			if (h)
				replica_give(s, i, h, true);
			else
				replica_rest(s, r);
			continue;
		}
		logmsg(LOG_INFO, "replica %s: database \"%s\", replayed to %s: downloads read from it when it has replayed what they need",
			   r->name, PQdb(h->conn), at);
		replica_give(s, i, h, false);
	}
	return 0;
}

void
replica_close(Serve *s)
{
	for (int i = 0; i < s->nreplicas; i++)
		pool_close(&s->replicas[i].pool);
	for (int i = 0; i < SNAPSHOT_SLOTS; i++)
		free(s->snap_lsn[i].snapshot);
}

/*
 * A connection of a replica that has replayed the primary's WAL at least
 * to lsn (its index into *which), the replicas tried in turn from the one
 * after the last one asked; NULL if none has (or none answers, or all
 * are busy): the caller reads the primary then. The replay position is
 * read before the caller's first statement there, so the snapshot that
 * statement takes sees everything committed below lsn.
 */
Hub *
replica_take(Serve *s, const char *node_id, const char *lsn, int *which)
{
	unsigned int start;

	if (s->nreplicas == 0)
		return NULL;
	pthread_mutex_lock(&s->rep_mu);
	start = s->rep_next++;
	pthread_mutex_unlock(&s->rep_mu);
	for (int k = 0; k < s->nreplicas; k++)
	{
		int			i = (int) ((start + (unsigned int) k) % (unsigned int) s->nreplicas);
		Replica    *r = &s->replicas[i];
		char		err[1024],
					at[32] = "";
		bool		busy;
		Hub		   *h;
		int			ok;

		if (replica_resting(s, r))
			continue;
		h = pool_take(&r->pool, 0, &busy, err, sizeof(err));
		if (h == NULL)
		{
			if (!busy)
			{
				logmsg(LOG_WARNING, "replica %s: %s: skipped for %d s", r->name, err, REPLICA_REST_S);
				replica_rest(s, r);
			}
			continue;
		}
		ok = replica_check(s, h, lsn, at, sizeof(at), err, sizeof(err));
		if (ok < 0)
		{
			logmsg(LOG_WARNING, "replica %s: %s: skipped for %d s", r->name, err, REPLICA_REST_S);
			replica_give(s, i, h, true);
			continue;
		}
		if (ok == 0)
		{
			logmsg(LOG_DEBUG, "node %s: replica %s has replayed to %s, the download needs %s",
				   node_id, r->name, at, lsn);
			replica_give(s, i, h, false);
			continue;
		}
		*which = i;
		return h;
	}
	return NULL;
}

/*
 * Give h back to replica which; rest: leave the replica alone a while. A
 * connection that was lost closes the idle ones too: the replica went away
 * or restarted, and they would each fail once.
 */
void
replica_give(Serve *s, int which, Hub *h, bool rest)
{
	Replica    *r = &s->replicas[which];
	bool		lost = PQstatus(h->conn) != CONNECTION_OK;

	if (rest)
		replica_rest(s, r);
	pool_put(&r->pool, h);
	if (lost)
		pool_drop_idle(&r->pool);
}

/* ---- snapshots and the primary's WAL position ---------------------------- */

static SnapshotLsn *
slot_of(Serve *s, const char *node_id)
{
	uint64_t	hash = 14695981039346656037ULL;

	for (const char *p = node_id; *p; p++)
		hash = (hash ^ (unsigned char) (*p | 0x20)) * 1099511628211ULL;
	return &s->snap_lsn[hash % SNAPSHOT_SLOTS];
}

/* The snapshot just given to node was taken before the primary stood at lsn. */
void
snapshot_lsn_keep(Serve *s, const char *node_id, const char *snapshot, const char *lsn)
{
	SnapshotLsn *slot = slot_of(s, node_id);

	pthread_mutex_lock(&s->rep_mu);
	free(slot->snapshot);
	slot->snapshot = xstrdup(snapshot);
	snprintf(slot->node, sizeof(slot->node), "%s", node_id);
	snprintf(slot->lsn, sizeof(slot->lsn), "%s", lsn);
	pthread_mutex_unlock(&s->rep_mu);
}

/*
 * The primary's WAL position kept for exactly this snapshot of node (given
 * by this process), into lsn; false if there is none.
 */
bool
snapshot_lsn_find(Serve *s, const char *node_id, const char *snapshot, char *lsn, size_t lsnlen)
{
	SnapshotLsn *slot = slot_of(s, node_id);
	bool		found;

	pthread_mutex_lock(&s->rep_mu);
	found = slot->snapshot != NULL && strcmp(slot->node, node_id) == 0 &&
		strcmp(slot->snapshot, snapshot) == 0;
	if (found)
		snprintf(lsn, lsnlen, "%s", slot->lsn);
	pthread_mutex_unlock(&s->rep_mu);
	return found;
}
