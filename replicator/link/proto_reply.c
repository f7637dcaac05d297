/*
 * proto_reply.c — serve's replies, both ways (proto.h; docs/http.md):
 * serve writes them (http/serve_data.c), the HTTP link reads them
 * (link_http.c).
 *
 *   proto_encode_hello, proto_decode_hello, proto_hello_free
 *   proto_decode_folded              what became of a hello folded into
 *                                    an upload or snapshot (its first key)
 *   proto_encode_uploaded, proto_decode_uploaded, proto_uploaded_free
 *   proto_encode_snapshot, proto_snapshot_open, proto_snapshot_close,
 *   proto_decode_snapshot, proto_decode_snapshot_page
 *   proto_changes_begin, proto_changes_add, proto_changes_end,
 *   proto_changes_array, proto_changes_more,
 *   proto_decode_changes             a page of the hub's changes
 *   proto_rows_begin, proto_rows_add, proto_rows_end,
 *   proto_decode_rows                a page of a table's rows
 *   proto_encode_done, proto_decode_done
 *   proto_encode_errors, proto_decode_errors
 *   proto_encode_wait, proto_decode_wait   GET /api/sync/wait
 *   proto_decode_error               an error reply's message
 *
 * A reader takes the keys it knows, in any order, skips the others, and
 * refuses a known key of the wrong kind; what it must have it checks last.
 */
#include "base/base.h"
#include "base/buf.h"
#include "link/proto.h"
#include "model/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading helpers --------------------------------------------------------- */

/* -1 with err: what was wrong, and where the reader stopped if it says. */
static int
malformed(JsonIn *in, const char *what, const char *key, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s%s%s%s", what, key ? " \"" : "", key ? key : "", key ? "\"" : "");
	if (in->err[0])
	{
		size_t		n = strlen(err);

		snprintf(err + n, errlen - n, " (%s)", in->err);
	}
	return -1;
}

/* Start reading a reply s[0..n): it must be an object. */
static int
begin(JsonIn *in, const char *s, size_t n, char *err, size_t errlen)
{
	jin_init(in, s, n, true);
	if (jin_object(in) < 0)
		return malformed(in, "the reply is not a JSON object", NULL, err, errlen);
	return 0;
}

/* After the object's last key: nothing must follow. */
static int
finish(JsonIn *in, int rc, char *err, size_t errlen)
{
	if (rc == 0 && jin_end(in) < 0)
		rc = malformed(in, "the reply is not one JSON object", NULL, err, errlen);
	else if (rc < 0 && err[0] == '\0')
		malformed(in, "the reply is not JSON", NULL, err, errlen);
	return rc;
}

static int
read_int(JsonIn *in, int64_t *v, char *err, size_t errlen)
{
	if (jin_int(in, v) < 0)
		return malformed(in, "an integer expected for", in->key.p, err, errlen);
	return 0;
}

static int
read_bool(JsonIn *in, bool *v, char *err, size_t errlen)
{
	if (jin_bool(in, v) < 0)
		return malformed(in, "true or false expected for", in->key.p, err, errlen);
	return 0;
}

/* A string value (malloc'd, or NULL for null). */
static int
read_str(JsonIn *in, char **out, char *err, size_t errlen)
{
	Buf			b = {0};
	char		key[64];

	*out = NULL;
	if (jin_null(in))
		return 0;
	snprintf(key, sizeof(key), "%s", in->key.p ? in->key.p : "");
	if (jin_string(in, &b) < 0)
	{
		buf_free(&b);
		return malformed(in, "a string expected for", key, err, errlen);
	}
	*out = b.p ? b.p : xstrdup("");
	return 0;
}

static bool
is(JsonIn *in, const char *key)
{
	return strcmp(in->key.p, key) == 0;
}

/* ---- hello ------------------------------------------------------------------------- */

void
proto_encode_hello(Buf *out, const char *release, const char *hub_node_id,
				   const HubTable *tables, int ntables, uint64_t digest,
				   int retried, int conflicts, bool tables_changed)
{
	JsonOut		w;
	char		hex[24];

	jout_init(&w, out);
	jout_object(&w);
	/* first: a folded hello's answer is told by its first key */
	if (tables_changed)
		jout_kbool(&w, "tables_changed", true);
	jout_kint(&w, "v", PROTO_VERSION);
	/* serve's release: a client newer than it stops (link_http.c) */
	jout_kstring(&w, "syncq", release);
	jout_kstring(&w, "hub_node_id", hub_node_id);
	snprintf(hex, sizeof(hex), "%" PRIx64, digest);
	jout_kstring(&w, "digest", hex);
	jout_key(&w, "tables");
	jout_array(&w);
	for (int i = 0; i < ntables; i++)
	{
		const HubTable *t = &tables[i];

		jout_object(&w);
		jout_kstring(&w, "name", t->name);
		jout_key(&w, "columns");
		jout_array(&w);
		for (int c = 0; c < t->ncols; c++)
		{
			jout_object(&w);
			jout_kstring(&w, "name", t->cols[c]);
			jout_kstring(&w, "type", t->types[c]);
			jout_kint(&w, "pk", t->pk_pos[c]);
			jout_object_end(&w);
		}
		jout_array_end(&w);
		jout_object_end(&w);
	}
	jout_array_end(&w);
	jout_key(&w, "retried");
	jout_object(&w);
	jout_kint(&w, "retried", retried);
	jout_kint(&w, "conflicts", conflicts);
	jout_object_end(&w);
	jout_object_end(&w);
}

/* One column of a table, into t. */
static int
read_column(JsonIn *in, HubTable *t, char *err, size_t errlen)
{
	char	   *name = NULL,
			   *type = NULL;
	int64_t		pk = 0;
	int			rc;

	if (jin_object(in) < 0)
		return malformed(in, "a column is not an object", NULL, err, errlen);
	while ((rc = jin_key(in)) > 0)
	{
		if (is(in, "name"))
		{
			free(name);
			rc = read_str(in, &name, err, errlen);
		}
		else if (is(in, "type"))
		{
			free(type);
			rc = read_str(in, &type, err, errlen);
		}
		else if (is(in, "pk"))
		{
			rc = read_int(in, &pk, err, errlen);
			if (rc == 0 && (pk < 0 || pk > 1600))
				rc = malformed(in, "out of range:", "pk", err, errlen);
		}
		else
			rc = jin_skip(in);
		if (rc < 0)
			break;
	}
	if (rc == 0 && (name == NULL || type == NULL))
		rc = malformed(in, "a column without a name or a type", NULL, err, errlen);
	if (rc < 0)
	{
		free(name);
		free(type);
		return -1;
	}
	t->cols = xrealloc(t->cols, (size_t) (t->ncols + 1) * sizeof(char *));
	t->types = xrealloc(t->types, (size_t) (t->ncols + 1) * sizeof(char *));
	t->is_pk = xrealloc(t->is_pk, (size_t) (t->ncols + 1) * sizeof(bool));
	t->pk_pos = xrealloc(t->pk_pos, (size_t) (t->ncols + 1) * sizeof(int));
	t->cols[t->ncols] = name;
	t->types[t->ncols] = type;
	t->pk_pos[t->ncols] = (int) pk;
	t->is_pk[t->ncols] = pk > 0;
	if (pk > 0)
		t->npk++;
	t->ncols++;
	return 0;
}

/* One table of the hello, appended to r. */
static int
read_table(JsonIn *in, ProtoHello *r, char *err, size_t errlen)
{
	HubTable   *t;
	bool		named = false;
	int			rc;

	if (jin_object(in) < 0)
		return malformed(in, "a table is not an object", NULL, err, errlen);
	r->tables = xrealloc(r->tables, (size_t) (r->ntables + 1) * sizeof(HubTable));
	t = &r->tables[r->ntables++];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup("");
	while ((rc = jin_key(in)) > 0)
	{
		if (is(in, "name"))
		{
			free(t->name);
			rc = read_str(in, &t->name, err, errlen);
			named = t->name != NULL;
		}
		else if (is(in, "columns"))
		{
			if (jin_array(in) < 0)
				rc = malformed(in, "an array expected for", "columns", err, errlen);
			while (rc >= 0 && (rc = jin_item(in)) > 0)
				rc = read_column(in, t, err, errlen);
		}
		else
			rc = jin_skip(in);
		if (rc < 0)
			return -1;
	}
	if (rc == 0 && !named)
		return malformed(in, "a table without a name", NULL, err, errlen);
	if (rc == 0)
		t->qname = xstrdup(t->name);
	return rc;
}

int
proto_decode_hello(const char *s, size_t n, ProtoHello *r, char *err, size_t errlen)
{
	JsonIn		in;
	char	   *hub = NULL,
			   *release = NULL;
	bool		have_tables = false;
	int64_t		v;
	int			rc = -1;

	memset(r, 0, sizeof(*r));
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "hub_node_id"))
		{
			free(hub);
			rc = read_str(&in, &hub, err, errlen);
		}
		else if (is(&in, "syncq"))
		{
			free(release);
			rc = read_str(&in, &release, err, errlen);
		}
		else if (is(&in, "digest"))
		{
			char	   *hex = NULL;

			rc = read_str(&in, &hex, err, errlen);
			if (rc == 0 && !proto_hex64(hex, &r->digest))
				rc = malformed(&in, "1 to 16 lowercase hex digits expected for", "digest", err, errlen);
			r->has_digest = rc == 0;
			free(hex);
		}
		else if (is(&in, "tables"))
		{
			have_tables = true;
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "tables", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
				rc = read_table(&in, r, err, errlen);
		}
		else if (is(&in, "retried"))
		{
			if (jin_object(&in) < 0)
				rc = malformed(&in, "an object expected for", "retried", err, errlen);
			while (rc >= 0 && (rc = jin_key(&in)) > 0)
			{
				if (is(&in, "retried") || is(&in, "conflicts"))
				{
					bool		retried = is(&in, "retried");

					rc = read_int(&in, &v, err, errlen);
					if (rc == 0 && (v < 0 || v > INT32_MAX))
						rc = malformed(&in, "out of range:", retried ? "retried" : "conflicts", err, errlen);
					if (rc == 0)
						*(retried ? &r->retried : &r->conflicts) = (int) v;
				}
				else
					rc = jin_skip(&in);
			}
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
	if (rc == 0 && (hub == NULL || !proto_is_uuid(hub) || !have_tables))
		rc = malformed(&in, "the reply lacks hub_node_id or tables", NULL, err, errlen);
	/* serve sends them sorted by name; looking them up relies on it */
	for (int k = 1; rc == 0 && k < r->ntables; k++)
		if (strcmp(r->tables[k - 1].name, r->tables[k].name) >= 0)
			rc = malformed(&in, "the tables are not in name order", NULL, err, errlen);
	if (rc == 0 && release && strlen(release) >= sizeof(r->release))
		rc = malformed(&in, "too long:", "syncq", err, errlen);
	if (rc == 0)
	{
		snprintf(r->hub_node_id, sizeof(r->hub_node_id), "%s", hub);
		snprintf(r->release, sizeof(r->release), "%s", release ? release : "");
	}
out:
	free(hub);
	free(release);
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc < 0)
		proto_hello_free(r);
	return rc;
}

void
proto_hello_free(ProtoHello *r)
{
	hub_tables_free(r->tables, r->ntables);
	memset(r, 0, sizeof(*r));
}

/* ---- a hello folded into an upload or snapshot ------------------------------------ */

/*
 * The answer to a folded hello, the first key of the reply (read alone by
 * proto_decode_folded; the other readers skip it): "hello": {"retried",
 * "conflicts"}. (When the client's tables were not the hub's, the reply is
 * a hello's instead, "tables_changed" first: proto_encode_hello.)
 */
static void
put_folded(JsonOut *w, const ProtoFolded *f)
{
	if (f == NULL || !f->on)
		return;
	jout_key(w, "hello");
	jout_object(w);
	jout_kint(w, "retried", f->retried);
	jout_kint(w, "conflicts", f->conflicts);
	jout_object_end(w);
}

int
proto_decode_folded(const char *s, size_t n, ProtoFolded *f)
{
	JsonIn		in;
	char		err[256] = "";
	int			rc;

	memset(f, 0, sizeof(*f));
	if (begin(&in, s, n, err, sizeof(err)) < 0)
	{
		jin_free(&in);
		return -1;
	}
	rc = jin_key(&in);
	if (rc > 0 && is(&in, "tables_changed"))
	{
		rc = read_bool(&in, &f->tables_changed, err, sizeof(err));
		f->on = rc == 0 && f->tables_changed;
	}
	else if (rc > 0 && is(&in, "hello") && jin_object(&in) == 0)
	{
		int64_t		v;

		while ((rc = jin_key(&in)) > 0)
		{
			if ((is(&in, "retried") || is(&in, "conflicts")) && jin_int(&in, &v) == 0 &&
				v >= 0 && v <= INT32_MAX)
				*(is(&in, "retried") ? &f->retried : &f->conflicts) = (int) v;
			else if (jin_skip(&in) < 0)
				break;
		}
		f->on = rc == 0;
	}
	jin_free(&in);
	return 0;
}

/* ---- upload ------------------------------------------------------------------------- */

void
proto_encode_uploaded(Buf *out, const ProtoFolded *hello, const UploadStats *st,
					  const UploadMark *marks, int nmarks,
					  char *const *refused, int nrefused, int refused_more,
					  const KeyRename *renames, int nrenames, const MetChange *met, int nmet)
{
	JsonOut		w;
	char		digest[24];

	jout_init(&w, out);
	jout_object(&w);
	put_folded(&w, hello);
	jout_kint(&w, "applied", st->applied);
	jout_kint(&w, "conflicts", st->conflicts);
	jout_kint(&w, "skipped", st->skipped);
	jout_kint(&w, "parked", st->parked);
	jout_key(&w, "marks");
	jout_array(&w);
	for (int i = 0; i < nmarks; i++)
	{
		jout_array(&w);
		jout_int(&w, marks[i].seq);
		snprintf(digest, sizeof(digest), "%" PRIx64, marks[i].digest);
		jout_string(&w, digest);
		jout_array_end(&w);
	}
	jout_array_end(&w);
	jout_key(&w, "refused");
	jout_array(&w);
	for (int i = 0; i < nrefused; i++)
		jout_string(&w, refused[i]);
	jout_array_end(&w);
	jout_kint(&w, "refused_more", refused_more);
	jout_key(&w, "renames");
	jout_array(&w);
	for (int i = 0; i < nrenames; i++)
	{
		jout_array(&w);
		jout_int(&w, renames[i].seq);
		jout_string(&w, renames[i].table);
		jout_string(&w, renames[i].column);
		jout_int(&w, renames[i].old_key);
		jout_int(&w, renames[i].new_key);
		jout_array_end(&w);
	}
	jout_array_end(&w);
	/* (a 0.1.0 syncqd skips it, as every reader skips a key it does not know) */
	jout_key(&w, "met");
	jout_array(&w);
	for (int i = 0; i < nmet; i++)
	{
		jout_array(&w);
		jout_int(&w, met[i].seq);
		jout_string(&w, met[i].error);
		jout_array_end(&w);
	}
	jout_array_end(&w);
	jout_object_end(&w);
}

/* One change set aside as meeting another record, [seq, "error"], appended to r. */
static int
read_met(JsonIn *in, ProtoUploaded *r, char *err, size_t errlen)
{
	int64_t		seq;
	Buf			e = {0};

	if (jin_array(in) == 0 && jin_item(in) == 1 && jin_int(in, &seq) == 0 &&
		jin_item(in) == 1 && jin_string(in, &e) == 0 && jin_item(in) == 0 &&
		seq > 0 && e.len > 0 && strlen(e.p) == e.len &&
		(r->nmet == 0 || seq > r->met[r->nmet - 1].seq))
	{
		r->met = xrealloc(r->met, (size_t) (r->nmet + 1) * sizeof(MetChange));
		r->met[r->nmet].seq = seq;
		r->met[r->nmet++].error = e.p;
		return 0;
	}
	buf_free(&e);
	return malformed(in, "a change the reply says met another record is not [seq, \"error\"] in seq order", NULL,
					 err, errlen);
}

/* One key the hub renamed, [seq, "table", "column", old, new], appended to r. */
static int
read_rename(JsonIn *in, ProtoUploaded *r, char *err, size_t errlen)
{
	KeyRename	k = {0};
	Buf			t = {0},
				c = {0};
	int			rc = -1;

	if (jin_array(in) == 0 && jin_item(in) == 1 && jin_int(in, &k.seq) == 0 &&
		jin_item(in) == 1 && jin_string(in, &t) == 0 &&
		jin_item(in) == 1 && jin_string(in, &c) == 0 &&
		jin_item(in) == 1 && jin_int(in, &k.old_key) == 0 &&
		jin_item(in) == 1 && jin_int(in, &k.new_key) == 0 && jin_item(in) == 0 &&
		t.len > 0 && c.len > 0 && strlen(t.p) == t.len && strlen(c.p) == c.len)
	{
		k.table = t.p;
		k.column = c.p;
		memset(&t, 0, sizeof(t));
		memset(&c, 0, sizeof(c));
		r->renames = xrealloc(r->renames, (size_t) (r->nrenames + 1) * sizeof(KeyRename));
		r->renames[r->nrenames++] = k;
		rc = 0;
	}
	else
		malformed(in, "a rename of the reply is not [seq, \"table\", \"column\", old, new]", NULL, err, errlen);
	buf_free(&t);
	buf_free(&c);
	return rc;
}

/* One mark, [seq, "digest"], appended to r. */
static int
read_mark(JsonIn *in, ProtoUploaded *r, char *err, size_t errlen)
{
	int64_t		seq;
	uint64_t	digest;
	Buf			d = {0};
	int			rc = -1;

	if (jin_array(in) == 0 && jin_item(in) == 1 && jin_int(in, &seq) == 0 &&
		jin_item(in) == 1 && jin_string(in, &d) == 0 && jin_item(in) == 0 &&
		proto_hex64(d.p, &digest))
	{
		r->marks = xrealloc(r->marks, (size_t) (r->nmarks + 1) * sizeof(UploadMark));
		r->marks[r->nmarks].seq = seq;
		r->marks[r->nmarks].digest = digest;
		r->nmarks++;
		rc = 0;
	}
	else
		malformed(in, "a mark of the reply is not [seq, \"digest\"]", NULL, err, errlen);
	buf_free(&d);
	return rc;
}

int
proto_decode_uploaded(const char *s, size_t n, ProtoUploaded *r, char *err, size_t errlen)
{
	JsonIn		in;
	int64_t		v;
	int			rc = -1;

	memset(r, 0, sizeof(*r));
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		int		   *stat = is(&in, "applied") ? &r->st.applied :
			is(&in, "conflicts") ? &r->st.conflicts :
			is(&in, "skipped") ? &r->st.skipped :
			is(&in, "parked") ? &r->st.parked :
			is(&in, "refused_more") ? &r->refused_more : NULL;

		if (stat)
		{
			char		key[16];

			snprintf(key, sizeof(key), "%s", in.key.p);
			rc = read_int(&in, &v, err, errlen);
			if (rc == 0 && (v < 0 || v > INT32_MAX))
				rc = malformed(&in, "out of range:", key, err, errlen);
			if (rc == 0)
				*stat = (int) v;
		}
		else if (is(&in, "marks"))
		{
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "marks", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
				rc = read_mark(&in, r, err, errlen);
		}
		else if (is(&in, "renames"))
		{
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "renames", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
				rc = read_rename(&in, r, err, errlen);
		}
		else if (is(&in, "met"))
		{
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "met", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
				rc = read_met(&in, r, err, errlen);
		}
		else if (is(&in, "refused"))
		{
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "refused", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
			{
				char	   *line;

				rc = read_str(&in, &line, err, errlen);
				if (rc == 0 && line == NULL)
					rc = malformed(&in, "a string expected for", "refused", err, errlen);
				if (rc == 0)
				{
					r->refused = xrealloc(r->refused, (size_t) (r->nrefused + 1) * sizeof(char *));
					r->refused[r->nrefused++] = line;
				}
			}
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc < 0)
		proto_uploaded_free(r);
	return rc;
}

void
proto_uploaded_free(ProtoUploaded *r)
{
	for (int i = 0; i < r->nrefused; i++)
		free(r->refused[i]);
	free(r->refused);
	free(r->marks);
	key_renames_free(r->renames, r->nrenames);
	met_changes_free(r->met, r->nmet);
	memset(r, 0, sizeof(*r));
}

/* ---- snapshot ------------------------------------------------------------------------ */

void
proto_encode_snapshot(Buf *out, const char *snapshot, bool behind, int64_t clock_us,
					  int64_t wall_us)
{
	JsonOut		w;

	proto_snapshot_open(&w, out, NULL, snapshot, behind, clock_us, wall_us);
	proto_snapshot_close(&w);
}

/* The snapshot reply, its object left open for a first page of changes. */
void
proto_snapshot_open(JsonOut *w, Buf *out, const ProtoFolded *hello, const char *snapshot,
					bool behind, int64_t clock_us, int64_t wall_us)
{
	jout_init(w, out);
	jout_object(w);
	put_folded(w, hello);
	jout_kstring(w, "snapshot", snapshot);
	jout_kbool(w, "behind", behind);
	jout_kint(w, "clock", clock_us);
	if (wall_us != 0)
		jout_kint(w, "wall", wall_us);
}

void
proto_snapshot_close(JsonOut *w)
{
	jout_object_end(w);
}

static int	read_changes(JsonIn *in, int64_t after, LinkPage *page, char *err, size_t errlen);

/*
 * clock_us: the hub's clock, wall_us its wall clock alone (each 0 if the
 * reply has none: an older serve).
 */
int
proto_decode_snapshot(const char *s, size_t n, char **snapshot, bool *behind, int64_t *clock_us,
					  int64_t *wall_us,
					  char *err, size_t errlen)
{
	return proto_decode_snapshot_page(s, n, snapshot, behind, clock_us, wall_us, NULL, NULL,
									  err, errlen);
}

/*
 * page NULL: a first page is skipped. A page's changes come after seq 0
 * (the first of a download from a position).
 */
int
proto_decode_snapshot_page(const char *s, size_t n, char **snapshot, bool *behind,
						   int64_t *clock_us, int64_t *wall_us, LinkPage *page,
						   bool *has_page, char *err, size_t errlen)
{
	JsonIn		in;
	char	   *snap = NULL;
	bool		have = false;
	int			rc = -1;

	*snapshot = NULL;
	*behind = false;
	*clock_us = 0;
	*wall_us = 0;
	if (page)
		link_page_reset(page);
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "snapshot"))
		{
			free(snap);
			rc = read_str(&in, &snap, err, errlen);
		}
		else if (is(&in, "behind"))
			rc = read_bool(&in, behind, err, errlen);
		else if (is(&in, "clock"))
			rc = read_int(&in, clock_us, err, errlen);
		else if (is(&in, "wall"))
			rc = read_int(&in, wall_us, err, errlen);
		else if (page && is(&in, "changes") && !have)
		{
			have = true;
			rc = read_changes(&in, 0, page, err, errlen);
		}
		else if (page && is(&in, "more"))
			rc = read_bool(&in, &page->more, err, errlen);
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
	if (rc == 0 && (snap == NULL || !proto_is_snapshot(snap)))
		rc = malformed(&in, "the reply has no snapshot", NULL, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc == 0)
		*snapshot = snap;
	else
		free(snap);
	if (page && (rc < 0 || !have))
		link_page_reset(page);
	if (has_page)
		*has_page = rc == 0 && have;
	return rc;
}

/*
 * A row or key of the hub (JSON text) as protocol v carries it: the value
 * itself (2), or a string holding its text (1, syncq 0.1.0's clients).
 */
static void
put_json(JsonOut *w, const char *text, size_t len, int v)
{
	if (v >= 2)
		jout_raw(w, text, len);
	else
		jout_stringn(w, text, len);
}

/* ---- changes ------------------------------------------------------------------------- */

void
proto_changes_begin(JsonOut *w, Buf *out)
{
	jout_init(w, out);
	jout_object(w);
	proto_changes_array(w);
}

void
proto_changes_array(JsonOut *w)
{
	jout_key(w, "changes");
	jout_array(w);
}

void
proto_changes_more(JsonOut *w, bool more)
{
	jout_array_end(w);
	jout_kbool(w, "more", more);
}

/* One change of the hub: pk and row as the JSON text they are. */
void
proto_changes_add(JsonOut *w, const ProtoChangeText *c, int v)
{
	char		op[2] = {c->op, '\0'};

	jout_object(w);
	jout_kint(w, "seq", c->seq);
	jout_kstring(w, "table", c->table);
	jout_kstring(w, "op", op);
	jout_key(w, "pk");
	put_json(w, c->pk, strlen(c->pk), v);
	jout_key(w, "row");
	if (c->row)
		put_json(w, c->row, strlen(c->row), v);
	else
		jout_null(w);
	jout_kint(w, "ver_us", c->ver_us);
	jout_kstring(w, "origin", c->origin);
	jout_kbool(w, "immediate", c->immediate);
	jout_kint(w, "txn_end", c->txn_end);
	if (c->replaces_us != 0 && v >= 2)	/* (protocol 1 has no corrections) */
		jout_kint(w, "replaces", c->replaces_us);
	jout_object_end(w);
}

void
proto_changes_end(JsonOut *w, bool more)
{
	proto_changes_more(w, more);
	jout_object_end(w);
}

/* One change of the reply, appended to page. */
static int
read_down_change(JsonIn *in, size_t i, LinkPage *page, char *err, size_t errlen)
{
	char	   *table = NULL,
			   *op = NULL,
			   *origin = NULL;
	JObject		pk = {0},
				row = {0};
	bool		has_pk = false,
				has_row = false,
				immediate = false;
	int64_t		seq = 0,
				ver_us = 0,
				txn_end = 0,
				replaces = 0;
	char		e[256] = "";
	int			rc;

	if (jin_object(in) < 0)
		return malformed(in, "a change is not an object", NULL, err, errlen);
	while ((rc = jin_key(in)) > 0)
	{
		if (is(in, "seq"))
			rc = read_int(in, &seq, e, sizeof(e));
		else if (is(in, "ver_us"))
			rc = read_int(in, &ver_us, e, sizeof(e));
		else if (is(in, "txn_end"))
			rc = read_int(in, &txn_end, e, sizeof(e));
		else if (is(in, "replaces"))
			rc = read_int(in, &replaces, e, sizeof(e));
		else if (is(in, "immediate"))
			rc = read_bool(in, &immediate, e, sizeof(e));
		else if (is(in, "table") || is(in, "op") || is(in, "origin"))
		{
			char	  **to = is(in, "table") ? &table : is(in, "op") ? &op : &origin;

			free(*to);
			rc = read_str(in, to, e, sizeof(e));
		}
		else if (is(in, "pk") || is(in, "row"))
		{
			bool		is_pk = is(in, "pk");
			JObject    *o = is_pk ? &pk : &row;
			bool	   *has = is_pk ? &has_pk : &has_row;

			if (*has)
				jobj_free(o);
			*has = false;
			if (!jin_null(in))
			{
				rc = jin_row(in, o);
				if (rc < 0)
					malformed(in, "an object expected for", is_pk ? "pk" : "row", e, sizeof(e));
				*has = rc == 0;
			}
		}
		else
			rc = jin_skip(in);
		if (rc < 0)
			break;
	}
	if (rc == 0 && (table == NULL || op == NULL || origin == NULL || !has_pk))
		rc = -1;
	if (rc == 0)
	{
		Change	   *c = link_page_push_change(page, txn_end);

		rc = change_take(c, seq, table, op, &pk, has_row ? &row : NULL, ver_us, origin,
						 immediate, e, sizeof(e));
		has_pk = has_row = false;
		if (rc < 0)
			page->changes.n--;	/* change_take left it empty */
		else
			c->replaces_us = replaces;
	}
	if (rc < 0)
		snprintf(err, errlen, "change %zu of the reply is malformed%s%s", i, e[0] ? ": " : "", e);
	if (has_pk)
		jobj_free(&pk);
	if (has_row)
		jobj_free(&row);
	free(table);
	free(op);
	free(origin);
	return rc;
}

/* The "changes" array at in, into page: seqs rising above after. */
static int
read_changes(JsonIn *in, int64_t after, LinkPage *page, char *err, size_t errlen)
{
	int			rc = 0;

	if (jin_array(in) < 0)
		rc = malformed(in, "an array expected for", "changes", err, errlen);
	for (size_t i = 0; rc >= 0 && (rc = jin_item(in)) > 0; i++)
	{
		rc = read_down_change(in, i, page, err, errlen);
		if (rc == 0 && page->changes.c[page->changes.n - 1].seq <= after)
			rc = malformed(in, "the changes of the reply do not follow one another", NULL, err, errlen);
		if (rc == 0)
			after = page->changes.c[page->changes.n - 1].seq;
	}
	return rc;
}

int
proto_decode_changes(const char *s, size_t n, int64_t after, LinkPage *page, char *err, size_t errlen)
{
	JsonIn		in;
	bool		have = false;
	int			rc = -1;

	link_page_reset(page);
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "changes") && !have)
		{
			have = true;
			rc = read_changes(&in, after, page, err, errlen);
		}
		else if (is(&in, "more"))
			rc = read_bool(&in, &page->more, err, errlen);
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
	if (rc == 0 && !have)
		rc = malformed(&in, "the reply has no changes array", NULL, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc < 0)
		link_page_reset(page);
	return rc;
}

/* ---- rows -------------------------------------------------------------------------------- */

void
proto_rows_begin(JsonOut *w, Buf *out)
{
	jout_init(w, out);
	jout_object(w);
	jout_key(w, "rows");
	jout_array(w);
}

void
proto_rows_add(JsonOut *w, const char *row, size_t len, int v)
{
	put_json(w, row, len, v);
}

void
proto_rows_end(JsonOut *w, bool more, const char *last, int v)
{
	jout_array_end(w);
	jout_kbool(w, "more", more);
	if (last)
	{
		jout_key(w, "last");
		put_json(w, last, strlen(last), v);
	}
	jout_object_end(w);
}

int
proto_decode_rows(const char *s, size_t n, LinkPage *page, char **last, char *err, size_t errlen)
{
	JsonIn		in;
	bool		have = false;
	int			rc = -1;

	link_page_reset(page);
	*last = NULL;
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "rows") && !have)
		{
			have = true;
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "rows", err, errlen);
			for (size_t i = 0; rc >= 0 && (rc = jin_item(&in)) > 0; i++)
			{
				JObject    *row = link_page_push_row(page);

				rc = jin_row(&in, row);
				if (rc < 0)
				{
					page->nrows--;
					snprintf(err, errlen, "row %zu of the reply is not a JSON object (%s)", i, in.err);
				}
			}
		}
		else if (is(&in, "more"))
			rc = read_bool(&in, &page->more, err, errlen);
		else if (is(&in, "last"))
		{
			JObject		key;
			Buf			k = {0};

			free(*last);
			*last = NULL;
			if (jin_null(&in))
				continue;
			rc = jin_row(&in, &key);
			if (rc < 0)
				malformed(&in, "an object expected for", "last", err, errlen);
			else
			{
				buf_json_object(&k, &key);
				jobj_free(&key);
				*last = k.p;
			}
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
	if (rc == 0 && !have)
		rc = malformed(&in, "the reply has no rows array", NULL, err, errlen);
	if (rc == 0 && page->more && *last == NULL)
		rc = malformed(&in, "the reply has more rows but no last key", NULL, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc < 0)
	{
		link_page_reset(page);
		free(*last);
		*last = NULL;
	}
	return rc;
}

/* ---- done ---------------------------------------------------------------------------------- */

void
proto_encode_done(Buf *out, long pruned)
{
	JsonOut		w;

	jout_init(&w, out);
	jout_object(&w);
	jout_kint(&w, "pruned", pruned);
	jout_object_end(&w);
}

int
proto_decode_done(const char *s, size_t n, long *pruned, char *err, size_t errlen)
{
	JsonIn		in;
	int64_t		v = 0;
	int			rc = -1;

	*pruned = 0;
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "pruned"))
		{
			rc = read_int(&in, &v, err, errlen);
			if (rc == 0 && (v < 0 || v > INT32_MAX))
				rc = malformed(&in, "out of range:", "pruned", err, errlen);
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc == 0)
		*pruned = (long) v;
	return rc;
}

/* ---- errors ------------------------------------------------------------------------------- */

void
proto_encode_errors(Buf *out, long count, const HubError *rows, int nrows, long conflicts, int v)
{
	JsonOut		w;

	jout_init(&w, out);
	jout_object(&w);
	jout_kint(&w, "count", count);
	jout_key(&w, "changes");
	jout_array(&w);
	for (int i = 0; i < nrows; i++)
	{
		const HubError *e = &rows[i];
		char		op[2] = {e->op, '\0'};

		jout_object(&w);
		jout_kint(&w, "seq", e->seq);
		jout_kstring(&w, "table", e->table);
		jout_kstring(&w, "op", op);
		jout_key(&w, "pk");
		put_json(&w, e->pk, strlen(e->pk), v);
		jout_kstring(&w, "error", e->error);
		jout_kstring(&w, "first_failed", e->first_failed);
		jout_kstring(&w, "last_failed", e->last_failed);
		jout_kint(&w, "attempts", e->attempts);
		jout_object_end(&w);
	}
	jout_array_end(&w);
	jout_key(&w, "conflicts");
	if (conflicts >= 0)
		jout_int(&w, conflicts);
	else
		jout_null(&w);
	jout_object_end(&w);
}

/* One set-aside change, appended to r; its pk kept as the text it is. */
static int
read_error_row(JsonIn *in, ProtoErrors *r, char *err, size_t errlen)
{
	HubError   *he;
	int64_t		v;
	int			rc;

	if (jin_object(in) < 0)
		return malformed(in, "a set-aside change is not an object", NULL, err, errlen);
	r->rows = xrealloc(r->rows, (size_t) (r->nrows + 1) * sizeof(HubError));
	he = &r->rows[r->nrows++];
	memset(he, 0, sizeof(*he));
	he->op = '?';
	while ((rc = jin_key(in)) > 0)
	{
		if (is(in, "seq"))
			rc = read_int(in, &he->seq, err, errlen);
		else if (is(in, "attempts"))
		{
			rc = read_int(in, &v, err, errlen);
			if (rc == 0 && (v < 0 || v > INT32_MAX))
				rc = malformed(in, "out of range:", "attempts", err, errlen);
			he->attempts = (int) v;
		}
		else if (is(in, "op"))
		{
			char	   *op;

			rc = read_str(in, &op, err, errlen);
			if (rc == 0 && op && strlen(op) == 1)
				he->op = op[0];
			free(op);
		}
		else if (is(in, "pk"))
		{
			const char *p;
			size_t		len;

			if (jin_peek(in) != JK_OBJECT)
				rc = malformed(in, "an object expected for", "pk", err, errlen);
			else if ((rc = jin_span(in, &p, &len)) == 0)
			{
				free(he->pk);
				he->pk = xstrndup(p, len);
			}
		}
		else if (is(in, "table") || is(in, "error") || is(in, "first_failed") || is(in, "last_failed"))
		{
			char	  **to = is(in, "table") ? &he->table : is(in, "error") ? &he->error :
				is(in, "first_failed") ? &he->first_failed : &he->last_failed;

			free(*to);
			rc = read_str(in, to, err, errlen);
		}
		else
			rc = jin_skip(in);
		if (rc < 0)
			return -1;
	}
	/* what is missing is shown as empty */
	if (he->table == NULL)
		he->table = xstrdup("");
	if (he->pk == NULL)
		he->pk = xstrdup("{}");
	if (he->error == NULL)
		he->error = xstrdup("");
	if (he->first_failed == NULL)
		he->first_failed = xstrdup("");
	if (he->last_failed == NULL)
		he->last_failed = xstrdup("");
	return rc;
}

int
proto_decode_errors(const char *s, size_t n, ProtoErrors *r, char *err, size_t errlen)
{
	JsonIn		in;
	int64_t		v;
	int			rc = -1;

	memset(r, 0, sizeof(*r));
	r->conflicts = -1;
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "count"))
		{
			rc = read_int(&in, &v, err, errlen);
			if (rc == 0 && v < 0)
				rc = malformed(&in, "out of range:", "count", err, errlen);
			r->count = (long) v;
		}
		else if (is(&in, "conflicts"))
		{
			r->conflicts = -1;
			if (!jin_null(&in))
			{
				rc = read_int(&in, &v, err, errlen);
				if (rc == 0 && v < 0)
					rc = malformed(&in, "out of range:", "conflicts", err, errlen);
				r->conflicts = (long) v;
			}
		}
		else if (is(&in, "changes"))
		{
			if (jin_array(&in) < 0)
				rc = malformed(&in, "an array expected for", "changes", err, errlen);
			while (rc >= 0 && (rc = jin_item(&in)) > 0)
				rc = read_error_row(&in, r, err, errlen);
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	if (rc < 0)
	{
		hub_errors_free(r->rows, r->nrows);
		memset(r, 0, sizeof(*r));
	}
	return rc;
}

/* ---- the long poll --------------------------------------------------------------------------- */

void
proto_encode_wait(Buf *out, const ProtoWait *pw)
{
	JsonOut		w;

	jout_init(&w, out);
	jout_object(&w);
	jout_kstring(&w, "serve", pw->serve);
	jout_kint(&w, "changes", pw->changes);
	jout_kint(&w, "requests", pw->requests);
	jout_kstring(&w, "wake", pw->wake[0] ? pw->wake : NULL);
	jout_object_end(&w);
}

int
proto_decode_wait(const char *s, size_t n, ProtoWait *pw, char *err, size_t errlen)
{
	JsonIn		in;
	char	   *str = NULL;
	bool		have_serve = false;
	int			rc = -1;

	memset(pw, 0, sizeof(*pw));
	err[0] = '\0';
	if (begin(&in, s, n, err, errlen) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "changes"))
			rc = read_int(&in, &pw->changes, err, errlen);
		else if (is(&in, "requests"))
			rc = read_int(&in, &pw->requests, err, errlen);
		else if (is(&in, "serve") || is(&in, "wake"))
		{
			bool		serve = is(&in, "serve");

			rc = read_str(&in, &str, err, errlen);
			if (rc == 0 && str && strlen(str) >= (serve ? sizeof(pw->serve) : sizeof(pw->wake)))
				rc = malformed(&in, "too long:", serve ? "serve" : "wake", err, errlen);
			if (rc == 0 && serve)
			{
				have_serve = str != NULL;
				snprintf(pw->serve, sizeof(pw->serve), "%s", str ? str : "");
			}
			else if (rc == 0)
				snprintf(pw->wake, sizeof(pw->wake), "%s", str ? str : "");
			free(str);
			str = NULL;
		}
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, errlen);
	if (rc == 0 && !have_serve)
		rc = malformed(&in, "the reply has no serve id", NULL, err, errlen);
out:
	jin_free(&in);
	if (err[0])
		rc = -1;
	return rc;
}

/* ---- an error reply ------------------------------------------------------------------------------ */

int
proto_decode_error(const char *s, size_t n, char *msg, size_t msglen, bool *overtaken)
{
	JsonIn		in;
	char		err[256] = "";
	char	   *str = NULL;
	int			rc = -1;

	msg[0] = '\0';
	*overtaken = false;
	if (begin(&in, s, n, err, sizeof(err)) < 0)
		goto out;
	while ((rc = jin_key(&in)) > 0)
	{
		if (is(&in, "error"))
		{
			free(str);
			rc = read_str(&in, &str, err, sizeof(err));
		}
		else if (is(&in, "overtaken"))
			rc = read_bool(&in, overtaken, err, sizeof(err));
		else
			rc = jin_skip(&in);
		if (rc < 0)
			break;
	}
	rc = finish(&in, rc, err, sizeof(err));
	if (rc == 0 && str)
		snprintf(msg, msglen, "%s", str);
out:
	free(str);
	jin_free(&in);
	return rc == 0 && msg[0] ? 0 : -1;
}
