/*
 * proto.c — decoding a POST /api/sync/data request (docs/http.md).
 *
 * Everything a client sends is checked here, before a hub connection is
 * taken: the shape, every type, identifiers, positions, and each change's
 * JSON (change_init). A request that fails gets a 400 naming the first bad
 * field and changes nothing. The envelope is read with jansson; the pk and
 * row of a change travel as JSON text inside strings and are read by
 * syncqd's own exact-number reader, so numbers arrive as written.
 */
#include "base/base.h"
#include "link/proto.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* changed_at of a change: from year 1 to year 9999, in microseconds */
#define VER_US_MIN INT64_C(-62135596800000000)
#define VER_US_MAX INT64_C(253402300799999999)

static const char *const op_names[] = {
	[OP_HELLO] = "hello",
	[OP_UPLOAD] = "upload",
	[OP_SNAPSHOT] = "snapshot",
	[OP_CHANGES] = "changes",
	[OP_ROWS] = "rows",
	[OP_DONE] = "done",
	[OP_ERRORS] = "errors",
};

const char *
proto_op_name(ProtoOp op)
{
	return op_names[op];
}

bool
proto_is_uuid(const char *s)
{
	if (strlen(s) != NODE_ID_LEN)
		return false;
	for (int i = 0; i < NODE_ID_LEN; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/*
 * "xmin:xmax:xip,xip,..." as pg_snapshot prints it: numbers of at most 19
 * digits (an xid8 PostgreSQL reads), xmin <= xmax, each xip in
 * [xmin, xmax) and ascending.
 */
bool
proto_is_snapshot(const char *s)
{
	uint64_t	v[3] = {0, 0, 0},
				prev = 0;
	int			part = 0,
				digits = 0,
				nxip = 0;

	if (strlen(s) > 1024 * 1024)
		return false;
	for (;; s++)
	{
		if (isdigit((unsigned char) *s))
		{
			if (++digits > 19)
				return false;
			v[part] = v[part] * 10 + (uint64_t) (*s - '0');
			continue;
		}
		if (*s == ':' && part < 2 && digits > 0)
		{
			part++;
			digits = 0;
			if (part == 2 && v[0] > v[1])
				return false;
			continue;
		}
		if ((*s == ',' || *s == '\0') && part == 2)
		{
			if (digits == 0)
				return *s == '\0' && nxip == 0;
			if (v[2] < v[0] || v[2] >= v[1] || (nxip > 0 && v[2] <= prev))
				return false;
			prev = v[2];
			nxip++;
			v[2] = 0;
			digits = 0;
			if (*s == '\0')
				return true;
			continue;
		}
		return false;
	}
}

static int
bad(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return -1;
}

/* Fields: get one of a type, or NULL when absent; -1 if present but wrong. */
static int
get_string(json_t *o, const char *key, bool required, const char **out, char *err, size_t errlen)
{
	json_t	   *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (!json_is_string(v))
		return bad(err, errlen, "\"%s\" must be a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, errlen, "\"%s\" holds a NUL character", key);
	*out = json_string_value(v);
	return 0;
}

static int
get_int(json_t *o, const char *key, bool required, int64_t min, int64_t max, int64_t *out,
		char *err, size_t errlen)
{
	json_t	   *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (!json_is_integer(v))
		return bad(err, errlen, "\"%s\" must be an integer", key);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return bad(err, errlen, "\"%s\" is out of range", key);
	*out = json_integer_value(v);
	return 0;
}

static int
get_bool(json_t *o, const char *key, bool *out, char *err, size_t errlen)
{
	json_t	   *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(err, errlen, "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int
get_snapshot(json_t *o, const char *key, bool required, char **out, char *err, size_t errlen)
{
	const char *s;

	if (get_string(o, key, required, &s, err, errlen) < 0)
		return -1;
	if (s == NULL)
		return 0;
	if (!proto_is_snapshot(s))
		return bad(err, errlen, "\"%s\" is not a snapshot (xmin:xmax:xip,...)", key);
	*out = xstrdup(s);
	return 0;
}

/* One change of an upload. */
static int
decode_change(json_t *v, size_t i, const char *node_id, Change *c, char *err, size_t errlen)
{
	const char *table,
			   *op,
			   *pk,
			   *row,
			   *origin;
	int64_t		seq = 0,
				ver_us = 0;
	bool		immediate = false;
	char		e[512];

	if (!json_is_object(v))
	{
		snprintf(err, errlen, "changes[%zu] must be an object", i);
		return -1;
	}
	if (get_int(v, "seq", true, 1, INT64_MAX, &seq, e, sizeof(e)) < 0 ||
		get_string(v, "table", true, &table, e, sizeof(e)) < 0 ||
		get_string(v, "op", true, &op, e, sizeof(e)) < 0 ||
		get_string(v, "pk", true, &pk, e, sizeof(e)) < 0 ||
		get_string(v, "row", false, &row, e, sizeof(e)) < 0 ||
		get_int(v, "ver_us", true, VER_US_MIN, VER_US_MAX, &ver_us, e, sizeof(e)) < 0 ||
		get_string(v, "origin", true, &origin, e, sizeof(e)) < 0 ||
		get_bool(v, "immediate", &immediate, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "changes[%zu]: %s", i, e);
		return -1;
	}
	if (table[0] == '\0' || strlen(table) > 63)
	{
		snprintf(err, errlen, "changes[%zu]: \"table\" must be a table name of 1 to 63 bytes", i);
		return -1;
	}
	if (strcmp(origin, node_id) != 0)
	{
		snprintf(err, errlen, "changes[%zu]: origin %.40s is not this node (%s); a node uploads only its own changes",
				 i, origin, node_id);
		return -1;
	}
	if (change_init(c, seq, table, op, pk, row, ver_us, origin, immediate, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "changes[%zu]: %s", i, e);
		return -1;
	}
	return 0;
}

/*
 * Decode and check a request body. Returns 0, or -1 with err naming the
 * first thing wrong (rq is then empty).
 */
int
proto_decode_request(const char *body, size_t len, ProtoRequest *rq, char *err, size_t errlen)
{
	json_error_t je;
	json_t	   *root;
	const char *op,
			   *node;
	int64_t		v = PROTO_VERSION,
				n;
	char		e[512];

	memset(rq, 0, sizeof(*rq));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
	{
		snprintf(err, errlen, "the body is not JSON: %s at line %d, column %d", je.text, je.line, je.column);
		return -1;
	}
	if (!json_is_object(root))
	{
		snprintf(err, errlen, "the body must be a JSON object");
		goto fail;
	}
	if (get_int(root, "v", false, 0, INT32_MAX, &v, err, errlen) < 0 ||
		get_string(root, "op", true, &op, err, errlen) < 0 ||
		get_string(root, "node_id", true, &node, err, errlen) < 0)
		goto fail;
	if (v != PROTO_VERSION)
	{
		snprintf(err, errlen, "protocol version %" PRId64 " is not spoken here (this serve speaks %d)", v, PROTO_VERSION);
		goto fail;
	}
	for (n = 0; n < (int64_t) (sizeof(op_names) / sizeof(op_names[0])); n++)
		if (strcmp(op, op_names[n]) == 0)
			break;
	if (n == (int64_t) (sizeof(op_names) / sizeof(op_names[0])))
	{
		snprintf(err, errlen, "unknown op \"%.40s\" (hello, upload, snapshot, changes, rows, done or errors)", op);
		goto fail;
	}
	rq->op = (ProtoOp) n;
	if (!proto_is_uuid(node))
	{
		snprintf(err, errlen, "\"node_id\" must be a UUID");
		goto fail;
	}
	snprintf(rq->node_id, sizeof(rq->node_id), "%s", node);

	switch (rq->op)
	{
		case OP_HELLO:
			if (get_bool(root, "retry_errors", &rq->retry_errors, err, errlen) < 0)
				goto fail;
			break;
		case OP_UPLOAD:
			{
				const char *digest;
				json_t	   *arr = json_object_get(root, "changes");
				char	   *end;
				size_t		i;
				json_t	   *c;

				if (get_int(root, "ack_seq", true, 0, INT64_MAX, &rq->ack_seq, err, errlen) < 0 ||
					get_string(root, "ack_digest", true, &digest, err, errlen) < 0)
					goto fail;
				if (digest[0] == '\0' || strlen(digest) > 16 || strspn(digest, "0123456789abcdef") != strlen(digest))
				{
					snprintf(err, errlen, "\"ack_digest\" must be 1 to 16 lowercase hex digits");
					goto fail;
				}
				rq->ack_digest = strtoull(digest, &end, 16);
				if (!json_is_array(arr) || json_array_size(arr) == 0)
				{
					snprintf(err, errlen, "\"changes\" must be a non-empty array");
					goto fail;
				}
				json_array_foreach(arr, i, c)
				{
					Change	   *ch = changes_push(&rq->changes);

					if (decode_change(c, i, rq->node_id, ch, err, errlen) < 0)
					{
						rq->changes.n--;
						goto fail;
					}
					if (i > 0 && ch->seq <= rq->changes.c[i - 1].seq)
					{
						snprintf(err, errlen, "changes[%zu]: seq %" PRId64 " does not follow %" PRId64,
								 i, ch->seq, rq->changes.c[i - 1].seq);
						goto fail;
					}
				}
				if (rq->changes.c[0].seq <= rq->ack_seq)
				{
					snprintf(err, errlen, "changes[0]: seq %" PRId64 " is not after ack_seq %" PRId64,
							 rq->changes.c[0].seq, rq->ack_seq);
					goto fail;
				}
				break;
			}
		case OP_SNAPSHOT:
			if (get_snapshot(root, "position", false, &rq->position, err, errlen) < 0)
				goto fail;
			break;
		case OP_CHANGES:
			n = 5000;
			if (get_snapshot(root, "position", true, &rq->position, err, errlen) < 0 ||
				get_snapshot(root, "target", true, &rq->target, err, errlen) < 0 ||
				get_int(root, "after", false, 0, INT64_MAX, &rq->after, err, errlen) < 0 ||
				get_int(root, "limit", false, 1, PROTO_LIMIT_MAX, &n, err, errlen) < 0)
				goto fail;
			rq->limit = (int) n;
			break;
		case OP_ROWS:
			{
				const char *t,
						   *after;

				n = 5000;
				if (get_string(root, "table", true, &t, err, errlen) < 0 ||
					get_string(root, "after", false, &after, err, errlen) < 0 ||
					get_int(root, "limit", false, 1, PROTO_LIMIT_MAX, &n, err, errlen) < 0)
					goto fail;
				rq->limit = (int) n;
				if (t[0] == '\0' || strlen(t) > 63)
				{
					snprintf(err, errlen, "\"table\" must be a table name of 1 to 63 bytes");
					goto fail;
				}
				rq->table = xstrdup(t);
				if (after)
				{
					JObject		o;

					if (jobj_parse(after, strlen(after), &o, e, sizeof(e)) < 0)
					{
						snprintf(err, errlen, "\"after\" is not a JSON object: %s", e);
						goto fail;
					}
					jobj_free(&o);
					rq->after_pk = xstrdup(after);
				}
				break;
			}
		case OP_DONE:
			if (get_snapshot(root, "position", true, &rq->position, err, errlen) < 0)
				goto fail;
			break;
		case OP_ERRORS:
			n = 20;
			if (get_int(root, "max", false, 0, 1000, &n, err, errlen) < 0 ||
				get_bool(root, "conflicts", &rq->conflicts, err, errlen) < 0)
				goto fail;
			rq->max = (int) n;
			break;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	proto_request_free(rq);
	return -1;
}

void
proto_request_free(ProtoRequest *rq)
{
	changes_free(&rq->changes);
	free(rq->position);
	free(rq->target);
	free(rq->table);
	free(rq->after_pk);
	memset(rq, 0, sizeof(*rq));
}
