/*
 * Rollback order: compensations run latest completion first, not in the
 * reverse of the order the steps are written in.  The steps run in
 * parallel and finish in an order the test chooses (each waits for a file
 * the test creates only once the step before it has finished), so the two
 * orders differ and neither timing nor luck decides which one is seen.
 */
#include "common/mem.h"
#include "engine_harness.h"
#include "test.h"

#include <fcntl.h>
#include <unistd.h>

/* Let step `id` (see parallel_step) finish. */
static void release(const char *dir, const char *id) {
    char *path = cairn_sprintf("%s/go_%s", dir, id);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    close(fd);
    free(path);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "r");
    char text[1024] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f) fclose(f);
    return cairn_strdup(text);
}

/* Step `id`: starts at once, finishes when the file go_<id> exists. */
static void parallel_step(cairn_buf *b, const char *id, const char *dir) {
    cairn_buf_printf(b,
                     "  - id: %s\n    needs: []\n    timeout: 60s\n"
                     "    run: while [ ! -e %s/go_%s ]; do sleep 0.01; done; echo do %s >> %s/log\n"
                     "    compensate: { run: echo undo %s >> %s/log }\n",
                     id, dir, id, id, dir, id, dir);
}

TEST(rollback_undoes_parallel_steps_latest_completion_first) {
    const char *dir = test_tmpdir();
    cairn_buf src = CAIRN_BUF_INIT;
    cairn_buf_puts(&src, "cairn: 1\nname: unwind\nsteps:\n");
    parallel_step(&src, "first", dir);
    parallel_step(&src, "second", dir);
    parallel_step(&src, "third", dir);
    cairn_buf_puts(&src, "  - id: boom\n    needs: [first, second, third]\n"
                         "    uses: fail\n    with: { message: broken }\n");
    harness h = {0};
    open_engine(&h, true);
    add(&h, src.data);
    char id[CAIRN_RUN_ID_MAX];
    start(&h, "{}", id);
    pthread_t loop;
    drive_in_thread(&h, &loop);
    /* completion order: second, third, first (declared: first, second, third) */
    static const char *const order[] = {"second", "third", "first"};
    for (int i = 0; i < 3; i++) {
        release(dir, order[i]);
        char *done = cairn_sprintf("step_succeeded:%s", order[i]);
        wait_trace(&h, done, 1);
        free(done);
    }
    join_drive(loop);
    char *log_path = cairn_sprintf("%s/log", dir);
    char *log = read_all(log_path);
    CHECK_STR(log, "do second\ndo third\ndo first\nundo first\nundo third\nundo second\n");
    jv run = show(&h, id);
    CHECK_AT(run, "status", "failed");
    CHECK_AT(run, "steps.second#compensate.status", "succeeded");
    jv_free(run);
    free(log);
    free(log_path);
    cairn_buf_free(&src);
    free_h(&h);
}
