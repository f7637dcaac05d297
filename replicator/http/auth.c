/*
 * auth.c — the credentials `syncqd serve` accepts (docs/auth.md).
 *
 * Every credential is a user name and a crypt(3) hash (libxcrypt): the lines
 * of the credentials file as they are, and the admin of $AMRS_ADMIN_USERNAME
 * and $AMRS_ADMIN_PASSWORD, whose password is hashed here at load with a
 * fresh salt. A check always looks at every entry (no early exit), always
 * runs one crypt (against the first entry's hash when the user is unknown,
 * so that an unknown user costs what a known one does) and compares hashes
 * in constant time. The password a user last passed with is kept (in this
 * Auth, never on disk) so that the next request with it needs no crypt: a
 * wrong password always pays the full crypt.
 *
 * No global state: an Auth is read-only after auth_load but for that cache,
 * which a mutex of its own guards; each crypt has a crypt_data of its own on
 * the heap (32 KB), so serve's threads check at once.
 *
 *   auth_load, auth_free   the credentials of the file and the environment
 *   auth_count             how many
 *   auth_check             an Authorization header, checked
 *   auth_passwd_main       `syncqd passwd`: a credentials-file line, or a check
 */
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "http/auth.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* The longest password crypt takes, and the longest credentials-file line. */
#define PASS_MAX		(CRYPT_MAX_PASSPHRASE_SIZE - 1)
#define FILE_LINE_MAX	1024

#define USER_RULE "1 to 255 bytes; no spaces, control characters or ':'; not starting with '#'"

typedef struct
{
	char		user[AUTH_USER_MAX + 1];	/* zero-padded: compared whole */
	char		hash[CRYPT_OUTPUT_SIZE];	/* zero-padded: compared whole */
	bool		admin;
	int			line;			/* in the file; 0 for the admin */
	char	   *ok_pass;		/* PASS_MAX + 1 bytes, zero-padded: the
								 * password last verified (under lock) */
	size_t		ok_len;			/* its length; 0: none yet */
} AuthEntry;

struct Auth
{
	AuthEntry  *e;
	int			n;
	int			cap;
	pthread_mutex_t *lock;		/* guards ok_pass and ok_len */
};

/* 1 if the n bytes at a and b are equal, in time that depends on n only. */
static unsigned
ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a;
	const volatile unsigned char *y = b;
	unsigned	d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned) (x[i] ^ y[i]);
	return 1u & ((d - 1u) >> 8);	/* d is at most 0xFF */
}

/* A user name serve can take from a Basic header and a file line can hold. */
static bool
valid_user(const char *s, size_t n)
{
	if (n < 1 || n > AUTH_USER_MAX || s[0] == '#')
		return false;
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c <= ' ' || c == ':' || c == 0x7f)
			return false;
	}
	return true;
}

typedef enum
{
	HASH_OK, HASH_BAD, HASH_LEGACY
} HashCheck;

/*
 * A whole crypt(3) hash ("$id$...$hash") of a method this system has? The
 * common methods' hashes are known in shape (how many '$', how long the
 * last part), so that one cut short in a copy and paste is caught here
 * rather than never verifying.
 */
static HashCheck
check_hash(const char *h)
{
	static const struct
	{
		const char *prefix;
		int			dollars;
		size_t		tail;
	}			shapes[] = {
		{"$y$", 4, 43},			/* yescrypt: $y$params$salt$hash */
		{"$gy$", 4, 43},		/* gost-yescrypt */
		{"$7$", 3, 43},			/* scrypt */
		{"$6$", 3, 86},			/* sha512crypt: $6$[rounds=N$]salt$hash */
		{"$5$", 3, 43},			/* sha256crypt */
		{"$2b$", 3, 53},		/* bcrypt: $2b$cost$salt+hash */
		{"$2a$", 3, 53},
		{"$2y$", 3, 53},
	};
	size_t		n = strlen(h);
	const char *last;
	char		setting[CRYPT_OUTPUT_SIZE];
	int			c;

	if (n < 4 || n >= CRYPT_OUTPUT_SIZE || h[0] != '$')
		return HASH_BAD;
	for (size_t i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./$=,-",
				   h[i]) == NULL)
			return HASH_BAD;
	last = strrchr(h, '$');
	if (last == h || last[1] == '\0')
		return HASH_BAD;		/* a setting without the hash itself */
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
	{
		int			dollars = 0;

		if (strncmp(h, shapes[i].prefix, strlen(shapes[i].prefix)) != 0)
			continue;
		for (const char *p = h; *p; p++)
			dollars += *p == '$';
		if (dollars < shapes[i].dollars || strlen(last + 1) != shapes[i].tail)
			return HASH_BAD;	/* cut short, or pieces missing */
	}
	memcpy(setting, h, (size_t) (last - h));
	setting[last - h] = '\0';
	c = crypt_checksalt(setting);
	if (c == CRYPT_SALT_METHOD_LEGACY)
		return HASH_LEGACY;
	return c == CRYPT_SALT_OK ? HASH_OK : HASH_BAD;
}

static AuthEntry *
add_entry(Auth *a, const char *user, size_t ulen, const char *hash, bool admin, int line)
{
	AuthEntry  *e;

	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 8;
		a->e = xrealloc(a->e, (size_t) a->cap * sizeof(AuthEntry));
	}
	e = &a->e[a->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->user, user, ulen);
	strcpy(e->hash, hash);		/* check_hash: it fits */
	e->admin = admin;
	e->line = line;
	e->ok_pass = xcalloc(1, PASS_MAX + 1);
	return e;
}

static const AuthEntry *
find_user(const Auth *a, const char *user)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->e[i].user, user) == 0)
			return &a->e[i];
	return NULL;
}

static int
load_file(Auth *a, const char *file, char *err, size_t errlen)
{
	FILE	   *f = fopen(file, "re");
	struct stat st;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	int			lineno = 0,
				rc = -1;

	if (f == NULL)
	{
		snprintf(err, errlen, "credentials file %s: %s", file, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0)
	{
		snprintf(err, errlen, "credentials file %s: %s", file, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode))
	{
		snprintf(err, errlen, "credentials file %s: not a regular file", file);
		goto done;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH))
	{
		snprintf(err, errlen, "credentials file %s: writable by %s; refused (chmod go-w %s)", file,
				 (st.st_mode & S_IWOTH) ? "everyone" : "its group", file);
		goto done;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		logmsg(LOG_WARNING, "credentials file %s: readable by %s (chmod %s %s)", file,
			   (st.st_mode & S_IROTH) ? "everyone" : "its group",
			   (st.st_mode & S_IROTH) ? "go-r" : "g-r", file);

	while ((len = getline(&line, &cap, f)) >= 0)
	{
		char	   *s = line,
				   *end = line + len,
				   *colon;
		size_t		ulen;
		const AuthEntry *dup;

		lineno++;
		if (len > FILE_LINE_MAX)
		{
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", file, lineno, FILE_LINE_MAX);
			goto done;
		}
		if (memchr(line, '\0', (size_t) len) != NULL)
		{
			snprintf(err, errlen, "%s:%d: a NUL byte", file, lineno);
			goto done;
		}
		while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		/* nothing of the line itself goes into a message: it may be a secret */
		colon = strchr(s, ':');
		if (colon == NULL)
		{
			snprintf(err, errlen, "%s:%d: no ':' (a line is USER:HASH, as \"syncqd passwd USER\" prints it)",
					 file, lineno);
			goto done;
		}
		ulen = (size_t) (colon - s);
		if (!valid_user(s, ulen))
		{
			snprintf(err, errlen, "%s:%d: not a valid user name (" USER_RULE ")", file, lineno);
			goto done;
		}
		*colon = '\0';
		switch (check_hash(colon + 1))
		{
			case HASH_OK:
				break;
			case HASH_LEGACY:
				snprintf(err, errlen, "%s:%d: user \"%s\": a weak legacy hash method; "
						 "make a new line with \"syncqd passwd %s\"", file, lineno, s, s);
				goto done;
			default:
				snprintf(err, errlen, "%s:%d: user \"%s\": not a crypt(3) hash this system can check; "
						 "make the line with \"syncqd passwd %s\"", file, lineno, s, s);
				goto done;
		}
		if ((dup = find_user(a, s)) != NULL)
		{
			snprintf(err, errlen, "%s:%d: user \"%s\" again (first on line %d)", file, lineno, s,
					 dup->line);
			goto done;
		}
		add_entry(a, s, ulen, colon + 1, false, lineno);
	}
	if (ferror(f))
	{
		snprintf(err, errlen, "credentials file %s: %s", file, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return rc;
}

/* Hash password with a fresh salt of the library's default method. */
static int
hash_password(const char *password, char *out, size_t outlen, char *err, size_t errlen)
{
	char		setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int			rc = -1;

	if (crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof(setting)) == NULL)
	{
		snprintf(err, errlen, "cannot make a salt: %s", strerror(errno));
		return -1;
	}
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, setting, cd, sizeof(*cd));
	if (h == NULL || h[0] == '*' || strlen(h) >= outlen)
		snprintf(err, errlen, "cannot hash the password: %s", h ? "crypt failed" : strerror(errno));
	else
	{
		strcpy(out, h);
		rc = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

static int
load_admin(Auth *a, const char *file, char *err, size_t errlen)
{
	const char *user = getenv("AMRS_ADMIN_USERNAME"),
			   *pass = getenv("AMRS_ADMIN_PASSWORD");
	char		hash[CRYPT_OUTPUT_SIZE];
	const AuthEntry *dup;

	if (user && !*user)
		user = NULL;
	if (pass && !*pass)
		pass = NULL;
	if (!user && !pass)
		return 0;
	if (!pass)
	{
		snprintf(err, errlen, "$AMRS_ADMIN_USERNAME is set but $AMRS_ADMIN_PASSWORD is not");
		return -1;
	}
	if (!user)
	{
		snprintf(err, errlen, "$AMRS_ADMIN_PASSWORD is set but $AMRS_ADMIN_USERNAME is not");
		return -1;
	}
	if (!valid_user(user, strlen(user)))
	{
		snprintf(err, errlen, "$AMRS_ADMIN_USERNAME is not a valid user name (" USER_RULE ")");
		return -1;
	}
	if (strlen(pass) > PASS_MAX)
	{
		snprintf(err, errlen, "$AMRS_ADMIN_PASSWORD is longer than %d bytes", PASS_MAX);
		return -1;
	}
	if ((dup = find_user(a, user)) != NULL)
	{
		snprintf(err, errlen, "%s:%d: user \"%s\" is also $AMRS_ADMIN_USERNAME", file, dup->line, user);
		return -1;
	}
	if (hash_password(pass, hash, sizeof(hash), err, errlen) < 0)
		return -1;
	add_entry(a, user, strlen(user), hash, true, 0);
	return 0;
}

Auth *
auth_load(const char *file, char *err, size_t errlen)
{
	Auth	   *a = xcalloc(1, sizeof(*a));

	a->lock = xmalloc(sizeof(*a->lock));
	pthread_mutex_init(a->lock, NULL);
	/* the file first: entry 0, whose hash an unknown user is checked
	 * against, is then a client's, as most are */
	if (file && load_file(a, file, err, errlen) < 0)
		goto fail;
	if (load_admin(a, file, err, errlen) < 0)
		goto fail;
	if (a->n == 0)
	{
		if (file)
			snprintf(err, errlen, "credentials file %s: no credentials in it, and no "
					 "$AMRS_ADMIN_USERNAME/$AMRS_ADMIN_PASSWORD", file);
		else
			snprintf(err, errlen, "no credentials: set $AMRS_ADMIN_USERNAME and "
					 "$AMRS_ADMIN_PASSWORD, or give a credentials file");
		goto fail;
	}
	return a;
fail:
	auth_free(a);
	return NULL;
}

void
auth_free(Auth *a)
{
	if (a == NULL)
		return;
	for (int i = 0; i < a->n; i++)
	{
		explicit_bzero(a->e[i].ok_pass, PASS_MAX + 1);
		free(a->e[i].ok_pass);
	}
	if (a->e)
		explicit_bzero(a->e, (size_t) a->cap * sizeof(AuthEntry));
	free(a->e);
	pthread_mutex_destroy(a->lock);
	free(a->lock);
	free(a);
}

int
auth_count(const Auth *a)
{
	return a ? a->n : 0;
}

/*
 * Is pass (plen bytes, 1..PASS_MAX) the password of user (ulen bytes,
 * 1..AUTH_USER_MAX)? Sets *who to the entry looked at. Every entry is
 * compared; one crypt runs unless the password is the one this user last
 * passed with.
 */
static bool
verify(const Auth *a, const char *user, size_t ulen, const char *pass, size_t plen, int *who)
{
	char		ubuf[AUTH_USER_MAX + 1] = {0};
	char		pbuf[PASS_MAX + 1] = {0};
	char		obuf[CRYPT_OUTPUT_SIZE] = {0};
	unsigned	found = 0,
				same;
	int			idx = 0;
	AuthEntry  *e;
	bool		ok;

	memcpy(ubuf, user, ulen);
	memcpy(pbuf, pass, plen);
	for (int i = 0; i < a->n; i++)
	{
		unsigned	m = ct_equal(a->e[i].user, ubuf, sizeof(ubuf));

		idx ^= (int) (0u - m) & (idx ^ i);	/* idx = m ? i : idx */
		found |= m;
	}
	e = &a->e[idx];				/* entry 0 for an unknown user */

	pthread_mutex_lock(a->lock);
	same = (unsigned) (e->ok_len == plen) & ct_equal(e->ok_pass, pbuf, sizeof(pbuf));
	pthread_mutex_unlock(a->lock);

	if (found & same)
		ok = true;
	else
	{
		struct crypt_data *cd = xcalloc(1, sizeof(*cd));
		const char *out = crypt_rn(pbuf, e->hash, cd, sizeof(*cd));

		if (out != NULL)
			memcpy(obuf, out, strnlen(out, sizeof(obuf) - 1));
		same = (unsigned) (out != NULL) & ct_equal(obuf, e->hash, sizeof(obuf));
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
		ok = (found & same) != 0;
		if (ok)
		{
			pthread_mutex_lock(a->lock);
			memcpy(e->ok_pass, pbuf, sizeof(pbuf));
			e->ok_len = plen;
			pthread_mutex_unlock(a->lock);
		}
	}
	explicit_bzero(pbuf, sizeof(pbuf));
	*who = idx;
	return ok;
}

int
auth_user_of(const Auth *a, const char *authorization, char *user, size_t userlen)
{
	const char *p;
	size_t		n;
	Buf			dec = {0};
	const char *colon;
	int			who = -2;

	if (a == NULL || a->n == 0 || authorization == NULL || userlen == 0 ||
		strnlen(authorization, AUTH_HEADER_MAX + 1) > AUTH_HEADER_MAX)
		return -2;
	p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return -2;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return -2;
	buf_reserve(&dec, n);
	if (base64_decode(p, n, &dec) == 0 && memchr(dec.p, '\0', dec.len) == NULL &&
		(colon = memchr(dec.p, ':', dec.len)) != NULL && colon > dec.p &&
		(size_t) (colon - dec.p) <= AUTH_USER_MAX)
	{
		char		ubuf[AUTH_USER_MAX + 1] = {0};
		size_t		ulen = (size_t) (colon - dec.p);
		unsigned	found = 0;
		int			idx = 0;

		memcpy(ubuf, dec.p, ulen);
		for (int i = 0; i < a->n; i++)
		{
			unsigned	m = ct_equal(a->e[i].user, ubuf, sizeof(ubuf));

			idx ^= (int) (0u - m) & (idx ^ i);	/* idx = m ? i : idx */
			found |= m;
		}
		who = found ? idx : -1;
		snprintf(user, userlen, "%s", ubuf);
	}
	explicit_bzero(dec.p, dec.cap);
	buf_free(&dec);
	return who;
}

bool
auth_check(const Auth *a, const char *authorization, char *user, size_t userlen, bool *admin)
{
	const char *p;
	size_t		n;
	Buf			dec = {0};
	const char *colon;
	bool		ok = false;
	int			who = 0;

	if (a == NULL || a->n == 0 || authorization == NULL || user == NULL || userlen == 0)
		return false;
	if (strnlen(authorization, AUTH_HEADER_MAX + 1) > AUTH_HEADER_MAX)
		return false;
	p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return false;
	p += 5;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;

	/* room for all of it at once: no copy of the password left in a freed
	 * buffer by a realloc */
	buf_reserve(&dec, n);
	if (base64_decode(p, n, &dec) == 0 && memchr(dec.p, '\0', dec.len) == NULL &&
		(colon = memchr(dec.p, ':', dec.len)) != NULL)
	{
		size_t		ulen = (size_t) (colon - dec.p),
					plen = dec.len - ulen - 1;

		if (ulen >= 1 && ulen <= AUTH_USER_MAX && plen >= 1 && plen <= PASS_MAX)
			ok = verify(a, dec.p, ulen, colon + 1, plen, &who);
		if (ok && ulen >= userlen)
			ok = false;
	}
	if (ok)
	{
		strcpy(user, a->e[who].user);
		if (admin)
			*admin = a->e[who].admin;
	}
	explicit_bzero(dec.p, dec.cap);
	buf_free(&dec);
	return ok;
}

/* ---- syncqd passwd ------------------------------------------------------- */

static void
passwd_usage(FILE *to)
{
	fprintf(to,
			"Usage:\n"
			"  syncqd passwd USER               read USER's password on stdin, print the\n"
			"                                   credentials-file line USER:HASH\n"
			"  syncqd passwd --check FILE USER  read a password on stdin; exit 0 if serve\n"
			"                                   accepts USER with it (FILE and\n"
			"                                   $AMRS_ADMIN_USERNAME/$AMRS_ADMIN_PASSWORD),\n"
			"                                   1 if not, 2 on an error\n\n"
			"The password is one line (its newline is not part of it), not empty, at most\n"
			"%d bytes; a terminal does not echo it. User names: " USER_RULE ".\n",
			PASS_MAX);
}

typedef enum
{
	PW_OK, PW_EMPTY, PW_LONG, PW_NUL, PW_ERROR
} PwRead;

/*
 * One line of stdin (without its newline) into buf (PASS_MAX + 1 bytes),
 * read a byte at a time so that nothing past it sits in a stdio buffer. On a
 * terminal, prompt on stderr and do not echo.
 */
static PwRead
read_password(const char *prompt, char *buf, size_t *len)
{
	struct termios old,
				quiet;
	bool		tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	bool		nul = false,
				longer = false;
	size_t		n = 0;
	PwRead		rc;
	char		c;

	if (tty)
	{
		/* echo off before the prompt shows: what is typed after it is
		 * never echoed */
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t) ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fputs(prompt, stderr);
		fflush(stderr);
	}
	for (;;)
	{
		ssize_t		r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			rc = PW_ERROR;
			goto done;
		}
		if (r == 0 || c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (n < PASS_MAX)
			buf[n++] = c;
		else
			longer = true;
	}
	buf[n] = '\0';
	rc = longer ? PW_LONG : nul ? PW_NUL : n == 0 ? PW_EMPTY : PW_OK;
done:
	c = 0;
	if (tty)
	{
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	*len = n;
	return rc;
}

/* Read the password (prompting "Password for USER: ", or "Again: " when
 * user is NULL); on a problem say so and return false. */
static bool
get_password(const char *user, char *buf, size_t *len)
{
	char		prompt[AUTH_USER_MAX + 32];

	if (user)
		snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
	else
		snprintf(prompt, sizeof(prompt), "Again: ");
	switch (read_password(prompt, buf, len))
	{
		case PW_OK:
			return true;
		case PW_EMPTY:
			fputs("syncqd passwd: empty password refused\n", stderr);
			break;
		case PW_LONG:
			fprintf(stderr, "syncqd passwd: password longer than %d bytes refused\n", PASS_MAX);
			break;
		case PW_NUL:
			fputs("syncqd passwd: a password with a NUL byte refused\n", stderr);
			break;
		case PW_ERROR:
			fprintf(stderr, "syncqd passwd: cannot read the password: %s\n", strerror(errno));
			break;
	}
	return false;
}

static int
passwd_make(const char *user)
{
	char		pass[PASS_MAX + 1],
				again[PASS_MAX + 1],
				hash[CRYPT_OUTPUT_SIZE],
				err[256];
	size_t		len,
				len2;
	int			rc = 1;

	if (!get_password(user, pass, &len))
		goto done;
	if (isatty(STDIN_FILENO))
	{
		if (!get_password(NULL, again, &len2))
			goto done;
		if (len != len2 || !ct_equal(pass, again, len))
		{
			fputs("syncqd passwd: the two passwords differ\n", stderr);
			goto done;
		}
	}
	if (hash_password(pass, hash, sizeof(hash), err, sizeof(err)) < 0)
	{
		fprintf(stderr, "syncqd passwd: %s\n", err);
		goto done;
	}
	printf("%s:%s\n", user, hash);
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		fprintf(stderr, "syncqd passwd: cannot write the line: %s\n", strerror(errno));
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(again, sizeof(again));
	return rc;
}

static int
passwd_check(const char *file, const char *user)
{
	char		pass[PASS_MAX + 1],
				err[1024],
				who[AUTH_USER_MAX + 1];
	size_t		len;
	Buf			cred = {0},
				header = {0};
	Auth	   *a;
	bool		admin = false,
				ok;

	if (!get_password(user, pass, &len))
		return 2;
	a = auth_load(file, err, sizeof(err));
	if (a == NULL)
	{
		explicit_bzero(pass, sizeof(pass));
		fprintf(stderr, "syncqd passwd: %s\n", err);
		return 2;
	}
	/* exactly the header a client sends */
	buf_reserve(&cred, strlen(user) + 1 + len);
	buf_reserve(&header, 8 + (strlen(user) + 1 + len) * 4 / 3 + 4);
	buf_puts(&cred, user);
	buf_putc(&cred, ':');
	buf_putn(&cred, pass, len);
	buf_puts(&header, "Basic ");
	buf_base64(&header, (const unsigned char *) cred.p, cred.len);
	ok = auth_check(a, header.p, who, sizeof(who), &admin);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(cred.p, cred.cap);
	explicit_bzero(header.p, header.cap);
	buf_free(&cred);
	buf_free(&header);
	auth_free(a);
	if (!ok)
	{
		fprintf(stderr, "syncqd passwd: %s is not accepted with that password\n", user);
		return 1;
	}
	printf("%s: accepted%s\n", who, admin ? " (the admin of $AMRS_ADMIN_USERNAME)" : "");
	return 0;
}

int
auth_passwd_main(int argc, char **argv)
{
	const char *check = NULL,
			   *user;
	int			i = 1;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
	{
		passwd_usage(stdout);
		return 0;
	}
	if (i < argc && strcmp(argv[i], "--check") == 0)
	{
		if (i + 1 >= argc)
			goto usage;
		check = argv[i + 1];
		i += 2;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	else if (i < argc && argv[i][0] == '-')
		goto usage;
	if (i + 1 != argc)
		goto usage;
	user = argv[i];
	if (!valid_user(user, strlen(user)))
	{
		fputs("syncqd passwd: not a valid user name (" USER_RULE ")\n", stderr);
		return 2;
	}
	return check ? passwd_check(check, user) : passwd_make(user);
usage:
	passwd_usage(stderr);
	return 2;
}
