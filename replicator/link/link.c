/*
 * link.c — what both links share: pages, choosing the transport.
 */
#include "syncqd.h"
#include "link/link.h"

#include <stdlib.h>
#include <string.h>

bool
link_is_libpq(const char *online)
{
	return strncmp(online, "postgresql://", 13) == 0 || strncmp(online, "postgres://", 11) == 0 ||
		(strchr(online, '=') != NULL && !link_is_http(online));
}

bool
link_is_http(const char *online)
{
	return strncmp(online, "http://", 7) == 0 || strncmp(online, "https://", 8) == 0;
}

Link *
link_connect(const char *online, const char *client_id, bool listen, char *err, size_t errlen)
{
	if (link_is_http(online))
		return link_http_connect(online, client_id, listen, err, errlen);
	return link_pg_connect(online, listen, err, errlen);
}

void
link_close(Link *l)
{
	if (l)
		l->ops->close(l);
}

const HubTable *
link_table(const Link *l, const char *name)
{
	int			lo = 0,
				hi = l->ntables - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(l->tables[mid].name, name);

		if (c == 0)
			return &l->tables[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* ---- pages ---------------------------------------------------------------- */

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
