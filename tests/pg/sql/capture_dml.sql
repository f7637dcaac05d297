--
-- Capture: what each kind of change queues, and what a rollback leaves.
--
CREATE EXTENSION syncq;
CREATE EXTENSION amcheck;
SET datestyle = ISO;
SET timezone = 'UTC';

-- A composite primary key, written in key order (not column order).
CREATE TABLE readings (
	value   numeric,
	meter   text,
	taken   timestamptz,
	note    text,
	PRIMARY KEY (meter, taken)
);
SELECT sync_track('readings');

-- Capture does not change what the app sees: same results, same messages.
INSERT INTO readings VALUES (1.5, 'M-1', '2025-07-24 08:00+00', 'first') RETURNING *;
INSERT INTO readings VALUES (2.5, 'M-1', '2025-07-24 08:00+00', 'dup');   -- the app's own error
UPDATE readings SET note = 'checked' RETURNING note;

-- An UPDATE that changes the key: D of the old key, then I of the new row.
UPDATE readings SET meter = 'M-2' WHERE meter = 'M-1';
-- Two rows changing their keys in one statement.
INSERT INTO readings VALUES (3, 'M-3', '2025-07-24 09:00+00', NULL);
UPDATE readings SET taken = taken + interval '1 hour' WHERE meter IN ('M-2', 'M-3');
DELETE FROM readings WHERE meter = 'M-3';
SELECT seq, op, pk, row_data FROM sync_queue ORDER BY seq;

-- The key compared as JSON: 1.0 -> 1.00 changes the key's text, so it is
-- queued as D + I; the same value written again is a plain U.
CREATE TABLE prices (code numeric PRIMARY KEY, label text);
SELECT sync_track('prices');
INSERT INTO prices VALUES (1.0, 'one');
UPDATE prices SET code = 1.00;
UPDATE prices SET code = 1.00, label = 'same key';
SELECT op, pk, row_data FROM sync_queue WHERE table_name = 'prices' ORDER BY seq;
TRUNCATE sync_queue;

-- Every row of one transaction carries that transaction's id; another
-- transaction gets another.
BEGIN;
INSERT INTO prices VALUES (2, 'two');
UPDATE prices SET label = 'deux' WHERE code = 2;
SELECT count(*) AS rows, bool_and(txid = pg_current_xact_id()) AS this_txid,
       bool_and(changed_at <= clock_timestamp()) AS changed_at_past
FROM sync_queue;
COMMIT;
INSERT INTO prices VALUES (3, 'three');
SELECT count(DISTINCT txid) AS transactions FROM sync_queue;
SELECT bool_and(a.changed_at <= b.changed_at) AS ordered
FROM sync_queue a JOIN sync_queue b ON b.seq = a.seq + 1;
TRUNCATE sync_queue;

-- A rollback leaves nothing; a rolled-back savepoint takes only its own rows.
BEGIN;
INSERT INTO prices VALUES (4, 'four');
ROLLBACK;
SELECT count(*) AS after_rollback FROM sync_queue;
BEGIN;
INSERT INTO prices VALUES (5, 'five');
SAVEPOINT a;
INSERT INTO prices VALUES (6, 'six');
UPDATE prices SET label = 'cinq' WHERE code = 5;
ROLLBACK TO SAVEPOINT a;
INSERT INTO prices VALUES (7, 'seven');
SAVEPOINT b;
DELETE FROM prices WHERE code = 7;
RELEASE SAVEPOINT b;
COMMIT;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq;
TRUNCATE sync_queue;

-- A PL/pgSQL exception block that catches an error (a subtransaction).
DO $$
BEGIN
	INSERT INTO prices VALUES (8, 'eight');
	BEGIN
		INSERT INTO prices VALUES (9, 'nine');
		INSERT INTO prices VALUES (8, 'eight again');
	EXCEPTION WHEN unique_violation THEN
		RAISE NOTICE 'caught: %', SQLERRM;
	END;
	INSERT INTO prices VALUES (10, 'ten');
END $$;
SELECT op, pk FROM sync_queue ORDER BY seq;
TRUNCATE sync_queue;

-- ALTER TABLE ADD/DROP COLUMN and a new column type: capture follows with
-- no extra step, in this session and within one transaction.
INSERT INTO prices VALUES (11, 'eleven');
ALTER TABLE prices ADD COLUMN stock int DEFAULT 5;
INSERT INTO prices VALUES (12, 'twelve', 7);
UPDATE prices SET label = 'onze' WHERE code = 11;
BEGIN;
ALTER TABLE prices DROP COLUMN label;
UPDATE prices SET stock = 0 WHERE code = 12;
ALTER TABLE prices ALTER COLUMN stock TYPE text;
UPDATE prices SET stock = 'none' WHERE code = 12;
COMMIT;
ALTER TABLE prices ADD COLUMN "Added Later" boolean;
UPDATE prices SET "Added Later" = true WHERE code = 11;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq;
TRUNCATE sync_queue;

-- A new primary key (replaced in one ALTER TABLE) is what capture names.
ALTER TABLE prices DROP CONSTRAINT prices_pkey, ADD PRIMARY KEY (stock, code);
UPDATE prices SET stock = 'few' WHERE code = 12;
SELECT op, pk FROM sync_queue ORDER BY seq;
TRUNCATE sync_queue;

-- syncq.capture = off pauses capture (for a bulk load), and lets TRUNCATE through.
SET syncq.capture = off;
INSERT INTO prices VALUES (13, 'bulk');
RESET syncq.capture;
SELECT count(*) AS queued_while_off FROM sync_queue;
TRUNCATE prices;                                  -- refused while capture is on
TRUNCATE readings, prices;
SELECT count(*) > 0 AS rows_kept FROM prices;
BEGIN;
SET LOCAL syncq.capture = off;
TRUNCATE prices;
COMMIT;
SELECT count(*) AS rows_left FROM prices;

-- The queue's indexes stay consistent with its heap, through rollbacks too.
BEGIN;
INSERT INTO readings SELECT g, 'bulk', '2025-01-01'::timestamptz + g * interval '1 min', NULL
FROM generate_series(1, 2000) g;
ROLLBACK;
INSERT INTO readings SELECT g, 'bulk', '2025-01-01'::timestamptz + g * interval '1 min', NULL
FROM generate_series(1, 2000) g;
UPDATE readings SET value = value + 1;
DELETE FROM readings WHERE value > 1000;
SELECT count(*) > 0 AS checked
FROM (SELECT bt_index_check(i.indexrelid, true)
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
	  WHERE i.indrelid = 'sync_queue'::regclass AND a.amname = 'btree') s;
SELECT op, count(*) FROM sync_queue GROUP BY op ORDER BY op;
SELECT count(*) = count(DISTINCT seq) AS seq_unique, min(seq) < max(seq) AS seq_increasing FROM sync_queue;

-- Within one transaction, after captured changes (and a COPY), sync_queue
-- itself may still be altered, indexed and truncated: capture holds it open
-- for one statement only.
BEGIN;
DELETE FROM readings WHERE meter = 'bulk';
CREATE INDEX sync_queue_by_table ON sync_queue (table_name, seq);
INSERT INTO readings VALUES (1, 'M-9', '2025-07-24 12:00+00', NULL);
COPY readings FROM stdin;
2	M-9	2025-07-24 13:00:00+00	copied
\.
ALTER TABLE sync_queue ADD COLUMN scratch int;
UPDATE readings SET note = 'seen' WHERE meter = 'M-9';
ALTER TABLE sync_queue DROP COLUMN scratch;
DELETE FROM readings WHERE taken = '2025-07-24 13:00:00+00';
SELECT count(*) > 0 AS checked
FROM (SELECT bt_index_check(i.indexrelid, true)
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
	  WHERE i.indrelid = 'sync_queue'::regclass AND a.amname = 'btree') s;
SET LOCAL enable_seqscan = off;
SELECT op, pk->>'taken' AS taken, row_data->>'note' AS note
FROM sync_queue WHERE table_name = 'readings' AND pk->>'meter' = 'M-9' ORDER BY table_name, seq;
TRUNCATE sync_queue;
INSERT INTO readings VALUES (3, 'M-9', '2025-07-24 14:00+00', 'after truncate');
COMMIT;
SELECT op, pk FROM sync_queue;
DROP INDEX sync_queue_by_table;

-- A trigger function called any other way is refused.
SELECT syncq_capture();
CREATE TABLE misuse (id int PRIMARY KEY);
CREATE TRIGGER wrong BEFORE INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION syncq_capture('immediate');
INSERT INTO misuse VALUES (1);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong AFTER INSERT ON misuse FOR EACH STATEMENT EXECUTE FUNCTION syncq_capture('immediate');
INSERT INTO misuse VALUES (1);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong AFTER INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION syncq_capture('soon');
INSERT INTO misuse VALUES (1);
DROP TRIGGER wrong ON misuse;
CREATE TRIGGER wrong AFTER INSERT ON misuse FOR EACH STATEMENT EXECUTE FUNCTION syncq_truncate();
INSERT INTO misuse VALUES (1);
DROP TRIGGER wrong ON misuse;
-- A tracked table that lost its primary key some other way refuses changes.
SELECT sync_track('misuse');
ALTER EVENT TRIGGER syncq_watch_alter DISABLE;
ALTER TABLE misuse DROP CONSTRAINT misuse_pkey;
ALTER EVENT TRIGGER syncq_watch_alter ENABLE;
INSERT INTO misuse VALUES (1);
-- (and it holds up no ALTER TABLE of another table)
ALTER TABLE prices ADD COLUMN note text;

-- DROP EXTENSION takes the triggers with it (CASCADE) and leaves the tables.
\set VERBOSITY terse
DROP EXTENSION syncq;
DROP EXTENSION syncq CASCADE;
\set VERBOSITY default
INSERT INTO prices VALUES (14, 'after');
SELECT count(*) FROM prices;
