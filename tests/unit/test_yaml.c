/*
 * test_yaml.c - YAML to positioned nodes: positions, the core schema, and
 * every kind of bad input refused with a clear message and position.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "dsl/diag.h"
#include "dsl/yaml.h"

typedef struct parsed {
    int rc;
    cairn_yaml_doc *doc;
    cairn_diags diags;
    char *text;          /* the diagnostics as printed, without source lines */
} parsed;

__attribute__((noinline)) static char *render(const cairn_diags *d, const char *src, size_t len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cairn_diags_print(d, f, src, len);
    fclose(f);
    return buf;
}

static parsed parse_n(const char *src, size_t len) {
    parsed p = {0, NULL, CAIRN_DIAGS_INIT, NULL};
    p.rc = cairn_yaml_parse("t.yaml", src, len, &p.doc, &p.diags);
    p.text = render(&p.diags, NULL, 0);
    return p;
}

static parsed parse(const char *src) { return parse_n(src, strlen(src)); }

static void done(parsed *p) {
    cairn_yaml_free(p->doc);
    cairn_diags_free(&p->diags);
    free(p->text);
}

static char *json_of(const cairn_node *n) {
    jv s = jv_dump_string(cairn_node_to_jv(n), JV_PRINT_SORTED);
    char *out = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return out;
}

TEST(yaml_positions_of_keys_and_values) {
    parsed p = parse("name: x\nsteps:\n  - id: a\n    uses: set\n  - {id: b, uses: fail}\n");
    CHECK_INT(p.rc, 0);
    const cairn_node *root = cairn_yaml_root(p.doc);
    CHECK_INT(root->kind, CAIRN_NODE_MAP);
    CHECK_INT(root->line, 1);
    CHECK_INT(root->col, 1);
    const cairn_node *k = cairn_node_key(root, "steps");
    CHECK_INT(k->line, 2);
    CHECK_INT(k->col, 1);
    const cairn_node *steps = cairn_node_get(root, "steps");
    CHECK_INT(steps->count, 2);
    const cairn_node *a = steps->values[0];
    CHECK_INT(a->line, 3);
    CHECK_INT(a->col, 5);
    const cairn_node *uses = cairn_node_get(a, "uses");
    CHECK_STR(uses->text, "set");
    CHECK_INT(uses->line, 4);
    CHECK_INT(uses->col, 11);
    const cairn_node *b = steps->values[1];
    CHECK_INT(b->line, 5);
    CHECK_INT(b->col, 5);
    CHECK_INT(cairn_node_get(b, "uses")->col, 19);
    CHECK(cairn_node_get(root, "nope") == NULL);
    CHECK(cairn_node_get(uses, "x") == NULL);
    done(&p);
}

TEST(yaml_columns_count_characters_not_bytes) {
    parsed p = parse("é: [1, ü, x]\n");
    CHECK_INT(p.rc, 0);
    const cairn_node *l = cairn_node_get(cairn_yaml_root(p.doc), "é");
    CHECK_INT(l->values[2]->col, 11);
    done(&p);
}

TEST(yaml_core_schema_for_plain_scalars) {
    parsed p = parse("a: [null, ~, '', true, False, 12, -3, 0x1F, 0o17, 1.5, 1e3, .5, .inf, -.Inf,\n"
                     "    yes, no, on, off, 0777, 1_000, '12', \"true\", 0x, 1e, +7]\n"
                     "b:\n"
                     "c: |\n  text\n");
    CHECK_INT(p.rc, 0);
    char *s = json_of(cairn_yaml_root(p.doc));
    CHECK_STR(s, "{\"a\":[null,null,\"\",true,false,12,-3,31,15,1.5,1000,0.5,"
                 "1.7976931348623157e+308,-1.7976931348623157e+308,"
                 "\"yes\",\"no\",\"on\",\"off\",777,\"1_000\",\"12\",\"true\",\"0x\",\"1e\",7],"
                 "\"b\":null,\"c\":\"text\\n\"}");
    free(s);
    const cairn_node *a = cairn_node_get(cairn_yaml_root(p.doc), "a");
    CHECK_STR(cairn_node_kind_name(a), "a list");
    CHECK_STR(cairn_node_kind_name(cairn_yaml_root(p.doc)), "a map");
    CHECK_STR(cairn_node_kind_name(a->values[0]), "null");
    CHECK_STR(cairn_node_kind_name(a->values[3]), "a boolean");
    CHECK_STR(cairn_node_kind_name(a->values[5]), "a number");
    CHECK_STR(cairn_node_kind_name(a->values[14]), "a string");
    CHECK_STR(cairn_node_kind_name(a->values[20]), "a string");
    CHECK(a->values[20]->quoted);
    CHECK(!a->values[5]->quoted);
    done(&p);
}

TEST(yaml_str_tag_makes_a_string_and_other_tags_are_refused) {
    parsed p = parse("a: !!str 123\n");
    CHECK_INT(p.rc, 0);
    char *s = json_of(cairn_yaml_root(p.doc));
    CHECK_STR(s, "{\"a\":\"123\"}");
    free(s);
    done(&p);
    p = parse("a: !custom 123\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:1:4: error: unsupported YAML tag '!custom'\n");
    done(&p);
}

TEST(yaml_empty_file_is_one_null) {
    parsed p = parse("");
    CHECK_INT(p.rc, 0);
    CHECK_INT(cairn_yaml_root(p.doc)->kind, CAIRN_NODE_SCALAR);
    CHECK_STR(cairn_node_kind_name(cairn_yaml_root(p.doc)), "null");
    done(&p);
}

TEST(yaml_duplicate_keys_are_errors_naming_both) {
    parsed p = parse("a: 1\nb: 2\na: 3\nm: {x: 1, x: 2}\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK(p.doc == NULL);
    CHECK_STR(p.text, "t.yaml:3:1: error: duplicate key 'a' (first at 1:1)\n"
                      "t.yaml:4:11: error: duplicate key 'x' (first at 4:5)\n");
    done(&p);
}

TEST(yaml_duplicate_keys_in_a_large_map) {
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; i < 5000; i++) cairn_buf_printf(&b, "k%d: %d\n", i, i);
    cairn_buf_puts(&b, "k4321: again\n");
    parsed p = parse(b.data);
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:5001:1: error: duplicate key 'k4321' (first at 4322:1)\n");
    done(&p);
    cairn_buf_free(&b);
}

TEST(yaml_map_keys_must_be_scalars) {
    parsed p = parse("? [a, b]\n: 1\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "t.yaml:1:3: error: a map key must be a plain string, not a list");
    done(&p);
}

TEST(yaml_malformed_is_refused_with_position) {
    parsed p = parse("a: b\n  c: d\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:2:4: error: invalid YAML: mapping values are not allowed in "
                      "this context\n");
    done(&p);
    p = parse("a: [1, 2\nb: 3\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "error: invalid YAML: did not find expected ',' or ']' "
                           "(while parsing a flow sequence at 1:4)");
    done(&p);
    p = parse("a: \"open\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "invalid YAML: found unexpected end of stream");
    done(&p);
}

TEST(yaml_second_document_is_refused) {
    parsed p = parse("a: 1\n---\nb: 2\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:2:1: error: a workflow file holds one YAML document; a second "
                      "one starts here\n");
    done(&p);
    p = parse("---\na: 1\n...\n");
    CHECK_INT(p.rc, 0);
    done(&p);
}

TEST(yaml_invalid_utf8_and_nul_are_refused_with_position) {
    parsed p = parse("a: ok\nb: caf\xe9\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:2:7: error: invalid UTF-8 (byte 0xe9); a workflow is UTF-8 text\n");
    done(&p);
    p = parse("a: \xed\xa0\x80\n");          /* an encoded UTF-16 surrogate */
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "t.yaml:1:4: error: invalid UTF-8 (byte 0xed)");
    done(&p);
    p = parse("a: \xc0\xaf\n");              /* overlong '/' */
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    done(&p);
    p = parse_n("a: 1\nbb: x\0y\n", 12);
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:2:6: error: NUL byte in the file; a workflow is UTF-8 text\n");
    done(&p);
    p = parse("a: \"x\\0y\"\n");             /* a NUL made by an escape */
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:1:4: error: a string may not hold a NUL character\n");
    done(&p);
    p = parse("a: \x01\n");                  /* control characters: libyaml's reader */
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "t.yaml:1:4: error: invalid YAML: control characters are not allowed");
    done(&p);
}

TEST(yaml_too_large_is_refused_by_size_before_parsing) {
    size_t len = 10u << 20;
    char *big = cairn_malloc(len);
    memset(big, '#', len);                  /* would parse fine: one long comment */
    parsed p = parse_n(big, len);
    CHECK_INT(p.rc, CAIRN_ELIMIT);
    CHECK_STR(p.text, "t.yaml: error: file too large: 10485760 bytes (the limit is 1048576)\n");
    done(&p);
    free(big);
}

/* The error names the 65th level, so parsing stopped there: the rest of the
 * 10,000 levels is never built. */
TEST(yaml_deep_nesting_is_refused_at_the_limit) {
    int deep = 10000;
    char *s = cairn_malloc((size_t)deep * 2 + 2);
    memset(s, '[', (size_t)deep);
    memset(s + deep, ']', (size_t)deep);
    s[2 * deep] = '\n';
    s[2 * deep + 1] = '\0';
    parsed p = parse(s);
    CHECK_INT(p.rc, CAIRN_ELIMIT);
    CHECK_STR(p.text, "t.yaml:1:65: error: YAML nested deeper than 64 levels\n");
    done(&p);
    cairn_buf b = CAIRN_BUF_INIT;               /* block style: "- - - - x" */
    for (int i = 0; i < deep; i++) cairn_buf_puts(&b, "- ");
    cairn_buf_puts(&b, "x\n");
    p = parse(b.data);
    CHECK_INT(p.rc, CAIRN_ELIMIT);
    CHECK_STR(p.text, "t.yaml:1:129: error: YAML nested deeper than 64 levels\n");
    done(&p);
    cairn_buf_free(&b);
    free(s);
    memset(&p, 0, sizeof p);
}

TEST(yaml_nesting_at_the_limit_is_accepted) {
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; i < CAIRN_YAML_MAX_DEPTH; i++) cairn_buf_putc(&b, '[');
    for (int i = 0; i < CAIRN_YAML_MAX_DEPTH; i++) cairn_buf_putc(&b, ']');
    parsed p = parse(b.data);
    CHECK_INT(p.rc, 0);
    done(&p);
    cairn_buf_free(&b);
}

/* "Billion laughs": 9 levels of 10 aliases each would expand to 10^9 nodes.
 * The budget counts an alias at its expanded size, so the parse stops at the
 * alias that crosses 100,000 (the 8th *d, line 5), before reading the rest. */
TEST(yaml_alias_bomb_is_refused_by_the_node_budget) {
    const char *bomb =
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    parsed p = parse(bomb);
    CHECK_INT(p.rc, CAIRN_ELIMIT);
    CHECK_STR(p.text, "t.yaml:5:36: error: too many YAML nodes: more than 100000 (an alias "
                      "counts as the size of what it repeats)\n");
    done(&p);
}

TEST(yaml_aliases_share_the_anchored_node) {
    parsed p = parse("base: &b {x: 1, y: [2, 3]}\nuse: *b\nkey: &k name\n*k : 4\n");
    CHECK_INT(p.rc, 0);
    const cairn_node *root = cairn_yaml_root(p.doc);
    CHECK(cairn_node_get(root, "base") == cairn_node_get(root, "use"));
    char *s = json_of(root);
    CHECK_STR(s, "{\"base\":{\"x\":1,\"y\":[2,3]},\"key\":\"name\",\"name\":4,"
                 "\"use\":{\"x\":1,\"y\":[2,3]}}");
    free(s);
    done(&p);
}

TEST(yaml_undefined_and_recursive_aliases_are_refused) {
    parsed p = parse("a: *nope\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_STR(p.text, "t.yaml:1:4: error: undefined alias '*nope' (an alias must follow the "
                      "whole node its anchor names)\n");
    done(&p);
    p = parse("a: &r [1, *r]\n");
    CHECK_INT(p.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(p.text, "t.yaml:1:11: error: undefined alias '*r'");
    done(&p);
}

/* An alias carries the height of what it repeats into the depth check. */
TEST(yaml_alias_cannot_nest_past_the_depth_limit) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "a: &deep ");
    for (int i = 0; i < 40; i++) cairn_buf_putc(&b, '[');
    for (int i = 0; i < 40; i++) cairn_buf_putc(&b, ']');
    cairn_buf_puts(&b, "\nb: ");
    for (int i = 0; i < 30; i++) cairn_buf_putc(&b, '[');
    cairn_buf_puts(&b, "*deep");
    for (int i = 0; i < 30; i++) cairn_buf_putc(&b, ']');
    cairn_buf_putc(&b, '\n');
    parsed p = parse(b.data);
    CHECK_INT(p.rc, CAIRN_ELIMIT);
    CHECK_STR(p.text, "t.yaml:2:34: error: YAML nested deeper than 64 levels\n");
    done(&p);
    cairn_buf_free(&b);
}

TEST(yaml_free_accepts_null) {
    cairn_yaml_free(NULL);
    CHECK(cairn_yaml_root(NULL) == NULL);
    CHECK(cairn_node_get(NULL, "x") == NULL);
}

/* text_col is set only where the text is the source byte for byte. */
TEST(yaml_text_column_only_where_bytes_match) {
    parsed p = parse("a: plain text\nb: 'single'\nc: \"dq\"\nd: \"e\\tsc\"\n"
                     "e: >-\n  folded\n  text\nf: |\n  lit\ng: 'it''s'\n");
    CHECK_INT(p.rc, 0);
    const cairn_node *root = cairn_yaml_root(p.doc);
    CHECK_INT(cairn_node_get(root, "a")->text_col, 4);
    CHECK_INT(cairn_node_get(root, "b")->text_col, 5);
    CHECK_INT(cairn_node_get(root, "c")->text_col, 5);
    CHECK_INT(cairn_node_get(root, "d")->text_col, 0);   /* an escape */
    CHECK_INT(cairn_node_get(root, "e")->text_col, 0);   /* folded */
    CHECK_INT(cairn_node_get(root, "f")->text_col, 0);   /* literal */
    CHECK_INT(cairn_node_get(root, "g")->text_col, 0);   /* '' is one quote */
    done(&p);
}

/* ---- diag rendering ------------------------------------------------------- */

TEST(diag_renders_source_line_and_caret) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    const char *src = "a: 1\n\tb: x\ncé: y\n";
    cairn_diags_add(&d, "f.yaml", 2, 5, "bad %s", "b");
    cairn_diags_add(&d, "f.yaml", 3, 5, "after a multibyte character");
    cairn_diags_add(&d, "f.yaml", 0, 0, "no place");
    cairn_diags_add(&d, "f.yaml", 2, 5, "bad %s", "b");     /* a duplicate: dropped */
    CHECK_INT(cairn_diags_count(&d), 3);
    char *s = render(&d, src, strlen(src));
    CHECK_STR(s, "f.yaml:2:5: error: bad b\n"
                 "  \tb: x\n"
                 "  \t   ^\n"
                 "f.yaml:3:5: error: after a multibyte character\n"
                 "  cé: y\n"
                 "      ^\n"
                 "f.yaml: error: no place\n");
    free(s);
    cairn_err e;
    cairn_err_clear(&e);
    CHECK_INT(cairn_diags_to_err(&d, &e), CAIRN_ESYNTAX);
    char buf[256];
    CHECK_STR(cairn_err_format(&e, buf, sizeof buf), "f.yaml:2:5: bad b");
    cairn_diags_free(&d);
    CHECK_INT(cairn_diags_to_err(&d, &e), 0);
    cairn_diags_free(NULL);
}

/* A 50 KB line is shown as a window around the column, the caret under the
 * same character: every printed line stays short. */
TEST(diag_long_line_is_shown_as_a_window) {
    size_t n = 50000;
    char *src = malloc(n + 2);
    memset(src, 'x', n);
    memcpy(src + 30000, "BAD", 3);
    src[n] = '\n';
    src[n + 1] = '\0';
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_diags_add(&d, "f.yaml", 1, 30001, "here");
    cairn_diags_add(&d, "f.yaml", 1, 2, "at the start");
    char *s = render(&d, src, n + 1);
    size_t longest = 0;
    for (char *line = s, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
        if ((size_t)(nl - line) > longest) longest = (size_t)(nl - line);
    CHECK(longest <= CAIRN_DIAG_LINE_MAX + 8);
    /* the caret stands under the B of BAD */
    char *shown = strstr(s, "BAD"), *caret = strchr(s, '^');
    CHECK(shown && caret);
    CHECK_INT(caret - strchr(shown, '\n'), shown - strstr(s, "\n  ..."));
    CHECK_CONTAINS(s, "f.yaml:1:2: error: at the start\n  xxxx");
    CHECK_CONTAINS(s, "x...\n   ^\n");
    free(s);
    free(src);
    cairn_diags_free(&d);
}

TEST(diag_keeps_a_bounded_number) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    for (int i = 0; i < CAIRN_DIAGS_MAX + 5; i++) cairn_diags_add(&d, "f", i + 1, 1, "e%d", i);
    CHECK_INT(d.count, CAIRN_DIAGS_MAX);
    CHECK_INT(cairn_diags_count(&d), CAIRN_DIAGS_MAX + 5);
    char *s = render(&d, NULL, 0);
    CHECK_CONTAINS(s, "f:200:1: error: e199\n... and 5 more errors\n");
    free(s);
    cairn_diags_free(&d);
}
