/*
 * tz.h - IANA time zones read from their TZif files (RFC 8536), for turning
 * UTC instants into local wall-clock time and back, without touching the
 * process's TZ (the server is threaded; setenv and tzset are not safe there).
 *
 * Files come from $TZDIR, else /usr/share/zoneinfo.  A name is what the
 * database calls a zone ("Europe/Berlin", "UTC"): letters, digits, '_',
 * '-', '+' and '/' separated parts, none of them "." or "..".  Version 1
 * files use their 32-bit table; later ones their 64-bit table and, past
 * its last transition, the POSIX TZ rule of the file's footer
 * ("EST5EDT,M3.2.0,M11.1.0"), so times after 2037 (or after the last
 * transition a "slim" file lists) follow the rule.
 *
 * Local time here is "local seconds": the wall-clock reading expressed as
 * if it were UTC (seconds since 1970-01-01T00:00 of that wall clock).
 *
 * Memory: cairn_tz_load's zone is the caller's (cairn_tz_free; NULL is
 * allowed and means UTC everywhere below).  A zone is read-only once
 * loaded: any number of threads may use it at once.
 */
#ifndef CAIRN_TZ_H
#define CAIRN_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_TZ_NAME_MAX 128           /* bytes of a zone name */
#define CAIRN_TZ_FILE_MAX (1 << 20)     /* bytes of a TZif file */

typedef struct cairn_tz cairn_tz;

/* Load zone `name`.  CAIRN_ENOTFOUND when there is no such zone (or the
 * name is not one), CAIRN_ECORRUPT when its file is not TZif. */
int cairn_tz_load(const char *name, cairn_tz **out, cairn_err *err);
void cairn_tz_free(cairn_tz *tz);

/* As cairn_tz_load, from the bytes of a TZif file (buf, len; borrowed):
 * CAIRN_ECORRUPT when they are not one. */
int cairn_tz_parse(const char *name, const void *buf, size_t len, cairn_tz **out, cairn_err *err);

/* The folder zones are read from: $TZDIR, else /usr/share/zoneinfo. */
const char *cairn_tz_dir(void);

/* The zone's name as loaded ("UTC" for NULL). */
const char *cairn_tz_name(const cairn_tz *tz);

/* Seconds east of UTC in effect at the UTC instant utc. */
int32_t cairn_tz_offset(const cairn_tz *tz, int64_t utc);

/* The UTC instants whose local time is `local` (local seconds), earliest
 * first: 1 normally, 2 when the clock went back over it (a repeated hour),
 * 0 when it went forward over it (a gap).  Returns how many went into
 * out[0..1]. */
int cairn_tz_resolve(const cairn_tz *tz, int64_t local, int64_t out[2]);

/* The calendar (proleptic Gregorian) the conversions use: days since
 * 1970-01-01 of y-m-d, and back; the weekday of a day, Sunday 0. */
int64_t cairn_days_from_civil(int64_t y, int m, int d);
void cairn_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int cairn_weekday(int64_t days);
/* a / b rounded down (toward minus infinity), b > 0: the day or minute an
 * instant before 1970 falls in. */
int64_t cairn_floor_div(int64_t a, int64_t b);

#endif
