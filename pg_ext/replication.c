/*
 * replication.c
 *	  Helpers of the hub-side replication state (sql/src/20_replication.sql).
 *
 *	  sync_xid_value(xid8)   the 64-bit value of a full transaction id, which
 *	                         sync_queue_origin_txid is on
 */
#include "syncq.h"

#include "access/transam.h"
#include "fmgr.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_xid_value);

/*
 * sync_xid_value(xid8) - the full transaction id as a bigint
 *
 * Full transaction ids stay below 2^63 in any cluster that will ever exist
 * (epoch < 2^31), so the value fits a signed bigint and orders the same.
 */
Datum
sync_xid_value(PG_FUNCTION_ARGS)
{
	FullTransactionId fxid = PG_GETARG_FULLTRANSACTIONID(0);

	PG_RETURN_INT64((int64) U64FromFullTransactionId(fxid));
}
