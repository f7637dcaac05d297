/*
 * hubinfo.c — the hub's tables and set-aside changes as every room sees
 * them (hubinfo.h).
 *
 *   hub_tables_find   a table by name (binary search)
 *   hub_col           a column's place in a table, or -1
 *   hub_col_generated is it a generated column of the table
 *   hub_tables_free   free an array of tables
 *   hub_errors_free   free an array of set-aside changes
 *   hub_errors_held   which of some seqs are among them
 *   key_renames_free  free an array of keys the hub renamed
 *   met_changes_free  free an array of changes set aside as meeting another record
 */
#include "model/hubinfo.h"

#include <stdlib.h>
#include <string.h>

HubTable *
hub_tables_find(HubTable *tables, int n, const char *name)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(tables[mid].name, name);

		if (c == 0)
			return &tables[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

int
hub_col(const HubTable *t, const char *col)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i], col) == 0)
			return i;
	return -1;
}

/* Is col a generated column of t? */
bool
hub_col_generated(const HubTable *t, const char *col)
{
	for (int i = 0; i < t->ngen; i++)
		if (strcmp(t->gencols[i], col) == 0)
			return true;
	return false;
}

/* Free n tables' descriptions and the array. */
void
hub_tables_free(HubTable *tables, int n)
{
	for (int i = 0; i < n; i++)
	{
		HubTable   *t = &tables[i];

		free(t->schema);
		free(t->name);
		free(t->qname);
		free(t->keyseq);
		free(t->keycol);
		free(t->always);
		namemap_free(&t->refs);
		for (int c = 0; c < t->ncols; c++)
		{
			free(t->cols[c]);
			free(t->types[c]);
		}
		for (int c = 0; c < t->ngen; c++)
			free(t->gencols[c]);
		free(t->cols);
		free(t->types);
		free(t->kinds);
		free(t->is_pk);
		free(t->pk_pos);
		namemap_free(&t->gone);
		free(t->gencols);
	}
	free(tables);
}

void
hub_errors_free(HubError *rows, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(rows[i].table);
		free(rows[i].pk);
		free(rows[i].error);
		free(rows[i].first_failed);
		free(rows[i].last_failed);
	}
	free(rows);
}


void
key_renames_free(KeyRename *r, int n)
{
	for (int i = 0; i < n; i++)
	{
		free(r[i].table);
		free(r[i].column);
	}
	free(r);
}

void
met_changes_free(MetChange *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].error);
	free(m);
}

int
hub_errors_held(const HubError *rows, int nrows, const int64_t *seqs, int n, bool *held)
{
	int			r = 0,
				found = 0;

	for (int i = 0; i < n; i++)
	{
		while (r < nrows && rows[r].seq < seqs[i])
			r++;
		held[i] = r < nrows && rows[r].seq == seqs[i];
		found += held[i];
	}
	return found;
}
