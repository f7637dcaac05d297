/*
 * capture.c
 *	  The capture trigger: every INSERT, UPDATE and DELETE of a tracked table
 *	  becomes a row of sync_queue.
 *
 *	  syncq_capture()    AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW,
 *	                     with the priority as its argument:
 *	                     EXECUTE FUNCTION syncq_capture('immediate');
 *	                     on a table a rebuild created under a tracked
 *	                     table's name, also 'copy': the inserts of the
 *	                     transaction that created it are not queued
 *	  syncq_truncate()   BEFORE TRUNCATE ... FOR EACH STATEMENT: refuses it
 *	  sync_row_json(tbl, row)   a row as the trigger writes it (first sync)
 *
 *	  syncq.capture      boolean, default on; off pauses capture
 *	  syncq.origin       uuid; when set, the origin of the changes made now
 *
 * Both settings are PGC_SUSET: only a superuser, or a role granted
 * SET ON PARAMETER, may change them.  sync_track() installs the triggers.
 *
 * Per table, capture caches what it needs to write a row as JSON (the
 * columns, how each is encoded, the primary key columns), keyed by relid and
 * dropped by a relcache invalidation callback, so ALTER TABLE ADD/DROP COLUMN
 * needs no extra step.  Per row it encodes the key and the row straight from
 * the tuple and hands them to queue.c.  Generated columns are left out: each
 * node computes its own (docs/replication.md, Types).
 */
#include "syncq.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(syncq_capture);
PG_FUNCTION_INFO_V1(syncq_truncate);
PG_FUNCTION_INFO_V1(sync_row_json);

void		_PG_init(void);

bool		syncq_capture_enabled = true;
pg_uuid_t  *syncq_origin_setting = NULL;
static char *origin_string = NULL;

/* Tracked tables this backend has captured, by relid. */
static HTAB *table_cache = NULL;

/*
 * Per-row memory, reset at the start of each outermost capture call.
 * capture_depth counts nested calls (a trigger whose work fires another);
 * the abort callbacks put it back to zero.
 */
static MemoryContext row_context = NULL;
static int	capture_depth = 0;

/*
 * Relcache invalidation callback: forget what we know of relid, or of every
 * table when relid is InvalidOid.  Only marks entries; a capture call that is
 * running may still be using the memory.
 */
static void
table_cache_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	SyncqTable *entry;

	if (table_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		entry = hash_search(table_cache, &relid, HASH_FIND, NULL);
		if (entry != NULL)
			entry->valid = false;
		return;
	}
	hash_seq_init(&status, table_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

/* Find the column of attnum among table's live columns. */
static SyncqColumn *
find_column(SyncqTable *table, AttrNumber attnum)
{
	int			i;

	for (i = 0; i < table->ncolumns; i++)
		if (table->columns[i].attnum == attnum)
			return &table->columns[i];
	elog(ERROR, "column %d of relation %u is not a live column",
		 attnum, table->relid);
	return NULL;				/* keep compiler quiet */
}

/*
 * Fill table from the relation's current descriptor and primary key.
 */
static void
build_table(SyncqTable *table, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			pkoid = RelationGetPrimaryKeyIndex(rel);
	HeapTuple	indtup;
	Form_pg_index index;
	MemoryContext old;
	int			i;

	if (!OidIsValid(pkoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key",
						RelationGetRelationName(rel)),
				 errdetail("syncq tracks the table, and finds a row on the other nodes by its primary key."),
				 errhint("Add the primary key back, or stop tracking the table with sync_untrack().")));

	if (table->mcxt == NULL)
		table->mcxt = AllocSetContextCreate(CacheMemoryContext,
											"syncq table",
											ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(table->mcxt);
	old = MemoryContextSwitchTo(table->mcxt);

	table->table_schema =
		CStringGetTextDatum(get_namespace_name(RelationGetNamespace(rel)));
	table->table_name = CStringGetTextDatum(RelationGetRelationName(rel));
	table->natts = tupdesc->natts;
	table->columns = palloc(sizeof(SyncqColumn) * Max(tupdesc->natts, 1));
	table->ncolumns = 0;
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		/* a generated column is computed by every node that has it */
		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		syncq_column_init(&table->columns[table->ncolumns++], att,
						  table->mcxt);
	}

	indtup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkoid));
	if (!HeapTupleIsValid(indtup))
		elog(ERROR, "cache lookup failed for index %u", pkoid);
	index = (Form_pg_index) GETSTRUCT(indtup);
	table->nkeys = index->indnkeyatts;
	table->keys = palloc(sizeof(SyncqColumn *) * table->nkeys);
	for (i = 0; i < table->nkeys; i++)
		table->keys[i] = find_column(table, index->indkey.values[i]);
	ReleaseSysCache(indtup);

	MemoryContextSwitchTo(old);
}

/*
 * What capture knows about rel: its columns and primary key, built on first
 * use and again after any invalidation of the relation.
 */
SyncqTable *
syncq_table(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	SyncqTable *table;
	bool		found;

	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SyncqTable);
		ctl.hcxt = CacheMemoryContext;
		table_cache = hash_create("syncq tables", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	table = hash_search(table_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		table->valid = false;
		table->mcxt = NULL;
	}

	/*
	 * An invalidation that arrives while we build (catalog lookups accept
	 * them) clears valid again, and we build once more.
	 */
	while (!table->valid || table->natts != RelationGetDescr(rel)->natts)
	{
		table->valid = true;
		PG_TRY();
		{
			build_table(table, rel);
		}
		PG_CATCH();
		{
			table->valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return table;
}

/* Write the primary key of the tuple in slot as a JSON object. */
Datum
syncq_key_json(StringInfo buf, const SyncqTable *table, TupleTableSlot *slot)
{
	int			i;

	syncq_json_begin(buf);
	appendStringInfoCharMacro(buf, '{');
	for (i = 0; i < table->nkeys; i++)
	{
		const SyncqColumn *col = table->keys[i];
		bool		isnull;
		Datum		value = slot_getattr(slot, col->attnum, &isnull);

		if (i > 0)
			appendStringInfoCharMacro(buf, ',');
		appendBinaryStringInfo(buf, col->key, col->keylen);
		syncq_json_value(buf, col, value, isnull);
	}
	appendStringInfoCharMacro(buf, '}');
	return syncq_json_finish(buf);
}

/* Write every shipped column of a row (values by attnum) as a JSON object. */
static Datum
values_json(StringInfo buf, const SyncqTable *table, Datum *values,
			bool *isnull)
{
	int			i;

	syncq_json_begin(buf);
	appendStringInfoCharMacro(buf, '{');
	for (i = 0; i < table->ncolumns; i++)
	{
		const SyncqColumn *col = &table->columns[i];
		int			off = col->attnum - 1;

		if (i > 0)
			appendStringInfoCharMacro(buf, ',');
		appendBinaryStringInfo(buf, col->key, col->keylen);
		syncq_json_value(buf, col, values[off], isnull[off]);
	}
	appendStringInfoCharMacro(buf, '}');
	return syncq_json_finish(buf);
}

/* Write every shipped column of the tuple in slot as a JSON object. */
Datum
syncq_row_json(StringInfo buf, const SyncqTable *table, TupleTableSlot *slot)
{
	slot_getallattrs(slot);
	return values_json(buf, table, slot->tts_values, slot->tts_isnull);
}

/*
 * Did the update from oldslot to newslot change the primary key?  newkey is
 * the new key's JSON.  The key columns are compared as stored first; only
 * when they differ there (a number written with another scale, a value
 * stored compressed) are the JSON texts compared, into oldkey.
 */
static bool
key_changed(const SyncqTable *table, TupleTableSlot *oldslot,
			TupleTableSlot *newslot, Datum newkey, StringInfo oldkey)
{
	bool		same = true;
	int			i;

	for (i = 0; i < table->nkeys && same; i++)
	{
		const SyncqColumn *col = table->keys[i];
		bool		oldnull,
					newnull;
		Datum		oldval = slot_getattr(oldslot, col->attnum, &oldnull);
		Datum		newval = slot_getattr(newslot, col->attnum, &newnull);

		if (oldnull != newnull)
			same = false;
		else if (!oldnull &&
				 !datumIsEqual(oldval, newval, col->typbyval, col->typlen))
			same = false;
	}
	if (same)
		return false;

	syncq_key_json(oldkey, table, oldslot);
	return VARSIZE(DatumGetPointer(newkey)) != (Size) oldkey->len ||
		memcmp(DatumGetPointer(newkey), oldkey->data, oldkey->len) != 0;
}

/*
 * How deep in triggers the current call is: 1 for a row the statement
 * itself changed, more for a row a trigger or a foreign key action changed.
 */
int
syncq_trigger_depth(void)
{
	LOCAL_FCINFO(depth_fcinfo, 0);

	InitFunctionCallInfoData(*depth_fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetInt32(pg_trigger_depth(depth_fcinfo));
}

/*
 * Read a trigger's arguments: the priority (true for 'immediate') and
 * whether a second one says 'copy'.  The event trigger adds 'copy' on a
 * table created under the name of a tracked table dropped earlier in the
 * same transaction (a rebuild, docs/migrating.md): the rows that
 * transaction inserts into it are the dropped table's, copied.
 */
static bool
trigger_args(Trigger *trigger, bool *copy)
{
	*copy = trigger->tgnargs == 2 && strcmp(trigger->tgargs[1], SYNCQ_CAPTURE_COPY) == 0;
	if (trigger->tgnargs == 1 || *copy)
	{
		if (strcmp(trigger->tgargs[0], SYNCQ_PRIORITY_IMMEDIATE) == 0)
			return true;
		if (strcmp(trigger->tgargs[0], SYNCQ_PRIORITY_BATCHED) == 0)
			return false;
	}
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("function \"%s\" needs one argument, 'immediate' or 'batched'",
					"syncq_capture"),
			 errhint("Install the trigger with sync_track().")));
	return false;				/* keep compiler quiet */
}

/*
 * syncq_capture() — the capture trigger.
 *
 * Queues one row per change: I with the new row, U with the new row, D with
 * the old key; an UPDATE that changes the primary key is queued as D of the
 * old key and then I of the new row.
 */
Datum
syncq_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	bool		immediate;
	bool		copy;
	Oid			nspid;
	Relation	rel;
	SyncqTable *table;
	MemoryContext old = CurrentMemoryContext;
	StringInfoData keybuf,
				rowbuf;
	Datum		key;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						"syncq_capture")));
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired AFTER", "syncq_capture")));
	if (!TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired FOR EACH ROW",
						"syncq_capture")));
	if (!TRIGGER_FIRED_BY_INSERT(event) && !TRIGGER_FIRED_BY_UPDATE(event) &&
		!TRIGGER_FIRED_BY_DELETE(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired for INSERT, UPDATE or DELETE",
						"syncq_capture")));
	immediate = trigger_args(trigdata->tg_trigger, &copy);

	if (!syncq_capture_enabled)
		return PointerGetDatum(NULL);
	/* a rebuild's copy of the dropped table's rows: the same records */
	if (copy && TRIGGER_FIRED_BY_INSERT(event) &&
		trigdata->tg_relation->rd_createSubid != InvalidSubTransactionId)
		return PointerGetDatum(NULL);

	nspid = syncq_schema(fcinfo);
	rel = trigdata->tg_relation;
	table = syncq_table(rel);

	if (capture_depth++ == 0)
	{
		if (row_context == NULL)
			row_context = AllocSetContextCreate(TopMemoryContext,
												"syncq capture row",
												ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(row_context);
		MemoryContextSwitchTo(row_context);
	}
	initStringInfo(&keybuf);
	initStringInfo(&rowbuf);

	if (TRIGGER_FIRED_BY_INSERT(event))
	{
		key = syncq_key_json(&keybuf, table, trigdata->tg_trigslot);
		syncq_capture_change(nspid, rel, table, 'I', key,
							 syncq_row_json(&rowbuf, table, trigdata->tg_trigslot),
							 immediate, NULL);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(event))
	{
		StringInfoData oldkeybuf;
		Datum		row;

		initStringInfo(&oldkeybuf);
		key = syncq_key_json(&keybuf, table, trigdata->tg_newslot);
		row = syncq_row_json(&rowbuf, table, trigdata->tg_newslot);
		if (key_changed(table, trigdata->tg_trigslot, trigdata->tg_newslot,
						key, &oldkeybuf))
		{
			syncq_capture_change(nspid, rel, table, 'D',
								 syncq_json_finish(&oldkeybuf), (Datum) 0,
								 immediate, trigdata->tg_trigtuple);
			syncq_capture_change(nspid, rel, table, 'I', key, row, immediate,
								 trigdata->tg_trigtuple);
		}
		else
			syncq_capture_change(nspid, rel, table, 'U', key, row, immediate,
								 trigdata->tg_trigtuple);
	}
	else
	{
		key = syncq_key_json(&keybuf, table, trigdata->tg_trigslot);
		syncq_capture_change(nspid, rel, table, 'D', key, (Datum) 0, immediate,
							 trigdata->tg_trigtuple);
	}

	MemoryContextSwitchTo(old);
	if (capture_depth > 0)
		capture_depth--;
	return PointerGetDatum(NULL);
}

/*
 * sync_row_json(tbl regclass, r record) returns json
 *
 * Row r of table tbl (a whole-row reference: SELECT sync_row_json('t', t)
 * FROM t) as the capture trigger writes it into row_data.  syncqd reads a
 * first sync with it, so the first sync and the changes after it spell
 * every value alike, and no generated column is shipped.
 */
Datum
sync_row_json(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(1);
	Relation	rel;
	TupleDesc	tupdesc;
	SyncqTable *table;
	HeapTupleData tuple;
	Datum	   *values;
	bool	   *isnull;
	StringInfoData buf;
	Datum		result;

	rel = relation_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		HeapTupleHeaderGetTypeId(rec) != rel->rd_rel->reltype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the row given to %s is not a row of table \"%s\"",
						"sync_row_json", RelationGetRelationName(rel)),
				 errhint("Pass the table and a whole row of it: SELECT sync_row_json('t', t) FROM t.")));
	table = syncq_table(rel);
	tupdesc = RelationGetDescr(rel);

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	values = palloc(sizeof(Datum) * tupdesc->natts);
	isnull = palloc(sizeof(bool) * tupdesc->natts);
	heap_deform_tuple(&tuple, tupdesc, values, isnull);

	initStringInfo(&buf);
	result = values_json(&buf, table, values, isnull);
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(result);
}

/*
 * syncq_truncate() — refuses TRUNCATE of a tracked table.
 *
 * TRUNCATE fires no row triggers, so capture would miss it and the other
 * nodes would keep the rows.  With syncq.capture off (a deliberate bulk
 * change) it is let through.
 */
Datum
syncq_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						"syncq_truncate")));
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_BY_TRUNCATE(event) || !TRIGGER_FIRED_BEFORE(event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE TRUNCATE FOR EACH STATEMENT",
						"syncq_truncate")));

	if (syncq_capture_enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot truncate table \"%s\" because syncq tracks it",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("TRUNCATE is not captured, so the other nodes would keep the rows."),
				 errhint("Use DELETE, which is captured, or stop tracking the table with sync_untrack() first.")));
	return PointerGetDatum(NULL);
}

/* Value of a hex digit, or -1. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower((unsigned char) c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Parse str as uuid_in() does (optional braces, a hyphen allowed after any
 * group of four digits), without raising an error.
 */
static bool
parse_uuid(const char *str, pg_uuid_t *uuid)
{
	const char *p = str;
	bool		braces = (*p == '{');
	int			i;

	if (braces)
		p++;
	for (i = 0; i < UUID_LEN; i++)
	{
		int			hi = hex_value(p[0]);
		int			lo = hi < 0 ? -1 : hex_value(p[1]);

		if (hi < 0 || lo < 0)
			return false;
		uuid->data[i] = (unsigned char) (hi << 4 | lo);
		p += 2;
		if (*p == '-' && i % 2 == 1 && i < UUID_LEN - 1)
			p++;
	}
	if (braces && *p++ != '}')
		return false;
	return *p == '\0';
}

/* GUC check hook of syncq.origin: empty, or a UUID. */
static bool
check_origin(char **newval, void **extra, GucSource source)
{
	pg_uuid_t	uuid;
	pg_uuid_t  *copy;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	if (!parse_uuid(*newval, &uuid))
	{
		GUC_check_errdetail("syncq.origin must be a node id (a UUID), or empty for this node.");
		return false;
	}
	copy = malloc(sizeof(pg_uuid_t));
	if (copy == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		return false;
	}
	*copy = uuid;
	*extra = copy;
	return true;
}

/* GUC assign hook of syncq.origin. */
static void
assign_origin(const char *newval, void *extra)
{
	syncq_origin_setting = (pg_uuid_t *) extra;
}

/* Transaction callback: an error left capture_depth where it was. */
static void
capture_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		capture_depth = 0;
}

/* Subtransaction callback: the same for a rolled-back subtransaction. */
static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		capture_depth = 0;
}

/*
 * Module load: define the settings and register the callbacks.
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("syncq.capture",
							 "Queues every change of a tracked table into sync_queue.",
							 "Off pauses capture, for a bulk load or a migration.",
							 &syncq_capture_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("syncq.origin",
							   "Node id recorded as the origin of the changes made now.",
							   "Empty means this node (sync_node_id()); syncqd sets it while applying another node's changes.",
							   &origin_string,
							   "",
							   PGC_SUSET,
							   0,
							   check_origin, assign_origin, NULL);
	MarkGUCPrefixReserved("syncq");

	CacheRegisterRelcacheCallback(table_cache_invalidate, (Datum) 0);
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
	syncq_queue_init();
	syncq_clock_init();
	syncq_apply_init();
}
