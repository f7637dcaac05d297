
-- ---------------------------------------------------------------------------
-- Replication state kept on the hub (docs/replication.md). syncqd reads and
-- writes these; nothing here is for the app.
-- ---------------------------------------------------------------------------

-- Downloads find a client's changes by transaction visibility (txid against
-- the client's snapshot position), through a B-tree on txid (xid8's own
-- operator class). On txid, not on sync_xid_value(txid) as
-- sync_queue_origin_txid below is, so that a read of the hub's own changes
-- (origin = ..., sync_xid_value(txid) >= ...) can only take that one: with
-- one expression for both, the planner read every upload's relays since
-- the fold's snapshot through this index, 10-13 ms a sync with 750,000 rows
-- queued. A B-tree, not BRIN: a BRIN range's summary only widens, and the
-- free space VACUUM finds in old pages (after a prune, or left by a bulk
-- insert) takes new rows, so that old ranges came to match every recent
-- transaction and a one-row sync read 13,000 rows with 300,000 queued; and
-- until ANALYZE has seen the queue, PostgreSQL costs a BRIN index as of no
-- use and reads the whole queue instead (bench part 52). All rows of a
-- transaction share one key, which the B-tree keeps once (deduplication):
-- 4 MB for 300,000 rows written 100,000 a statement, and no cost to
-- capture measured (100,000 captured inserts: 831-848 ms, against 848-981
-- with BRIN).
CREATE FUNCTION sync_xid_value(xid8) RETURNS bigint
	AS 'MODULE_PATHNAME', 'sync_xid_value'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sync_xid_value(xid8) IS 'syncq internal: the 64-bit value of a full transaction id';
CREATE INDEX sync_queue_txid ON sync_queue (txid);

-- The hub's own changes since a snapshot (sync_fold_local, the late read of
-- an upload, sync_overtaken: docs/replication.md, Uploads side by side) are
-- found by origin and transaction: sync_queue_txid alone would have them read
-- every row queued since, and most of those are the relays of the uploads
-- that run side by side, so that each upload's fold cost grew with the
-- number of uploads at once.
CREATE INDEX sync_queue_origin_txid ON sync_queue (origin, sync_xid_value(txid)) WHERE for_node IS NULL;

-- The rows queued for one node only (corrections, for_node set) are few;
-- syncqd looks them up by node and table (hub/apply.c, read_follows), so a
-- small partial index serves that without a scan of the whole queue.
CREATE INDEX sync_queue_for_node ON sync_queue (for_node, table_name) WHERE for_node IS NOT NULL;

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
-- An upload locks the rows of the keys it changes before it reads their
-- versions (hub/apply.c, lock_versions), making a placeholder (ver_us -1)
-- where a key has none; the placeholders it does not fill are deleted
-- before it commits, so no other transaction ever sees one.
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
-- max_offset: how far ahead of the hub's clock a client's version may be;
-- a change stamped further ahead is re-stamped on arrival
-- (docs/replication.md, Clock skew).
CREATE TABLE sync_hub_state (
	singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	fold_snapshot pg_snapshot,
	horizon_xmin  xid8,
	retention     interval NOT NULL DEFAULT '30 days',
	pruned_at     timestamptz,
	max_offset    interval NOT NULL DEFAULT '5 minutes' CHECK (max_offset >= '0')
);
INSERT INTO sync_hub_state DEFAULT VALUES;
-- pg_dump saves the row (the settings, the prune horizon); CREATE
-- EXTENSION has made the default one by the time pg_restore loads it, so
-- an insert takes the place of the row there is.
CREATE FUNCTION sync_hub_state_replace() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	DELETE FROM sync_hub_state;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION sync_hub_state_replace() IS 'syncq internal: an insert into sync_hub_state replaces its one row (pg_restore)';
REVOKE ALL ON FUNCTION sync_hub_state_replace() FROM PUBLIC;
CREATE TRIGGER sync_hub_state_replace BEFORE INSERT ON sync_hub_state
	FOR EACH ROW EXECUTE FUNCTION sync_hub_state_replace();

-- The hub's clock: the greatest version syncqd has applied here, raised in
-- the same transaction as the changes. The capture trigger reads it once
-- per transaction, so that a change made here after another was applied
-- has the greater version (a hybrid logical clock: docs/replication.md).
-- One row per slot: an upload raises the row of its connection's slot
-- (pg_backend_pid() % 16), so that uploads applied side by side do not wait
-- for each other's row; the clock is the greatest of them.
CREATE TABLE sync_clock (
	slot smallint PRIMARY KEY CHECK (slot >= 0 AND slot < 16),
	hlc  timestamptz NOT NULL
) USING heap;
INSERT INTO sync_clock (slot, hlc) SELECT s, 'epoch' FROM generate_series(0, 15) s;
COMMENT ON TABLE sync_clock IS 'syncq: the greatest version applied on the hub (its hybrid logical clock)';

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
SELECT pg_catalog.pg_extension_config_dump('sync_hub_state', '');
-- the identity sequences too: a restored hub never hands out an id twice
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('@extschema@.sync_conflicts', 'id')::pg_catalog.regclass, '');

-- For syncqd, which applies clients' changes with capture on (apply.c):
-- the keys of a client's changes as the hub stores them; what the next
-- statement applies; what the capture did with it; a row queued as the hub
-- holds it now (a correction for one client, or a change of the hub's own).
CREATE FUNCTION sync_normalize_keys(keys jsonb) RETURNS TABLE (i integer, pk text, error text)
	AS 'MODULE_PATHNAME', 'sync_normalize_keys'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_normalize_keys(jsonb) IS 'syncq internal: keys of changes as the hub stores them';
CREATE FUNCTION sync_apply_expect(changes jsonb) RETURNS boolean
	AS 'MODULE_PATHNAME', 'sync_apply_expect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_apply_expect(jsonb) IS 'syncq internal: the changes the statement applies, with their versions';
CREATE FUNCTION sync_apply_report()
	RETURNS TABLE (n integer, seq bigint, t text, op text, pk text, row_data text,
				   ver bigint, origin uuid, what text)
	AS 'MODULE_PATHNAME', 'sync_apply_report'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_apply_report() IS 'syncq internal: what the capture did with the changes syncqd applied';
CREATE FUNCTION sync_queue_row(tbl regclass, pk jsonb, ver bigint, origin uuid,
							   for_node uuid, for_seq bigint, replaces bigint,
							   OUT queued_seq bigint, OUT queued_ver bigint, OUT queued_op text)
	AS 'MODULE_PATHNAME', 'sync_queue_row'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sync_queue_row(regclass, jsonb, bigint, uuid, uuid, bigint, bigint) IS 'syncq internal: queue a row as the hub holds it now';
REVOKE ALL ON FUNCTION sync_normalize_keys(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_apply_expect(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_apply_report() FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_queue_row(regclass, jsonb, bigint, uuid, uuid, bigint, bigint) FROM PUBLIC;

-- Fold the hub's own committed changes (origin = this node) that are not yet
-- in sync_versions into it. Called by syncqd just before every upload
-- transaction, in a short transaction of its own (folds take turns on
-- sync_hub_state's row, uploads do not wait for each other), so uploaded
-- changes are compared with them; sync_overtaken() catches what a fold did
-- not see. Each fold reads only the queue written since the last one, and
-- when none of that committed, ends there without writing anything.
-- Idempotent: a version only ever grows.
--
-- A row's last hub change (in the order of the writes, which is seq order
-- for one row) must also have its greatest version, or every client would
-- keep another version than the row the hub holds: a hub clock that went
-- back, or a hub transaction that overwrote a version it had not seen in
-- the clock. Such a row is queued again as the hub holds it, with a fresh
-- version (sync_queue_row), unless it was written again since: an upload
-- whose change beat the hub's (hub/apply.c reads the hub's changes a fold
-- has not seen yet with its versions) left the version that stands. Rows
-- are taken in (table, key) COLLATE "C" order, as uploads lock them.
CREATE FUNCTION sync_fold_local() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	prev pg_snapshot;
	cur  pg_snapshot;
	me   uuid := sync_node_id();
	own  xid8;
	n    bigint;
	r    record;
	made record;
BEGIN
	-- Nothing of the hub's own committed since the last fold: nothing to
	-- fold, and nothing written (no lock on sync_hub_state's row, which
	-- uploads side by side would take turns on, no transaction id, so no
	-- commit to flush). fold_snapshot stays: the hub's own changes it
	-- leaves out are still in progress, as after a fold now. The check
	-- reads sync_queue_origin_txid in its order from the snapshot's xmin:
	-- as an EXISTS, a plan that expected many rows of the hub's own to
	-- fold (after ANALYZE) or any snapshot (PL/pgSQL's kept plan) scanned
	-- the whole queue and found none, 130 ms an upload with 1,000,000 rows
	-- queued against 1.3 ms. Every query here is planned for its values
	-- (plan_cache_mode above): the loop's below test prev for NULL.
	SELECT fold_snapshot INTO prev FROM sync_hub_state;
	cur := pg_current_snapshot();
	IF prev IS NOT NULL THEN
		PERFORM FROM sync_queue q
		 WHERE q.origin = me AND q.for_node IS NULL
		   AND sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
		   AND NOT pg_visible_in_snapshot(q.txid, prev)
		   AND pg_visible_in_snapshot(q.txid, cur)
		 ORDER BY sync_xid_value(q.txid) LIMIT 1;
		IF NOT FOUND THEN
			RETURN 0;
		END IF;
	END IF;
	own := pg_current_xact_id();
	SELECT fold_snapshot INTO prev FROM sync_hub_state FOR UPDATE;
	-- after the lock: a fold that waited for another sees what that one did
	cur := pg_current_snapshot();
	FOR r IN
		WITH w AS (
			SELECT DISTINCT ON (q.table_name COLLATE "C", q.pk::text COLLATE "C")
			       q.table_schema, q.table_name, q.pk, q.seq, q.changed_at,
			       max(q.changed_at) OVER (PARTITION BY q.table_name, q.pk::text) AS top
			FROM sync_queue q
			WHERE q.origin = me AND q.for_node IS NULL AND q.txid <> own
			  AND pg_visible_in_snapshot(q.txid, cur)
			  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
			                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
			ORDER BY q.table_name COLLATE "C", q.pk::text COLLATE "C", q.seq DESC)
		SELECT w.table_schema, w.table_name, w.pk, w.seq
		  FROM w LEFT JOIN sync_versions v ON v.table_name = w.table_name AND v.pk = w.pk::text
		 WHERE w.changed_at < w.top
		    OR ((extract(epoch FROM w.changed_at) * 1000000)::bigint, me::text)
		       < (v.ver_us, v.ver_origin::text)
	LOOP
		-- the row's version row locked first (a placeholder if it has none:
		-- an upload that holds it, or is inserting it, is waited for), then
		-- looked at again: a row written since (an upload whose change beat
		-- this one, or the hub again) is left alone, its version stands
		INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin)
		VALUES (r.table_name, r.pk::text, -1, '00000000-0000-0000-0000-000000000000')
		ON CONFLICT (table_name, pk) DO UPDATE SET ver_us = v.ver_us WHERE false;
		IF EXISTS (SELECT 1 FROM sync_queue q
		            WHERE q.table_name = r.table_name AND q.pk::text = r.pk::text
		              AND q.seq > r.seq AND q.for_node IS NULL
		              AND (prev IS NULL OR sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))))
		THEN
			DELETE FROM sync_versions
			 WHERE table_name = r.table_name AND pk = r.pk::text AND ver_us = -1;
			CONTINUE;
		END IF;
		made := sync_queue_row(format('%I.%I', r.table_schema, r.table_name)::regclass,
							   r.pk::jsonb, NULL, NULL, NULL, NULL, NULL);
		INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
		VALUES (r.table_name, r.pk::text, made.queued_ver, me, made.queued_op = 'D')
		ON CONFLICT (table_name, pk) DO UPDATE
		   SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin, deleted = EXCLUDED.deleted;
	END LOOP;
	INSERT INTO sync_versions AS v (table_name, pk, ver_us, ver_origin, deleted)
	SELECT DISTINCT ON (q.table_name COLLATE "C", q.pk::text COLLATE "C")
	       q.table_name, q.pk::text,
	       (extract(epoch FROM q.changed_at) * 1000000)::bigint, q.origin, q.op = 'D'
	FROM sync_queue q
	WHERE q.origin = me AND q.for_node IS NULL AND q.txid <> own
	  AND pg_visible_in_snapshot(q.txid, cur)
	  AND (prev IS NULL OR (sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(prev))
	                        AND NOT pg_visible_in_snapshot(q.txid, prev)))
	ORDER BY q.table_name COLLATE "C", q.pk::text COLLATE "C", q.seq DESC
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

-- Was the upload this transaction applies overtaken (docs/replication.md)?
-- The number of rows it wrote that a hub transaction also wrote and that
-- the upload did not compare with (folded: the snapshot it read its first
-- versions in, with the hub's changes the fold before it had not seen;
-- hub/apply.c, versions_of): the upload may have overwritten that change.
-- (A later fold, another upload's, may have folded it since: the upload
-- did not see that either.) Planned for its values at every call, and
-- never as a nested loop: a plan PL/pgSQL kept from when the queue was
-- small scanned the queue once for every change of the hub's own since
-- the fold (an upload of 20,000 rows with 20,000 such changes: 59 s;
-- now 33 ms).
CREATE FUNCTION sync_overtaken(folded pg_snapshot) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
SET plan_cache_mode = force_custom_plan SET enable_nestloop = off AS $$
BEGIN
	RETURN (
		WITH late AS (
			SELECT q.table_name, q.pk::text AS pk FROM sync_queue q
			 WHERE sync_xid_value(q.txid) >= sync_xid_value(pg_snapshot_xmin(folded))
			   AND NOT pg_visible_in_snapshot(q.txid, folded)
			   AND q.txid <> pg_current_xact_id()
			   AND q.origin = (SELECT sync_node_id()) AND q.for_node IS NULL)
		SELECT count(*) FROM late WHERE EXISTS (
			SELECT 1 FROM sync_queue m
			 WHERE m.txid = pg_current_xact_id()
			   AND m.table_name = late.table_name AND m.pk::text = late.pk));
END
$$;
COMMENT ON FUNCTION sync_overtaken(pg_snapshot) IS 'syncq internal: rows of this upload a hub transaction the fold did not see also wrote';
REVOKE ALL ON FUNCTION sync_overtaken(pg_snapshot) FROM PUBLIC;

-- Where a download of node's changes from position pos up to snapshot
-- target can start (hub/download.c, changes_floor): below the seq of every
-- queue row it is to read, and at most the greatest seq there is when it
-- has none. Those rows are found by transaction through sync_queue_txid,
-- never by a scan of the whole queue: until ANALYZE has seen the queue (a
-- queue that grew from empty faster than autovacuum followed), the
-- planner takes a condition on txid for a third of the rows, and a plan
-- for its values read all 300,000 at every sync, 100-190
-- ms (bench part 52). No parallel workers either: with 300,000 rows
-- queued, a parallel plan took 64-76 ms to find one row on a busy machine,
-- 0.02-0.13 ms without (EXPLAIN ANALYZE). min(seq + 0), not min(seq),
-- which could walk sync_queue_pkey instead.
CREATE FUNCTION sync_download_floor(pos pg_snapshot, node uuid, target pg_snapshot) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT
SET plan_cache_mode = force_custom_plan SET enable_seqscan = off
SET max_parallel_workers_per_gather = 0 AS $$
BEGIN
	RETURN coalesce(
		(SELECT min(q.seq + 0) - 1 FROM sync_queue q
		  WHERE q.txid >= pg_snapshot_xmin(pos)
		    AND NOT pg_visible_in_snapshot(q.txid, pos)
		    AND pg_visible_in_snapshot(q.txid, target)
		    AND CASE WHEN q.for_node IS NULL THEN q.origin <> node ELSE q.for_node = node END),
		(SELECT max(seq) FROM sync_queue),
		0);
END
$$;
COMMENT ON FUNCTION sync_download_floor(pg_snapshot, uuid, pg_snapshot) IS 'syncq internal: below the seq of every queue row a download is to read';
REVOKE ALL ON FUNCTION sync_download_floor(pg_snapshot, uuid, pg_snapshot) FROM PUBLIC;

-- Delete the queue rows every client that synced within the retention
-- window has already received, and remember the horizon: a client whose
-- position lies below it (it was away longer than the window) gets a first
-- sync again instead of silently missing what was deleted. syncqd calls it
-- now and then; it may also be run by hand or from a scheduler. The rows
-- are found through sync_queue_txid, planned for the horizon at each call:
-- it holds sync_hub_state's row, which every fold takes, and with nothing
-- to delete a scan of 300,000 queued rows took 24-120 ms against 0.07 ms.
CREATE FUNCTION sync_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
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
	DELETE FROM sync_queue WHERE txid < needed;
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE sync_hub_state
	   SET horizon_xmin = greatest(horizon_xmin, needed), pruned_at = now();
	RETURN n;
END
$$;
COMMENT ON FUNCTION sync_prune() IS 'delete queue rows every recently active client has received (sync_hub_state.retention)';
REVOKE ALL ON FUNCTION sync_prune() FROM PUBLIC;
