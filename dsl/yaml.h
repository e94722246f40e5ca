/*
 * yaml.h - YAML text to a tree of nodes that remember their line and column.
 *
 * Parsing uses libyaml's event API.  Limits (named, documented in README):
 *   CAIRN_YAML_MAX_BYTES   source size            (1 MiB)
 *   CAIRN_YAML_MAX_DEPTH   nesting depth          (64)
 *   CAIRN_YAML_MAX_NODES   nodes, aliases counted at their expanded size (100,000)
 * Aliases share the anchored subtree (no copy); the node budget counts the
 * expanded size, so an alias bomb is refused in bounded time and memory.
 * Input must be UTF-8; a file with a NUL byte or invalid UTF-8 is refused.
 * Only one document per file.  Mapping keys must be scalars and unique.
 *
 * Memory: the tree is owned by its cairn_yaml_doc; free it with
 * cairn_yaml_free (NULL allowed).  Nodes are read-only after parsing.
 */
#ifndef CAIRN_YAML_H
#define CAIRN_YAML_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>

#include "dsl/diag.h"

#define CAIRN_YAML_MAX_BYTES (1u << 20)
#define CAIRN_YAML_MAX_DEPTH 64
#define CAIRN_YAML_MAX_NODES 100000

typedef enum { CAIRN_NODE_SCALAR, CAIRN_NODE_MAP, CAIRN_NODE_SEQ } cairn_node_kind;

typedef struct cairn_node cairn_node;
struct cairn_node {
    cairn_node_kind kind;
    int line, col;              /* 1-based position of the node's start */
    /* scalar */
    char *text;                 /* NUL-terminated (no NUL inside: refused) */
    size_t len;
    bool quoted;                /* single-, double-quoted, literal or folded */
    int text_col;               /* column of text[0] when the text stands in the
                                   source byte for byte on one line; else 0 */
    /* map: keys[i] (scalars) -> values[i]; seq: values[i] */
    cairn_node **keys;
    cairn_node **values;
    int count;
};

typedef struct cairn_yaml_doc cairn_yaml_doc;

/* Parse src (len bytes) read from file (a name for messages).  On success
 * returns 0 and *doc; on failure reports to diags and returns CAIRN_ESYNTAX or
 * CAIRN_ELIMIT (*doc is NULL). */
int cairn_yaml_parse(const char *file, const char *src, size_t len,
                     cairn_yaml_doc **doc, cairn_diags *diags);

const cairn_node *cairn_yaml_root(const cairn_yaml_doc *doc);
void cairn_yaml_free(cairn_yaml_doc *doc);

/* The value for key in a map node, or NULL. */
const cairn_node *cairn_node_get(const cairn_node *map, const char *key);

/* The key node paired with key in a map node (for positions), or NULL. */
const cairn_node *cairn_node_key(const cairn_node *map, const char *key);

/* A node as JSON.  Plain scalars follow the YAML 1.2 core schema (null, ~,
 * true, false, integers, floats); quoted scalars are strings. */
jv cairn_node_to_jv(const cairn_node *node);

/* "a map", "a list", "a string"... for messages. */
const char *cairn_node_kind_name(const cairn_node *node);

#endif
