--
-- Capture: every value as JSON, exactly as docs/queue.md encodes it.
--
CREATE EXTENSION syncq;
SET datestyle = 'SQL, DMY';            -- JSON must not follow the session's styles
SET timezone = 'Asia/Kolkata';
SET intervalstyle = 'iso_8601';
SET extra_float_digits = -3;
SET bytea_output = 'escape';

CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE kinds (
	id        bigint PRIMARY KEY,
	i2        smallint,
	i4        integer,
	dom       positive,
	num       numeric,
	f4        real,
	f8        double precision,
	flag      boolean,
	txt       text,
	vc        varchar(20),
	bp        char(4),
	ts        timestamp,
	tstz      timestamptz,
	d         date,
	t         time,
	iv        interval,
	u         uuid,
	b         bytea,
	j         json,
	jb        jsonb,
	arr       int[],
	m         mood,
	inet_addr inet
);
SELECT sync_track('kinds');

-- The extremes and the exact.
INSERT INTO kinds (id, i2, i4, dom, num, f4, f8, flag, txt)
VALUES (9223372036854775807, -32768, -2147483648, 1, 1.50, 0.1, 0.1, true, 'plain'),
       (-9223372036854775808, 32767, 2147483647, 2, 12345678901234567890.123456789,
        3.4028235e38, 1.7976931348623157e308, false, ''),
       (3, 0, 0, 3, -0.000001, 1e-45, 5e-324, NULL, NULL),
       (4, NULL, NULL, NULL, 'NaN', 'NaN', 'NaN', NULL, NULL),
       (5, NULL, NULL, NULL, 'Infinity', 'Infinity', 'Infinity', NULL, NULL),
       (6, NULL, NULL, NULL, '-Infinity', '-Infinity', '-Infinity', NULL, NULL),
       (7, NULL, NULL, NULL, 100, -0.0, 1e100, NULL, NULL);
SELECT pk, row_data FROM sync_queue ORDER BY seq;
-- Every number reads back exactly.
SELECT k.id, (q.row_data->>'num')::numeric IS NOT DISTINCT FROM k.num AS num_ok,
       (q.row_data->>'f4')::real IS NOT DISTINCT FROM k.f4 AS f4_ok,
       (q.row_data->>'f8')::float8 IS NOT DISTINCT FROM k.f8 AS f8_ok,
       (q.pk->>'id')::bigint = k.id AS id_ok
FROM sync_queue q JOIN kinds k ON k.id = (q.pk->>'id')::bigint ORDER BY q.seq;
TRUNCATE sync_queue;

-- Text of any Unicode: emoji, quotes, backslashes, every control character.
INSERT INTO kinds (id, txt, vc, bp)
VALUES (10, 'emoji 🎉 ünïcödé 漢字 "quoted" back\slash /slash', 'tab	here', 'ab'),
       (11, E'\x01\x02\x07\b\f\n\r\t\x0b\x1f\x7f end', E'line\nbreak', 'abcd');
SELECT pk, row_data FROM sync_queue ORDER BY seq;
-- PostgreSQL reads the JSON back to the same text.
SELECT k.id, q.row_data->>'txt' = k.txt AS txt_ok, q.row_data->>'vc' = k.vc AS vc_ok
FROM sync_queue q JOIN kinds k ON k.id = (q.pk->>'id')::bigint ORDER BY q.seq;
TRUNCATE sync_queue;

-- Instants in UTC with their offset, whatever the session's zone; dates and
-- times as ISO; bytea as base64; uuid; json embedded; the rest as text.
INSERT INTO kinds (id, ts, tstz, d, t, iv, u, b, j, jb, arr, m, inet_addr)
VALUES (20, '2025-07-24 00:30:00', '2025-07-24 00:30:00.123456+00', '2025-07-24', '23:59:59.5',
        '1 year 2 mons 3 days 04:05:06.7', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
        '\x00ff10', '{"b": [1, 2.50, "x"],  "a": null}', '{"b": [1, 2.50, "x"], "a": null}',
        '{1,2,NULL}', 'busy', '192.168.0.1/24'),
       (21, '1999-12-31 23:59:59', '2025-03-09 06:59:59-05', '0044-03-15', '00:00', '-1 days', NULL,
        '', '"str"', '12345678901234567890.0', '{}', 'calm', '::1'),
       (22, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL,
        'hello world!', 'null', 'true', NULL, NULL, NULL);
SELECT pk, row_data FROM sync_queue ORDER BY seq;
-- bytea and instants read back exactly.
SELECT k.id, decode(q.row_data->>'b', 'base64') = k.b AS b_ok,
       (q.row_data->>'tstz')::timestamptz = k.tstz AS tstz_ok,
       (q.row_data->>'ts')::timestamptz = k.ts AT TIME ZONE 'UTC' AS ts_ok
FROM sync_queue q JOIN kinds k ON k.id = (q.pk->>'id')::bigint ORDER BY q.seq;
TRUNCATE sync_queue;

-- NULL everywhere but the key.
INSERT INTO kinds (id) VALUES (30);
SELECT pk, row_data FROM sync_queue;
-- A long value is stored compressed or out of line and still read whole.
UPDATE kinds SET txt = repeat('long text ', 10000) WHERE id = 30;
SELECT op, length(row_data->>'txt') AS txt_length FROM sync_queue ORDER BY seq;
-- The key of a row with a long unchanged column is not mistaken for changed.
UPDATE kinds SET i2 = 1 WHERE id = 30;
SELECT op, pk FROM sync_queue ORDER BY seq;
TRUNCATE sync_queue;

-- A generated column is not shipped: every node that has it computes it.
CREATE TABLE priced (
	id    int PRIMARY KEY,
	qty   int,
	price numeric(10,2),
	total numeric GENERATED ALWAYS AS (qty * price) STORED
);
SELECT sync_track('priced');
INSERT INTO priced (id, qty, price) VALUES (1, 3, 1.25);
UPDATE priced SET qty = 4 WHERE id = 1;
SELECT op, pk, row_data FROM sync_queue ORDER BY seq;

-- The first sync reads rows as the trigger writes them.
SELECT sync_row_json('priced', p) FROM priced AS p;
SELECT sync_row_json('kinds', k) FROM kinds AS k WHERE id IN (20, 21, 22) ORDER BY id;
SELECT sync_row_json('priced', k) FROM kinds AS k WHERE id = 30;

-- money is refused by name: its text follows lc_monetary (also in a domain
-- or an array).
CREATE TABLE till (id int PRIMARY KEY, amount money);
SELECT sync_track('till');
CREATE DOMAIN cash AS money;
CREATE TABLE tills (id int PRIMARY KEY, amounts cash[]);
SELECT sync_track('tills');
-- ... and so is a money column added to a tracked table, or a column made
-- money, however deep in domains and arrays; the table stays as it was.
CREATE TABLE till2 (id int PRIMARY KEY, amount numeric(12,2));
SELECT sync_track('till2');
ALTER TABLE till2 ADD COLUMN tip money;
ALTER TABLE till2 ALTER COLUMN amount TYPE cash[] USING NULL;
ALTER TABLE till2 ADD COLUMN ok numeric, ADD COLUMN tips cash[][];
SELECT attname FROM pg_attribute WHERE attrelid = 'till2'::regclass AND attnum > 0 ORDER BY attnum;
ALTER TABLE till2 ADD COLUMN tip numeric(12,2);
ALTER TABLE till ADD COLUMN tip money;
