/*
 * audit_fmt.h - the files the audit commands write and read back: chain
 * heads (`verify --export-heads`) and run exports (`export`, `import`).
 *
 * Heads file, text, one record a line, fields separated by one space:
 *   cairn-heads 1
 *   journal ID          the journal's id (cairn_journal_id), "-" for none
 *   key_check HEX       the key check value of its key (audit_io.h)
 *   run ID EVENTS HEAD  per run: its event count and the hash of its last
 *                       event, 64 hex digits
 *
 * Export: the run's journal, its pinned definition and its chain head, as
 * JSON.  jsonl: a header object on the first line, then one event a line;
 * json: the header object with "events" holding the same events.
 *   header  {"cairn_export": 1, "run", "journal", "key_check",
 *            "definition": {"hash", "name", "path", "source"},
 *            "heads": [{"run", "events", "head"}]}
 *   event   {"seq", "time_ms", "time", "type", "step", "attempt", "data",
 *            "hash"}: data is the journaled canonical text, as a JSON
 *            string, byte for byte what the hash covers; time is time_ms
 *            as RFC 3339, for people (the hash covers time_ms).
 *
 * Reading either file is bounded by CAIRN_AUDIT_FILE_MAX bytes; whatever
 * does not parse is an error naming the file and line (CAIRN_ESYNTAX).
 * Reading checks form only: what the contents prove is for the caller.
 */
#ifndef CAIRN_AUDIT_FMT_H
#define CAIRN_AUDIT_FMT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/audit_io.h"

#define CAIRN_AUDIT_FILE_MAX (1L << 30)   /* bytes of a heads file or an export */
#define CAIRN_EXPORT_VERSION 1
#define CAIRN_HEADS_MAGIC "cairn-heads 1"

typedef struct audit_head {
    char run[CAIRN_RUN_ID_MAX];
    int64_t events;
    unsigned char head[CAIRN_HASH_LEN];
} audit_head;

typedef struct audit_heads {
    char journal[CAIRN_JOURNAL_ID_HEX + 1];   /* "" when unknown */
    char key_check[AUDIT_HEX_LEN + 1];
    audit_head *v;
    int n;
} audit_heads;

typedef struct audit_export {
    audit_heads heads;
    char run[CAIRN_RUN_ID_MAX];
    char *def_hash, *def_name, *def_path, *source;
    size_t source_len;
    cairn_event *events;                      /* seq order, data_text set */
    int n;
} audit_export;

void audit_heads_add(audit_heads *h, const char *run, int64_t events,
                     const unsigned char head[CAIRN_HASH_LEN]);
void audit_heads_write(FILE *f, const audit_heads *h);
/* A heads file, or the heads of an export. */
int audit_heads_read(const char *path, audit_heads *out, cairn_err *err);
void audit_heads_free(audit_heads *h);

void audit_export_write(FILE *f, const audit_export *x, bool jsonl);
int audit_export_read(const char *path, audit_export *out, cairn_err *err);
void audit_export_free(audit_export *x);

/* 64 hex digits of a hash; parse them back (0, or -1 when not hex). */
void audit_hex(const unsigned char *hash, char hex[AUDIT_HEX_LEN + 1]);
int audit_unhex(const char *hex, unsigned char hash[CAIRN_HASH_LEN]);

#endif
