-- Schema changes of tracked tables.  The triggers name only the key, and
-- sync_fill() reads each queued change's row from its table as it is
-- when syncqd reads the queue: a column added, dropped or renamed between
-- the change and the sync arrives as the table has it.  sync_repair()
-- rewrites stale or missing triggers, follows renamed tables and records
-- the columns that went; it never queues a change again.

CREATE TABLE site(id INTEGER PRIMARY KEY, name TEXT, extra TEXT);
SELECT sync_track('site');
SELECT sync_repair();                                      -- nothing stale
SELECT columns FROM syncq_tracked;

SELECT '-- ALTER TABLE ADD COLUMN: rows written before the repair keep every value';
INSERT INTO site VALUES(1, 'north', 'e1');
ALTER TABLE site ADD COLUMN region TEXT DEFAULT 'east';
INSERT INTO site VALUES(2, 'south', 'e2', 'west');
UPDATE site SET region = 'central' WHERE id = 1;
INSERT INTO site VALUES(3, 'gone', 'e3', 'nowhere');
DELETE FROM site WHERE id = 3;
CREATE TEMP TABLE before AS SELECT seq, changed_at FROM sync_queue;
SELECT sync_repair();                                      -- the triggers name no new column
SELECT sync_fill() = (SELECT max(seq) FROM sync_queue);
SELECT seq, op, pk, row_data FROM sync_queue;
SELECT count(*) FROM sync_queue JOIN before USING (seq, changed_at);   -- versions kept

SELECT '-- DROP COLUMN works on a tracked table; the repair remembers it';
ALTER TABLE site DROP COLUMN extra;
UPDATE site SET name = 'nord' WHERE id = 1;
SELECT sync_repair();
SELECT table_name, column_name, renamed_to FROM syncq_columns_gone;
SELECT sync_fill() > 0;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- RENAME COLUMN: the JSON key follows, and the old name is remembered';
ALTER TABLE site RENAME COLUMN region TO area;
UPDATE site SET area = 'far' WHERE id = 2;
SELECT sync_track('site');                                 -- sync_track repairs too
SELECT table_name, column_name, renamed_to FROM syncq_columns_gone ORDER BY 2;
SELECT sync_fill() > 0;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- a column back again has not gone';
ALTER TABLE site ADD COLUMN extra TEXT;
SELECT sync_repair();
SELECT table_name, column_name, renamed_to FROM syncq_columns_gone ORDER BY 2;

SELECT '-- RENAME TO: the triggers move with the table; repair follows them';
ALTER TABLE site RENAME TO sites;
INSERT INTO sites VALUES(5, 'before the repair', 'x', NULL);
SELECT table_name, op, pk FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT sync_repair();
SELECT table_name, priority FROM syncq_tracked;
SELECT name, tbl_name FROM sqlite_schema WHERE name LIKE 'syncq\_%:%' ESCAPE '\' ORDER BY 1;
SELECT table_name, op, pk FROM sync_queue ORDER BY seq DESC LIMIT 1;   -- not read yet: follows
SELECT table_name, column_name, renamed_to FROM syncq_columns_gone ORDER BY 2;
SELECT table_name, renamed_to FROM syncq_tables_renamed;   -- the old name, for the hub's changes
INSERT INTO sites VALUES(6, 'after the repair', 'y', NULL);
SELECT sync_fill() > 0;
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 2;

SELECT '-- a rebuild (new table, copy, drop, rename) gets its triggers back';
INSERT INTO sites VALUES(7, 'queued before the rebuild', 'z', 'north');
CREATE TABLE _tmp_sites(id INTEGER PRIMARY KEY, name TEXT, area TEXT, extra TEXT);
INSERT INTO _tmp_sites SELECT id, name, upper(area), extra FROM sites;
DROP TABLE sites;
ALTER TABLE _tmp_sites RENAME TO sites;
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:%' ESCAPE '\';
SELECT sync_repair();
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:%' ESCAPE '\';
SELECT table_name, column_name, renamed_to FROM syncq_columns_gone ORDER BY 2;
INSERT INTO sites VALUES(8, 'rebuilt', NULL, NULL);
SELECT sync_fill() > 0;
-- 7 was queued before the rebuild; 6, 5, 2 and 1 were changed by its copy
-- (upper(area)): writes the triggers did not see, queued by the repair
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 6;

SELECT '-- a change whose row is gone by the fill is a delete of its key';
INSERT INTO sites VALUES(9, 'short-lived', NULL, NULL);
UPDATE syncq_state SET paused = 1;
DELETE FROM sites WHERE id = 9;
UPDATE syncq_state SET paused = 0;
SELECT sync_fill() > 0;
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- changes of a dropped table are left unread';
INSERT INTO sites VALUES(10, 'dropped with its table', NULL, NULL);
DROP TABLE sites;
SELECT sync_repair();                                      -- gone: nothing to do
SELECT sync_fill() > 0;
SELECT table_name, op, pk, row_data IS NULL FROM sync_queue ORDER BY seq DESC LIMIT 1;
CREATE TABLE sites(id INTEGER PRIMARY KEY, name TEXT, open INTEGER);
SELECT sync_repair();
INSERT INTO sites VALUES(11, 'made again', 1);   -- the dropped table's change stays unread
SELECT sync_fill() > 0;
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 2;
SELECT sync_untrack('sites');
SELECT sync_repair();
SELECT count(*) FROM syncq_tracked;

SELECT '-- writes between a rebuild and the repair are queued by the row sums';
CREATE TABLE gap(id INTEGER PRIMARY KEY, name TEXT, n TEXT);
INSERT INTO gap VALUES(1, 'one', '1'), (2, 'two', '2'), (3, 'three', '3'), (4, 'four', '4');
SELECT sync_track('gap');
SELECT count(*), sum(length(sum) = 24) FROM syncq_rowsums WHERE table_name = 'gap';
UPDATE gap SET name = 'two, queued' WHERE id = 2;
CREATE TABLE gap_new(id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
INSERT INTO gap_new SELECT * FROM gap;         -- '1' becomes 1: the same value
DROP TABLE gap;
ALTER TABLE gap_new RENAME TO gap;
INSERT INTO gap VALUES(5, 'five', 5);
UPDATE gap SET name = 'three, in the gap' WHERE id = 3;
UPDATE gap SET name = 'two, in the gap' WHERE id = 2;
DELETE FROM gap WHERE id = 4;
SELECT sync_repair();
SELECT op, pk FROM sync_queue WHERE table_name = 'gap' ORDER BY seq;
SELECT sync_fill() > 0;
SELECT op, pk, row_data FROM sync_queue WHERE table_name = 'gap' ORDER BY seq;
SELECT sync_repair();                                      -- judged once
SELECT count(*) FROM sync_queue WHERE table_name = 'gap';
-- a table dropped and made again (none of its rows known) is not judged
DROP TABLE gap;
CREATE TABLE gap(id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO gap VALUES(9, 'new');
SELECT sync_repair();
SELECT count(*) FROM sync_queue WHERE table_name = 'gap';
SELECT sync_untrack('gap');
SELECT count(*) FROM syncq_rowsums WHERE table_name = 'gap';
-- a sum from the values is the sum from the JSON sync_fill() makes of them
CREATE TABLE vals(id INTEGER PRIMARY KEY, v, t TEXT, n NUMERIC);
SELECT sync_track('vals');
INSERT INTO vals VALUES(1, 0.1, 'a "quoted" \ line' || char(10) || char(1) || 'é☃😀', 0.1 + 0.2),
  (2, 1e300, '12', -0.0), (3, 9e999, '5.0', -9e999), (4, x'00ff', x'61', 9223372036854775807),
  (5, NULL, NULL, 1e20), (6, -7, '-7e3', '12abc'), (7, 'text', '', 3.0);
SELECT sync_fill() > 0;
SELECT count(*), sum(syncq_rowsum(q.row_data) = syncq_rowsum_of('id', v.id, 'v', v.v, 't', v.t, 'n', v.n))
  FROM sync_queue AS q JOIN vals AS v ON q.table_name = 'vals' AND v.id = q.pk ->> 'id';
SELECT sync_untrack('vals');
SELECT syncq_rowsum_same(syncq_rowsum('{"a":5,"b":"x"}'), syncq_rowsum('{"a":"5.0","c":1}')),
       syncq_rowsum_same(syncq_rowsum('{"a":5}'), syncq_rowsum('{"a":"5x"}')),
       syncq_rowsum_same(syncq_rowsum('{"a":"a"}'), syncq_rowsum('{"a":{"$hex":"61"}}')),
       syncq_rowsum_same(NULL, x''), length(syncq_rowsum('not json'));

SELECT '-- a blob key is found again';
CREATE TABLE bk(k BLOB PRIMARY KEY, v);
SELECT sync_track('bk');
INSERT INTO bk VALUES(x'00ff10', 1.5);
SELECT sync_fill() > 0;
SELECT pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT hex(syncq_unhex('0a')), hex(syncq_unhex('00ff')), syncq_unhex(NULL);
SELECT syncq_unhex('xyz');

SELECT '-- the queue is read with its own seq order, never reused';
SELECT count(*) = max(seq) - min(seq) + 1 FROM sync_queue;

SELECT '-- sync_fill(n) reads the next n changes still to be read';
INSERT INTO bk VALUES(x'01', 1), (x'02', 2), (x'03', 3);
SELECT sync_fill(2) = (SELECT max(seq) - 1 FROM sync_queue);
SELECT count(*) FROM sync_queue WHERE table_name = 'bk' AND row_data IS NULL AND op = 'I';
SELECT sync_fill(2) = (SELECT max(seq) FROM sync_queue);
SELECT count(*) FROM sync_queue WHERE table_name = 'bk' AND row_data IS NULL AND op = 'I';
SELECT sync_fill(0);
SELECT sync_fill('x');

SELECT '-- a fill between a RENAME TO and the repair passes the change; it is read after the repair';
CREATE TABLE rn(id INTEGER PRIMARY KEY, v TEXT);
SELECT sync_track('rn');
ALTER TABLE rn RENAME TO rn2;
INSERT INTO rn2 VALUES(1, 'passed over');
SELECT sync_fill() > 0;                                    -- no table "rn": unread
SELECT table_name, op, pk, row_data IS NULL FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT sync_repair();
INSERT INTO rn2 VALUES(2, 'after the repair');
SELECT sync_fill() > 0;
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 2;
