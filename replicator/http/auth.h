/*
 * auth.h — the credentials `syncqd serve` accepts, checked in constant time
 * (docs/auth.md), and `syncqd passwd`, which makes a credentials-file line.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest user name (bytes), and the longest Authorization header value
 * auth_check looks at; a longer one is refused before it is decoded. */
#define AUTH_USER_MAX	255
#define AUTH_HEADER_MAX 1024

typedef struct Auth Auth;

/*
 * Credentials serve accepts: $AMRS_ADMIN_USERNAME/$AMRS_ADMIN_PASSWORD (if
 * set; the admin), plus the lines of file (NULL: none). Error names the file
 * and line of anything malformed, never a password or hash. NULL with err
 * when there are no credentials at all (serve refuses to run open). Warnings
 * (a group- or other-readable file) go to logmsg().
 */
Auth	   *auth_load(const char *file, char *err, size_t errlen);
void		auth_free(Auth *a);

/* How many credentials a holds (the admin counts as one). */
int			auth_count(const Auth *a);

/*
 * Check an HTTP Authorization header value ("Basic base64(user:pass)").
 * Returns true and fills user (the user name, NUL-terminated; userlen of
 * AUTH_USER_MAX + 1 always fits) and *admin on success; false for anything
 * else (no header, not Basic, bad base64, no colon, unknown user, wrong
 * password, user longer than userlen) — no detail: callers answer a bare
 * 401. Thread-safe: several threads may check against one Auth at once.
 */
bool		auth_check(const Auth *a, const char *authorization, char *user, size_t userlen,
					   bool *admin);

/*
 * The user an Authorization header names, its password unchecked (for
 * serve's count of failed attempts per user): the credential's index, -1 a
 * name no credential has, -2 no Basic "user:password" at all. The name
 * (up to userlen - 1 bytes) goes to user for -1 and 0 up. Which credential,
 * if any, is found in time that does not depend on it.
 */
int			auth_user_of(const Auth *a, const char *authorization, char *user, size_t userlen);

/*
 * `syncqd passwd USER`: read a password from stdin (no echo when stdin is a
 * terminal; one line, trailing newline stripped; refuse empty), print the
 * credentials-file line "USER:HASH" on stdout.
 * `syncqd passwd --check FILE USER`: read a password from stdin; exit 0 if
 * serve would accept USER with it given FILE (and $AMRS_ADMIN_*), 1 if not.
 * argv[0] is "passwd". Returns the exit status (2: usage or file error).
 */
int			auth_passwd_main(int argc, char **argv);

#endif							/* AUTH_H */
