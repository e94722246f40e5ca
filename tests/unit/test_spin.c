/*
 * test_spin.c - a place that spins for a hand-off adapts its budget to the
 * waits it sees (engine/inbox.c, eng_spin_for).
 */
#include "engine/engine_int.h"
#include "test.h"

/* A hand-off that never comes halves the budget each time, down to the
 * floor; one already there brings it down to the floor at once. */
TEST(spin_budget_halves_on_a_wait_in_vain_and_follows_a_quick_hand_off) {
    eng_spinner s = {0};
    atomic_int flag;
    atomic_init(&flag, 0);
    CHECK(!eng_spin_for(&s, &flag));
    CHECK_INT(s.budget_us, CAIRN_SPIN_US / 2);
    CHECK(!eng_spin_for(&s, &flag));
    CHECK_INT(s.budget_us, CAIRN_SPIN_US / 4);
    for (int i = 0; i < 16; i++) CHECK(!eng_spin_for(&s, &flag));
    CHECK_INT(s.budget_us, CAIRN_SPIN_MIN_US);
    eng_spinner t = {0};
    atomic_store(&flag, 1);
    CHECK(eng_spin_for(&t, &flag));
    CHECK_INT(t.budget_us, CAIRN_SPIN_MIN_US);   /* twice a wait of nothing, at least the floor */
}
