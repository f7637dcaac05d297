-- Capture in a connection that loaded syncq: sync_track(), the triggers,
-- every kind of value, txid, priority, pause, origin, seq, untrack.
-- (Plain connections are tested by tests/integration/sqlite_capture*.sh.)

SELECT '-- functions';
SELECT is_online_server();
SELECT length(sync_node_id()), sync_node_id() = sync_node_id(),
       sync_node_id() GLOB '????????-????-4???-????-????????????',
       sync_node_id() = lower(sync_node_id());
SELECT sync_trigger();                       -- in-memory: no wake file
SELECT name FROM sqlite_schema ORDER BY name;

-- The triggers queue the key; sync_fill() (which syncqd runs before it
-- reads the queue) reads each change's row from its table into row_data.
-- What varies from run to run (node id, time, txid) is shown as checks.
CREATE TEMP VIEW q AS
SELECT seq, table_name, op, pk, row_data, priority,
       origin = (SELECT node_id FROM syncq_state) AS own,
       changed_at GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z' AS at_ok
FROM sync_queue;

SELECT '-- track, and every kind of value';
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, n);
SELECT sync_track('item');
SELECT table_name, priority FROM syncq_tracked;
SELECT name, tbl_name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name;
INSERT INTO item VALUES(1, 'plain', 1.5, x'0a1bff', NULL);
INSERT INTO item VALUES(9007199254740993, 'naïve ☃ "quoted" \ back', 0.1, x'', 9223372036854775807);
INSERT INTO item VALUES(-9223372036854775808, 'tab	and
newline', 0.30000000000000004, NULL, -9007199254740993);
INSERT INTO item VALUES(2, x'00', 1e300, 'text in a blob column', 2.5);
INSERT INTO item VALUES(3, 42, 7, 9e999, -9e999);         -- affinity: '42', 7.0
INSERT INTO item VALUES(4, NULL, -0.0, 1e-300, 123456789012345678);
SELECT sync_fill() > 0;
SELECT * FROM q;

SELECT '-- update, key change, delete';
DELETE FROM sync_queue;
UPDATE item SET name = 'renamed' WHERE id = 1;
UPDATE item SET id = 10 WHERE id = 1;                      -- D old key, then I
UPDATE item SET id = 11, name = 'both' WHERE id = 10;
DELETE FROM item WHERE id = 11;
UPDATE item SET n = n WHERE id = 2;                        -- a no-op update is queued too
SELECT sync_fill() > 0;
SELECT * FROM q WHERE seq > 6;

SELECT '-- txid: one per transaction, here where syncq is loaded';
DELETE FROM sync_queue;
BEGIN;
INSERT INTO item(id, name) VALUES(20, 'a');
INSERT INTO item(id, name) VALUES(21, 'b');
UPDATE item SET name = 'c' WHERE id = 20;
COMMIT;
INSERT INTO item(id, name) VALUES(22, 'd');
BEGIN;
INSERT INTO item(id, name) VALUES(23, 'e');
ROLLBACK;
INSERT INTO item(id, name) VALUES(24, 'f');
SELECT count(*), count(txid), count(DISTINCT txid), min(txid) > 0
FROM sync_queue WHERE seq > (SELECT min(seq) FROM sync_queue);
SELECT group_concat(n, ',') FROM (
  SELECT count(*) AS n FROM sync_queue
  WHERE seq > (SELECT min(seq) FROM sync_queue) GROUP BY txid ORDER BY min(seq));
SELECT typeof(sqlite_compileoption_get(-7301));            -- a txid outside a write, too
SELECT sqlite_compileoption_get(0) IS (SELECT compile_options FROM pragma_compile_options LIMIT 1),
       sqlite_compileoption_get(-1), sqlite_compileoption_get(1000000);

SELECT '-- seq is never reused: the newest row survives any delete';
DELETE FROM sync_queue;
SELECT count(*), max(seq) = (SELECT max(seq) FROM sync_queue) FROM sync_queue;
CREATE TEMP TABLE before AS SELECT max(seq) AS s FROM sync_queue;
INSERT INTO item(id, name) VALUES(30, 'after the purge');
SELECT (SELECT max(seq) FROM sync_queue) = (SELECT s FROM before) + 1;
DELETE FROM sync_queue WHERE seq = (SELECT max(seq) FROM sync_queue);
SELECT count(*) FROM sync_queue;

SELECT '-- priority';
SELECT sync_track('item', 'batched');
SELECT table_name, priority FROM syncq_tracked;
INSERT INTO item(id, name) VALUES(40, 'batched now');
SELECT op, pk, priority FROM sync_queue ORDER BY seq DESC LIMIT 2;
SELECT sync_track('ITEM');                                 -- any ASCII case; back to immediate
SELECT table_name, priority FROM syncq_tracked;
SELECT sync_track('item');                                 -- unchanged: triggers kept
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:item' ESCAPE '\';

SELECT '-- composite key, WITHOUT ROWID, quoted and unicode names';
DELETE FROM sync_queue;
CREATE TABLE "Order ""Lines"" ☃"(
  "order" TEXT, "línea" INTEGER, "qty""x" REAL, note TEXT COLLATE NOCASE,
  PRIMARY KEY("order", "línea")) WITHOUT ROWID;
SELECT sync_track('Order "Lines" ☃', 'batched');
INSERT INTO "Order ""Lines"" ☃" VALUES('A-1', 1, 2.0, 'x');
INSERT INTO "Order ""Lines"" ☃" VALUES('A-1', 2, NULL, NULL);
UPDATE "Order ""Lines"" ☃" SET "qty""x" = 3 WHERE "línea" = 2;
UPDATE "Order ""Lines"" ☃" SET "línea" = 3 WHERE "línea" = 2;
DELETE FROM "Order ""Lines"" ☃" WHERE "order" = 'A-1' AND "línea" = 1;
SELECT sync_fill() > 0;
SELECT * FROM q WHERE seq > (SELECT min(seq) FROM sync_queue);

SELECT '-- a text key whose case changes is a key change, even under NOCASE';
CREATE TABLE code(c TEXT PRIMARY KEY COLLATE NOCASE, v);
SELECT sync_track('code');
DELETE FROM sync_queue;
INSERT INTO code VALUES('abc', 1);
UPDATE code SET c = 'ABC';
SELECT op, pk FROM sync_queue WHERE seq > (SELECT min(seq) FROM sync_queue);

SELECT '-- STRICT, generated columns, REPLACE and UPSERT';
CREATE TABLE s(id INTEGER PRIMARY KEY, i INT, r REAL, t TEXT, b BLOB, a ANY,
               g TEXT GENERATED ALWAYS AS (upper(t)) VIRTUAL) STRICT;
SELECT sync_track('s');
DELETE FROM sync_queue;
INSERT INTO s(id, i, r, t, b, a) VALUES(1, 5, 5, 'x', x'ff', 1.25);
INSERT INTO s(id, i, r, t, b, a) VALUES(2, NULL, NULL, NULL, NULL, NULL);
INSERT OR REPLACE INTO s(id, i, r, t, b, a) VALUES(1, 6, 0.5, 'y', NULL, 'z');
INSERT INTO s(id, t) VALUES(2, 'up') ON CONFLICT(id) DO UPDATE SET t = excluded.t;
SELECT sync_fill() > 0;
SELECT op, pk, row_data FROM sync_queue WHERE seq > (SELECT min(seq) FROM sync_queue);

SELECT '-- pause, from the functions and from plain SQL';
DELETE FROM sync_queue;
SELECT sync_pause(), sync_pause();
INSERT INTO item(id, name) VALUES(50, 'not captured');
SELECT sync_resume(), sync_resume();
INSERT INTO item(id, name) VALUES(51, 'captured');
UPDATE syncq_state SET paused = 1;
DELETE FROM item WHERE id = 51;
UPDATE syncq_state SET paused = 0;
SELECT op, pk FROM sync_queue WHERE seq > (SELECT min(seq) FROM sync_queue);
UPDATE syncq_state SET paused = 2;

SELECT '-- origin: what syncqd applies for another node keeps that node''s id';
DELETE FROM sync_queue;
SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');   -- not in a transaction
BEGIN;
SELECT sync_apply_origin('7D444840-9dc0-11d1-b245-5ffdce74fad2');   -- not lower case
SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');
INSERT INTO item(id, name) VALUES(60, 'from elsewhere');
SELECT sync_enqueue('item', 'D', '{"id":59}', NULL) > 0;
COMMIT;
INSERT INTO item(id, name) VALUES(61, 'from here');
BEGIN;
SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');
SELECT sync_apply_origin(NULL);
INSERT INTO item(id, name) VALUES(62, 'from here too');
ROLLBACK;
BEGIN;
SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');
ROLLBACK;
INSERT INTO item(id, name) VALUES(63, 'the rollback forgot it');
SELECT op, pk, CASE WHEN origin = sync_node_id() THEN 'this node' ELSE origin END
FROM sync_queue WHERE seq > (SELECT min(seq) FROM sync_queue);

SELECT '-- a new node id: the triggers are rewritten with it';
CREATE TEMP TABLE old_node AS SELECT sync_node_id() AS id;
UPDATE syncq_state SET node_id = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
SELECT sync_reidentify('not-a-uuid');
SELECT sync_reidentify('1b4e28ba-2fa1-11d2-883f-0016d3cca427');
SELECT sync_node_id();
INSERT INTO item(id, name) VALUES(64, 'new id');
SELECT origin FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE '%' || (SELECT id FROM old_node) || '%';
SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE '%1b4e28ba-2fa1-11d2-883f-0016d3cca427%';
SELECT sync_repair();                                      -- all up to date

SELECT '-- sync_enqueue';
DELETE FROM sync_queue;
SELECT sync_enqueue('item', 'U', '{"id": 7}', '{"id":7, "name":"by hand"}') > 0;
SELECT sync_enqueue('Item', 'D', '{"id":7}', NULL, 0) > 0;
SELECT last_insert_rowid();                                -- untouched by sync_enqueue
SELECT table_name, op, pk, row_data, priority, own, at_ok FROM q
WHERE seq > (SELECT min(seq) FROM sync_queue);
SELECT sync_enqueue('item', 'X', '{"id":7}', NULL);
SELECT sync_enqueue('item', 'I', '{"id":', '{}');
SELECT sync_enqueue('item', 'I', '[1]', '{}');
SELECT sync_enqueue('item', 'I', '{"id":7}', NULL);
SELECT sync_enqueue('item', 'D', '{"id":7}', '{}');
SELECT sync_enqueue('nosuch', 'I', '{"id":7}', '{}');
SELECT sync_enqueue('item', 'I', '{"id":7}', '{}', NULL);

SELECT '-- errors';
CREATE TABLE nopk(a, b);
CREATE VIEW v AS SELECT 1 AS x;
SELECT sync_track('nopk');
SELECT sync_track('nosuch');
SELECT sync_track('item', 'urgent');
SELECT sync_track('item', NULL);
SELECT sync_track('v');
SELECT sync_track('sync_queue');
SELECT sync_track('sqlite_schema');
SELECT sync_track(42);
SELECT sync_enqueue('item', 'I', '[' || replace(hex(zeroblob(40)), '0', '1') || ']', '{}');
SELECT sync_enqueue('item', 'I', '["' || replace(hex(zeroblob(28)), '0', 'é') || '"]', '{}');
SELECT sync_untrack('nosuch');
SELECT table_name, priority FROM syncq_tracked ORDER BY 1;

SELECT '-- a failed sync_track inside a transaction leaves it usable';
BEGIN;
SELECT sync_track('nopk');
INSERT INTO item(id, name) VALUES(70, 'still in the transaction');
COMMIT;
SELECT name FROM item WHERE id = 70;

SELECT '-- untrack: triggers go, queued rows stay';
SELECT count(*) FROM sync_queue;
SELECT sync_untrack('code'), sync_untrack('code'), sync_untrack('nopk');
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:code' ESCAPE '\';
INSERT INTO code VALUES('zzz', 2);
SELECT count(*) FROM sync_queue;
BEGIN;
SELECT sync_untrack('item');
ROLLBACK;
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:item' ESCAPE '\';
SELECT table_name FROM syncq_tracked ORDER BY 1;

SELECT '-- INTEGER and NUMERIC affinity columns hold more than integers';
CREATE TABLE num(id INTEGER PRIMARY KEY, i INTEGER, n NUMERIC);
SELECT sync_track('num');
INSERT INTO num VALUES(1, 1.5, '12abc'), (2, x'01', 1e20), (3, NULL, 3.0),
  (4, 9223372036854775807, ' 7'), (5, 'text', -0.0), (6, 9e999, -9e999);
SELECT sync_fill() > 0;
SELECT pk, row_data FROM sync_queue WHERE table_name = 'num' ORDER BY seq;

SELECT '-- versions: a hybrid logical clock, never below the floor syncqd raises or the newest row';
DELETE FROM sync_queue;
SELECT next FROM syncq_state;
INSERT INTO num VALUES(10, 1, 1);
SELECT changed_at <= strftime('%Y-%m-%dT%H:%M:%f999Z', 'now') FROM sync_queue ORDER BY seq DESC LIMIT 1;
UPDATE syncq_state SET next = '2999-01-01T00:00:00.000001Z';
INSERT INTO num VALUES(11, 1, 1);
UPDATE num SET i = 2 WHERE id = 11;
SELECT op, pk, changed_at FROM sync_queue WHERE pk = '{"id":11}' ORDER BY seq;
UPDATE syncq_state SET next = '';
DELETE FROM sync_queue;                                    -- keeps the newest row
DELETE FROM num WHERE id = 11;
SELECT op, pk, changed_at FROM sync_queue ORDER BY seq;
SELECT sync_enqueue('num', 'D', '{"id":10}', NULL) > 0;
SELECT op, pk, changed_at FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT '-- value forms: how syncqd writes the hub''s values into a table';
CREATE TABLE visit(id INTEGER PRIMARY KEY, at TEXT, span TEXT,
                   day TEXT GENERATED ALWAYS AS (substr(at, 1, 10)) VIRTUAL);
SELECT sync_track('visit');
SELECT priority, forms IS NULL FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', NULL, 'sqlalchemy');
SELECT forms FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'batched');
SELECT priority, forms FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', NULL, '{ "span" : "sqlalchemy", "*": "default" }');
SELECT priority, forms FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', NULL, NULL);
SELECT forms IS NULL FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', NULL, 'django');
SELECT sync_track('visit', 'immediate', NULL, '{"nope": "default"}');
SELECT sync_track('visit', 'immediate', NULL, '{"day": "default"}');
SELECT sync_track('visit', 'immediate', NULL, '{"at": "x"}');
SELECT sync_track('visit', 'immediate', NULL, '{"at": 1}');
SELECT sync_track('visit', 'immediate', NULL, '["sqlalchemy"]');
-- the key policy (keys): 'auto' (the default), 'hub' (the key must be the
-- rowid), 'natural'; NULL keeps it
SELECT sync_track('visit', 'immediate', 'uuid', NULL);
SELECT sync_track('visit', 'immediate', 7, NULL);
SELECT sync_track('code', 'immediate', 'hub');
SELECT count(*) FROM syncq_tracked WHERE table_name = 'code';
SELECT sync_track('visit', 'immediate', 'natural', NULL);
SELECT sync_track('visit', 'immediate', NULL);
SELECT keys FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', 'hub', NULL);
SELECT keys FROM syncq_tracked WHERE table_name = 'visit';
SELECT sync_track('visit', 'immediate', 'auto', NULL);
SELECT sync_track('visit', 'immediate', NULL);
SELECT priority, forms IS NULL FROM syncq_tracked WHERE table_name = 'visit';
-- a generated column is not captured
INSERT INTO visit(id, at, span) VALUES(1, '2025-03-09 06:59:59.500000', '1970-01-01 01:30:00.000000');
SELECT sync_fill() > 0;
SELECT row_data FROM sync_queue WHERE table_name = 'visit' ORDER BY seq;
