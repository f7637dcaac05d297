/*
 * page.c — the pages a link hands down (link.h), whichever link fills them.
 *
 *   link_page_reset         empty a page (its changes and rows freed)
 *   link_page_free          free it
 *   link_page_push_change   a new empty change at its end, with its txn_end
 *   link_page_push_row      a new empty row at its end
 */
#include "base/base.h"
#include "link/link.h"

#include <stdlib.h>
#include <string.h>

void
link_page_reset(LinkPage *p)
{
	for (int i = 0; i < p->changes.n; i++)
		change_free(&p->changes.c[i]);
	p->changes.n = 0;
	for (int i = 0; i < p->nrows; i++)
		jobj_free(&p->rows[i]);
	p->nrows = 0;
	p->more = false;
}

void
link_page_free(LinkPage *p)
{
	link_page_reset(p);
	changes_free(&p->changes);
	free(p->txn_end);
	free(p->rows);
	memset(p, 0, sizeof(*p));
}

Change *
link_page_push_change(LinkPage *p, int64_t txn_end)
{
	Change	   *c = changes_push(&p->changes);

	if (p->captxn < p->changes.cap)
	{
		p->captxn = p->changes.cap;
		p->txn_end = xrealloc(p->txn_end, (size_t) p->captxn * sizeof(int64_t));
	}
	p->txn_end[p->changes.n - 1] = txn_end;
	return c;
}

JObject *
link_page_push_row(LinkPage *p)
{
	if (p->nrows == p->caprows)
	{
		p->caprows = p->caprows ? p->caprows * 2 : 256;
		p->rows = xrealloc(p->rows, (size_t) p->caprows * sizeof(JObject));
	}
	memset(&p->rows[p->nrows], 0, sizeof(JObject));
	return &p->rows[p->nrows++];
}
