/* Platt scaling (learn/calibration.c). */
#include "config.h"

#include <math.h>

#include "learn/calibration.h"
#include "unit.h"

START_TEST(test_platt) {
    /* Decision values that separate well give a steep, correctly oriented sigmoid. */
    double dec[200];
    bool pos[200];
    for (int i = 0; i < 200; i++) {
        pos[i] = i % 2;
        dec[i] = (pos[i] ? 1.0 : -1.0) + ((i * 37) % 11 - 5) / 10.0;
    }
    cml_platt p = cml_platt_fit(dec, pos, 200);
    ck_assert(p.a < 0);
    ck_assert(cml_platt_apply(p, 2.0) > 0.9);
    ck_assert(cml_platt_apply(p, -2.0) < 0.1);
    /* One class only: the fallback, never NaN. */
    bool none[3] = {false, false, false};
    cml_platt f = cml_platt_fit(dec, none, 3);
    ck_assert_double_eq(f.a, -1.0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("calibration");
    TCase *tc = tcase_create("calibration");
    tcase_add_test(tc, test_platt);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
