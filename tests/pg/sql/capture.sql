--
-- Capture: the SQL API and its errors.
--
CREATE EXTENSION syncq;
SET datestyle = ISO;
SET timezone = 'UTC';
\set VERBOSITY default

SELECT is_online_server();

-- The node id: made on first use, then the same every time.
SELECT count(*) AS node_rows FROM sync_node;
SELECT sync_node_id() IS NOT NULL AS made;
SELECT sync_node_id() = sync_node_id() AS stable,
       sync_node_id() = (SELECT node_id FROM sync_node) AS stored;
SELECT count(*) AS node_rows FROM sync_node;

-- Track a table; its changes are queued.
CREATE TABLE audits (id bigint PRIMARY KEY, title text NOT NULL, done boolean DEFAULT false);
SELECT sync_track('audits');
SELECT relid, table_schema, table_name, priority FROM sync_tables;
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'audits'::regclass ORDER BY tgname;
INSERT INTO audits VALUES (1, 'Fire exits');
UPDATE audits SET done = true WHERE id = 1;
DELETE FROM audits WHERE id = 1;
SELECT seq, table_schema, table_name, op, pk, row_data, priority,
       origin = sync_node_id() AS origin_is_node
FROM sync_queue ORDER BY seq;

-- Running sync_track() again changes the priority; batched changes queue the same way.
SELECT sync_track('audits', 'batched');
SELECT relid, priority FROM sync_tables;
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'audits'::regclass AND tgname = 'syncq_capture';
INSERT INTO audits VALUES (2, 'Boiler');
SELECT seq, op, pk, priority FROM sync_queue WHERE seq > 3 ORDER BY seq;

-- Untrack: capture stops, queued rows stay.
SELECT sync_untrack('audits');
INSERT INTO audits VALUES (3, 'Roof');
SELECT count(*) AS queued FROM sync_queue;
SELECT count(*) AS tracked FROM sync_tables;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'audits'::regclass;

-- Errors.
SELECT sync_untrack('audits');                     -- not tracked: false, with a notice
CREATE TABLE no_key (a int, b text);
SELECT sync_track('no_key');                       -- no primary key
CREATE VIEW audit_view AS SELECT * FROM audits;
SELECT sync_track('audit_view');                   -- a view
CREATE SEQUENCE audit_seq;
SELECT sync_track('audit_seq');                    -- a sequence
CREATE MATERIALIZED VIEW audit_mv AS SELECT * FROM audits;
SELECT sync_track('audit_mv');                     -- a materialized view
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
SELECT sync_track('parted');                       -- a partitioned parent
SELECT sync_track('parted_1');                     -- a partition is a table
CREATE TEMP TABLE scratch (id int PRIMARY KEY);
SELECT sync_track('scratch');                      -- temporary
SELECT sync_track('sync_queue');                   -- syncq's own
SELECT sync_track('pg_class');                     -- a catalog
SELECT sync_track('audits', 'later');              -- bad priority
SELECT sync_track('audits', NULL);
SELECT sync_track(NULL);
SELECT sync_track('missing');                      -- no such table
SELECT count(*) AS tracked FROM sync_tables;

-- Quoted identifiers and another schema.
CREATE SCHEMA "Field Ops";
CREATE TABLE "Field Ops"."Work ""Orders""" ("Order Id" int PRIMARY KEY, "Note;" text);
SELECT sync_track('"Field Ops"."Work ""Orders"""', 'immediate');
INSERT INTO "Field Ops"."Work ""Orders""" VALUES (7, 'drop table audits; --');
SELECT table_schema, table_name, op, pk, row_data FROM sync_queue WHERE table_schema = 'Field Ops';
SELECT relid, table_schema, table_name FROM sync_tables ORDER BY table_name;
SELECT pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = '"Field Ops"."Work ""Orders"""'::regclass ORDER BY tgname;

-- sync_tables follows a rename and a new schema; capture uses the new name.
ALTER TABLE "Field Ops"."Work ""Orders""" RENAME TO orders;
ALTER TABLE "Field Ops".orders SET SCHEMA public;
SELECT relid, table_schema, table_name FROM sync_tables ORDER BY table_name;
INSERT INTO orders VALUES (8, 'renamed');
SELECT table_schema, table_name, pk FROM sync_queue ORDER BY seq DESC LIMIT 1;

-- Taking the primary key away from a tracked table is refused...
\set SHOW_CONTEXT never
ALTER TABLE orders DROP CONSTRAINT "Work ""Orders""_pkey";
\set SHOW_CONTEXT errors
-- ...replacing it in one statement is fine.
ALTER TABLE orders DROP CONSTRAINT "Work ""Orders""_pkey", ADD PRIMARY KEY ("Order Id");
-- A dropped table is forgotten.
DROP TABLE orders;
SELECT count(*) AS tracked FROM sync_tables;

-- sync_enqueue(): by hand, with the same encoding rules.
CREATE TABLE visits (site text, day date, n int, PRIMARY KEY (site, day));
SELECT sync_track('visits', 'batched');
SELECT sync_enqueue('visits', 'I', '{"day": "2025-07-24", "site": "Leeds"}',
                    '{"n": 12345678901234567890.50, "day": "2025-07-24", "site": "Leeds"}');
SELECT sync_enqueue('visits', 'D', '{"site": "Leeds", "day": "2025-07-24"}', NULL, false);
SELECT seq, table_name, op, pk, row_data, priority FROM sync_queue WHERE table_name = 'visits' ORDER BY seq;
SELECT sync_enqueue('visits', 'X', '{"site": "a", "day": "2025-01-01"}', NULL);       -- bad op
SELECT sync_enqueue('visits', 'U', '{"site": "a"}', '{"n": 1}');                      -- key column missing
SELECT sync_enqueue('visits', 'U', '{"site": "a", "day": "2025-01-01", "n": 1}', '{"n": 1}');  -- not a key column
SELECT sync_enqueue('visits', 'U', '["a", "2025-01-01"]', '{"n": 1}');                -- not an object
SELECT sync_enqueue('visits', 'U', '{"site": null, "day": "2025-01-01"}', '{"n": 1}');  -- null key value
SELECT sync_enqueue('visits', 'U', '{"site": "a", "day": "2025-01-01"}', '{"visits": 1}');  -- not a column
SELECT sync_enqueue('visits', 'U', '{"site": "a", "day": "2025-01-01"}', NULL);       -- no row
SELECT sync_enqueue('visits', 'D', '{"site": "a", "day": "2025-01-01"}', '{"n": 1}'); -- row for a delete
SELECT sync_enqueue('audits', 'I', '{"id": 1}', '{"id": 1}');                        -- not tracked
SELECT sync_enqueue(NULL, 'I', '{"id": 1}', '{"id": 1}');

-- sync_trigger() asks for a sync; the NOTIFY is delivered at commit (the
-- isolation test capture_notify shows what a listener sees).
SELECT sync_trigger();

-- Settings: only a superuser, or a role granted SET, may change them.
CREATE ROLE syncq_app;
GRANT INSERT, UPDATE, DELETE, SELECT ON visits TO syncq_app;
SET ROLE syncq_app;
SET syncq.capture = off;
SET syncq.origin = '6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
SHOW syncq.capture;
-- The app needs no privilege on sync_queue: capture works for it.
INSERT INTO visits VALUES ('York', '2025-07-25', 3);
SELECT count(*) FROM sync_queue;                   -- but it may not read the queue
-- sync_enqueue() asks for the privilege the change would need.
SELECT sync_enqueue('visits', 'D', '{"site": "York", "day": "2025-07-25"}', NULL) > 0 AS queued;
RESET ROLE;
REVOKE DELETE ON visits FROM syncq_app;
SET ROLE syncq_app;
SELECT sync_enqueue('visits', 'D', '{"site": "York", "day": "2025-07-25"}', NULL);
-- Tracking needs ownership.
SELECT sync_track('visits');
SELECT sync_untrack('visits');
RESET ROLE;
GRANT SET ON PARAMETER syncq.origin TO syncq_app;
SET ROLE syncq_app;
SET syncq.origin = '6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
INSERT INTO visits VALUES ('Hull', '2025-07-26', 1);
RESET syncq.origin;
RESET ROLE;
SELECT pk, origin FROM sync_queue WHERE table_name = 'visits' ORDER BY seq DESC LIMIT 1;
SELECT op, pk, origin = sync_node_id() AS from_this_node FROM sync_queue WHERE pk::text LIKE '%York%' ORDER BY seq;
SET syncq.origin = 'not a uuid';
SET syncq.nonsense = 1;
REVOKE SET ON PARAMETER syncq.origin FROM syncq_app;
REVOKE ALL ON visits FROM syncq_app;
DROP ROLE syncq_app;
