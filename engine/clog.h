/*
 * clog.h - the commit log: where the engine's journal writes become durable.
 *
 * A SQLite commit costs tens of microseconds of work between two syncs (its
 * locks, its B-trees, the frames of its own log), and a run going step by
 * step waits for every one.  So the engine that holds this log writes each
 * batch of events here first, as one record in one pwrite, and the batch is
 * durable once the log is synced.  The same events reach SQLite afterwards,
 * many batches in one transaction and without a sync of their own
 * (cairn_clog_apply); SQLite is synced before the log starts over, so every
 * event is always durable in one of the two, and SQLite always holds a
 * prefix of what the log made durable.
 *
 * The file is PATH-clog beside the journal PATH, with the journal's
 * permissions, written with zeros to its full size when it is made (a sync
 * then never has to record the file's growth):
 *
 *   header   offset 0, CAIRN_CLOG_HEADER bytes:
 *            "CAIRNCL1", u64 generation, u32 owner length, the owner
 *            (the engine that wrote the records), u32 CRC-32C of all before
 *   records  from CAIRN_CLOG_HEADER on, back to back:
 *            u32 CAIRN_CLOG_MAGIC, u32 payload length, u64 generation,
 *            u32 event count, u32 CRC-32C of the 20 bytes before it and of
 *            the payload; then the payload, the events one after another
 *   integers little-endian; strings as a u32 length (0xffffffff: none) and
 *   their bytes.
 *
 * A record counts only when its magic, generation and checksum hold and its
 * events decode: reading stops at the first that does not, so a torn tail
 * (a crash in the middle of a write) or a record left from an earlier
 * generation is never replayed.  Starting over (cairn_clog_reset) writes and
 * syncs a header with the next generation, which makes every record in the
 * file stale at once.
 *
 * One process writes the log: cairn_clog_open takes an exclusive flock on it
 * and fails with CAIRN_EBUSY while another process holds it.  Whoever takes
 * the lock applies what the last holder left before it trusts SQLite's view
 * of that holder's runs.
 *
 * Threads: append and reset from one thread at a time; sync may run on a
 * second thread meanwhile, and apply on a third, over records already
 * appended (it reads them back with pread).
 *
 * Limits: CAIRN_CLOG_BYTES is the file's size; a batch larger than the log
 * grows the file at the next reset.
 */
#ifndef CAIRN_CLOG_H
#define CAIRN_CLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/event.h"
#include "engine/store.h"

#define CAIRN_CLOG_BYTES (4 << 20)     /* the file, header included */
#define CAIRN_CLOG_HEADER 4096
#define CAIRN_CLOG_MAGIC 0x31524c43u   /* "CLR1" */
#define CAIRN_CLOG_SETTLE_WAIT_MS 30000   /* cairn_clog_settle waits for another's apply */

typedef struct cairn_clog cairn_clog;

/* Open the log of the journal at db_path (making it if absent and create,
 * else CAIRN_ENOTFOUND) and lock it.  CAIRN_EBUSY when another process holds
 * it.  The records its last holder left stay until cairn_clog_reset;
 * cairn_clog_end says how far they go.  owner is what the next reset
 * records as the log's writer (copied). */
int cairn_clog_open(const char *db_path, const char *owner, bool create, cairn_clog **out,
                    cairn_err *err);

/* Open and lock the log as cairn_clog_open does, apply every record it
 * holds to the journal (through a connection of its own that syncs each
 * commit, the runs they create owned by the log's last writer, so that any
 * engine may claim them once it is gone), and start it over: what the last
 * holder made durable is in SQLite before anyone reads its runs there.  An
 * empty log is started over only when owner is not "" and not its writer
 * already (the header must name the engine whose records follow). */
int cairn_clog_take(const char *db_path, const char *owner, bool create, cairn_clog **out,
                    cairn_err *err);

/* For a program that reads the journal, or an engine about to claim runs
 * without holding the log: if the log beside db_path holds records of an
 * engine that is gone, apply them now (cairn_clog_take) and let the log go,
 * as SQLite recovers its own log for the first reader after a crash.  When
 * another process holds the log while a gone engine's records are in it,
 * that process is applying them: wait for it (CAIRN_CLOG_SETTLE_WAIT_MS at
 * most, then CAIRN_EBUSY).  0 when there is no log, or once a live engine
 * holds it with only its own records (it applies them within
 * CAIRN_CLOG_APPLY_MS). */
int cairn_clog_settle(const char *db_path, cairn_err *err);

/* Append events[0..n) as one record after the last.  *end receives the
 * offset just past the record.  Not durable until cairn_clog_sync.
 * Returns CAIRN_EFULL, writing nothing, when the record does not fit before
 * the end of the file; then *end receives the bytes it needs (apply, sync
 * the store, reset with that need, and append again). */
int cairn_clog_append(cairn_clog *l, cairn_event *const *events, int n, int64_t *end,
                      cairn_err *err);

/* Make every record appended before this call durable (one fdatasync).
 * After a failure nothing later is known to be durable either. */
int cairn_clog_sync(cairn_clog *l, cairn_err *err);

/* The offset just past the last record: appended, or found at open. */
int64_t cairn_clog_end(const cairn_clog *l);

/* Apply the records in [from, to) to store (store->ops->append_missing: an
 * event the store holds already is skipped, so applying twice changes
 * nothing), in one transaction.  *events receives how many events the range
 * held (may be NULL).  to must not pass cairn_clog_end.  Runs created are
 * owned by the store's owner: set it to cairn_clog_writer to replay another
 * holder's records. */
int cairn_clog_apply(cairn_clog *l, cairn_store *store, int64_t from, int64_t to, int *events,
                     cairn_err *err);

/* Start over: every record becomes stale.  The caller has applied them all
 * and synced the store.  Writes and syncs a header with the next generation
 * and this holder as its writer; grows the file first when fewer than need
 * bytes would follow the header. */
int cairn_clog_reset(cairn_clog *l, size_t need, cairn_err *err);

/* The engine that wrote the records (the header's owner; "" for a new log). */
const char *cairn_clog_writer(const cairn_clog *l);

/* Close and unlock.  NULL is allowed. */
void cairn_clog_close(cairn_clog *l);

#endif
