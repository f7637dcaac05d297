/*
 * serve_state.h — what the files of `syncqd serve` share (serve_state.c):
 * the server, the pool of hub connections, the hub's wake-ups heard by the
 * listener thread, the counters of the status. Only serve*.c include it.
 *
 *   serve.c         the command: options, start, the signal loop, stop;
 *                   who may ask what (auth), routing
 *   serve_data.c    POST /api/sync/data (the steps of a sync), GET /api/sync/wait
 *   serve_status.c  GET /api/sync/status and /, POST /api/sync/trigger
 *   serve_state.c   the pool, the listener, the counted replies
 *   serve_replica.c the streaming replicas downloads read (--replica)
 */
#ifndef SYNCQD_SERVE_STATE_H
#define SYNCQD_SERVE_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/auth.h"
#include "http/http.h"
#include "hub/hub.h"

#define MAX_BODY_DEFAULT (64L * 1024 * 1024)
#define POOL_DEFAULT 8
#define POOL_WAIT_S 30			/* a request waits this long for a connection */
#define UPLOAD_SHARE 2			/* uploads hold at most 1/UPLOAD_SHARE of the
								 * pool's connections at once (at least 1) */
#define BODIES_PER_USER 2		/* request bodies of one user being received
								 * or worked on at once: this many times
								 * --max-body in all, at most */
#define AUTH_SLOTS 4			/* password checks at once */
#define PER_ADDRESS 256			/* connections of one address, at most */
#define AUTH_TIMEOUT_S 10		/* a connection not yet signed in: idle at most */
#define IDLE_TIMEOUT_S 120		/* one signed in: idle at most */
#define HEADER_TIMEOUT_S 20		/* a request's headers (and the TLS handshake
								 * before the first) within this of the
								 * connection's start or its last reply
								 * (+ IDLE_TIMEOUT_S once signed in) */
#define BODY_TIMEOUT_S 20		/* a body: this, then BODY_MIN_RATE ... */
#define BODY_MIN_RATE 1024		/* ... bytes a second at least on average */
#define FAILS_PER_ADDRESS 10	/* failed password attempts per FAIL_WINDOW_S ... */
#define FAIL_WINDOW_S 60		/* ... of one address; then 429 until it ends */
#define FAIL_SLOTS 4096			/* addresses whose failed attempts are counted */
#define FAILS_PER_USER 20		/* failed password attempts per FAIL_WINDOW_S
								 * for one user name, from any address; then
								 * 429 until it ends, except from ... */
#define USER_GOOD 4				/* ... the addresses it last signed in from */
#define USER_SLOTS 1024			/* names no credential has, counted by hash */
#define BIND_CACHE_MAX 10000	/* node bindings remembered, at most */

/* The hub connections requests take turns on (--pool). */
typedef struct
{
	char	   *conninfo;
	Hub		  **idle;
	int			nidle;
	int			open;
	int			max;
	long		max_set_aside;	/* for every connection (--max-set-aside) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
} Pool;

/*
 * A streaming replica (hot standby) of the hub that downloads read
 * (--replica, serve_replica.c): its connections, and how long it is left
 * alone after it failed.
 */
#define REPLICAS_MAX 16
#define REPLICA_REST_S 5		/* a replica that failed is skipped this long */

typedef struct
{
	Pool		pool;
	char		name[160];		/* host:port, for the log */
	int64_t		rest_until_us;	/* mono_us(): skipped until then (under rep_mu) */
} Replica;

/*
 * The primary's WAL insert position just after it took the snapshot it
 * last gave a node (serve_replica.c): every transaction visible in that
 * snapshot committed below it, so a replica that has replayed that far
 * sees all of them. NODE_SLOTS by hash of the node id.
 */
typedef struct
{
	char		node[NODE_ID_LEN + 1];
	char	   *snapshot;		/* malloc'd pg_snapshot text */
	char		lsn[32];		/* pg_lsn text */
} SnapshotLsn;

#define SNAPSHOT_SLOTS 4096

/*
 * The hub's wake-ups, counted by the listener thread. The node that caused
 * each of the last WAKE_RING change wake-ups is kept ("" if not an upload),
 * so that a long poll does not wake a client for its own upload.
 */
#define WAKE_RING 64

typedef struct
{
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t		changes;
	int64_t		requests;
	char		origin[WAKE_RING][NODE_ID_LEN + 1];
	bool		stop;
} Wakes;

/* An address's failed password attempts in its window (serve.c, may_try). */
typedef struct
{
	char		addr[48];
	int64_t		window_us;		/* mono_us() the window began */
	int			fails;
	bool		logged;			/* its refusal said in this window */
} FailSlot;

/*
 * A user name's failed password attempts in its window (serve.c,
 * user_may_try): one for each credential, and USER_SLOTS by hash for the
 * names no credential has (which get 429 alike, so that a 429 does not
 * tell which names exist).
 */
typedef struct
{
	char		user[AUTH_USER_MAX + 1];	/* the name (hashed slots) */
	int64_t		window_us;		/* mono_us() the window began */
	int			fails;
	bool		logged;			/* its refusal said in this window */
	char		good[USER_GOOD][64];	/* a credential's: the addresses it
										 * last signed in from */
	int			ngood;
} UserFails;

/* When a node last retried its set-aside changes (serve_data.c, retry_due). */
typedef struct
{
	char		node[NODE_ID_LEN + 1];
	int64_t		at_us;
	uint64_t	tables_digest;	/* the hub's tables then (Hub.tables_digest) */
} RetrySlot;

#define RETRY_SLOTS 4096		/* nodes whose last retry is remembered */

typedef struct
{
	HttpServer	http;
	Pool		pool;
	Wakes		wakes;
	pthread_t	listener;
	Auth	   *auth;
	char		serve_id[17];	/* this process: long-poll counters are its own */
	int64_t		started_us;
	HttpRateLimit trigger;
	/* node ids confirmed bound to a user: (node, user) */
	pthread_mutex_t bind_mu;
	char	  **bind_node;
	char	  **bind_user;
	int			nbind;
	/*
	 * Uploads wait here for a turn (half the pool, UPLOAD_SHARE) before
	 * they take a hub connection, so that they never hold every pooled
	 * connection.
	 */
	pthread_mutex_t up_mu;
	pthread_cond_t up_cv;
	int			up_busy;
	/* password checks running at once (AUTH_SLOTS at most) */
	pthread_mutex_t auth_mu;
	pthread_cond_t auth_cv;
	int			auth_busy;
	FailSlot	fail_slots[FAIL_SLOTS]; /* under auth_mu */
	UserFails  *user_fails;		/* auth_count() + USER_SLOTS, under auth_mu */
	size_t	   *user_bodies;	/* auth_count() + 1 (the admin of the
								 * environment): bytes of request bodies of
								 * each user at once, under auth_mu */
	int			nusers;			/* auth_count() */
	/* when each node last retried its set-aside changes (retry_due) */
	pthread_mutex_t retry_mu;
	RetrySlot	retry_slots[RETRY_SLOTS];
	/* counters for the status */
	pthread_mutex_t count_mu;
	int64_t		served;
	int64_t		failed;
	int64_t		overtaken;		/* uploads rolled back and sent again */
	/* the replicas downloads read (--replica), under rep_mu */
	char		hub_node_id[NODE_ID_LEN + 1];	/* a replica must have the same */
	Replica		replicas[REPLICAS_MAX];
	int			nreplicas;
	pthread_mutex_t rep_mu;
	unsigned int rep_next;		/* the replica asked first next time */
	SnapshotLsn snap_lsn[SNAPSHOT_SLOTS];
} Serve;

/* serve_state.c */
void		serve_state_init(Serve *s, const char *conninfo, int pool_max, long max_set_aside);
void		serve_state_free(Serve *s);
void		pool_init(Pool *p, const char *conninfo, int max, long max_set_aside);
void		pool_close(Pool *p);
Hub		   *pool_get(Pool *p, char *err, size_t errlen);
Hub		   *pool_take(Pool *p, int wait_s, bool *busy, char *err, size_t errlen);
void		pool_put(Pool *p, Hub *h);
void		pool_drop_idle(Pool *p);
int			serve_listener_start(Serve *s);
void		serve_listener_stop(Serve *s);
void		serve_count(Serve *s, unsigned int code);
enum MHD_Result serve_error(Serve *s, struct MHD_Connection *conn, unsigned int code,
							const char *hname, const char *hvalue, const char *fmt,...)
			__attribute__((format(printf, 6, 7)));
enum MHD_Result serve_method(Serve *s, struct MHD_Connection *conn, const char *method,
							 const char *url, const char *allow);
enum MHD_Result serve_hub_error(Serve *s, struct MHD_Connection *conn, const Hub *h,
								const char *what, const char *err);

/* serve_replica.c */
int			replica_open(Serve *s, char *const *conninfos, int n);
void		replica_close(Serve *s);
Hub		   *replica_take(Serve *s, const char *node_id, const char *lsn, int *which);
void		replica_give(Serve *s, int which, Hub *h, bool rest);
void		snapshot_lsn_keep(Serve *s, const char *node_id, const char *snapshot, const char *lsn);
bool		snapshot_lsn_find(Serve *s, const char *node_id, const char *snapshot, char *lsn, size_t lsnlen);

/* serve_data.c */
enum MHD_Result serve_data(Serve *s, struct MHD_Connection *conn, HttpRequest *req);
enum MHD_Result serve_wait(Serve *s, struct MHD_Connection *conn);

/* serve_status.c */
enum MHD_Result serve_status(Serve *s, struct MHD_Connection *conn, bool page);
enum MHD_Result serve_trigger(Serve *s, struct MHD_Connection *conn);

#endif							/* SYNCQD_SERVE_STATE_H */
