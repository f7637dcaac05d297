/*
 * change.c — one change as syncqd carries it, and its version (change.h).
 *
 *   change_init        a change from a queue row's columns (pk, row as JSON text)
 *   change_take        a change from its parts, pk and row parsed
 *   change_take_parts, change_take_rows, change_drop_rows
 *                      ... in two steps, the rows later (and let go again)
 *   change_free        free one
 *   change_follow_column  a column renamed or dropped on the receiving side
 *   change_int_field   the integer a column of the change holds
 *   change_set_int     give a column of the change another integer (a key renamed)
 *   namemap_add, namemap_find, namemap_free   names gone: renamed or dropped
 *   changes_push       a new zeroed change at the end of a list
 *   changes_free       free a list
 *   format_instant_us  "YYYY-MM-DDTHH:MM:SS.ffffffZ" of µs since 1970
 *   digest_step        fold bytes into a running FNV-1a digest
 *   change_digest      fold a change into a node's upload digest
 *   version_cmp        order two versions
 *   row_key            the map key of a row
 *   vermap_get, vermap_put, vermap_max, vermap_free   a map row -> version
 */
#include "base/base.h"
#include "base/buf.h"
#include "model/change.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Compare two versions: by changed_at, then by origin node id. */
int
version_cmp(const Version *a, const Version *b)
{
	if (a->known != b->known)
		return a->known ? 1 : -1;
	if (!a->known)
		return 0;
	if (a->us != b->us)
		return a->us < b->us ? -1 : 1;
	return strcmp(a->origin, b->origin);
}

static char *
canonical(const JObject *o)
{
	Buf			b = {0};

	buf_json_object(&b, o);
	/* exact: a change lives as long as its upload, and a doubling buffer
	 * would keep up to twice the row's size (serve holds 5,000 of them) */
	return xrealloc(b.p, b.len + 1);
}

/*
 * Fill c from a change's parts but its pk and row (change_take_rows gives
 * them later): pk_fields, how many fields its pk has; has_row, whether it
 * has a row. Returns 0, or -1 with a message naming the bad value (c is
 * then empty).
 */
int
change_take_parts(Change *c, int64_t seq, const char *table, const char *op, int pk_fields,
				  bool has_row, int64_t ver_us, const char *origin, bool immediate,
				  char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->seq = seq;
	if (op == NULL || strlen(op) != 1 ||
		(op[0] != SYNCQ_OP_INSERT && op[0] != SYNCQ_OP_UPDATE && op[0] != SYNCQ_OP_DELETE))
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": bad op \"%s\"", seq, table, op ? op : "");
		goto fail;
	}
	c->op = op[0];
	if (pk_fields == 0)
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": empty pk", seq, table);
		goto fail;
	}
	if (c->op != SYNCQ_OP_DELETE && !has_row)
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": no row (an insert or update has one)", seq, table);
		goto fail;
	}
	if (origin == NULL || strlen(origin) != NODE_ID_LEN)
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": bad origin \"%s\"", seq, table, origin ? origin : "");
		goto fail;
	}
	c->table = xstrdup(table);
	c->ver_us = ver_us;
	c->changed_at = format_instant_us(ver_us);
	memcpy(c->origin, origin, NODE_ID_LEN + 1);
	c->immediate = immediate;
	return 0;
fail:
	memset(c, 0, sizeof(*c));
	return -1;
}

/*
 * Give c (of change_take_parts) its pk and row (NULL for none), parsed:
 * both are taken (moved into c; a delete's row is freed), and their
 * canonical text made.
 */
void
change_take_rows(Change *c, JObject *pk, JObject *row)
{
	c->pk = *pk;
	memset(pk, 0, sizeof(*pk));
	if (c->op != SYNCQ_OP_DELETE && row)
	{
		c->row = *row;
		memset(row, 0, sizeof(*row));
		c->has_row = true;
		c->row_json = canonical(&c->row);
	}
	else if (row)
		jobj_free(row);			/* a delete's row says nothing */
	c->pk_json = canonical(&c->pk);
}

/* Free c's pk and row (change_take_rows gives them again). */
void
change_drop_rows(Change *c)
{
	jobj_free(&c->pk);
	jobj_free(&c->row);
	c->has_row = false;
	free(c->pk_json);
	free(c->row_json);
	c->pk_json = c->row_json = NULL;
}

/*
 * Fill c from a change's parts, parsed: pk and row (NULL for none) are
 * taken (moved into c, or freed on failure). Returns 0, or -1 with a
 * message naming the bad value.
 */
int
change_take(Change *c, int64_t seq, const char *table, const char *op, JObject *pk,
			JObject *row, int64_t ver_us, const char *origin, bool immediate,
			char *err, size_t errlen)
{
	if (change_take_parts(c, seq, table, op, pk->n, row != NULL, ver_us, origin, immediate,
						  err, errlen) < 0)
	{
		jobj_free(pk);
		if (row)
			jobj_free(row);
		return -1;
	}
	change_take_rows(c, pk, row);
	return 0;
}

/*
 * Fill c from the columns of a queue row: pk and row are JSON text (row
 * may be NULL for a delete, and is not read then). Returns 0, or -1 with a
 * message naming the bad value.
 */
int
change_init(Change *c, int64_t seq, const char *table, const char *op,
			const char *pk, const char *row, int64_t ver_us,
			const char *origin, bool immediate, char *err, size_t errlen)
{
	JObject		opk,
				orow;
	bool		del = op && op[0] == SYNCQ_OP_DELETE && op[1] == '\0';
	char		e[128];

	memset(c, 0, sizeof(*c));
	if (pk == NULL || jobj_parse(pk, strlen(pk), &opk, e, sizeof(e)) < 0)
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": bad pk JSON (%s)", seq, table, pk ? e : "NULL");
		return -1;
	}
	if (!del && (row == NULL || jobj_parse(row, strlen(row), &orow, e, sizeof(e)) < 0))
	{
		snprintf(err, errlen, "change %" PRId64 " of \"%s\": bad row JSON (%s)", seq, table, row ? e : "NULL");
		jobj_free(&opk);
		return -1;
	}
	return change_take(c, seq, table, op, &opk, del ? NULL : &orow, ver_us, origin, immediate,
					   err, errlen);
}

/* Renames field col of o to "to", or removes it if to is NULL (or o has a
 * field named "to" already). True if o had col. */
static bool
jobj_follow(JObject *o, const char *col, const char *to)
{
	for (int i = 0; i < o->n; i++)
	{
		if (strcmp(o->f[i].key, col) != 0)
			continue;
		if (to != NULL && jobj_get(o, to) == NULL)
			jfield_set_key(&o->f[i], xstrdup(to));
		else
		{
			jfield_release(&o->f[i]);
			memmove(&o->f[i], &o->f[i + 1], sizeof(JField) * (size_t) (o->n - i - 1));
			o->n--;
		}
		return true;
	}
	return false;
}

/*
 * A column of the change that the receiving table has no more: renamed
 * (to: the field takes the new name) or dropped (to NULL: the field goes,
 * the rest of the change applies). The canonical JSON follows. True if the
 * change carried the column.
 */
bool
change_follow_column(Change *c, const char *col, const char *to)
{
	bool		had = false;

	if (jobj_follow(&c->pk, col, to))
	{
		free(c->pk_json);
		c->pk_json = canonical(&c->pk);
		had = true;
	}
	if (c->has_row && jobj_follow(&c->row, col, to))
	{
		free(c->row_json);
		c->row_json = canonical(&c->row);
		had = true;
	}
	return had;
}

/* After its pk or row changed: spell pk_json and row_json again. */
void
change_respell(Change *c)
{
	free(c->pk_json);
	c->pk_json = canonical(&c->pk);
	if (c->has_row)
	{
		free(c->row_json);
		c->row_json = canonical(&c->row);
	}
}

/*
 * The integer column col holds in the change (its row, or its key for a
 * delete): true and *v if it holds a JSON integer that fits 64 bits.
 */
bool
change_int_field(const Change *c, const char *col, int64_t *v)
{
	const JField *f = jobj_get(c->has_row ? &c->row : &c->pk, col);
	char	   *end;

	if (f == NULL || f->type != JV_NUMBER || f->len == 0 || f->len > 20)
		return false;
	errno = 0;
	*v = strtoll(f->text, &end, 10);
	return errno == 0 && end == f->text + f->len;
}

/* Put integer v as field f's value. */
static void
field_set_int(JField *f, int64_t v)
{
	char		num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	jfield_set_text(f, JV_NUMBER, xstrdup(num), strlen(num));
}

/*
 * Column col of the change (in its key and its row) holds from; make it
 * hold to (a key the hub renamed: the row's own, or a reference to it).
 * The canonical JSON follows. True if the change held it.
 */
bool
change_set_int(Change *c, const char *col, int64_t from, int64_t to)
{
	JObject    *objs[2] = {&c->pk, &c->row};
	char	  **jsons[2] = {&c->pk_json, &c->row_json};
	bool		had = false;

	for (int k = 0; k < 2; k++)
	{
		JField	   *f = NULL;
		int64_t		v;
		char	   *end;

		if (k == 1 && !c->has_row)
			continue;
		for (int i = 0; i < objs[k]->n && f == NULL; i++)
			if (strcmp(objs[k]->f[i].key, col) == 0)
				f = &objs[k]->f[i];
		if (f == NULL || f->type != JV_NUMBER)
			continue;
		errno = 0;
		v = strtoll(f->text, &end, 10);
		if (errno != 0 || end != f->text + f->len || v != from)
			continue;
		field_set_int(f, to);
		free(*jsons[k]);
		*jsons[k] = canonical(objs[k]);
		had = true;
	}
	return had;
}

void
namemap_add(NameMap *m, const char *from, const char *to)
{
	m->from = xrealloc(m->from, (size_t) (m->n + 1) * sizeof(char *));
	m->to = xrealloc(m->to, (size_t) (m->n + 1) * sizeof(char *));
	m->from[m->n] = xstrdup(from);
	m->to[m->n] = to ? xstrdup(to) : NULL;
	m->n++;
}

/* The place of name from in m, or -1. */
int
namemap_find(const NameMap *m, const char *from)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->from[i], from) == 0)
			return i;
	return -1;
}

void
namemap_free(NameMap *m)
{
	for (int i = 0; i < m->n; i++)
	{
		free(m->from[i]);
		free(m->to[i]);
	}
	free(m->from);
	free(m->to);
	memset(m, 0, sizeof(*m));
}

void
change_free(Change *c)
{
	jobj_free(&c->pk);
	jobj_free(&c->row);
	free(c->table);
	free(c->pk_json);
	free(c->row_json);
	free(c->changed_at);
	memset(c, 0, sizeof(*c));
}

Change *
changes_push(ChangeList *l)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 64;
		l->c = xrealloc(l->c, (size_t) l->cap * sizeof(Change));
	}
	memset(&l->c[l->n], 0, sizeof(Change));
	return &l->c[l->n++];
}

void
changes_free(ChangeList *l)
{
	for (int i = 0; i < l->n; i++)
		change_free(&l->c[i]);
	free(l->c);
	memset(l, 0, sizeof(*l));
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" for microseconds since 1970 (malloc'd). */
char *
format_instant_us(int64_t us)
{
	int64_t		q = us / 1000000,
				frac = us % 1000000;
	time_t		secs;
	struct tm	tm;
	char	   *out = xmalloc(64);

	if (frac < 0)
	{
		frac += 1000000;
		q--;
	}
	secs = (time_t) q;
	gmtime_r(&secs, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) frac);
	return out;
}

uint64_t
digest_step(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64_C(0x100000001b3);
	}
	/* a separator, so that ("ab","c") and ("a","bc") differ */
	h ^= 0xff;
	h *= UINT64_C(0x100000001b3);
	return h;
}

/* Fold one change into a node's running upload digest. */
uint64_t
change_digest(uint64_t h, const Change *c)
{
	char		num[64];
	char		op[2] = {c->op, 0};

	snprintf(num, sizeof(num), "%" PRId64, c->seq);
	h = digest_step(h, num, strlen(num));
	h = digest_step(h, c->table, strlen(c->table));
	h = digest_step(h, op, 1);
	h = digest_step(h, c->pk_json, strlen(c->pk_json));
	h = digest_step(h, c->row_json ? c->row_json : "", c->row_json ? strlen(c->row_json) : 0);
	snprintf(num, sizeof(num), "%" PRId64, c->ver_us);
	h = digest_step(h, num, strlen(num));
	return digest_step(h, c->origin, NODE_ID_LEN);
}

/* ---- a map from (table, pk) to the version of that row ---------------- */

static uint64_t
hash_str(const char *s)
{
	return digest_step(UINT64_C(0xcbf29ce484222325), s, strlen(s));
}

/* The map key of a row: table name, a unit separator, canonical pk JSON. */
char *
row_key(const char *table, const char *pk_json)
{
	size_t		a = strlen(table),
				b = strlen(pk_json);
	char	   *k = xmalloc(a + b + 2);

	memcpy(k, table, a);
	k[a] = '\x1f';
	memcpy(k + a + 1, pk_json, b + 1);
	return k;
}

static void
vermap_grow(VerMap *m)
{
	VerMap		n = {0};

	n.cap = m->cap ? m->cap * 2 : 1024;
	n.keys = xcalloc(n.cap, sizeof(char *));
	n.vals = xcalloc(n.cap, sizeof(Version));
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
		{
			size_t		j = hash_str(m->keys[i]) & (n.cap - 1);

			while (n.keys[j])
				j = (j + 1) & (n.cap - 1);
			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.n++;
		}
	free(m->keys);
	free(m->vals);
	*m = n;
}

Version *
vermap_get(const VerMap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t j = hash_str(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1))
		if (strcmp(m->keys[j], key) == 0)
			return &m->vals[j];
	return NULL;
}

/* Set key to v (the map copies key). */
void
vermap_put(VerMap *m, const char *key, const Version *v)
{
	Version    *cur = vermap_get(m, key);

	if (cur)
	{
		*cur = *v;
		return;
	}
	if ((m->n + 1) * 2 > m->cap)
		vermap_grow(m);
	size_t		j = hash_str(key) & (m->cap - 1);

	while (m->keys[j])
		j = (j + 1) & (m->cap - 1);
	m->keys[j] = xstrdup(key);
	m->vals[j] = *v;
	m->n++;
}

/* Raise key's version to v if v is greater. */
void
vermap_max(VerMap *m, const char *key, const Version *v)
{
	Version    *cur = vermap_get(m, key);

	if (cur == NULL || version_cmp(v, cur) > 0)
		vermap_put(m, key, v);
}

void
vermap_free(VerMap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}
