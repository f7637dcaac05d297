/*
 * control.h — the control API and the status it reports (control.c).
 */
#ifndef SYNCQD_CONTROL_H
#define SYNCQD_CONTROL_H

#include "model/hubinfo.h"
#include "sync/sync.h"

/* --control default. */
#define CONTROL_DEFAULT "127.0.0.1:8765"

/* The longest origin (scheme://host[:port]) --allow-origin takes. */
#define CONTROL_ORIGIN_MAX 255

typedef struct Control Control;

/* What the loop is doing, for the status. */
typedef enum
{
	STATE_STARTING,
	STATE_IDLE,
	STATE_CONNECTING,
	STATE_SYNCING,
	STATE_RETRY_WAIT,
	STATE_STOPPING
} DaemonState;

/* Is hostport a HOST:PORT the control API can be given? -1 with err. */
int			control_check_address(const char *hostport, char *err, size_t errlen);
int			control_check_origin(const char *origin, char *err, size_t errlen);
Control    *control_start(const char *hostport, const char *db_path, const char *node_id,
						  const char *const *origins, int norigins, char *err, size_t errlen);
void		control_stop(Control *c);
int			control_wake_fd(const Control *c);
bool		control_take_trigger(Control *c);

void		control_set_state(Control *c, DaemonState s, int64_t retry_at_us);
void		control_set_hub(Control *c, const char *hub_node_id, bool connected);
void		control_set_next_periodic(Control *c, int64_t at_us);
void		control_sync_done(Control *c, bool ok, const SyncStats *st, double secs,
							  const char *error);
void		control_set_hub_errors(Control *c, long count, HubError *rows, int nrows,
								   long conflicts);

#endif							/* SYNCQD_CONTROL_H */
