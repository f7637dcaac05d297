/*
 * queue.c
 *	  Writing one row of sync_queue; NOTIFY once per transaction; the node id.
 *
 * A queue row is written the way the executor writes one, without the
 * executor: the values go into a slot, heap_insert() adds the heap tuple
 * and index_insert() every index entry of sync_queue (writer_insert).  The
 * relation, its indexes, the slot and a minimal EState are opened on the
 * first change of a statement and kept for its other rows (the "writer"):
 * they are owned by the top-level transaction's resource owner, so
 * savepoints and PL/pgSQL exception blocks may come and go around them, and
 * closed when the statement ends (ExecutorEnd and ProcessUtility hooks), so
 * that a later TRUNCATE or ALTER of sync_queue in the same transaction does
 * not find it still open.  The tuple itself belongs to the (sub)transaction
 * that made the change, so a rollback takes the queue row with it.
 *
 * Writing directly also means the app's role needs no privilege on
 * sync_queue or its sequence, and that triggers, rules and constraints of
 * sync_queue do not run: the values written here satisfy them by
 * construction.
 */
#include "syncq.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/hio.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

/* The columns of sync_queue, found by name when the writer opens it. */
typedef enum QueueColumn
{
	QC_SEQ,
	QC_TXID,
	QC_SCHEMA,
	QC_NAME,
	QC_OP,
	QC_PK,
	QC_ROW,
	QC_CHANGED_AT,
	QC_ORIGIN,
	QC_PRIORITY,
	QC_FOR_NODE,
	QC_FOR_SEQ,
	QC_REPLACES,
	QC_COUNT
} QueueColumn;

static const char *const queue_columns[QC_COUNT] = {
	"seq", "txid", "table_schema", "table_name", "op", "pk", "row_data",
	"changed_at", "origin", "priority", "for_node", "for_seq", "replaces"
};

/* sync_queue, open for writing for the rest of the transaction. */
typedef struct QueueWriter
{
	MemoryContext mcxt;			/* child of TopTransactionContext */
	Oid			nspid;
	Oid			relid;
	Relation	rel;
	ResultRelInfo *rri;			/* the indexes, opened */
	EState	   *estate;			/* for index expressions and predicates */
	TupleTableSlot *slot;		/* virtual: the values of the row */
	BulkInsertState bistate;	/* keeps the current heap page pinned */
	bool		any_index_check;	/* an exclusion or deferred unique index */
	ExprState **predicates;		/* of partial indexes, prepared on first use */
	Oid			seqid;			/* the identity sequence of seq */
	int			off[QC_COUNT];	/* index into tts_values of each column */
	bool		stale;			/* sync_queue changed: reopen */
} QueueWriter;

static QueueWriter *writer = NULL;
static bool writer_busy = false;	/* a row is being written right now */

static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* sync_queue's OID in the schema of cached_nspid. */
static Oid	cached_nspid = InvalidOid;
static Oid	cached_queue_relid = InvalidOid;

/* Text values written again and again. */
static Datum op_text[3];		/* I, U, D */
static Datum priority_text[2];	/* batched, immediate */

/* The top-level transaction (and subtransaction) that already notified. */
static LocalTransactionId notified_lxid = InvalidLocalTransactionId;
static SubTransactionId notified_subid = InvalidSubTransactionId;

/*
 * This node's id, once read.  When this transaction made it, it is
 * tentative until commit: a rollback takes the row away again.
 */
static pg_uuid_t node_id;
static bool node_id_known = false;
static bool node_id_tentative = false;
static SubTransactionId node_id_subid = InvalidSubTransactionId;

/*
 * The schema of the extension: the one the called SQL function lives in.
 */
Oid
syncq_schema(FunctionCallInfo fcinfo)
{
	static Oid	fn_oid = InvalidOid;
	static Oid	fn_nspid = InvalidOid;

	if (fcinfo->flinfo->fn_oid != fn_oid)
	{
		fn_nspid = get_func_namespace(fcinfo->flinfo->fn_oid);
		fn_oid = fcinfo->flinfo->fn_oid;
	}
	return fn_nspid;
}

/* sync_queue's OID, looked up once and then kept until invalidated. */
Oid
syncq_queue_relid(Oid nspid)
{
	if (nspid != cached_nspid || !OidIsValid(cached_queue_relid))
	{
		Oid			relid = get_relname_relid(SYNCQ_QUEUE_TABLE, nspid);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"%s.sync_queue\" does not exist",
							get_namespace_name(nspid)),
					 errhint("Reinstall the extension with DROP EXTENSION syncq and CREATE EXTENSION syncq.")));
		cached_nspid = nspid;
		cached_queue_relid = relid;
	}
	return cached_queue_relid;
}

/* The role that owns the extension's tables (the owner of sync_queue). */
Oid
syncq_owner(Oid nspid)
{
	Oid			relid = syncq_queue_relid(nspid);
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Act as the owner of the extension's tables, as RI triggers act as a
 * table's owner.  Restore with SetUserIdAndSecContext(save_userid,
 * save_sec_context); an error restores it by itself.
 */
void
syncq_become_owner(Oid nspid, Oid *save_userid, int *save_sec_context)
{
	Oid			owner = syncq_owner(nspid);

	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(owner,
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/* Close the writer: at the end of a statement, at pre-commit, or to reopen
 * a changed sync_queue. */
static void
writer_close(void)
{
	QueueWriter *w = writer;
	ResourceOwner save = CurrentResourceOwner;

	writer = NULL;
	CurrentResourceOwner = TopTransactionResourceOwner;
	if (w->bistate != NULL && BufferIsValid(w->bistate->current_buf))
		ReleaseBuffer(w->bistate->current_buf);
	if (w->slot != NULL)
		ExecDropSingleTupleTableSlot(w->slot);
	if (w->rri != NULL)
		ExecCloseIndices(w->rri);
	if (w->estate != NULL)
		FreeExecutorState(w->estate);
	if (w->rel != NULL)
		table_close(w->rel, NoLock);
	CurrentResourceOwner = save;
	MemoryContextDelete(w->mcxt);
}

/*
 * Open sync_queue for writing, for the rest of the statement.
 *
 * Everything is registered with the top-level transaction's resource owner
 * and allocated under TopTransactionContext; writer points at the struct
 * before anything is opened, so that whatever an error leaves half-open is
 * still closed by writer_close() or released by the abort.
 */
static QueueWriter *
writer_open(Oid nspid)
{
	Oid			relid;
	ResourceOwner save = CurrentResourceOwner;
	MemoryContext mcxt;
	QueueWriter *w;

	if (writer != NULL && !writer->stale && writer->nspid == nspid)
		return writer;
	if (writer != NULL)
		writer_close();

	relid = syncq_queue_relid(nspid);
	mcxt = AllocSetContextCreate(TopTransactionContext, "syncq queue writer",
								 ALLOCSET_DEFAULT_SIZES);
	w = MemoryContextAllocZero(mcxt, sizeof(QueueWriter));
	w->mcxt = mcxt;
	w->nspid = nspid;
	w->relid = relid;
	writer = w;

	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(mcxt);
		TupleDesc	tupdesc;
		int			i,
					c;

		w->rel = table_open(relid, RowExclusiveLock);
		if (w->rel->rd_rel->relam != HEAP_TABLE_AM_OID)
			elog(ERROR, "sync_queue must be a heap table");
		w->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
		ExecOpenIndices(w->rri, false);
		w->estate = CreateExecutorState();
		tupdesc = RelationGetDescr(w->rel);
		w->slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsVirtual);
		w->bistate = palloc0(sizeof(BulkInsertStateData));
		w->bistate->strategy = NULL;	/* shared buffers, not a ring */
		w->bistate->current_buf = InvalidBuffer;
		w->predicates = palloc0(sizeof(ExprState *) * Max(w->rri->ri_NumIndices, 1));
		for (i = 0; i < w->rri->ri_NumIndices; i++)
		{
			IndexInfo  *ii = w->rri->ri_IndexRelationInfo[i];
			Relation	index = w->rri->ri_IndexRelationDescs[i];

			if (ii->ii_ExclusionOps != NULL ||
				(index->rd_index->indisunique && !index->rd_index->indimmediate))
				w->any_index_check = true;
		}

		for (c = 0; c < QC_COUNT; c++)
		{
			w->off[c] = -1;
			for (i = 0; i < tupdesc->natts; i++)
			{
				Form_pg_attribute att = TupleDescAttr(tupdesc, i);

				if (!att->attisdropped &&
					strcmp(NameStr(att->attname), queue_columns[c]) == 0)
					w->off[c] = i;
			}
			/*
			 * 0.1.0's sync_queue has no for_node, for_seq, replaces: this
			 * library before ALTER EXTENSION syncq UPDATE still captures
			 * the apps' changes there (README "Upgrade").
			 */
			if (w->off[c] < 0 && c < QC_FOR_NODE)
				elog(ERROR, "column \"%s\" of sync_queue is missing",
					 queue_columns[c]);
		}
		w->seqid = getIdentitySequence(relid, w->off[QC_SEQ] + 1, false);
		MemoryContextSwitchTo(old);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save;
	}
	PG_END_TRY();
	return w;
}

/*
 * Insert the row in the writer's slot: the heap tuple, then its index
 * entries.
 *
 * The heap page stays pinned from one row to the next (a BulkInsertState
 * without a ring buffer), so the pin belongs to the top-level transaction's
 * resource owner, like everything else of the writer.  Index entries of
 * plain column indexes are made straight from the slot's values; an
 * expression or partial index goes through FormIndexDatum() as in the
 * executor; and a sync_queue with an exclusion constraint or a deferred
 * unique index takes the executor's own ExecInsertIndexTuples().
 */
static void
writer_insert(QueueWriter *w)
{
	TupleTableSlot *slot = w->slot;
	ResultRelInfo *rri = w->rri;
	ExprContext *econtext = GetPerTupleExprContext(w->estate);
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	ResourceOwner save = CurrentResourceOwner;
	HeapTuple	tuple;
	int			i;

	tuple = heap_form_tuple(slot->tts_tupleDescriptor, slot->tts_values,
							slot->tts_isnull);
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		heap_insert(w->rel, tuple, GetCurrentCommandId(true), 0, w->bistate);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save;
	}
	PG_END_TRY();
	slot->tts_tid = tuple->t_self;
	slot->tts_tableOid = w->relid;

	if (w->any_index_check)
		ExecInsertIndexTuples(rri, slot, w->estate, false, false, NULL, NIL);
	else
	{
		econtext->ecxt_scantuple = slot;
		for (i = 0; i < rri->ri_NumIndices; i++)
		{
			Relation	index = rri->ri_IndexRelationDescs[i];
			IndexInfo  *ii = rri->ri_IndexRelationInfo[i];
			Datum		ivalues[INDEX_MAX_KEYS];
			bool		inulls[INDEX_MAX_KEYS];

			if (!ii->ii_ReadyForInserts)
				continue;
			if (ii->ii_Predicate != NIL)
			{
				if (w->predicates[i] == NULL)
				{
					MemoryContext q = MemoryContextSwitchTo(w->mcxt);

					w->predicates[i] = ExecPrepareQual(ii->ii_Predicate, w->estate);
					MemoryContextSwitchTo(q);
				}
				if (!ExecQual(w->predicates[i], econtext))
					continue;
			}
			if (ii->ii_Expressions != NIL)
				FormIndexDatum(ii, slot, w->estate, ivalues, inulls);
			else
			{
				int			k;

				for (k = 0; k < ii->ii_NumIndexAttrs; k++)
				{
					int			off = ii->ii_IndexAttrNumbers[k] - 1;

					ivalues[k] = slot->tts_values[off];
					inulls[k] = slot->tts_isnull[off];
				}
			}
			index_insert(index, ivalues, inulls, &slot->tts_tid, w->rel,
						 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, ii);
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Add one change to sync_queue and return its seq.
 *
 * pk and row_data are json Datums (row_data (Datum) 0 for a delete); the
 * table's schema and name come from table; the version, the origin and
 * whether it is a correction for one client from meta.  An immediate change
 * also NOTIFYs sync_queue, once per transaction, unless meta says not to.
 */
int64
syncq_queue_change(Oid nspid, const SyncqTable *table, char op, Datum pk,
				   Datum row_data, bool immediate, const SyncqChangeMeta *meta)
{
	const pg_uuid_t *origin;
	QueueWriter *w;
	TupleTableSlot *slot;
	Datum	   *values;
	bool	   *nulls;
	int64		seq;

	/* First, as it may run SQL: the origin of the change. */
	origin = meta->origin ? meta->origin :
		syncq_origin_setting ? syncq_origin_setting : syncq_node_id(nspid);
	w = writer_open(nspid);
	slot = w->slot;

	ExecClearTuple(slot);
	ResetPerTupleExprContext(w->estate);
	values = slot->tts_values;
	nulls = slot->tts_isnull;
	memset(nulls, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
#define SET(col, datum) (values[w->off[col]] = (datum), nulls[w->off[col]] = false)
	seq = nextval_internal(w->seqid, false);
	SET(QC_SEQ, Int64GetDatum(seq));
	SET(QC_TXID, FullTransactionIdGetDatum(GetTopFullTransactionId()));
	SET(QC_SCHEMA, table->table_schema);
	SET(QC_NAME, table->table_name);
	SET(QC_OP, op_text[op == 'I' ? 0 : op == 'U' ? 1 : 2]);
	SET(QC_PK, pk);
	if (op != 'D')
		SET(QC_ROW, row_data);
	SET(QC_CHANGED_AT, TimestampTzGetDatum(meta->version));
	SET(QC_ORIGIN, UUIDPGetDatum(origin));
	SET(QC_PRIORITY, priority_text[immediate ? 1 : 0]);
	if (meta->for_node != NULL)
	{
		if (w->off[QC_FOR_NODE] < 0 || w->off[QC_FOR_SEQ] < 0 || w->off[QC_REPLACES] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("sync_queue has no column for_node: the syncq extension is older than its library"),
					 errhint("Run ALTER EXTENSION syncq UPDATE.")));
		SET(QC_FOR_NODE, UUIDPGetDatum(meta->for_node));
		SET(QC_FOR_SEQ, Int64GetDatum(meta->for_seq));
		if (meta->has_replaces)
			SET(QC_REPLACES, TimestampTzGetDatum(meta->replaces));
	}
#undef SET
	ExecStoreVirtualTuple(slot);

	writer_busy = true;
	writer_insert(w);
	writer_busy = false;
	ExecClearTuple(slot);
	ResetPerTupleExprContext(w->estate);

	if (immediate && meta->notify)
		syncq_notify_once();
	return seq;
}

/*
 * NOTIFY sync_queue, once per top-level transaction.  Async_Notify() would
 * merge the duplicates itself, but not for free; a rolled-back
 * subtransaction takes its notification with it (see the callback).
 */
void
syncq_notify_once(void)
{
	if (notified_lxid == MyProc->lxid)
		return;
	Async_Notify(SYNCQ_CHANNEL, SYNCQ_PAYLOAD_CHANGE);
	notified_lxid = MyProc->lxid;
	notified_subid = GetCurrentSubTransactionId();
}

/*
 * Read this node's id from sync_node, making it on first use.
 *
 * Runs as the extension's owner: the app's role may capture changes without
 * any privilege on sync_node.  Two sessions making it at once agree through
 * the table's single-row index (ON CONFLICT DO NOTHING, then read again).
 */
pg_uuid_t *
syncq_node_id(Oid nspid)
{
	Oid			save_userid;
	int			save_sec_context;
	char	   *table;
	int			ret;
	bool		made = false;

	if (node_id_known)
		return &node_id;

	table = quote_qualified_identifier(get_namespace_name(nspid), "sync_node");
	syncq_become_owner(nspid, &save_userid, &save_sec_context);
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));

	ret = SPI_execute(psprintf("SELECT node_id FROM %s", table), false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		ret = SPI_execute(psprintf("INSERT INTO %s (node_id) VALUES (pg_catalog.gen_random_uuid()) "
								   "ON CONFLICT DO NOTHING RETURNING node_id", table),
						  false, 0);
		if (ret != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		made = (SPI_processed == 1);
		if (!made)
		{
			ret = SPI_execute(psprintf("SELECT node_id FROM %s", table), false, 1);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
		}
	}
	if (SPI_processed != 1)
		elog(ERROR, "could not read the node id from %s", table);
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			elog(ERROR, "the node id in %s is null", table);
		memcpy(&node_id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	}
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
	SetUserIdAndSecContext(save_userid, save_sec_context);

	node_id_known = true;
	node_id_tentative = made;
	node_id_subid = GetCurrentSubTransactionId();
	return &node_id;
}

/*
 * Close the writer at the end of a statement, unless a row is being written
 * (an index expression may run a query of its own) or the transaction is
 * being aborted (the resource owner releases everything then).
 */
static void
writer_statement_end(void)
{
	if (writer != NULL && !writer_busy && IsTransactionState())
		writer_close();
}

/* ExecutorEnd hook: the statement's AFTER triggers have all fired. */
static void
syncq_ExecutorEnd(QueryDesc *queryDesc)
{
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	writer_statement_end();
}

/* ProcessUtility hook: COPY FROM fires row triggers without the executor. */
static void
syncq_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
	writer_statement_end();
}

/*
 * Relcache callback: sync_queue changed (or everything did).  The writer
 * reopens it before the next row; the OID is looked up again.
 */
static void
queue_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cached_queue_relid)
		cached_queue_relid = InvalidOid;
	if (writer != NULL && (!OidIsValid(relid) || relid == writer->relid))
		writer->stale = true;
}

/*
 * Transaction callback: close the writer before commit (it holds relcache
 * references, which must not outlive the transaction), forget it on abort
 * (the resource owner releases everything), and settle the node id.
 */
static void
queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (writer != NULL)
				writer_close();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			node_id_tentative = false;
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			writer = NULL;
			writer_busy = false;
			if (node_id_tentative)
				node_id_known = node_id_tentative = false;
			break;
	}
}

/*
 * Subtransaction callback: a rolled-back subtransaction (or one of its
 * children) that notified, or made the node id, took that with it.
 */
static void
queue_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	writer_busy = false;
	if (notified_subid >= mySubid)
		notified_lxid = InvalidLocalTransactionId;
	if (node_id_tentative && node_id_subid >= mySubid)
		node_id_known = node_id_tentative = false;
}

/* Called from _PG_init(): constants, callbacks and hooks. */
void
syncq_queue_init(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	op_text[0] = CStringGetTextDatum("I");
	op_text[1] = CStringGetTextDatum("U");
	op_text[2] = CStringGetTextDatum("D");
	priority_text[0] = CStringGetTextDatum(SYNCQ_PRIORITY_BATCHED);
	priority_text[1] = CStringGetTextDatum(SYNCQ_PRIORITY_IMMEDIATE);
	MemoryContextSwitchTo(old);

	CacheRegisterRelcacheCallback(queue_invalidate, (Datum) 0);
	RegisterXactCallback(queue_xact_callback, NULL);
	RegisterSubXactCallback(queue_subxact_callback, NULL);

	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = syncq_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = syncq_ProcessUtility;
}
