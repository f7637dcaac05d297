--
-- Versions (a hybrid logical clock), and the capture while syncqd applies
-- another node's changes: expected rows keep their version and origin, the
-- rest are the hub's own changes; what PostgreSQL stored is reported.
--
CREATE EXTENSION syncq;
SET datestyle = ISO;
SET timezone = 'UTC';
\set VERBOSITY default

CREATE FUNCTION us(timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE
	AS $$ SELECT (extract(epoch FROM $1) * 1000000)::bigint $$;

CREATE TABLE parent (id bigint PRIMARY KEY, name text);
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent ON DELETE CASCADE,
					other_id bigint REFERENCES parent ON DELETE SET NULL, price numeric(12,4),
					updated_at timestamptz);
CREATE TABLE tag (id uuid PRIMARY KEY, label text);
SELECT sync_track('parent'), sync_track('child'), sync_track('tag');

-- The clock: a change is stamped after the hub clock, and after the
-- backend's last stamp, whatever the wall clock says.
INSERT INTO parent VALUES (1, 'one');
SELECT changed_at <= now() + interval '1 minute' AS wall_clock FROM sync_queue ORDER BY seq DESC LIMIT 1;
UPDATE sync_clock SET hlc = '2999-01-01 00:00:00+00';
INSERT INTO parent VALUES (2, 'two');
SELECT changed_at FROM sync_queue ORDER BY seq DESC LIMIT 1;
UPDATE sync_clock SET hlc = 'epoch';
INSERT INTO parent VALUES (3, 'three');            -- this backend stamped 2999 already
SELECT changed_at FROM sync_queue ORDER BY seq DESC LIMIT 1;
BEGIN;
INSERT INTO parent VALUES (4, 'four'), (5, 'five');
SELECT count(DISTINCT changed_at) AS distinct_versions, min(changed_at) > '2999-01-01 00:00:00.000002+00' AS after
  FROM sync_queue WHERE pk::text IN ('{"id":4}', '{"id":5}');
COMMIT;

-- Another backend reads the clock once per transaction.
\c
SET datestyle = ISO;
SET timezone = 'UTC';
INSERT INTO parent VALUES (6, 'six');
SELECT changed_at < '2999-01-01' AS wall_clock_again FROM sync_queue ORDER BY seq DESC LIMIT 1;
UPDATE sync_clock SET hlc = '2998-06-01 00:00:00+00';
INSERT INTO parent VALUES (7, 'seven');
SELECT changed_at FROM sync_queue ORDER BY seq DESC LIMIT 1;

-- Keys as the hub stores them.
SELECT * FROM sync_normalize_keys('[{"i": 0, "t": "tag", "p": {"id": "6F9619FF-8B86-D011-B42D-00C04FC964FF"}},
                                    {"i": 1, "t": "child", "p": {"id": "12"}},
                                    {"i": 2, "t": "child", "p": {"id": "twelve"}},
                                    {"i": 3, "t": "nosuch", "p": {"id": 1}},
                                    {"i": 4, "t": "tag", "p": {"nokey": 1}}]');

-- Applying: expected rows keep version and origin; a cascade and a BEFORE
-- trigger's write are the hub's own changes; a row stored otherwise than
-- sent is reported with the row as stored.
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := '2025-07-24 00:30:00+00'; RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON child FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO child VALUES (10, 6, 7, 1.5, NULL), (11, 6, NULL, 2, NULL);
DELETE FROM sync_queue;
UPDATE sync_clock SET hlc = 'epoch';
BEGIN;
SELECT sync_apply_expect('[{"n": 0, "t": "child", "p": "{\"id\":12}", "v": 1753317000000000,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null}]');
INSERT INTO child (id, parent_id, price) VALUES (12, 7, 1.23456);
SELECT sync_apply_expect('[{"n": 1, "t": "parent", "p": "{\"id\":6}", "v": 1753317000000001,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null},
                           {"n": 2, "t": "parent", "p": "{\"id\":99}", "v": 1753317000000002,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null}]');
DELETE FROM parent WHERE id IN (6, 99);
SELECT op, pk, row_data, us(changed_at) AS ver,
       CASE WHEN origin = sync_node_id() THEN 'hub' ELSE origin::text END AS origin
  FROM sync_queue ORDER BY seq;
SELECT n, seq IS NOT NULL AS queued, t, op, pk, row_data,
       CASE WHEN what = 'consequence' THEN ver > 1753317000000001 ELSE ver = 1753317000000000 + n END AS ver_ok,
       CASE WHEN origin = sync_node_id() THEN 'hub' ELSE origin::text END AS origin, what
  FROM sync_apply_report() ORDER BY n, seq;
SELECT count(*) AS reported_again FROM sync_apply_report();
COMMIT;

-- A row the transaction changed with a greater version first (a cascade)
-- is stamped afresh when the statement writes it, so the order of the
-- versions stays the order of the writes; an unchanged row is not reported.
DELETE FROM sync_queue;
BEGIN;
SELECT sync_apply_expect('[{"n": 0, "t": "parent", "p": "{\"id\":7}", "v": 1753317000000000,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null}]');
DELETE FROM parent WHERE id = 7;
SELECT sync_apply_expect('[{"n": 1, "t": "child", "p": "{\"id\":12}", "v": 1753317000000005,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null}]');
INSERT INTO child (id, price) VALUES (12, 3) ON CONFLICT (id) DO UPDATE SET price = EXCLUDED.price;
SELECT sync_apply_expect('[{"n": 2, "t": "tag", "p": "{\"id\":\"6f9619ff-8b86-d011-b42d-00c04fc964ff\"}", "v": 1753317000000006,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": "16003555088f296d"}]');
INSERT INTO tag VALUES ('6F9619FF-8B86-D011-B42D-00C04FC964FF', 'x');
SELECT n, t, op, pk, what FROM sync_apply_report() ORDER BY seq;
SELECT op, pk, CASE us(changed_at) WHEN 1753317000000000 THEN 'v0' WHEN 1753317000000006 THEN 'v2'
                                   ELSE CASE WHEN us(changed_at) > 1753317000000006 THEN 'fresh' END END AS ver,
       CASE WHEN origin = sync_node_id() THEN 'hub' ELSE origin::text END AS origin
  FROM sync_queue ORDER BY seq;
COMMIT;

-- A rolled-back savepoint takes what it reported with it.
BEGIN;
SELECT sync_apply_expect('[{"n": 0, "t": "parent", "p": "{\"id\":8}", "v": 1753317000000000,
                            "o": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "h": null}]');
SAVEPOINT s;
INSERT INTO parent VALUES (8, 'eight');
SELECT sync_apply_expect('[]');
INSERT INTO child (id, parent_id) VALUES (20, 8);
ROLLBACK TO SAVEPOINT s;
SELECT n, what FROM sync_apply_report();
COMMIT;

-- sync_queue_row: the row as the hub holds it now, as a correction for one
-- client or as a change of the hub's own.
DELETE FROM sync_queue;
SELECT queued_op, queued_ver FROM sync_queue_row('tag', '{"id": "6F9619FF-8B86-D011-B42D-00C04FC964FF"}', 1753317000000009,
	'7d444840-9dc0-11d1-b245-5ffdce74fad2', '7d444840-9dc0-11d1-b245-5ffdce74fad2', 42, 1753317999000000);
SELECT queued_op FROM sync_queue_row('parent', '{"id": 6}', NULL, NULL, NULL, NULL, NULL);
SELECT op, pk, row_data, for_node, for_seq, replaces,
       CASE WHEN origin = sync_node_id() THEN 'hub' ELSE origin::text END AS origin
  FROM sync_queue ORDER BY seq;
SELECT sync_queue_row('sync_queue', '{"seq": 1}', NULL, NULL, NULL, NULL, NULL);
SELECT sync_queue_row('tag', '{"id": 1}', 5, NULL, NULL, NULL, NULL);

-- The fold: a hub change written after a greater version (a clock that went
-- back) is queued again with a fresh version.
SELECT sync_fold_local() >= 0 AS folded;
INSERT INTO sync_versions VALUES ('parent', '{"id":1}', us('2999-06-01'), '7d444840-9dc0-11d1-b245-5ffdce74fad2')
  ON CONFLICT (table_name, pk) DO UPDATE SET ver_us = EXCLUDED.ver_us, ver_origin = EXCLUDED.ver_origin;
DELETE FROM sync_queue;
\c
SET datestyle = ISO;
SET timezone = 'UTC';
UPDATE sync_clock SET hlc = 'epoch';
UPDATE parent SET name = 'one, again' WHERE id = 1;
SELECT sync_fold_local();
SELECT op, pk, row_data, us(changed_at) > us('2999-06-01') AS after_the_other FROM sync_queue ORDER BY seq;
SELECT ver_us > us('2999-06-01') AS raised, ver_origin = sync_node_id() AS hub, deleted
  FROM sync_versions WHERE table_name = 'parent' AND pk = '{"id":1}';

-- A name a client could not tell apart is refused.
CREATE SCHEMA other;
CREATE TABLE other.parent (id bigint PRIMARY KEY);
CREATE TABLE "Tag" (id bigint PRIMARY KEY);
SELECT sync_track('other.parent');
SELECT sync_track('"Tag"');
SELECT sync_track('tag');                         -- the same table again is fine
CREATE TABLE other.solo (id bigint PRIMARY KEY);
SELECT sync_track('other.solo');
ALTER TABLE other.solo RENAME TO child;
ALTER TABLE other.solo SET SCHEMA public;
SELECT table_schema, table_name FROM sync_tables ORDER BY 1, 2;

-- sync_queue_row reads the row of a table that has a column named t.
CREATE TABLE note (id bigint PRIMARY KEY, t text);
SELECT sync_track('note');
INSERT INTO note VALUES (1, 'café');
SELECT queued_op FROM sync_queue_row('note', '{"id": 1}', NULL, NULL, NULL, NULL, NULL);
SELECT op, row_data FROM sync_queue WHERE table_name = 'note' ORDER BY seq;
