/*
 * test_workflow.c - the workflow checker: each rule of DSL.md, good and bad,
 * and the limits.  (Files, golden errors, graphs, durations: test_dsl_files.c.)
 *
 * Actions come from a catalogue given here (the loader takes one by design):
 * set, fail and shell as DSL.md describes them, and `probe`, whose fields
 * cover every field type.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow.h"

static const cairn_field_sig set_f[] = {{NULL, 0, 0}};
static const cairn_field_sig fail_f[] = {
    {"message", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED}, {"kind", CAIRN_FIELD_STRING, 0},
    {NULL, 0, 0}};
static const cairn_field_sig shell_f[] = {
    {"run", CAIRN_FIELD_STRING, CAIRN_FIELD_SHELL}, {"argv", CAIRN_FIELD_ARRAY, 0},
    {"env", CAIRN_FIELD_OBJECT, 0}, {"cwd", CAIRN_FIELD_STRING, 0},
    {"stdin", CAIRN_FIELD_STRING, 0}, {"ok_codes", CAIRN_FIELD_ARRAY, 0},
    {"shell", CAIRN_FIELD_STRING, 0}, {NULL, 0, 0}};
static const cairn_field_sig probe_f[] = {
    {"count", CAIRN_FIELD_INTEGER, 0}, {"ratio", CAIRN_FIELD_NUMBER, 0},
    {"verbose", CAIRN_FIELD_BOOL, 0}, {"wait", CAIRN_FIELD_DURATION, 0},
    {"to", CAIRN_FIELD_STRING_OR_ARRAY, 0}, {"extra", CAIRN_FIELD_ANY, 0},
    {"opts", CAIRN_FIELD_OBJECT, 0}, {NULL, 0, 0}};
static const cairn_action_sig sigs[] = {
    {.name = "set", .fields = set_f, .open = true}, {.name = "fail", .fields = fail_f},
    {.name = "shell", .fields = shell_f, .one_of = "run|argv"}, {.name = "probe", .fields = probe_f}};

static const cairn_action_sig *lookup(const char *name) {
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (strcmp(sigs[i].name, name) == 0) return &sigs[i];
    return NULL;
}

typedef struct loaded {
    int rc;
    cairn_workflow *wf;
    cairn_diags d;
    char *text;            /* diagnostics as printed, without source lines */
} loaded;

static char *render(const cairn_diags *d, const char *src, size_t len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cairn_diags_print(d, f, src, len);
    fclose(f);
    return buf;
}

static loaded load(const char *src) {
    loaded l = {0, NULL, CAIRN_DIAGS_INIT, NULL};
    l.rc = cairn_workflow_load("w.yaml", src, strlen(src), lookup, &l.wf, &l.d);
    l.text = render(&l.d, NULL, 0);
    if (l.rc == 0) CHECK(l.wf != NULL);
    else CHECK(l.wf == NULL);
    return l;
}

static void done(loaded *l) {
    cairn_workflow_free(l->wf);
    cairn_diags_free(&l->d);
    free(l->text);
}

/* Load src, expect failure with exactly one diagnostic equal to want. */
static void expect_one(const char *src, const char *want) {
    loaded l = load(src);
    if (l.rc == 0) TEST_FAIL("loaded, but expected: %s", want);
    char *w = cairn_sprintf("%s\n", want);
    CHECK_STR(l.text, w);
    free(w);
    done(&l);
}

static void expect_ok(const char *src) {
    loaded l = load(src);
    CHECK_STR(l.text, "");
    CHECK_INT(l.rc, 0);
    done(&l);
}

#define HEAD "cairn: 1\nname: t\n"
#define ONE_STEP "steps:\n  - id: a\n    uses: set\n"

/* ---- a whole workflow ----------------------------------------------------- */

TEST(workflow_minimal_loads_and_is_pinned_by_sha256) {
    loaded l = load(HEAD ONE_STEP);
    CHECK_INT(l.rc, 0);
    CHECK_STR(l.wf->sha256, "db766c61698debd192ae9c4d5d044ada306e22c46102568d37790c39d68a0d0c");
    CHECK_STR(l.wf->name, "t");
    CHECK_STR(l.wf->file, "w.yaml");
    CHECK_STR(l.wf->source, HEAD ONE_STEP);
    CHECK_INT(l.wf->source_len, strlen(HEAD ONE_STEP));
    CHECK_INT(l.wf->n_steps, 1);
    CHECK_STR(l.wf->steps[0].id, "a");
    CHECK_STR(l.wf->steps[0].uses, "set");
    CHECK(l.wf->steps[0].with != NULL);
    CHECK(cairn_tmpl_is_const(l.wf->steps[0].with));
    CHECK_INT(l.wf->steps[0].n_needs, 0);
    CHECK_INT(l.wf->steps[0].retry.max_attempts, 1);
    CHECK_INT(l.wf->steps[0].line, 4);
    CHECK_INT(l.wf->steps[0].col, 5);
    CHECK(!jv_is_valid(l.wf->triggers));
    jv_free(l.wf->triggers);
    l.wf->triggers = jv_invalid();
    done(&l);
}

TEST(workflow_the_dsl_example_loads) {
    const char *src =
        "cairn: 1\n"
        "name: restart-on-5xx\n"
        "version: \"1.2\"\n"
        "description: Diagnose a web host.\n"
        "inputs:\n"
        "  host:  { type: string, required: true, pattern: \"^[a-z0-9.-]+$\" }\n"
        "  alert: { type: object, default: {} }\n"
        "outputs:\n"
        "  resolved: ${{ .steps.verify.output.exit_code == 0 }}\n"
        "env: { REGION: eu, PORT: 8080 }\n"
        "defaults:\n"
        "  timeout: 2m\n"
        "  retry: { max_attempts: 2, backoff: exponential, delay: 1s }\n"
        "triggers:\n"
        "  - webhook: alertmanager\n"
        "    match: { alertname: \"^(HighErrorRate|DBPoolExhausted)$\", severity: critical }\n"
        "    dedupe: ${{ .fingerprint }}\n"
        "    inputs: { alert: \"${{ . }}\" }\n"
        "  - schedule: \"*/5 * * * *\"\n"
        "steps:\n"
        "  - id: diagnose\n"
        "    run: systemctl is-active nginx\n"
        "    continue_on_error: true\n"
        "  - id: restart\n"
        "    needs: [diagnose]\n"
        "    if: ${{ .steps.diagnose.status == \"failed\" }}\n"
        "    uses: shell\n"
        "    with: { run: \"sudo systemctl restart nginx on ${{ .inputs.host }}\" }\n"
        "    on_crash: ask\n"
        "    compensate:\n"
        "      uses: fail\n"
        "      with: { message: \"restart undone?\" }\n"
        "  - id: verify\n"
        "    uses: shell\n"
        "    with: { argv: [curl, \"https://${{ .inputs.host }}/healthz\"] }\n"
        "    retry: { max_attempts: 10, delay: 3s, until: \"${{ .output.exit_code == 0 }}\" }\n"
        "on_failure:\n"
        "  - id: page\n"
        "    uses: set\n"
        "    with: { summary: \"${{ .error.message }}\" }\n";
    loaded l = load(src);
    CHECK_STR(l.text, "");
    cairn_workflow *wf = l.wf;
    CHECK_STR(wf->version, "1.2");
    CHECK_STR(wf->description, "Diagnose a web host.");
    CHECK_INT(wf->n_inputs, 2);
    CHECK_INT(wf->n_outputs, 1);
    CHECK_INT(wf->n_env, 2);
    CHECK_STR(wf->env[1].name, "PORT");
    CHECK(cairn_tmpl_is_const(wf->env[1].value));
    jv port = cairn_tmpl_const_value(wf->env[1].value);
    CHECK_STR(jv_string_value(port), "8080");
    jv_free(port);
    CHECK_INT(jv_array_length(jv_copy(wf->triggers)), 2);
    CHECK_INT(wf->n_steps, 3);
    CHECK_STR(wf->steps[0].uses, "shell");
    CHECK(wf->steps[0].continue_on_error);
    CHECK_INT(wf->steps[0].timeout_ms, 120000);
    CHECK_INT(wf->steps[0].retry.max_attempts, 2);
    CHECK_INT(wf->steps[0].retry.backoff, CAIRN_BACKOFF_EXPONENTIAL);
    CHECK_INT(wf->steps[0].retry.delay_ms, 1000);
    CHECK_INT(wf->steps[1].n_needs, 1);
    CHECK_INT(wf->steps[1].needs[0], 0);
    CHECK(wf->steps[1].if_ && !cairn_tmpl_is_const(wf->steps[1].if_));
    CHECK(!cairn_tmpl_is_const(wf->steps[1].with));
    CHECK_INT(wf->steps[1].on_crash, CAIRN_ON_CRASH_ASK);
    CHECK(wf->steps[1].compensate != NULL);
    CHECK_STR(wf->steps[1].compensate->id, "");
    CHECK_STR(wf->steps[1].compensate->uses, "fail");
    CHECK_INT(wf->steps[1].compensate->timeout_ms, 120000);
    CHECK_INT(wf->steps[1].compensate->retry.max_attempts, 2);
    CHECK_INT(wf->steps[2].n_needs, 1);
    CHECK_INT(wf->steps[2].needs[0], 1);
    CHECK_INT(wf->steps[2].retry.max_attempts, 10);
    CHECK_INT(wf->steps[2].retry.backoff, CAIRN_BACKOFF_CONSTANT);
    CHECK(wf->steps[2].retry.until != NULL);
    CHECK_INT(wf->n_on_failure, 1);
    CHECK_INT(wf->on_failure[0].n_needs, 0);
    CHECK(cairn_exprset_count(wf->exprs) >= 8);
    done(&l);
}

TEST(workflow_collects_every_error_not_only_the_first) {
    loaded l = load("cairn: 2\nname: Bad Name\nsteps:\n  - id: A\n    uses: nope\n"
                    "  - id: b\n    uses: set\n    timeout: soon\n");
    CHECK_INT(l.rc, CAIRN_ESYNTAX);
    CHECK_STR(l.text,
              "w.yaml:1:8: error: cairn: unsupported language version 2; this engine reads version 1\n"
              "w.yaml:2:7: error: name: 'Bad Name' is not a valid workflow name: use a-z, 0-9, '_' "
              "and '-', starting with a letter or digit\n"
              "w.yaml:4:9: error: id: 'A' is not a valid step id: use a-z, 0-9 and '_', starting "
              "with a letter\n"
              "w.yaml:5:11: error: uses: unknown action 'nope'\n"
              "w.yaml:8:14: error: timeout: expected a positive duration such as 30s, 5m or 1h30m, "
              "got 'soon'\n");
    done(&l);
}

/* ---- document keys -------------------------------------------------------- */

TEST(workflow_document_keys) {
    expect_one("name: t\n" ONE_STEP,
               "w.yaml:1:1: error: missing required key 'cairn' (the language version: cairn: 1)");
    expect_one("cairn: \"1\"\nname: t\n" ONE_STEP,
               "w.yaml:1:8: error: cairn: expected the language version 1, got '1'");
    expect_one("cairn: 1\n" ONE_STEP,
               "w.yaml:1:1: error: missing required key 'name' (the workflow's name)");
    expect_one("cairn: 1\nname: -x\n" ONE_STEP,
               "w.yaml:2:7: error: name: '-x' is not a valid workflow name: use a-z, 0-9, '_' and "
               "'-', starting with a letter or digit");
    expect_one("cairn: 1\nname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" ONE_STEP,
               "w.yaml:2:7: error: name: longer than 64 characters");
    expect_ok("cairn: 1\nname: 0-ok_name\n" ONE_STEP);
    expect_one(HEAD, "w.yaml:1:1: error: missing required key 'steps' (a list of steps)");
    expect_one(HEAD "steps: []\n", "w.yaml:3:8: error: steps: expected at least one step");
    expect_one(HEAD "steps: {a: 1}\n", "w.yaml:3:8: error: steps: expected a list, got a map");
    expect_one("- a\n", "w.yaml:1:1: error: workflow: expected a map of keys (cairn, name, "
               "steps...), got a list");
    expect_one("", "w.yaml:1:1: error: workflow: expected a map of keys (cairn, name, "
               "steps...), got null");
    expect_one(HEAD "description: [x]\n" ONE_STEP,
               "w.yaml:3:14: error: description: expected a string, got a list");
}

TEST(workflow_unknown_keys_suggest_the_closest) {
    expect_one(HEAD ONE_STEP "on_failur: []\n",
               "w.yaml:6:1: error: unknown key 'on_failur' in the workflow (did you mean "
               "'on_failure'?)");
    expect_one(HEAD ONE_STEP "zzz: 1\n",
               "w.yaml:6:1: error: unknown key 'zzz' in the workflow; expected one of: cairn, name, "
               "version, description, inputs, outputs, env, defaults, triggers, steps, on_failure, limits");
    expect_one(HEAD "steps:\n  - id: a\n    uses: set\n    neds: []\n",
               "w.yaml:6:5: error: unknown key 'neds' in a step (did you mean 'needs'?)");
    expect_one(HEAD "steps:\n  - id: a\n    uses: set\n    retry: {max_attemps: 2}\n",
               "w.yaml:6:13: error: unknown key 'max_attemps' in retry (did you mean "
               "'max_attempts'?)");
    expect_one(HEAD "defaults: {timout: 1s}\n" ONE_STEP,
               "w.yaml:3:12: error: unknown key 'timout' in defaults (did you mean 'timeout'?)");
    expect_one(HEAD "inputs: {x: {type: string, requird: true}}\n" ONE_STEP,
               "w.yaml:3:28: error: unknown key 'requird' in an input spec (did you mean "
               "'required'?)");
}

TEST(workflow_outputs_and_env) {
    loaded l = load(HEAD "outputs: {n: 3, msg: \"got ${{ .steps.a.output.x }}\", obj: {k: [1]}}\n"
                    ONE_STEP);
    CHECK_STR(l.text, "");
    CHECK_INT(l.wf->n_outputs, 3);
    CHECK_STR(l.wf->outputs[1].name, "msg");
    CHECK(!cairn_tmpl_is_const(l.wf->outputs[1].value));
    CHECK(cairn_tmpl_is_const(l.wf->outputs[2].value));
    done(&l);
    expect_one(HEAD "outputs: [a]\n" ONE_STEP, "w.yaml:3:10: error: outputs: expected a map, got a list");
    expect_one(HEAD "outputs: {\"a b\": 1}\n" ONE_STEP,
               "w.yaml:3:11: error: outputs: 'a b' is not a valid output name: use letters, "
               "digits, '_' and '-', starting with a letter or '_'");
    expect_one(HEAD "env: {A: {x: 1}}\n" ONE_STEP,
               "w.yaml:3:10: error: env.A: expected a string, got a map");
    expect_one(HEAD "env: {1X: a}\n" ONE_STEP,
               "w.yaml:3:7: error: env: '1X' is not a valid variable name: use letters, digits "
               "and '_', not starting with a digit");
    expect_one(HEAD "env: {A: }\n" ONE_STEP, "w.yaml:3:10: error: env.A: expected a string, got null");
}

/* ---- steps ---------------------------------------------------------------- */

TEST(workflow_step_ids) {
    expect_one(HEAD "steps:\n  - uses: set\n", "w.yaml:4:5: error: a step needs an 'id'");
    expect_one(HEAD "steps:\n  - id: 1a\n    uses: set\n",
               "w.yaml:4:9: error: id: '1a' is not a valid step id: use a-z, 0-9 and '_', "
               "starting with a letter");
    expect_one(HEAD "steps:\n  - id: a-b\n    uses: set\n",
               "w.yaml:4:9: error: id: 'a-b' is not a valid step id: use a-z, 0-9 and '_', "
               "starting with a letter");
    expect_one(HEAD "steps:\n  - id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
               "    uses: set\n", "w.yaml:4:9: error: id: longer than 64 characters");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: a, uses: set}\n",
               "w.yaml:5:10: error: duplicate step id 'a' (first at 4:10)");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\non_failure:\n  - {id: a, uses: set}\n",
               "w.yaml:6:10: error: duplicate step id 'a' (first at 4:10)");
    expect_one(HEAD "steps:\n  - a\n", "w.yaml:4:5: error: a step: expected a map, got 'a'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, name: [x]}\n",
               "w.yaml:4:30: error: name: expected a string, got a list");
}

TEST(workflow_uses_and_run) {
    expect_one(HEAD "steps:\n  - {id: a, uses: shel, with: {run: x}}\n",
               "w.yaml:4:19: error: uses: unknown action 'shel' (did you mean 'shell'?)");
    expect_one(HEAD "steps:\n  - {id: a, uses: http}\n",
               "w.yaml:4:19: error: uses: action 'http' is not available in this build");
    expect_one(HEAD "steps:\n  - {id: a, uses: shell, run: x}\n",
               "w.yaml:4:26: error: give either 'uses' or 'run' (shorthand for uses: shell), not both");
    expect_one(HEAD "steps:\n  - {id: a}\n",
               "w.yaml:4:5: error: a step needs 'uses' (an action) or 'run' (a shell script)");
    expect_one(HEAD "steps:\n  - {id: a, run: [x]}\n", "w.yaml:4:18: error: run: expected a string, got a list");
    expect_one(HEAD "steps:\n  - {id: a, run: x, with: {run: y}}\n",
               "w.yaml:4:28: error: with: 'run' is given twice (the step's run: is with.run)");
    loaded l = load(HEAD "steps:\n  - id: a\n    run: echo hi\n    with: {cwd: /tmp}\n");
    CHECK_STR(l.text, "");
    CHECK_STR(l.wf->steps[0].uses, "shell");
    jv w = cairn_tmpl_const_value(l.wf->steps[0].with);
    jv s = jv_dump_string(w, JV_PRINT_SORTED);
    CHECK_STR(jv_string_value(s), "{\"cwd\":\"/tmp\",\"run\":\"echo hi\"}");
    jv_free(s);
    done(&l);
}

TEST(workflow_with_is_checked_against_the_action) {
    expect_one(HEAD "steps:\n  - {id: a, uses: fail, with: {mesage: x}}\n",
               "w.yaml:4:31: error: with: action 'fail' needs the field 'message'\n"
               "w.yaml:4:32: error: with: unknown field 'mesage' for action 'fail' (did you mean "
               "'message'?)");
    expect_one(HEAD "steps:\n  - {id: a, uses: fail, with: {message: x, zzz: 1}}\n",
               "w.yaml:4:44: error: with: unknown field 'zzz' for action 'fail'; it takes: "
               "message, kind");
    expect_one(HEAD "steps:\n  - {id: a, uses: fail}\n",
               "w.yaml:4:5: error: with: action 'fail' needs the field 'message'");
    expect_one(HEAD "steps:\n  - {id: a, uses: fail, with: [x]}\n",
               "w.yaml:4:31: error: with: expected a map, got a list");
    expect_one(HEAD "steps:\n  - {id: a, uses: fail, with: {message: [x]}}\n",
               "w.yaml:4:41: error: with.message (action 'fail'): expected a string, got a list");
    expect_one(HEAD "steps:\n  - {id: a, uses: fail, with: {message: 404}}\n",
               "w.yaml:4:41: error: with.message (action 'fail'): expected a string, got '404'");
    expect_ok(HEAD "steps:\n  - {id: a, uses: fail, with: {message: \"404\"}}\n");
    expect_ok(HEAD "steps:\n  - {id: a, uses: set, with: {anything: [1], at: {all: true}}}\n");
}

TEST(workflow_with_static_types) {
    expect_ok(HEAD "steps:\n  - id: a\n    uses: probe\n    with: {count: 3, ratio: 0.5, "
              "verbose: false, wait: 1m30s, to: x, extra: {a: 1}, opts: {}}\n"
              "  - {id: b, uses: probe, with: {to: [x, y], extra: null}}\n");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {count: 1.5}}\n",
               "w.yaml:4:40: error: with.count (action 'probe'): expected an integer, got '1.5'");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {ratio: \"x\"}}\n",
               "w.yaml:4:40: error: with.ratio (action 'probe'): expected a number, got 'x'");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {verbose: yes}}\n",
               "w.yaml:4:42: error: with.verbose (action 'probe'): expected true or false, got 'yes'");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {wait: 5 min}}\n",
               "w.yaml:4:39: error: with.wait (action 'probe'): expected a duration such as 30s, "
               "5m or 1h30m, got '5 min'");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {to: {a: 1}}}\n",
               "w.yaml:4:37: error: with.to (action 'probe'): expected a string or a list, got a map");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {opts: x}}\n",
               "w.yaml:4:39: error: with.opts (action 'probe'): expected a map, got 'x'");
    expect_one(HEAD "steps:\n  - {id: a, uses: probe, with: {count: }}\n",
               "w.yaml:4:40: error: with.count (action 'probe'): expected an integer, got null");
    /* a value that holds an expression is typed when it is rendered */
    expect_ok(HEAD "steps:\n  - {id: a, uses: probe, with: {count: \"${{ .inputs.n }}\", "
              "verbose: \"${{ true }}\", opts: \"${{ {} }}\"}}\n"
              "inputs: {n: {type: integer}}\n");
}

TEST(workflow_with_one_of) {
    expect_one(HEAD "steps:\n  - {id: a, uses: shell, with: {cwd: /}}\n",
               "w.yaml:4:32: error: with: action 'shell' needs one of run/argv");
    expect_one(HEAD "steps:\n  - {id: a, uses: shell, with: {run: x, argv: [x]}}\n",
               "w.yaml:4:41: error: with: give only one of 'run' and 'argv' for action 'shell'");
    expect_one(HEAD "steps:\n  - {id: a, run: x, with: {argv: [x]}}\n",
               "w.yaml:4:28: error: with: give only one of 'run' and 'argv' for action 'shell'");
    expect_one(HEAD "steps:\n  - {id: a, uses: shell, with: {argv: x}}\n",
               "w.yaml:4:39: error: with.argv (action 'shell'): expected a list, got 'x'");
    expect_ok(HEAD "steps:\n  - {id: a, uses: shell, with: {argv: [ls, \"${{ .inputs.d }}\"]}}\n"
              "inputs: {d: {type: string}}\n");
}

/* Render step i's `with` over doc (JSON text); returns it as sorted JSON. */
static char *render_with(const cairn_workflow *wf, int i, const char *doc) {
    jv d = jv_parse(doc), out;
    cairn_err err;
    cairn_err_clear(&err);
    int rc = cairn_tmpl_render(wf->steps[i].with, wf->exprs, d, &out, &err);
    jv_free(d);
    if (rc != 0) return cairn_strdup(err.msg);
    jv s = jv_dump_string(out, JV_PRINT_SORTED);
    char *r = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return r;
}

/* Values spliced into a shell field become variables of `env` that the
 * script refers to; other fields splice raw. */
TEST(workflow_shell_fields_splice_as_variables) {
    loaded l = load(HEAD "steps:\n"
                    "  - {id: a, run: \"echo ${{ .inputs.x }} '${{ .inputs.app }}'\"}\n"
                    "  - {id: b, uses: shell, with: {argv: [echo, \"x=${{ .inputs.x }}\"], "
                    "cwd: \"/srv/${{ .inputs.app }}\"}}\n"
                    "  - {id: c, uses: shell, with: {run: \"${{ .inputs.script }}\", "
                    "env: {APP: \"app-${{ .inputs.app }}\"}}}\n"
                    "  - {id: d, uses: set, with: {msg: \"hi ${{ .inputs.x }}\"}}\n"
                    "  - {id: e, uses: shell, with: {run: \"echo \\\"${{ .inputs.x }}\\\" }}\", "
                    "env: {APP: web, CAIRN_V1: author}}}\n"
                    "inputs: {x: {type: string}, app: {type: string}, script: {type: string}}\n");
    CHECK_STR(l.text, "");
    const char *doc = "{\"inputs\": {\"x\": \"; rm -rf /\", \"app\": \"web\", \"script\": \"ls | wc\"}}";
    char *s = render_with(l.wf, 0, doc);
    CHECK_STR(s, "{\"env\":{\"CAIRN_V1\":\"; rm -rf /\",\"CAIRN_V2\":\"web\"},"
                 "\"run\":\"echo \\\"${CAIRN_V1}\\\" ''\\\"${CAIRN_V2}\\\"''\"}");
    free(s);
    s = render_with(l.wf, 1, doc);
    CHECK_STR(s, "{\"argv\":[\"echo\",\"x=; rm -rf /\"],\"cwd\":\"/srv/web\"}");
    free(s);
    s = render_with(l.wf, 2, doc);   /* the whole script is the author's */
    CHECK_STR(s, "{\"env\":{\"APP\":\"app-web\"},\"run\":\"ls | wc\"}");
    free(s);
    s = render_with(l.wf, 3, doc);
    CHECK_STR(s, "{\"msg\":\"hi ; rm -rf /\"}");
    free(s);
    s = render_with(l.wf, 4, doc);   /* the author's env kept, the value winning */
    CHECK_STR(s, "{\"env\":{\"APP\":\"web\",\"CAIRN_V1\":\"; rm -rf /\"},"
                 "\"run\":\"echo \\\"${CAIRN_V1}\\\" }}\"}");
    free(s);
    done(&l);
}

/* `shell:` beside `run:` is with.shell; alone, or twice, it is an error. */
TEST(workflow_step_shell_goes_with_run) {
    loaded l = load(HEAD "steps:\n  - {id: a, run: \"echo hi\", shell: sh}\n");
    CHECK_STR(l.text, "");
    char *s = render_with(l.wf, 0, "{}");
    CHECK_STR(s, "{\"run\":\"echo hi\",\"shell\":\"sh\"}");
    free(s);
    done(&l);
    l = load(HEAD "steps:\n  - {id: a, uses: set, shell: sh}\n");
    CHECK_CONTAINS(l.text, "w.yaml:4:24: error: shell: goes with run:");
    done(&l);
    l = load(HEAD "steps:\n  - {id: a, run: \"true\", shell: sh, with: {shell: bash}}\n");
    CHECK_CONTAINS(l.text, "with: 'shell' is given twice");
    done(&l);
}

/* A splice the shell would read again is refused at load time, at its place. */
TEST(workflow_shell_splice_in_backquotes_is_a_load_error) {
    loaded l = load(HEAD "steps:\n"
                    "  - {id: a, run: \"echo `ls ${{ .inputs.x }}`\"}\n");
    CHECK_INT(l.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(l.text, "w.yaml:4:28: error: in the script at its line 1, column 10: a value "
                           "cannot be spliced inside backquotes");
    done(&l);
}

/* An expression's syntax error is a load-time error at its place. */
TEST(workflow_expression_errors_are_load_errors) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set, with: {v: \"${{ .a | }}\"}}\n"
                    "  - {id: b, uses: set, if: \"${{ .x\"}\n");
    CHECK_INT(l.rc, CAIRN_ESYNTAX);
    CHECK_CONTAINS(l.text, "w.yaml:4:");
    CHECK_CONTAINS(l.text, "w.yaml:5:");
    done(&l);
}

/* ---- needs ---------------------------------------------------------------- */

TEST(workflow_needs_default_to_the_previous_step) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: b, uses: set}\n"
                    "  - {id: c, uses: set, needs: []}\n  - {id: d, uses: set, needs: [a, c]}\n"
                    "  - {id: e, uses: set, needs: b}\n"
                    "on_failure:\n  - {id: f, uses: set}\n  - {id: g, uses: set}\n");
    CHECK_STR(l.text, "");
    cairn_step *s = l.wf->steps;
    CHECK_INT(s[0].n_needs, 0);
    CHECK_INT(s[1].n_needs, 1);
    CHECK_INT(s[1].needs[0], 0);
    CHECK_INT(s[2].n_needs, 0);
    CHECK_INT(s[3].n_needs, 2);
    CHECK_INT(s[3].needs[0], 0);
    CHECK_INT(s[3].needs[1], 2);
    CHECK_INT(s[4].n_needs, 1);
    CHECK_INT(s[4].needs[0], 1);
    CHECK_INT(l.wf->on_failure[1].n_needs, 0);
    CHECK_INT(l.wf->on_failure[1].index, 1);
    done(&l);
}

TEST(workflow_needs_errors) {
    expect_one(HEAD "steps:\n  - {id: build, uses: set}\n  - {id: b, uses: set, needs: [biuld]}\n",
               "w.yaml:5:32: error: needs: unknown step 'biuld' (did you mean 'build'?)");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: b, uses: set, needs: [zzz]}\n",
               "w.yaml:5:32: error: needs: unknown step 'zzz'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: b, uses: set, needs: [b]}\n",
               "w.yaml:5:32: error: needs: step 'b' cannot need itself");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\n  - {id: b, uses: set, needs: [a, a]}\n",
               "w.yaml:5:35: error: needs: 'a' is listed twice");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, needs: [p]}\non_failure:\n  - {id: p, uses: set}\n",
               "w.yaml:4:32: error: needs: 'p' is not in steps; needs refers to steps of the same list");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, needs: {x: 1}}\n",
               "w.yaml:4:31: error: needs: expected a string, got a map");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\non_failure:\n  - {id: p, uses: set, needs: [x]}\n",
               "w.yaml:6:24: error: 'needs' is not allowed in an on_failure step: on_failure steps "
               "run in order, after rollback");
}

TEST(workflow_needs_cycles_name_their_path) {
    expect_one(HEAD "steps:\n  - {id: a, uses: set, needs: [c]}\n  - {id: b, uses: set}\n"
               "  - {id: c, uses: set}\n",
               "w.yaml:5:5: error: needs: dependency cycle a -> c -> b -> a (each step needs the next; "
               "a step without 'needs' needs the step listed before it)");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, needs: [b]}\n  - {id: b, uses: set, needs: [a]}\n",
               "w.yaml:5:32: error: needs: dependency cycle a -> b -> a (each step needs the next)");
    /* a long cycle is shortened in the message */
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, HEAD "steps:\n  - {id: s0, uses: set, needs: [s29]}\n");
    for (int i = 1; i < 30; i++) cairn_buf_printf(&b, "  - {id: s%d, uses: set}\n", i);
    loaded l = load(b.data);
    CHECK_STR(l.text, "w.yaml:5:5: error: needs: dependency cycle s0 -> s29 -> s28 -> s27 -> s26 "
                      "-> s25 -> s24 -> s23 -> s22 -> s21 -> s20 -> s19 -> ... -> s1 -> s0 (each "
                      "step needs the next; a step without 'needs' needs the step listed before "
                      "it)\n");
    done(&l);
    cairn_buf_free(&b);
}

/* ---- if, timeout, retry, and the rest ------------------------------------- */

TEST(workflow_if_is_an_expression_or_a_boolean) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set, if: false}\n"
                    "  - {id: b, uses: set, if: \"${{ .steps.a.status == \\\"skipped\\\" }}\"}\n");
    CHECK_STR(l.text, "");
    CHECK(cairn_tmpl_is_const(l.wf->steps[0].if_));
    CHECK(!cairn_tmpl_is_const(l.wf->steps[1].if_));
    done(&l);
    expect_one(HEAD "steps:\n  - {id: a, uses: set, if: .x == 1}\n",
               "w.yaml:4:28: error: if: expected an expression ${{ ... }} or true/false, got '.x == 1'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, if: [x]}\n",
               "w.yaml:4:28: error: if: expected an expression ${{ ... }} or true/false, got a list");
}

TEST(workflow_timeout) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set, timeout: 1h30m}\n");
    CHECK_STR(l.text, "");
    CHECK_INT(l.wf->steps[0].timeout_ms, 5400000);
    done(&l);
    expect_one(HEAD "steps:\n  - {id: a, uses: set, timeout: 0s}\n",
               "w.yaml:4:33: error: timeout: expected a positive duration such as 30s, 5m or "
               "1h30m, got '0s'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, timeout: 30}\n",
               "w.yaml:4:33: error: timeout: expected a positive duration such as 30s, 5m or "
               "1h30m, got '30'");
}

TEST(workflow_retry_fields) {
    loaded l = load(HEAD "steps:\n  - id: a\n    uses: set\n    retry:\n      max_attempts: 5\n"
                    "      backoff: linear\n      delay: 250ms\n      max_delay: 1m\n"
                    "      jitter: true\n      on: \"^(timeout|connect):\"\n");
    CHECK_STR(l.text, "");
    cairn_retry *r = &l.wf->steps[0].retry;
    CHECK_INT(r->max_attempts, 5);
    CHECK_INT(r->backoff, CAIRN_BACKOFF_LINEAR);
    CHECK_INT(r->delay_ms, 250);
    CHECK_INT(r->max_delay_ms, 60000);
    CHECK(r->jitter);
    CHECK_STR(r->on, "^(timeout|connect):");
    CHECK(r->until == NULL);
    done(&l);
}

TEST(workflow_retry_errors) {
#define RETRY(x) HEAD "steps:\n  - id: a\n    uses: set\n    retry: " x "\n"
    expect_one(RETRY("{max_attempts: 0}"),
               "w.yaml:6:27: error: retry.max_attempts: expected a whole number from 1 to 1000000, got '0'");
    expect_one(RETRY("{max_attempts: two}"),
               "w.yaml:6:27: error: retry.max_attempts: expected a whole number from 1 to 1000000, got 'two'");
    expect_one(RETRY("{backoff: expo}"),
               "w.yaml:6:22: error: retry.backoff: unknown value 'expo'; expected one of: constant, "
               "linear, exponential");
    expect_one(RETRY("{backoff: exponentail}"),
               "w.yaml:6:22: error: retry.backoff: unknown value 'exponentail' (did you mean "
               "'exponential'?)");
    expect_one(RETRY("{delay: 5m, max_delay: 1m}"),
               "w.yaml:6:20: error: retry.delay (5m) is longer than retry.max_delay (1m)");
    expect_one(RETRY("{jitter: 1}"), "w.yaml:6:21: error: retry.jitter: expected true or false, got '1'");
    expect_one(RETRY("{on: \"(timeout\"}"),
               "w.yaml:6:17: error: retry.on: invalid PCRE2 pattern at offset 8: missing closing "
               "parenthesis");
    expect_one(RETRY("{until: \"${{ .output.ok }}\"}"),
               "w.yaml:6:13: error: retry.until needs an explicit max_attempts, so that polling ends");
    expect_one(RETRY("{max_attempts: 3, until: .output.ok}"),
               "w.yaml:6:37: error: retry.until: expected an expression ${{ ... }}, got '.output.ok'");
    expect_one(RETRY("3"), "w.yaml:6:12: error: retry: expected a map, got '3'");
#undef RETRY
}

TEST(workflow_continue_on_error_and_on_crash) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set, continue_on_error: true, on_crash: fail}\n"
                    "  - {id: b, uses: set}\n");
    CHECK_STR(l.text, "");
    CHECK(l.wf->steps[0].continue_on_error);
    CHECK_INT(l.wf->steps[0].on_crash, CAIRN_ON_CRASH_FAIL);
    CHECK(!l.wf->steps[1].continue_on_error);
    CHECK_INT(l.wf->steps[1].on_crash, CAIRN_ON_CRASH_RETRY);
    done(&l);
    expect_one(HEAD "steps:\n  - {id: a, uses: set, continue_on_error: yes}\n",
               "w.yaml:4:43: error: continue_on_error: expected true or false, got 'yes'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, on_crash: retyr}\n",
               "w.yaml:4:34: error: on_crash: unknown value 'retyr' (did you mean 'retry'?)");
}

TEST(workflow_compensate_bodies) {
    loaded l = load(HEAD "defaults: {timeout: 5s}\nsteps:\n  - id: a\n    uses: set\n"
                    "    compensate: {run: \"echo undo ${{ .steps.a.output.x }}\", retry: {max_attempts: 3}}\n");
    CHECK_STR(l.text, "");
    cairn_step *c = l.wf->steps[0].compensate;
    CHECK_STR(c->uses, "shell");
    CHECK_STR(c->id, "");
    CHECK_INT(c->timeout_ms, 5000);
    CHECK_INT(c->retry.max_attempts, 3);
    CHECK_INT(c->n_needs, 0);
    CHECK(!cairn_tmpl_is_const(c->with));
    done(&l);
    expect_one(HEAD "steps:\n  - {id: a, uses: set, compensate: {id: u, uses: set}}\n",
               "w.yaml:4:37: error: 'id' is not allowed in a compensate body: it holds uses/with "
               "or run, timeout and retry");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, compensate: {uses: set, needs: [a]}}\n",
               "w.yaml:4:48: error: 'needs' is not allowed in a compensate body: it holds "
               "uses/with or run, timeout and retry");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, compensate: {uses: set, wiht: {}}}\n",
               "w.yaml:4:48: error: unknown key 'wiht' in a compensate body (did you mean 'with'?)");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, compensate: {uses: fail}}\n",
               "w.yaml:4:36: error: with: action 'fail' needs the field 'message'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, compensate: x}\n",
               "w.yaml:4:36: error: compensate: expected a map, got 'x'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set}\non_failure:\n  - {id: p, uses: set, compensate: {uses: set}}\n",
               "w.yaml:6:24: error: 'compensate' is not allowed in an on_failure step: on_failure "
               "steps run in order, after rollback");
}

TEST(workflow_foreach_and_concurrency) {
    loaded l = load(HEAD "steps:\n  - {id: a, uses: set, foreach: \"${{ .inputs.hosts }}\", concurrency: 4}\n"
                    "  - {id: b, uses: set, foreach: [x, y]}\n"
                    "inputs: {hosts: {type: array}}\n");
    CHECK_STR(l.text, "");
    CHECK(l.wf->steps[0].foreach && !cairn_tmpl_is_const(l.wf->steps[0].foreach));
    CHECK_INT(l.wf->steps[0].concurrency, 4);
    CHECK(cairn_tmpl_is_const(l.wf->steps[1].foreach));
    CHECK_INT(l.wf->steps[1].concurrency, 0);
    done(&l);
    expect_one(HEAD "steps:\n  - {id: a, uses: set, concurrency: 2}\n",
               "w.yaml:4:24: error: concurrency is only allowed with foreach");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, foreach: [x], concurrency: -1}\n",
               "w.yaml:4:51: error: concurrency: expected a whole number from 1 to 100000, got '-1'");
    expect_one(HEAD "steps:\n  - {id: a, uses: set, foreach: .inputs.hosts}\n",
               "w.yaml:4:33: error: foreach: expected an expression ${{ ... }} or a list, got "
               "'.inputs.hosts'");
}

TEST(workflow_defaults_apply_to_steps_that_set_none) {
    loaded l = load(HEAD "defaults:\n  timeout: 30s\n  retry: {max_attempts: 4, until: \"${{ .output }}\"}\n"
                    "steps:\n  - {id: a, uses: set}\n"
                    "  - {id: b, uses: set, timeout: 1m, retry: {max_attempts: 2}}\n"
                    "on_failure:\n  - {id: p, uses: set}\n");
    CHECK_STR(l.text, "");
    cairn_step *s = l.wf->steps;
    CHECK_INT(s[0].timeout_ms, 30000);
    CHECK_INT(s[0].retry.max_attempts, 4);
    CHECK(s[0].retry.until != NULL);
    CHECK_INT(s[1].timeout_ms, 60000);
    CHECK_INT(s[1].retry.max_attempts, 2);
    CHECK(s[1].retry.until == NULL);
    CHECK_INT(l.wf->on_failure[0].timeout_ms, 30000);
    CHECK_INT(l.wf->on_failure[0].retry.max_attempts, 4);
    CHECK(l.wf->on_failure[0].retry.until != s[0].retry.until);   /* each step owns its copy */
    done(&l);
    /* a bad default is reported once, not once per step */
    expect_one(HEAD "defaults: {retry: {max_attempts: 2, backoff: slow}}\n"
               "steps:\n  - {id: a, uses: set}\n  - {id: b, uses: set}\n",
               "w.yaml:3:46: error: retry.backoff: unknown value 'slow'; expected one of: "
               "constant, linear, exponential");
}

/* ---- inputs specs --------------------------------------------------------- */

TEST(workflow_input_specs) {
    loaded l = load(HEAD "inputs:\n"
                    "  host: {type: string, required: true, pattern: \"^[a-z]+$\", description: Host}\n"
                    "  port: {type: integer, default: 22}\n"
                    "  mode: {type: string, enum: [fast, safe], default: safe}\n"
                    ONE_STEP);
    CHECK_STR(l.text, "");
    cairn_input_spec *in = l.wf->inputs;
    CHECK_INT(l.wf->n_inputs, 3);
    CHECK_STR(in[0].name, "host");
    CHECK(in[0].required);
    CHECK(in[0].pattern_code != NULL);
    CHECK_STR(in[0].description, "Host");
    CHECK_INT(in[1].type, CAIRN_INPUT_INTEGER);
    CHECK_INT(jv_number_value(in[1].default_), 22);
    CHECK_INT(jv_array_length(jv_copy(in[2].enum_)), 2);
    done(&l);
}

TEST(workflow_input_spec_errors) {
#define INPUT(x) HEAD "inputs:\n  x: " x "\n" ONE_STEP
    expect_one(INPUT("{type: strng}"),
               "w.yaml:4:13: error: inputs.x.type: unknown type 'strng' (did you mean 'string'?)");
    expect_one(INPUT("{required: true}"),
               "w.yaml:4:6: error: inputs.x: missing 'type' (string, number, integer, boolean, "
               "object or array)");
    expect_one(INPUT("{type: integer, default: 1.5}"),
               "w.yaml:4:31: error: inputs.x.default: expected an integer, got a number");
    expect_one(INPUT("{type: boolean, default: \"true\"}"),
               "w.yaml:4:31: error: inputs.x.default: expected a boolean, got a string");
    expect_one(INPUT("{type: integer, pattern: \"^1\"}"),
               "w.yaml:4:31: error: inputs.x.pattern: a pattern applies only to type string");
    expect_one(INPUT("{type: string, pattern: \"[a-\"}"),
               "w.yaml:4:30: error: inputs.x.pattern: invalid PCRE2 pattern at offset 3: missing "
               "terminating ] for character class");
    expect_one(INPUT("{type: string, pattern: \"^a\", default: b}"),
               "w.yaml:4:45: error: inputs.x.default: \"b\" does not match the pattern '^a'");
    expect_one(INPUT("{type: string, enum: [a, b], default: c}"),
               "w.yaml:4:44: error: inputs.x.default: \"c\" is not one of [\"a\",\"b\"]");
    expect_one(INPUT("{type: string, enum: [a, 2]}"),
               "w.yaml:4:31: error: inputs.x.enum: expected a string, got a number");
    expect_one(INPUT("{type: string, enum: []}"),
               "w.yaml:4:27: error: inputs.x.enum: expected at least one value");
    expect_one(INPUT("{type: string, required: 1}"),
               "w.yaml:4:31: error: inputs.x.required: expected true or false, got '1'");
    expect_one(INPUT("string"), "w.yaml:4:6: error: inputs.x: expected a map, got 'string'");
    expect_one(HEAD "inputs:\n  \"a b\": {type: string}\n" ONE_STEP,
               "w.yaml:4:3: error: inputs: 'a b' is not a valid input name: use letters, digits, "
               "'_' and '-', starting with a letter or '_' (at most 64)");
#undef INPUT
}

/* ---- triggers ------------------------------------------------------------- */

TEST(workflow_triggers) {
    loaded l = load(HEAD "inputs:\n  n: {type: integer, default: 0}\n"
                    "triggers:\n  - webhook: generic\n    match: {a: \"^x\"}\n"
                    "  - schedule: \"0 3 * * 1\"\n    inputs: {n: 1}\n" ONE_STEP);
    CHECK_STR(l.text, "");
    jv s = jv_dump_string(jv_copy(l.wf->triggers), JV_PRINT_SORTED);
    CHECK_STR(jv_string_value(s), "[{\"match\":{\"a\":\"^x\"},\"webhook\":\"generic\"},"
                                  "{\"inputs\":{\"n\":1},\"schedule\":\"0 3 * * 1\"}]");
    jv_free(s);
    done(&l);
#define TRIG(x) HEAD "triggers:\n  - " x "\n" ONE_STEP
    expect_one(TRIG("{webhook: alertmanger}"),
               "w.yaml:4:15: error: webhook: unknown source 'alertmanger' (did you mean 'alertmanager'?)");
    expect_one(TRIG("{schedule: \"* * *\"}"),
               "w.yaml:4:17: error: schedule: not a cron expression: expected 5 fields (minute "
               "hour day month weekday), got 3");
    expect_one(TRIG("{webhook: generic, schedule: \"* * * * *\"}"),
               "w.yaml:4:24: error: a trigger is either a webhook or a schedule, not both");
    expect_one(TRIG("{inputs: {}}"),
               "w.yaml:4:5: error: a trigger needs 'webhook' (a source) or 'schedule' (cron)");
    expect_one(TRIG("{webhook: generic, match: {a: \"(\"}}"),
               "w.yaml:4:35: error: match.a: invalid PCRE2 pattern at offset 1: missing closing "
               "parenthesis");
    expect_one(TRIG("{schedule: \"* * * * *\", match: {a: x}}"),
               "w.yaml:4:29: error: match applies only to webhook triggers");
    expect_one(TRIG("{webhook: generic, fliter: 1}"),
               "w.yaml:4:24: error: unknown key 'fliter' in a trigger; expected one of: webhook, "
               "schedule, match, dedupe, inputs, timezone, catch_up");
    expect_one(TRIG("{schedule: \"0 9 * * MON-FRI\", inputs: {n: 1}}"),
               "w.yaml:4:44: error: inputs: unknown input 'n' (the workflow declares no inputs)");
    expect_one(HEAD "inputs:\n  host: {type: string}\ntriggers:\n  - {schedule: \"0 9 * * *\", "
               "inputs: {hots: x}}\n" ONE_STEP,
               "w.yaml:6:38: error: inputs: unknown input 'hots' (did you mean 'host'?)");
    expect_one(TRIG("{schedule: \"0 9 * * FRI-MON\"}"),
               "w.yaml:4:25: error: schedule: not a cron expression: field 5 (day of week, 0-7): "
               "'FRI-MON': the range 5-1 runs backwards");
    expect_one(HEAD "triggers: {webhook: generic}\n" ONE_STEP,
               "w.yaml:3:11: error: triggers: expected a list, got a map");
#undef TRIG
}

/* ---- limits and scale ----------------------------------------------------- */

TEST(workflow_too_many_steps_is_a_limit) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, HEAD "steps:\n");
    for (int i = 0; i <= CAIRN_MAX_STEPS; i++) cairn_buf_printf(&b, "  - {id: s%d, uses: set}\n", i);
    loaded l = load(b.data);
    CHECK_INT(l.rc, CAIRN_ELIMIT);
    CHECK_STR(l.text, "w.yaml:4:3: error: too many steps: 10001 in steps and on_failure (the "
                      "limit is 10000)\n");
    done(&l);
    cairn_buf_free(&b);
}

/* 1,000 steps with an expression each: every id look-up is a binary search
 * and the expressions go into one set, compiled once. */
TEST(workflow_thousand_steps_with_expressions) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, HEAD "steps:\n  - {id: s0, uses: set, with: {v: 0}}\n");
    for (int i = 1; i < 1000; i++)
        cairn_buf_printf(&b, "  - id: s%d\n    needs: [s%d]\n    uses: set\n"
                         "    with: {v: \"${{ .steps.s%d.output.v + 1 }}\"}\n", i, i - 1, i - 1);
    loaded l = load(b.data);
    CHECK_STR(l.text, "");
    CHECK_INT(l.wf->n_steps, 1000);
    CHECK_INT(cairn_exprset_count(l.wf->exprs), 999);
    for (int i = 1; i < 1000; i++) {
        CHECK_INT(l.wf->steps[i].n_needs, 1);
        CHECK_INT(l.wf->steps[i].needs[0], i - 1);
    }
    done(&l);
    cairn_buf_free(&b);
}

TEST(workflow_without_a_catalogue_checks_no_actions) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    const char *src = HEAD "steps:\n  - {id: a, uses: anything, with: {x: 1}}\n";
    CHECK_INT(cairn_workflow_load("w.yaml", src, strlen(src), NULL, &wf, &d), 0);
    CHECK_STR(wf->steps[0].uses, "anything");
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
}

