/*
 * fuzz_proto.c — libFuzzer target over the decoder of POST /api/sync/data
 * (replicator/proto.c): every body a client can send goes through
 * proto_decode_request() before anything touches the hub, so it must take
 * any bytes without a memory error, undefined behaviour or a leak.
 *
 * Built by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) and run
 * for 60 s by tests/integration/fuzz_proto.sh, from the seed corpus
 * tests/fuzz/corpus/ with the dictionary tests/fuzz/proto.dict.
 *
 * Beyond the sanitizers, the decoder's promises are checked (a broken one
 * aborts, which libFuzzer reports as a finding):
 *   - a failure leaves rq empty (all zero) and err a non-empty string;
 *   - a success gives a known op, a UUID node id, and for each op the
 *     fields serve relies on: an upload's changes non-empty, of this node,
 *     in rising seq order after ack_seq; snapshots that proto_is_snapshot()
 *     accepts; limits and max in range; a rows table of 1 to 63 bytes.
 * Nothing is re-encoded: after a success the request is freed, so every
 * path, success or failure, must free all it took.
 */
#include "base/base.h"
#include "link/proto.h"

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
			CHECK(rq->max >= 0 && rq->max <= 1000);
			break;
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtoRequest rq;
	char		err[2048];

	memset(err, 0x55, sizeof(err));
	if (proto_decode_request((const char *) data, size, &rq, err, sizeof(err)) == 0)
	{
		check_request(&rq);
		proto_request_free(&rq);
		CHECK(all_zero(&rq, sizeof(rq)));
	}
	else
	{
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(err[0] != '\0');
		CHECK(all_zero(&rq, sizeof(rq)));
	}
	return 0;
}
