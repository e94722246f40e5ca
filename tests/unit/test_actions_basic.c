/*
 * The `set` and `fail` actions, driven through prepare/execute/finish as the
 * engine drives them, and the registry that lists them.
 */
#include "test.h"
#include "actions/action.h"

#include <jv.h>

static cairn_stop basic_stop;
static const cairn_attempt_info basic_info = {
    .run_id = "r1", .step_id = "s1", .idempotency_key = "r1/s1", .attempt = 1,
    .stop = &basic_stop,
};

/* Run action `name` over with (consumed).  Returns 1 when prepare refused,
 * else finish's result (0 or -1). */
static int basic_run(const char *name, jv with, jv *out, cairn_fail *f) {
    const cairn_action *a = cairn_action_find(name);
    void *job = NULL;
    CHECK(a != NULL);
    int rc = a->prepare(with, &basic_info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, &basic_info);
    return a->finish(job, out, f);
}

TEST(actions_registry_lists_builtins) {
    const char *names[] = {"set", "fail", "shell"};
    for (int i = 0; i < 3; i++) {
        const cairn_action *a = cairn_action_find(names[i]);
        CHECK(a != NULL);
        CHECK_STR(a->sig->name, names[i]);
        CHECK(cairn_action_lookup_sig(names[i]) == a->sig);
    }
    CHECK(cairn_action_find("nope") == NULL);
    CHECK(cairn_action_find("set")->flags & CAIRN_ACTION_INLINE);
    CHECK(cairn_action_find("fail")->flags & CAIRN_ACTION_INLINE);
    CHECK(!(cairn_action_find("shell")->flags & CAIRN_ACTION_INLINE));
    CHECK(cairn_action_lookup_sig("set")->open);
    CHECK(!cairn_action_lookup_sig("fail")->open);
}

TEST(actions_sigs_describe_fields) {
    const cairn_action_sig *fail = cairn_action_lookup_sig("fail");
    CHECK_STR(fail->fields[0].name, "message");
    CHECK(fail->fields[0].flags & CAIRN_FIELD_REQUIRED);
    CHECK_INT(fail->fields[0].type, CAIRN_FIELD_STRING);
    const cairn_action_sig *shell = cairn_action_lookup_sig("shell");
    CHECK_STR(shell->one_of, "run|argv");
    int shell_flagged = 0;
    for (const cairn_field_sig *s = shell->fields; s->name; s++)
        if (s->flags & CAIRN_FIELD_SHELL) {
            CHECK_STR(s->name, "run");
            shell_flagged++;
        }
    CHECK_INT(shell_flagged, 1);
}

TEST(set_output_equals_input) {
    jv in = test_json("{'a': 1, 'b': {'c': [1, 'two', null]}, 's': 'x\\u00e9'}");
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("set", jv_copy(in), &out, &f), 0);
    CHECK(jv_equal(out, in));
}

TEST(set_empty_map_and_discard) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("set", jv_object(), &out, &f), 0);
    CHECK_INT(jv_get_kind(out), JV_KIND_OBJECT);
    CHECK_INT(jv_object_length(out), 0);
    /* A job discarded instead of finished frees its copy (ASan checks). */
    const cairn_action *a = cairn_action_find("set");
    void *job = NULL;
    jv with = test_json("{'k': ['v']}");
    CHECK_INT(a->prepare(with, &basic_info, &job, &f), 0);
    jv_free(with);
    a->discard(job);
    a->discard(NULL);
}

TEST(set_refuses_non_map) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("set", jv_array(), &out, &f), 1);
    CHECK_STR(f.kind, "schema");
}

TEST(fail_uses_kind_and_message) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("fail", test_json("{'message': 'disk 97% full', 'kind': 'disk'}"),
                        &out, &f), -1);
    CHECK_STR(f.kind, "disk");
    CHECK_STR(f.message, "disk 97% full");
    CHECK(!jv_is_valid(out));
}

TEST(fail_kind_defaults_to_failed) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("fail", test_json("{'message': 'stop here', 'kind': null}"), &out, &f),
              -1);
    CHECK_STR(f.kind, "failed");
    CHECK_STR(f.message, "stop here");
}

static void fail_expect_schema(const char *with, const char *needle) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    CHECK_INT(basic_run("fail", test_json(with), &out, &f), 1);
    CHECK_STR(f.kind, "schema");
    CHECK_CONTAINS(f.message, needle);
}

TEST(fail_schema_errors) {
    fail_expect_schema("{}", "message is required");
    fail_expect_schema("{'message': null}", "message is required");
    fail_expect_schema("{'message': 42}", "message must be a string, not number");
    fail_expect_schema("{'message': 'm', 'kind': ['x']}", "kind must be a string");
    fail_expect_schema("{'message': 'm', 'kind': ''}", "kind must be 1 to 31 bytes");
    fail_expect_schema("{'message': 'm', 'kind': 'a-kind-name-much-longer-than-31-bytes'}",
                       "kind must be 1 to 31 bytes");
    fail_expect_schema("{'message': 'm', 'knd': 'x'}", "unknown field 'knd'");
}

TEST(fail_discard_frees_job) {
    const cairn_action *a = cairn_action_find("fail");
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    jv with = test_json("{'message': 'never finished'}");
    CHECK_INT(a->prepare(with, &basic_info, &job, &f), 0);
    jv_free(with);
    a->discard(job);
}
