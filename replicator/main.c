/*
 * main.c — syncqd's subcommands, and nothing else:
 *
 *   syncqd --sqlite FILE ...   a client's syncqd (sync/command.c)
 *   syncqd serve ...           the hub over HTTP(S) (http/serve.c)
 *   syncqd passwd ...          a line of serve's credentials file (http/auth.c)
 *
 * docs/architecture.md says which room each part lives in.
 */
#include "http/auth.h"
#include "http/serve.h"
#include "sync/daemon.h"

#include <string.h>

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return auth_passwd_main(argc - 1, argv + 1);
	return syncqd_main(argc, argv);
}
