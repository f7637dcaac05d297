/*
 * page.c — the pages a link hands down (link.h), whichever link fills them.
 *
 *   link_page_reset         empty a page (release what it points into)
 *   link_page_free          free it
 *   link_page_push_change   a new change at its end
 *   link_page_push_row      a new first-sync row at its end
 */
#include "base/base.h"
#include "link/link.h"

#include <stdlib.h>
#include <string.h>

void
link_page_reset(LinkPage *p)
{
	if (p->release && p->owner)
		p->release(p->owner);
	p->release = NULL;
	p->owner = NULL;
	p->n = 0;
	p->more = false;
}

void
link_page_free(LinkPage *p)
{
	link_page_reset(p);
	free(p->c);
	free(p->row);
	free(p->rowlen);
	memset(p, 0, sizeof(*p));
}

static void
grow(LinkPage *p)
{
	if (p->n < p->cap)
		return;
	p->cap = p->cap ? p->cap * 2 : 256;
	p->c = xrealloc(p->c, (size_t) p->cap * sizeof(DownChange));
	p->row = xrealloc(p->row, (size_t) p->cap * sizeof(char *));
	p->rowlen = xrealloc(p->rowlen, (size_t) p->cap * sizeof(size_t));
}

DownChange *
link_page_push_change(LinkPage *p)
{
	grow(p);
	memset(&p->c[p->n], 0, sizeof(DownChange));
	return &p->c[p->n++];
}

void
link_page_push_row(LinkPage *p, const char *json, size_t len)
{
	grow(p);
	p->row[p->n] = json;
	p->rowlen[p->n++] = len;
}
