#include "common/json.h"
#include "test.h"

static void roundtrip(const char *in, const char *want) {
    jv v = jv_parse(in);
    char *got = cairn_json_text(v);
    CHECK_STR(got, want);
    jv back = jv_parse(got);
    CHECK(jv_equal(back, v));   /* consumes both */
    free(got);
}

TEST(json_text_is_canonical_and_reads_back) {
    roundtrip("{\"b\":1,\"a\":[true,false,null],\"c\":{\"z\":\"x\",\"y\":2.5}}",
              "{\"a\":[true,false,null],\"b\":1,\"c\":{\"y\":2.5,\"z\":\"x\"}}");
    roundtrip("\"quote \\\" slash \\\\ nl \\n tab \\t bell \\u0007 é\"",
              "\"quote \\\" slash \\\\ nl \\n tab \\t bell \\u0007 é\"");
    roundtrip("[0.1, -3, 1e300, 123456789012, 0.30000000000000004]",
              "[0.10000000000000001,-3,1.0000000000000001e+300,123456789012,0.30000000000000004]");
    roundtrip("{\"ab\":1,\"a\":2,\"b\":3}", "{\"a\":2,\"ab\":1,\"b\":3}");
}

TEST(json_text_matches_jq_sorted_dump_on_keys) {
    jv v = jv_parse("{\"k10\":1,\"k2\":2,\"K\":3,\"é\":4,\"e\":5}");
    jv jq = jv_dump_string(jv_copy(v), JV_PRINT_SORTED);
    char *ours = cairn_json_text(v);
    CHECK_STR(ours, jv_string_value(jq));
    free(ours);
    jv_free(jq);
    jv_free(v);
}
