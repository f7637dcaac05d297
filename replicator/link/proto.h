/*
 * proto.h — the messages of POST /api/sync/data (docs/http.md): what a
 * client asks `syncqd serve`, decoded and checked before anything touches
 * the hub (proto.c; fuzzed by tests/fuzz/fuzz_proto.c).
 */
#ifndef SYNCQD_PROTO_H
#define SYNCQD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/change.h"

#define PROTO_VERSION 1

/* Changes or rows per page a client may ask for, at most. */
#define PROTO_LIMIT_MAX 50000

typedef enum
{
	OP_HELLO,					/* the hub's tables; retry set-aside uploads */
	OP_UPLOAD,					/* changes up to a transaction boundary */
	OP_SNAPSHOT,				/* the snapshot a download goes to */
	OP_CHANGES,					/* a page of the hub's changes */
	OP_ROWS,					/* a page of a table, for a first sync */
	OP_DONE,					/* the client now stands at a position */
	OP_ERRORS					/* this client's changes set aside on the hub */
} ProtoOp;

typedef struct
{
	ProtoOp		op;
	char		node_id[NODE_ID_LEN + 1];
	/* hello */
	bool		retry_errors;
	/* upload */
	int64_t		ack_seq;
	uint64_t	ack_digest;
	ChangeList	changes;
	/* snapshot, changes, done: pg_snapshot text (position may be NULL) */
	char	   *position;
	char	   *target;
	int64_t		after;
	int			limit;
	/* rows */
	char	   *table;
	char	   *after_pk;		/* JSON object text, NULL: from the start */
	/* errors */
	int			max;
	bool		conflicts;
} ProtoRequest;

const char *proto_op_name(ProtoOp op);
int			proto_decode_request(const char *body, size_t len, ProtoRequest *rq,
								 char *err, size_t errlen);
void		proto_request_free(ProtoRequest *rq);
bool		proto_is_uuid(const char *s);
bool		proto_is_snapshot(const char *s);

#endif							/* SYNCQD_PROTO_H */
