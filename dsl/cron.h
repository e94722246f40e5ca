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
 * Parsing is all this module does today: the fields become bit sets, for
 * the scheduler to match minutes against.
 */
#ifndef CAIRN_CRON_H
#define CAIRN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_CRON_TEXT_MAX 256   /* bytes of one expression */

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

#endif
