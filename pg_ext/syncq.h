/*
 * syncq.h
 *	  Declarations shared by the C files of the syncq PostgreSQL extension.
 *
 * The extension is split by subsystem: timefuncs.c holds the timezone
 * vocabulary shared with the SQLite extension (eastern_date() and its
 * siblings); the capture subsystem is
 *
 *	  capture.c   the trigger functions, the per-table cache, the settings
 *	  rowjson.c   a column value as JSON, per docs/queue.md
 *	  queue.c     writing one sync_queue row, NOTIFY once, the node id
 *	  track.c     sync_track(), sync_untrack(), sync_enqueue() and friends
 */
#ifndef SYNCQ_H
#define SYNCQ_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/relcache.h"
#include "utils/uuid.h"

#include "syncq_contract.h"

/* The business zone of the Eastern helpers. */
#define SYNCQ_EASTERN_ZONE "America/New_York"

/* Names sync_track() gives the triggers it puts on a tracked table. */
#define SYNCQ_CAPTURE_TRIGGER	"syncq_capture"
#define SYNCQ_TRUNCATE_TRIGGER	"syncq_truncate"

/* --- rowjson.c ----------------------------------------------------------- */

/* How a column's value becomes JSON; chosen once per column. */
typedef enum SyncqJsonKind
{
	SYNCQ_JSON_INT2,
	SYNCQ_JSON_INT4,
	SYNCQ_JSON_INT8,
	SYNCQ_JSON_BOOL,
	SYNCQ_JSON_TEXT,			/* text, varchar, bpchar */
	SYNCQ_JSON_NUMERIC,
	SYNCQ_JSON_FLOAT4,
	SYNCQ_JSON_FLOAT8,
	SYNCQ_JSON_TIMESTAMP,		/* timestamptz, and timestamp read as UTC */
	SYNCQ_JSON_DATE,
	SYNCQ_JSON_INTERVAL,
	SYNCQ_JSON_UUID,
	SYNCQ_JSON_BYTEA,
	SYNCQ_JSON_JSON,
	SYNCQ_JSON_JSONB,
	SYNCQ_JSON_OTHER			/* the type's output function, as a string */
} SyncqJsonKind;

/* One column of a tracked table, ready to be written as "name":value. */
typedef struct SyncqColumn
{
	AttrNumber	attnum;
	char	   *name;			/* attname */
	char	   *key;			/* "name": with the name JSON-escaped */
	int			keylen;
	SyncqJsonKind kind;
	int16		typlen;
	bool		typbyval;
	FmgrInfo	output;			/* for SYNCQ_JSON_OTHER */
} SyncqColumn;

extern void syncq_column_init(SyncqColumn *col, Form_pg_attribute att,
							  MemoryContext mcxt);
extern void syncq_json_value(StringInfo buf, const SyncqColumn *col,
							 Datum value, bool isnull);
extern void syncq_json_string(StringInfo buf, const char *str, int len);
extern void syncq_json_begin(StringInfo buf);
extern Datum syncq_json_finish(StringInfo buf);

/* --- capture.c ----------------------------------------------------------- */

/* What capture knows about a tracked table; rebuilt on relcache invalidation. */
typedef struct SyncqTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext mcxt;			/* holds everything below */
	Datum		table_schema;	/* text */
	Datum		table_name;		/* text */
	int			natts;			/* of the TupleDesc, dropped columns too */
	int			ncolumns;		/* live columns, in attnum order */
	SyncqColumn *columns;
	int			nkeys;			/* primary key columns, in key order */
	SyncqColumn **keys;
} SyncqTable;

extern bool syncq_capture_enabled;
extern pg_uuid_t *syncq_origin_setting;
extern SyncqTable *syncq_table(Relation rel);

/* --- queue.c ------------------------------------------------------------- */

extern void syncq_queue_init(void);
extern Oid	syncq_schema(FunctionCallInfo fcinfo);
extern Oid	syncq_queue_relid(Oid nspid);
extern Oid	syncq_owner(Oid nspid);
extern void syncq_become_owner(Oid nspid, Oid *save_userid,
							   int *save_sec_context);
extern int64 syncq_queue_change(Oid nspid, const SyncqTable *table, char op,
								Datum pk, Datum row_data, bool immediate);
extern void syncq_notify_once(void);
extern pg_uuid_t *syncq_node_id(Oid nspid);

#endif							/* SYNCQ_H */
