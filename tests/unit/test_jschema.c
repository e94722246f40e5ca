/*
 * The JSON Schema checker (actions/jschema.h): each keyword with a value
 * that matches and one that does not, the exact path and wording of the
 * messages, and schemas refused when compiled.
 */
#include "test.h"
#include "actions/jschema.h"

#include <jv.h>

static cairn_jschema *js_compile(const char *schema) {
    cairn_jschema *s = NULL;
    cairn_err err;
    cairn_err_clear(&err);
    jv v = test_json(schema);
    int rc = cairn_jschema_new(v, &s, &err);
    jv_free(v);
    if (rc != 0) TEST_FAIL("schema %s refused: %s", schema, err.msg);
    return s;
}

/* Check value against schema; returns the message ("" when it matches). */
static const char *js_check(const char *schema, const char *value) {
    static char msg[CAIRN_ERR_MSG_MAX];
    cairn_jschema *s = js_compile(schema);
    cairn_err err;
    cairn_err_clear(&err);
    jv v = test_json(value);
    int rc = cairn_jschema_check(s, v, &err);
    jv_free(v);
    cairn_jschema_free(s);
    if ((rc == 0) != (err.msg[0] == '\0')) TEST_FAIL("rc %d but message '%s'", rc, err.msg);
    snprintf(msg, sizeof msg, "%s", err.msg);
    return msg;
}

static void js_ok(const char *schema, const char *value) {
    const char *m = js_check(schema, value);
    if (m[0]) TEST_FAIL("%s should match %s, got: %s", value, schema, m);
}

/* The schema does not compile; returns the message. */
static const char *js_refused(const char *schema) {
    static char msg[CAIRN_ERR_MSG_MAX];
    cairn_jschema *s = NULL;
    cairn_err err;
    cairn_err_clear(&err);
    jv v = test_json(schema);
    int rc = cairn_jschema_new(v, &s, &err);
    jv_free(v);
    if (rc != CAIRN_ESYNTAX) TEST_FAIL("schema %s was accepted", schema);
    CHECK(s == NULL);
    snprintf(msg, sizeof msg, "%s", err.msg);
    return msg;
}

TEST(jschema_type_single_and_list) {
    js_ok("{'type': 'string'}", "'x'");
    js_ok("{'type': 'integer'}", "3");
    js_ok("{'type': 'integer'}", "3.0");
    js_ok("{'type': 'number'}", "2.5");
    js_ok("{'type': 'boolean'}", "false");
    js_ok("{'type': 'null'}", "null");
    js_ok("{'type': 'object'}", "{}");
    js_ok("{'type': 'array'}", "[]");
    js_ok("{'type': ['string', 'null']}", "null");
    CHECK_STR(js_check("{'type': 'string'}", "5"), "$: expected string, got number 5");
    CHECK_STR(js_check("{'type': 'integer'}", "2.5"), "$: expected integer, got number 2.5");
    CHECK_STR(js_check("{'type': 'boolean'}", "'true'"),
              "$: expected boolean, got string \"true\"");
    CHECK_STR(js_check("{'type': ['string', 'null']}", "[1]"),
              "$: expected string or null, got array");
    CHECK_STR(js_check("{'type': 'object'}", "null"), "$: expected object, got null");
}

TEST(jschema_properties_and_paths) {
    const char *schema = "{'type': 'object', 'properties': {'a': {'type': 'object', "
                         "'properties': {'b c': {'type': 'array', 'items': {'type': "
                         "'integer'}}}}}}";
    js_ok(schema, "{'a': {'b c': [1, 2]}, 'other': 'free'}");
    CHECK_STR(js_check(schema, "{'a': {'b c': [1, 'two']}}"),
              "$.a[\"b c\"][1]: expected integer, got string \"two\"");
    CHECK_STR(js_check(schema, "{'a': 3}"), "$.a: expected object, got number 3");
}

TEST(jschema_required) {
    const char *schema = "{'type': 'object', 'required': ['verdict', 'reason']}";
    js_ok(schema, "{'verdict': 1, 'reason': 2}");
    CHECK_STR(js_check(schema, "{'verdict': 1}"), "$: missing required property \"reason\"");
    CHECK_STR(js_check("{'properties': {'x': {'required': ['y']}}}", "{'x': {}}"),
              "$.x: missing required property \"y\"");
    js_ok("{'required': ['a']}", "'not an object: required does not apply'");
}

TEST(jschema_additional_properties) {
    const char *closed = "{'properties': {'a': {}}, 'additionalProperties': false}";
    js_ok(closed, "{'a': 1}");
    CHECK_STR(js_check(closed, "{'a': 1, 'zz': 2}"),
              "$: property \"zz\" is not allowed (additionalProperties is false)");
    const char *typed = "{'properties': {'a': {}}, 'additionalProperties': {'type': 'number'}}";
    js_ok(typed, "{'a': 'any', 'b': 2}");
    CHECK_STR(js_check(typed, "{'a': 'any', 'b': 'two'}"),
              "$.b: expected number, got string \"two\"");
    js_ok("{'additionalProperties': true}", "{'q': 1}");
}

TEST(jschema_items) {
    js_ok("{'items': {'type': 'string'}}", "['a', 'b']");
    CHECK_STR(js_check("{'items': {'type': 'string'}}", "['a', 2]"),
              "$[1]: expected string, got number 2");
    CHECK_CONTAINS(js_refused("{'items': [{'type': 'string'}]}"), "schema $.items: a list of "
                   "schemas (tuple form) is not supported");
}

TEST(jschema_enum_and_const) {
    const char *schema = "{'properties': {'verdict': {'enum': ['real', 'false_positive']}}}";
    js_ok(schema, "{'verdict': 'real'}");
    CHECK_STR(js_check(schema, "{'verdict': 'maybe'}"),
              "$.verdict: expected one of [\"real\",\"false_positive\"]");
    js_ok("{'enum': [1, {'a': [true]}]}", "{'a': [true]}");
    js_ok("{'const': {'k': 1}}", "{'k': 1.0}");
    CHECK_STR(js_check("{'const': 'yes'}", "'no'"), "$: expected \"yes\"");
    CHECK_CONTAINS(js_refused("{'enum': 'a'}"), "schema $.enum: expected a list, got string");
}

TEST(jschema_minimum_maximum) {
    js_ok("{'minimum': 1, 'maximum': 5}", "1");
    js_ok("{'minimum': 1, 'maximum': 5}", "5");
    CHECK_STR(js_check("{'minimum': 1}", "0.5"), "$: 0.5 is less than the minimum 1");
    CHECK_STR(js_check("{'maximum': 5}", "6"), "$: 6 is greater than the maximum 5");
    CHECK_STR(js_check("{'exclusiveMinimum': 1}", "1"),
              "$: 1 is not greater than the exclusive minimum 1");
    CHECK_STR(js_check("{'exclusiveMaximum': 5}", "5"),
              "$: 5 is not less than the exclusive maximum 5");
    js_ok("{'minimum': 1}", "'strings are not bounded by minimum'");
    CHECK_CONTAINS(js_refused("{'minimum': '1'}"), "schema $.minimum: expected a number");
}

TEST(jschema_min_max_length_counts_characters) {
    js_ok("{'minLength': 2, 'maxLength': 3}", "'\\u00e9\\u00e9\\u00e9'");   /* 6 bytes, 3 chars */
    CHECK_STR(js_check("{'minLength': 2}", "'a'"), "$: expected at least 2 characters, got 1");
    CHECK_STR(js_check("{'maxLength': 2}", "'\\u00e9\\u00e9\\u00e9'"),
              "$: expected at most 2 characters, got 3");
    CHECK_CONTAINS(js_refused("{'maxLength': -1}"), "schema $.maxLength: expected a whole number");
    CHECK_CONTAINS(js_refused("{'maxLength': 1.5}"), "schema $.maxLength: expected a whole number");
}

TEST(jschema_min_max_items) {
    js_ok("{'minItems': 1, 'maxItems': 2}", "[1, 2]");
    CHECK_STR(js_check("{'minItems': 1}", "[]"), "$: expected at least 1 items, got 0");
    CHECK_STR(js_check("{'maxItems': 2}", "[1, 2, 3]"), "$: expected at most 2 items, got 3");
}

TEST(jschema_pattern_is_pcre2_unanchored) {
    js_ok("{'pattern': '[0-9]+'}", "'abc123'");
    js_ok("{'pattern': '^\\\\p{L}+$'}", "'h\\u00e9llo'");
    CHECK_STR(js_check("{'pattern': '^[a-z]+$'}", "'Abc'"),
              "$: \"Abc\" does not match the pattern ^[a-z]+$");
    CHECK_CONTAINS(js_refused("{'properties': {'h': {'pattern': '(['}}}"),
                   "schema $.properties.h.pattern: bad pattern at offset");
}

TEST(jschema_any_of) {
    const char *schema = "{'anyOf': [{'type': 'string'}, {'type': 'integer', 'minimum': 0}]}";
    js_ok(schema, "'s'");
    js_ok(schema, "4");
    CHECK_STR(js_check(schema, "-1"),
              "$: matches none of the anyOf alternatives: [0] $: expected string, got number "
              "-1; [1] $: -1 is less than the minimum 0");
}

TEST(jschema_one_of) {
    const char *schema = "{'oneOf': [{'type': 'integer'}, {'minimum': 10}]}";
    js_ok(schema, "3");
    js_ok(schema, "10.5");
    CHECK_STR(js_check(schema, "12"),
              "$: matches 2 of the oneOf alternatives ([0] and [1]), expected exactly one");
    CHECK_CONTAINS(js_check(schema, "2.5"), "$: matches none of the oneOf alternatives: [0]");
}

TEST(jschema_all_of) {
    const char *schema = "{'allOf': [{'type': 'string'}, {'maxLength': 2}]}";
    js_ok(schema, "'ab'");
    CHECK_STR(js_check(schema, "'abc'"), "$: expected at most 2 characters, got 3");
    CHECK_STR(js_check(schema, "1"), "$: expected string, got number 1");
    CHECK_CONTAINS(js_refused("{'allOf': []}"), "schema $.allOf: expected a non-empty list");
}

TEST(jschema_not_and_boolean_schemas) {
    js_ok("{'not': {'type': 'null'}}", "1");
    CHECK_STR(js_check("{'not': {'type': 'null'}}", "null"),
              "$: matches the schema under \"not\", which it must not");
    js_ok("true", "{'anything': 1}");
    CHECK_STR(js_check("{'properties': {'x': false}}", "{'x': 1}"),
              "$.x: no value is allowed here (the schema is false)");
}

TEST(jschema_local_refs_and_recursion) {
    const char *schema = "{'$defs': {'node': {'type': 'object', 'required': ['v'], "
                         "'properties': {'v': {'type': 'integer'}, 'next': {'$ref': "
                         "'#/$defs/node'}}}}, '$ref': '#/$defs/node'}";
    js_ok(schema, "{'v': 1, 'next': {'v': 2, 'next': {'v': 3}}}");
    CHECK_STR(js_check(schema, "{'v': 1, 'next': {'v': 'x'}}"),
              "$.next.v: expected integer, got string \"x\"");
    CHECK_CONTAINS(js_refused("{'$ref': '#/$defs/missing'}"),
                   "schema $.$ref: \"#/$defs/missing\" does not lead to a schema");
    CHECK_CONTAINS(js_refused("{'$ref': 'https://example.com/s.json'}"), "only local references");
    /* A pointer into a non-schema place (a list of names) is refused. */
    CHECK_CONTAINS(js_refused("{'required': ['a'], 'items': {'$ref': '#/required/0'}}"),
                   "does not lead to a schema");
}

TEST(jschema_ref_loop_is_bounded) {
    cairn_jschema *s = js_compile("{'$defs': {'a': {'$ref': '#/$defs/b'}, 'b': {'$ref': "
                                  "'#/$defs/a'}}, '$ref': '#/$defs/a'}");
    cairn_err err;
    cairn_err_clear(&err);
    CHECK_INT(cairn_jschema_check(s, jv_number(1), &err), CAIRN_ELIMIT);
    CHECK_CONTAINS(err.msg, "nested deeper than");
    cairn_jschema_free(s);
}

TEST(jschema_refuses_unknown_keywords_and_bad_types) {
    CHECK_STR(js_refused("{'properties': {'a': {'uniqueItems': true}}}"),
              "schema $.properties.a.uniqueItems: keyword \"uniqueItems\" is not supported");
    CHECK_STR(js_refused("{'type': 'text'}"), "schema $.type: unknown type \"text\"");
    CHECK_STR(js_refused("{'type': ['string', 'txt']}"), "schema $.type[1]: unknown type \"txt\"");
    CHECK_CONTAINS(js_refused("{'type': []}"), "schema $.type: expected a type name");
    CHECK_CONTAINS(js_refused("{'required': 'a'}"), "schema $.required: expected a list");
    CHECK_CONTAINS(js_refused("{'required': ['a', 1]}"), "schema $.required[1]: expected a string");
    CHECK_CONTAINS(js_refused("{'properties': {'a': 3}}"),
                   "schema $.properties.a: expected a schema (an object or a boolean), got number");
    CHECK_CONTAINS(js_refused("'object'"), "schema $: expected a schema");
    /* annotations are accepted */
    js_ok("{'title': 't', 'description': 'd', 'format': 'email', 'examples': [1], "
          "'$schema': 'x', 'default': 2}", "'not-an-email'");
}

TEST(jschema_first_error_is_deterministic) {
    /* Properties are checked in sorted order, so the same value always gives
     * the same message. */
    const char *schema = "{'additionalProperties': {'type': 'string'}}";
    CHECK_STR(js_check(schema, "{'zeta': 1, 'alpha': 2, 'mid': 3}"),
              "$.alpha: expected string, got number 2");
}

TEST(jschema_long_values_are_cut_in_messages) {
    char value[600];
    memset(value, 0, sizeof value);
    value[0] = '\'';
    for (int i = 1; i < 500; i++) value[i] = 'x';
    value[500] = '\'';
    const char *m = js_check("{'maxLength': 3}", value);
    CHECK_STR(m, "$: expected at most 3 characters, got 499");
    m = js_check("{'pattern': '^y'}", value);
    CHECK_CONTAINS(m, "xxx... does not match the pattern ^y");
    CHECK(strlen(m) < CAIRN_JSCHEMA_SHOW_MAX + 80);
}
