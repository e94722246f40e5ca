/*
 * test_wfset.c - workflows loaded together (dsl/wfset.h): the files beside
 * the one named, child names, two files of one name, files that do not
 * load; and the names a workflow reads by a constant (wf->secrets,
 * wf->children).  Files are written to the test's own directory.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "common/mem.h"
#include "dsl/wfset.h"
#include "dsl/workflow.h"

static char *put(const char *name, const char *text) {
    char *path = cairn_sprintf("%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

/* A workflow of that name whose one step starts child (NULL: none). */
static char *doc(const char *name, const char *child) {
    if (child == NULL) return cairn_sprintf("cairn: 1\nname: %s\nsteps:\n  - {id: a, uses: set}\n", name);
    return cairn_sprintf("cairn: 1\nname: %s\nsteps:\n  - {id: a, uses: workflow, with: {name: %s}}\n",
                         name, child);
}

static void put_doc(const char *file, const char *name, const char *child) {
    char *text = doc(name, child);
    free(put(file, text));
    free(text);
}

typedef struct checked {
    int rc;
    char *errors, *warnings;            /* printed, paths relative to the tmpdir */
    const cairn_workflow *wf;
    cairn_wfset *set;
} checked;

static char *print(const cairn_diags *d, const char *word, cairn_wfset *set) {
    char *buf = NULL, *dir = cairn_sprintf("%s/", test_tmpdir());
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cairn_diags_print_each(d, f, word, cairn_wfset_source, set);
    fclose(f);
    cairn_buf b = CAIRN_BUF_INIT;         /* drop the directory from paths */
    for (const char *p = buf; *p;) {
        const char *hit = strstr(p, dir);
        size_t len = hit ? (size_t)(hit - p) : strlen(p);
        cairn_buf_append(&b, p, len);
        p += len + (hit ? strlen(dir) : 0);
    }
    free(buf);
    free(dir);
    char *out = cairn_buf_detach(&b);
    return out ? out : cairn_strdup("");
}

static checked check(const char *file) {
    checked c = {0};
    cairn_diags errors = CAIRN_DIAGS_INIT, warnings = CAIRN_DIAGS_INIT;
    char *path = cairn_sprintf("%s/%s", test_tmpdir(), file);
    c.set = cairn_wfset_new(cairn_action_lookup_sig);
    c.wf = cairn_wfset_add(c.set, path, &errors);
    cairn_wfset_add_siblings(c.set, path);
    c.rc = cairn_wfset_check(c.set, &errors, &warnings);
    c.errors = print(&errors, "error", c.set);
    c.warnings = print(&warnings, "warning", c.set);
    cairn_diags_free(&errors);
    cairn_diags_free(&warnings);
    free(path);
    return c;
}

static void checked_free(checked *c) {
    cairn_wfset_free(c->set);
    free(c->errors);
    free(c->warnings);
}

TEST(wfset_loads_the_yaml_and_yml_files_beside_and_finds_children) {
    put_doc("parent.yaml", "parent", "child");
    put_doc("child.yml", "child", "grandchild");
    put_doc("grand.yaml", "grandchild", NULL);
    free(put("notes.txt", "not a workflow"));
    free(put("compose.yml", "services:\n  web: {image: nginx}\n"));   /* other YAML: no word */
    checked c = check("parent.yaml");
    CHECK_STR(c.errors, "");
    CHECK_STR(c.warnings, "");
    CHECK_INT(c.rc, 0);
    CHECK_INT(cairn_wfset_count(c.set), 3);
    /* the named one last, so it is the newest definition in the journal */
    CHECK_STR(cairn_wfset_get(c.set, 2)->name, "parent");
    CHECK(cairn_wfset_get(c.set, 2) == c.wf);
    cairn_workflow *taken = cairn_wfset_take(c.set, 2);
    CHECK(taken == c.wf);
    CHECK(cairn_wfset_get(c.set, 2) == NULL);
    cairn_workflow_free(taken);
    checked_free(&c);
}

TEST(wfset_a_child_name_that_names_no_workflow) {
    put_doc("parent.yaml", "parent", "chlid");
    put_doc("child.yaml", "child", NULL);
    checked c = check("parent.yaml");
    CHECK_STR(c.errors, "parent.yaml:4:42: error: with.name: no workflow named 'chlid' is loaded "
                        "(the files named and the .yaml/.yml files beside them) (did you mean "
                        "'child'?)\n"
                        "    - {id: a, uses: workflow, with: {name: chlid}}\n"
                        "                                           ^\n");
    CHECK_INT(c.rc, CAIRN_ESYNTAX);
    checked_free(&c);
    /* a name given by an expression is looked up when the step runs */
    free(put("parent.yaml", "cairn: 1\nname: parent\nsteps:\n  - {id: a, uses: workflow, "
                            "with: {name: '${{ \"ch\" + \"ild\" }}'}}\n"));
    c = check("parent.yaml");
    CHECK_STR(c.errors, "");
    CHECK_INT(c.rc, 0);
    checked_free(&c);
}

TEST(wfset_two_workflows_of_one_name) {
    put_doc("parent.yaml", "parent", "child");
    put_doc("child.yaml", "child", NULL);
    put_doc("child-copy.yaml", "child", NULL);
    checked c = check("parent.yaml");
    CHECK_STR(c.errors, "child.yaml:2:7: error: name: 'child' is also the name of child-copy.yaml: "
                        "a child run of that name could start either\n"
                        "  name: child\n"
                        "        ^\n");
    CHECK_INT(c.rc, CAIRN_ESYNTAX);
    checked_free(&c);
    /* the file run shares its name with a copy beside it that nothing
     * starts: a warning, the run is of the file named */
    put_doc("parent.yaml", "child", NULL);
    char *copy = cairn_sprintf("%s/child-copy.yaml", test_tmpdir());
    CHECK_INT(remove(copy), 0);                      /* no longer a second 'child' */
    free(copy);
    c = check("parent.yaml");
    CHECK_STR(c.errors, "");
    CHECK_INT(c.rc, 0);
    CHECK_STR(c.warnings, "parent.yaml:2:7: warning: name: 'child' is also the name of child.yaml: "
                          "a child run of that name could start either\n"
                          "  name: child\n"
                          "        ^\n");
    checked_free(&c);
}

TEST(wfset_two_files_named_together_of_one_name) {
    put_doc("a.yaml", "same", NULL);
    put_doc("b.yaml", "same", NULL);
    char *a = cairn_sprintf("%s/a.yaml", test_tmpdir()), *b = cairn_sprintf("%s/b.yaml", test_tmpdir());
    cairn_diags errors = CAIRN_DIAGS_INIT, warnings = CAIRN_DIAGS_INIT;
    cairn_wfset *set = cairn_wfset_new(cairn_action_lookup_sig);
    CHECK(cairn_wfset_add(set, a, &errors) != NULL);
    CHECK(cairn_wfset_add(set, b, &errors) != NULL);
    cairn_wfset_add_siblings(set, a);
    CHECK_INT(cairn_wfset_check(set, &errors, &warnings), CAIRN_ESYNTAX);
    CHECK_INT(errors.count, 1);
    CHECK_INT(warnings.count, 0);
    CHECK_STR(errors.items[0].file, b);
    CHECK_CONTAINS(errors.items[0].msg, "name: 'same' is also the name of ");
    CHECK_CONTAINS(errors.items[0].msg, a);
    cairn_diags_free(&errors);
    cairn_diags_free(&warnings);
    cairn_wfset_free(set);
    free(a);
    free(b);
}

TEST(wfset_a_duplicate_nobody_needs_is_a_warning) {
    put_doc("parent.yaml", "parent", NULL);
    put_doc("x1.yaml", "other", NULL);
    put_doc("x2.yaml", "other", NULL);
    checked c = check("parent.yaml");
    CHECK_STR(c.errors, "");
    CHECK_INT(c.rc, 0);
    CHECK_STR(c.warnings, "x1.yaml:2:7: warning: name: 'other' is also the name of x2.yaml: a "
                          "child run of that name could start either\n"
                          "  name: other\n"
                          "        ^\n");
    checked_free(&c);
}

TEST(wfset_a_file_beside_that_does_not_load) {
    put_doc("parent.yaml", "parent", NULL);
    free(put("broken.yaml", "cairn: 1\nname: broken\nsteps: 3\n"));
    checked c = check("parent.yaml");                /* not needed: a warning */
    CHECK_STR(c.errors, "");
    CHECK_INT(c.rc, 0);
    CHECK_STR(c.warnings, "broken.yaml:3:8: warning: not loaded, so no child run can start it: "
                          "steps: expected a list, got '3'\n"
                          "  steps: 3\n"
                          "         ^\n");
    checked_free(&c);
    put_doc("parent.yaml", "parent", "broken");     /* needed: its errors fail the check */
    c = check("parent.yaml");
    CHECK_STR(c.errors, "parent.yaml:4:42: error: with.name: workflow 'broken' is in broken.yaml, "
                        "which does not load (its errors follow)\n"
                        "    - {id: a, uses: workflow, with: {name: broken}}\n"
                        "                                           ^\n"
                        "broken.yaml:3:8: error: steps: expected a list, got '3'\n"
                        "  steps: 3\n"
                        "         ^\n");
    CHECK_STR(c.warnings, "");
    CHECK_INT(c.rc, CAIRN_ESYNTAX);
    checked_free(&c);
}

TEST(workflow_keeps_the_secrets_and_children_it_names) {
    const char *src =
        "cairn: 1\nname: t\nenv:\n  TOKEN: \"${{ .secrets.API_TOKEN }}\"\nsteps:\n"
        "  - id: a\n    uses: set\n    with:\n      x: \"${{ .secrets[\\\"DB_PASS\\\"] }}\"\n"
        "      y: \"${{ .secrets.API_TOKEN + (.secrets | keys | join(\\\",\\\")) }}\"\n"
        "  - {id: b, uses: workflow, needs: a, with: {name: child}}\n"
        "  - {id: c, uses: workflow, needs: b, with: {name: '${{ .run.id }}'}}\n";
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d), 0);
    CHECK_INT(wf->n_secrets, 2);                     /* each name once; .secrets | keys: no name */
    CHECK_STR(wf->secrets[0].name, "DB_PASS");       /* steps are walked before env */
    CHECK_INT(wf->secrets[0].line, 9);
    CHECK_STR(wf->secrets[1].name, "API_TOKEN");
    CHECK_INT(wf->n_children, 1);                    /* a constant name only */
    CHECK_STR(wf->children[0].name, "child");
    CHECK_INT(wf->children[0].line, 11);
    CHECK_INT(wf->children[0].col, 52);
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
}
