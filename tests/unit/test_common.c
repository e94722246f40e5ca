#include <limits.h>
#include <stdio.h>
#include "test.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/idlist.h"
#include "common/strmap.h"

TEST(err_formats_position) {
    cairn_err e;
    cairn_err_clear(&e);
    CHECK_INT(cairn_err_at(&e, CAIRN_ESYNTAX, "a.yaml", 3, 7, "expected %s", "a map"), CAIRN_ESYNTAX);
    char out[256];
    CHECK_STR(cairn_err_format(&e, out, sizeof out), "a.yaml:3:7: expected a map");
    CHECK_STR(cairn_strerror(CAIRN_ENOTFOUND), "not found");
    CHECK_STR(cairn_strerror(12345), "unknown error");
}

TEST(buf_put_ll_writes_what_printf_writes) {
    const long long v[] = {0, 7, -7, 10, 1234567890123LL, -1000, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cairn_buf b = CAIRN_BUF_INIT;
        char want[32];
        snprintf(want, sizeof want, "%lld", v[i]);
        cairn_buf_put_ll(&b, v[i]);
        CHECK_STR(b.data, want);
        cairn_buf_free(&b);
    }
}

TEST(buf_grows_and_detaches) {
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; i < 1000; i++) cairn_buf_printf(&b, "%d,", i % 10);
    CHECK_INT(b.len, 2000);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    char *s = cairn_buf_detach(&b);
    CHECK(b.data == NULL);
    CHECK_INT(strlen(s), 2000);
    free(s);
    cairn_buf_free(NULL);
}

/* Keys come and go in a small table, so removal must keep every probe run
 * whole: each key still present is found with its latest value, each removed
 * one is gone; a value changed through its ref is the one found after. */
TEST(strmap_keeps_every_key_through_puts_and_removals) {
    enum { N = 2000 };
    static int64_t want[N];            /* -1: not in the map */
    cairn_strmap *m = cairn_strmap_new();
    char key[32];
    int64_t v = 0;
    CHECK(!cairn_strmap_get(m, "absent", &v));
    CHECK(cairn_strmap_ref(m, "absent") == NULL);
    CHECK(!cairn_strmap_remove(m, "absent"));
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "run-%d", i);
        cairn_strmap_put(m, key, i);
        want[i] = i;
        if (i % 3 == 0) {
            snprintf(key, sizeof key, "run-%d", i / 2);
            CHECK(cairn_strmap_remove(m, key));
            want[i / 2] = -1;
        }
    }
    cairn_strmap_put(m, "run-7", 70);  /* back after its removal */
    want[7] = 70;
    cairn_strmap_put(m, "run-8", 80);  /* a replaced value */
    want[8] = 80;
    size_t present = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "run-%d", i);
        bool found = cairn_strmap_get(m, key, &v);
        int64_t *ref = cairn_strmap_ref(m, key);   /* the same entry, to change in place */
        CHECK(found == (want[i] >= 0) && found == (ref != NULL));
        if (found) CHECK_INT(v, want[i]);
        if (found && i % 5 == 0) *ref = want[i] = 10 * i + 1;
        present += found;
    }
    for (int i = 0; i < N; i += 5) {
        snprintf(key, sizeof key, "run-%d", i);
        if (want[i] >= 0) CHECK(cairn_strmap_get(m, key, &v) && v == want[i]);
    }
    CHECK_INT(cairn_strmap_count(m), present);
    cairn_strmap_clear(m);
    CHECK_INT(cairn_strmap_count(m), 0);
    CHECK(!cairn_strmap_get(m, "run-1", &v));
    cairn_strmap_put(m, "run-1", 1);
    CHECK(cairn_strmap_get(m, "run-1", &v) && v == 1);
    cairn_strmap_free(m);
}

/* Ids one apart take a byte each; far-apart and huge ids survive the round
 * trip; a truncated list or a zero step is refused, not misread. */
TEST(idlist_round_trips_ascending_ids) {
    const int64_t ids[] = {1, 2, 3, 130, 131, 100000, 100001, INT64_MAX / 2, INT64_MAX};
    const size_t n_ids = sizeof ids / sizeof ids[0];
    cairn_buf b = CAIRN_BUF_INIT;
    int64_t prev = 0;
    for (size_t i = 0; i < n_ids; i++) {
        cairn_idlist_put(&b, prev, ids[i]);
        prev = ids[i];
    }
    CHECK(b.len < n_ids * 3 + 20);
    size_t pos = 0;
    int64_t id = 0;
    prev = 0;
    for (size_t i = 0; i < n_ids; i++) {
        CHECK_INT(cairn_idlist_next((const unsigned char *)b.data, b.len, &pos, prev, &id), 0);
        CHECK_INT(id, ids[i]);
        prev = id;
    }
    CHECK_INT(cairn_idlist_next((const unsigned char *)b.data, b.len, &pos, prev, &id), -1);
    CHECK_INT(cairn_idlist_count((const unsigned char *)b.data, b.len), (long)n_ids);
    CHECK_INT(cairn_idlist_count((const unsigned char *)b.data, b.len - 1), -1);
    pos = 0;
    CHECK_INT(cairn_idlist_next((const unsigned char *)"\x80\x80", 2, &pos, 0, &id), -1);
    pos = 0;
    CHECK_INT(cairn_idlist_next((const unsigned char *)"\x00", 1, &pos, 0, &id), -1);
    cairn_buf_free(&b);
}
