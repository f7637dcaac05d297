/*
 * statuspage.c — the status page, GET / on the control port and on
 * `syncqd serve`.
 *
 * One small HTML page, made from the same JSON document as
 * GET /api/sync/status, that a person reads at a glance: who this is (role,
 * node id), the last sync and its result, the lag, the queue depth per
 * table, the changes set aside and the conflicts, the time zone. It reloads
 * itself every STATUS_REFRESH_S seconds and loads nothing else (the style is
 * inline, there is no script). Every text of the document is HTML-escaped:
 * table names, keys and error messages come from the databases.
 *
 * Both shapes are rendered: a client's (role "client", control.c's
 * build_status()) and a hub's (role "hub": clients, errors.changes,
 * conflicts.recent, requests). Any field may be missing, null or of
 * another type; what is there is shown, what is not is a dash.
 *
 *   status_page_html   the page of a status document (its cards and
 *                      sections: the static card_* and section_* below)
 */
#include "base/base.h"
#include "base/buf.h"
#include "http/statuspage.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tz.h"

#define STATUS_REFRESH_S 5

/* The most rows a list of the page shows. */
#define LIST_MAX 50

/* Lag above these is shown as a warning, then as a problem. */
#define LAG_WARN_S 60.0
#define LAG_BAD_S 3600.0

/* ---- reading the document ------------------------------------------------ */

static json_t *
get(json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(get(o, key));
}

/* A number at o.key into *v; false if it is missing or not a number. */
static bool
num(json_t *o, const char *key, double *v)
{
	json_t	   *j = get(o, key);

	if (!json_is_number(j))
		return false;
	*v = json_number_value(j);
	return true;
}

/* A text instant (ISO-8601, or PostgreSQL's output) as microseconds. */
static bool
instant(json_t *j, int64_t *us)
{
	const char *s = json_string_value(j);
	int64_t		sec;
	int32_t		usec;

	if (s == NULL || syncq_parse_instant(s, (int) strlen(s), &sec, &usec) != 0)
		return false;
	*us = sec * 1000000 + usec;
	return true;
}

/* ---- writing -------------------------------------------------------------- */

/* s, HTML-escaped (for text and for attribute values alike). */
static void
put_esc(Buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++)
	{
		const char *rep;

		switch (*s)
		{
			case '&':
				rep = "&amp;";
				break;
			case '<':
				rep = "&lt;";
				break;
			case '>':
				rep = "&gt;";
				break;
			case '"':
				rep = "&quot;";
				break;
			case '\'':
				rep = "&#39;";
				break;
			default:
				continue;
		}
		buf_putn(b, run, (size_t) (s - run));
		buf_puts(b, rep);
		run = s + 1;
	}
	buf_puts(b, run);
}

static void
put_dash(Buf *b)
{
	buf_puts(b, "<span class=\"muted\">\xe2\x80\x94</span>");
}

/* Any value as text: strings as they are, numbers, yes/no, JSON otherwise. */
static void
put_value(Buf *b, json_t *v)
{
	char	   *t;

	if (v == NULL)
	{
		put_dash(b);
		return;
	}
	switch (json_typeof(v))
	{
		case JSON_STRING:
			put_esc(b, json_string_value(v));
			return;
		case JSON_INTEGER:
			buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			return;
		case JSON_REAL:
			buf_printf(b, "%g", json_real_value(v));
			return;
		case JSON_TRUE:
			buf_puts(b, "yes");
			return;
		case JSON_FALSE:
			buf_puts(b, "no");
			return;
		case JSON_OBJECT:
		case JSON_ARRAY:
			t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
			if (t)
			{
				put_esc(b, t);
				free(t);
				return;
			}
			break;
		case JSON_NULL:
			break;
	}
	put_dash(b);
}

/* o.key as text; missing is a dash. */
static void
put_field(Buf *b, json_t *o, const char *key)
{
	put_value(b, get(o, key));
}

/* A length of time a person reads: "4 ms", "2.5 s", "3 min 4 s", "2 h 5 min". */
static void
put_duration(Buf *b, double s)
{
	long long	n;

	if (s < 0)
		s = 0;
	if (s < 1)
		buf_printf(b, "%.0f ms", s * 1000);
	else if (s < 60)
		buf_printf(b, "%.1f s", s);
	else if ((n = (long long) (s + 0.5)) < 3600)
		buf_printf(b, "%lld min %lld s", n / 60, n % 60);
	else if (n < 86400)
		buf_printf(b, "%lld h %lld min", n / 3600, n % 3600 / 60);
	else
		buf_printf(b, "%lld d %lld h", n / 86400, n % 86400 / 3600);
}

/* The same in one unit, for a card: "4 s", "43 min", "2 h", "3 d". */
static void
put_duration_short(Buf *b, double s)
{
	long long	n = (long long) (s < 0 ? 0 : s + 0.5);

	if (s < 1)
		put_duration(b, s);
	else if (n < 60)
		buf_printf(b, "%lld s", n);
	else if (n < 3600)
		buf_printf(b, "%lld min", n / 60);
	else if (n < 86400)
		buf_printf(b, "%lld h", n / 3600);
	else
		buf_printf(b, "%lld d", n / 86400);
}

/* An instant as "YYYY-MM-DD HH:MM:SS UTC" and how long ago; raw text if unparsable. */
static void
put_instant(Buf *b, json_t *j, int64_t now, bool ago)
{
	int64_t		us;
	time_t		t;
	struct tm	tm;
	char		text[64];

	if (!instant(j, &us))
	{
		if (json_is_string(j))
			put_esc(b, json_string_value(j));
		else
			put_dash(b);
		return;
	}
	t = (time_t) (us / 1000000 - (us % 1000000 < 0));
	if (gmtime_r(&t, &tm) == NULL || strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
	{
		put_esc(b, json_string_value(j));
		return;
	}
	buf_printf(b, "<time datetime=\"");
	put_esc(b, json_string_value(j));
	buf_printf(b, "\">%s</time>", text);
	if (ago)
	{
		buf_puts(b, " <span class=\"muted\">(");
		if (now - us < 1000000)
			buf_puts(b, "just now");
		else
		{
			put_duration(b, (double) (now - us) / 1e6);
			buf_puts(b, " ago");
		}
		buf_puts(b, ")</span>");
	}
}

/* A node id in a list: the first 8 characters, the whole one on hover. */
static void
put_node(Buf *b, json_t *j)
{
	const char *s = json_string_value(j);
	char		shortid[9];

	if (s == NULL)
	{
		put_dash(b);
		return;
	}
	if (strlen(s) <= 13)
	{
		buf_puts(b, "<code>");
		put_esc(b, s);
		buf_puts(b, "</code>");
		return;
	}
	memcpy(shortid, s, 8);
	shortid[8] = '\0';
	/* not in the middle of a UTF-8 character */
	for (int i = 8; i > 0 && ((unsigned char) s[i] & 0xC0) == 0x80; i--)
		shortid[i - 1] = '\0';
	buf_puts(b, "<code title=\"");
	put_esc(b, s);
	buf_puts(b, "\">");
	put_esc(b, shortid);
	buf_puts(b, "\xe2\x80\xa6</code>");
}

/* ---- the parts of the page ------------------------------------------------ */

static const char style[] =
	"body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\",sans-serif;"
	"margin:0;padding:20px 28px;background:#f6f7f9;color:#1d2330}"
	"h1{font-size:20px;margin:0 0 2px}"
	"h1 .role{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.06em;"
	"background:#1d2330;color:#fff;border-radius:4px;padding:2px 7px;margin-left:8px;vertical-align:3px}"
	"h2{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#5b6475;margin:22px 0 8px}"
	".sub{color:#5b6475;margin:0}"
	"code{font:12.5px ui-monospace,\"DejaVu Sans Mono\",monospace;overflow-wrap:break-word}"
	".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-top:18px}"
	".card{background:#fff;border:1px solid #dde1e7;border-left:5px solid #9aa3b2;border-radius:6px;padding:10px 14px}"
	".card h2{margin:0 0 4px}"
	".card .big{font-size:24px;font-weight:650;margin:0}"
	".card p{margin:2px 0 0;color:#5b6475;font-size:12.5px}"
	".ok{border-left-color:#2f9e55}.ok .big{color:#23804a}"
	".warn{border-left-color:#d9a21b}.warn .big{color:#9a6d00}"
	".bad{border-left-color:#d6453d}.bad .big{color:#c0342c}"
	"table{border-collapse:collapse;background:#fff;border:1px solid #dde1e7;border-radius:6px;min-width:320px}"
	"th,td{text-align:left;padding:5px 12px;border-bottom:1px solid #eceff3;vertical-align:top}"
	"th{font-size:12px;color:#5b6475;font-weight:600;background:#fafbfc}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	"td.err{color:#a3271f;max-width:520px;overflow-wrap:anywhere}"
	".card p.err{color:#a3271f;overflow-wrap:anywhere}"
	"td.w{white-space:nowrap}"
	".muted{color:#8a93a3}"
	".none{color:#5b6475;margin:0}"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0}"
	"dt{color:#5b6475}dd{margin:0}"
	"footer{margin-top:24px;padding-top:10px;border-top:1px solid #dde1e7;color:#5b6475;font-size:12.5px}"
	"a{color:#2458b3}";

static void
card_begin(Buf *b, const char *cls, const char *title)
{
	buf_printf(b, "<div class=\"card %s\"><h2>%s</h2><p class=\"big\">", cls, title);
}

/* The last sync: a client's own; on a hub, the newest client seen. */
static void
card_last_sync(Buf *b, json_t *s, bool hub, int64_t now)
{
	json_t	   *last = get(s, "last_sync");
	json_t	   *clients = get(s, "clients");
	double		secs;

	if (json_is_object(last))
	{
		json_t	   *ok = get(last, "ok");

		card_begin(b, json_is_true(ok) ? "ok" : json_is_false(ok) ? "bad" : "",
				   "Last sync");
		buf_puts(b, json_is_true(ok) ? "OK" : json_is_false(ok) ? "Failed" : "?");
		buf_puts(b, "</p><p>");
		put_instant(b, get(last, "at"), now, true);
		if (num(last, "seconds", &secs))
		{
			buf_puts(b, ", took ");
			put_duration(b, secs);
		}
		buf_puts(b, "</p>");
		if (str(get(s, "clock"), "text"))
		{
			buf_puts(b, "<p>Clock: ");
			put_esc(b, str(get(s, "clock"), "text"));
			buf_puts(b, "</p>");
		}
		if (json_is_false(ok))
		{
			if (str(last, "error"))
			{
				buf_puts(b, "<p class=\"err\">");
				put_esc(b, str(last, "error"));
				buf_puts(b, "</p>");
			}
			buf_puts(b, "<p>Last success: ");
			put_instant(b, get(s, "last_successful_sync"), now, true);
			buf_puts(b, "</p>");
		}
		buf_puts(b, "</div>");
		return;
	}
	if (hub && json_is_array(clients))
	{
		size_t		i;
		json_t	   *c,
				   *newest = NULL;
		int64_t		best = 0,
					us;

		json_array_foreach(clients, i, c)
		{
			if (instant(get(c, "last_seen"), &us) && (newest == NULL || us > best))
			{
				newest = get(c, "last_seen");
				best = us;
			}
		}
		card_begin(b, newest ? "ok" : "", "Last client sync");
		if (newest == NULL)
		{
			buf_puts(b, "None yet</p></div>");
			return;
		}
		if (now - best < 1000000)
			buf_puts(b, "just now");
		else
		{
			put_duration_short(b, (double) (now - best) / 1e6);
			buf_puts(b, " ago");
		}
		buf_puts(b, "</p><p>");
		put_instant(b, newest, now, false);
		buf_printf(b, " \xc2\xb7 %zu client%s</p></div>", json_array_size(clients),
				   json_array_size(clients) == 1 ? "" : "s");
		return;
	}
	card_begin(b, hub ? "" : "warn", hub ? "Last client sync" : "Last sync");
	buf_puts(b, hub ? "\xe2\x80\x94" : "Not yet");
	buf_puts(b, "</p>");
	if (hub)
		buf_puts(b, "<p>no client list in the status</p>");
	buf_puts(b, "</div>");
}

static void
card_lag(Buf *b, json_t *s)
{
	double		lag = 0,
				v;
	const char *what = "oldest change not yet sent";
	bool		have = num(s, "lag_seconds", &lag);
	json_t	   *clients = get(s, "clients");

	if (!have && json_is_array(clients))
	{
		size_t		i;
		json_t	   *c;

		json_array_foreach(clients, i, c)
		{
			if (num(c, "lag_seconds", &v) && (!have || v > lag))
			{
				lag = v;
				have = true;
			}
		}
		what = "the slowest client";
	}
	card_begin(b, !have ? "" : lag >= LAG_BAD_S ? "bad" : lag >= LAG_WARN_S ? "warn" : "ok", "Lag");
	if (have)
		put_duration(b, lag);
	else
		buf_puts(b, "\xe2\x80\x94");
	buf_printf(b, "</p><p>%s</p></div>", have ? what : "not known");
}

static void
card_queue(Buf *b, json_t *s, bool hub)
{
	json_t	   *depth = get(s, "queue_depth");
	const char *k;
	json_t	   *v;
	double		total = 0;
	int			ntables = 0;

	if (!json_is_object(depth))
	{
		card_begin(b, "warn", "Queue");
		buf_puts(b, "?</p><p>");
		if (str(s, "database_error"))
			put_esc(b, str(s, "database_error"));
		else
			buf_puts(b, "not known");
		buf_puts(b, "</p></div>");
		return;
	}
	json_object_foreach(depth, k, v)
	{
		if (json_is_number(v))
			total += json_number_value(v);
		ntables++;
	}
	card_begin(b, "", "Queue");
	buf_printf(b, "%.0f</p><p>%s%s in %d table%s</p></div>", total,
			   hub ? "row" : "change", total == 1 ? "" : "s", ntables, ntables == 1 ? "" : "s");
}

/* o.count, with "one" or "many" under it */
static void
card_count(Buf *b, json_t *o, const char *title, const char *bad_cls, const char *one, const char *many)
{
	json_t	   *n = get(o, "count");
	bool		some = json_is_number(n) && json_number_value(n) > 0;

	card_begin(b, !json_is_number(n) ? "" : some ? bad_cls : "ok", title);
	if (json_is_number(n))
		put_value(b, n);
	else
		buf_puts(b, "?");
	buf_printf(b, "</p><p>%s</p></div>", json_is_number(n) && json_number_value(n) == 1 ? one : many);
}

/* On a client: what the loop is doing; on a hub: the requests served. */
static void
card_activity(Buf *b, json_t *s, bool hub)
{
	if (hub)
	{
		json_t	   *r = get(s, "requests");
		json_t	   *failed = get(r, "failed");

		card_begin(b, json_is_number(failed) && json_number_value(failed) > 0 ? "warn" : "", "Requests");
		put_field(b, r, "served");
		buf_puts(b, "</p><p>served, ");
		put_field(b, r, "failed");
		buf_puts(b, " failed</p></div>");
		return;
	}
	{
		json_t	   *h = get(s, "hub");
		json_t	   *conn = get(h, "connected");
		const char *state = str(s, "state");
		double		retry;

		card_begin(b, json_is_false(conn) ? "warn" : "", "State");
		if (state)
			put_esc(b, state);
		else
			buf_puts(b, "?");
		buf_puts(b, "</p><p>");
		buf_puts(b, json_is_true(conn) ? "connected to the hub" :
				 json_is_false(conn) ? "not connected to the hub" : "hub connection not known");
		if (num(h, "retry_in_seconds", &retry))
		{
			buf_puts(b, ", retry in ");
			put_duration(b, retry);
		}
		buf_puts(b, "</p></div>");
	}
}

static void
section_queue(Buf *b, json_t *s)
{
	json_t	   *tables = get(get(s, "queue"), "tables");
	json_t	   *depth = get(s, "queue_depth");
	const char *k;
	json_t	   *v;

	buf_puts(b, "<h2>Queue depth per table</h2>");
	if (json_is_object(tables) && json_object_size(tables) > 0)
	{
		buf_puts(b, "<table><tr><th>table</th><th class=\"n\">immediate</th>"
				 "<th class=\"n\">batched</th><th class=\"n\">total</th></tr>");
		json_object_foreach(tables, k, v)
		{
			buf_puts(b, "<tr><td><code>");
			put_esc(b, k);
			buf_puts(b, "</code></td><td class=\"n\">");
			put_field(b, v, "immediate");
			buf_puts(b, "</td><td class=\"n\">");
			put_field(b, v, "batched");
			buf_puts(b, "</td><td class=\"n\">");
			put_field(b, v, "total");
			buf_puts(b, "</td></tr>");
		}
		buf_puts(b, "</table>");
	}
	else if (json_is_object(depth) && json_object_size(depth) > 0)
	{
		buf_puts(b, "<table><tr><th>table</th><th class=\"n\">rows</th></tr>");
		json_object_foreach(depth, k, v)
		{
			buf_puts(b, "<tr><td><code>");
			put_esc(b, k);
			buf_puts(b, "</code></td><td class=\"n\">");
			put_value(b, v);
			buf_puts(b, "</td></tr>");
		}
		buf_puts(b, "</table>");
	}
	else if (json_is_object(depth))
		buf_puts(b, "<p class=\"none\">Nothing waiting.</p>");
	else
		buf_puts(b, "<p class=\"none\">Not known.</p>");
}

static void
section_clients(Buf *b, json_t *s, int64_t now)
{
	json_t	   *clients = get(s, "clients");
	size_t		i;
	json_t	   *c;
	double		lag;

	if (!json_is_array(clients))
		return;
	buf_puts(b, "<h2>Clients</h2>");
	if (json_array_size(clients) == 0)
	{
		buf_puts(b, "<p class=\"none\">No client has synced yet.</p>");
		return;
	}
	buf_puts(b, "<table><tr><th>node</th><th>last seen</th><th class=\"n\">lag</th></tr>");
	json_array_foreach(clients, i, c)
	{
		if (i >= LIST_MAX)
			break;
		buf_puts(b, "<tr><td>");
		put_node(b, get(c, "node_id"));
		buf_puts(b, "</td><td>");
		put_instant(b, get(c, "last_seen"), now, true);
		buf_puts(b, "</td><td class=\"n\">");
		if (num(c, "lag_seconds", &lag))
			put_duration(b, lag);
		else
			put_dash(b);
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</table>");
	if (json_array_size(clients) > LIST_MAX)
		buf_printf(b, "<p class=\"none\">and %zu more</p>", json_array_size(clients) - LIST_MAX);
}

/* Rows of one list of set-aside changes; where: "on the hub", "here", or NULL (hub: node column). */
static int
error_rows(Buf *b, json_t *list, const char *where, int shown, int64_t now)
{
	size_t		i;
	json_t	   *e;

	json_array_foreach(list, i, e)
	{
		if (shown >= LIST_MAX)
			break;
		buf_puts(b, "<tr><td class=\"w\">");
		if (where)
			buf_puts(b, where);
		else
			put_node(b, get(e, "node_id"));
		buf_puts(b, "</td><td><code>");
		put_field(b, e, "table");
		buf_puts(b, "</code></td><td>");
		put_field(b, e, "op");
		buf_puts(b, "</td><td><code>");
		put_field(b, e, "pk");
		buf_puts(b, "</code></td><td class=\"err\">");
		put_field(b, e, "error");
		buf_puts(b, "</td><td class=\"n\">");
		put_field(b, e, "attempts");
		buf_puts(b, "</td><td>");
		put_instant(b, get(e, "last_failed"), now, true);
		buf_puts(b, "</td></tr>");
		shown++;
	}
	return shown;
}

static void
section_errors(Buf *b, json_t *s, bool hub, int64_t now)
{
	json_t	   *errs = get(s, "errors");
	json_t	   *up = get(get(errs, "up"), "changes");
	json_t	   *down = get(get(errs, "down"), "changes");
	json_t	   *list = get(errs, "changes");
	size_t		n = json_array_size(up) + json_array_size(down) + json_array_size(list);
	int			shown = 0;

	buf_puts(b, "<h2>Recent errors</h2>");
	if (n == 0)
	{
		json_t	   *count = get(errs, "count");

		if (json_is_number(count) && json_number_value(count) > 0)
		{
			buf_puts(b, "<p class=\"none\">");
			put_value(b, count);
			buf_puts(b, " changes set aside (not listed here).</p>");
		}
		else if (json_is_number(count))
			buf_puts(b, "<p class=\"none\">None: no change is set aside.</p>");
		else
			buf_puts(b, "<p class=\"none\">Not known.</p>");
		return;
	}
	buf_printf(b, "<table><tr><th>%s</th><th>table</th><th>op</th><th>key</th><th>error</th>"
			   "<th class=\"n\">attempts</th><th>last failed</th></tr>",
			   (hub || json_is_array(list)) ? "node" : "where");
	if (json_is_array(list))
		shown = error_rows(b, list, NULL, shown, now);
	if (json_is_array(up))
		shown = error_rows(b, up, "on the hub", shown, now);
	if (json_is_array(down))
		shown = error_rows(b, down, "here", shown, now);
	buf_puts(b, "</table><p class=\"none\">Changes set aside are retried on every sync");
	if (n > (size_t) shown)
		buf_printf(b, "; %zu more not shown", n - (size_t) shown);
	buf_puts(b, ".</p>");
}

static void
section_conflicts(Buf *b, json_t *s, int64_t now)
{
	json_t	   *confl = get(s, "conflicts");
	json_t	   *recent = get(confl, "recent");
	size_t		i;
	json_t	   *c;

	buf_puts(b, "<h2>Recent conflicts</h2>");
	if (json_is_array(recent) && json_array_size(recent) > 0)
	{
		buf_puts(b, "<table><tr><th>table</th><th>key</th><th>winner</th><th>overruled</th><th>at</th></tr>");
		json_array_foreach(recent, i, c)
		{
			if (i >= LIST_MAX)
				break;
			buf_puts(b, "<tr><td><code>");
			put_field(b, c, "table");
			buf_puts(b, "</code></td><td><code>");
			put_field(b, c, "pk");
			buf_puts(b, "</code></td><td>");
			put_node(b, get(c, "winner_origin"));
			buf_puts(b, "</td><td>");
			put_node(b, get(c, "loser_origin"));
			buf_puts(b, "</td><td>");
			put_instant(b, get(c, "at"), now, true);
			buf_puts(b, "</td></tr>");
		}
		buf_puts(b, "</table>");
	}
	else if (json_is_number(get(confl, "count")) && json_number_value(get(confl, "count")) == 0)
		buf_puts(b, "<p class=\"none\">None.</p>");
	if (get(confl, "here") || get(confl, "on_hub"))
	{
		buf_puts(b, "<p class=\"none\">Overruled here: ");
		put_field(b, confl, "here");
		buf_puts(b, " \xc2\xb7 this node's changes overruled on the hub: ");
		put_field(b, confl, "on_hub");
		buf_puts(b, " (kept in <code>sync_conflicts</code>)</p>");
	}
	else if (!json_is_array(recent) || json_array_size(recent) == 0)
	{
		if (!json_is_number(get(confl, "count")))
			buf_puts(b, "<p class=\"none\">Not known.</p>");
		else if (json_number_value(get(confl, "count")) > 0)
		{
			buf_puts(b, "<p class=\"none\">");
			put_field(b, confl, "count");
			buf_puts(b, " overruled changes, kept in <code>sync_conflicts</code>.</p>");
		}
	}
}

static void
dl_item(Buf *b, const char *term)
{
	buf_printf(b, "<dt>%s</dt><dd>", term);
}

static void
section_details(Buf *b, json_t *s, bool hub)
{
	double		v;
	json_t	   *syncs = get(s, "syncs");

	buf_puts(b, "<h2>Details</h2><dl>");
	dl_item(b, "version");
	put_field(b, s, "version");
	buf_puts(b, "</dd>");
	dl_item(b, "database");
	buf_puts(b, "<code>");
	put_field(b, s, "database");
	buf_puts(b, "</code></dd>");
	if (get(s, "database_error"))
	{
		dl_item(b, "database error");
		put_field(b, s, "database_error");
		buf_puts(b, "</dd>");
	}
	if (!hub)
	{
		dl_item(b, "hub node");
		buf_puts(b, "<code>");
		put_field(b, s, "hub_node_id");
		buf_puts(b, "</code></dd>");
	}
	if (num(s, "next_batched_sync_in_seconds", &v))
	{
		dl_item(b, "next batched sync");
		buf_puts(b, "in ");
		put_duration(b, v);
		buf_puts(b, "</dd>");
	}
	if (json_is_object(syncs))
	{
		dl_item(b, "syncs");
		put_field(b, syncs, "ok");
		buf_puts(b, " ok, ");
		put_field(b, syncs, "failed");
		buf_puts(b, " failed</dd>");
	}
	dl_item(b, "up");
	if (num(s, "uptime_seconds", &v))
		put_duration(b, v);
	else
		put_dash(b);
	buf_puts(b, "</dd>");
	if (get(s, "pid"))
	{
		dl_item(b, "pid");
		put_field(b, s, "pid");
		buf_puts(b, "</dd>");
	}
	buf_puts(b, "</dl>");
}

/* America/New_York · UTC-05:00 · Eastern date 2026-11-24 · 16:31:08 */
static void
footer(Buf *b, json_t *s)
{
	json_t	   *tz = get(s, "timezone");
	const char *now = str(tz, "now");

	buf_puts(b, "<footer>");
	if (json_is_object(tz))
	{
		buf_puts(b, "<span id=\"timezone\">");
		put_field(b, tz, "zone");
		if (str(tz, "error"))
		{
			buf_puts(b, ": ");
			put_esc(b, str(tz, "error"));
		}
		else
		{
			buf_puts(b, " \xc2\xb7 UTC");
			put_field(b, tz, "utc_offset");
			buf_puts(b, " \xc2\xb7 Eastern date ");
			put_field(b, tz, "eastern_date");
			if (now && strlen(now) >= 19)
			{
				char		hms[9];

				memcpy(hms, now + 11, 8);
				hms[8] = '\0';
				buf_puts(b, " \xc2\xb7 Eastern time ");
				put_esc(b, hms);
			}
		}
		buf_puts(b, "</span> \xc2\xb7 ");
	}
	buf_printf(b, "refreshes every %d s \xc2\xb7 <a href=\"/api/sync/status\">status as JSON</a></footer>",
			   STATUS_REFRESH_S);
}

/* ---- the page ------------------------------------------------------------- */

char *
status_page_html(json_t *s)
{
	Buf			b = {0};
	int64_t		now = now_us();
	const char *role = str(s, "role");
	bool		hub = role && strcmp(role, "hub") == 0;

	buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			   "<meta http-equiv=\"refresh\" content=\"%d\">"
			   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			   "<title>syncqd ", STATUS_REFRESH_S);
	if (role)
		put_esc(&b, role);
	buf_printf(&b, "</title><style>%s</style></head>\n<body>\n", style);

	if (!json_is_object(s))
	{
		buf_puts(&b, "<h1>syncqd</h1><p class=\"none\">No status to show.</p>");
		footer(&b, NULL);
		buf_puts(&b, "\n</body></html>\n");
		return b.p;
	}

	buf_puts(&b, "<header><h1>syncqd <span class=\"role\" id=\"role\">");
	if (role)
		put_esc(&b, role);
	else
		buf_puts(&b, "?");
	buf_puts(&b, "</span></h1><p class=\"sub\">node <code id=\"node-id\">");
	put_field(&b, s, "node_id");
	buf_puts(&b, "</code>");
	if (hub && get(s, "database"))
	{
		buf_puts(&b, " \xc2\xb7 database <code>");
		put_field(&b, s, "database");
		buf_puts(&b, "</code>");
	}
	buf_puts(&b, "</p></header>\n<section class=\"cards\">");
	card_last_sync(&b, s, hub, now);
	card_lag(&b, s);
	card_queue(&b, s, hub);
	card_count(&b, get(s, "errors"), "Errors", "bad", "change set aside", "changes set aside");
	card_count(&b, get(s, "conflicts"), "Conflicts", "warn", "change overruled", "changes overruled");
	card_activity(&b, s, hub);
	buf_puts(&b, "</section>\n<section>");
	section_queue(&b, s);
	buf_puts(&b, "</section>\n<section>");
	section_clients(&b, s, now);
	section_errors(&b, s, hub, now);
	buf_puts(&b, "</section>\n<section>");
	section_conflicts(&b, s, now);
	buf_puts(&b, "</section>\n<section>");
	section_details(&b, s, hub);
	buf_puts(&b, "</section>\n");
	footer(&b, s);
	buf_puts(&b, "\n</body></html>\n");
	return b.p;
}
