/*
 * test_inputs.c - run inputs against a workflow's input specs, and the
 * parsing of `--input name=text`.
 */
#include "test.h"

#include <string.h>

#include "common/mem.h"
#include "dsl/workflow.h"

static const char *src =
    "cairn: 1\n"
    "name: t\n"
    "inputs:\n"
    "  host:    {type: string, required: true, pattern: \"^[a-z0-9.-]+$\"}\n"
    "  port:    {type: integer, default: 22}\n"
    "  ratio:   {type: number}\n"
    "  dry_run: {type: boolean, default: false}\n"
    "  alert:   {type: object, default: {}}\n"
    "  tags:    {type: array}\n"
    "  mode:    {type: string, enum: [fast, safe]}\n"
    "  target:  {type: object, enum: [{env: prod}, {env: dev}]}\n"
    "steps:\n"
    "  - {id: a, uses: set}\n";

static const cairn_action_sig set_sig = {.name = "set", .open = true};
static const cairn_action_sig *lookup(const char *name) {
    return strcmp(name, "set") == 0 ? &set_sig : NULL;
}

static cairn_workflow *wf_load(void) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    int rc = cairn_workflow_load("in.yaml", src, strlen(src), lookup, &wf, &d);
    if (rc != 0) {
        cairn_diags_print(&d, stderr, src, strlen(src));
        TEST_FAIL("load failed");
    }
    cairn_diags_free(&d);
    return wf;
}

/* check_inputs over a JSON text: the error message, or the result as sorted JSON. */
static char *check(const cairn_workflow *wf, const char *json) {
    jv in = jv_parse(json), out;
    cairn_err err;
    cairn_err_clear(&err);
    int rc = cairn_workflow_check_inputs(wf, in, &out, &err);
    jv_free(in);
    if (rc != 0) {
        CHECK_INT(rc, CAIRN_EINVAL);
        CHECK(!jv_is_valid(out));
        return cairn_strdup(err.msg);
    }
    jv s = jv_dump_string(out, JV_PRINT_SORTED);
    char *r = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return r;
}

#define EXPECT(json, want)                     \
    do {                                       \
        char *got_ = check(wf, json);          \
        CHECK_STR(got_, want);                 \
        free(got_);                            \
    } while (0)

TEST(inputs_defaults_are_filled) {
    cairn_workflow *wf = wf_load();
    EXPECT("{\"host\": \"web1\"}", "{\"alert\":{},\"dry_run\":false,\"host\":\"web1\",\"port\":22}");
    EXPECT("{\"host\": \"web1\", \"port\": 2222, \"ratio\": 0.5, \"tags\": [1]}",
           "{\"alert\":{},\"dry_run\":false,\"host\":\"web1\",\"port\":2222,\"ratio\":0.5,"
           "\"tags\":[1]}");
    /* null counts as not given */
    EXPECT("{\"host\": \"web1\", \"port\": null, \"ratio\": null}",
           "{\"alert\":{},\"dry_run\":false,\"host\":\"web1\",\"port\":22}");
    cairn_workflow_free(wf);
}

TEST(inputs_required_and_unknown_names) {
    cairn_workflow *wf = wf_load();
    EXPECT("{}", "input 'host' is required");
    EXPECT("null", "input 'host' is required");
    EXPECT("{\"host\": null}", "input 'host' is required");
    EXPECT("{\"host\": \"a\", \"hots\": 1}", "input 'hots': no such input (did you mean 'host'?)");
    EXPECT("{\"host\": \"a\", \"zzzzzz\": 1}",
           "input 'zzzzzz': no such input; this workflow takes: host, port, ratio, dry_run, "
           "alert, tags, mode, target");
    EXPECT("[1]", "inputs: expected an object, got an array");
    cairn_workflow_free(wf);
}

TEST(inputs_types) {
    cairn_workflow *wf = wf_load();
    EXPECT("{\"host\": 5}", "input 'host': expected a string, got a number");
    EXPECT("{\"host\": \"a\", \"port\": 22.5}", "input 'port': expected an integer, got a number");
    EXPECT("{\"host\": \"a\", \"port\": \"22\"}", "input 'port': expected an integer, got a string");
    EXPECT("{\"host\": \"a\", \"port\": 1e3}",
           "{\"alert\":{},\"dry_run\":false,\"host\":\"a\",\"port\":1000}");
    EXPECT("{\"host\": \"a\", \"ratio\": true}", "input 'ratio': expected a number, got a boolean");
    EXPECT("{\"host\": \"a\", \"dry_run\": 0}", "input 'dry_run': expected a boolean, got a number");
    EXPECT("{\"host\": \"a\", \"alert\": []}", "input 'alert': expected an object, got an array");
    EXPECT("{\"host\": \"a\", \"tags\": {}}", "input 'tags': expected an array, got an object");
    cairn_workflow_free(wf);
}

TEST(inputs_pattern_and_enum) {
    cairn_workflow *wf = wf_load();
    EXPECT("{\"host\": \"web; rm -rf /\"}",
           "input 'host': \"web; rm -rf /\" does not match the pattern '^[a-z0-9.-]+$'");
    EXPECT("{\"host\": \"a\", \"mode\": \"slow\"}",
           "input 'mode': \"slow\" is not one of [\"fast\",\"safe\"]");
    EXPECT("{\"host\": \"a\", \"mode\": \"safe\"}",
           "{\"alert\":{},\"dry_run\":false,\"host\":\"a\",\"mode\":\"safe\",\"port\":22}");
    /* enum membership is JSON equality, objects included */
    EXPECT("{\"host\": \"a\", \"target\": {\"env\": \"dev\"}}",
           "{\"alert\":{},\"dry_run\":false,\"host\":\"a\",\"port\":22,\"target\":{\"env\":\"dev\"}}");
    EXPECT("{\"host\": \"a\", \"target\": {\"env\": \"qa\"}}",
           "input 'target': {\"env\":\"qa\"} is not one of [{\"env\":\"prod\"},{\"env\":\"dev\"}]");
    cairn_workflow_free(wf);
}

static char *parse_one(const cairn_workflow *wf, const char *name, const char *text) {
    jv out;
    cairn_err err;
    cairn_err_clear(&err);
    int rc = cairn_workflow_parse_input(wf, name, text, &out, &err);
    if (rc != 0) {
        CHECK_INT(rc, CAIRN_EINVAL);
        return cairn_strdup(err.msg);
    }
    jv s = jv_dump_string(out, JV_PRINT_SORTED);
    char *r = cairn_strdup(jv_string_value(s));
    jv_free(s);
    return r;
}

#define PARSE(name, text, want)                      \
    do {                                             \
        char *got_ = parse_one(wf, name, text);      \
        CHECK_STR(got_, want);                       \
        free(got_);                                  \
    } while (0)

TEST(inputs_parse_from_the_command_line) {
    cairn_workflow *wf = wf_load();
    PARSE("host", "42", "\"42\"");
    PARSE("host", "", "\"\"");
    PARSE("port", "8080", "8080");
    PARSE("port", "80.5", "input 'port': expected an integer, got '80.5'");
    PARSE("port", "eighty", "input 'port': expected an integer, got 'eighty'");
    PARSE("ratio", "1e-3", "0.001");
    PARSE("ratio", "nan", "input 'ratio': expected a number, got 'nan'");
    PARSE("dry_run", "true", "true");
    PARSE("dry_run", "false", "false");
    PARSE("dry_run", "yes", "input 'dry_run': expected a boolean, got 'yes'");
    PARSE("alert", "{\"labels\": {\"a\": 1}}", "{\"labels\":{\"a\":1}}");
    PARSE("alert", "[1]", "input 'alert': expected an object, got '[1]'");
    PARSE("alert", "{bad", "input 'alert': expected an object, got '{bad'");
    PARSE("tags", "[\"a\", 2]", "[\"a\",2]");
    PARSE("prot", "1", "input 'prot': no such input (did you mean 'port'?)");
    cairn_workflow_free(wf);
}
