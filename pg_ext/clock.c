/*
 * clock.c
 *	  Versions: the hub's hybrid logical clock (docs/replication.md).
 *
 * A change is versioned by its changed_at (a timestamptz, microseconds) and
 * its origin node.  A change captured here is stamped
 *
 *	  max(wall clock, hub clock + 1 us, last stamp of this backend + 1 us)
 *
 * so that a change made after this node saw another always has the greater
 * version, whatever the wall clocks of the two nodes say.  The hub clock is
 * the greatest of sync_clock's rows: the greatest version syncqd has
 * applied here (an upload raises the row of its connection's slot in the
 * same transaction as the changes it applies, so that uploads side by side
 * do not wait for one row).
 *
 * The row is read once per transaction, with a fresh snapshot, directly
 * from the heap (no SPI, no executor, no privilege needed: the app's role
 * may capture changes without any right on syncq's tables).  A transaction
 * that read it and then changes a row last written by a transaction that
 * committed after that read (it waited for the row, or it is a long one)
 * reads it again, since that writer may have raised it.  What a backend
 * stamped, and every version it applied for syncqd, raises its own floor.
 */
#include "syncq.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* The greatest version this backend stamped or applied. */
static TimestampTz last_stamp = 0;

/* The hub clock as read in the current transaction, and the snapshot read. */
static LocalTransactionId clock_lxid = InvalidLocalTransactionId;
static TimestampTz clock_floor = 0;
static Snapshot clock_snapshot = NULL;	/* in TopTransactionContext */

/* sync_clock's OID in the schema of clock_nspid. */
static Oid	clock_nspid = InvalidOid;
static Oid	clock_relid = InvalidOid;
static AttrNumber clock_attnum = InvalidAttrNumber;	/* of its column hlc */

/* A copy of snapshot s, good for XidInMVCCSnapshot(), in context cxt. */
static Snapshot
copy_snapshot(Snapshot s, MemoryContext cxt)
{
	Size		size = sizeof(SnapshotData) +
		sizeof(TransactionId) * ((Size) s->xcnt + (Size) Max(s->subxcnt, 0));
	Snapshot	n = MemoryContextAlloc(cxt, size);

	memcpy(n, s, sizeof(SnapshotData));
	n->xip = (TransactionId *) (n + 1);
	memcpy(n->xip, s->xip, sizeof(TransactionId) * s->xcnt);
	n->subxip = n->xip + s->xcnt;
	if (s->subxcnt > 0)
		memcpy(n->subxip, s->subxip, sizeof(TransactionId) * s->subxcnt);
	n->regd_count = 0;
	n->active_count = 0;
	n->copied = true;
	return n;
}

/*
 * sync_clock's OID, looked up once and kept until invalidated.
 * InvalidOid while the extension's SQL is still 0.1.0's, which has no
 * sync_clock: this library was installed and ALTER EXTENSION syncq UPDATE
 * has not run yet (README "Upgrade"). Looked up again each transaction
 * then, so the update is seen at once.
 */
static Oid
clock_relation(Oid nspid)
{
	if (nspid != clock_nspid || !OidIsValid(clock_relid))
	{
		Oid			relid = get_relname_relid("sync_clock", nspid);

		if (!OidIsValid(relid))
			return InvalidOid;
		clock_attnum = get_attnum(relid, "hlc");
		if (clock_attnum == InvalidAttrNumber)
			elog(ERROR, "column \"hlc\" of sync_clock is missing");
		clock_nspid = nspid;
		clock_relid = relid;
	}
	return clock_relid;
}

/*
 * Read the hub clock with a fresh snapshot: the floor of this transaction's
 * stamps becomes the clock + 1 us.
 */
static void
read_clock(Oid nspid)
{
	Oid			relid = clock_relation(nspid);
	Snapshot	snap;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	TimestampTz hlc = 0;

	if (!OidIsValid(relid))
	{
		/* SQL of 0.1.0: stamps as 0.1.0 made them (wall clock, this backend) */
		clock_lxid = MyProc->lxid;
		clock_floor = 0;
		return;
	}
	snap = GetLatestSnapshot();
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		elog(ERROR, "sync_clock must be a heap table");
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, clock_attnum, RelationGetDescr(rel), &isnull);

		if (!isnull && !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)) &&
			DatumGetTimestampTz(d) > hlc)
			hlc = DatumGetTimestampTz(d);
	}
	table_endscan(scan);
	table_close(rel, NoLock);

	if (clock_snapshot != NULL && clock_lxid == MyProc->lxid)
		pfree(clock_snapshot);
	clock_snapshot = copy_snapshot(snap, TopTransactionContext);
	clock_lxid = MyProc->lxid;
	clock_floor = hlc + 1;
}

/*
 * Was oldtuple (the row version an UPDATE or DELETE replaced) written by a
 * transaction this transaction's clock read could not see?
 */
static bool
written_after_read(HeapTuple oldtuple)
{
	TransactionId xmin;

	if (oldtuple == NULL || oldtuple->t_data == NULL || clock_snapshot == NULL)
		return false;
	xmin = HeapTupleHeaderGetXmin(oldtuple->t_data);
	if (!TransactionIdIsNormal(xmin) || TransactionIdIsCurrentTransactionId(xmin))
		return false;
	return XidInMVCCSnapshot(xmin, clock_snapshot);
}

/*
 * The version of a change captured now (see above).  oldtuple: the row an
 * UPDATE or DELETE replaced, or NULL.
 */
TimestampTz
syncq_clock_stamp(Oid nspid, HeapTuple oldtuple)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz v;

	if (clock_lxid != MyProc->lxid || written_after_read(oldtuple))
		read_clock(nspid);
	v = Max(now, clock_floor);
	if (v <= last_stamp)
		v = last_stamp + 1;
	last_stamp = v;
	return v;
}

/*
 * A change this backend applies for syncqd keeps the version it was given:
 * later stamps here are greater.
 */
void
syncq_clock_observe(TimestampTz version)
{
	if (version > last_stamp)
		last_stamp = version;
}

/* Versions cross the wire as microseconds since 1970. */
int64
syncq_version_to_unix_us(TimestampTz version)
{
	return (int64) version +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

TimestampTz
syncq_version_from_unix_us(int64 us)
{
	return (TimestampTz) (us -
						  (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
}

/* Relcache callback: sync_clock may have been dropped or replaced. */
static void
clock_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == clock_relid)
		clock_relid = InvalidOid;
}

/* Transaction callback: the snapshot copy went with TopTransactionContext. */
static void
clock_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			clock_snapshot = NULL;
			clock_lxid = InvalidLocalTransactionId;
			break;
		default:
			break;
	}
}

/* Called from _PG_init(). */
void
syncq_clock_init(void)
{
	CacheRegisterRelcacheCallback(clock_invalidate, (Datum) 0);
	RegisterXactCallback(clock_xact_callback, NULL);
}
