#include <limits.h>
#include <stdio.h>
#include "test.h"
#include "common/err.h"
#include "common/mem.h"

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
