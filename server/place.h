/*
 * place.h - where a server starts a new top-level run (API, webhook,
 * trigger, schedule): here, or on the live engine of the cluster holding
 * the fewest unfinished runs (journal.h, "placement").  A child run is
 * not placed: it stays with its parent's engine, so a family lives on one.
 *
 * The choice reads the live serving engines and their unfinished runs
 * from the journal at each start (one indexed query), and adds the starts
 * this server has chosen that are not durable yet (pending): so a burst of
 * starts through one server spreads at once, rather than all going to
 * the engine that looked emptiest a moment ago.  A tie that includes this
 * server's engine goes to it (no run moves for nothing); other ties go
 * round in turn.  Each server sees its own starts in flight, not the
 * others': runs reaching every server evenly still move, about half of
 * them (--placement local suits a load balancer that spreads evenly).
 *
 * Modes: SRV_PLACE_SPREAD (the default on PostgreSQL), SRV_PLACE_LOCAL
 * (every run starts here; always on SQLite, which one engine writes).  If
 * the journal cannot be read the run starts here.
 *
 * Threads: any (a mutex; the choice's read is one at a time).
 * Memory: strings passed in are copied.
 */
#ifndef CAIRN_SERVER_PLACE_H
#define CAIRN_SERVER_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_PLACE_NODE_MAX 256   /* bytes of an engine's name (owner.h), with its NUL */

typedef enum { SRV_PLACE_SPREAD, SRV_PLACE_LOCAL } srv_place_mode;

/* "spread" or "local" (NULL or "": spread); CAIRN_EINVAL for another. */
int srv_place_mode_parse(const char *s, srv_place_mode *mode, cairn_err *err);

typedef struct srv_place srv_place;

/* Placement for the engine self (its owner string, copied) on the journal
 * at db_path (a reading connection of its own, on PostgreSQL in spread
 * mode). */
int srv_place_new(const char *db_path, srv_place_mode mode, const char *self, srv_place **out,
                  cairn_err *err);
void srv_place_free(srv_place *p);   /* NULL ok */

/* The engine to start a new run on: node[CAIRN_PLACE_NODE_MAX] receives
 * its owner string ("", or this server's engine: here).  Counted as pending until
 * srv_place_done(p, node), once the run's run_created is durable (or the
 * start failed). */
void srv_place_choose(srv_place *p, char node[CAIRN_PLACE_NODE_MAX]);
void srv_place_done(srv_place *p, const char *node);

/* The choice itself: the index of the least of load[0..n): prefer when it
 * is among the least (-1: none), else the i-th of those tied for least
 * where i = turn modulo their count; -1 when n is 0. */
int srv_place_pick(const int64_t *load, int n, int prefer, uint64_t turn);

#endif
