/*
 * tables.c — the hub's tracked tables (hub.h): their columns, types and
 * primary keys, read from the catalog, and how a first sync reads them.
 *
 *   hub_load_tables   (re)read them into h->tables, sorted by name, with the
 *                     columns each had and has no more (sync_columns_gone)
 *                     and the names they had (sync_tables_renamed)
 *                     and the sequence behind each single integer key
 *   hub_table         the one called name
 *   hub_rows_sql      the SELECT of a table's rows as a first sync reads them
 */
#include "base/base.h"
#include "base/buf.h"
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The loaded tracked table schema.name, or NULL. */
static HubTable *
table_in(Hub *h, const char *schema, const char *name)
{
	for (int i = 0; i < h->ntables; i++)
		if (strcmp(h->tables[i].schema, schema) == 0 && strcmp(h->tables[i].name, name) == 0)
			return &h->tables[i];
	return NULL;
}

/*
 * The columns each tracked table had and has no more (sync_columns_gone,
 * kept by the event trigger syncq_watch_ddl): a client change that still
 * carries one is followed (renamed, or the column dropped from it) rather
 * than set aside.
 */
static int
load_gone_columns(Hub *h, char *err, size_t errlen)
{
	PGresult   *res = hub_prep(h, "SELECT g.table_schema, g.table_name, g.column_name, g.renamed_to"
							  "  FROM sync_columns_gone g ORDER BY 1, 2, 3",
							  0, NULL, PGRES_TUPLES_OK, err, errlen);

	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		HubTable   *t = table_in(h, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));

		if (t)
			namemap_add(&t->gone, PQgetvalue(res, r, 2),
						PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3));
	}
	PQclear(res);
	return 0;
}

/*
 * The names tracked tables had (sync_tables_renamed, kept by the event
 * trigger syncq_watch_ddl): a client change that still names a table so is
 * applied to the table under its name now rather than set aside.
 */
static int
load_renamed_tables(Hub *h, char *err, size_t errlen)
{
	PGresult   *res = hub_prep(h, "SELECT table_name, renamed_to FROM sync_tables_renamed ORDER BY 1",
							  0, NULL, PGRES_TUPLES_OK, err, errlen);

	namemap_free(&h->renamed);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		namemap_add(&h->renamed, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
	PQclear(res);
	return 0;
}

/*
 * The sequence behind each tracked table's key, where the key is one
 * integer column the database assigns (serial, identity, or a default of
 * nextval of a sequence): the hub keeps it ahead of every key a client
 * sends (apply.c), so that the hub's own app never meets a synced key, and
 * gives a client's new row a key of it when its key is another record's
 * (keys.c). Then the columns that reference such keys (foreign keys of one
 * column), which follow a key the hub renamed.
 */
static int
load_key_sequences(Hub *h, char *err, size_t errlen)
{
	PGresult   *res;

	/* the policy 'natural', whatever the key */
	res = hub_prep(h, "SELECT table_schema, table_name FROM sync_tables WHERE keys = 'natural'",
				  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		HubTable   *t = table_in(h, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));

		if (t != NULL)
			t->natural = true;
	}
	PQclear(res);
	res = hub_prep(h,
							  "SELECT t.table_schema, t.table_name, a.attname,"
							  "       coalesce(pg_get_serial_sequence(t.relid::regclass::text, a.attname),"
							  "                (SELECT d.refobjid::regclass::text"
							  "                   FROM pg_attrdef ad JOIN pg_depend d"
							  "                     ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid"
							  "                    AND d.refclassid = 'pg_class'::regclass"
							  "                   JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
							  "                  WHERE ad.adrelid = t.relid AND ad.adnum = a.attnum"
							  "                  ORDER BY 1 LIMIT 1)),"
							  "       t.keys = 'natural'"
							  "  FROM sync_tables t"
							  "  JOIN pg_index i ON i.indrelid = t.relid AND i.indisprimary AND i.indnkeyatts = 1"
							  "  JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum = i.indkey[0]"
							  " WHERE a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)",
							  0, NULL, PGRES_TUPLES_OK, err, errlen);

	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		HubTable   *t = table_in(h, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));

		if (t == NULL || PQgetisnull(res, r, 3))
			continue;
		free(t->keyseq);
		free(t->keycol);
		t->keyseq = xstrdup(PQgetvalue(res, r, 3));
		t->keycol = xstrdup(PQgetvalue(res, r, 2));
		t->natural = PQgetvalue(res, r, 4)[0] == 't';
	}
	PQclear(res);
	/* the references to those keys: single-column foreign keys */
	res = hub_prep(h,
				  "SELECT t.table_schema, t.table_name, a.attname, p.table_name, pa.attname"
				  "  FROM sync_tables t"
				  "  JOIN pg_constraint c ON c.conrelid = t.relid::oid AND c.contype = 'f'"
				  "   AND cardinality(c.conkey) = 1"
				  "  JOIN pg_attribute a ON a.attrelid = t.relid::oid AND a.attnum = c.conkey[1]"
				  "  JOIN sync_tables p ON p.relid::oid = c.confrelid"
				  "  JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]"
				  " ORDER BY 1, 2, 3",
				  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
	{
		HubTable   *t = table_in(h, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1)),
				   *p = hub_table(h, PQgetvalue(res, r, 3));

		if (t && p && p->keycol && strcmp(p->keycol, PQgetvalue(res, r, 4)) == 0)
			namemap_add(&t->refs, PQgetvalue(res, r, 2), p->name);
	}
	PQclear(res);
	return 0;
}

/*
 * Load the tracked tables with their columns, types and primary keys. A
 * domain's type is its base type (what its values look like); generated
 * columns are listed apart (no node ships them).
 */
int
hub_load_tables(Hub *h, char *err, size_t errlen)
{
	PGresult   *res;

	hub_tables_free(h->tables, h->ntables);
	h->tables = NULL;
	h->ntables = 0;
	res = hub_prep(h,
			  "SELECT t.table_schema, t.table_name, a.attname,"
			  "       format_type(CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END, NULL),"
			  "       coalesce((SELECT k.n FROM pg_index i,"
			  "                        unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n)"
			  "                  WHERE i.indrelid = t.relid AND i.indisprimary AND k.att = a.attnum), 0),"
			  "       a.attgenerated <> '',"
			  "       a.attidentity = 'a',"
			  "       ty.typtype = 'd'"
			  "  FROM sync_tables t"
			  /* lateral, not joins: the planner does not know sync_tables is
			   * small, and hashed all of pg_attribute and pg_type (0.6 ms
			   * here, more with every table of the database) */
			  " CROSS JOIN LATERAL (SELECT a.attname, a.atttypid, a.attnum, a.attgenerated, a.attidentity"
			  "                       FROM pg_attribute a"
			  "                      WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped"
			  "                     OFFSET 0) a"
			  " CROSS JOIN LATERAL (SELECT ty.typtype, ty.typbasetype FROM pg_type ty"
			  "                      WHERE ty.oid = a.atttypid OFFSET 0) ty"
			  " ORDER BY t.table_name, t.table_schema, a.attnum",
			  0, NULL, PGRES_TUPLES_OK, err, errlen);
	if (res == NULL)
		return -1;
	h->tables_digest = 14695981039346656037ULL;
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *schema = PQgetvalue(res, r, 0),
				   *name = PQgetvalue(res, r, 1);
		HubTable   *t = h->ntables ? &h->tables[h->ntables - 1] : NULL;

		/* (not the last column: digests stay those of older releases) */
		for (int c = 0; c < 7; c++)
			h->tables_digest = digest_step(h->tables_digest, PQgetvalue(res, r, c),
										   (size_t) PQgetlength(res, r, c) + 1);

		if (t == NULL || strcmp(t->schema, schema) != 0 || strcmp(t->name, name) != 0)
		{
			h->tables = xrealloc(h->tables, (size_t) (h->ntables + 1) * sizeof(HubTable));
			t = &h->tables[h->ntables++];
			memset(t, 0, sizeof(*t));
			t->schema = xstrdup(schema);
			t->name = xstrdup(name);
			{
				char	   *qs = hub_quote_ident(h, schema),
						   *qn = hub_quote_ident(h, name);
				Buf			b = {0};

				buf_printf(&b, "%s.%s", qs, qn);
				t->qname = b.p;
				free(qs);
				free(qn);
			}
		}
		if (PQgetvalue(res, r, 5)[0] == 't')
		{
			t->gencols = xrealloc(t->gencols, (size_t) (t->ngen + 1) * sizeof(char *));
			t->gencols[t->ngen++] = xstrdup(PQgetvalue(res, r, 2));
			continue;
		}
		if (PQgetvalue(res, r, 6)[0] == 't' && t->always == NULL)
			t->always = xstrdup(PQgetvalue(res, r, 2));
		t->cols = xrealloc(t->cols, (size_t) (t->ncols + 1) * sizeof(char *));
		t->types = xrealloc(t->types, (size_t) (t->ncols + 1) * sizeof(char *));
		t->kinds = xrealloc(t->kinds, (size_t) (t->ncols + 1) * sizeof(ValueKind));
		t->is_pk = xrealloc(t->is_pk, (size_t) (t->ncols + 1) * sizeof(bool));
		t->pk_pos = xrealloc(t->pk_pos, (size_t) (t->ncols + 1) * sizeof(int));
		t->cols[t->ncols] = xstrdup(PQgetvalue(res, r, 2));
		t->types[t->ncols] = xstrdup(PQgetvalue(res, r, 3));
		t->kinds[t->ncols] = value_kind(t->types[t->ncols]);
		t->pk_pos[t->ncols] = atoi(PQgetvalue(res, r, 4));
		t->is_pk[t->ncols] = t->pk_pos[t->ncols] > 0;
		if (t->is_pk[t->ncols])
		{
			t->npk++;
			if (PQgetvalue(res, r, 7)[0] == 't')
				t->key_domain = true;
		}
		t->ncols++;
	}
	PQclear(res);
	if (load_gone_columns(h, err, errlen) < 0 || load_renamed_tables(h, err, errlen) < 0 ||
		load_key_sequences(h, err, errlen) < 0)
		return -1;
	for (int i = 1; i < h->ntables; i++)
		if (strcmp(h->tables[i].name, h->tables[i - 1].name) == 0)
		{
			snprintf(err, errlen, "hub: table name \"%s\" is tracked in two schemas (\"%s\" and \"%s\"); a client cannot tell them apart",
					 h->tables[i].name, h->tables[i - 1].schema, h->tables[i].schema);
			return -1;
		}
	return 0;
}

/* The tracked table called name, NULL if none (after hub_load_tables). */
HubTable *
hub_table(Hub *h, const char *name)
{
	return hub_tables_find(h->tables, h->ntables, name);
}

/*
 * The SELECT of every row of t for a first sync (malloc'd), each as the
 * JSON its capture writes (sync_row_json(), so the first sync and the
 * changes after it spell every value alike, generated columns left out;
 * a hub whose syncq is older has row_to_json(), whose forms the client
 * reads too). The row is called syncq_row, for a WHERE or ORDER BY the
 * caller adds.
 */
char *
hub_rows_sql(Hub *h, const HubTable *t)
{
	Buf			sql = {0};
	char	   *lit;

	if (!h->row_json_fn)
	{
		buf_printf(&sql, "SELECT row_to_json(syncq_row)::text FROM ONLY %s AS syncq_row", t->qname);
		return sql.p;
	}
	lit = PQescapeLiteral(h->conn, t->qname, strlen(t->qname));
	buf_printf(&sql, "SELECT sync_row_json(%s::regclass, syncq_row)::text FROM ONLY %s AS syncq_row",
			   lit ? lit : "NULL", t->qname);
	PQfreemem(lit);
	return sql.p;
}
