/*
 * proto.c — the requests of POST /api/sync/data, both ways (proto.h;
 * docs/http.md): the HTTP link writes them (link_http.c), serve reads them
 * (http/serve_data.c).
 *
 *   proto_encode_request   write a request
 *   proto_upload_begin, proto_upload_change, proto_upload_end
 *                          write an upload a page at a time
 *   proto_decode_request   read and check one
 *   proto_request_free     free what it read
 *   proto_op_name, proto_is_uuid, proto_is_snapshot
 *
 * Everything a client sends is checked here, before a hub connection is
 * taken: the JSON first (the whole body), then the shape, every type,
 * identifiers, positions, and each change (change_take). A request that
 * fails gets a 400 naming the first bad field and changes nothing. Rows
 * and keys are read by the one codec, so numbers arrive as written.
 */
#include "base/base.h"
#include "base/buf.h"
#include "link/proto.h"
#include "model/json.h"

#include <ctype.h>
#include <inttypes.h>
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


/* ---- an object's members, read whole first --------------------------------- */

#define FIELDS_MAX 32

/* One member of an object: its key and its value's text (checked JSON). */
typedef struct
{
	char	   *key;
	const char *val;
	size_t		len;
	JsonKind	kind;
} Field;

typedef struct
{
	Field		f[FIELDS_MAX];
	int			n;
} Fields;

static void
fields_free(Fields *fs)
{
	for (int i = 0; i < fs->n; i++)
		free(fs->f[i].key);
	fs->n = 0;
}

/*
 * Read the object at in into fs: each member's key and value text. A key
 * twice is refused (as JSON parsers that reject duplicates do). -1 with in->err
 * for text that is not JSON, or with err for anything else.
 */
static int
read_fields(JsonIn *in, Fields *fs, char *err, size_t errlen)
{
	int			rc;

	fs->n = 0;
	if (jin_object(in) < 0)
		return -1;
	while ((rc = jin_key(in)) > 0)
	{
		Field	   *f;

		for (int i = 0; i < fs->n; i++)
			if (strcmp(fs->f[i].key, in->key.p) == 0)
			{
				snprintf(err, errlen, "duplicate key \"%.64s\"", in->key.p);
				return -1;
			}
		if (fs->n == FIELDS_MAX)
		{
			snprintf(err, errlen, "an object of more than %d keys", FIELDS_MAX);
			return -1;
		}
		f = &fs->f[fs->n++];
		f->key = xstrdup(in->key.p);
		f->kind = jin_peek(in);
		if (jin_span(in, &f->val, &f->len) < 0)
			return -1;
	}
	return rc;
}

static const Field *
field(const Fields *fs, const char *key)
{
	for (int i = 0; i < fs->n; i++)
		if (strcmp(fs->f[i].key, key) == 0)
			return &fs->f[i];
	return NULL;
}

/* A field absent or null. */
static bool
absent(const Field *f)
{
	return f == NULL || f->kind == JK_NULL;
}

static int
bad(char *err, size_t errlen, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what);
	return -1;
}

/* A string field, decoded into out (out->p NULL when absent); -1 if
 * present but not a string, or missing when required. */
static int
get_string(const Fields *fs, const char *key, bool required, Buf *out, char *err, size_t errlen)
{
	const Field *f = field(fs, key);
	JsonIn		in;
	int			rc;

	buf_free(out);
	if (absent(f))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (f->kind != JK_STRING)
		return bad(err, errlen, "\"%s\" must be a string", key);
	jin_init(&in, f->val, f->len, true);
	rc = jin_string(&in, out);
	if (rc == 0 && out->p == NULL)
		buf_putn(out, "", 0);
	if (rc < 0)
	{
		snprintf(err, errlen, "\"%s\": %s", key, in.err);
		buf_free(out);
	}
	jin_free(&in);
	return rc;
}

static int
get_int(const Fields *fs, const char *key, bool required, int64_t min, int64_t max, int64_t *out,
		char *err, size_t errlen)
{
	const Field *f = field(fs, key);
	JsonIn		in;
	int64_t		v;
	int			rc;

	if (absent(f))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (f->kind != JK_NUMBER || memchr(f->val, '.', f->len) || memchr(f->val, 'e', f->len) ||
		memchr(f->val, 'E', f->len))
		return bad(err, errlen, "\"%s\" must be an integer", key);
	jin_init(&in, f->val, f->len, true);
	rc = jin_int(&in, &v);
	jin_free(&in);
	if (rc < 0 || v < min || v > max)
		return bad(err, errlen, "\"%s\" is out of range", key);
	*out = v;
	return 0;
}

static int
get_bool(const Fields *fs, const char *key, bool *out, char *err, size_t errlen)
{
	const Field *f = field(fs, key);

	if (absent(f))
		return 0;
	if (f->kind != JK_BOOL)
		return bad(err, errlen, "\"%s\" must be true or false", key);
	*out = f->val[0] == 't';
	return 0;
}

static int
get_snapshot(const Fields *fs, const char *key, bool required, char **out, char *err, size_t errlen)
{
	Buf			s = {0};

	if (get_string(fs, key, required, &s, err, errlen) < 0)
		return -1;
	if (s.p == NULL)
		return 0;
	if (!proto_is_snapshot(s.p))
	{
		buf_free(&s);
		return bad(err, errlen, "\"%s\" is not a snapshot (xmin:xmax:xip,...)", key);
	}
	*out = s.p;
	return 0;
}

/*
 * A row field: a JSON object, into o; *has false when absent or null. In
 * protocol 1 (v) it is a string holding the object's text.
 */
static int
get_row(const Fields *fs, const char *key, bool required, int v, JObject *o, bool *has,
		char *err, size_t errlen)
{
	const Field *f = field(fs, key);
	Buf			text = {0};
	JsonIn		in;
	int			rc;

	memset(o, 0, sizeof(*o));
	*has = false;
	if (absent(f))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (v < 2)
	{
		if (get_string(fs, key, required, &text, err, errlen) < 0)
			return -1;
		jin_init(&in, text.p, text.len, true);
		if (jin_peek(&in) != JK_OBJECT)
		{
			jin_free(&in);
			buf_free(&text);
			return bad(err, errlen, "\"%s\" must hold the text of a JSON object (protocol 1)", key);
		}
	}
	else if (f->kind != JK_OBJECT)
		return bad(err, errlen, required ? "\"%s\" must be a JSON object" :
				   "\"%s\" must be a JSON object or null", key);
	else
		jin_init(&in, f->val, f->len, true);
	rc = jin_row(&in, o);
	if (rc == 0)
		rc = jin_end(&in);
	if (rc < 0)
	{
		snprintf(err, errlen, "\"%s\": %s", key, in.err);
		jobj_free(o);
		memset(o, 0, sizeof(*o));
	}
	jin_free(&in);
	buf_free(&text);
	*has = rc == 0;
	return rc;
}

/*
 * The same for protocol 2, only checked: the object's text (in the body)
 * into *p, *len, its number of fields into *nfields; proto_upload_rows
 * reads it when the hub is about to apply it.
 */
static int
check_row(const Fields *fs, const char *key, bool required, const char **p, size_t *len,
		  int *nfields, bool *has, char *err, size_t errlen)
{
	const Field *f = field(fs, key);
	JsonIn		in;
	int			rc;

	*p = NULL;
	*len = 0;
	*nfields = 0;
	*has = false;
	if (absent(f))
		return required ? bad(err, errlen, "\"%s\" is missing", key) : 0;
	if (f->kind != JK_OBJECT)
		return bad(err, errlen, required ? "\"%s\" must be a JSON object" :
				   "\"%s\" must be a JSON object or null", key);
	jin_init(&in, f->val, f->len, true);
	rc = jin_row_check(&in, nfields);
	if (rc == 0)
		rc = jin_end(&in);
	if (rc < 0)
		snprintf(err, errlen, "\"%s\": %s", key, in.err);
	jin_free(&in);
	*p = f->val;
	*len = f->len;
	*has = rc == 0;
	return rc;
}

/* ---- a request, read ---------------------------------------------------------- */

/*
 * One change of an upload, at in (an element of "changes"). In protocol 2
 * its pk and row are only checked, and their text kept in *rows for
 * proto_upload_rows; in protocol 1 they are read at once.
 */
static int
decode_change(JsonIn *in, size_t i, int v, const char *node_id, Change *c, ProtoRows *rows,
			  char *err, size_t errlen)
{
	Fields		fs = {0};
	Buf			table = {0},
				op = {0},
				origin = {0};
	JObject		pk,
				row;
	bool		has_pk = false,
				has_row = false,
				immediate = false;
	int64_t		seq = 0,
				ver_us = 0;
	char		e[512] = "";
	int			rc = -1,
				pk_fields = 0,
				row_fields = 0;

	memset(&pk, 0, sizeof(pk));
	memset(&row, 0, sizeof(row));
	if (jin_peek(in) != JK_OBJECT)
	{
		snprintf(err, errlen, "changes[%zu] must be an object", i);
		jin_skip(in);
		return -1;
	}
	memset(rows, 0, sizeof(*rows));
	if (read_fields(in, &fs, e, sizeof(e)) < 0 ||
		get_int(&fs, "seq", true, 1, INT64_MAX, &seq, e, sizeof(e)) < 0 ||
		get_string(&fs, "table", true, &table, e, sizeof(e)) < 0 ||
		get_string(&fs, "op", true, &op, e, sizeof(e)) < 0 ||
		(v < 2 ? get_row(&fs, "pk", true, v, &pk, &has_pk, e, sizeof(e)) :
		 check_row(&fs, "pk", true, &rows->pk, &rows->pk_len, &pk_fields, &has_pk, e, sizeof(e))) < 0 ||
		(v < 2 ? get_row(&fs, "row", false, v, &row, &has_row, e, sizeof(e)) :
		 check_row(&fs, "row", false, &rows->row, &rows->row_len, &row_fields, &has_row, e,
				   sizeof(e))) < 0 ||
		get_int(&fs, "ver_us", true, VER_US_MIN, VER_US_MAX, &ver_us, e, sizeof(e)) < 0 ||
		get_string(&fs, "origin", true, &origin, e, sizeof(e)) < 0 ||
		get_bool(&fs, "immediate", &immediate, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "changes[%zu]: %s", i, e[0] ? e : in->err);
		goto out;
	}
	if (table.p[0] == '\0' || table.len > 63)
	{
		snprintf(err, errlen, "changes[%zu]: \"table\" must be a table name of 1 to 63 bytes", i);
		goto out;
	}
	if (strcmp(origin.p, node_id) != 0)
	{
		snprintf(err, errlen, "changes[%zu]: origin %.40s is not this node (%s); a node uploads only its own changes",
				 i, origin.p, node_id);
		goto out;
	}
	if (v < 2)
	{
		rc = change_take(c, seq, table.p, op.p, &pk, has_row ? &row : NULL, ver_us, origin.p,
						 immediate, e, sizeof(e));
		has_row = false;
	}
	else
	{
		rc = change_take_parts(c, seq, table.p, op.p, pk_fields, has_row, ver_us, origin.p,
							   immediate, e, sizeof(e));
		if (!has_row || (rc == 0 && c->op == SYNCQ_OP_DELETE))
		{
			rows->row = NULL;	/* a delete's row says nothing */
			rows->row_len = 0;
		}
		has_row = false;		/* nothing was parsed */
	}
	if (rc < 0)
		snprintf(err, errlen, "changes[%zu]: %s", i, e);
out:
	jobj_free(&pk);
	if (has_row)
		jobj_free(&row);
	buf_free(&table);
	buf_free(&op);
	buf_free(&origin);
	fields_free(&fs);
	return rc;
}

/* A digest as the protocol writes it: 1 to 16 lowercase hex digits (s
 * NULL: none), into *v. */
bool
proto_hex64(const char *s, uint64_t *v)
{
	size_t		len = s ? strlen(s) : 0;

	if (len == 0 || len > 16 || strspn(s, "0123456789abcdef") != len)
		return false;
	*v = strtoull(s, NULL, 16);
	return true;
}

/* An upload's own fields, then its changes (the array's text in f). */
static int
decode_upload(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	const Field *f = field(fs, "changes");
	Buf			digest = {0};
	JsonIn		in;
	size_t		i = 0;
	int			rc;

	if (get_int(fs, "ack_seq", true, 0, INT64_MAX, &rq->ack_seq, err, errlen) < 0 ||
		get_int(fs, "now", false, INT64_MIN, INT64_MAX, &rq->now_us, err, errlen) < 0 ||
		get_string(fs, "ack_digest", true, &digest, err, errlen) < 0)
		return -1;
	if (!proto_hex64(digest.p, &rq->ack_digest))
	{
		buf_free(&digest);
		return bad(err, errlen, "%s", "\"ack_digest\" must be 1 to 16 lowercase hex digits");
	}
	buf_free(&digest);
	if (f == NULL || f->kind != JK_ARRAY)
		return bad(err, errlen, "%s", "\"changes\" must be a non-empty array");
	jin_init(&in, f->val, f->len, true);
	jin_array(&in);
	while ((rc = jin_item(&in)) > 0)
	{
		Change	   *ch = changes_push(&rq->changes);

		if (rq->caprows < rq->changes.cap)
		{
			rq->caprows = rq->changes.cap;
			rq->rows = xrealloc(rq->rows, (size_t) rq->caprows * sizeof(ProtoRows));
		}
		if (decode_change(&in, i, rq->v, rq->node_id, ch, &rq->rows[i], err, errlen) < 0)
		{
			rq->changes.n--;
			rc = -1;
			break;
		}
		if (i > 0 && ch->seq <= rq->changes.c[i - 1].seq)
		{
			snprintf(err, errlen, "changes[%zu]: seq %" PRId64 " does not follow %" PRId64,
					 i, ch->seq, rq->changes.c[i - 1].seq);
			rc = -1;
			break;
		}
		i++;
	}
	jin_free(&in);
	if (rc < 0)
		return -1;
	if (rq->changes.n == 0)
		return bad(err, errlen, "%s", "\"changes\" must be a non-empty array");
	if (rq->changes.c[0].seq <= rq->ack_seq)
	{
		snprintf(err, errlen, "changes[0]: seq %" PRId64 " is not after ack_seq %" PRId64,
				 rq->changes.c[0].seq, rq->ack_seq);
		return -1;
	}
	return 0;
}

static int
decode_changes_op(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	int64_t		n = 5000;

	if (get_snapshot(fs, "position", true, &rq->position, err, errlen) < 0 ||
		get_snapshot(fs, "target", true, &rq->target, err, errlen) < 0 ||
		get_int(fs, "after", false, 0, INT64_MAX, &rq->after, err, errlen) < 0 ||
		get_int(fs, "limit", false, 1, PROTO_LIMIT_MAX, &n, err, errlen) < 0)
		return -1;
	rq->limit = (int) n;
	return 0;
}

static int
decode_rows_op(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	Buf			t = {0},
				k = {0};
	JObject		after;
	bool		has_after;
	int64_t		n = 5000;

	if (get_string(fs, "table", true, &t, err, errlen) < 0 ||
		get_int(fs, "limit", false, 1, PROTO_LIMIT_MAX, &n, err, errlen) < 0 ||
		get_row(fs, "after", false, rq->v, &after, &has_after, err, errlen) < 0)
	{
		buf_free(&t);
		return -1;
	}
	rq->limit = (int) n;
	if (t.p[0] == '\0' || t.len > 63)
	{
		buf_free(&t);
		if (has_after)
			jobj_free(&after);
		return bad(err, errlen, "%s", "\"table\" must be a table name of 1 to 63 bytes");
	}
	rq->table = t.p;
	if (has_after)
	{
		buf_json_object(&k, &after);
		jobj_free(&after);
		rq->after_pk = k.p;
	}
	return 0;
}

/*
 * An array of seqs (errors: the set-aside changes asked about), into
 * rq->seqs: at most PROTO_ERRORS_MAX, each above the one before it.
 */
static int
get_seqs(const Fields *fs, const char *key, ProtoRequest *rq, char *err, size_t errlen)
{
	const Field *f = field(fs, key);
	JsonIn		in;
	bool		said = false;
	int			rc;

	if (absent(f))
		return 0;
	if (f->kind != JK_ARRAY)
		return bad(err, errlen, "\"%s\" must be an array of seqs", key);
	jin_init(&in, f->val, f->len, true);
	jin_array(&in);
	while ((rc = jin_item(&in)) > 0)
	{
		int64_t		v;

		if (rq->nseqs == PROTO_ERRORS_MAX)
		{
			snprintf(err, errlen, "\"%s\" holds more than %d seqs", key, PROTO_ERRORS_MAX);
			said = true;
			rc = -1;
			break;
		}
		if (jin_peek(&in) != JK_NUMBER || jin_int(&in, &v) < 0 || v < 1 ||
			(rq->nseqs > 0 && v <= rq->seqs[rq->nseqs - 1]))
		{
			snprintf(err, errlen, "\"%s\"[%d] must be a seq above the one before it", key, rq->nseqs);
			said = true;
			rc = -1;
			break;
		}
		rq->seqs = xrealloc(rq->seqs, sizeof(int64_t) * (size_t) (rq->nseqs + 1));
		rq->seqs[rq->nseqs++] = v;
	}
	if (rc < 0 && !said)
		snprintf(err, errlen, "\"%s\": %s", key, in.err);
	jin_free(&in);
	return rc;
}

/*
 * A hello folded into an upload or snapshot: "hello": {"tables": the
 * digest of the tables the client holds (hex), "retry_errors": bool}.
 */
static int
get_hello(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	const Field *f = field(fs, "hello");
	Fields		hs = {0};
	Buf			digest = {0};
	JsonIn		in;
	char		e[256] = "";
	int			rc;

	if (absent(f))
		return 0;
	if (f->kind != JK_OBJECT)
		return bad(err, errlen, "%s", "\"hello\" must be an object");
	jin_init(&in, f->val, f->len, true);
	rc = read_fields(&in, &hs, e, sizeof(e));
	jin_free(&in);
	if (rc < 0)
		snprintf(err, errlen, "\"hello\": %s", e[0] ? e : "not an object");
	else if (get_string(&hs, "tables", true, &digest, e, sizeof(e)) < 0 ||
			 get_bool(&hs, "retry_errors", &rq->retry_errors, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "\"hello\": %s", e);
		rc = -1;
	}
	else if (!proto_hex64(digest.p, &rq->hello.tables))
	{
		snprintf(err, errlen, "\"hello\": \"tables\" must be 1 to 16 lowercase hex digits, not \"%.40s\"",
				 digest.p);
		rc = -1;
	}
	else
		rq->hello.on = true;
	buf_free(&digest);
	fields_free(&hs);
	return rc < 0 ? -1 : 0;
}

static int
decode_snapshot_op(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	int64_t		n = 0;

	if (get_snapshot(fs, "position", false, &rq->position, err, errlen) < 0 ||
		get_int(fs, "limit", false, 0, PROTO_LIMIT_MAX, &n, err, errlen) < 0 ||
		get_hello(fs, rq, err, errlen) < 0)
		return -1;
	rq->limit = (int) n;
	return 0;
}

/* The fields of each op but the upload. */
static int
decode_op(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	int64_t		n;

	switch (rq->op)
	{
		case OP_HELLO:
			return get_bool(fs, "retry_errors", &rq->retry_errors, err, errlen);
		case OP_UPLOAD:
			if (get_hello(fs, rq, err, errlen) < 0)
				return -1;
			return decode_upload(fs, rq, err, errlen);
		case OP_SNAPSHOT:
			return decode_snapshot_op(fs, rq, err, errlen);
		case OP_CHANGES:
			return decode_changes_op(fs, rq, err, errlen);
		case OP_ROWS:
			return decode_rows_op(fs, rq, err, errlen);
		case OP_DONE:
			return get_snapshot(fs, "position", true, &rq->position, err, errlen);
		case OP_ERRORS:
			n = 20;
			if (get_int(fs, "max", false, 0, PROTO_ERRORS_MAX, &n, err, errlen) < 0 ||
				get_bool(fs, "conflicts", &rq->conflicts, err, errlen) < 0 ||
				get_seqs(fs, "seqs", rq, err, errlen) < 0)
				return -1;
			rq->max = (int) n;
			return 0;
	}
	return bad(err, errlen, "%s", "unknown op");
}

/* The envelope: the version, the op, the node id. */
static int
decode_envelope(const Fields *fs, ProtoRequest *rq, char *err, size_t errlen)
{
	Buf			op = {0},
				node = {0};
	int64_t		v = PROTO_VERSION;
	int			i,
				rc = -1;

	if (get_int(fs, "v", false, 0, INT32_MAX, &v, err, errlen) < 0 ||
		get_string(fs, "op", true, &op, err, errlen) < 0 ||
		get_string(fs, "node_id", true, &node, err, errlen) < 0)
		goto out;
	if (v < PROTO_VERSION_MIN || v > PROTO_VERSION)
	{
		/*
		 * Say which side to upgrade. A newer client reads "(this serve
		 * speaks N)" (link_http.c), as it reads syncq 0.1.0's message.
		 */
		snprintf(err, errlen, "protocol version %" PRId64 " is not spoken here (this serve speaks %d): %s",
				 v, PROTO_VERSION,
				 v < PROTO_VERSION ? "this syncqd is older than syncqd serve (syncq " SYNCQD_VERSION "): upgrade it"
				 : "syncqd serve is older than this syncqd: upgrade syncqd serve");
		goto out;
	}
	rq->v = (int) v;
	for (i = 0; i < PROTO_OPS; i++)
		if (strcmp(op.p, op_names[i]) == 0)
			break;
	if (i == PROTO_OPS)
	{
		snprintf(err, errlen, "unknown op \"%.40s\" (hello, upload, snapshot, changes, rows, done or errors)", op.p);
		goto out;
	}
	rq->op = (ProtoOp) i;
	if (!proto_is_uuid(node.p))
	{
		snprintf(err, errlen, "\"node_id\" must be a UUID");
		goto out;
	}
	snprintf(rq->node_id, sizeof(rq->node_id), "%s", node.p);
	rc = 0;
out:
	buf_free(&op);
	buf_free(&node);
	return rc;
}

/*
 * Decode and check a request body: the whole body must be JSON first (a
 * syntax error anywhere is "not JSON"), then its fields are read. Returns
 * 0, or -1 with err naming the first thing wrong (rq is then empty).
 */
int
proto_decode_request(const char *body, size_t len, ProtoRequest *rq, char *err, size_t errlen)
{
	JsonIn		in;
	Fields		fs = {0};
	char		e[512] = "";
	int			rc = -1;

	memset(rq, 0, sizeof(*rq));
	jin_init(&in, body, len, true);
	if (jin_peek(&in) != JK_OBJECT && jin_peek(&in) != JK_NONE)
	{
		if (jin_skip(&in) == 0 && jin_end(&in) == 0)
			snprintf(err, errlen, "the body must be a JSON object");
		else
			snprintf(err, errlen, "the body is not JSON: %s", in.err);
		goto out;
	}
	if (read_fields(&in, &fs, e, sizeof(e)) < 0 || jin_end(&in) < 0)
	{
		if (in.err[0])
			snprintf(err, errlen, "the body is not JSON: %s", in.err);
		else
			snprintf(err, errlen, "%s", e);
		goto out;
	}
	rc = decode_envelope(&fs, rq, err, errlen);
	if (rc == 0)
		rc = decode_op(&fs, rq, err, errlen);
out:
	fields_free(&fs);
	jin_free(&in);
	if (rc < 0)
		proto_request_free(rq);
	return rc;
}

/* The pk or row (what) of change c, kept as text[0..len) by check_row. */
static int
read_kept(const Change *c, const char *what, const char *text, size_t len, JObject *o,
		  char *err, size_t errlen)
{
	JsonIn		in;
	int			rc;

	jin_init(&in, text, len, true);
	rc = jin_row(&in, o);
	if (rc < 0)
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": its %s could not be read again: %s",
				 c->seq, c->table, what, in.err);
	jin_free(&in);
	return rc;
}

/*
 * Read the pk and row of changes [from, from + n) of an upload in protocol
 * 2 (decode_change kept their text, in the body, which must still be
 * there), as the hub is about to apply them; proto_upload_rows_drop lets
 * them go again. The pages of a large upload are so read one at a time.
 * -1 with err only if the body changed under it (it was checked whole).
 */
int
proto_upload_rows(ProtoRequest *rq, int from, int n, char *err, size_t errlen)
{
	for (int i = from; i < from + n && i < rq->changes.n; i++)
	{
		Change	   *c = &rq->changes.c[i];
		JObject		pk,
					row;

		if (rq->v < 2 || c->pk_json != NULL)
			continue;			/* protocol 1: read already (and kept) */
		if (read_kept(c, "pk", rq->rows[i].pk, rq->rows[i].pk_len, &pk, err, errlen) < 0)
			return -1;
		if (rq->rows[i].row &&
			read_kept(c, "row", rq->rows[i].row, rq->rows[i].row_len, &row, err, errlen) < 0)
		{
			jobj_free(&pk);
			return -1;
		}
		change_take_rows(c, &pk, rq->rows[i].row ? &row : NULL);
	}
	return 0;
}

void
proto_upload_rows_drop(ProtoRequest *rq, int from, int n)
{
	if (rq->v < 2)
		return;
	for (int i = from; i < from + n && i < rq->changes.n; i++)
		change_drop_rows(&rq->changes.c[i]);
}

/* The bytes of text of the pk and row of change i of an upload (0 in
 * protocol 1, where they are read already). */
size_t
proto_upload_row_bytes(const ProtoRequest *rq, int i)
{
	return rq->v >= 2 ? rq->rows[i].pk_len + rq->rows[i].row_len : 0;
}

void
proto_request_free(ProtoRequest *rq)
{
	changes_free(&rq->changes);
	free(rq->rows);
	free(rq->position);
	free(rq->target);
	free(rq->table);
	free(rq->after_pk);
	free(rq->seqs);
	memset(rq, 0, sizeof(*rq));
}

/* ---- a request, written -------------------------------------------------------- */

static void
envelope(JsonOut *w, const char *op, const char *node_id)
{
	jout_object(w);
	jout_kint(w, "v", PROTO_VERSION);
	jout_kstring(w, "op", op);
	jout_kstring(w, "node_id", node_id);
}

/* "hello", folded into an upload or snapshot (hello->on) */
static void
put_hello(JsonOut *w, const ProtoHelloAsk *hello, bool retry_errors)
{
	char		digest[24];

	if (hello == NULL || !hello->on)
		return;
	snprintf(digest, sizeof(digest), "%" PRIx64, hello->tables);
	jout_key(w, "hello");
	jout_object(w);
	jout_kstring(w, "tables", digest);
	jout_kbool(w, "retry_errors", retry_errors);
	jout_object_end(w);
}

void
proto_upload_begin(JsonOut *w, Buf *out, const char *node_id, int64_t ack_seq, int64_t now_us,
				   uint64_t ack_digest, const ProtoHelloAsk *hello, bool retry_errors)
{
	char		digest[24];

	jout_init(w, out);
	envelope(w, op_names[OP_UPLOAD], node_id);
	put_hello(w, hello, retry_errors);
	jout_kint(w, "ack_seq", ack_seq);
	snprintf(digest, sizeof(digest), "%" PRIx64, ack_digest);
	jout_kstring(w, "ack_digest", digest);
	if (now_us != 0)
		jout_kint(w, "now", now_us);
	jout_key(w, "changes");
	jout_array(w);
}

/* One change: its pk and row as values, blobs tagged {"$hex": ...}. */
void
proto_upload_change(JsonOut *w, const Change *c)
{
	char		op[2] = {c->op, '\0'};

	jout_object(w);
	jout_kint(w, "seq", c->seq);
	jout_kstring(w, "table", c->table);
	jout_kstring(w, "op", op);
	jout_key(w, "pk");
	jout_row(w, &c->pk, true);
	jout_key(w, "row");
	if (c->has_row)
		jout_row(w, &c->row, true);
	else
		jout_null(w);
	jout_kint(w, "ver_us", c->ver_us);
	jout_kstring(w, "origin", c->origin);
	jout_kbool(w, "immediate", c->immediate);
	jout_object_end(w);
}

void
proto_upload_end(JsonOut *w)
{
	jout_array_end(w);
	jout_object_end(w);
}

void
proto_encode_request(const ProtoRequest *rq, Buf *out)
{
	JsonOut		w;

	if (rq->op == OP_UPLOAD)
	{
		proto_upload_begin(&w, out, rq->node_id, rq->ack_seq, rq->now_us, rq->ack_digest,
						   &rq->hello, rq->retry_errors);
		for (int i = 0; i < rq->changes.n; i++)
			proto_upload_change(&w, &rq->changes.c[i]);
		proto_upload_end(&w);
		return;
	}
	jout_init(&w, out);
	envelope(&w, op_names[rq->op], rq->node_id);
	switch (rq->op)
	{
		case OP_HELLO:
			jout_kbool(&w, "retry_errors", rq->retry_errors);
			break;
		case OP_UPLOAD:
			break;
		case OP_SNAPSHOT:
			jout_kstring(&w, "position", rq->position);
			if (rq->limit > 0)
				jout_kint(&w, "limit", rq->limit);
			put_hello(&w, &rq->hello, rq->retry_errors);
			break;
		case OP_CHANGES:
			jout_kstring(&w, "position", rq->position);
			jout_kstring(&w, "target", rq->target);
			jout_kint(&w, "after", rq->after);
			jout_kint(&w, "limit", rq->limit);
			break;
		case OP_ROWS:
			jout_kstring(&w, "table", rq->table);
			jout_key(&w, "after");
			if (rq->after_pk)
				jout_raw(&w, rq->after_pk, strlen(rq->after_pk));
			else
				jout_null(&w);
			jout_kint(&w, "limit", rq->limit);
			break;
		case OP_DONE:
			jout_kstring(&w, "position", rq->position);
			break;
		case OP_ERRORS:
			jout_kint(&w, "max", rq->max);
			jout_kbool(&w, "conflicts", rq->conflicts);
			if (rq->nseqs > 0)
			{
				jout_key(&w, "seqs");
				jout_array(&w);
				for (int i = 0; i < rq->nseqs; i++)
					jout_int(&w, rq->seqs[i]);
				jout_array_end(&w);
			}
			break;
	}
	jout_object_end(&w);
}
