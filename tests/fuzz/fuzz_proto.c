/*
 * fuzz_proto.c — libFuzzer target over the codec of POST /api/sync/data
 * and GET /api/sync/wait (replicator/link/proto.c, proto_reply.c): serve
 * decodes every request a client can send, and a client decodes every
 * reply serve sends, so each decoder must take any bytes without a memory
 * error, undefined behaviour or a leak.
 *
 * Built by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) and run
 * for 60 s by tests/integration/fuzz_proto.sh, from the seed corpus
 * tests/fuzz/corpus/ (requests and replies) with the dictionary
 * tests/fuzz/proto.dict.
 *
 * Every input goes to every decoder (the request, each reply, the error
 * reply). Beyond the sanitizers, the codec's promises are checked (a broken
 * one aborts, which libFuzzer reports as a finding):
 *   - a failure leaves the output empty and err a non-empty string;
 *   - a request decoded gives a known op, a UUID node id, and for each op
 *     the fields serve relies on: an upload's changes non-empty, of this
 *     node, in rising seq order after ack_seq; snapshots that
 *     proto_is_snapshot() accepts; limits and max in range; a rows table
 *     of 1 to 63 bytes;
 *   - whatever decodes, encoded again (with the encoder the client or
 *     serve uses), decodes again, and encodes to the very same bytes:
 *     decode → encode → decode is the identity, requests and replies;
 *   - an upload decoded goes on through the hub's value encoding
 *     (fuzz_hub.c): each run of changes the hub would apply is one JSON
 *     array of one object per change with exactly its columns.
 */
#include "base/base.h"
#include "base/buf.h"
#include "link/proto.h"
#include "model/json.h"

#include "fuzz_hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_proto: broken promise: %s (line %d)\n", #cond, __LINE__); \
			abort(); \
		} \
	} while (0)

static bool
all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* err after a failure: a non-empty string within its buffer */
static void
check_err(const char *err, size_t len)
{
	CHECK(memchr(err, '\0', len) != NULL);
	CHECK(err[0] != '\0');
}

/* Two encodings of the same message are the same bytes. */
static void
check_same(const Buf *a, const Buf *b)
{
	CHECK(a->len == b->len);
	CHECK(a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- requests ---------------------------------------------------------------- */

static void
check_request(const ProtoRequest *rq)
{
	CHECK(rq->op >= OP_HELLO && rq->op <= OP_ERRORS);
	CHECK(proto_op_name(rq->op) != NULL);
	CHECK(proto_is_uuid(rq->node_id));
	switch (rq->op)
	{
		case OP_HELLO:
			break;
		case OP_UPLOAD:
			CHECK(rq->ack_seq >= 0);
			CHECK(rq->changes.n > 0 && rq->changes.n <= rq->changes.cap);
			for (int i = 0; i < rq->changes.n; i++)
			{
				const Change *c = &rq->changes.c[i];

				CHECK(c->seq > (i ? rq->changes.c[i - 1].seq : rq->ack_seq));
				CHECK(c->table && c->table[0] && strlen(c->table) <= 63);
				CHECK(c->op == 'I' || c->op == 'U' || c->op == 'D');
				CHECK(c->pk.n > 0 && c->pk_json != NULL);
				CHECK((c->op == 'D') == !c->has_row);
				CHECK(!c->has_row || c->row_json != NULL);
				CHECK(c->changed_at != NULL);
				CHECK(strcmp(c->origin, rq->node_id) == 0);
			}
			break;
		case OP_SNAPSHOT:
			CHECK(rq->position == NULL || proto_is_snapshot(rq->position));
			break;
		case OP_CHANGES:
			CHECK(rq->position && proto_is_snapshot(rq->position));
			CHECK(rq->target && proto_is_snapshot(rq->target));
			CHECK(rq->after >= 0);
			CHECK(rq->limit >= 1 && rq->limit <= PROTO_LIMIT_MAX);
			break;
		case OP_ROWS:
			CHECK(rq->table && rq->table[0] && strlen(rq->table) <= 63);
			CHECK(rq->limit >= 1 && rq->limit <= PROTO_LIMIT_MAX);
			break;
		case OP_DONE:
			CHECK(rq->position && proto_is_snapshot(rq->position));
			break;
		case OP_ERRORS:
			CHECK(rq->max >= 0 && rq->max <= PROTO_ERRORS_MAX);
			CHECK(rq->nseqs >= 0 && rq->nseqs <= PROTO_ERRORS_MAX);
			CHECK((rq->nseqs == 0) == (rq->seqs == NULL));
			for (int i = 0; i < rq->nseqs; i++)
				CHECK(rq->seqs[i] > (i ? rq->seqs[i - 1] : 0));
			break;
	}
}

static void
fuzz_request(const char *data, size_t size)
{
	ProtoRequest rq,
				again;
	Buf			e1 = {0},
				e2 = {0};
	char		err[2048];

	memset(err, 0x55, sizeof(err));
	if (proto_decode_request(data, size, &rq, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(all_zero(&rq, sizeof(rq)));
		return;
	}
	/* an upload's pk and rows, checked by the decoder, read as serve reads
	 * them page by page: that never fails */
	CHECK(proto_upload_rows(&rq, 0, rq.changes.n, err, sizeof(err)) == 0);
	check_request(&rq);
	proto_encode_request(&rq, &e1);
	CHECK(proto_decode_request(e1.p, e1.len, &again, err, sizeof(err)) == 0);
	CHECK(proto_upload_rows(&again, 0, again.changes.n, err, sizeof(err)) == 0);
	proto_encode_request(&again, &e2);
	check_same(&e1, &e2);
	if (again.op == OP_UPLOAD)
		fuzz_hub_upload(&again.changes);
	proto_request_free(&again);
	proto_request_free(&rq);
	CHECK(all_zero(&rq, sizeof(rq)));
	buf_free(&e1);
	buf_free(&e2);
}

/* ---- replies: each decoded, encoded, decoded, encoded -------------------------- */

static void
encode_hello(const ProtoHello *r, Buf *out)
{
	proto_encode_hello(out, r->release, r->hub_node_id, r->tables, r->ntables, r->digest,
					   r->retried, r->conflicts, false);
}

static void
fuzz_hello(const char *data, size_t size)
{
	ProtoHello	r,
				again;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_hello(data, size, &r, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(all_zero(&r, sizeof(r)));
		return;
	}
	CHECK(proto_is_uuid(r.hub_node_id));
	for (int i = 1; i < r.ntables; i++)
		CHECK(strcmp(r.tables[i - 1].name, r.tables[i].name) < 0);
	encode_hello(&r, &e1);
	CHECK(proto_decode_hello(e1.p, e1.len, &again, err, sizeof(err)) == 0);
	encode_hello(&again, &e2);
	check_same(&e1, &e2);
	proto_hello_free(&again);
	proto_hello_free(&r);
	buf_free(&e1);
	buf_free(&e2);
}

static void
encode_uploaded(const ProtoUploaded *r, Buf *out)
{
	proto_encode_uploaded(out, NULL, &r->st, r->marks, r->nmarks, r->refused, r->nrefused, r->refused_more,
						  r->renames, r->nrenames, r->met, r->nmet);
}

static void
fuzz_uploaded(const char *data, size_t size)
{
	ProtoUploaded r,
				again;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_uploaded(data, size, &r, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(all_zero(&r, sizeof(r)));
		return;
	}
	encode_uploaded(&r, &e1);
	CHECK(proto_decode_uploaded(e1.p, e1.len, &again, err, sizeof(err)) == 0);
	encode_uploaded(&again, &e2);
	check_same(&e1, &e2);
	proto_uploaded_free(&again);
	proto_uploaded_free(&r);
	buf_free(&e1);
	buf_free(&e2);
}

static void
fuzz_snapshot(const char *data, size_t size)
{
	char	   *snap,
			   *snap2;
	bool		behind,
				behind2;
	int64_t		clock,
				clock2,
				wall,
				wall2;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	ProtoFolded f;
	LinkPage	page = {0};
	bool		has_page = false;

	/* a reply's first key, as read for a hello folded into its request */
	if (proto_decode_folded(data, size, &f) == 0)
		CHECK(f.on || (!f.tables_changed && f.retried == 0 && f.conflicts == 0));
	/* the snapshot with a first page of changes */
	if (proto_decode_snapshot_page(data, size, &snap, &behind, &clock, &wall, &page, &has_page,
								   err, sizeof(err)) < 0)
		CHECK(snap == NULL && !has_page && page.changes.n == 0);
	else
	{
		for (int i = 1; i < page.changes.n; i++)
			CHECK(page.changes.c[i - 1].seq < page.changes.c[i].seq);
		free(snap);
	}
	link_page_free(&page);
	if (proto_decode_snapshot(data, size, &snap, &behind, &clock, &wall, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(snap == NULL);
		return;
	}
	CHECK(proto_is_snapshot(snap));
	proto_encode_snapshot(&e1, snap, behind, clock, wall);
	CHECK(proto_decode_snapshot(e1.p, e1.len, &snap2, &behind2, &clock2, &wall2, err, sizeof(err)) == 0);
	CHECK(clock2 == clock);
	CHECK(wall2 == wall);
	proto_encode_snapshot(&e2, snap2, behind2, clock2, wall2);
	check_same(&e1, &e2);
	free(snap);
	free(snap2);
	buf_free(&e1);
	buf_free(&e2);
}

/* A page of changes written as serve writes one (pk and row as text). */
static void
encode_changes(const LinkPage *p, Buf *out)
{
	JsonOut		w;
	Buf			pk = {0},
				row = {0};

	proto_changes_begin(&w, out);
	for (int i = 0; i < p->changes.n; i++)
	{
		const Change *c = &p->changes.c[i];

		buf_reset(&pk);
		buf_reset(&row);
		buf_json_object_tagged(&pk, &c->pk);
		if (c->has_row)
			buf_json_object_tagged(&row, &c->row);
		proto_changes_add(&w, &(ProtoChangeText) {
			.seq = c->seq, .table = c->table, .op = c->op, .pk = pk.p,
			.row = c->has_row ? row.p : NULL, .ver_us = c->ver_us, .origin = c->origin,
			.immediate = c->immediate, .txn_end = p->txn_end[i], .replaces_us = c->replaces_us,
		}, PROTO_VERSION);
	}
	proto_changes_end(&w, p->more);
	buf_free(&pk);
	buf_free(&row);
}

static void
fuzz_changes(const char *data, size_t size)
{
	LinkPage	p = {0},
				again = {0};
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_changes(data, size, INT64_MIN, &p, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(p.changes.n == 0 && p.nrows == 0);
	}
	else
	{
		for (int i = 1; i < p.changes.n; i++)
			CHECK(p.changes.c[i - 1].seq < p.changes.c[i].seq);
		encode_changes(&p, &e1);
		CHECK(proto_decode_changes(e1.p, e1.len, INT64_MIN, &again, err, sizeof(err)) == 0);
		encode_changes(&again, &e2);
		check_same(&e1, &e2);
	}
	link_page_free(&again);
	link_page_free(&p);
	buf_free(&e1);
	buf_free(&e2);
}

/* A page of rows written as serve writes one (rows as text). */
static void
encode_rows(const LinkPage *p, const char *last, Buf *out)
{
	JsonOut		w;
	Buf			row = {0};

	proto_rows_begin(&w, out);
	for (int i = 0; i < p->nrows; i++)
	{
		buf_reset(&row);
		buf_json_object_tagged(&row, &p->rows[i]);
		proto_rows_add(&w, row.p, row.len, PROTO_VERSION);
	}
	proto_rows_end(&w, p->more, last, PROTO_VERSION);
	buf_free(&row);
}

static void
fuzz_rows(const char *data, size_t size)
{
	LinkPage	p = {0},
				again = {0};
	char	   *last = NULL,
			   *last2 = NULL;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_rows(data, size, &p, &last, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(p.nrows == 0 && last == NULL);
	}
	else
	{
		CHECK(!p.more || last != NULL);
		encode_rows(&p, last, &e1);
		CHECK(proto_decode_rows(e1.p, e1.len, &again, &last2, err, sizeof(err)) == 0);
		encode_rows(&again, last2, &e2);
		check_same(&e1, &e2);
	}
	free(last);
	free(last2);
	link_page_free(&again);
	link_page_free(&p);
	buf_free(&e1);
	buf_free(&e2);
}

static void
fuzz_done(const char *data, size_t size)
{
	long		pruned,
				pruned2;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_done(data, size, &pruned, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		return;
	}
	proto_encode_done(&e1, pruned);
	CHECK(proto_decode_done(e1.p, e1.len, &pruned2, err, sizeof(err)) == 0);
	proto_encode_done(&e2, pruned2);
	check_same(&e1, &e2);
	buf_free(&e1);
	buf_free(&e2);
}

static void
fuzz_errors(const char *data, size_t size)
{
	ProtoErrors r,
				again;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_errors(data, size, &r, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		CHECK(all_zero(&r, sizeof(r)));
		return;
	}
	proto_encode_errors(&e1, r.count, r.rows, r.nrows, r.conflicts, PROTO_VERSION);
	CHECK(proto_decode_errors(e1.p, e1.len, &again, err, sizeof(err)) == 0);
	proto_encode_errors(&e2, again.count, again.rows, again.nrows, again.conflicts, PROTO_VERSION);
	check_same(&e1, &e2);
	hub_errors_free(again.rows, again.nrows);
	hub_errors_free(r.rows, r.nrows);
	buf_free(&e1);
	buf_free(&e2);
}

static void
fuzz_wait(const char *data, size_t size)
{
	ProtoWait	w,
				again;
	Buf			e1 = {0},
				e2 = {0};
	char		err[1024];

	if (proto_decode_wait(data, size, &w, err, sizeof(err)) < 0)
	{
		check_err(err, sizeof(err));
		return;
	}
	proto_encode_wait(&e1, &w);
	CHECK(proto_decode_wait(e1.p, e1.len, &again, err, sizeof(err)) == 0);
	proto_encode_wait(&e2, &again);
	check_same(&e1, &e2);
	buf_free(&e1);
	buf_free(&e2);
}

static void
fuzz_error(const char *data, size_t size)
{
	char		msg[512];
	bool		overtaken;

	memset(msg, 0x55, sizeof(msg));
	if (proto_decode_error(data, size, msg, sizeof(msg), &overtaken) == 0)
		CHECK(msg[0] != '\0');
	CHECK(memchr(msg, '\0', sizeof(msg)) != NULL);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;

	fuzz_request(s, size);
	fuzz_hello(s, size);
	fuzz_uploaded(s, size);
	fuzz_snapshot(s, size);
	fuzz_changes(s, size);
	fuzz_rows(s, size);
	fuzz_done(s, size);
	fuzz_errors(s, size);
	fuzz_wait(s, size);
	fuzz_error(s, size);
	return 0;
}
