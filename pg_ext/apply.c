/*
 * apply.c
 *	  The version and origin of every captured change, and the capture's
 *	  side of syncqd applying another node's changes on the hub
 *	  (docs/replication.md).
 *
 *	  sync_normalize_keys(keys jsonb)   keys as the hub stores them
 *	      SELECT * FROM sync_normalize_keys('[{"i":0,"t":"item","p":{"id":"7"}}]');
 *	  sync_apply_expect(changes jsonb)  what the statement it runs in applies
 *	  sync_apply_report()               what the capture did with it
 *	  sync_queue_row(tbl, pk, ver, origin, for_node, for_seq, replaces)
 *	                                    queue a row as the hub holds it now
 *
 * syncqd applies a client's changes with capture on, so that the queue
 * holds each row as PostgreSQL stored it (a BEFORE trigger's write, a
 * column type's rounding) and every row a foreign key action or a trigger
 * changed as a consequence.  Each statement that applies a run of changes
 * first says what it applies (sync_apply_expect, in an InitPlan): each
 * change's table and key as the hub stores it (sync_normalize_keys), the
 * version and origin it keeps, and a hash of its row as the client sent it.
 * Then, per captured row:
 *
 *	  - a row the statement itself changed (trigger depth 1) whose key is
 *		expected is queued with that version and origin, and no NOTIFY
 *		(syncqd sends its own, so that the uploader is not woken by it);
 *	  - any other row is a change of the hub's own: a fresh version
 *		(clock.c), greater than every version applied so far;
 *	  - an expected row that this transaction already changed with a greater
 *		version (a cascade reached it first) is stamped afresh too: the
 *		order of the versions of a row must be the order of its writes.
 *
 * sync_apply_report() then names what syncqd must act on: expected rows
 * stored otherwise than sent (with the row as stored), expected rows
 * stamped afresh, the consequences, and expected changes nothing captured
 * (a delete that found no row).  Everything is kept in memory of the
 * transaction; a rolled-back subtransaction takes its part with it.
 */
#include "syncq.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(sync_normalize_keys);
PG_FUNCTION_INFO_V1(sync_apply_expect);
PG_FUNCTION_INFO_V1(sync_apply_report);
PG_FUNCTION_INFO_V1(sync_queue_row);

/* A row of a table, by its key as the capture writes it. */
typedef struct RowKey
{
	Oid			relid;
	uint64		hash;			/* syncq_text_hash() of the key text */
} RowKey;

/* One change syncqd said the current statement applies. */
typedef struct Expected
{
	int			n;				/* syncqd's number for it */
	char	   *key;			/* key text */
	Size		keylen;
	TimestampTz version;
	pg_uuid_t	origin;
	bool		has_hash;
	uint64		row_hash;		/* of the row as sent */
	bool		captured;
	struct Expected *next;		/* another key of the same hash */
} Expected;

/* A row this transaction stamped afresh while applying. */
typedef struct Stamped
{
	char	   *key;
	Size		keylen;
	TimestampTz version;
	SubTransactionId subid;
	struct Stamped *next;
} Stamped;

typedef struct KeyEntry
{
	RowKey		key;			/* hash key */
	void	   *list;			/* Expected or Stamped */
} KeyEntry;

/* One line of sync_apply_report(). */
typedef struct Report
{
	int			n;				/* the expected change, or -1 */
	int64		seq;			/* the queue row, 0: none */
	char	   *table;
	char		op;
	char	   *pk;
	char	   *row;			/* as stored, when it matters */
	TimestampTz version;
	pg_uuid_t	origin;
	const char *what;
	SubTransactionId subid;
} Report;

/* Everything lives in apply_cxt, a child of TopTransactionContext. */
static MemoryContext apply_cxt = NULL;
static HTAB *expected = NULL;	/* of the current statement */
static SubTransactionId expected_subid = InvalidSubTransactionId;
static HTAB *stamped = NULL;
static List *reports = NIL;

/*
 * FNV-1a, 64 bits, and a closing 0xff: syncqd's digest_step() from the
 * same offset basis, so that both sides hash a text alike.
 */
uint64
syncq_text_hash(const char *s, Size len)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);
	Size		i;

	for (i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64CONST(0x100000001b3);
	}
	h ^= 0xff;
	h *= UINT64CONST(0x100000001b3);
	return h;
}

/* A hash table of KeyEntry in apply_cxt. */
static HTAB *
key_table(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(RowKey);
	ctl.entrysize = sizeof(KeyEntry);
	ctl.hcxt = apply_cxt;
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Start apply mode for this transaction, if it is not on yet. */
static void
apply_begin(void)
{
	if (apply_cxt != NULL)
		return;
	apply_cxt = AllocSetContextCreate(TopTransactionContext, "syncq apply",
									  ALLOCSET_DEFAULT_SIZES);
	stamped = key_table("syncq stamped rows");
	reports = NIL;
}

/* The text inside a json Datum. */
static void
json_text(Datum d, const char **p, Size *len)
{
	text	   *t = (text *) DatumGetPointer(d);

	*p = VARDATA_ANY(t);
	*len = VARSIZE_ANY_EXHDR(t);
}

/*
 * Note a line of the report, in apply_cxt, as part of subtransaction subid
 * (its rollback drops the line).
 */
static void
report_add(int n, int64 seq, const char *table, char op, const char *pk,
		   Size pklen, const char *row, Size rowlen, TimestampTz version,
		   const pg_uuid_t *origin, const char *what, SubTransactionId subid)
{
	MemoryContext old = MemoryContextSwitchTo(apply_cxt);
	Report	   *r = palloc0(sizeof(Report));

	r->n = n;
	r->seq = seq;
	r->table = pstrdup(table);
	r->op = op;
	r->pk = pnstrdup(pk, pklen);
	r->row = row ? pnstrdup(row, rowlen) : NULL;
	r->version = version;
	r->origin = *origin;
	r->what = what;
	r->subid = subid;
	reports = lappend(reports, r);
	MemoryContextSwitchTo(old);
}

/* The entry of key k in htab, made if make. */
static KeyEntry *
key_entry(HTAB *htab, Oid relid, const char *key, Size keylen, bool make)
{
	RowKey		k;
	bool		found;
	KeyEntry   *e;

	memset(&k, 0, sizeof(k));
	k.relid = relid;
	k.hash = syncq_text_hash(key, keylen);
	e = hash_search(htab, &k, make ? HASH_ENTER : HASH_FIND, &found);
	if (e != NULL && !found)
		e->list = NULL;
	return e;
}

/* The expected change of this key not yet captured, or NULL. */
static Expected *
find_expected(Oid relid, const char *key, Size keylen)
{
	KeyEntry   *e;
	Expected   *x;

	if (expected == NULL)
		return NULL;
	e = key_entry(expected, relid, key, keylen, false);
	for (x = e ? e->list : NULL; x != NULL; x = x->next)
		if (!x->captured && x->keylen == keylen && memcmp(x->key, key, keylen) == 0)
			return x;
	return NULL;
}

/* The greatest fresh version this transaction gave the row, or 0. */
static TimestampTz
stamped_version(Oid relid, const char *key, Size keylen)
{
	KeyEntry   *e = key_entry(stamped, relid, key, keylen, false);
	Stamped    *s;
	TimestampTz v = 0;

	for (s = e ? e->list : NULL; s != NULL; s = s->next)
		if (s->keylen == keylen && memcmp(s->key, key, keylen) == 0 && s->version > v)
			v = s->version;
	return v;
}

/* Remember that this transaction stamped the row afresh. */
static void
note_stamped(Oid relid, const char *key, Size keylen, TimestampTz version)
{
	KeyEntry   *e = key_entry(stamped, relid, key, keylen, true);
	Stamped    *s = MemoryContextAlloc(apply_cxt, sizeof(Stamped));

	s->key = MemoryContextAlloc(apply_cxt, keylen);
	memcpy(s->key, key, keylen);
	s->keylen = keylen;
	s->version = version;
	s->subid = GetCurrentSubTransactionId();
	s->next = e->list;
	e->list = s;
}

/*
 * The expected changes of the statement that ran last that nothing
 * captured go to the report, as part of the subtransaction that statement
 * ran in (not the one current now: the next run's, which may roll back
 * alone); the statement's expectations are forgotten.
 */
static void
close_expected(void)
{
	HASH_SEQ_STATUS status;
	KeyEntry   *e;

	if (expected == NULL)
		return;
	hash_seq_init(&status, expected);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		Expected   *x;

		for (x = e->list; x != NULL; x = x->next)
			if (!x->captured)
				report_add(x->n, 0, "", '-', x->key, x->keylen, NULL, 0,
						   x->version, &x->origin, "missing", expected_subid);
	}
	hash_destroy(expected);
	expected = NULL;
}

/*
 * Queue one captured change (capture.c) with its version and origin: as
 * syncqd said, for a row its statement applies; afresh otherwise.  oldtuple
 * is the row version an UPDATE or DELETE replaced.  Returns its seq.
 */
int64
syncq_capture_change(Oid nspid, Relation rel, const SyncqTable *table,
					 char op, Datum pk, Datum row_data, bool immediate,
					 HeapTuple oldtuple)
{
	SyncqChangeMeta meta;
	Oid			relid = RelationGetRelid(rel);
	const char *key;
	Size		keylen;
	Expected   *x = NULL;
	bool		fresh_after_expected = false;
	int64		seq;

	memset(&meta, 0, sizeof(meta));
	meta.notify = true;
	if (apply_cxt == NULL)
	{
		meta.version = syncq_clock_stamp(nspid, oldtuple);
		return syncq_queue_change(nspid, table, op, pk, row_data, immediate, &meta);
	}

	json_text(pk, &key, &keylen);
	if (syncq_trigger_depth() == 1)
		x = find_expected(relid, key, keylen);
	if (x != NULL)
	{
		TimestampTz before = stamped_version(relid, key, keylen);

		x->captured = true;
		if (before > x->version)
			fresh_after_expected = true;
		else
		{
			meta.version = x->version;
			meta.origin = &x->origin;
			meta.notify = false;
			syncq_clock_observe(x->version);
		}
	}
	if (x == NULL || fresh_after_expected)
	{
		meta.version = syncq_clock_stamp(nspid, oldtuple);
		if (x != NULL)
		{
			meta.origin = &x->origin;
			meta.notify = false;
		}
		note_stamped(relid, key, keylen, meta.version);
	}

	seq = syncq_queue_change(nspid, table, op, pk, row_data, immediate, &meta);

	if (x == NULL)
	{
		pg_uuid_t	me = *(syncq_origin_setting ? syncq_origin_setting : syncq_node_id(nspid));

		report_add(-1, seq, TextDatumGetCString(table->table_name), op, key,
				   keylen, NULL, 0, meta.version, &me, "consequence",
				   GetCurrentSubTransactionId());
	}
	else
	{
		const char *row = NULL;
		Size		rowlen = 0;
		bool		differs = false;

		if (op != 'D')
		{
			json_text(row_data, &row, &rowlen);
			differs = !x->has_hash || syncq_text_hash(row, rowlen) != x->row_hash;
		}
		if (fresh_after_expected || differs)
			report_add(x->n, seq, TextDatumGetCString(table->table_name), op,
					   key, keylen, differs ? row : NULL, rowlen, meta.version,
					   &x->origin, fresh_after_expected ? "restamped" : "differs",
					   GetCurrentSubTransactionId());
	}
	return seq;
}

/* ---- syncqd's calls ----------------------------------------------------- */

/* The relation of the tracked table of that name, or InvalidOid. */
static Oid
find_tracked(Oid nspid, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	Oid			relid = InvalidOid;
	int			ret;

	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(psprintf("SELECT relid::pg_catalog.oid FROM %s WHERE table_name OPERATOR(pg_catalog.=) $1",
										 quote_qualified_identifier(get_namespace_name(nspid), "sync_tables")),
								1, argtypes, values, NULL, true, 2);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		isnull;

		relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));
	return relid;
}

/* The relation of the tracked table of that name, or an error. */
static Oid
tracked_relid(Oid nspid, const char *name)
{
	Oid			relid = find_tracked(nspid, name);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" is not tracked", name)));
	return relid;
}

/*
 * The value of a JSON scalar for a column of type typid, as
 * json_populate_record() reads it: the type's input function on the text of
 * the value (a string's contents, a number's digits, true or false), the
 * JSON text itself for json and jsonb.  Raises the type's error.
 */
static Datum
json_to_datum(JsonbValue *v, Oid typid, int32 typmod, bool *isnull)
{
	char	   *str;
	Oid			typinput;
	Oid			typioparam;

	*isnull = false;
	if (v->type == jbvNull)
	{
		*isnull = true;
		return (Datum) 0;
	}
	if (typid == JSONOID || typid == JSONBOID || v->type == jbvBinary)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (v->type == jbvBinary)
			JsonbToCString(&buf, v->val.binary.data, v->val.binary.len);
		else
		{
			Jsonb	   *jb = JsonbValueToJsonb(v);

			JsonbToCString(&buf, &jb->root, VARSIZE(jb));
		}
		str = buf.data;
	}
	else if (v->type == jbvString)
		str = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		str = DatumGetCString(DirectFunctionCall1(numeric_out,
												  NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvBool)
		str = v->val.boolean ? "true" : "false";
	else
		elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	getTypeInputInfo(typid, &typinput, &typioparam);
	return OidInputFunctionCall(typinput, str, typioparam, typmod);
}

/*
 * The key of a row as the capture writes it, from a JSON object of its key
 * columns as a client sent them: each value read by its column's type.
 */
static Datum
normalized_key(Relation rel, const SyncqTable *table, TupleTableSlot *slot,
			   Jsonb *pk, StringInfo buf)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (!JB_ROOT_IS_OBJECT(pk))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key of a change of \"%s\" is not a JSON object",
						RelationGetRelationName(rel))));
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
	for (i = 0; i < table->nkeys; i++)
	{
		const SyncqColumn *col = table->keys[i];
		Form_pg_attribute att = TupleDescAttr(desc, col->attnum - 1);
		JsonbValue *v = getKeyJsonValueFromContainer(&pk->root, col->name,
													 strlen(col->name), NULL);
		bool		isnull;

		if (v == NULL || v->type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("the key of a change of \"%s\" has no value for column \"%s\"",
							RelationGetRelationName(rel), col->name)));
		slot->tts_values[col->attnum - 1] =
			json_to_datum(v, att->atttypid, att->atttypmod, &isnull);
		slot->tts_isnull[col->attnum - 1] = isnull;
	}
	ExecStoreVirtualTuple(slot);
	return syncq_key_json(buf, table, slot);
}

/* A table sync_normalize_keys() or sync_queue_row() reads. */
typedef struct KeyTable
{
	char	   *name;
	Relation	rel;
	SyncqTable *table;
	TupleTableSlot *slot;
} KeyTable;

static KeyTable *
key_table_open(Oid nspid, Oid relid, const char *name)
{
	KeyTable   *kt = palloc0(sizeof(KeyTable));

	kt->name = pstrdup(name);
	kt->rel = table_open(relid, AccessShareLock);
	kt->table = syncq_table(kt->rel);
	kt->slot = MakeSingleTupleTableSlot(RelationGetDescr(kt->rel), &TTSOpsVirtual);
	return kt;
}

static void
key_table_close(KeyTable *kt)
{
	ExecDropSingleTupleTableSlot(kt->slot);
	table_close(kt->rel, NoLock);
}

/* One input row of sync_normalize_keys(). */
typedef struct KeyInput
{
	int			i;
	KeyTable   *kt;				/* NULL: the table is not tracked */
	Jsonb	   *pk;
	char	   *result;
	char	   *error;
} KeyInput;

/* Normalize one key, into in->result (an error propagates). */
static void
normalize_one(KeyInput *in, MemoryContext cxt)
{
	StringInfoData buf;
	Datum		key;
	const char *p;
	Size		len;

	initStringInfo(&buf);
	key = normalized_key(in->kt->rel, in->kt->table, in->kt->slot, in->pk, &buf);
	json_text(key, &p, &len);
	in->result = MemoryContextStrdup(cxt, pnstrdup(p, len));
}

/*
 * Normalize in[from..to) inside one subtransaction; false (and everything
 * undone) if one of them raised an error, which is kept in *error when
 * there is just one.
 */
static bool
normalize_guarded(KeyInput *in, int n, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;
	int			k;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		for (k = 0; k < n; k++)
			if (in[k].kt != NULL)
				normalize_one(&in[k], cxt);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		for (k = 0; k < n; k++)
			in[k].result = NULL;
		if (n == 1)
			in[0].error = edata->message;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * sync_normalize_keys(keys jsonb) returns table(i int, pk text, error text)
 *
 * keys is an array of {"i": number, "t": table name, "p": key object}: the
 * keys of changes a client sent.  Each comes back as the capture writes the
 * key of the row the hub stores for it (an upper-case uuid in lower case, a
 * numeric at its column's scale), or with the error of a value the column's
 * type refuses.  A table that is not tracked is an error of its own rows.
 */
Datum
sync_normalize_keys(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	ReturnSetInfo *rsinfo;
	Jsonb	   *keys;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *tables = NIL;
	KeyInput   *in;
	int			n = 0,
				cap = 64,
				k;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys must not be null")));
	keys = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(keys) || JB_ROOT_IS_SCALAR(keys))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keys must be a JSON array")));
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	in = palloc0(sizeof(KeyInput) * cap);
	it = JsonbIteratorInit(&keys->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Jsonb	   *elem;
		JsonbValue *i,
				   *t,
				   *p;
		char	   *name;
		ListCell   *lc;
		KeyTable   *kt = NULL;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each key must be a JSON object")));
		elem = JsonbValueToJsonb(&v);
		i = getKeyJsonValueFromContainer(&elem->root, "i", 1, NULL);
		t = getKeyJsonValueFromContainer(&elem->root, "t", 1, NULL);
		p = getKeyJsonValueFromContainer(&elem->root, "p", 1, NULL);
		if (i == NULL || i->type != jbvNumeric || t == NULL || t->type != jbvString ||
			p == NULL || p->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each key must be an object {\"i\": number, \"t\": table, \"p\": key}")));
		if (n == cap)
		{
			cap *= 2;
			in = repalloc(in, sizeof(KeyInput) * cap);
		}
		memset(&in[n], 0, sizeof(KeyInput));
		in[n].i = DatumGetInt32(DirectFunctionCall1(numeric_int4,
													NumericGetDatum(i->val.numeric)));
		name = pnstrdup(t->val.string.val, t->val.string.len);
		foreach(lc, tables)
			if (strcmp(((KeyTable *) lfirst(lc))->name, name) == 0)
				kt = lfirst(lc);
		if (kt == NULL)
		{
			Oid			relid = find_tracked(nspid, name);

			if (OidIsValid(relid))
			{
				kt = key_table_open(nspid, relid, name);
				tables = lappend(tables, kt);
			}
		}
		in[n].kt = kt;
		if (kt == NULL)
			in[n].error = psprintf("table \"%s\" is not tracked on the hub", name);
		{
			JsonbValue	pv = *p;

			in[n].pk = JsonbValueToJsonb(&pv);
		}
		n++;
	}

	if (!normalize_guarded(in, n, cxt))
		for (k = 0; k < n; k++)
			if (in[k].kt != NULL)
				normalize_guarded(&in[k], 1, cxt);

	for (k = 0; k < n; k++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int32GetDatum(in[k].i);
		if (in[k].result)
			values[1] = CStringGetTextDatum(in[k].result);
		else
			nulls[1] = true;
		if (in[k].error)
			values[2] = CStringGetTextDatum(in[k].error);
		else
			nulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	{
		ListCell   *lc;

		foreach(lc, tables)
			key_table_close(lfirst(lc));
	}
	return (Datum) 0;
}

/*
 * sync_apply_expect(changes jsonb) returns boolean
 *
 * changes is an array of {"n": number, "t": table, "p": key text (as
 * sync_normalize_keys() gave it), "v": version in microseconds since 1970,
 * "o": origin, "h": hash of the row as sent (16 hex digits) or null}: what
 * the statement this is called in applies (see above).  Returns true.
 */
Datum
sync_apply_expect(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	Jsonb	   *changes;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *names = NIL;
	List	   *relids = NIL;
	MemoryContext old;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("changes must not be null")));
	changes = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(changes) || JB_ROOT_IS_SCALAR(changes))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("changes must be a JSON array")));

	apply_begin();
	close_expected();
	expected = key_table("syncq expected rows");
	expected_subid = GetCurrentSubTransactionId();

	it = JsonbIteratorInit(&changes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Jsonb	   *elem;
		JsonbValue *jn,
				   *jt,
				   *jp,
				   *jv,
				   *jo,
				   *jh;
		char	   *name;
		Oid			relid = InvalidOid;
		ListCell   *ln,
				   *lr;
		Expected   *x;
		KeyEntry   *e;
		char	   *origin;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each change must be a JSON object")));
		elem = JsonbValueToJsonb(&v);
		jn = getKeyJsonValueFromContainer(&elem->root, "n", 1, NULL);
		jt = getKeyJsonValueFromContainer(&elem->root, "t", 1, NULL);
		jp = getKeyJsonValueFromContainer(&elem->root, "p", 1, NULL);
		jv = getKeyJsonValueFromContainer(&elem->root, "v", 1, NULL);
		jo = getKeyJsonValueFromContainer(&elem->root, "o", 1, NULL);
		jh = getKeyJsonValueFromContainer(&elem->root, "h", 1, NULL);
		if (jn == NULL || jn->type != jbvNumeric || jt == NULL || jt->type != jbvString ||
			jp == NULL || jp->type != jbvString || jv == NULL || jv->type != jbvNumeric ||
			jo == NULL || jo->type != jbvString ||
			(jh != NULL && jh->type != jbvString && jh->type != jbvNull))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each change must be an object {\"n\", \"t\", \"p\", \"v\", \"o\", \"h\"}")));
		name = pnstrdup(jt->val.string.val, jt->val.string.len);
		forboth(ln, names, lr, relids)
			if (strcmp(lfirst(ln), name) == 0)
				relid = lfirst_oid(lr);
		if (!OidIsValid(relid))
		{
			relid = tracked_relid(nspid, name);
			names = lappend(names, name);
			relids = lappend_oid(relids, relid);
		}

		old = MemoryContextSwitchTo(apply_cxt);
		x = palloc0(sizeof(Expected));
		x->n = DatumGetInt32(DirectFunctionCall1(numeric_int4,
												 NumericGetDatum(jn->val.numeric)));
		x->key = pnstrdup(jp->val.string.val, jp->val.string.len);
		x->keylen = jp->val.string.len;
		MemoryContextSwitchTo(old);
		x->version = syncq_version_from_unix_us(DatumGetInt64(DirectFunctionCall1(numeric_int8,
																				  NumericGetDatum(jv->val.numeric))));
		origin = pnstrdup(jo->val.string.val, jo->val.string.len);
		x->origin = *DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(origin)));
		if (jh != NULL && jh->type == jbvString)
		{
			char	   *hex = pnstrdup(jh->val.string.val, jh->val.string.len);
			char	   *end;

			x->row_hash = strtou64(hex, &end, 16);
			if (*end != '\0' || jh->val.string.len != 16)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid row hash \"%s\"", hex)));
			x->has_hash = true;
		}
		e = key_entry(expected, relid, x->key, x->keylen, true);
		x->next = e->list;
		e->list = x;
	}
	PG_RETURN_BOOL(true);
}

/*
 * sync_apply_report() returns table(n int, seq bigint, t text, op text,
 *   pk text, row_data text, ver bigint, origin uuid, what text)
 *
 * What the capture did with the changes syncqd applied since the last
 * report (see above), and forgets it.  n is the expected change (-1 for a
 * consequence), seq its queue row (null if none), ver its version in
 * microseconds since 1970, what one of 'differs' (row_data as stored),
 * 'restamped', 'consequence' or 'missing'.
 */
Datum
sync_apply_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (apply_cxt == NULL)
		return (Datum) 0;
	close_expected();
	foreach(lc, reports)
	{
		Report	   *r = lfirst(lc);
		Datum		values[9];
		bool		nulls[9] = {false, false, false, false, false, false, false, false, false};
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		values[0] = Int32GetDatum(r->n);
		values[1] = Int64GetDatum(r->seq);
		nulls[1] = r->seq == 0;
		values[2] = CStringGetTextDatum(r->table);
		nulls[2] = r->table[0] == '\0';
		values[3] = CStringGetTextDatum(psprintf("%c", r->op));
		nulls[3] = r->op == '-';
		values[4] = CStringGetTextDatum(r->pk);
		values[5] = r->row ? CStringGetTextDatum(r->row) : (Datum) 0;
		nulls[5] = r->row == NULL;
		values[6] = Int64GetDatum(syncq_version_to_unix_us(r->version));
		*u = r->origin;
		values[7] = UUIDPGetDatum(u);
		values[8] = CStringGetTextDatum(r->what);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	list_free(reports);
	reports = NIL;
	return (Datum) 0;
}

/*
 * sync_queue_row(tbl regclass, pk jsonb, ver bigint, origin uuid,
 *                for_node uuid, for_seq bigint, replaces bigint,
 *                OUT queued_seq bigint, OUT queued_ver bigint, OUT queued_op text)
 *
 * Queues the row of tbl with key pk as the hub holds it now: U with the
 * row, or D if there is none.  With ver null it is a change of the hub's
 * own, stamped afresh (and after the row's version in sync_versions); else
 * it keeps version ver (microseconds since 1970) and origin.  With for_node it is a correction for that client only,
 * answering its change for_seq, and replacing its version replaces (when
 * not null).  Returns the queue row's seq, version (in microseconds since
 * 1970) and op.  For syncqd, and sync_fold_local().
 */
Datum
sync_queue_row(PG_FUNCTION_ARGS)
{
	Oid			nspid = syncq_schema(fcinfo);
	Oid			relid;
	KeyTable   *kt;
	StringInfoData keybuf,
				rowbuf;
	Datum		key;
	Datum		row = (Datum) 0;
	char		op = 'D';
	bool		immediate = true;
	SyncqChangeMeta meta;
	StringInfoData sql;
	Oid		   *argtypes;
	Datum	   *values;
	char	   *nulls;
	int			i,
				ret;
	MemoryContext cxt = CurrentMemoryContext;
	HeapTupleHeader found = NULL;
	int64		seq;
	TimestampTz current = 0;
	TupleDesc	tupdesc;
	Datum		result[3];
	bool		resnulls[3] = {false, false, false};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and pk must not be null")));
	if (!PG_ARGISNULL(2) && PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a version needs its origin")));
	if (PG_ARGISNULL(4) != PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("for_node and for_seq go together")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (find_tracked(nspid, get_rel_name(relid)) != relid)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"%s\" is not tracked", get_rel_name(relid))));
	kt = key_table_open(nspid, relid, get_rel_name(relid));
	initStringInfo(&keybuf);
	key = normalized_key(kt->rel, kt->table, kt->slot, PG_GETARG_JSONB_P(1), &keybuf);

	/* the row as it is now, by its key */
	argtypes = palloc(sizeof(Oid) * (kt->table->nkeys + 1));
	values = palloc(sizeof(Datum) * (kt->table->nkeys + 1));
	nulls = palloc(sizeof(char) * (kt->table->nkeys + 1));
	initStringInfo(&sql);
	/* (the row's alias must not be a column name: "t" would be column t) */
	appendStringInfo(&sql, "SELECT s.priority, (SELECT syncq_row FROM ONLY %s AS syncq_row WHERE ",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(kt->rel)),
												RelationGetRelationName(kt->rel)));
	for (i = 0; i < kt->table->nkeys; i++)
	{
		const SyncqColumn *col = kt->table->keys[i];

		appendStringInfo(&sql, "%ssyncq_row.%s = $%d", i ? " AND " : "",
						 quote_identifier(col->name), i + 1);
		argtypes[i] = TupleDescAttr(RelationGetDescr(kt->rel), col->attnum - 1)->atttypid;
		values[i] = kt->slot->tts_values[col->attnum - 1];
		nulls[i] = ' ';
	}
	appendStringInfo(&sql, "), (SELECT v.ver_us FROM %s v WHERE v.table_name OPERATOR(pg_catalog.=) s.table_name"
					 " AND v.pk OPERATOR(pg_catalog.=) $%d) FROM %s s WHERE s.relid OPERATOR(pg_catalog.=) %u::pg_catalog.oid::pg_catalog.regclass",
					 quote_qualified_identifier(get_namespace_name(nspid), "sync_versions"),
					 kt->table->nkeys + 1,
					 quote_qualified_identifier(get_namespace_name(nspid), "sync_tables"),
					 relid);
	{
		const char *p;
		Size		len;

		json_text(key, &p, &len);
		argtypes[kt->table->nkeys] = TEXTOID;
		values[kt->table->nkeys] = PointerGetDatum(cstring_to_text_with_len(p, len));
		nulls[kt->table->nkeys] = ' ';
	}
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(sql.data, kt->table->nkeys + 1, argtypes, values, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		prnull,
					rownull;
		Datum		pr = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &prnull);
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &rownull);
		MemoryContext spi = MemoryContextSwitchTo(cxt);

		bool		vernull;
		Datum		cur = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &vernull);

		if (!rownull)
			found = DatumGetHeapTupleHeaderCopy(d);
		if (!prnull)
			immediate = strcmp(TextDatumGetCString(pr), SYNCQ_PRIORITY_IMMEDIATE) == 0;
		if (!vernull)
			current = syncq_version_from_unix_us(DatumGetInt64(cur));
		MemoryContextSwitchTo(spi);
	}
	if ((ret = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(ret));

	if (found != NULL)
	{
		HeapTupleData tup;
		TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(kt->rel),
														&TTSOpsHeapTuple);

		tup.t_len = HeapTupleHeaderGetDatumLength(found);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = relid;
		tup.t_data = found;
		ExecStoreHeapTuple(&tup, slot, false);
		initStringInfo(&rowbuf);
		key = syncq_key_json(&keybuf, kt->table, slot);
		row = syncq_row_json(&rowbuf, kt->table, slot);
		op = 'U';
		ExecDropSingleTupleTableSlot(slot);
	}

	memset(&meta, 0, sizeof(meta));
	meta.notify = true;
	if (PG_ARGISNULL(2))
	{
		/* the row's newest version: after the one it has */
		syncq_clock_observe(current);
		meta.version = syncq_clock_stamp(nspid, NULL);
	}
	else
	{
		meta.version = syncq_version_from_unix_us(PG_GETARG_INT64(2));
		meta.origin = PG_GETARG_UUID_P(3);
		syncq_clock_observe(meta.version);
	}
	if (!PG_ARGISNULL(4))
	{
		meta.for_node = PG_GETARG_UUID_P(4);
		meta.for_seq = PG_GETARG_INT64(5);
		meta.has_replaces = !PG_ARGISNULL(6);
		if (meta.has_replaces)
			meta.replaces = syncq_version_from_unix_us(PG_GETARG_INT64(6));
	}
	seq = syncq_queue_change(nspid, kt->table, op, key, row, immediate, &meta);
	if (apply_cxt != NULL && meta.for_node == NULL)
	{
		const char *p;
		Size		len;

		json_text(key, &p, &len);
		note_stamped(relid, p, len, meta.version);
	}
	key_table_close(kt);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	result[0] = Int64GetDatum(seq);
	result[1] = Int64GetDatum(syncq_version_to_unix_us(meta.version));
	result[2] = CStringGetTextDatum(op == 'D' ? "D" : "U");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, resnulls)));
}

/* ---- transaction boundaries --------------------------------------------- */

/* Forget it all at the end of the transaction (the memory goes with it). */
static void
apply_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			apply_cxt = NULL;
			expected = NULL;
			stamped = NULL;
			reports = NIL;
			expected_subid = InvalidSubTransactionId;
			break;
		default:
			break;
	}
}

/*
 * A rolled-back subtransaction took its queue rows with it: forget what it
 * reported and stamped, and the statement's expectations if it set them.
 */
static void
apply_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB || apply_cxt == NULL)
		return;
	foreach(lc, reports)
	{
		Report	   *r = lfirst(lc);

		if (r->subid >= mySubid)
			reports = foreach_delete_current(reports, lc);
	}
	if (stamped != NULL)
	{
		HASH_SEQ_STATUS status;
		KeyEntry   *e;

		hash_seq_init(&status, stamped);
		while ((e = hash_seq_search(&status)) != NULL)
		{
			Stamped   **s = (Stamped **) &e->list;

			while (*s != NULL)
			{
				if ((*s)->subid >= mySubid)
					*s = (*s)->next;
				else
					s = &(*s)->next;
			}
		}
	}
	if (expected != NULL && expected_subid >= mySubid)
	{
		hash_destroy(expected);
		expected = NULL;
	}
}

/* Called from _PG_init(). */
void
syncq_apply_init(void)
{
	RegisterXactCallback(apply_xact_callback, NULL);
	RegisterSubXactCallback(apply_subxact_callback, NULL);
}
