#include "splice_matrix.h"

#include <stdio.h>
#include <string.h>

#include "actions/action.h"
#include "common/mem.h"
#include "dsl/workflow.h"
#include "test.h"

static const char *const payloads[] = {
    "\"; touch %s; echo \"",
    "'; touch %s; echo '",
    "$(touch %s)",
    "`touch %s`",
    "; touch %s",
    "a\nb\n\ntouch %s",
    "'",
    "\"",
    "\\$HOME and $HOME and ${HOME} and \\",
    "EOF\ntouch %s\nEOF",
    "*",
    "",
};

int sm_payload_count(void) { return (int)(sizeof payloads / sizeof payloads[0]); }

char *sm_payload(int i, const char *pwned) {
    return strstr(payloads[i], "%s") ? cairn_sprintf(payloads[i], pwned)
                                     : cairn_strdup(payloads[i]);
}

/* One context a line; the comment prints nothing; bash adds $'...'. */
#define SCRIPT_SH                                                              \
    "printf '[%s]\\n' ${{ .inputs.x }}\n"                                      \
    "printf '[%s]\\n' \"${{ .inputs.x }}\"\n"                                  \
    "printf '[%s]\\n' 'a${{ .inputs.x }}b'\n"                                  \
    "printf '[%s]\\n' \"<$(printf '%s' ${{ .inputs.x }})>\"\n"                 \
    "printf '[%s]\\n' \"($(printf '%s' \"${{ .inputs.x }}\"))\"\n"              \
    "v=${{ .inputs.x }}; printf '[%s]\\n' \"$v\"\n"                             \
    "cat <<EOF\n"                                                              \
    "[${{ .inputs.x }}]\n"                                                     \
    "EOF\n"                                                                    \
    "cat <<-EOF\n"                                                             \
    "\t[${{ .inputs.x }}]\n"                                                   \
    "\tEOF\n"                                                                  \
    "# ${{ .inputs.x }} ' \" `\n"

static const char script_sh[] = SCRIPT_SH;
static const char script_bash[] = SCRIPT_SH "printf '[%s]\\n' $'\\tq${{ .inputs.x }}q'\n";

const char *sm_script(bool bash) { return bash ? script_bash : script_sh; }

/* $(...) drops the trailing newlines of what it captures. */
static size_t captured_len(const char *v) {
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '\n') n--;
    return n;
}

char *sm_expected(const char *v, bool bash) {
    int c = (int)captured_len(v);
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_printf(&b, "[%s]\n[%s]\n[a%sb]\n[<%.*s>]\n[(%.*s)]\n[%s]\n[%s]\n[%s]\n", v, v, v,
                     c, v, c, v, v, v, v);
    if (bash) cairn_buf_printf(&b, "[\tq%sq]\n", v);
    return cairn_buf_detach(&b);
}

jv sm_render(const char *uses, const char *field, const char *script, const char *extra,
             const char *value) {
    jv quoted = jv_dump_string(jv_string(script), 0);
    char *src = cairn_sprintf("cairn: 1\nname: t\ninputs:\n  x: {type: string}\nsteps:\n"
                              "  - id: a\n    uses: %s\n    with: {%s: %s%s%s}\n",
                              uses, field, jv_string_value(quoted), extra[0] ? ", " : "", extra);
    jv_free(quoted);
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("t.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d) != 0)
        TEST_FAIL("the workflow does not load: %s", d.count ? d.items[0].msg : "?");
    jv doc = jv_object_set(jv_object(), jv_string("inputs"),
                           jv_object_set(jv_object(), jv_string("x"), jv_string(value)));
    jv with = jv_invalid();
    cairn_err err;
    if (cairn_tmpl_render(wf->steps[0].with, wf->exprs, doc, &with, &err) != 0)
        TEST_FAIL("render: %s", err.msg);
    jv_free(doc);
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
    free(src);
    return with;
}
