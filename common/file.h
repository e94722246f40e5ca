/*
 * file.h - reading a file from outside whole, with a bound.
 *
 * Inputs files, webhook payloads and workflow sources are read whole before
 * they are parsed; each has a named limit, and a file past it is refused
 * rather than read in part.
 */
#ifndef CAIRN_FILE_H
#define CAIRN_FILE_H

#include <stddef.h>

enum { CAIRN_FILE_OK = 0, CAIRN_FILE_UNREADABLE = 1, CAIRN_FILE_TOO_LARGE = 2 };

/* Read path ("-" reads standard input) whole.  CAIRN_FILE_OK with *buf
 * (NUL-terminated, the caller's to free) and *len; CAIRN_FILE_UNREADABLE
 * when it cannot be opened or read; CAIRN_FILE_TOO_LARGE past max bytes.
 * *buf is NULL unless CAIRN_FILE_OK. */
int cairn_file_read(const char *path, size_t max, char **buf, size_t *len);

#endif
