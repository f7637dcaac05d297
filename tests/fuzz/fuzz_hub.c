/*
 * fuzz_hub.c — the second half of fuzz_proto: every upload the request
 * decoder accepts goes on through the hub's value encoding, the code that
 * writes the JSON arrays json_populate_recordset and sync_normalize_keys
 * read (replicator/hub/apply.c: validate — change_for_hub, check_columns,
 * check_json_values — then run_rows and key_object), as serve runs it
 * before any statement. No database: the hub's tables are the fixed ones
 * below, described as hub_load_tables would.
 *
 * apply.c is included, not linked, so that its static steps are reached
 * as they are, unchanged; the rest of hub/ is linked (libpq), unused.
 *
 * The promise checked (a broken one aborts: a finding for libFuzzer): a
 * run of changes the hub would apply encodes as one JSON array of exactly
 * one object per change, each with exactly the change's columns, in its
 * order, no more; a change's key as exactly its key columns. A json or
 * jsonb text that ends its own value ({"x":1}},{"id":666}: a hidden row;
 * {"z":3},"id":500: a second key) breaks it (docs/security.md).
 */
#include "hub/apply.c"

#include "fuzz_hub.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_hub: broken promise: %s (line %d)\n", #cond, __LINE__); \
			abort(); \
		} \
	} while (0)

/* ---- the hub's tables ------------------------------------------------------ */

typedef struct
{
	const char *name;
	const char *cols[12];
	const char *types[12];
	int			npk;			/* the first npk columns are the key */
	const char *gencol;			/* a generated column, or NULL */
} TableSpec;

/* Sorted by name, as hub_load_tables leaves them. audit and typed are the
 * tables of the request corpus; docs and pairs have json keys and values. */
static const TableSpec specs[] = {
	{"audit", {"id", "task", "done_on"}, {"integer", "text", "date"}, 1, NULL},
	{"docs", {"id", "doc", "note", "body", "data", "at", "u", "n", "flag", "tags"},
	 {"bigint", "jsonb", "json", "text", "bytea", "timestamp with time zone", "uuid",
	  "numeric", "boolean", "integer[]"}, 1, "doc_size"},
	{"pairs", {"k", "site", "j", "day"}, {"jsonb", "text", "json", "date"}, 2, NULL},
	{"typed", {"id", "big", "num", "f8", "flag", "t", "ba", "j", "nothing"},
	 {"integer", "bigint", "numeric", "double precision", "boolean", "text", "bytea",
	  "jsonb", "text"}, 1, NULL},
};
#define NSPECS ((int) (sizeof(specs) / sizeof(specs[0])))

static HubTable tables[NSPECS];
static bool tables_made;
static bool verbose;			/* $FUZZ_HUB_VERBOSE: say what each input came to */

static void
make_tables(void)
{
	for (int s = 0; s < NSPECS; s++)
	{
		HubTable   *t = &tables[s];
		int			n = 0;

		while (n < 12 && specs[s].cols[n])
			n++;
		t->schema = "public";
		t->name = (char *) specs[s].name;
		t->qname = (char *) specs[s].name;
		t->ncols = n;
		t->cols = (char **) specs[s].cols;
		t->types = (char **) specs[s].types;
		t->kinds = xcalloc((size_t) n, sizeof(ValueKind));
		t->is_pk = xcalloc((size_t) n, sizeof(bool));
		t->pk_pos = xcalloc((size_t) n, sizeof(int));
		for (int i = 0; i < n; i++)
		{
			t->kinds[i] = value_kind(t->types[i]);
			t->is_pk[i] = i < specs[s].npk;
			t->pk_pos[i] = i < specs[s].npk ? i + 1 : 0;
		}
		t->npk = specs[s].npk;
		if (specs[s].gencol)
		{
			t->gencols = (char **) &specs[s].gencol;
			t->ngen = 1;
		}
	}
	verbose = getenv("FUZZ_HUB_VERBOSE") != NULL;
	tables_made = true;
}

/* ---- the promise ---------------------------------------------------------- */

/*
 * in is at an object; it must hold exactly the keys of fields fi[0..n) of
 * o, in that order (a value of any kind each), and end there.
 */
static void
check_object(JsonIn *in, const JObject *o, const int *fi, int n)
{
	CHECK(jin_peek(in) == JK_OBJECT);
	CHECK(jin_object(in) == 0);
	for (int i = 0; i < n; i++)
	{
		CHECK(jin_key(in) == 1);
		CHECK(strcmp(in->key.p, o->f[fi[i]].key) == 0);
		CHECK(jin_skip(in) == 0);
	}
	CHECK(jin_key(in) == 0);
}

/* The array run_rows wrote for d's changes idx[0..n): one object each. */
static void
check_run(const Buf *arr, const Decision *d, const int *idx, int n, bool del)
{
	JsonIn		in;
	int			all[256];

	for (int i = 0; i < 256; i++)
		all[i] = i;
	jin_init(&in, arr->p, arr->len, false);
	CHECK(jin_array(&in) == 0);
	for (int r = 0; r < n; r++)
	{
		const JObject *o = del ? &d->cs[idx[r]]->pk : &d->cs[idx[r]]->row;

		CHECK(jin_item(&in) == 1);
		check_object(&in, o, all, o->n);
	}
	CHECK(jin_item(&in) == 0);
	CHECK(jin_end(&in) == 0);
	jin_free(&in);
}

/* The key key_object wrote for o: its key columns, in o's order. */
static void
check_key(const Buf *b, const HubTable *t, const JObject *o)
{
	JsonIn		in;
	int			fi[256],
				n = 0;

	for (int i = 0; i < o->n && n < 256; i++)
	{
		int			col = hub_col(t, o->f[i].key);

		if (col >= 0 && t->is_pk[col])
			fi[n++] = i;
	}
	jin_init(&in, b->p, b->len, false);
	check_object(&in, o, fi, n);
	CHECK(jin_end(&in) == 0);
	jin_free(&in);
}

/*
 * The changes left to try after validate(), in runs as apply_winners makes
 * them (one table, one kind, one column set, up to RUN_MAX), each written
 * by run_rows and checked; and each change's keys as key_object writes
 * them for sync_normalize_keys.
 */
static void
encode_runs(Hub *h, Decision *d)
{
	int		   *idx = xmalloc(sizeof(int) * (size_t) (d->n + 1));
	int			m = 0;

	for (int i = 0; i < d->n; i++)
		if (d->out[i].done != DONE_FAILED)
			idx[m++] = i;
	for (int i = 0; i < m;)
	{
		const Change *c0 = d->cs[idx[i]];
		const HubTable *t = hub_table(h, c0->table);
		bool		del = c0->op == SYNCQ_OP_DELETE;
		int			j = i;
		Buf			arr = {0};

		CHECK(t != NULL);
		while (j < m && j - i < RUN_MAX)
		{
			const Change *c = d->cs[idx[j]];

			if (strcmp(c->table, c0->table) != 0 || (c->op == SYNCQ_OP_DELETE) != del ||
				!same_columns(del ? &c->pk : &c->row, del ? &c0->pk : &c0->row))
				break;
			j++;
		}
		run_rows(t, d, &idx[i], j - i, del, &arr);
		if (verbose)
			fprintf(stderr, "fuzz_hub: run of %d: %s\n", j - i, arr.p);
		check_run(&arr, d, &idx[i], j - i, del);
		buf_free(&arr);
		i = j;
	}
	for (int r = 0; r < m; r++)
	{
		const Change *c = d->cs[idx[r]];
		const HubTable *t = hub_table(h, c->table);

		for (int k = 0; k < 2; k++)
		{
			const JObject *o = k == 0 && c->op != SYNCQ_OP_DELETE ? &c->row : &c->pk;
			Buf			b = {0};
			JsonOut		w;

			jout_init(&w, &b);
			key_object(&w, t, o);
			check_key(&b, t, o);
			buf_free(&b);
		}
	}
	free(idx);
}

void
fuzz_hub_upload(ChangeList *changes)
{
	Hub			h = {0};
	Decision	d = {0};
	int			n = changes->n;

	if (!tables_made)
		make_tables();
	h.tables = tables;
	h.ntables = NSPECS;
	d.n = n;
	d.cs = xmalloc(sizeof(Change *) * (size_t) (n + 1));
	for (int i = 0; i < n; i++)
		d.cs[i] = &changes->c[i];
	d.out = xcalloc((size_t) n + 1, sizeof(Outcome));
	d.sent_pk = xcalloc((size_t) n + 1, sizeof(char *));
	d.sent_row = xcalloc((size_t) n + 1, sizeof(char *));
	d.floor = xcalloc((size_t) h.ntables + 1, sizeof(int64_t));
	validate(&h, &d);
	for (int i = 0; i < n; i++)
	{
		CHECK(d.out[i].done != DONE_FAILED || (d.out[i].why && d.out[i].why[0]));
		if (verbose && d.out[i].done == DONE_FAILED)
			fprintf(stderr, "fuzz_hub: refused: %s\n", d.out[i].why);
	}
	encode_runs(&h, &d);
	for (int i = 0; i < n; i++)
	{
		free(d.sent_pk[i]);
		free(d.sent_row[i]);
	}
	free(d.sent_pk);
	free(d.sent_row);
	free(d.floor);
	outcomes_free(d.out, n);
	free(d.cs);
	free(h.gone_logged);
}
