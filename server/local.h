/*
 * local.h - the server's Unix socket beside the journal (DB.sock), through
 * which `cairn run` hands its run to a running `cairn serve` instead of
 * starting a second engine on the same journal: the run then shares the
 * server's group commit.
 *
 * Protocol: lines of JSON.  The client sends one request
 *   {"file": PATH, "source": TEXT, "inputs": {...},
 *    "siblings": [{"file": PATH, "source": TEXT}, ...]}
 * (the siblings: the other workflows beside it, for `uses: workflow`), and
 * the server answers {"run": ID} or {"error": {"code", "message"}} (code
 * "stopping": the server stops, the client runs it itself), then one
 * line per event of the run as it becomes durable
 *   {"seq", "time_ms", "type", "step", "attempt", "data": TEXT}
 * and last {"end": STATUS}, or {"stopped": true} when the server stops
 * first (the run is resumed by the server's next start).
 *
 * A command for a run (`cairn cancel`, `pause`, `unpause`, `approve`):
 *   {"command": TYPE, "run": ID, "data": {...}, "wait_end": BOOL}
 * is carried out at once when this server holds the run, from the moment
 * its id was handed out (the journal's tables may not show the run yet),
 * and answered {"done": true, "status": S} once durable (with wait_end,
 * once the run has ended, at most CAIRN_LOCAL_END_WAIT_MS: S is its status
 * then); {"held": false} when the server does not hold the run (nothing is
 * done: the client goes through the journal as before); or an error.
 * A webhook handed over by `cairn trigger`:
 *   {"hook": SOURCE, "payload": TEXT}
 * is carried out as POST /v1/hooks/SOURCE is, without a credential check
 * (the socket is its owner's), and answered {"answer": {...}}
 * (hookroute.h) or an error (code "unknown_source", "invalid_json",
 * "invalid_payload", "too_large", "stopping", "journal").  The run's
 * starter is the peer's user (SO_PEERCRED), as `cairn run` records its
 * own.  The socket is made 0600: only its owner and root reach it.
 *
 * Threads: one accepting, one per connection.
 */
#ifndef CAIRN_SERVER_LOCAL_H
#define CAIRN_SERVER_LOCAL_H

#include "common/err.h"
#include "server/backend.h"
#include "server/hookroute.h"

#define CAIRN_LOCAL_REQUEST_MAX (16 << 20)   /* bytes of one request line */
#define CAIRN_LOCAL_END_WAIT_MS 60000        /* a command's wait for its run to end */

typedef struct srv_local srv_local;

/* The socket's path for a journal: DB.sock.  0, or CAIRN_ELIMIT when it
 * does not fit a socket address. */
int srv_local_path(const char *db_path, char *out, size_t len, cairn_err *err);

/* Listen on the journal's socket, carrying out webhooks handed over with
 * hooks (borrowed until srv_local_stop; NULL: refused).  hooks is given
 * here, not later: the connections' threads read it without a lock, so it
 * is fixed before the first of them starts.  A socket another live server
 * answers on is left alone (CAIRN_EBUSY); a stale one is replaced. */
int srv_local_start(const char *db_path, srv_backend *b, srv_hooks *hooks, srv_local **out,
                    cairn_err *err);
/* Stop accepting, end the streams, remove the socket.  NULL ok. */
void srv_local_stop(srv_local *l);

#endif
