--
-- A tracked table rebuilt (docs/migrating.md): a table that takes the name
-- of a tracked table dropped earlier in the same transaction is tracked in
-- its place; one that takes it in a later transaction is not.
--
CREATE EXTENSION syncq;
\set VERBOSITY default

CREATE FUNCTION queued() RETURNS TABLE (table_name text, op text, pk text)
	LANGUAGE sql AS $$ SELECT table_name, op, pk::text FROM sync_queue ORDER BY seq $$;
CREATE VIEW tracked AS
	SELECT relid::text, table_schema, table_name, priority, keys FROM sync_tables ORDER BY 2, 3;
CREATE VIEW capture_triggers AS
	SELECT tgrelid::regclass::text AS tbl, tgname, encode(tgargs, 'escape') AS args
	  FROM pg_trigger WHERE tgname IN ('syncq_capture', 'syncq_truncate') ORDER BY 1, 2;

CREATE TABLE items (id int PRIMARY KEY, name text, note text);
INSERT INTO items VALUES (1, 'one', 'n1'), (2, 'two', 'n2');
SELECT sync_track('items', 'batched', 'natural');

-- renamed into place: tracked as before, the copy not queued, the writes
-- after the rename queued, the column it lost gone
BEGIN;
CREATE TABLE items_new (id int PRIMARY KEY, name text);
INSERT INTO items_new SELECT id, name FROM items;
DROP TABLE items;
SELECT table_schema, table_name, priority, keys, column_names, made, txid = pg_current_xact_id() AS this_transaction FROM sync_tables_dropped;
ALTER TABLE items_new RENAME TO items;
INSERT INTO items VALUES (3, 'three');
COMMIT;
SELECT * FROM tracked;
SELECT * FROM capture_triggers;
SELECT * FROM queued();
SELECT table_name, column_name, renamed_to FROM sync_columns_gone;
SELECT attname FROM sync_columns WHERE relid = 'items'::regclass ORDER BY attnum;
SELECT count(*) AS left_over FROM sync_tables_dropped;
UPDATE items SET name = 'two+' WHERE id = 2;
SELECT * FROM queued();

-- created under the name: tracked with 'copy'; the inserts of that
-- transaction are the copy, its updates and deletes are changes; a later
-- transaction's inserts are changes
TRUNCATE sync_queue;
BEGIN;
CREATE TEMP TABLE keep AS SELECT * FROM items;
DROP TABLE items;
CREATE TABLE items (id int PRIMARY KEY, name text, note text);
INSERT INTO items (id, name) SELECT id, name FROM keep;
UPDATE items SET note = 'back' WHERE id = 1;
DELETE FROM items WHERE id = 3;
COMMIT;
SELECT * FROM tracked;
SELECT * FROM capture_triggers;
SELECT * FROM queued();
SELECT table_name, column_name, renamed_to FROM sync_columns_gone;
INSERT INTO items VALUES (4, 'four');
SELECT * FROM queued();

-- created without a primary key (CREATE TABLE AS): tracked once ALTER
-- TABLE gives it one in the same transaction
TRUNCATE sync_queue;
BEGIN;
CREATE TEMP TABLE keep2 AS SELECT * FROM items;
DROP TABLE items;
CREATE TABLE items AS SELECT id, name, note FROM keep2;
SELECT count(*) AS tracked_yet FROM sync_tables;
ALTER TABLE items ADD PRIMARY KEY (id);
INSERT INTO items VALUES (5, 'five (in the migration: taken as copied)');
COMMIT;
SELECT * FROM tracked;
SELECT * FROM capture_triggers;
SELECT * FROM queued();

-- rolled back, also to a savepoint: nothing changes
TRUNCATE sync_queue;
SELECT relid::oid AS items_oid FROM sync_tables \gset
BEGIN;
CREATE TABLE items_new (id int PRIMARY KEY, name text);
DROP TABLE items;
ALTER TABLE items_new RENAME TO items;
ROLLBACK;
BEGIN;
SAVEPOINT s;
DROP TABLE items;
ROLLBACK TO s;
CREATE TABLE items_new (id int PRIMARY KEY);
ALTER TABLE items_new RENAME TO items_newer;
COMMIT;
SELECT relid::oid = :items_oid AS same_table, table_name, priority, keys FROM sync_tables;
SELECT count(*) AS left_over FROM sync_tables_dropped;
INSERT INTO items VALUES (6, 'six');
SELECT * FROM queued();

-- another schema's table of the name, and a table of another name: not
-- tracked; a table without a key at the end: not tracked, and said so
CREATE SCHEMA other;
BEGIN;
DROP TABLE items;
CREATE TABLE other.items (id int PRIMARY KEY);
CREATE TABLE wares (id int PRIMARY KEY);
CREATE TABLE items (id int);
COMMIT;
SELECT * FROM tracked;

-- dropped in one transaction, made again in the next: not tracked
DROP TABLE items;
SELECT sync_track('wares');
DROP TABLE wares;
CREATE TABLE wares (id int PRIMARY KEY);
SELECT * FROM tracked;
SELECT * FROM capture_triggers;
-- a left-over row of a committed DROP is inert, and the next DROP of the
-- name replaces it
SELECT table_name, txid = pg_current_xact_id() AS this_transaction FROM sync_tables_dropped;
SELECT sync_track('wares');
BEGIN;
DROP TABLE wares;
CREATE TABLE wares (id int PRIMARY KEY, label text);
COMMIT;
SELECT * FROM tracked;
SELECT count(*) AS left_over FROM sync_tables_dropped;
