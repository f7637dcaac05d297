/*
 * track.c
 *	  The capture API.
 *
 *	  sync_track(tbl, priority, keys)   capture every change of tbl
 *	      SELECT sync_track('public.audits', 'immediate');
 *	      SELECT sync_track('public.tags', 'batched', 'natural');
 *	  sync_untrack(tbl)            stop capturing; queued rows stay
 *	  sync_enqueue(tbl, op, pk, row, immediate)   queue one change by hand
 *	      SELECT sync_enqueue('audits', 'U', '{"id": 7}', '{"id": 7, "done": true}');
 *	  sync_trigger()               ask for a sync now (NOTIFY sync_queue, 'request')
 *	  sync_node_id()               this database's node id
 *
 * sync_track() and sync_untrack() may be called by the owner of the table;
 * the triggers and the sync_tables row are then made as the owner of the
 * extension, so the table's owner needs no privilege on syncq's own tables
 * or on the trigger functions.  sync_enqueue() asks for the privilege the
 * change itself would need (INSERT, UPDATE or DELETE on the table).
 */
#include "syncq.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(sync_track);
PG_FUNCTION_INFO_V1(sync_untrack);
PG_FUNCTION_INFO_V1(sync_enqueue);
PG_FUNCTION_INFO_V1(sync_trigger);
PG_FUNCTION_INFO_V1(sync_node_id);

/* Raise an error unless argument argno of the call is not NULL. */
static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* Open the relation of a regclass argument, or say that it is gone. */
static Relation
open_table(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = try_relation_open(relid, lockmode);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return rel;
}

/* Raise an error unless the current user owns rel. */
static void
require_owner(Relation rel)
{
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
}

/* The kind of a relation, for messages. */
static const char *
relkind_words(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "a view";
		case RELKIND_MATVIEW:
			return "a materialized view";
		case RELKIND_SEQUENCE:
			return "a sequence";
		case RELKIND_FOREIGN_TABLE:
			return "a foreign table";
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			return "an index";
		case RELKIND_COMPOSITE_TYPE:
			return "a composite type";
		case RELKIND_TOASTVALUE:
			return "a TOAST table";
		default:
			return "not a table";
	}
}

/*
 * Raise an error unless rel is a table syncq can capture: a plain,
 * permanent or unlogged, user table with a primary key.
 */
static void
require_trackable(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	char		relkind = rel->rd_rel->relkind;
	Oid			extoid;

	if (relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned table", name),
				 errdetail("syncq captures the rows of each partition as a table of its own."),
				 errhint("Track each partition with sync_track() instead.")));
	if (relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", name),
				 errdetail("\"%s\" is %s; syncq captures the changes of tables only.",
						   name, relkind_words(relkind))));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" is temporary", name),
				 errdetail("A temporary table lives in one session; no other node could ever see its rows.")));
	if (IsSystemRelation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s\" is a system catalog", name),
				 errdetail("syncq captures the changes of user tables only.")));
	extoid = get_extension_oid("syncq", true);
	if (OidIsValid(extoid) &&
		getExtensionOfObject(RelationRelationId, RelationGetRelid(rel)) == extoid)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table \"%s\" belongs to syncq itself", name),
				 errdetail("Capturing syncq's own tables would feed the queue into itself.")));
}

/* Raise an error unless rel has a primary key. */
static void
require_primary_key(Relation rel)
{
	if (!OidIsValid(RelationGetPrimaryKeyIndex(rel)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key",
						RelationGetRelationName(rel)),
				 errdetail("syncq finds a row on the other nodes by its primary key."),
				 errhint("Add one with ALTER TABLE ... ADD PRIMARY KEY, then call sync_track() again.")));
}

/*
 * Raise an error if a column of rel has a type syncq cannot carry between
 * nodes without changing its value (docs/replication.md, Types): money,
 * whose text is written and read by lc_monetary, so another node (or
 * another session) may read another amount.  Domains and arrays are looked
 * through.  Generated columns are never shipped, so they do not count.
 */
static void
require_syncable_types(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			base;
		Oid			elem;

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		base = getBaseType(att->atttypid);
		elem = get_element_type(base);
		if (OidIsValid(elem))
			base = getBaseType(elem);
		if (base == CASHOID)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of table \"%s\" has type %s, which syncq cannot carry",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_be(att->atttypid)),
					 errdetail("The text of a money value follows lc_monetary, so another node may read it as another amount."),
					 errhint("Store amounts as numeric (ALTER TABLE ... ALTER COLUMN ... TYPE numeric(12,2)), then call sync_track() again.")));
	}
}

/* Parse a priority: true for 'immediate', false for 'batched'. */
static bool
parse_priority(const char *priority)
{
	if (strcmp(priority, SYNCQ_PRIORITY_IMMEDIATE) == 0)
		return true;
	if (strcmp(priority, SYNCQ_PRIORITY_BATCHED) == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid priority \"%s\"", priority),
			 errhint("Use 'immediate' to ship changes at once or 'batched' to ship them with the next periodic sync.")));
	return false;				/* keep compiler quiet */
}

/*
 * Check a key policy (docs/replication.md, Keys the hub assigns): 'auto',
 * 'hub' or 'natural'.
 */
static void
check_keys(const char *keys)
{
	if (strcmp(keys, "auto") == 0 || strcmp(keys, "hub") == 0 || strcmp(keys, "natural") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid keys \"%s\"", keys),
			 errhint("Use 'auto' (the hub gives a client's new row another key when its integer key, one the database assigns, is another record's; the app's keys otherwise), 'hub' (the same, and the key must be such), 'natural' (the app's keys, last writer wins) or NULL (as it was).")));
}

/*
 * Is rel's key one integer column the database assigns: an identity, or a
 * default drawing from a sequence (serial, nextval)? The hub gives keys of
 * such a column (replicator/hub/keys.c); *col gets its name.
 */
static bool
key_assigned(Relation rel, char **col)
{
	Relation	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	int			nkeys = idx->rd_index->indnkeyatts;
	AttrNumber	attnum = idx->rd_index->indkey.values[0];
	Form_pg_attribute att;
	Oid			argtypes[2] = {OIDOID, INT2OID};
	Datum		values[2];
	int			ret;
	bool		found;

	index_close(idx, AccessShareLock);
	*col = NULL;
	if (nkeys != 1)
		return false;
	att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	*col = pstrdup(NameStr(att->attname));
	if (att->atttypid != INT2OID && att->atttypid != INT4OID && att->atttypid != INT8OID)
		return false;
	if (att->attidentity != '\0')
		return true;
	values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[1] = Int16GetDatum(attnum);
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args("SELECT FROM pg_catalog.pg_attrdef ad"
								"  JOIN pg_catalog.pg_depend d"
								"    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
								"   AND d.objid OPERATOR(pg_catalog.=) ad.oid"
								"   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
								"  JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.refobjid"
								"   AND s.relkind OPERATOR(pg_catalog.=) 'S'"
								" WHERE ad.adrelid OPERATOR(pg_catalog.=) $1 AND ad.adnum OPERATOR(pg_catalog.=) $2",
								2, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	found = SPI_processed > 0;
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
	return found;
}

/* Raise an error unless rel's key is one the database assigns ('hub'). */
static void
require_assigned_key(Relation rel)
{
	char	   *col;

	if (!key_assigned(rel, &col))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot track table \"%s\" with keys 'hub': %s",
						RelationGetRelationName(rel),
						col ? psprintf("its key \"%s\" is not an integer column with an identity or a sequence default", col)
						: "its key has more than one column"),
				 errdetail("The hub gives a client's new row another key from the key column's sequence."),
				 errhint("Make the key serial or an identity, or use keys 'natural' or 'auto'.")));
}

/*
 * Run one SQL statement as the extension's owner; check its result code
 * and return the number of rows it processed.
 */
static uint64
run_as_owner(Oid nspid, const char *sql, int nargs, Oid *argtypes,
			 Datum *values, int expected)
{
	Oid			save_userid;
	int			save_sec_context;
	int			ret;
	uint64		processed;

	syncq_become_owner(nspid, &save_userid, &save_sec_context);
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
	if (ret != expected)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	processed = SPI_processed;
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return processed;
}

/* The schema-qualified, quoted name of rel. */
static char *
qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* The schema-qualified, quoted name of one of syncq's own objects. */
static char *
syncq_name(Oid nspid, const char *name)
{
	return quote_qualified_identifier(get_namespace_name(nspid), name);
}

/* Is relid in sync_tables? */
static bool
is_tracked(Oid nspid, Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	return run_as_owner(nspid,
						psprintf("SELECT 1 FROM %s WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
								 syncq_name(nspid, "sync_tables")),
						1, argtypes, values, SPI_OK_SELECT) > 0;
}

/*
 * Raise an error if another tracked table has rel's name, in another schema
 * or spelt in another case: a client finds a table by its name alone, and
 * SQLite's names ignore ASCII case, so it could not tell the two apart.
 */
static void
require_unique_name(Oid nspid, Relation rel)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	Oid			save_userid;
	int			save_sec_context;
	int			ret;
	char	   *other = NULL;

	values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[1] = CStringGetTextDatum(RelationGetRelationName(rel));
	syncq_become_owner(nspid, &save_userid, &save_sec_context);
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(psprintf("SELECT pg_catalog.quote_ident(table_schema) OPERATOR(pg_catalog.||) '.' "
										 "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(table_name) FROM %s "
										 "WHERE relid OPERATOR(pg_catalog.<>) $1::pg_catalog.regclass "
										 "AND pg_catalog.lower(table_name) OPERATOR(pg_catalog.=) pg_catalog.lower($2) "
										 "ORDER BY 1 LIMIT 1",
										 syncq_name(nspid, "sync_tables")),
								2, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed > 0)
		other = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (other != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("cannot track %s: %s is tracked under the same name",
						qualified_name(rel), other),
				 errdetail("A client finds a table by its name alone, ignoring case, so it could not tell the two apart."),
				 errhint("Rename one of the tables, or stop tracking %s with sync_untrack().", other)));
}

/* Raise the error of a table that is not tracked. */
static void
not_tracked(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("table \"%s\" is not tracked", RelationGetRelationName(rel)),
			 errhint("Start capturing its changes with sync_track().")));
}

/*
 * sync_track(tbl regclass, priority text DEFAULT 'immediate',
 *			  keys text DEFAULT NULL) returns text
 *
 * Installs the capture trigger (AFTER ROW, the priority as its argument)
 * and the TRUNCATE guard on tbl, and records it in sync_tables with its
 * key policy (NULL: as it was, 'auto' for a table new to it).  Running it
 * again changes the priority, and the key policy if given.  It also makes
 * the node id if there is none yet.  Returns the priority, as the SQLite
 * sync_track() does.  (Called with two arguments by the 0.1.0 function,
 * before ALTER EXTENSION syncq UPDATE: sync_tables has no keys then.)
 */
Datum
sync_track(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	Oid			relid;
	char	   *priority;
	Relation	rel;
	char	   *table;
	char	   *keys = NULL;
	bool		has_keys = PG_NARGS() > 2;
	Oid			argtypes[5] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			ret;

	require_arg(fcinfo, 0, "table");
	require_arg(fcinfo, 1, "priority");
	relid = PG_GETARG_OID(0);
	priority = text_to_cstring(PG_GETARG_TEXT_PP(1));
	(void) parse_priority(priority);
	if (has_keys && !PG_ARGISNULL(2))
	{
		keys = text_to_cstring(PG_GETARG_TEXT_PP(2));
		check_keys(keys);
	}

	rel = open_table(relid, ShareRowExclusiveLock);
	require_trackable(rel);
	require_owner(rel);
	require_primary_key(rel);
	require_unique_name(nspid, rel);
	require_syncable_types(rel);
	if (keys != NULL && strcmp(keys, "hub") == 0)
		require_assigned_key(rel);
	table = qualified_name(rel);

	/*
	 * Make the node id now, if this is its first use, rather than in the
	 * first transaction that changes the table: two such transactions would
	 * wait for each other on sync_node's single row.
	 */
	(void) syncq_node_id(nspid);

	run_as_owner(nspid,
				 psprintf("CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
						  "FOR EACH ROW EXECUTE FUNCTION %s(%s)",
						  quote_identifier(SYNCQ_CAPTURE_TRIGGER), table,
						  syncq_name(nspid, "syncq_capture"),
						  quote_literal_cstr(priority)),
				 0, NULL, NULL, SPI_OK_UTILITY);
	run_as_owner(nspid,
				 psprintf("CREATE OR REPLACE TRIGGER %s BEFORE TRUNCATE ON %s "
						  "FOR EACH STATEMENT EXECUTE FUNCTION %s()",
						  quote_identifier(SYNCQ_TRUNCATE_TRIGGER), table,
						  syncq_name(nspid, "syncq_truncate")),
				 0, NULL, NULL, SPI_OK_UTILITY);

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(get_namespace_name(RelationGetNamespace(rel)));
	values[2] = CStringGetTextDatum(RelationGetRelationName(rel));
	values[3] = CStringGetTextDatum(priority);
	values[4] = keys ? CStringGetTextDatum(keys) : (Datum) 0;
	nulls[4] = keys ? ' ' : 'n';
	if (!has_keys)
		run_as_owner(nspid,
					 psprintf("INSERT INTO %s (relid, table_schema, table_name, priority) "
							  "VALUES ($1::pg_catalog.regclass, $2, $3, $4) ON CONFLICT (relid) DO UPDATE "
							  "SET table_schema = excluded.table_schema, "
							  "table_name = excluded.table_name, priority = excluded.priority",
							  syncq_name(nspid, "sync_tables")),
					 4, argtypes, values, SPI_OK_INSERT);
	else
	{
		Oid			save_userid;
		int			save_sec_context;

		syncq_become_owner(nspid, &save_userid, &save_sec_context);
		if ((ret = SPI_connect()) != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
		ret = SPI_execute_with_args(psprintf("INSERT INTO %s AS t (relid, table_schema, table_name, priority, keys) "
											 "VALUES ($1::pg_catalog.regclass, $2, $3, $4, COALESCE($5, 'auto')) "
											 "ON CONFLICT (relid) DO UPDATE "
											 "SET table_schema = excluded.table_schema, "
											 "table_name = excluded.table_name, priority = excluded.priority, "
											 "keys = COALESCE($5, t.keys)",
											 syncq_name(nspid, "sync_tables")),
									5, argtypes, values, nulls, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
		if ((ret = SPI_finish()) != SPI_OK_FINISH)
			elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}

	table_close(rel, NoLock);
	PG_RETURN_TEXT_P(cstring_to_text(priority));
}

/*
 * sync_untrack(tbl regclass) returns boolean
 *
 * Removes the triggers sync_track() installed and the sync_tables row;
 * the rows already queued stay.  Returns true, or false with a notice if
 * the table was not tracked (as the SQLite sync_untrack() returns 0).
 */
Datum
sync_untrack(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	Oid			relid;
	Relation	rel;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	const char *triggers[2] = {SYNCQ_CAPTURE_TRIGGER, SYNCQ_TRUNCATE_TRIGGER};
	size_t		i;

	require_arg(fcinfo, 0, "table");
	relid = PG_GETARG_OID(0);
	rel = open_table(relid, ShareRowExclusiveLock);
	require_owner(rel);

	values[0] = ObjectIdGetDatum(relid);
	if (run_as_owner(nspid,
					 psprintf("DELETE FROM %s WHERE relid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							  syncq_name(nspid, "sync_tables")),
					 1, argtypes, values, SPI_OK_DELETE) == 0)
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is not tracked, skipping",
						RelationGetRelationName(rel))));
		table_close(rel, NoLock);
		PG_RETURN_BOOL(false);
	}

	for (i = 0; i < lengthof(triggers); i++)
		if (OidIsValid(get_trigger_oid(relid, triggers[i], true)))
			run_as_owner(nspid,
						 psprintf("DROP TRIGGER %s ON %s",
								  quote_identifier(triggers[i]), qualified_name(rel)),
						 0, NULL, NULL, SPI_OK_UTILITY);

	table_close(rel, NoLock);
	PG_RETURN_BOOL(true);
}

/* Append one jsonb value as JSON text. */
static void
append_jsonb_value(StringInfo buf, JsonbValue *v)
{
	if (v->type == jbvBinary)
		JsonbToCString(buf, v->val.binary.data, v->val.binary.len);
	else
	{
		Jsonb	   *jb = JsonbValueToJsonb(v);

		JsonbToCString(buf, &jb->root, VARSIZE(jb));
	}
}

/* Look up key name in a jsonb object. */
static JsonbValue *
jsonb_field(Jsonb *jb, const char *name)
{
	return getKeyJsonValueFromContainer(&jb->root, name, strlen(name), NULL);
}

/* The key columns of table, as "a, b", for messages. */
static char *
key_column_list(const SyncqTable *table)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < table->nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(table->keys[i]->name));
	return buf.data;
}

/* Is name one of the primary key columns of table? */
static bool
is_key_column(const SyncqTable *table, const char *name)
{
	int			i;

	for (i = 0; i < table->nkeys; i++)
		if (strcmp(table->keys[i]->name, name) == 0)
			return true;
	return false;
}

/* Is name a column of table? */
static bool
is_column(const SyncqTable *table, const char *name)
{
	int			i;

	for (i = 0; i < table->ncolumns; i++)
		if (strcmp(table->columns[i].name, name) == 0)
			return true;
	return false;
}

/*
 * The pk argument of sync_enqueue() as the queue's JSON: an object with
 * exactly the primary key columns, none of them null, written in key order.
 */
static Datum
enqueue_key(const SyncqTable *table, const char *relname, Jsonb *pk)
{
	StringInfoData buf;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i;

	if (!JB_ROOT_IS_OBJECT(pk))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pk must be a JSON object"),
				 errdetail("Table \"%s\" has the primary key (%s).",
						   relname, key_column_list(table))));

	it = JsonbIteratorInit(&pk->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		if (!is_key_column(table, name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pk names \"%s\", which is not a primary key column of table \"%s\"",
							name, relname),
					 errdetail("Table \"%s\" has the primary key (%s).",
							   relname, key_column_list(table))));
	}

	initStringInfo(&buf);
	syncq_json_begin(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < table->nkeys; i++)
	{
		const SyncqColumn *col = table->keys[i];
		JsonbValue *field = jsonb_field(pk, col->name);

		if (field == NULL || field->type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pk has no value for primary key column \"%s\" of table \"%s\"",
							col->name, relname),
					 errdetail("Table \"%s\" has the primary key (%s).",
							   relname, key_column_list(table))));
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendBinaryStringInfo(&buf, col->key, col->keylen);
		append_jsonb_value(&buf, field);
	}
	appendStringInfoChar(&buf, '}');
	return syncq_json_finish(&buf);
}

/*
 * The row argument of sync_enqueue() as the queue's JSON: an object whose
 * keys are columns of the table, written in column order.
 */
static Datum
enqueue_row(const SyncqTable *table, const char *relname, Jsonb *row)
{
	StringInfoData buf;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i;
	bool		first = true;

	if (!JB_ROOT_IS_OBJECT(row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row must be a JSON object")));

	it = JsonbIteratorInit(&row->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		if (!is_column(table, name))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("row names \"%s\", which is not a column of table \"%s\"",
							name, relname)));
	}

	initStringInfo(&buf);
	syncq_json_begin(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < table->ncolumns; i++)
	{
		const SyncqColumn *col = &table->columns[i];
		JsonbValue *field = jsonb_field(row, col->name);

		if (field == NULL)
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendBinaryStringInfo(&buf, col->key, col->keylen);
		append_jsonb_value(&buf, field);
	}
	appendStringInfoChar(&buf, '}');
	return syncq_json_finish(&buf);
}

/*
 * sync_enqueue(tbl regclass, op text, pk jsonb, row jsonb,
 *              immediate boolean DEFAULT true) returns bigint
 *
 * Queues one change of a tracked table by hand and returns its seq.  op is
 * 'I', 'U' or 'D'; pk names exactly the primary key columns; row is an
 * object of columns for 'I' and 'U' and NULL for 'D'.  The caller needs the
 * privilege the change itself would need.
 */
Datum
sync_enqueue(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	Oid			relid;
	char	   *op;
	Relation	rel;
	const char *relname;
	AclMode		mode;
	AclResult	aclresult;
	SyncqTable *table;
	Datum		key;
	Datum		row = (Datum) 0;
	SyncqChangeMeta meta;
	int64		seq;

	require_arg(fcinfo, 0, "table");
	require_arg(fcinfo, 1, "op");
	require_arg(fcinfo, 2, "pk");
	require_arg(fcinfo, 4, "immediate");
	relid = PG_GETARG_OID(0);
	op = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (strcmp(op, "I") == 0)
		mode = ACL_INSERT;
	else if (strcmp(op, "U") == 0)
		mode = ACL_UPDATE;
	else if (strcmp(op, "D") == 0)
		mode = ACL_DELETE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid op \"%s\"", op),
				 errhint("Use 'I' for an insert, 'U' for an update or 'D' for a delete.")));

	rel = open_table(relid, RowExclusiveLock);
	relname = RelationGetRelationName(rel);
	aclresult = pg_class_aclcheck(relid, GetUserId(), mode);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   relname);
	if (!is_tracked(nspid, relid))
		not_tracked(rel);
	table = syncq_table(rel);

	key = enqueue_key(table, relname, PG_GETARG_JSONB_P(2));
	if (op[0] == 'D')
	{
		if (!PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row must be null for a delete"),
					 errdetail("A delete is queued with its key only.")));
	}
	else
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("row must not be null for op \"%s\"", op),
					 errhint("Pass the new row as a JSON object of its columns.")));
		row = enqueue_row(table, relname, PG_GETARG_JSONB_P(3));
	}

	memset(&meta, 0, sizeof(meta));
	meta.version = syncq_clock_stamp(nspid, NULL);
	meta.notify = true;
	seq = syncq_queue_change(nspid, table, op[0], key, row,
							 PG_GETARG_BOOL(4), &meta);
	table_close(rel, NoLock);
	PG_RETURN_INT64(seq);
}

/*
 * sync_trigger() returns boolean
 *
 * Asks syncqd for a sync now: NOTIFY sync_queue with the payload 'request',
 * delivered when the transaction commits.  Returns true (the SQLite
 * sync_trigger() returns 0 only for a database with no file to signal).
 */
Datum
sync_trigger(PG_FUNCTION_ARGS)
{
	Async_Notify(SYNCQ_CHANNEL, SYNCQ_PAYLOAD_REQUEST);
	PG_RETURN_BOOL(true);
}

/*
 * sync_node_id() returns uuid
 *
 * This database's node id, made on first use and kept in sync_node (which
 * pg_dump saves, so a restored database keeps it).
 */
Datum
sync_node_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));

	*result = *syncq_node_id(syncq_schema(fcinfo));
	PG_RETURN_UUID_P(result);
}
