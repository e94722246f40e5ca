/*
 * file.c - reading a file from outside whole, with a bound (file.h).
 */
#include "common/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

int cairn_file_read(const char *path, size_t max, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) return CAIRN_FILE_UNREADABLE;
    char *b = cairn_malloc(max + 2);
    size_t n = fread(b, 1, max + 1, f);   /* one byte past max tells a file too large */
    int rc = ferror(f) ? CAIRN_FILE_UNREADABLE : n > max ? CAIRN_FILE_TOO_LARGE : CAIRN_FILE_OK;
    if (!is_stdin) fclose(f);
    if (rc != CAIRN_FILE_OK) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return CAIRN_FILE_OK;
}
