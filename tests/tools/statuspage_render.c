/*
 * statuspage_render — the status page of each JSON document on stdin.
 *
 *   statuspage_render <docs.ndjson >pages.html
 *
 * One status document per line (a client's, a hub's, or anything else:
 * a line that is not JSON is rendered as NULL); for each, the page that
 * replicator/statuspage.c makes of it, then a line "<!-- page end -->".
 * tests/integration/web_auto_sync.sh builds it, plain and under ASan +
 * UBSan, with replicator/statuspage.c, json.c, util.c and common/tz.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/statuspage.h"

int
main(void)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;

	while ((n = getline(&line, &cap, stdin)) >= 0)
	{
		json_error_t err;
		json_t	   *doc = json_loadb(line, (size_t) n, JSON_DECODE_ANY, &err);
		char	   *html = status_page_html(doc);

		fputs(html, stdout);
		fputs("<!-- page end -->\n", stdout);
		free(html);
		json_decref(doc);
	}
	free(line);
	return ferror(stdout) ? 1 : 0;
}
