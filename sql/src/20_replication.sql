
-- ---------------------------------------------------------------------------
-- Replication state kept on the hub (docs/replication.md). syncqd reads and
-- writes these; nothing here is for the app.
-- ---------------------------------------------------------------------------

-- Downloads find a client's changes by transaction visibility (txid against
-- the client's snapshot position); a BRIN index keeps that cheap on a long
-- queue without adding much per-row cost to capture. xid8 has no BRIN
-- operator class, so the index is on its 64-bit value, and queries use
-- sync_xid_value() on both sides.
CREATE FUNCTION sync_xid_value(xid8) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sync_xid_value'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sync_xid_value(xid8) IS 'syncq internal: the 64-bit value of a full transaction id';
CREATE INDEX sync_queue_txid_brin ON sync_queue USING brin (sync_xid_value(txid));

-- One row per client node: how far its uploads went, and where its
-- downloads stand.
CREATE TABLE sync_clients (
	node_id       uuid PRIMARY KEY,
	up_seq        bigint NOT NULL DEFAULT 0,
	up_digest     text NOT NULL DEFAULT '0',
	down_snapshot pg_snapshot,
	first_seen    timestamptz NOT NULL DEFAULT now(),
	last_seen     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_clients IS 'syncq: per client node, the upload position (seq, digest) and the last download position';

-- The version of each row's current state that syncqd knows of:
-- microseconds since 1970 of changed_at, then the origin node.
CREATE TABLE sync_versions (
	-- pk is the key as compact JSON text (docs/queue.md), the same spelling
	-- from the capture trigger and from syncqd
	table_name text NOT NULL,
	pk         text NOT NULL,
	ver_us     bigint NOT NULL,
	ver_origin uuid NOT NULL,
	deleted    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (table_name, pk)
);
COMMENT ON TABLE sync_versions IS 'syncq: the version (changed_at, origin) of each synced row''s current state';

-- Every change overruled by a later one (last writer wins).
CREATE TABLE sync_conflicts (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	detected_at      timestamptz NOT NULL DEFAULT now(),
	table_name       text NOT NULL,
	pk               json NOT NULL,
	loser_op         text NOT NULL,
	loser_row        json,
	loser_changed_at timestamptz NOT NULL,
	loser_origin     uuid NOT NULL,
	winner_changed_at timestamptz NOT NULL,
	winner_origin    uuid NOT NULL
);
COMMENT ON TABLE sync_conflicts IS 'syncq: changes overruled by a later change to the same row';

-- Hub-wide replication state: how far the hub's own changes have been folded
-- into sync_versions, and below which position the queue was pruned.
CREATE TABLE sync_hub_state (
	singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	fold_snapshot pg_snapshot,
	horizon_xmin  xid8,
	retention     interval NOT NULL DEFAULT '30 days',
	pruned_at     timestamptz
);
INSERT INTO sync_hub_state DEFAULT VALUES;

-- Which `syncqd serve` user a client node id belongs to: bound on the node's
-- first request over HTTP, so that no other user can act for it
-- (docs/http.md). Users of the admin credentials are not bound.
CREATE TABLE sync_http_nodes (
	node_id   uuid PRIMARY KEY,
	http_user text NOT NULL,
	bound_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync_http_nodes IS 'syncq: the syncqd serve user each client node id belongs to';

SELECT pg_catalog.pg_extension_config_dump('sync_clients', '');
SELECT pg_catalog.pg_extension_config_dump('sync_http_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('sync_versions', '');
SELECT pg_catalog.pg_extension_config_dump('sync_conflicts', '');

-- Fold the hub's own committed changes (origin = this node) that are not yet
-- in sync_versions into it. Called by syncqd at the start of every upload
-- transaction, under the apply lock, so uploaded changes are compared with
-- them. Idempotent: a version only ever grows.
CREATE FUNCTION sync_fold_local() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	prev pg_snapshot;
	cur  pg_snapshot := pg_current_snapshot();
	me   uuid := sync_node_id();
	n    bigint;
BEGIN
	SELECT fold_snapshot INTO prev FROM sync_hub_state FOR UPDATE;
	INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
	SELECT DISTINCT ON (q.table_name, q.pk::text)
	       q.table_name, q.pk::text,
	       (extract(epoch FROM q.changed_at) * 1000000)::bigint, q.origin, q.op = 'D'
	FROM sync_queue q
	WHERE q.origin = me
	  AND pg_visible_in_snapshot(q.txid, cur)
	  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
	                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
	ORDER BY q.table_name, q.pk::text, q.changed_at DESC, q.seq DESC
	ON CONFLICT (table_name, pk) DO UPDATE
	   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted
	 WHERE (v.ver_us, v.ver_origin::text) <= (EXCLUDED.ver_us, EXCLUDED.ver_origin::text);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state SET fold_snapshot = cur;
	RETURN n;
END
$$;
COMMENT ON FUNCTION sync_fold_local() IS 'syncq internal: fold the hub''s own changes into sync_versions';
REVOKE ALL ON FUNCTION sync_fold_local() FROM PUBLIC;

-- Delete the queue rows every client that synced within the retention
-- window has already received, and remember the horizon: a client whose
-- position lies below it (it was away longer than the window) gets a first
-- sync again instead of silently missing what was deleted. syncqd calls it
-- now and then; it may also be run by hand or from a scheduler.
CREATE FUNCTION sync_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	keep   interval;
	needed xid8;
	n      bigint;
BEGIN
	PERFORM sync_fold_local();
	SELECT retention INTO keep FROM sync_hub_state FOR UPDATE;
	SELECT min(pg_snapshot_xmin(c.down_snapshot)) INTO needed
	  FROM sync_clients c
	 WHERE c.down_snapshot IS NOT NULL AND c.last_seen > now() - keep;
	-- no active client: keep what the hub's own snapshot could still miss
	needed := coalesce(needed, pg_snapshot_xmin(pg_current_snapshot()));
	DELETE FROM sync_queue WHERE sync_xid_value(txid) < sync_xid_value(needed);
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state
	   SET horizon_xmin = greatest(horizon_xmin, needed), pruned_at = now();
	RETURN n;
END
$$;
COMMENT ON FUNCTION sync_prune() IS 'delete queue rows every recently active client has received (sync_hub_state.retention)';
REVOKE ALL ON FUNCTION sync_prune() FROM PUBLIC;
