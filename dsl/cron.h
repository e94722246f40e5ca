/*
 * cron.h - a cron expression, as a trigger's `schedule` gives it.
 *
 * Five fields separated by blanks: minute (0-59), hour (0-23), day of month
 * (1-31), month (1-12 or JAN-DEC), day of week (0-7, 0 and 7 both Sunday,
 * or SUN-SAT); names in any case.  Each field is a list, separated by
 * commas, of: `*`; a value; a range `a-b` (a <= b); any of these followed by
 * `/step` (1 <= step, every step-th value of the range: `*` is the whole
 * field).  As in Vixie cron, when both day fields are restricted (neither
 * starts with `*`), a day matching either one matches.
 *
 * The fields become bit sets; cairn_cron_next finds the next minute they
 * match, on the wall clock of a time zone (tz.h).
 *
 * Wall-clock changes (daylight saving time), as ISC cron handles them:
 *   - a wall-clock time the clock skips (a gap: 02:30 on a spring-forward
 *     night) fires at the first instant after the gap (03:00 new time);
 *     several skipped times fire once there;
 *   - a wall-clock time the clock passes twice (a repeated hour) fires once,
 *     at its first pass, unless the schedule's hour field is every hour
 *     (`*`): a schedule that runs every hour (or more often) keeps running
 *     through both passes, as elapsed time goes.
 */
#ifndef CAIRN_CRON_H
#define CAIRN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tz.h"

#define CAIRN_CRON_TEXT_MAX 256   /* bytes of one expression */
#define CAIRN_CRON_SEARCH_YEARS 28 /* years searched for a date a schedule matches */
#define CAIRN_CRON_RESOLVE_BUDGET 200000 /* wall-clock minutes one search maps to instants */

typedef struct cairn_cron {
    uint64_t minute;                   /* bit m: minute m */
    uint64_t hour;                     /* bit h: hour h */
    uint64_t mday;                     /* bits 1..31 */
    uint64_t month;                    /* bits 1..12 */
    uint64_t wday;                     /* bits 0..6, Sunday 0 */
    bool mday_star, wday_star;         /* the field starts with `*` */
} cairn_cron;

/* Parse text into *out.  On error returns -1, with a message naming the
 * field and the value in err (errlen bytes), and *at set to the byte offset
 * in text where the bad field starts; else 0. */
int cairn_cron_parse(const char *text, cairn_cron *out, char *err, size_t errlen, size_t *at);

/* The first fire of c strictly after the UTC instant `after` (seconds),
 * reading c on the wall clock of tz (NULL: UTC): 0 and *next, a whole
 * minute of that clock (or the end of a gap, see above); -1 when no date
 * within CAIRN_CRON_SEARCH_YEARS matches (February 30, April 31), or when
 * the zone's changes are so dense that CAIRN_CRON_RESOLVE_BUDGET wall-clock
 * minutes mapped find no instant (a damaged zone file; real zones need a
 * few thousand). */
int cairn_cron_next(const cairn_cron *c, const cairn_tz *tz, int64_t after, int64_t *next);

#endif
