/*
 * syncq_contract.h — what the two extensions and syncqd must agree on.
 *
 * One place for the names and values that cross between the PostgreSQL
 * extension (pg_ext/), the SQLite extension (sqlite_ext/) and syncqd
 * (replicator/): the queue's table and ops, the priorities, the NOTIFY
 * channel and its payloads, the wake-up file, the tagged blob of the SQLite
 * queue. docs/queue.md is the contract in prose; a literal of any of these
 * anywhere else is a bug.
 *
 * Plain C with no includes, so PostgreSQL code, SQLite code and syncqd can
 * all include it.
 */
#ifndef SYNCQ_CONTRACT_H
#define SYNCQ_CONTRACT_H

/* The version of the SQL contract: pg_ext/syncq.control's default_version,
 * the SQLite extension's schema, syncqd --version (tests/integration/
 * meta_version.sh checks that they agree). */
#define SYNCQ_VERSION			"0.2.0"

/* The queue table, in both engines (docs/queue.md). */
#define SYNCQ_QUEUE_TABLE		"sync_queue"

/* Ops of a queue row. */
#define SYNCQ_OP_INSERT			'I'
#define SYNCQ_OP_UPDATE			'U'
#define SYNCQ_OP_DELETE			'D'

/* Priorities of a tracked table and of a queue row. */
#define SYNCQ_PRIORITY_IMMEDIATE "immediate"
#define SYNCQ_PRIORITY_BATCHED	"batched"

/*
 * The hub announces on one channel: committed immediate changes ("change",
 * once per transaction, by the capture trigger), sync requests ("request",
 * sync_trigger()), and uploads applied by syncqd ("upload:<node id>", so a
 * client is not woken by its own upload).
 */
#define SYNCQ_CHANNEL			"sync_queue"
#define SYNCQ_PAYLOAD_CHANGE	"change"
#define SYNCQ_PAYLOAD_REQUEST	"request"
#define SYNCQ_PAYLOAD_UPLOAD	"upload:"

/* A SQLite client's committed immediate change is signalled by writing
 * this file beside the database: "/data/app.db" -> "/data/app.db-syncq-wake". */
#define SYNCQ_WAKE_SUFFIX		"-syncq-wake"

/*
 * The SQLite queue is written by plain SQL triggers, and SQLite 3.40 has no
 * base64 in SQL: a blob is held there as the tagged object {"$hex":"0A1B"},
 * which syncqd turns into base64 before it leaves the node. The hub's queue
 * holds base64 strings, as every value crosses between nodes.
 */
#define SYNCQ_BLOB_TAG			"$hex"

#endif							/* SYNCQ_CONTRACT_H */
