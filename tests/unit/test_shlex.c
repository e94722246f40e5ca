/*
 * dsl/shlex.c: where a splice stands in a script's quoting, and what is
 * refused.  Scripts are written with '@' where a value is spliced.
 */
#include "test.h"
#include "dsl/shlex.h"

#define MARKS_MAX 16

/* The contexts of the '@'s in script as letters (P plain, D double, S
 * single, A $'', H here-document, C comment), or "error: WHY@OFFSET". */
static char *contexts(const char *script) {
    static char out[512];
    char text[1024];
    size_t marks[MARKS_MAX] = {0}, len = 0;
    int n = 0;
    for (const char *p = script; *p; p++)
        if (*p == '@') marks[n++] = len;
        else text[len++] = *p;
    text[len] = '\0';
    cairn_shctx ctx[MARKS_MAX];
    cairn_shlex_err err;
    if (cairn_shlex_place(text, len, marks, n, ctx, &err) != 0) {
        snprintf(out, sizeof out, "error: %s@%zu", err.why, err.offset);
        return out;
    }
    for (int i = 0; i < n; i++) out[i] = "PDSAHC"[ctx[i]];
    out[n] = '\0';
    return out;
}

#define CHECK_CTX(script, want) CHECK_STR(contexts(script), want)
#define CHECK_REFUSED(script, why) CHECK_CONTAINS(contexts(script), why)

TEST(shlex_quotes_and_substitutions) {
    CHECK_CTX("echo @ x@y", "PP");
    CHECK_CTX("echo \"a @ b\" 'c @ d' $'e @ f' $\"g @\"", "DSAD");
    CHECK_CTX("echo \"it's @\" 'say \"@\"'", "DS");
    CHECK_CTX("echo \\\" @ \\' @", "PP");               /* escaped quotes open nothing */
    CHECK_CTX("echo \"\\\" @\"", "D");
    CHECK_CTX("echo $'it\\'s @'", "A");
    CHECK_CTX("echo \"$(printf %s @ \"@\" '@')\" @", "PDSP");
    CHECK_CTX("echo $(echo $(echo @) \")\" @) @", "PPP");
    CHECK_CTX("(cd /; echo @) && { echo @; }", "PP");
    CHECK_CTX("case @ in a) echo @;; esac", "PP");
    CHECK_CTX("echo <<<@ @", "PP");                     /* a here-string is a word */
    CHECK_CTX("x=@; echo \"${x}\" @", "PP");
}

TEST(shlex_comments) {
    CHECK_CTX("echo a # it's @ \"\n echo @", "CP");
    CHECK_CTX("echo a#b @", "P");                       /* # inside a word */
    CHECK_CTX("echo @#b '@'", "PS");                    /* nor after a splice */
    CHECK_CTX("echo $(true # ) @\n) @", "CP");
}

TEST(shlex_here_documents) {
    CHECK_CTX("cat <<EOF\na @ 'b' \"\nEOF\necho '@'", "HS");
    CHECK_CTX("cat <<EOF; echo @\n@\nEOF", "PH");
    CHECK_CTX("cat <<-END\n\t@\n\tEND\necho \"@\"", "HD");
    CHECK_CTX("cat <<A <<B\n@\nA\n'@\nB\necho @", "HHP");
    CHECK_CTX("cat <<EOF\n$(echo @)\n@\nEOF", "PH");
    CHECK_CTX("cat <<EOF\nEOF @\n EOF\n@\nEOF\n", "HH");   /* only the exact line ends it */
    CHECK_CTX("cat <<EOF\n@\nEOF", "H");
    CHECK_REFUSED("cat <<'EOF'\n@\nEOF", "quoted here-document");
    CHECK_REFUSED("cat <<\"EOF\"\nx @\nEOF", "quoted here-document");
    CHECK_REFUSED("cat <<\\EOF\n@\nEOF", "quoted here-document");
    CHECK_REFUSED("cat <<@\nx\n", "delimiter must be literal");
    CHECK_REFUSED("cat <<E@\nx\n", "delimiter must be literal");
}

TEST(shlex_refuses_what_the_shell_reads_again) {
    CHECK_REFUSED("echo `@`", "backquotes");
    CHECK_REFUSED("echo \"`echo @`\"", "backquotes");
    CHECK_REFUSED("echo ${x:-@}", "inside ${ }");
    CHECK_REFUSED("echo \"${x:-$(echo @)}\"", "inside ${ }");
    CHECK_REFUSED("echo $((@ + 1))", "arithmetic");
    CHECK_REFUSED("(( n = @ ))", "arithmetic");
    CHECK_REFUSED("echo $[@]", "arithmetic");
    CHECK_REFUSED("echo \\@", "backslash");
    CHECK_REFUSED("echo \"\\@\"", "backslash");
    CHECK_REFUSED("echo $@", "`$` right before");
    CHECK_REFUSED("echo \"$@\"", "`$` right before");
    CHECK_REFUSED("echo $(@(", "split a shell token");
    CHECK_STR(contexts("echo `date` @ $((1 + 2)) ${x} \"$(( 3 )) @\""), "PD");
}

TEST(shlex_reports_the_offset) {
    CHECK_STR(contexts("echo ok; echo `x@`"), "error: a value cannot be spliced inside "
              "backquotes, whose text the shell reads again: use $( ) instead@16");
    CHECK_STR(contexts("a\nb \\@"), "error: a backslash right before a spliced value would "
              "escape it: remove it@4");
}

TEST(shlex_nesting_is_bounded) {
    char deep[400] = "echo ";
    for (int i = 0; i < CAIRN_SHLEX_DEPTH_MAX + 2; i++) strcat(deep, "$(");
    strcat(deep, "@");
    CHECK_REFUSED(deep, "nest too deeply");
    char docs[400] = "cat";
    for (int i = 0; i < CAIRN_SHLEX_HEREDOCS_MAX + 1; i++) strcat(docs, " <<E");
    CHECK_REFUSED(docs, "too many here-documents");
}

TEST(shlex_references_fit_their_context) {
    cairn_buf b = CAIRN_BUF_INIT;
    const char *want[] = {"\"${V}\"", "${V}", "'\"${V}\"'", "'\"${V}\"$'", "${V}", "${V}"};
    for (int c = CAIRN_SHCTX_PLAIN; c <= CAIRN_SHCTX_COMMENT; c++) {
        cairn_buf_reset(&b);
        cairn_shlex_reference(&b, (cairn_shctx)c, "V");
        CHECK_STR(b.data, want[c]);
    }
    cairn_buf_free(&b);
}
