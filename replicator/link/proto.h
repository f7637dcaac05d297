/*
 * proto.h — the messages of POST /api/sync/data and GET /api/sync/wait,
 * both ways (proto.c, proto_reply.c; docs/http.md): what a client's HTTP
 * link writes and serve reads, what serve answers and the link reads.
 * Every message is read and written with the one JSON codec
 * (model/json.h); rows and keys travel as JSON values. Fuzzed by
 * tests/fuzz/fuzz_proto.c: every decoder, and decode → encode → decode.
 */
#ifndef SYNCQD_PROTO_H
#define SYNCQD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "link/link.h"
#include "model/change.h"
#include "model/hubinfo.h"
#include "model/json.h"

/*
 * 2: rows and keys as JSON values. 1 (syncq 0.1.0) had them as JSON text
 * in strings: serve still reads and answers it, so that a 0.1.0 syncqd goes
 * on syncing through a 0.2.0 serve (its requests say "v": 1, and what it
 * is answered carries rows and keys in strings again). A client writes 2.
 */
#define PROTO_VERSION 2
#define PROTO_VERSION_MIN 1

/* Changes or rows per page a client may ask for, at most. */
#define PROTO_LIMIT_MAX 50000

/* Set-aside changes an errors request lists, or names by seq, at most. */
#define PROTO_ERRORS_MAX 1000

/* ---- requests (proto.c) ------------------------------------------------ */

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

#define PROTO_OPS 7

/* Where the pk and row of an upload's change are in the body (protocol 2):
 * read only when the hub applies them (proto_upload_rows). */
typedef struct
{
	const char *pk;
	size_t		pk_len;
	const char *row;			/* NULL: none */
	size_t		row_len;
} ProtoRows;

/*
 * A hello folded into an upload or snapshot request (docs/http.md, A sync
 * in two requests): the client names the hub's tracked tables it holds by
 * their digest; serve does the hello's work first, or, if the tables are
 * not those, nothing else (the reply is a hello's, tables_changed).
 */
typedef struct
{
	bool		on;				/* the request carries one */
	uint64_t	tables;			/* the digest of the tables the client holds */
} ProtoHelloAsk;

/* What a reply says of the hello folded into its request: its first key. */
typedef struct
{
	bool		on;				/* a hello was folded in */
	bool		tables_changed; /* the reply is a hello's: nothing else done */
	int			retried;		/* set-aside changes through now */
	int			conflicts;		/* ... overruled now */
} ProtoFolded;

typedef struct
{
	int			v;				/* the request's protocol (serve answers in it) */
	ProtoOp		op;
	char		node_id[NODE_ID_LEN + 1];
	/* hello, and a hello folded into an upload or snapshot */
	bool		retry_errors;
	ProtoHelloAsk hello;
	/* upload */
	int64_t		ack_seq;
	uint64_t	ack_digest;
	int64_t		now_us;			/* the client's clock as it sent it (0: not said) */
	ChangeList	changes;		/* protocol 2: pk and row not read yet */
	ProtoRows  *rows;			/* ... but there, one per change */
	int			caprows;
	/* snapshot, changes, done: pg_snapshot text (position may be NULL) */
	char	   *position;
	char	   *target;
	int64_t		after;
	int			limit;			/* changes, rows; snapshot: the first page's
								 * (0: none asked for) */
	/* rows */
	char	   *table;
	char	   *after_pk;		/* the key as canonical JSON text; NULL: from the start */
	/* errors */
	int			max;
	bool		conflicts;
	int64_t    *seqs;			/* only these (ascending; NULL: the first max) */
	int			nseqs;
} ProtoRequest;

const char *proto_op_name(ProtoOp op);
bool		proto_hex64(const char *s, uint64_t *v);
bool		proto_is_uuid(const char *s);
bool		proto_is_snapshot(const char *s);

/* Decode and check a request; -1 with err naming the first thing wrong
 * (rq is then empty). */
int			proto_decode_request(const char *body, size_t len, ProtoRequest *rq,
								 char *err, size_t errlen);
void		proto_encode_request(const ProtoRequest *rq, Buf *out);
void		proto_request_free(ProtoRequest *rq);

/* An upload's pk and rows, read for the changes [from, from + n) the hub
 * is about to apply (the body must be there still), and let go after. */
int			proto_upload_rows(ProtoRequest *rq, int from, int n, char *err, size_t errlen);
void		proto_upload_rows_drop(ProtoRequest *rq, int from, int n);
size_t		proto_upload_row_bytes(const ProtoRequest *rq, int i);

/* An upload written a page at a time, as the link reads the queue. */
void		proto_upload_begin(JsonOut *w, Buf *out, const char *node_id, int64_t ack_seq, int64_t now_us,
							   uint64_t ack_digest, const ProtoHelloAsk *hello, bool retry_errors);
void		proto_upload_change(JsonOut *w, const Change *c);
void		proto_upload_end(JsonOut *w);

/* ---- replies (proto_reply.c) ------------------------------------------- */

/* hello */
typedef struct
{
	char		hub_node_id[NODE_ID_LEN + 1];
	char		release[32];	/* serve's syncq release; "" from 0.1.0 */
	HubTable   *tables;			/* sorted by name */
	int			ntables;
	int			retried;		/* set-aside changes through now */
	int			conflicts;		/* ... overruled now */
	uint64_t	digest;			/* of the tables (Hub.tables_digest) */
	bool		has_digest;		/* (an older serve's hello has none) */
} ProtoHello;

/* tables_changed: the answer to a folded hello that named other tables. */
void		proto_encode_hello(Buf *out, const char *release, const char *hub_node_id,
							   const HubTable *tables, int ntables, uint64_t digest,
							   int retried, int conflicts, bool tables_changed);
int			proto_decode_hello(const char *s, size_t n, ProtoHello *r, char *err, size_t errlen);
void		proto_hello_free(ProtoHello *r);

/* upload */
typedef struct
{
	UploadStats st;				/* applied, conflicts, skipped, parked */
	UploadMark *marks;
	int			nmarks;
	char	  **refused;		/* log lines of changes set aside */
	int			nrefused;
	int			refused_more;
	KeyRename  *renames;		/* keys the hub gave the client's new rows */
	int			nrenames;
	MetChange  *met;			/* changes set aside as meeting another record */
	int			nmet;
} ProtoUploaded;

/* The first key of a reply, if its request had a hello folded in (f->on):
 * what became of it. 0, or -1 if the reply is not a JSON object. */
int			proto_decode_folded(const char *s, size_t n, ProtoFolded *f);

void		proto_encode_uploaded(Buf *out, const ProtoFolded *hello, const UploadStats *st,
								  const UploadMark *marks,
								  int nmarks, char *const *refused, int nrefused, int refused_more,
								  const KeyRename *renames, int nrenames,
								  const MetChange *met, int nmet);
int			proto_decode_uploaded(const char *s, size_t n, ProtoUploaded *r, char *err, size_t errlen);
void		proto_uploaded_free(ProtoUploaded *r);

/* snapshot; with a first page of changes written between open and close
 * (proto_changes_array, _add, proto_changes_more) */
void		proto_encode_snapshot(Buf *out, const char *snapshot, bool behind, int64_t clock_us,
								  int64_t wall_us);
void		proto_snapshot_open(JsonOut *w, Buf *out, const ProtoFolded *hello, const char *snapshot,
								bool behind, int64_t clock_us, int64_t wall_us);
void		proto_snapshot_close(JsonOut *w);
int			proto_decode_snapshot(const char *s, size_t n, char **snapshot, bool *behind, int64_t *clock_us,
								  int64_t *wall_us,
								  char *err, size_t errlen);
/* ... and its first page into page (*has_page: the reply has one) */
int			proto_decode_snapshot_page(const char *s, size_t n, char **snapshot, bool *behind,
									   int64_t *clock_us, int64_t *wall_us, LinkPage *page,
									   bool *has_page, char *err, size_t errlen);

/* changes: written a change at a time from the hub's text (pk and row are
 * JSON text of objects, PostgreSQL's or the codec's; row NULL for a delete) */
typedef struct
{
	int64_t		seq;
	const char *table;
	char		op;
	const char *pk;
	const char *row;
	int64_t		ver_us;
	const char *origin;
	bool		immediate;
	int64_t		txn_end;
	int64_t		replaces_us;	/* a correction's: the version it replaces (0: none) */
} ProtoChangeText;

void		proto_changes_begin(JsonOut *w, Buf *out);
void		proto_changes_add(JsonOut *w, const ProtoChangeText *c, int v);
void		proto_changes_end(JsonOut *w, bool more);
/* the "changes" array and "more" of an object left open */
void		proto_changes_array(JsonOut *w);
void		proto_changes_more(JsonOut *w, bool more);
/* Read into page (reset first): seqs must rise above after. */
int			proto_decode_changes(const char *s, size_t n, int64_t after, LinkPage *page,
								 char *err, size_t errlen);

/* rows: the rows as JSON text of objects; last: the last row's key */
void		proto_rows_begin(JsonOut *w, Buf *out);
void		proto_rows_add(JsonOut *w, const char *row, size_t len, int v);
void		proto_rows_end(JsonOut *w, bool more, const char *last, int v);
/* Read into page (reset first); *last: the key as canonical JSON text
 * (malloc'd), NULL if none. */
int			proto_decode_rows(const char *s, size_t n, LinkPage *page, char **last,
							  char *err, size_t errlen);

/* done */
void		proto_encode_done(Buf *out, long pruned);
int			proto_decode_done(const char *s, size_t n, long *pruned, char *err, size_t errlen);

/* errors: conflicts -1 when not asked for */
typedef struct
{
	long		count;
	HubError   *rows;			/* pk: JSON text */
	int			nrows;
	long		conflicts;
} ProtoErrors;

void		proto_encode_errors(Buf *out, long count, const HubError *rows, int nrows, long conflicts,
								int v);
int			proto_decode_errors(const char *s, size_t n, ProtoErrors *r, char *err, size_t errlen);

/* GET /api/sync/wait: wake is "change", "request" or "" */
typedef struct
{
	char		serve[32];
	int64_t		changes;
	int64_t		requests;
	char		wake[16];
} ProtoWait;

void		proto_encode_wait(Buf *out, const ProtoWait *w);
int			proto_decode_wait(const char *s, size_t n, ProtoWait *w, char *err, size_t errlen);

/* An error reply of serve ({"error", "status"}, http/http.c; "overtaken"
 * on an upload to send again): its message into msg. */
int			proto_decode_error(const char *s, size_t n, char *msg, size_t msglen, bool *overtaken);

#endif							/* SYNCQD_PROTO_H */
