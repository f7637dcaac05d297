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
 *	  clock.c     versions: the hub's hybrid logical clock
 *	  apply.c     a captured change's version and origin, also while syncqd
 *	              applies another node's changes (and what it reports back)
 *	  queue.c     writing one sync_queue row, NOTIFY once, the node id
 *	  track.c     sync_track(), sync_untrack(), sync_enqueue() and friends
 */
#ifndef SYNCQ_H
#define SYNCQ_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "access/htup.h"
#include "datatype/timestamp.h"
#include "utils/relcache.h"
#include "utils/uuid.h"

#include "syncq_contract.h"

/* The business zone of the Eastern helpers. */
#define SYNCQ_EASTERN_ZONE "America/New_York"

/* Names sync_track() gives the triggers it puts on a tracked table. */
#define SYNCQ_CAPTURE_TRIGGER	"syncq_capture"
#define SYNCQ_TRUNCATE_TRIGGER	"syncq_truncate"
/* The capture trigger's second argument on a table a rebuild created. */
#define SYNCQ_CAPTURE_COPY		"copy"

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
	SYNCQ_JSON_ARRAY,			/* a JSON array of the elements */
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
extern Datum syncq_key_json(StringInfo buf, const SyncqTable *table,
							TupleTableSlot *slot);
extern Datum syncq_row_json(StringInfo buf, const SyncqTable *table,
							TupleTableSlot *slot);
extern int	syncq_trigger_depth(void);

/* --- clock.c ------------------------------------------------------------- */

extern void syncq_clock_init(void);
extern TimestampTz syncq_clock_stamp(Oid nspid, HeapTuple oldtuple);
extern void syncq_clock_observe(TimestampTz version);
extern int64 syncq_version_to_unix_us(TimestampTz version);
extern TimestampTz syncq_version_from_unix_us(int64 us);

/* --- apply.c ------------------------------------------------------------- */

extern void syncq_apply_init(void);
extern int64 syncq_capture_change(Oid nspid, Relation rel, const SyncqTable *table,
								  char op, Datum pk, Datum row_data,
								  bool immediate, HeapTuple oldtuple);
extern uint64 syncq_text_hash(const char *s, Size len);

/* --- queue.c ------------------------------------------------------------- */

extern void syncq_queue_init(void);
extern Oid	syncq_schema(FunctionCallInfo fcinfo);
extern Oid	syncq_queue_relid(Oid nspid);
extern Oid	syncq_owner(Oid nspid);
extern void syncq_become_owner(Oid nspid, Oid *save_userid,
							   int *save_sec_context);
/* What a queue row carries besides the change itself (docs/queue.md). */
typedef struct SyncqChangeMeta
{
	TimestampTz version;		/* changed_at */
	const pg_uuid_t *origin;	/* NULL: this node */
	bool		notify;			/* NOTIFY sync_queue if immediate */
	const pg_uuid_t *for_node;	/* a correction for that client only */
	int64		for_seq;		/* ... answering its change of this seq */
	bool		has_replaces;	/* ... whose version it replaces: */
	TimestampTz replaces;
} SyncqChangeMeta;

extern int64 syncq_queue_change(Oid nspid, const SyncqTable *table, char op,
								Datum pk, Datum row_data, bool immediate,
								const SyncqChangeMeta *meta);
extern void syncq_notify_once(void);
extern pg_uuid_t *syncq_node_id(Oid nspid);

#endif							/* SYNCQ_H */
