/*
 * owner.h - naming the engine process that holds a run, and telling whether
 * that process still lives.
 *
 * An owner is "host:pid:starttime" (starttime from /proc/PID/stat, so a
 * recycled pid is not mistaken for the old engine).  A run whose owner is dead
 * may be claimed by any engine; one whose owner lives is left alone.
 */
#ifndef CAIRN_OWNER_H
#define CAIRN_OWNER_H

#include <stdbool.h>
#include <stddef.h>

/* This process's owner string into out. */
void cairn_owner_self(char *out, size_t outlen);

/* True when owner names a process alive on this host (or on another host:
 * then it cannot be checked and counts as alive). */
bool cairn_owner_alive(const char *owner);

/* True when owner names a process on this host (alive or not). */
bool cairn_owner_local(const char *owner);

/* Nudge the engine process named by owner (SIGUSR1) so it reads new
 * commands now instead of at its next poll.  Does nothing for a dead owner
 * or one on another host. */
void cairn_owner_wake(const char *owner);

#endif
