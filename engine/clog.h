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
 *            "CAIRNCL2", u64 generation, the journal's id (16 bytes, the
 *            binary of cairn_journal_id's hex; zeros: none yet), u32 owner
 *            length, the owner (the engine that wrote the records), u32
 *            CRC-32C of all before
 *   records  from CAIRN_CLOG_HEADER on, back to back:
 *            u32 CAIRN_CLOG_MAGIC, u32 payload length, u64 generation,
 *            u64 synced (the offset before which the log was durable when
 *            the record was written: the end of the records that a
 *            finished cairn_clog_sync covered), u32 event count, u32 CRC-32C
 *            of the 28 bytes before it and of the payload; then the payload,
 *            the events one after another
 *   integers little-endian; strings as a u32 length (0xffffffff: none) and
 *   their bytes.
 *
 * A record counts when its magic, generation and checksum hold and its
 * events decode.  Starting over (cairn_clog_reset) writes and syncs a
 * header with the next generation, which makes every record in the file
 * stale at once.
 *
 * Torn tail or damage.  Records are read from the header on until one does
 * not hold; that offset is the end.  What follows is normally zeros or an
 * earlier generation's records, or a torn tail: a crash in the middle of
 * writes never synced.  Then the rest of the file is searched, at every
 * offset (the damaged record's length cannot be trusted), for a whole record
 * of this generation whose synced field passes the end: it was written after
 * the bytes at the end had been synced, so they were whole once, and a
 * crash cannot explain them (unsynced records may outlive a torn one before
 * them at a power loss, so a whole record alone proves nothing).  That is
 * damage:
 *   - when the journal holds every event of the last whole record in the
 *     file (so, as it holds a prefix of the log, every event from the
 *     damage on), a warning names the offset and the log goes on as if
 *     its end were there: nothing is lost;
 *   - else the open is refused with CAIRN_ECORRUPT (the CLI exits 3) naming
 *     the file and the offset, and nothing is applied or written.
 * The search reads the file once per open, in CAIRN_CLOG_SCAN_CHUNK pieces,
 * and checksums at most CAIRN_CLOG_SCAN_WORK times the file's size: a file
 * packed with record headers of this generation (made to cost its size
 * squared) is refused as damage past that, with no record known after it.
 * Damage to the last records written before a crash, with no record written
 * after their sync, cannot be told from a torn tail and is dropped as one.
 *
 * Damage, for an operator.  Nothing was changed: first copy PATH-clog (and
 * PATH, PATH-wal) aside.  Then either put back a good copy of PATH-clog
 * (a backup, or the disk's own repair) and run the command again, or
 * accept losing the events from the damage on: run the command again with
 * CAIRN_CLOG_ACCEPT_DAMAGE set to the offset the refusal named, which applies
 * every record before that offset, drops the rest and starts the log over.
 * The runs whose events were dropped resume from what the journal holds:
 * steps whose end was lost are treated as interrupted (their on_crash).
 *
 * Bound to its journal.  The journal gets a random id when it is made (or,
 * made before journals had one, from its first connection that writes) and
 * the log's header carries it.  A log naming another journal (copied from
 * elsewhere, or left by a journal deleted and made again), or none, is
 * refused with CAIRN_ECORRUPT if it holds records, nothing applied or
 * written: move it away if it was not this journal's.  One that holds no
 * record is taken over: the next engine writes this journal's id into it.
 * A log of the format before this one (header "CAIRNCL1") is taken over
 * when empty; one still holding records is refused: apply it with the cairn
 * that wrote it first.
 *
 * A refused open writes nothing: the checks above only read (the journal
 * through a connection that writes nothing, store.h), and take, settle and
 * the engine write (apply, start over, make the journal's id) only once they
 * pass.
 *
 * One process writes the log: cairn_clog_open takes an exclusive flock on it
 * and fails with CAIRN_EBUSY while another process holds it.  Whoever takes
 * the lock applies what the last holder left before it trusts SQLite's view
 * of that holder's runs.
 *
 * Threads: append and reset from one thread at a time; sync may run on a
 * second thread meanwhile (not during a reset), and apply on a third, over
 * records already appended (it reads them back with pread).
 *
 * Limits: CAIRN_CLOG_BYTES is the file's size; a batch larger than the log
 * grows the file at the next reset.  CAIRN_CLOG_SCAN_CHUNK is read at a time
 * when the file is searched past its end.
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
#define CAIRN_CLOG_MAGIC 0x32524c43u   /* "CLR2" */
#define CAIRN_CLOG_SCAN_CHUNK (64 << 10)   /* the search past the end reads this much at once */
#define CAIRN_CLOG_SCAN_WORK 4            /* it checksums at most this many times the file's size */
#define CAIRN_CLOG_SETTLE_WAIT_MS 30000   /* cairn_clog_settle waits for another's apply */

typedef struct cairn_clog cairn_clog;

/* Open the log of the journal at db_path (making it if absent and create,
 * else CAIRN_ENOTFOUND) and lock it.  CAIRN_EBUSY when another process holds
 * it; CAIRN_ECORRUPT, nothing written, for damage or a log of another
 * journal (above).  The records its last holder left stay until cairn_clog_reset;
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

/* The CRC-32C (Castagnoli) of n bytes at data, continuing crc (0 to begin):
 * the checksum a record carries. */
uint32_t cairn_clog_crc32c(uint32_t crc, const void *data, size_t n);

/* Close and unlock.  NULL is allowed. */
void cairn_clog_close(cairn_clog *l);

#endif
