/*
 * clock.h - the two clocks Cairn reads.
 *
 * Monotonic milliseconds measure time-outs and deadlines inside one process;
 * wall-clock milliseconds (Unix epoch, UTC) are what the journal records.
 */
#ifndef CAIRN_CLOCK_H
#define CAIRN_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t cairn_now_ms(void);    /* CLOCK_MONOTONIC */
int64_t cairn_now_us(void);    /* CLOCK_MONOTONIC, microseconds: short waits */
int64_t cairn_wall_ms(void);   /* CLOCK_REALTIME */

/* Format wall-clock ms as RFC 3339 UTC with milliseconds
 * ("2026-11-23T15:06:50.123Z") into out (at least 32 bytes); returns out. */
char *cairn_rfc3339(int64_t wall_ms, char *out, size_t outlen);

/* Parse RFC 3339 ("2026-11-23T15:06:50Z", an optional fraction, "Z" or a
 * +hh:mm / -hh:mm offset) to wall-clock ms; 0, or -1 when s is not one. */
int cairn_rfc3339_parse(const char *s, int64_t *ms);

#endif
