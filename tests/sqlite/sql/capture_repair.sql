-- Schema changes of tracked tables: SQLite triggers name their columns, so
-- sync_repair() (or sync_track() again) rewrites stale triggers, and what
-- the stale triggers captured without a new column is queued again whole.

CREATE TABLE site(id INTEGER PRIMARY KEY, name TEXT);
SELECT sync_track('site');
SELECT sync_repair();                                      -- nothing stale

SELECT '-- ALTER TABLE ADD COLUMN, then writes the old triggers half-see';
INSERT INTO site VALUES(1, 'north');
ALTER TABLE site ADD COLUMN region TEXT DEFAULT 'east';
INSERT INTO site VALUES(2, 'south', 'west');
UPDATE site SET region = 'central' WHERE id = 1;
INSERT INTO site VALUES(3, 'gone', 'nowhere');
DELETE FROM site WHERE id = 3;
SELECT seq, op, pk, row_data FROM sync_queue;

SELECT '-- the repair: new triggers, and every half-captured row queued whole';
SELECT sync_repair();
SELECT seq, op, pk, row_data FROM sync_queue WHERE seq > 5;
SELECT sync_repair();                                      -- nothing left
INSERT INTO site VALUES(4, 'east', 'east');
SELECT seq, op, pk, row_data FROM sync_queue WHERE seq > 7;

SELECT '-- RENAME COLUMN: the JSON key follows';
ALTER TABLE site RENAME COLUMN region TO area;
SELECT sync_track('site');                                 -- sync_track repairs too
UPDATE site SET area = 'far' WHERE id = 4;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- DROP COLUMN is refused while the triggers name it: untrack first';
ALTER TABLE site DROP COLUMN area;
SELECT sync_untrack('site');
ALTER TABLE site DROP COLUMN area;
SELECT sync_track('site');
UPDATE site SET name = 'nord' WHERE id = 1;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- RENAME TO: the triggers move with the table; repair follows them';
ALTER TABLE site RENAME TO sites;
INSERT INTO sites VALUES(5, 'before the repair');
SELECT table_name, op, pk FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT sync_repair();
SELECT table_name, priority FROM syncq_tracked;
SELECT name, tbl_name FROM sqlite_schema WHERE name LIKE 'syncq\_%:%' ESCAPE '\' ORDER BY 1;
INSERT INTO sites VALUES(6, 'after the repair');
SELECT table_name, op, pk FROM sync_queue ORDER BY seq DESC LIMIT 1;

SELECT '-- a table dropped and made again gets its triggers back';
DROP TABLE sites;
SELECT count(*) FROM sqlite_schema WHERE name LIKE 'syncq\_%:%' ESCAPE '\';
SELECT sync_repair();                                      -- gone: nothing to do
CREATE TABLE sites(id INTEGER PRIMARY KEY, name TEXT, open INTEGER);
SELECT sync_repair();
INSERT INTO sites VALUES(7, 'rebuilt', 1);
SELECT table_name, op, pk, row_data FROM sync_queue ORDER BY seq DESC LIMIT 1;
SELECT sync_untrack('sites');
SELECT sync_repair();
SELECT count(*) FROM syncq_tracked;

SELECT '-- the queue is read with its own seq order, never reused';
SELECT count(*) = max(seq) - min(seq) + 1 FROM sync_queue;
